//! Bad input on a running edge: an unreachable camera, a stream that stops in the middle of
//! an event (and comes back), a stream that is not H.264, corrupt frames, and a missing
//! model. Each shows in `camera list` with a clear state and error, the other cameras carry
//! on, the edge does not crash, and no clip is lost.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use guardian_edge::config::EdgeConfig;
use guardian_edge::store::Store;
use support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn list(data: &Path) -> String {
    ok(Command::new(bin("guardian-edge"))
        .args(["camera", "list", "--data"])
        .arg(data))
}

fn row(data: &Path, id: &str) -> String {
    list(data)
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")))
        .unwrap_or_default()
        .to_owned()
}

/// Shortens every camera's watchdog in edge.toml (the edge applies it live).
fn watchdog(data: &Path, secs: u32) {
    let p = data.join("edge.toml");
    let mut config = EdgeConfig::load(&p).unwrap();
    assert!(!config.cameras.is_empty());
    for cam in &mut config.cameras {
        cam.watchdog_secs = secs;
    }
    config.save(&p).unwrap();
    let reread = EdgeConfig::load(&p).unwrap();
    assert!(reread.cameras.iter().all(|c| c.watchdog_secs == secs));
}

#[test]
fn unreachable_and_stopping_streams_are_reported_and_recovered_without_losing_the_clip() {
    let root = tempfile::tempdir().unwrap();
    let data = installed_edge(root.path());
    let port = free_port();
    let port_s = port.to_string();
    let standin_args = [
        "--port",
        &port_s,
        "--path",
        "/yard",
        "--schedule",
        "empty:3,person:120",
    ];
    let mut standin = StandIn::start_exact(root.path(), &standin_args);
    add_camera(
        &data,
        "gone",
        &format!("rtsp://127.0.0.1:{}/nothing", free_port()),
    );
    add_camera(&data, "yard", &standin.urls[0]);
    watchdog(&data, 3);
    let mut edge = run_edge(&data);
    let (edge_log, standin_log) = (edge.log.clone(), standin.proc.log.clone());
    let logs = [edge_log.as_path(), standin_log.as_path()];

    wait_for("yard streaming", Duration::from_secs(40), &logs, || {
        row(&data, "yard").contains("streaming")
    });
    wait_for("gone reported", Duration::from_secs(40), &logs, || {
        let r = row(&data, "gone");
        (r.contains("stalled") || r.contains("failed")) && r.split_whitespace().count() > 4
    });
    // The person is in view: an event opens (its clip appears) and records for a while.
    wait_for("an event to open", Duration::from_secs(40), &logs, || {
        clips(&data, "yard").len() == 1
    });
    let clip = clips(&data, "yard").remove(0);
    let opened_with = size(&clip);
    wait_for("the clip to grow", Duration::from_secs(20), &logs, || {
        size(&clip) > opened_with
    });
    // The camera goes away in the middle of the event.
    standin.proc.stop();
    wait_for("yard stalled", Duration::from_secs(30), &logs, || {
        row(&data, "yard").contains("stalled")
    });
    let events = Store::open(&data.join("edge.sqlite"))
        .unwrap()
        .events(Some("yard"))
        .unwrap();
    assert_eq!(events.len(), 1, "the interrupted event is kept: {events:?}");
    assert!(!clip.exists(), "the working file is removed once sealed");
    let clip = open_clip(&data, &events[0], root.path());
    let decode = ffmpeg_decode(&clip);
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );

    // It comes back on the same address: streaming again, without restarting the edge.
    standin = StandIn::start_exact(root.path(), &standin_args);
    wait_for(
        "yard streaming again",
        Duration::from_secs(60),
        &[&edge.log, &standin.proc.log],
        || row(&data, "yard").contains("streaming"),
    );
    assert!(
        edge.child.try_wait().unwrap().is_none(),
        "the edge is still running"
    );
    assert!(!edge.log_text().contains("panicked"));
    assert_eq!(edge.stop(), Some(0));
}

#[test]
fn a_stream_that_is_not_h264_corrupt_frames_and_a_missing_model_are_clear() {
    let root = tempfile::tempdir().unwrap();
    let data = installed_edge(root.path());
    // An MJPEG RTSP camera.
    let port = free_port();
    let script = r#"
import sys, gi
gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
s = GstRtspServer.RTSPServer(); s.set_address('127.0.0.1'); s.set_service(sys.argv[1])
f = GstRtspServer.RTSPMediaFactory(); f.set_shared(True)
f.set_launch('( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=10/1,format=I420 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )')
s.get_mount_points().add_factory('/mjpeg', f); s.attach(None)
print('READY', flush=True); GLib.MainLoop().run()
"#;
    let _mjpeg = Proc::spawn(
        Command::new("/usr/bin/python3").args(["-c", script, &port.to_string()]),
        &root.path().join("mjpeg.log"),
    );
    // A recording with bytes flipped in its middle.
    let corrupt = root.path().join("corrupt.mp4");
    let mut bytes = h264_mp4(&corrupt, 300, "ball");
    let n = bytes.len();
    for i in (n / 3..n / 2).step_by(97) {
        bytes[i] ^= 0x5a;
    }
    std::fs::write(&corrupt, bytes).unwrap();
    wait_for(
        "the MJPEG camera to listen",
        Duration::from_secs(30),
        &[&root.path().join("mjpeg.log")],
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    add_camera(&data, "mjpeg", &format!("rtsp://127.0.0.1:{port}/mjpeg"));
    add_camera(&data, "corrupt", &format!("file://{}", corrupt.display()));
    // A test pattern through the USB camera's path (MJPEG decoded, then encoded to H.264).
    add_camera(&data, "test", "test://ball?mjpeg");

    // No model: the cameras still stream, and say why nothing is detected.
    let mut edge = Proc::spawn(
        Command::new(bin("guardian-edge"))
            .args(["run", "--data"])
            .arg(&data)
            .env("GUARDIAN_MODEL", root.path().join("missing/nanodet.xml"))
            .env("GUARDIAN_OPENVINO_LIB", openvino_lib())
            .env("GUARDIAN_LOG", "info"),
        &root.path().join("edge.log"),
    );
    let logs = [edge.log.as_path()];
    wait_for(
        "mjpeg refused as not H.264",
        Duration::from_secs(60),
        &logs,
        || {
            let r = row(&data, "mjpeg");
            r.contains("failed") && r.contains("not H.264")
        },
    );
    wait_for(
        "the test camera streaming",
        Duration::from_secs(60),
        &logs,
        || {
            let r = row(&data, "test");
            r.contains("streaming") && r.contains("detector unavailable")
        },
    );
    wait_for(
        "the corrupt file played",
        Duration::from_secs(60),
        &logs,
        || {
            let r = row(&data, "corrupt");
            r.contains("streaming") || r.contains("end of stream")
        },
    );
    assert!(
        edge.child.try_wait().unwrap().is_none(),
        "the edge is still running"
    );
    assert!(edge.log_text().contains("detector unavailable"));
    assert!(!edge.log_text().contains("panicked"));
    assert_eq!(edge.stop(), Some(0));
}
