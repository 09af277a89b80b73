//! The project's own binaries in a lab: a `guardian-vm` on a public host (its HTTP API on its
//! public address, port 8080, read with the owner token), `guardian-edge`s behind NATs, and
//! the owner's `guardian` client playing clips from another host.
//!
//! Binaries are found in `$GUARDIAN_BIN_DIR`, else `$CARGO_TARGET_DIR/release`, else beside
//! the running executable (`target/release`, or its parent for test executables in `deps/`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lab::{Host, Lab};
use crate::process::Proc;

/// The vm's libp2p port (QUIC and TCP).
pub const VM_PORT: u16 = 4001;
/// The vm's HTTP API port (on its public address).
pub const VM_HTTP_PORT: u16 = 8080;
/// The owner's recipient in tests' packages: edges seal every clip to it.
pub const RECIPIENT: &str = "age1png63l7y86t6utsqc0s5lh2mt97q99k84cfg3mgs9f20cn067s3svhpf46";
/// The identity of [`RECIPIENT`] (made for the tests with `age-keygen`; it guards nothing
/// else), to open what tests' edges seal.
pub const IDENTITY: &str =
    "AGE-SECRET-KEY-1GJM54EGHZJAHHX36DJSHYF6QAU9N4QA3YGCE3FNCM5CXLRV6QP4Q9GG43F";
/// The log filter given to the project's binaries (unless `GUARDIAN_LOG` is set).
pub const LOG_FILTER: &str = "info,libp2p=warn";
/// The vm's WireGuard UDP port (`[wg] listen_port`).
pub const WG_PORT: u16 = 51820;
/// The port of the edge's local API and web app on its overlay addresses (`[wg] api_port`).
pub const EDGE_API_PORT: u16 = 7080;

/// The folder of the project's binaries.
pub fn bin_dir() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("GUARDIAN_BIN_DIR") {
        candidates.push(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(d).join("release"));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.to_path_buf());
        if let Some(up) = dir.parent() {
            candidates.push(up.to_path_buf());
        }
    }
    candidates
        .into_iter()
        .find(|d| d.join("guardian-vm").is_file())
        .ok_or_else(|| {
            Error::Invalid(
                "guardian-vm not found: build it (cargo build --release -p guardian-vm -p guardian-edge) \
                 or set GUARDIAN_BIN_DIR"
                    .into(),
            )
        })
}

pub use guardian_test_support::{cache as cache_dir, repo as repo_dir};

/// A binary of the project.
pub fn bin(name: &str) -> Result<PathBuf> {
    let p = bin_dir()?.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Invalid(format!("{} is not built", p.display())))
    }
}

/// A command for binary `name`, with `GUARDIAN_LOG` set to [`LOG_FILTER`] unless the
/// environment sets it.
pub(crate) fn command(name: &str) -> Result<Command> {
    let mut c = Command::new(bin(name)?);
    if std::env::var_os("GUARDIAN_LOG").is_none() {
        c.env("GUARDIAN_LOG", LOG_FILTER);
    }
    Ok(c)
}

/// Runs `cmd` inside `host`'s namespace to completion (at most 60 s); its stdout, or an error
/// with its stderr when it fails.
pub fn run_in_host(host: &Host, mut cmd: Command) -> Result<String> {
    crate::netns::command_in(&mut cmd, &host.ns)?;
    run_ok(cmd)
}

/// Sets `[wg]` keys (`("interface", ...)`) in the TOML file at `path`, if the file has a
/// `[wg]` table (the binaries write every key with its default: one without `[wg]` predates
/// the overlay). Whether it had one.
fn set_wg_keys(path: &Path, edits: &[(&str, toml::Value)]) -> Result<bool> {
    let what = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {what}"), e))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| Error::Invalid(format!("{what}: {e}")))?;
    if !table.contains_key("wg") {
        return Ok(false);
    }
    let keys: Vec<String> = edits.iter().map(|(k, _)| format!("wg.{k}")).collect();
    let edits: Vec<(&str, toml::Value)> = keys
        .iter()
        .zip(edits)
        .map(|(k, (_, v))| (k.as_str(), v.clone()))
        .collect();
    guardian_test_support::set_toml_keys(&mut table, &edits)
        .map_err(|e| Error::Invalid(format!("{what}: {e}")))?;
    let text = toml::to_string_pretty(&table).map_err(|e| Error::Invalid(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {what}"), e))?;
    Ok(true)
}

/// Runs a command to completion (at most 60 s); its stdout.
fn run_ok(mut cmd: Command) -> Result<String> {
    let line = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("starting {line}"), e))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(r) => r.map_err(|e| Error::io(format!("running {line}"), e))?,
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(Error::Timeout {
                what: line,
                after: Duration::from_secs(60),
            });
        }
    };
    if !out.status.success() {
        return Err(Error::Command {
            command: line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `f` every 100 ms until it returns true, for at most `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `guardian-vm` on a public host.
pub struct Vm {
    /// Its host.
    pub host: Host,
    /// Its data directory.
    pub dir: PathBuf,
    /// The tenant.
    pub tenant_id: String,
    /// The owner's API token.
    pub token: String,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// The running process.
    pub proc: Option<Proc>,
    /// Its WireGuard interface (`[wg] interface`, unique in the lab), with the overlay on
    /// (`[wg] enabled`, UDP port [`WG_PORT`]); `None` when the binary has no `[wg]` yet.
    pub wg_interface: Option<String>,
    starts: u32,
}

impl Vm {
    /// `guardian-vm init` for `host` (listening on QUIC and TCP port 4001 of every address,
    /// its API on port 8080 of its public address, the WireGuard overlay on UDP port
    /// [`WG_PORT`] on an interface named for the lab).
    pub fn init(lab: &Lab, host: Host) -> Result<Vm> {
        let dir = lab.path(&host.name);
        let mut c = command("guardian-vm")?;
        c.args(["init", "--fqdn", &host.ip.to_string(), "--data"])
            .arg(&dir)
            .args(["--listen", &format!("/ip4/0.0.0.0/udp/{VM_PORT}/quic-v1")])
            .args(["--listen", &format!("/ip4/0.0.0.0/tcp/{VM_PORT}")])
            .args(["--http-listen", &format!("{}:{VM_HTTP_PORT}", host.ip)]);
        let out = run_ok(c)?;
        let iface = lab.wg_ifname();
        let wg = set_wg_keys(
            &dir.join("vm.toml"),
            &[
                ("enabled", toml::Value::Boolean(true)),
                ("interface", toml::Value::String(iface.clone())),
                ("listen_port", toml::Value::Integer(WG_PORT.into())),
            ],
        )?;
        let field = |label: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(label))
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| Error::Invalid(format!("no {label} in the output of init: {out}")))
        };
        Ok(Vm {
            tenant_id: field("tenant id:")?,
            token: field("owner API token:")?,
            peer_id: field("vm peer id:")?,
            host,
            dir,
            proc: None,
            wg_interface: wg.then_some(iface),
            starts: 0,
        })
    }

    /// Sets more `[wg]` keys of its `vm.toml` (`("recheck_secs", 5.into())`), for its next
    /// start; an error when the binary has no overlay.
    pub fn set_wg(&self, edits: &[(&str, toml::Value)]) -> Result<()> {
        if set_wg_keys(&self.dir.join("vm.toml"), edits)? {
            Ok(())
        } else {
            Err(Error::Invalid(
                "vm.toml has no [wg]: guardian-vm is built without the overlay".into(),
            ))
        }
    }

    /// Its public address.
    pub fn ip(&self) -> Ipv4Addr {
        self.host.ip
    }

    /// Its API's URL, as owners use it.
    pub fn url(&self) -> String {
        format!("http://{}:{VM_HTTP_PORT}", self.host.ip)
    }

    /// Starts `guardian-vm run` and waits (up to 30 s) for its API.
    pub fn start(&mut self, lab: &Lab) -> Result<()> {
        self.starts += 1;
        let mut c = command("guardian-vm")?;
        c.arg("run").arg("--data").arg(&self.dir);
        let name = format!("{}-{}", self.host.name, self.starts);
        self.proc = Some(lab.spawn(&self.host, &name, c)?);
        let r = wait_for("the vm's HTTP API", Duration::from_secs(30), || {
            self.http(lab, "/healthz", false)
                .is_ok_and(|(s, _)| s == 200)
        });
        if let Err(e) = r {
            let tail = self
                .proc
                .as_ref()
                .map(|p| p.log_tail(30))
                .unwrap_or_default();
            return Err(Error::Invalid(format!("{e}\n{tail}")));
        }
        Ok(())
    }

    /// Stops it (SIGTERM).
    pub fn stop(&mut self) -> Option<i32> {
        self.proc.take().and_then(|mut p| p.stop())
    }

    /// `guardian-vm package edge --name NAME`: the package's path.
    pub fn package(&self, name: &str) -> Result<PathBuf> {
        let out = self.dir.with_file_name(format!("{name}.tar"));
        let mut c = command("guardian-vm")?;
        c.args(["package", "edge", "--data"])
            .arg(&self.dir)
            .args(["--name", name, "--recipient", RECIPIENT, "--out"])
            .arg(&out);
        run_ok(c)?;
        Ok(out)
    }

    fn http(&self, lab: &Lab, path: &str, auth: bool) -> Result<(u16, serde_json::Value)> {
        self.request(lab, "GET", path, auth)
    }

    fn request(
        &self,
        lab: &Lab,
        method: &'static str,
        path: &str,
        auth: bool,
    ) -> Result<(u16, serde_json::Value)> {
        self.request_with(lab, method, path, auth, None)
    }

    fn request_with(
        &self,
        lab: &Lab,
        method: &'static str,
        path: &str,
        auth: bool,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        self.request_full(lab, method, path, auth, body, Vec::new())
    }

    fn request_full(
        &self,
        lab: &Lab,
        method: &'static str,
        path: &str,
        auth: bool,
        body: Option<serde_json::Value>,
        headers: Vec<(String, String)>,
    ) -> Result<(u16, serde_json::Value)> {
        let url = format!("{}{path}", self.url());
        let token = auth.then(|| self.token.clone());
        lab.run_in(&self.host, move || {
            let mut req = ureq::request(method, &url).timeout(Duration::from_secs(30));
            if let Some(t) = token {
                req = req.set("Authorization", &format!("Bearer {t}"));
            }
            for (k, v) in &headers {
                req = req.set(k, v);
            }
            let answer = match body {
                Some(b) => req.send_json(b),
                None => req.call(),
            };
            match answer {
                Ok(r) => {
                    let status = r.status();
                    let text = r.into_string().unwrap_or_default();
                    Ok((
                        status,
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
                    ))
                }
                Err(ureq::Error::Status(code, r)) => {
                    Ok((code, r.into_json().unwrap_or(serde_json::Value::Null)))
                }
                Err(e) => Err(Error::Invalid(format!("{method} {url}: {e}"))),
            }
        })?
    }

    /// `method` `path` of the API with the owner token and a JSON body, as an owner's
    /// script would: (status, JSON body).
    pub fn send(
        &self,
        lab: &Lab,
        method: &'static str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        self.request_with(lab, method, path, true, body)
    }

    /// GET `path` of the API with the owner token: (status, JSON body).
    pub fn get(&self, lab: &Lab, path: &str) -> Result<(u16, serde_json::Value)> {
        self.http(lab, path, true)
    }

    /// GET `path` of the API with the owner token and more headers: (status, JSON body).
    pub fn get_with(
        &self,
        lab: &Lab,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value)> {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.request_full(lab, "GET", path, true, None, headers)
    }

    /// A playback token for `event` (`POST /api/v1/events/{event}/play`).
    pub fn mint_play_token(&self, lab: &Lab, event: &str) -> Result<String> {
        let (status, body) =
            self.request(lab, "POST", &format!("/api/v1/events/{event}/play"), true)?;
        body["token"]
            .as_str()
            .filter(|_| status == 200)
            .map(str::to_owned)
            .ok_or_else(|| Error::Invalid(format!("POST play {event}: {status} {body}")))
    }

    fn list(&self, lab: &Lab, path: &str, key: &str) -> Result<Vec<serde_json::Value>> {
        let (status, body) = self.get(lab, path)?;
        if status != 200 {
            return Err(Error::Invalid(format!("GET {path}: {status} {body}")));
        }
        Ok(body[key].as_array().cloned().unwrap_or_default())
    }

    /// Event ids the vm holds (with repeats, if it held any twice).
    pub fn event_ids(&self, lab: &Lab) -> Result<Vec<String>> {
        Ok(self
            .list(lab, "/api/v1/events?limit=1000", "events")?
            .iter()
            .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
            .collect())
    }

    /// The registered devices.
    pub fn devices(&self, lab: &Lab) -> Result<Vec<serde_json::Value>> {
        self.list(lab, "/api/v1/devices", "devices")
    }

    /// Archived objects of `camera`.
    pub fn archive(&self, lab: &Lab, camera: &str) -> Result<Vec<serde_json::Value>> {
        let (status, body) = self.get(lab, &format!("/api/v1/archive?camera={camera}"))?;
        if status != 200 {
            return Err(Error::Invalid(format!("GET archive: {status} {body}")));
        }
        Ok(body["objects"].as_array().cloned().unwrap_or_default())
    }

    /// The last lines of its current log.
    pub fn log_tail(&self, n: usize) -> String {
        self.proc
            .as_ref()
            .map(|p| p.log_tail(n))
            .unwrap_or_default()
    }
}

/// A `guardian-edge` on a host.
pub struct Edge {
    /// Its host.
    pub host: Host,
    /// Its data directory.
    pub dir: PathBuf,
    /// The running process.
    pub proc: Option<Proc>,
    /// Extra environment for `run` (the detector's model and OpenVINO, for cameras).
    pub env: Vec<(String, PathBuf)>,
    /// The local admin token `init` printed (once), for `Authorization: Bearer` on the edge's
    /// local API.
    pub local_token: Option<String>,
    /// Its WireGuard interface (`[wg] interface`, unique in the lab; its local API on the
    /// overlay on port [`EDGE_API_PORT`]); `None` when the binary has no `[wg]` yet.
    pub wg_interface: Option<String>,
    starts: u32,
}

impl Edge {
    /// `guardian-edge init --package` into a new data directory named after the host.
    pub fn install(lab: &Lab, host: Host, package: &Path) -> Result<Edge> {
        Self::install_with(lab, host, package, &[])
    }

    /// [`Edge::install`] with more `init` arguments (`--discovery`).
    pub fn install_with(lab: &Lab, host: Host, package: &Path, args: &[&str]) -> Result<Edge> {
        let dir = lab.path(&host.name);
        let mut c = command("guardian-edge")?;
        c.arg("init")
            .arg("--package")
            .arg(package)
            .arg("--data")
            .arg(&dir)
            .args(args);
        let out = run_ok(c)?;
        let local_token = out
            .lines()
            .find_map(|l| l.strip_prefix("local admin token for the LAN web app:"))
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.starts_with("kept"))
            .map(str::to_owned);
        let iface = lab.wg_ifname();
        let wg = set_wg_keys(
            &dir.join("edge.toml"),
            &[
                ("interface", toml::Value::String(iface.clone())),
                ("api_port", toml::Value::Integer(EDGE_API_PORT.into())),
            ],
        )?;
        Ok(Edge {
            host,
            dir,
            proc: None,
            env: Vec::new(),
            local_token,
            wg_interface: wg.then_some(iface),
            starts: 0,
        })
    }

    /// Starts `guardian-edge run` in its namespace.
    pub fn start(&mut self, lab: &Lab) -> Result<()> {
        self.starts += 1;
        let mut c = command("guardian-edge")?;
        c.arg("run").arg("--data").arg(&self.dir);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        let name = format!("{}-{}", self.host.name, self.starts);
        self.proc = Some(lab.spawn(&self.host, &name, c)?);
        Ok(())
    }

    /// Gives it the detector (the model and OpenVINO that `scripts/setup.sh` installed in
    /// `$GUARDIAN_CACHE`) from its next start.
    pub fn with_detector(&mut self) -> Result<()> {
        let model = guardian_test_support::model_path();
        let env_file = cache_dir().join("openvino.env");
        let text = std::fs::read_to_string(&env_file).map_err(|e| {
            Error::io(
                format!("reading {} (run scripts/setup.sh)", env_file.display()),
                e,
            )
        })?;
        let lib = text
            .lines()
            .find_map(|l| l.strip_prefix("OPENVINO_LIB="))
            .ok_or_else(|| Error::Invalid(format!("no OPENVINO_LIB in {}", env_file.display())))?;
        if !model.is_file() {
            return Err(Error::Invalid(format!(
                "{} is missing (run scripts/setup.sh)",
                model.display()
            )));
        }
        self.env = vec![
            ("GUARDIAN_MODEL".into(), model),
            ("GUARDIAN_OPENVINO_LIB".into(), PathBuf::from(lib)),
        ];
        Ok(())
    }

    /// `guardian-edge camera add --id ID --url URL`.
    pub fn add_camera(&self, id: &str, url: &str) -> Result<()> {
        let mut c = command("guardian-edge")?;
        c.args(["camera", "add", "--id", id, "--url", url, "--data"])
            .arg(&self.dir);
        run_ok(c).map(|_| ())
    }

    /// `guardian-edge import-clip`: records `file` as an event of `camera` with a local clip
    /// (playable remotely); the event id.
    pub fn import_clip(&self, camera: &str, file: &Path) -> Result<String> {
        let mut c = command("guardian-edge")?;
        c.args(["import-clip", "--camera", camera, "--data"])
            .arg(&self.dir)
            .arg(file);
        Ok(run_ok(c)?.trim().to_owned())
    }

    /// Stops it (SIGTERM).
    pub fn stop(&mut self) -> Option<i32> {
        self.proc.take().and_then(|mut p| p.stop())
    }

    /// `guardian-edge emit-test-event`: the event id.
    pub fn emit(&self, camera: &str) -> Result<String> {
        let mut c = command("guardian-edge")?;
        c.args(["emit-test-event", "--camera", camera, "--data"])
            .arg(&self.dir);
        Ok(run_ok(c)?.trim().to_owned())
    }

    /// `guardian-edge archive-file`: what it printed (the event id and CIDs).
    pub fn archive_file(&self, camera: &str, file: &Path) -> Result<String> {
        let mut c = command("guardian-edge")?;
        c.args(["archive-file", "--camera", camera, "--data"])
            .arg(&self.dir)
            .arg(file);
        run_ok(c)
    }

    /// The last lines of its current log.
    pub fn log_tail(&self, n: usize) -> String {
        self.proc
            .as_ref()
            .map(|p| p.log_tail(n))
            .unwrap_or_default()
    }
}

/// Opens an age file sealed to [`RECIPIENT`] (what the lab's edges seal clips to).
pub fn open_sealed(sealed: &[u8]) -> Vec<u8> {
    let id: age::x25519::Identity = IDENTITY.parse().expect("the test identity parses");
    let mut out = Vec::new();
    protocols::seal::open(sealed, &mut out, &id).expect("sealed to the lab's owner");
    out
}
