//! Shared by the edge's integration tests: where the cached model, OpenVINO and photos are
//! (made by `scripts/setup.sh`), the project's binaries, the camera stand-in, and waiting.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

// Each test crate uses a different part of these.
#[allow(unused_imports)]
pub use guardian_test_support::{
    IDENTITY, Proc, RECIPIENT, age_open, benchmark_app, bin, cache, edit_toml, files_holding,
    files_named, h264_mp4, model_path, model_path_of, ok, openvino_lib, photos, repo, wait_for,
};

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
        guardian_test_support::standin_times(&self.proc.log_text(), what)
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
    let recipient = RECIPIENT;
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
    let out = ok(Command::new(bin("guardian-edge"))
        .args(["init", "--package"])
        .arg(&pkg)
        .arg("--data")
        .arg(&data)
        .env_remove("GUARDIAN_MODEL")
        .env_remove("GUARDIAN_OPENVINO_LIB"));
    // Nothing configured: it finds what set-up installed, and says so.
    assert!(
        out.contains(&format!(
            "detector model: {} (from the set-up cache)",
            model_path().display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "OpenVINO: {} (from the set-up cache)",
            openvino_lib().display()
        )),
        "{out}"
    );
    data
}

/// `guardian-edge run` as installed by hand: nothing configured, the model and OpenVINO
/// found in the set-up cache.
pub fn run_edge(data: &Path) -> Proc {
    Proc::spawn(
        Command::new(bin("guardian-edge"))
            .args(["run", "--data"])
            .arg(data)
            .env_remove("GUARDIAN_MODEL")
            .env_remove("GUARDIAN_OPENVINO_LIB")
            .env("GUARDIAN_LOG", "info"),
        &data.with_extension("log"),
    )
}

/// Adds camera `id` at `url` to the edge at `data` (`guardian-edge camera add`).
pub fn add_camera(data: &Path, id: &str, url: &str) {
    ok(Command::new(bin("guardian-edge"))
        .args(["camera", "add", "--id", id, "--url", url, "--data"])
        .arg(data));
}

/// The working files (`work/<event>.work`, encrypted) of camera `id`'s open events.
pub fn clips(data: &Path, id: &str) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("work"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "work"))
        .filter(|p| {
            std::fs::read_to_string(p.with_extension("json"))
                .is_ok_and(|m| m.contains(&format!("\"camera_id\":\"{id}\"")))
        })
        .collect()
}

/// `ffmpeg` decoding `clip` to nothing: its status and messages.
pub fn ffmpeg_decode(clip: &Path) -> std::process::Output {
    Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(clip)
        .args(["-f", "null", "-"])
        .output()
        .unwrap()
}

/// Opens an event's sealed clip with the owner's identity (stock `age`) into `dir`; the MP4.
pub fn open_clip(data: &Path, e: &guardian_edge::store::LocalEvent, dir: &Path) -> PathBuf {
    let sealed = data.join(e.clip_path.as_ref().expect("a clip"));
    let out = dir.join(format!("{}.mp4", e.record.event_id));
    std::fs::write(&out, age_open(&sealed)).unwrap();
    out
}

/// A file's size, 0 when it is not there (yet).
pub fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}
