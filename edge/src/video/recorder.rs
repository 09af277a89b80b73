//! Writes one event's clip: encoded access units (from the pre-roll ring, then live) into a
//! fragmented MP4 without re-encoding (`appsrc ! h264parse ! mp4mux fragment-duration=1000
//! streamable=true ! appsink`), whose bytes go straight into the event's encrypted working
//! file ([`super::workfile`]): no plaintext reaches the disk. Timestamps are shifted so the
//! clip starts at zero; the first frame is a keyframe (the ring only hands out whole GOPs).
//! `finish` sends end-of-stream and waits for the muxer's last fragment.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::gop_ring::EncodedFrame;
use super::workfile::{ClosedWork, OpenWork, WorkPaths, WorkWriter};
use zeroize::Zeroizing;

/// Folder of local events, inside the data directory: `clips/<camera>/<event_id>/` holds an
/// event's sealed objects and manifest.
pub const CLIPS_DIR: &str = "clips";
/// Fragment length of working files, ms: at most this much video is lost to a crash.
pub const FRAGMENT_MS: u32 = 1000;

/// Errors writing a clip.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// GStreamer failed.
    #[error("clip writer: {0}")]
    Gst(String),
    /// The file could not be synced.
    #[error("clip {path}: {source}")]
    Io {
        /// The clip.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn gst_err(e: impl std::fmt::Display) -> RecorderError {
    RecorderError::Gst(e.to_string())
}

/// The muxer's output as it reaches the working file.
struct Output {
    writer: WorkWriter,
    error: Option<std::io::Error>,
}

/// A clip being written.
pub struct ClipWriter {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    paths: WorkPaths,
    key: Zeroizing<[u8; 32]>,
    output: Arc<Mutex<Output>>,
    base_ns: Option<u64>,
    /// Frames written.
    pub frames: u64,
    /// Stream time of the first and last frame written, ns.
    pub span_ns: Option<(u64, u64)>,
}

impl ClipWriter {
    /// Starts a clip for a stream with `caps` (from the encoded branch) into the working
    /// file `work`.
    pub fn start(work: OpenWork, caps: &gst::Caps) -> Result<Self, RecorderError> {
        let OpenWork { paths, key, writer } = work;
        let pipeline = gst::Pipeline::new();
        let src = gst_app::AppSrc::builder()
            .caps(caps)
            .format(gst::Format::Time)
            .is_live(false)
            .block(true)
            .max_bytes(16 * 1024 * 1024)
            .build();
        let parse = gst::ElementFactory::make("h264parse")
            .build()
            .map_err(gst_err)?;
        let mux = gst::ElementFactory::make("mp4mux")
            .property("fragment-duration", FRAGMENT_MS)
            .property("streamable", true)
            .build()
            .map_err(gst_err)?;
        let sink = gst_app::AppSink::builder().sync(false).build();
        let output = Arc::new(Mutex::new(Output {
            writer,
            error: None,
        }));
        let out = output.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let mut o = out.lock().map_err(|_| gst::FlowError::Error)?;
                    // A new fragment begins: the previous one is complete, hand it to the OS.
                    let starts_fragment = map.len() >= 8 && &map[4..8] == b"moof";
                    let r = if starts_fragment {
                        o.writer.flush().and_then(|()| o.writer.append(&map))
                    } else {
                        o.writer.append(&map)
                    };
                    match r {
                        Ok(()) => Ok(gst::FlowSuccess::Ok),
                        Err(e) => {
                            o.error = Some(e);
                            Err(gst::FlowError::Error)
                        }
                    }
                })
                .build(),
        );
        pipeline
            .add_many([src.upcast_ref(), &parse, &mux, sink.upcast_ref()])
            .map_err(gst_err)?;
        gst::Element::link_many([src.upcast_ref(), &parse, &mux, sink.upcast_ref()])
            .map_err(gst_err)?;
        pipeline.set_state(gst::State::Playing).map_err(gst_err)?;
        Ok(ClipWriter {
            pipeline,
            src,
            paths,
            key,
            output,
            base_ns: None,
            frames: 0,
            span_ns: None,
        })
    }

    /// Appends frames in order.
    pub fn write(&mut self, frames: &[EncodedFrame]) -> Result<(), RecorderError> {
        for f in frames {
            let base = *self.base_ns.get_or_insert(f.dts_ns.min(f.pts_ns));
            let mut buffer = gst::Buffer::from_slice(f.data.clone());
            {
                let b = buffer.get_mut().expect("new buffer");
                b.set_pts(gst::ClockTime::from_nseconds(f.pts_ns.saturating_sub(base)));
                b.set_dts(gst::ClockTime::from_nseconds(f.dts_ns.saturating_sub(base)));
                if f.duration_ns > 0 {
                    b.set_duration(gst::ClockTime::from_nseconds(f.duration_ns));
                }
                if !f.keyframe {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            self.src.push_buffer(buffer).map_err(gst_err)?;
            self.frames += 1;
            self.span_ns = Some(match self.span_ns {
                None => (f.pts_ns, f.pts_ns),
                Some((a, _)) => (a, f.pts_ns),
            });
        }
        Ok(())
    }

    /// The working file's paths.
    pub fn paths(&self) -> &WorkPaths {
        &self.paths
    }

    /// Ends the clip: end-of-stream, wait for the muxer (at most `timeout`), flush the working
    /// file.
    pub fn finish(self, timeout: std::time::Duration) -> Result<ClosedWork, RecorderError> {
        self.src.end_of_stream().map_err(gst_err)?;
        let bus = self.pipeline.bus().ok_or_else(|| gst_err("no bus"))?;
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        let _ = self.pipeline.set_state(gst::State::Null);
        let io = |source| RecorderError::Io {
            path: self.paths.file.clone(),
            source,
        };
        let mut o = self.output.lock().map_err(|_| gst_err("poisoned"))?;
        if let Some(e) = o.error.take() {
            return Err(io(e));
        }
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => {}
            Some(gst::MessageView::Error(e)) => return Err(gst_err(e.error())),
            _ => return Err(gst_err("the muxer did not finish in time")),
        }
        o.writer.flush().map_err(io)?;
        let len = o.writer.plaintext_len;
        drop(o);
        Ok(ClosedWork {
            paths: self.paths.clone(),
            key: self.key.clone(),
            len,
        })
    }
}
