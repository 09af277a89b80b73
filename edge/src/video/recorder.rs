//! Writes one event's clip: encoded access units (from the pre-roll ring, then live) into an
//! MP4 without re-encoding (`appsrc ! h264parse ! mp4mux ! filesink`). Timestamps are
//! shifted so the clip starts at zero; the first frame is a keyframe (the ring only hands out
//! whole GOPs). `finish` sends end-of-stream and waits for the muxer to write its index, so
//! the file is playable, then fsyncs it.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::gop_ring::EncodedFrame;

/// Folder of local clips and snapshots, inside the data directory (`clips/<camera>/`).
pub const CLIPS_DIR: &str = "clips";

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

/// A clip being written.
pub struct ClipWriter {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    path: PathBuf,
    base_ns: Option<u64>,
    /// Frames written.
    pub frames: u64,
    /// Stream time of the first and last frame written, ns.
    pub span_ns: Option<(u64, u64)>,
}

impl ClipWriter {
    /// Starts a clip at `path` for a stream with `caps` (from the encoded branch).
    pub fn start(path: &Path, caps: &gst::Caps) -> Result<Self, RecorderError> {
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
            .build()
            .map_err(gst_err)?;
        let sink = gst::ElementFactory::make("filesink")
            .property("location", path.to_string_lossy().as_ref())
            .build()
            .map_err(gst_err)?;
        pipeline
            .add_many([src.upcast_ref(), &parse, &mux, &sink])
            .map_err(gst_err)?;
        gst::Element::link_many([src.upcast_ref(), &parse, &mux, &sink]).map_err(gst_err)?;
        pipeline.set_state(gst::State::Playing).map_err(gst_err)?;
        Ok(ClipWriter {
            pipeline,
            src,
            path: path.to_path_buf(),
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

    /// Ends the clip: end-of-stream, wait for the muxer (at most `timeout`), fsync.
    pub fn finish(self, timeout: std::time::Duration) -> Result<PathBuf, RecorderError> {
        self.src.end_of_stream().map_err(gst_err)?;
        let bus = self.pipeline.bus().ok_or_else(|| gst_err("no bus"))?;
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        let _ = self.pipeline.set_state(gst::State::Null);
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => {}
            Some(gst::MessageView::Error(e)) => return Err(gst_err(e.error())),
            _ => return Err(gst_err("the muxer did not finish in time")),
        }
        std::fs::File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(|source| RecorderError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(self.path.clone())
    }
}
