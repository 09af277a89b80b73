//! The edge's own video devices (`/dev/video*`: USB cameras), listed by GStreamer's device
//! monitor (its V4L2 provider asks each device with the V4L2 ioctls), with the formats each
//! offers ([`profiles_of`], pure: the caps the provider reports, parsed).

use gstreamer as gst;
use gstreamer::prelude::*;
use protocols::messages::discovery::{StreamProfile, StreamRole};

/// One device.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Its path.
    pub path: String,
    /// Its name (the card's).
    pub name: String,
    /// Its formats, largest first.
    pub profiles: Vec<StreamProfile>,
}

/// Every V4L2 capture device, or why they could not be listed.
pub fn devices() -> Result<Vec<Device>, String> {
    gst::init().map_err(|e| e.to_string())?;
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some("Video/Source"), None);
    monitor
        .start()
        .map_err(|e| format!("device monitor: {e}"))?;
    let mut out = Vec::new();
    for d in monitor.devices() {
        let props = d.properties();
        let path = props
            .as_ref()
            .and_then(|p| {
                p.get::<String>("device.path")
                    .or_else(|_| p.get::<String>("api.v4l2.path"))
                    .ok()
            })
            .unwrap_or_default();
        if !path.starts_with("/dev/video") {
            continue; // another provider's (a PipeWire node, libcamera)
        }
        let profiles = d.caps().map(|c| profiles_of(&path, &c)).unwrap_or_default();
        out.push(Device {
            name: d.display_name().to_string(),
            path,
            profiles,
        });
    }
    monitor.stop();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The codec name of a caps structure.
fn codec(s: &gst::StructureRef) -> Option<String> {
    match s.name().as_str() {
        "image/jpeg" => Some("MJPG".into()),
        "video/x-h264" => Some("H264".into()),
        "video/x-h265" => Some("H265".into()),
        "video/x-raw" => s.get::<&str>("format").ok().map(str::to_owned),
        _ => None,
    }
}

/// The highest frame rate a structure offers, thousandths.
fn max_fps_milli(s: &gst::StructureRef) -> Option<u32> {
    let milli = |f: gst::Fraction| {
        (f.denom() > 0).then(|| {
            (i64::from(f.numer()) * 1000 / i64::from(f.denom())).clamp(0, 1_000_000) as u32
        })
    };
    if let Ok(f) = s.get::<gst::Fraction>("framerate") {
        return milli(f);
    }
    if let Ok(list) = s.get::<gst::List>("framerate") {
        return list
            .iter()
            .filter_map(|v| v.get::<gst::Fraction>().ok())
            .filter_map(milli)
            .max();
    }
    if let Ok(range) = s.get::<gst::FractionRange>("framerate") {
        return milli(range.max());
    }
    None
}

/// The formats in a device's caps: one per codec and fixed size, largest first; the
/// largest is the main stream, the next size the substream.
pub fn profiles_of(path: &str, caps: &gst::CapsRef) -> Vec<StreamProfile> {
    let mut out: Vec<StreamProfile> = Vec::new();
    for s in caps.iter() {
        let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) else {
            continue; // a range of sizes: nothing fixed to offer
        };
        let Some(codec) = codec(s) else { continue };
        let (w, h) = (w.max(0) as u32, h.max(0) as u32);
        if out.iter().any(|p| {
            p.codec.as_deref() == Some(codec.as_str()) && p.width == Some(w) && p.height == Some(h)
        }) {
            continue;
        }
        out.push(StreamProfile {
            token: format!("{codec} {w}x{h}"),
            name: format!("{codec} {w}x{h}"),
            role: StreamRole::Other,
            url: Some(format!("v4l2://{path}")),
            codec: Some(codec),
            width: Some(w),
            height: Some(h),
            fps_milli: max_fps_milli(s),
        });
    }
    super::assign_roles(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn a_usb_camera_s_caps() {
        gst::init().unwrap();
        // What the V4L2 provider reports for a common UVC camera: MJPEG at three sizes,
        // YUY2 at two, a frame-rate list and a fixed rate, and a structure with a size range.
        let caps = gst::Caps::from_str(
            "image/jpeg, width=(int)1920, height=(int)1080, framerate=(fraction){ 30/1, 15/1 }; \
             image/jpeg, width=(int)1280, height=(int)720, framerate=(fraction)30/1; \
             image/jpeg, width=(int)640, height=(int)480, framerate=(fraction)30/1; \
             video/x-raw, format=(string)YUY2, width=(int)640, height=(int)480, framerate=(fraction)30/1; \
             video/x-raw, format=(string)YUY2, width=(int)1920, height=(int)1080, framerate=(fraction)5/1; \
             video/x-raw, format=(string)YUY2, width=(int)[ 16, 4096 ], height=(int)[ 16, 2160 ]",
        )
        .unwrap();
        let p = profiles_of("/dev/video0", &caps);
        assert_eq!(p.len(), 5);
        assert_eq!(p[0].role, StreamRole::Main);
        assert_eq!((p[0].width, p[0].height), (Some(1920), Some(1080)));
        assert_eq!(
            p[0].codec.as_deref(),
            Some("MJPG"),
            "the faster of the two 1080p formats"
        );
        assert_eq!(p[0].fps_milli, Some(30_000));
        assert_eq!(p[0].url.as_deref(), Some("v4l2:///dev/video0"));
        let sub = p.iter().find(|x| x.role == StreamRole::Sub).unwrap();
        assert_eq!((sub.width, sub.height), (Some(1280), Some(720)));
        assert!(
            p.iter()
                .any(|x| x.codec.as_deref() == Some("YUY2") && x.fps_milli == Some(5_000))
        );
        assert!(profiles_of("/dev/video1", &gst::Caps::new_empty()).is_empty());
    }
}
