//! Real processes for system tests: a vm and edges started from the release binaries on
//! loopback, each in its own data directory with its log in a file, stopped (SIGTERM, then
//! SIGKILL) when dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

// Each test crate uses a different part of these.
#[allow(unused_imports)]
pub use guardian_test_support::{
    Proc, RECIPIENT, bin, free_port, h264_mp4, ok as run_ok, pseudo_random, wait_for,
};

/// A vm in a data directory.
pub struct Vm {
    pub tenant_id: String,
    pub dir: PathBuf,
    pub port: u16,
    pub http: String,
    pub token: String,
    pub peer_id: String,
    pub proc: Option<Proc>,
}

impl Vm {
    /// `guardian-vm init` on free loopback ports.
    pub fn init(root: &Path, name: &str) -> Vm {
        let dir = root.join(name);
        let port = free_port();
        let http_port = free_port();
        let out = run_ok(
            Command::new(bin("guardian-vm"))
                .args(["init", "--fqdn", "127.0.0.1", "--data"])
                .arg(&dir)
                .args(["--listen", &format!("/ip4/127.0.0.1/udp/{port}/quic-v1")])
                .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")])
                .args(["--http-listen", &format!("127.0.0.1:{http_port}")]),
        );
        let field = |label: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(label))
                .unwrap_or_else(|| panic!("no {label} in {out}"))
                .trim()
                .to_owned()
        };
        Vm {
            tenant_id: field("tenant id:"),
            token: field("owner API token:"),
            peer_id: field("vm peer id:"),
            http: format!("http://127.0.0.1:{http_port}"),
            dir,
            port,
            proc: None,
        }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    /// Starts `guardian-vm run` and waits for its API.
    pub fn start(&mut self) {
        let p = Proc::spawn(
            Command::new(bin("guardian-vm"))
                .arg("run")
                .arg("--data")
                .arg(&self.dir),
            &self.log(),
        );
        self.proc = Some(p);
        let url = format!("{}/metrics", self.http);
        let log = self.log();
        wait_for(
            "the vm's HTTP API",
            Duration::from_secs(20),
            &[&log],
            || ureq::get(&url).call().is_ok(),
        );
    }

    pub fn stop(&mut self) -> Option<i32> {
        self.proc.take().and_then(|mut p| p.stop())
    }

    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// `guardian-vm package edge` for the placeholder recipient.
    pub fn package(&self, name: &str, valid_secs: Option<u64>) -> PathBuf {
        self.package_for(name, RECIPIENT, valid_secs)
    }

    /// `guardian-vm package edge` sealing to `recipient`.
    pub fn package_for(&self, name: &str, recipient: &str, valid_secs: Option<u64>) -> PathBuf {
        let out = self.dir.with_file_name(format!("{name}.tar"));
        let mut cmd = Command::new(bin("guardian-vm"));
        cmd.args(["package", "edge", "--data"])
            .arg(&self.dir)
            .args(["--name", name, "--recipient", recipient, "--out"])
            .arg(&out);
        if let Some(s) = valid_secs {
            cmd.args(["--valid-secs", &s.to_string()]);
        }
        run_ok(&mut cmd);
        out
    }

    /// GET with the owner token: (status, JSON body).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.get_with(path, Some(&self.token))
    }

    pub fn get_with(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = ureq::get(&format!("{}{path}", self.http));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        match req.call() {
            Ok(r) => (r.status(), r.into_json().unwrap_or(serde_json::Value::Null)),
            Err(ureq::Error::Status(code, r)) => {
                (code, r.into_json().unwrap_or(serde_json::Value::Null))
            }
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// Event ids the vm holds, in order.
    pub fn event_ids(&self) -> Vec<String> {
        let (status, body) = self.get("/api/v1/events?limit=1000");
        assert_eq!(status, 200, "{body}");
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn devices(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.get("/api/v1/devices");
        assert_eq!(status, 200, "{body}");
        body["devices"].as_array().unwrap().clone()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An edge in a data directory.
pub struct Edge {
    pub dir: PathBuf,
    pub proc: Option<Proc>,
}

impl Edge {
    /// `guardian-edge init --package`.
    pub fn install(package: &Path, dir: &Path) -> Edge {
        run_ok(
            Command::new(bin("guardian-edge"))
                .arg("init")
                .arg("--package")
                .arg(package)
                .arg("--data")
                .arg(dir),
        );
        Edge {
            dir: dir.to_path_buf(),
            proc: None,
        }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    pub fn start(&mut self) {
        self.proc = Some(Proc::spawn(
            Command::new(bin("guardian-edge"))
                .arg("run")
                .arg("--data")
                .arg(&self.dir),
            &self.log(),
        ));
    }

    pub fn stop(&mut self) -> Option<i32> {
        self.proc.take().and_then(|mut p| p.stop())
    }

    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// `guardian-edge emit-test-event`: the event id.
    pub fn emit(&self, camera: &str) -> String {
        run_ok(
            Command::new(bin("guardian-edge"))
                .args(["emit-test-event", "--camera", camera, "--data"])
                .arg(&self.dir),
        )
        .trim()
        .to_owned()
    }

    /// The package as installed (JSON), to edit for tests that forge things.
    pub fn package_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("package.json")).unwrap()).unwrap()
    }

    pub fn set_package_json(&self, v: &serde_json::Value) {
        std::fs::write(
            self.dir.join("package.json"),
            serde_json::to_vec_pretty(v).unwrap(),
        )
        .unwrap();
    }
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(cmd: &mut Command) -> String {
    run_ok(cmd)
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The owner's keys for a tenant, from a secret file.
pub struct Owner {
    pub secret_file: PathBuf,
    pub recipient: String,
    pub identity_file: PathBuf,
}

/// `guardian keys init` and `keys identity` for `tenant` with `secret`, files under `root`.
pub fn owner(root: &Path, tenant: &str, secret: &str) -> Owner {
    let secret_file = root.join("owner.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let out = ok(Command::new(bin("guardian"))
        .args(["keys", "init", "--tenant", tenant, "--secret-file"])
        .arg(&secret_file));
    let recipient = out
        .lines()
        .find_map(|l| l.strip_prefix("recipient: "))
        .unwrap()
        .to_owned();
    let identity_file = root.join("owner.identity");
    let id = ok(Command::new(bin("guardian"))
        .args(["keys", "identity", "--tenant", tenant, "--secret-file"])
        .arg(&secret_file));
    std::fs::write(&identity_file, id).unwrap();
    Owner {
        secret_file,
        recipient,
        identity_file,
    }
}

/// `guardian-edge archive-file`: (event id, clip CID).
pub fn archive_file(
    edge: &Edge,
    camera: &str,
    file: &Path,
    snapshot: Option<&Path>,
) -> (String, String) {
    let mut cmd = Command::new(bin("guardian-edge"));
    cmd.args(["archive-file", "--camera", camera, "--data"])
        .arg(&edge.dir);
    if let Some(s) = snapshot {
        cmd.arg("--snapshot").arg(s);
    }
    let out = ok(cmd.arg(file));
    let field = |p: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    (field("event: "), field("clip: "))
}

/// `guardian fetch` of `cid` into `out`.
pub fn fetch(vm: &Vm, owner: &Owner, cid: &str, out: &Path) -> std::process::Output {
    Command::new(bin("guardian"))
        .args([
            "fetch",
            "--vm",
            &vm.http,
            "--token",
            &vm.token,
            "--tenant",
            &vm.tenant_id,
        ])
        .arg("--secret-file")
        .arg(&owner.secret_file)
        .arg(cid)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
