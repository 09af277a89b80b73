//! SIGTERM to `guardian-edge run` in the middle of an event, as systemd stops it: the edge
//! exits within 5 s, the open event's clip is finished (a playable MP4 with its index
//! written, its duration readable), and the event's rows are kept: the event, its record in
//! the event outbox and its sealed copy in the archive outbox (no vm runs, so nothing was
//! sent). Waits are on state: the clip file appearing and growing, the process exiting.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use guardian_edge::store::Store;
use guardian_sqlite::rusqlite::{Connection, OpenFlags};
use support::*;

/// How soon the edge must exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A stand-in camera `door` with a person in view from 3 s on for 2 minutes, added to the
/// edge at `data`.
fn door_camera(root: &std::path::Path, data: &std::path::Path) -> StandIn {
    let standin = StandIn::start(
        root,
        &[
            "--path",
            "/door",
            "--schedule",
            "empty:3,person:120",
            "--gop",
            "30",
        ],
    );
    add_camera(data, "door", &standin.urls[0]);
    standin
}

fn count(db: &Connection, sql: &str, id: &str) -> i64 {
    db.query_row(sql, [id], |r| r.get(0)).unwrap()
}

#[test]
fn sigterm_during_an_event_exits_within_5_s_with_its_clip_finished_and_its_rows_kept() {
    let root = tempfile::tempdir().unwrap();
    let data = installed_edge(root.path());
    let standin = door_camera(root.path(), &data);
    let mut edge = run_edge(&data);
    let (edge_log, standin_log) = (edge.log.clone(), standin.proc.log.clone());
    let logs = [edge_log.as_path(), standin_log.as_path()];
    let db_path = data.join("edge.sqlite");

    // An event is open: its clip is being written and it has no row yet.
    wait_for("an event to open", Duration::from_secs(60), &logs, || {
        clips(&data, "door").len() == 1
    });
    let clip = clips(&data, "door").remove(0);
    let opened_with = size(&clip);
    wait_for("the clip to grow", Duration::from_secs(20), &logs, || {
        size(&clip) > opened_with
    });
    {
        let db = Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let rows: i64 = db
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "the event is still open");
    }

    let sent = Instant::now();
    ok(Command::new("kill").args(["-TERM", &edge.child.id().to_string()]));
    wait_for("the edge to exit after SIGTERM", STOP_WITHIN, &logs, || {
        edge.exited().is_some()
    });
    let took = sent.elapsed();
    println!("the edge stopped {took:?} after SIGTERM");
    assert_eq!(edge.exited(), Some(0), "a clean exit: {}", edge.log_text());
    assert!(took < STOP_WITHIN, "stopped in {took:?}");

    // The event was recorded, sealed; its working file is gone.
    assert!(!clip.exists(), "the working file is removed once sealed");
    let event = Store::open(&db_path)
        .unwrap()
        .events(Some("door"))
        .unwrap()
        .remove(0);
    let clip = open_clip(&data, &event, root.path());
    // The clip is a finished MP4: its index is there, so its duration reads and it decodes.
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&clip)
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let duration: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("no duration ({e}): the MP4 has no index"));
    assert!(duration >= 1.0, "a clip of {duration} s");
    let decode = ffmpeg_decode(&clip);
    assert!(
        decode.status.success(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );

    // The event and its outbox rows (read-only: the edge is gone, nothing changes them).
    let db = Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (event_id, clip_path): (String, String) = db
        .query_row("SELECT event_id, clip_path FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        Some(clip_path),
        event.clip_path,
        "the row names the sealed clip"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM event_outbox WHERE event_id = ?1",
            &event_id
        ),
        1,
        "the event's record waits in the outbox"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM archive_outbox WHERE event_id = ?1",
            &event_id
        ),
        1,
        "its sealed copy waits for the archive"
    );
    assert!(!edge.log_text().contains("panicked"));
}

/// `kill -9` of the edge in the middle of an event: nothing closes the event, so its
/// encrypted working file and key stay. At the next start the file is sealed up to its last
/// complete fragment, the event is recorded with `truncated: true`, the clip plays, and no
/// working file, key or plaintext is left.
#[test]
fn kill_9_mid_event_is_recovered_at_the_next_start_as_a_truncated_playable_clip() {
    let root = tempfile::tempdir().unwrap();
    let data = installed_edge(root.path());
    let keys = root.path().join("keys");
    edit_toml(
        &data.join("edge.toml"),
        &[("storage.key_dir", toml::Value::from(keys.to_str().unwrap()))],
    );
    let mut standin = door_camera(root.path(), &data);
    let mut edge = run_edge(&data);
    let logs = [edge.log.clone(), standin.proc.log.clone()];
    let logs = [logs[0].as_path(), logs[1].as_path()];
    wait_for("an event to open", Duration::from_secs(60), &logs, || {
        clips(&data, "door").len() == 1
    });
    let work = clips(&data, "door").remove(0);
    // Several fragments (1 s each) reach the file.
    wait_for("a few fragments", Duration::from_secs(30), &logs, || {
        size(&work) > 1_000_000
    });
    ok(Command::new("kill").args(["-KILL", &edge.child.id().to_string()]));
    wait_for("the edge to die", Duration::from_secs(5), &logs, || {
        edge.exited().is_some()
    });
    let event_id = work.file_stem().unwrap().to_string_lossy().into_owned();
    assert!(
        keys.join(format!("{event_id}.key")).exists(),
        "the key is kept in /run"
    );
    assert!(
        Store::open(&data.join("edge.sqlite"))
            .unwrap()
            .events(None)
            .unwrap()
            .is_empty()
    );

    // The next start recovers it before any camera runs.
    // (The camera is gone meanwhile, so no new event opens.)
    standin.proc.stop();
    let mut again = run_edge(&data);
    let again_log = again.log.clone();
    wait_for(
        "the event recovered",
        Duration::from_secs(30),
        &[again_log.as_path()],
        || {
            Store::open(&data.join("edge.sqlite"))
                .unwrap()
                .events(None)
                .unwrap()
                .len()
                == 1
        },
    );
    assert_eq!(again.stop(), Some(0));
    let event = Store::open(&data.join("edge.sqlite"))
        .unwrap()
        .events(None)
        .unwrap()
        .remove(0);
    assert_eq!(event.record.event_id, event_id);
    assert!(event.record.truncated, "{event:?}");
    let manifest =
        protocols::manifest::Manifest::from_json(event.manifest_json.as_ref().unwrap()).unwrap();
    assert!(manifest.truncated);
    let clip = open_clip(&data, &event, root.path());
    let decode = ffmpeg_decode(&clip);
    assert!(
        decode.status.success(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );
    let probe = ok(Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&clip));
    let frames: u64 = probe.trim().parse().unwrap();
    assert!(frames >= 30, "{frames} frames recovered");
    assert_eq!(
        files_named(&data, ".work"),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(files_named(&data, ".mp4"), Vec::<std::path::PathBuf>::new());
    assert!(
        !keys.join(format!("{event_id}.key")).exists(),
        "the key is gone"
    );
    let plain = std::fs::read(&clip).unwrap();
    let middle = &plain[plain.len() / 2..plain.len() / 2 + 4096];
    assert_eq!(
        files_holding(&data, middle),
        Vec::<std::path::PathBuf>::new()
    );
}
