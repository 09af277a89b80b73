//! SIGTERM to `guardian-edge run` in the middle of an event, as systemd stops it: the edge
//! exits within 5 s, the open event's clip is finished (a playable MP4 with its index
//! written, its duration readable), and the event's rows are kept: the event, its record in
//! the event outbox and its sealed copy in the archive outbox (no vm runs, so nothing was
//! sent). Waits are on state: the clip file appearing and growing, the process exiting.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use guardian_sqlite::rusqlite::{Connection, OpenFlags};
use support::*;

/// How soon the edge must exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(5);

fn count(db: &Connection, sql: &str, id: &str) -> i64 {
    db.query_row(sql, [id], |r| r.get(0)).unwrap()
}

#[test]
fn sigterm_during_an_event_exits_within_5_s_with_its_clip_finished_and_its_rows_kept() {
    let root = tempfile::tempdir().unwrap();
    let data = installed_edge(root.path());
    let standin = StandIn::start(
        root.path(),
        &[
            "--path",
            "/door",
            "--schedule",
            "empty:3,person:120",
            "--gop",
            "30",
        ],
    );
    add_camera(&data, "door", &standin.urls[0]);
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
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&clip)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
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
    assert_eq!(data.join(&clip_path), clip, "the row names the clip");
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
