//! Real processes for system tests: a vm and edges started from the release binaries on
//! loopback, each in its own data directory with its log in a file, stopped (SIGTERM, then
//! SIGKILL) when dropped. The roles meet only on the wire: the edge is driven through its
//! binary (`init`, `run`, `import-clip`, `archive-file`, `emit-test-event`) and read through
//! the vm's API, its command output or its database opened read-only; `vm.toml` is edited
//! through the vm's own config type, `edge.toml` by key path.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

// Each test crate uses a different part of these.
#[allow(unused_imports)]
pub use guardian_test_support::{
    IDENTITY, Proc, RECIPIENT, age_open, bin, cache, edit_toml, files_holding, free_port, h264_mp4,
    metric, ok as run_ok, openvino_lib, photos, pseudo_random, repo, wait_for, wait_for_every,
};

use guardian_vm::config::VmConfig;

/// A running vm under `root` and an edge (package `home`) it has enrolled and sees online.
pub fn enrolled(root: &Path, wait: Duration) -> (Vm, Edge) {
    let mut vm = Vm::init(root, "vm");
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.join("edge"));
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for("the edge to enroll", wait, &[&vm_log, &edge_log], || {
        vm.devices().first().is_some_and(|d| d["online"] == true)
    });
    (vm, edge)
}

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

    /// Edits `vm.toml` (load, `edit`, write) while the vm is stopped.
    pub fn edit_config(&self, edit: impl FnOnce(&mut VmConfig)) {
        let path = self.dir.join("vm.toml");
        let mut config = VmConfig::load(&path).unwrap();
        edit(&mut config);
        std::fs::write(&path, config.to_toml()).unwrap();
    }

    /// The vm's database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("vm.sqlite")
    }

    /// Where the embedded S3 server keeps its objects.
    pub fn s3_root(&self) -> PathBuf {
        self.dir.join("s3")
    }

    /// The Prometheus text of `/metrics` (behind the owner token).
    pub fn metrics(&self) -> String {
        ureq::get(&format!("{}/metrics", self.http))
            .set("authorization", &format!("Bearer {}", self.token))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    /// The sum of every sample of metric `name` (all label sets); `None` when it has none.
    pub fn metric(&self, name: &str) -> Option<f64> {
        metric(&self.metrics(), name)
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
        let url = format!("{}/healthz", self.http);
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

    /// SIGTERM; the exit code if it exited within `grace` (SIGKILL after, and `None`).
    pub fn stop_within(&mut self, grace: Duration) -> Option<i32> {
        self.proc.take().and_then(|mut p| p.stop_within(grace))
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
        self.package_signed(name, recipient, None, valid_secs)
    }

    /// `guardian-vm package edge` sealing to `recipient`, naming `signing_key` as the owner's.
    pub fn package_signed(
        &self,
        name: &str,
        recipient: &str,
        signing_key: Option<&str>,
        valid_secs: Option<u64>,
    ) -> PathBuf {
        let out = self.dir.with_file_name(format!("{name}.tar"));
        let mut cmd = Command::new(bin("guardian-vm"));
        cmd.args(["package", "edge", "--data"])
            .arg(&self.dir)
            .args(["--name", name, "--recipient", recipient, "--out"])
            .arg(&out);
        if let Some(k) = signing_key {
            cmd.args(["--owner-signing-key", k]);
        }
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

    /// `method` (PUT, DELETE, POST) with the owner token and an optional JSON body: (status,
    /// JSON body, `Null` when there is none).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let req = ureq::request(method, &format!("{}{path}", self.http))
            .set("Authorization", &format!("Bearer {}", self.token));
        let answer = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        match answer {
            Ok(r) => (r.status(), r.into_json().unwrap_or(serde_json::Value::Null)),
            Err(ureq::Error::Status(code, r)) => {
                (code, r.into_json().unwrap_or(serde_json::Value::Null))
            }
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// `method` on `path` with only the credentials in `headers` (a `Cookie`, an
    /// `Authorization`, an `X-Forwarded-For`...) and an optional JSON body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Answer {
        let mut req = ureq::request(method, &format!("{}{path}", self.http));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let answer = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        let r = match answer {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = r.status();
        let headers = r
            .headers_names()
            .into_iter()
            .flat_map(|name| {
                r.all(&name)
                    .into_iter()
                    .map(|v| (name.to_ascii_lowercase(), v.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            headers,
            json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            text,
        }
    }

    /// [`Vm::request`] with a session cookie (`guardian_session=...`).
    pub fn with_cookie(
        &self,
        method: &str,
        path: &str,
        cookie: &str,
        body: Option<&serde_json::Value>,
    ) -> Answer {
        self.request(method, path, &[("Cookie", cookie)], body)
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
        Self::install_printing(package, dir).0
    }

    /// `guardian-edge init --package`, and what it printed.
    pub fn install_printing(package: &Path, dir: &Path) -> (Edge, String) {
        let out = run_ok(
            Command::new(bin("guardian-edge"))
                .arg("init")
                .arg("--package")
                .arg(package)
                .arg("--data")
                .arg(dir),
        );
        (
            Edge {
                dir: dir.to_path_buf(),
                proc: None,
            },
            out,
        )
    }

    /// What `guardian-edge status` prints.
    pub fn status(&self) -> String {
        run_ok(
            Command::new(bin("guardian-edge"))
                .args(["status", "--data"])
                .arg(&self.dir),
        )
    }

    /// The edge's own peer id (of the key it made at `init`), from `guardian-edge status`.
    pub fn peer_id(&self) -> String {
        field(&self.status(), "edge peer id:")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    /// Sets dotted keys of `edge.toml` (see [`edit_toml`]) while the edge is stopped.
    pub fn edit_config(&self, edits: &[(&str, toml::Value)]) {
        edit_toml(&self.dir.join("edge.toml"), edits);
    }

    /// `guardian-edge import-clip`: `file` recorded as an event of `camera` (kept in the
    /// edge's clip store, delivered to the vm, sealed for the archive with `archive`). The
    /// event id.
    pub fn import_clip(&self, camera: &str, file: &Path, archive: bool) -> String {
        let mut cmd = Command::new(bin("guardian-edge"));
        cmd.args(["import-clip", "--camera", camera, "--data"])
            .arg(&self.dir);
        if archive {
            cmd.arg("--archive");
        }
        run_ok(cmd.arg(file)).trim().to_owned()
    }

    /// The edge's event outbox, read from its database opened read-only.
    pub fn outbox(&self) -> Vec<OutboxRow> {
        let conn = self.db_read_only();
        let mut stmt = conn
            .prepare("SELECT event_id, attempts, refused_reason FROM event_outbox ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| {
            Ok(OutboxRow {
                event_id: r.get(0)?,
                attempts: r.get(1)?,
                refused_reason: r.get(2)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// The edge's archive outbox, read from its database opened read-only.
    pub fn archive_outbox(&self) -> Vec<ArchiveOutboxRow> {
        let conn = self.db_read_only();
        let mut stmt = conn
            .prepare(
                "SELECT event_id, attempts, last_error, refused_reason FROM archive_outbox
                 ORDER BY created_at_ms",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok(ArchiveOutboxRow {
                event_id: r.get(0)?,
                attempts: r.get(1)?,
                last_error: r.get(2)?,
                refused_reason: r.get(3)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn db_read_only(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_with_flags(
            self.dir.join("edge.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }

    /// Sealed events waiting in the archive outbox.
    pub fn archive_backlog(&self) -> usize {
        self.archive_outbox().len()
    }

    /// The sealed clip of `event` as the edge keeps it (the age file), from its database's
    /// path.
    pub fn sealed_clip(&self, event: &str) -> Vec<u8> {
        let path: String = self
            .db_read_only()
            .query_row(
                "SELECT clip_path FROM events WHERE event_id = ?1",
                [event],
                |r| r.get(0),
            )
            .unwrap();
        std::fs::read(self.dir.join(path)).unwrap()
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

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Every header, names in lower case, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when it is empty or not JSON).
    pub json: serde_json::Value,
    /// The body as text (lossy).
    pub text: String,
}

impl Answer {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` of the session cookie the answer sets (for a `Cookie` header).
    pub fn session_cookie(&self) -> String {
        let set = self
            .header("set-cookie")
            .unwrap_or_else(|| panic!("no Set-Cookie in {self:?}"));
        set.split(';').next().unwrap().trim().to_owned()
    }
}

/// A row of the edge's event outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub event_id: String,
    /// Failed deliveries so far (a retryable refusal or a transport error).
    pub attempts: u32,
    /// Set when the vm refused it for good (parked).
    pub refused_reason: Option<String>,
}

/// A row of the edge's archive outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveOutboxRow {
    pub event_id: String,
    /// Failed sends so far.
    pub attempts: u32,
    /// Why the last send failed or was refused for now.
    pub last_error: Option<String>,
    /// Set when the vm refused it for good (parked).
    pub refused_reason: Option<String>,
}

/// A multipart upload the S3 server (s3s-fs) has begun and not completed or aborted, with
/// the parts it holds so far.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadInFlight {
    pub upload_id: String,
    pub parts: usize,
}

/// Multipart uploads in progress in an s3s-fs root: s3s-fs writes `.upload-<id>.json` when
/// an upload is created (removed on completion or abort) and `.upload_id-<id>.part-<n>` per
/// part received.
pub fn uploads_in_flight(s3_root: &Path) -> Vec<UploadInFlight> {
    let names: Vec<String> = std::fs::read_dir(s3_root)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names
        .iter()
        .filter_map(|n| n.strip_prefix(".upload-")?.strip_suffix(".json"))
        .map(|id| UploadInFlight {
            upload_id: id.to_owned(),
            parts: names
                .iter()
                .filter(|n| n.starts_with(&format!(".upload_id-{id}.part-")))
                .count(),
        })
        .collect()
}

/// The value after `label` on the line of `text` that starts with it.
pub fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        .trim()
        .to_owned()
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
    /// The owner signing key (hex) and its fingerprint, as `guardian keys init` prints them.
    pub signing_key: String,
    pub signing_fingerprint: String,
}

/// `guardian keys init` and `keys identity` for `tenant` with `secret`, files under `root`.
pub fn owner(root: &Path, tenant: &str, secret: &str) -> Owner {
    person(root, "owner", tenant, secret)
}

/// [`owner`] for anyone of the household: files `<name>.secret` and `<name>.identity`.
pub fn person(root: &Path, name: &str, tenant: &str, secret: &str) -> Owner {
    let secret_file = root.join(format!("{name}.secret"));
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let out = ok(Command::new(bin("guardian"))
        .args(["keys", "init", "--tenant", tenant, "--secret-file"])
        .arg(&secret_file));
    let recipient = field(&out, "recipient: ");
    let signing_key = field(&out, "owner signing key: ");
    let signing_fingerprint = field(&out, "owner signing key fingerprint: ");
    let identity_file = root.join(format!("{name}.identity"));
    let id = ok(Command::new(bin("guardian"))
        .args(["keys", "identity", "--tenant", tenant, "--secret-file"])
        .arg(&secret_file));
    std::fs::write(&identity_file, id).unwrap();
    Owner {
        secret_file,
        recipient,
        identity_file,
        signing_key,
        signing_fingerprint,
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

/// `guardian WORDS... --vm --token --tenant --secret-file` as `owner` of `vm`'s tenant.
pub fn owner_command(vm: &Vm, owner: &Owner, words: &[&str]) -> Command {
    let mut cmd = Command::new(bin("guardian"));
    cmd.args(words)
        .args(["--vm", &vm.http, "--token", &vm.token])
        .args(["--tenant", &vm.tenant_id])
        .arg("--secret-file")
        .arg(&owner.secret_file);
    cmd
}

/// `guardian fetch` of `cid` into `out`.
pub fn fetch(vm: &Vm, owner: &Owner, cid: &str, out: &Path) -> std::process::Output {
    owner_command(vm, owner, &["fetch"])
        .arg(cid)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
