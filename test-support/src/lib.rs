//! What the workspace's system tests and benchmarks share (a dev-dependency only): the release
//! binaries beside the test, processes with their log in a file and stopped when dropped,
//! waiting with the logs in the failure, a metric read from Prometheus text, reproducible
//! incompressible data, free ports, and where `scripts/setup.sh` put the slow things (model,
//! OpenVINO, photos), and [`recall`]: scoring events against a composed scene's ground truth.
//!
//! Each role's own test helpers (a vm, an edge, the camera stand-in) stay in that crate's
//! `tests/support`, on top of these. A role's configuration file is edited through its own
//! types where the test may link them, and otherwise by key path with [`edit_toml`] (never by
//! replacing text).

pub mod recall;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The owner's recipient in tests' packages: edges seal every clip to it.
pub const RECIPIENT: &str = "age1png63l7y86t6utsqc0s5lh2mt97q99k84cfg3mgs9f20cn067s3svhpf46";
/// The identity of [`RECIPIENT`] (made for the tests with `age-keygen`; it guards nothing
/// else), to open what tests' edges seal.
pub const IDENTITY: &str =
    "AGE-SECRET-KEY-1GJM54EGHZJAHHX36DJSHYF6QAU9N4QA3YGCE3FNCM5CXLRV6QP4Q9GG43F";

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
pub fn wait_for(what: &str, timeout: Duration, logs: &[&Path], f: impl FnMut() -> bool) {
    wait_for_every(what, timeout, Duration::from_millis(100), logs, f)
}

/// [`wait_for`], polling every `every` (for a state that lasts only a moment).
pub fn wait_for_every(
    what: &str,
    timeout: Duration,
    every: Duration,
    logs: &[&Path],
    mut f: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(every);
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

    /// SIGTERM, then waits up to `grace` (SIGKILL after); the exit code if it exited within
    /// it (-1 for a signal), `None` if it had to be killed.
    pub fn stop_within(&mut self, grace: Duration) -> Option<i32> {
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
                return Some(status.code().unwrap_or(-1));
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

/// The sum of every sample of metric `name` in Prometheus text (`None` when it has none);
/// `name` may carry labels (`name{result="refused"}`) to read that one series.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue; // another metric sharing the prefix
        }
        let value: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a sample without a value: {line}"));
        *found.get_or_insert(0.0) += value;
    }
    found
}

/// Where [`edit_toml`] refuses an edit.
#[derive(Debug, PartialEq)]
pub enum TomlEditError {
    /// No key at this dotted path (a typo, or a key the file does not write out).
    Missing(String),
    /// The key holds another type of value than the one given.
    WrongType {
        /// The dotted path.
        key: String,
        /// The type in the file.
        found: &'static str,
        /// The type given.
        given: &'static str,
    },
}

impl std::fmt::Display for TomlEditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TomlEditError::Missing(k) => write!(f, "no key {k}"),
            TomlEditError::WrongType { key, found, given } => {
                write!(f, "{key} holds a {found}, not a {given}")
            }
        }
    }
}

/// Sets each dotted key path (`"outbox.batch_size"`) of `table` to its value. Every key must
/// already be there with a value of the same type, so a misspelt or retyped key fails the
/// test instead of being ignored (the files the binaries write hold every key with its
/// default).
pub fn set_toml_keys(
    table: &mut toml::Table,
    edits: &[(&str, toml::Value)],
) -> Result<(), TomlEditError> {
    for (path, value) in edits {
        set_toml_key(table, path, path, value)?;
    }
    Ok(())
}

fn set_toml_key(
    table: &mut toml::Table,
    path: &str,
    rest: &str,
    value: &toml::Value,
) -> Result<(), TomlEditError> {
    let missing = || TomlEditError::Missing(path.to_owned());
    let (part, deeper) = match rest.split_once('.') {
        Some((part, deeper)) => (part, Some(deeper)),
        None => (rest, None),
    };
    let slot = table.get_mut(part).ok_or_else(missing)?;
    match deeper {
        Some(deeper) => set_toml_key(
            slot.as_table_mut().ok_or_else(missing)?,
            path,
            deeper,
            value,
        ),
        None if slot.type_str() != value.type_str() => Err(TomlEditError::WrongType {
            key: path.to_owned(),
            found: slot.type_str(),
            given: value.type_str(),
        }),
        None => {
            *slot = value.clone();
            Ok(())
        }
    }
}

/// Edits the TOML file at `path` by key path with [`set_toml_keys`]; panics when a key is
/// missing or of another type.
pub fn edit_toml(path: &Path, edits: &[(&str, toml::Value)]) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Err(e) = set_toml_keys(&mut table, edits) {
        panic!("editing {}: {e}", path.display());
    }
    std::fs::write(
        path,
        toml::to_string_pretty(&table).expect("a table serializes"),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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

/// The converted NanoDet IR (the default, light detector).
pub fn model_path() -> PathBuf {
    model_path_of("nanodet")
}

/// A converted detector's IR by its `model.json` kind: `nanodet` (NanoDet-m 416, made by
/// `scripts/setup.d/60-model.sh`), `centernet` (CenterNet MobileNetV3 512, made by
/// `61-centernet.sh`) or `movenet` (MoveNet MultiPose 256, people only, made by
/// `62-movenet.sh`). Panics on another name.
pub fn model_path_of(kind: &str) -> PathBuf {
    match kind {
        "nanodet" => cache().join("models/nanodet-m-416/nanodet.xml"),
        "centernet" => cache().join("models/centernet-mbv3-512/centernet.xml"),
        "movenet" => cache().join("models/movenet-multipose-256/movenet.xml"),
        other => panic!("no converted model of kind {other:?} (nanodet, centernet or movenet)"),
    }
}

/// Test photographs.
pub fn photos() -> PathBuf {
    cache().join("photos")
}

/// The repository's root.
pub fn repo() -> PathBuf {
    // `cargo test` says at run time which package's tests run (a crate beside this one);
    // the path compiled in is the fallback. A shared target folder may hold this library
    // built from another clone, whose path is compiled in.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("the package is in the repository")
        .to_path_buf()
}

/// Opens `sealed` (an age file sealed to [`RECIPIENT`]) with the stock `age` tool, as an owner
/// would: `age -d -i identity`. The plaintext.
pub fn age_open(sealed: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let id = dir.path().join("identity.txt");
    std::fs::write(&id, format!("{IDENTITY}\n")).expect("write the identity");
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&id)
        .arg(sealed)
        .stdin(Stdio::null())
        .output()
        .expect("run age");
    assert!(
        out.status.success(),
        "age -d {} failed: {}",
        sealed.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Unix times (s) of the camera stand-in's stdout lines starting with `what`
/// (`PERSON_ENTER`, `PERSON_EXIT`, `ACTOR_ENTER`): their `t=` fields.
pub fn standin_times(stdout: &str, what: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter(|l| l.starts_with(what))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("t="))
                .and_then(|t| t.parse().ok())
        })
        .collect()
}

/// Files under `dir` (recursively) that hold `needle` anywhere: a privacy scan for a run of
/// plaintext.
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    assert!(needle.len() >= 64, "a needle long enough to mean something");
    files_where(dir, |p| {
        std::fs::read(p).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    })
}

/// Files under `dir` (recursively) whose name ends with `suffix`.
pub fn files_named(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    files_where(dir, |p| p.to_string_lossy().ends_with(suffix))
}

/// Files under `dir` (recursively) for which `keep` holds.
fn files_where(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if keep(&p) {
                found.push(p);
            }
        }
    }
    found
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
    fn metrics_sum_every_label_set_of_exactly_that_name() {
        let text = "# HELP guardian_vm_enrollments Enrollment requests by result.\n\
            # TYPE guardian_vm_enrollments counter\n\
            guardian_vm_enrollments_total{result=\"accepted\"} 2\n\
            guardian_vm_enrollments_total{result=\"refused\"} 1\n\
            guardian_vm_events_received_total 0\n\
            guardian_vm_events_received_total_extra 9\n\
            # EOF\n";
        assert_eq!(metric(text, "guardian_vm_enrollments_total"), Some(3.0));
        assert_eq!(metric(text, "guardian_vm_events_received_total"), Some(0.0));
        assert_eq!(metric(text, "guardian_vm_connections_refused_total"), None);
        assert_eq!(
            metric(text, "guardian_vm_enrollments_total{result=\"refused\"}"),
            Some(1.0)
        );
    }

    #[test]
    fn toml_keys_are_set_by_path_and_typos_or_retypes_refused() {
        let mut t: toml::Table = "top = 1\n[outbox]\nbatch_size = 100\nname = \"x\"\n"
            .parse()
            .unwrap();
        set_toml_keys(
            &mut t,
            &[
                ("outbox.batch_size", 5.into()),
                ("top", 2.into()),
                ("outbox.name", "y".into()),
            ],
        )
        .unwrap();
        assert_eq!(t["outbox"]["batch_size"].as_integer(), Some(5));
        assert_eq!(t["top"].as_integer(), Some(2));
        assert_eq!(t["outbox"]["name"].as_str(), Some("y"));
        assert_eq!(
            set_toml_keys(&mut t, &[("outbox.batch_sise", 1.into())]),
            Err(TomlEditError::Missing("outbox.batch_sise".into()))
        );
        assert_eq!(
            set_toml_keys(&mut t, &[("top.inner", 1.into())]),
            Err(TomlEditError::Missing("top.inner".into()))
        );
        assert_eq!(
            set_toml_keys(&mut t, &[("outbox.batch_size", "1".into())]),
            Err(TomlEditError::WrongType {
                key: "outbox.batch_size".into(),
                found: "integer",
                given: "string"
            })
        );
        // A refused edit changed nothing.
        assert_eq!(t["outbox"]["batch_size"].as_integer(), Some(5));
    }

    #[test]
    fn a_proc_stopped_within_its_grace_reports_its_exit_code() {
        let dir = std::env::temp_dir().join(format!("guardian-ts-stop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("trap.log");
        let mut p = Proc::spawn(
            Command::new("sh").args([
                "-c",
                "trap 'exit 3' TERM; echo up; while :; do sleep 0.05; done",
            ]),
            &log,
        );
        wait_for("the trap", Duration::from_secs(5), &[&log], || {
            p.log_text().contains("up")
        });
        assert_eq!(p.stop_within(Duration::from_secs(5)), Some(3));
        // One that ignores SIGTERM is killed after the grace: no exit code.
        let mut q = Proc::spawn(
            Command::new("sh").args(["-c", "trap '' TERM; echo up; while :; do sleep 0.05; done"]),
            &dir.join("deaf.log"),
        );
        wait_for(
            "the second trap",
            Duration::from_secs(5),
            &[&dir.join("deaf.log")],
            || q.log_text().contains("up"),
        );
        assert_eq!(q.stop_within(Duration::from_millis(300)), None);
        std::fs::remove_dir_all(&dir).unwrap();
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
