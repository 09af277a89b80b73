//! What the workspace's system tests and benchmarks share (a dev-dependency only): the release
//! binaries beside the test, processes with their log in a file and stopped when dropped,
//! waiting with the logs in the failure, reproducible incompressible data, free ports, and
//! where `scripts/setup.sh` put the slow things (model, OpenVINO, photos).
//!
//! Each role's own test helpers (a vm, an edge, the camera stand-in) stay in that crate's
//! `tests/support`, on top of these.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A recipient for packages in tests that never decrypt (the key behind it is not needed).
pub const RECIPIENT: &str = "age1ydtd594d737rjz4ezm8ckwzrkv7n8qge5xuh4zj8taxdvhl4sssq2upmtd";

/// `len` pseudo-random bytes (xorshift32 from `seed`): incompressible, reproducible, and easy
/// to search for.
pub fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A binary of the workspace, built beside the running test or benchmark
/// (`target/<profile>/deps/<test>` → `target/<profile>/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("the test's own path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is not built (run `cargo build --release --workspace --bins`)",
        p.display()
    );
    p
}

/// Writes a real H.264 MP4 to `out` with GStreamer (installed by `scripts/setup.sh`):
/// `frames` frames of videotestsrc `pattern` at 640x360, 15 fps, a keyframe every 2 s. Its
/// bytes.
pub fn h264_mp4(out: &Path, frames: u32, pattern: &str) -> Vec<u8> {
    ok(Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={frames}"),
            &format!("pattern={pattern}"),
            "!",
            "video/x-raw,width=640,height=360,framerate=15/1,format=I420",
            "!",
            "x264enc",
            "key-int-max=30",
            "speed-preset=ultrafast",
            "!",
            "mp4mux",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", out.display())));
    std::fs::read(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()))
}

/// A port free for both TCP and UDP on 127.0.0.1.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("a local address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// Runs a command that must succeed; its stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Polls `f` every 100 ms until it holds; after `timeout` panics with `what` and the last
/// lines of `logs`.
pub fn wait_for(what: &str, timeout: Duration, logs: &[&Path], mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut text = String::new();
    for l in logs {
        let log = std::fs::read_to_string(l).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        text.push_str(&format!("\n--- {} (last lines)\n", l.display()));
        for line in tail.into_iter().rev() {
            text.push_str(line);
            text.push('\n');
        }
    }
    panic!("timed out after {timeout:?} waiting for {what}{text}");
}

/// How long [`Proc::stop`] waits after SIGTERM (an edge finishes its open clips).
pub const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long dropping a running [`Proc`] waits after SIGTERM.
pub const DROP_GRACE: Duration = Duration::from_secs(10);

/// A child process with stdout and stderr appended to its log file; stopped (SIGTERM, then
/// SIGKILL) when dropped.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Its log.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` (with `GUARDIAN_LOG=info,libp2p=warn` unless it sets its own) with its
    /// output appended to `log`.
    pub fn spawn(cmd: &mut Command, log: &Path) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        if !cmd.get_envs().any(|(k, _)| k == "GUARDIAN_LOG") {
            cmd.env("GUARDIAN_LOG", "info,libp2p=warn");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    /// SIGTERM, then waits up to [`STOP_GRACE`] (SIGKILL after); the exit code if it exited.
    pub fn stop(&mut self) -> Option<i32> {
        self.stop_within(STOP_GRACE)
    }

    fn stop_within(&mut self, grace: Duration) -> Option<i32> {
        if let Some(code) = self.exited() {
            return Some(code);
        }
        let _ = Command::new("kill")
            .stderr(Stdio::null())
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        None
    }

    /// SIGKILL, as a power cut would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit code, if it has exited (-1 for a signal).
    pub fn exited(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop_within(DROP_GRACE);
    }
}

/// The fixed cache folder of slow things (`$GUARDIAN_CACHE`, default
/// `/var/cache/private-ai-guardian`).
pub fn cache() -> PathBuf {
    std::env::var_os("GUARDIAN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/private-ai-guardian"))
}

/// A `KEY=value` line of `$GUARDIAN_CACHE/openvino.env` (written by `scripts/setup.sh`).
pub fn openvino_env(key: &str) -> String {
    let path = cache().join("openvino.env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()))
        .to_owned()
}

/// OpenVINO's C library from the wheel.
pub fn openvino_lib() -> PathBuf {
    PathBuf::from(openvino_env("OPENVINO_LIB"))
}

/// OpenVINO's benchmark_app.
pub fn benchmark_app() -> PathBuf {
    PathBuf::from(openvino_env("OPENVINO_BENCHMARK_APP"))
}

/// The converted NanoDet IR.
pub fn model_path() -> PathBuf {
    cache().join("models/nanodet-m-416/nanodet.xml")
}

/// Test photographs.
pub fn photos() -> PathBuf {
    cache().join("photos")
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support/ is in the repository")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_random_is_reproducible_and_seeded() {
        let a = pseudo_random(4096, 7);
        assert_eq!(a, pseudo_random(4096, 7));
        assert_ne!(a, pseudo_random(4096, 8));
        // Every byte value shows up: no short cycle.
        let mut seen = [false; 256];
        a.iter().for_each(|b| seen[*b as usize] = true);
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn a_dropped_proc_is_stopped_and_its_output_logged() {
        let dir = std::env::temp_dir().join(format!("guardian-ts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("sleep.log");
        let mut p = Proc::spawn(
            Command::new("sh").args(["-c", "echo up; exec sleep 60"]),
            &log,
        );
        let pid = p.child.id();
        wait_for("the echo", Duration::from_secs(5), &[&log], || {
            p.log_text().contains("up")
        });
        assert_eq!(p.exited(), None);
        drop(p);
        // SIGTERM ended it and it was reaped: no /proc entry left.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
