//! `make bench-cameras`: the edge's CPU per camera for 1, 4, 8 and 16 stand-in 1080p15
//! cameras recorded with detection at 5 fps, without and with a 640×360 substream for
//! detection, as a table. The stand-in (one process encoding once for all its paths) runs
//! beside; only the edge process's CPU is counted (utime + stime from /proc over a window
//! after a warm-up). The person walks through every 20 s, so motion gating, detection,
//! tracking and clip writing all take part.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const WARMUP: Duration = Duration::from_secs(10);
const WINDOW: Duration = Duration::from_secs(20);

/// CPU seconds used by `pid` so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn edge_toml_add(data: &Path, n: usize, main: &[String], sub: Option<&[String]>) {
    for i in 0..n {
        let mut cmd = Command::new(bin("guardian-edge"));
        cmd.args([
            "camera",
            "add",
            "--id",
            &format!("cam{i}"),
            "--url",
            &main[i],
        ]);
        if let Some(sub) = sub {
            cmd.args(["--substream", &sub[i]]);
        }
        ok(cmd.arg("--data").arg(data));
    }
}

fn run(n: usize, substream: bool) -> (f64, u64, u64) {
    let root = tempfile::tempdir().unwrap();
    let schedule = "empty:14,person:6";
    let count = n.to_string();
    let main = StandIn::start(
        root.path(),
        &[
            "--count",
            &count,
            "--width",
            "1920",
            "--height",
            "1080",
            "--fps",
            "15",
            "--schedule",
            schedule,
            "--loop",
            "--start",
            "launch",
        ],
    );
    let sub = substream.then(|| {
        StandIn::start(
            root.path(),
            &[
                "--count",
                &count,
                "--path",
                "/sub",
                "--width",
                "640",
                "--height",
                "360",
                "--fps",
                "15",
                "--schedule",
                schedule,
                "--loop",
                "--start",
                "launch",
            ],
        )
    });
    let data = installed_edge(root.path());
    edge_toml_add(
        &data,
        n,
        &main.urls,
        sub.as_ref().map(|s| s.urls.as_slice()),
    );
    let mut edge = run_edge(&data);
    let pid = edge.child.id();
    std::thread::sleep(WARMUP);
    let (c0, t0) = (cpu_secs(pid), Instant::now());
    let s0 = stats(&edge.log_text());
    std::thread::sleep(WINDOW);
    let cpu = (cpu_secs(pid) - c0) / t0.elapsed().as_secs_f64();
    let s1 = stats(&edge.log_text());
    let streaming = ok(Command::new(bin("guardian-edge"))
        .args(["camera", "list", "--data"])
        .arg(&data))
    .lines()
    .filter(|l| l.contains("streaming"))
    .count();
    edge.stop();
    assert_eq!(streaming, n, "every camera streaming");
    (cpu, s1.0 - s0.0, s1.1 - s0.1)
}

/// Events opened and recorded so far, from the log.
fn stats(log: &str) -> (u64, u64) {
    (
        log.matches("event opened").count() as u64,
        log.matches("event recorded").count() as u64,
    )
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "edge CPU for N stand-in 1080p15 cameras, detection at 5 fps ({cores} cores; 100% = one core)"
    );
    println!(
        "{:>8} {:>10} {:>12} {:>14} {:>8}",
        "cameras", "substream", "edge CPU", "per camera", "events"
    );
    for n in [1usize, 4, 8, 16] {
        for substream in [false, true] {
            let (cpu, opened, _) = run(n, substream);
            println!(
                "{n:>8} {:>10} {:>11.0}% {:>13.1}% {opened:>8}",
                if substream { "640x360" } else { "no" },
                cpu * 100.0,
                cpu * 100.0 / n as f64
            );
        }
    }
}
