//! Shared by the edge's integration tests: where the cached model, OpenVINO and photos are
//! (made by `scripts/setup.sh`), the project's binaries, the camera stand-in, and waiting.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The fixed cache folder of slow things.
pub fn cache() -> PathBuf {
    PathBuf::from(
        std::env::var("GUARDIAN_CACHE").unwrap_or_else(|_| "/var/cache/private-ai-guardian".into()),
    )
}

/// `KEY=value` lines of `$GUARDIAN_CACHE/openvino.env`.
fn openvino_env(key: &str) -> String {
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

/// The repository.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A binary of the workspace, built by `cargo test` beside the test.
pub fn bin(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(p.exists(), "{} is not built", p.display());
    p
}

/// Runs a command that must succeed; its stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `f` every 200 ms until it holds or `timeout` passes (then panics with the logs).
pub fn wait_for(what: &str, timeout: Duration, logs: &[&Path], mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut text = String::new();
    for l in logs {
        let log = std::fs::read_to_string(l).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        text.push_str(&format!("--- {} (last 40 lines)\n", l.display()));
        for line in tail.into_iter().rev() {
            text.push_str(line);
            text.push('\n');
        }
    }
    panic!("timed out after {timeout:?} waiting for {what}\n{text}");
}

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

impl Proc {
    /// Spawns with stdout and stderr to `log`.
    pub fn spawn(cmd: &mut Command, log: &Path) -> Proc {
        let f = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    /// SIGTERM and wait (at most 30 s); the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        signal(self.child.id(), "-TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        self.child.wait().ok().and_then(|s| s.code())
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "-TERM");
            std::thread::sleep(Duration::from_millis(500));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The camera stand-in (`edge/tools/camera-standin.py`): an RTSP server with a person
/// walking through. Its stdout lines (READY, PERSON_ENTER, ...) go to `log`.
pub struct StandIn {
    pub proc: Proc,
    /// The URLs it serves.
    pub urls: Vec<String>,
}

impl StandIn {
    /// On a free port.
    pub fn start(dir: &Path, args: &[&str]) -> StandIn {
        let mut all = vec!["--port", "0"];
        all.extend_from_slice(args);
        Self::start_exact(dir, &all)
    }

    /// With exactly these arguments (give `--port`).
    pub fn start_exact(dir: &Path, args: &[&str]) -> StandIn {
        let log = dir.join(format!(
            "standin-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        ));
        let proc = Proc::spawn(
            Command::new("/usr/bin/python3")
                .arg(repo().join("edge/tools/camera-standin.py"))
                .args(args),
            &log,
        );
        let mut urls = Vec::new();
        wait_for(
            "the stand-in to serve",
            Duration::from_secs(30),
            &[&log],
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if let Some(line) = text.lines().find(|l| l.starts_with("READY ")) {
                    urls = line
                        .split_whitespace()
                        .skip(1)
                        .filter(|u| u.starts_with("rtsp://"))
                        .map(str::to_owned)
                        .collect();
                    true
                } else {
                    false
                }
            },
        );
        StandIn { proc, urls }
    }

    /// Unix times (s) of its `PERSON_ENTER` / `PERSON_EXIT` lines.
    pub fn transitions(&self, what: &str) -> Vec<f64> {
        let f = std::fs::File::open(&self.proc.log).unwrap();
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.starts_with(what))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("t="))
                    .and_then(|t| t.parse().ok())
            })
            .collect()
    }
}

/// An installed edge (the package from a vm that need not run: cameras record offline).
pub fn installed_edge(root: &Path) -> PathBuf {
    let vm = root.join("vm");
    ok(Command::new(bin("guardian-vm"))
        .args(["init", "--fqdn", "127.0.0.1", "--data"])
        .arg(&vm));
    let pkg = root.join("edge.tar");
    // Any X25519 recipient: these tests never decrypt.
    let recipient = "age1ydtd594d737rjz4ezm8ckwzrkv7n8qge5xuh4zj8taxdvhl4sssq2upmtd";
    ok(Command::new(bin("guardian-vm"))
        .args([
            "package",
            "edge",
            "--name",
            "home",
            "--recipient",
            recipient,
            "--data",
        ])
        .arg(&vm)
        .arg("--out")
        .arg(&pkg));
    let data = root.join("edge");
    ok(Command::new(bin("guardian-edge"))
        .args(["init", "--package"])
        .arg(&pkg)
        .arg("--data")
        .arg(&data));
    data
}

/// `guardian-edge run` with the cached model and OpenVINO.
pub fn run_edge(data: &Path) -> Proc {
    Proc::spawn(
        Command::new(bin("guardian-edge"))
            .args(["run", "--data"])
            .arg(data)
            .env("GUARDIAN_MODEL", model_path())
            .env("GUARDIAN_OPENVINO_LIB", openvino_lib())
            .env("GUARDIAN_LOG", "info"),
        &data.with_extension("log"),
    )
}
