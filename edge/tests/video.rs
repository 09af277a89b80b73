//! An edge run against the camera stand-in, as a user would set it up: `camera add` with the
//! defaults (person and vehicles, 5 fps, 5 s pre- and post-roll) on a running edge; a real
//! person (a photograph from a wheel) crosses the scene twice. Asserted: one event per
//! appearance; each clip lasts appearance + pre-roll + post-roll within one GOP, starts on a
//! keyframe and decodes without an error (ffprobe/ffmpeg); the snapshot holds the person; the
//! event is sealed into the archive outbox; `camera list` shows the camera streaming.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use guardian_edge::store::Store;
use support::*;

fn ffprobe(args: &[&str], file: &Path) -> String {
    ok(Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file))
}

#[test]
fn a_person_walking_through_twice_makes_two_events_with_playable_clips() {
    let root = tempfile::tempdir().unwrap();
    let data = installed_edge(root.path());
    let mut edge = run_edge(&data);
    let standin = StandIn::start(
        root.path(),
        &[
            "--path",
            "/porch",
            "--schedule",
            "empty:8,person:4,empty:14,person:4,empty:16",
            "--gop",
            "30",
        ],
    );
    add_camera(&data, "porch", &standin.urls[0]);

    let logs = [edge.log.as_path(), standin.proc.log.as_path()];
    let events = || {
        Store::open(&data.join("edge.sqlite"))
            .and_then(|s| s.events(Some("porch")))
            .unwrap_or_default()
    };
    wait_for(
        "the camera streaming",
        Duration::from_secs(30),
        &logs,
        || {
            ok(Command::new(bin("guardian-edge"))
                .args(["camera", "list", "--data"])
                .arg(&data))
            .lines()
            .any(|l| l.starts_with("porch") && l.contains("streaming"))
        },
    );
    wait_for("two events", Duration::from_secs(90), &logs, || {
        events().len() >= 2
    });
    // Nothing more happens in the empty stretch after the second appearance.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(edge.stop(), Some(0), "{}", edge.log_text());
    let events = events();
    assert_eq!(events.len(), 2, "one event per appearance: {events:?}");

    let enters = standin.transitions("PERSON_ENTER");
    assert_eq!(enters.len(), 2);
    for (e, enter) in events.iter().zip(&enters) {
        assert_eq!(e.record.category.as_str(), "person");
        assert!(e.record.score_milli >= 400, "{e:?}");
        // Opened within a second or so of the person entering the scene.
        let started = e.record.started_at_ms as f64 / 1000.0;
        assert!(
            (started - enter).abs() < 2.0,
            "started {started}, entered {enter}"
        );

        // The edge keeps the clip sealed: stock `age` opens it with the owner's identity.
        let sealed = data.join(e.clip_path.as_ref().unwrap());
        assert!(
            sealed.to_string_lossy().ends_with("clip.mp4.age"),
            "{sealed:?}"
        );
        let plain = age_open(&sealed);
        let clip = root.path().join(format!("{}.mp4", e.record.event_id));
        std::fs::write(&clip, &plain).unwrap();
        // No plaintext of it anywhere in the data directory.
        let middle = &plain[plain.len() / 2..plain.len() / 2 + 4096];
        assert_eq!(
            files_holding(&data, middle),
            Vec::<std::path::PathBuf>::new()
        );
        let duration: f64 = ffprobe(
            &["-show_entries", "format=duration", "-of", "csv=p=0"],
            &clip,
        )
        .trim()
        .parse()
        .unwrap();
        // Appearance 4 s + pre-roll 5 s + post-roll 5 s, within one GOP (2 s) and the 5 fps
        // detection's granularity.
        assert!((duration - 14.0).abs() <= 2.5, "clip of {duration} s");
        let first = ffprobe(
            &[
                "-select_streams",
                "v",
                "-show_entries",
                "frame=key_frame",
                "-read_intervals",
                "%+#1",
                "-of",
                "csv=p=0",
            ],
            &clip,
        );
        assert_eq!(first.trim(), "1", "the clip starts on a keyframe");
        let decode = ffmpeg_decode(&clip);
        assert!(decode.status.success());
        assert!(
            decode.stderr.is_empty(),
            "decode errors: {}",
            String::from_utf8_lossy(&decode.stderr)
        );

        // The snapshot holds the person.
        let snap = root.path().join(format!("{}.jpg", e.record.event_id));
        std::fs::write(
            &snap,
            age_open(&data.join(e.snapshot_path.as_ref().unwrap())),
        )
        .unwrap();
        let out = ok(Command::new(bin("guardian-edge"))
            .arg("detect")
            .arg(&snap)
            .env("GUARDIAN_MODEL", model_path())
            .env("GUARDIAN_OPENVINO_LIB", openvino_lib()));
        assert!(out.contains("\"label\":\"person\""), "{out}");

        // Sealed once, with a manifest the archive sends as is (the default policy archives
        // every event), and a thumbnail.
        let folder = data.join(e.objects_dir.as_ref().unwrap());
        assert!(folder.join("manifest.json").exists());
        assert!(folder.join("thumbnail.jpg.age").exists());
        assert!(e.record.clip_cid.is_some() && !e.record.truncated);
    }
    // After the events no plaintext clip or working file remains on the edge.
    assert_eq!(files_named(&data, ".mp4"), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        files_named(&data, ".work"),
        Vec::<std::path::PathBuf>::new()
    );
}
