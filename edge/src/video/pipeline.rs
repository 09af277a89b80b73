//! One camera's GStreamer pipeline: its launch description (pure, tested) and the running
//! pipeline with its two outputs.
//!
//! ```text
//! source ─► H.264 access units ─► tee ─┬─► queue ─► appsink "encoded"   (pre-roll ring, clips)
//!                                      └─► queue (leaky) ─► avdec_h264 ─► videorate ─►
//!                                          videoscale ─► RGB W×H @ fps ─► appsink "frames"
//! ```
//!
//! With a substream, the main stream feeds only "encoded" and the substream only "frames".
//! Sources: `rtsp://` (rtspsrc, TCP or UDP), `file://` (parsebin, paced to real time by
//! clocksync), `v4l2:///dev/videoN` (MJPEG or raw, decoded then encoded with x264) and
//! `test://PATTERN` (videotestsrc through the same encoder as V4L2; `test://ball?mjpeg`
//! goes through JPEG first, as a USB camera's MJPEG would).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::gop_ring::{EncodedFrame, GopRing};
use crate::config::CameraSettings;

/// Errors building or running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The URL is not usable.
    #[error("unsupported camera url {0:?}")]
    Url(String),
    /// GStreamer refused the pipeline (a missing plugin, for one).
    #[error("cannot build the pipeline: {0}")]
    Build(String),
    /// The stream is not H.264.
    #[error("the stream is not H.264 (it is {0}); only H.264 is supported")]
    NotH264(String),
    /// The camera refused the user name or password.
    #[error("{0}")]
    Unauthorized(String),
    /// The camera's source could not be set up (an ONVIF fault, no such profile).
    #[error("{0}")]
    Source(String),
    /// The stream failed.
    #[error("{0}")]
    Stream(String),
}

/// A decoded detection frame.
pub struct RgbFrame {
    /// Stream time, ns.
    pub pts_ns: u64,
    /// Packed RGB, `width × height × 3` bytes.
    pub rgb: Vec<u8>,
}

/// Quotes a property value for a launch description.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

const H264_AU: &str = "h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au";

/// The part of a description that turns `url` into H.264 access units.
pub fn h264_source(url: &str, transport: &str) -> Result<String, PipelineError> {
    let encode = "videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency \
                  speed-preset=ultrafast key-int-max=30 bitrate=4000 \
                  option-string=scenecut=0";
    if url.starts_with("rtsp://") || url.starts_with("rtsps://") {
        let protocols = if transport == "udp" { "udp" } else { "tcp" };
        Ok(format!(
            "rtspsrc location={} latency=200 protocols={protocols} ! rtph264depay ! {H264_AU}",
            quote(url)
        ))
    } else if let Some(path) = url.strip_prefix("file://") {
        Ok(format!(
            "filesrc location={} ! parsebin ! {H264_AU} ! clocksync",
            quote(path)
        ))
    } else if let Some(dev) = url.strip_prefix("v4l2://") {
        Ok(format!(
            "v4l2src device={} ! decodebin ! {encode} ! {H264_AU}",
            quote(dev)
        ))
    } else if let Some(rest) = url.strip_prefix("test://") {
        let (pattern, opts) = rest.split_once('?').unwrap_or((rest, ""));
        let pattern = if pattern.is_empty() { "ball" } else { pattern };
        if !pattern
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(PipelineError::Url(url.into()));
        }
        let mjpeg = if opts.split('&').any(|o| o == "mjpeg") {
            " ! jpegenc ! decodebin"
        } else {
            ""
        };
        Ok(format!(
            "videotestsrc is-live=true pattern={pattern} ! \
             video/x-raw,width=1280,height=720,framerate=15/1{mjpeg} ! {encode} ! {H264_AU}"
        ))
    } else {
        Err(PipelineError::Url(url.into()))
    }
}

/// The camera's whole launch description.
pub fn describe(cam: &CameraSettings) -> Result<String, PipelineError> {
    let main = h264_source(&cam.url, &cam.transport)?;
    let encoded = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000 ! \
                   appsink name=encoded sync=false";
    let frames = format!(
        "queue leaky=downstream max-size-buffers=30 max-size-bytes=0 max-size-time=0 ! \
         avdec_h264 ! videorate drop-only=true ! videoscale ! videoconvert ! \
         video/x-raw,format=RGB,width={},height={},framerate={}/1,pixel-aspect-ratio=1/1 ! \
         appsink name=frames max-buffers=2 drop=true sync=false",
        cam.detect_width, cam.detect_height, cam.detect_fps
    );
    Ok(match &cam.substream {
        None => format!("{main} ! tee name=t  t. ! {encoded}  t. ! {frames}"),
        Some(sub) => {
            let sub = h264_source(sub, &cam.transport)?;
            format!("{main} ! {encoded}  {sub} ! {frames}")
        }
    })
}

/// What the encoded branch shares with the camera thread.
#[derive(Default)]
pub struct EncodedShared {
    /// The last caps (needed to start a clip).
    pub caps: Mutex<Option<gst::Caps>>,
    /// Buffers received (for the watchdog and fps).
    pub buffers: AtomicU64,
    /// Their bytes (for the bitrate).
    pub bytes: AtomicU64,
    /// Set when an RTSP camera offers video in another codec (its encoding name).
    pub other_codec: Mutex<Option<String>>,
}

impl EncodedShared {
    /// The encoded stream's width and height, once its caps are known.
    pub fn size(&self) -> Option<(u32, u32)> {
        let caps = self.caps.lock().ok()?;
        let s = caps.as_ref()?.structure(0)?;
        let (w, h) = (s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?);
        Some((w.max(0) as u32, h.max(0) as u32))
    }
}

/// A running pipeline.
pub struct CameraPipeline {
    pipeline: gst::Pipeline,
    frames: gst_app::AppSink,
    /// Shared with the encoded branch's callback.
    pub shared: Arc<EncodedShared>,
}

impl CameraPipeline {
    /// Builds and starts the pipeline; encoded frames go into `ring`.
    pub fn start(
        cam: &CameraSettings,
        ring: Arc<Mutex<GopRing>>,
        shared: Arc<EncodedShared>,
    ) -> Result<Self, PipelineError> {
        gst::init().map_err(|e| PipelineError::Build(e.to_string()))?;
        let desc = describe(cam)?;
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| PipelineError::Build(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| PipelineError::Build("not a pipeline".into()))?;
        let sink = |name: &str| {
            pipeline
                .by_name(name)
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .ok_or_else(|| PipelineError::Build(format!("no appsink {name}")))
        };
        let frames = sink("frames")?;
        let encoded = sink("encoded")?;
        // RTSP: take the H.264 video stream only; note a camera that offers another codec
        // (it would otherwise just stay silent), and leave audio out.
        for e in pipeline.iterate_recurse().into_iter().flatten() {
            if e.factory().is_some_and(|f| f.name() == "rtspsrc") {
                let s = shared.clone();
                e.connect("select-stream", false, move |args| {
                    let caps = args.get(2)?.get::<gst::Caps>().ok()?;
                    let st = caps.structure(0)?;
                    let media = st.get::<&str>("media").unwrap_or("");
                    let enc = st.get::<&str>("encoding-name").unwrap_or("");
                    let keep = media == "video" && enc.eq_ignore_ascii_case("H264");
                    if media == "video" && !keep {
                        *s.other_codec.lock().expect("codec lock") = Some(enc.to_owned());
                    }
                    Some(keep.to_value())
                });
            }
        }
        let s = shared.clone();
        encoded.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buffer) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    s.buffers.fetch_add(1, Ordering::Relaxed);
                    if let Some(caps) = sample.caps() {
                        let mut c = s.caps.lock().expect("caps lock");
                        if c.as_ref().map(|c| c.as_ref()) != Some(caps) {
                            *c = Some(caps.to_owned());
                        }
                    }
                    let Some(pts) = buffer.pts() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Ok(map) = buffer.map_readable() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    s.bytes.fetch_add(map.len() as u64, Ordering::Relaxed);
                    let frame = EncodedFrame {
                        pts_ns: pts.nseconds(),
                        dts_ns: buffer.dts().map_or(pts.nseconds(), |d| d.nseconds()),
                        duration_ns: buffer.duration().map_or(0, |d| d.nseconds()),
                        keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                        data: Arc::from(map.as_slice()),
                    };
                    ring.lock().expect("ring lock").push(frame);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| PipelineError::Build(format!("cannot start: {e}")))?;
        Ok(CameraPipeline {
            pipeline,
            frames,
            shared,
        })
    }

    /// The next detection frame, waiting at most `timeout_ms`.
    pub fn next_frame(&self, timeout_ms: u64) -> Option<RgbFrame> {
        let sample = self
            .frames
            .try_pull_sample(gst::ClockTime::from_mseconds(timeout_ms))?;
        let buffer = sample.buffer()?;
        let map = buffer.map_readable().ok()?;
        Some(RgbFrame {
            pts_ns: buffer.pts()?.nseconds(),
            rgb: map.as_slice().to_vec(),
        })
    }

    /// The first error or end of stream on the bus, if any, without waiting.
    pub fn poll_bus(&self) -> Option<PipelineError> {
        if let Some(codec) = self.shared.other_codec.lock().ok()?.clone()
            && self.shared.buffers.load(Ordering::Relaxed) == 0
        {
            return Some(PipelineError::NotH264(codec));
        }
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                    let text = e.error().to_string();
                    if e.error().matches(gst::ResourceError::NotAuthorized) {
                        return Some(PipelineError::Unauthorized(format!(
                            "unauthorized: the camera refused the user name or password ({text})"
                        )));
                    }
                    if debug.contains("not-linked") || debug.contains("not-negotiated") {
                        return Some(PipelineError::NotH264("another format".into()));
                    }
                    return Some(PipelineError::Stream(text));
                }
                gst::MessageView::Eos(_) => {
                    return Some(PipelineError::Stream("end of stream".into()));
                }
                gst::MessageView::Warning(w) => {
                    tracing::debug!(warning = %w.error(), "pipeline warning");
                }
                _ => {}
            }
        }
        None
    }

    /// Sends end-of-stream, waits for it (at most `timeout_ms`), and stops.
    pub fn stop(self, timeout_ms: u64) {
        self.pipeline.send_event(gst::event::Eos::new());
        if let Some(bus) = self.pipeline.bus() {
            let _ = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(timeout_ms),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for CameraPipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_per_source() {
        let mut cam = CameraSettings {
            id: "c".into(),
            url: "rtsp://10.0.0.2:554/main".into(),
            ..Default::default()
        };
        let d = describe(&cam).unwrap();
        assert!(d.starts_with(
            "rtspsrc location=\"rtsp://10.0.0.2:554/main\" latency=200 protocols=tcp"
        ));
        assert!(d.contains("tee name=t"));
        assert!(d.contains("width=640,height=360,framerate=5/1"));
        cam.transport = "udp".into();
        cam.substream = Some("rtsp://10.0.0.2:554/sub".into());
        let d = describe(&cam).unwrap();
        assert!(d.contains("protocols=udp"));
        assert!(!d.contains("tee"));
        assert_eq!(d.matches("rtspsrc").count(), 2);
        assert!(
            h264_source("v4l2:///dev/video0", "tcp")
                .unwrap()
                .contains("device=\"/dev/video0\" ! decodebin")
        );
        assert!(
            h264_source("test://ball?mjpeg", "tcp")
                .unwrap()
                .contains("jpegenc ! decodebin")
        );
        assert!(
            h264_source("file:///tmp/a \"b\".mp4", "tcp")
                .unwrap()
                .contains("location=\"/tmp/a \\\"b\\\".mp4\"")
        );
        assert!(matches!(
            h264_source("http://x", "tcp"),
            Err(PipelineError::Url(_))
        ));
        assert!(matches!(
            h264_source("test://ball ! fakesink", "tcp"),
            Err(PipelineError::Url(_))
        ));
    }
}
