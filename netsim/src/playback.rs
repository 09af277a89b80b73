//! Remote playback in a lab, as an owner would do it: `guardian play` on a host behind one
//! NAT, the clip on an edge behind another, through the vm's relay and then direct after hole
//! punching; and `make bench-stream`, which measures it against iperf3 on the same link.
//!
//! - [`Client`]: the owner's laptop (a host behind a NAT) running the `guardian` binary.
//! - [`StandIn`]: the camera stand-in (`edge/tools/camera-standin.py`) on the edge's LAN.
//! - [`PlaybackLab`]: a vm, an enrolled edge and a client, each behind its NAT.
//! - [`bench_stream`]: time to first byte and throughput, relayed and direct, as ratios
//!   against iperf3 (TCP, edge to vm) over the same impaired uplink in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use guardian_client::play::PlayReport;

use crate::error::{Error, Result};
use crate::guardian::{Edge, Vm, command, repo_dir, wait_for};
use crate::impair::Impairment;
use crate::lab::{Host, Lab};
use crate::nat::NatProfile;
use crate::process::Proc;
use crate::scenario::{DELIVERY_TIMEOUT, lab_with_vm, wait_enrolled, wait_events};

/// The owner's machine: a host that runs `guardian play`.
pub struct Client {
    /// Its host.
    pub host: Host,
    runs: u32,
}

/// How one `guardian play` ended.
#[derive(Debug)]
pub struct PlayRun {
    /// Its exit code (-1: killed by a signal).
    pub code: i32,
    /// The JSON report, when it succeeded.
    pub report: Option<PlayReport>,
    /// What it printed on stderr.
    pub stderr: String,
    /// Wall time of the whole command.
    pub elapsed: Duration,
}

impl PlayRun {
    /// The report of a successful run, or an error with its stderr.
    pub fn ok(self) -> Result<PlayReport> {
        match self.report {
            Some(r) if self.code == 0 => Ok(r),
            _ => Err(Error::Invalid(format!(
                "guardian play exited {}: {}",
                self.code, self.stderr
            ))),
        }
    }
}

impl Client {
    /// A client host behind `profile`.
    pub fn new(lab: &Lab, name: &str, profile: NatProfile) -> Result<Client> {
        Ok(Client {
            host: lab.host_behind(name, profile)?,
            runs: 0,
        })
    }

    /// Starts `guardian play --vm URL --token API_TOKEN --json ARGS... EVENT -o OUT` in the
    /// client's namespace (the API token from the vm, as the owner's would be).
    pub fn spawn_play(
        &mut self,
        lab: &Lab,
        vm: &Vm,
        event: &str,
        args: &[&str],
        out: &Path,
    ) -> Result<Proc> {
        self.runs += 1;
        let mut c = command("guardian")?;
        c.args(["play", "--vm", &vm.url(), "--token", &vm.token, "--json"]);
        if !args.contains(&"--sealed") {
            // The owner's identity decrypts the sealed clip as it streams.
            let identity = lab.path("owner-identity.txt");
            std::fs::write(&identity, format!("{}\n", crate::guardian::IDENTITY))
                .map_err(|e| Error::io("writing the owner's identity", e))?;
            c.arg("--identity-file").arg(identity);
        }
        c.args(args).arg(event).arg("-o").arg(out);
        let name = format!("{}-play-{}", self.host.name, self.runs);
        lab.spawn(&self.host, &name, c)
    }

    /// Runs `guardian play` to the end (at most `timeout`).
    pub fn play(
        &mut self,
        lab: &Lab,
        vm: &Vm,
        event: &str,
        args: &[&str],
        out: &Path,
        timeout: Duration,
    ) -> Result<PlayRun> {
        let t = Instant::now();
        let mut p = self.spawn_play(lab, vm, event, args, out)?;
        Self::finish(&mut p, t, timeout)
    }

    /// Waits for a `guardian play` started by [`Client::spawn_play`] at `started`.
    pub fn finish(p: &mut Proc, started: Instant, timeout: Duration) -> Result<PlayRun> {
        let code = match p.wait_exit(timeout) {
            Ok(c) => c,
            Err(e) => {
                let tail = p.log_tail(20);
                p.kill9();
                return Err(Error::Invalid(format!("{e}\n{tail}")));
            }
        };
        let stdout = p.stdout();
        let report = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<PlayReport>(l).ok());
        Ok(PlayRun {
            code,
            report,
            stderr: p.stderr(),
            elapsed: started.elapsed(),
        })
    }
}

/// The camera stand-in (`edge/tools/camera-standin.py`, RTSP on the host's loopback): a
/// person walks through a room per its schedule.
pub struct StandIn {
    /// Its process.
    pub proc: Proc,
    /// Its RTSP URL (inside the host's namespace).
    pub url: String,
    /// Every URL it serves (one per path with `--count`), the first being `url`.
    pub urls: Vec<String>,
}

impl StandIn {
    /// Starts it on `host` with `schedule` (such as `empty:6,person:4,empty:6`) and waits
    /// (up to 30 s) for it to serve.
    pub fn start(lab: &Lab, host: &Host, schedule: &str) -> Result<StandIn> {
        Self::start_with(
            lab,
            host,
            &["--port", "0", "--path", "/porch", "--schedule", schedule],
        )
    }

    /// Starts it on `host` with the stand-in's own `args` and waits (up to 30 s) for it to
    /// serve.
    pub fn start_with(lab: &Lab, host: &Host, args: &[&str]) -> Result<StandIn> {
        let script = repo_dir().join("edge/tools/camera-standin.py");
        let mut c = Command::new("/usr/bin/python3");
        c.arg(&script).args(args);
        let proc = lab.spawn(host, &format!("{}-camera", host.name), c)?;
        // READY lists the URLs, one per path.
        let mut urls: Vec<String> = Vec::new();
        wait_for("the camera stand-in", Duration::from_secs(30), || {
            urls = proc
                .stdout()
                .lines()
                .find_map(|l| l.strip_prefix("READY "))
                .map(|r| r.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            !urls.is_empty()
        })
        .map_err(|e| Error::Invalid(format!("{e}\n{}", proc.log_tail(20))))?;
        Ok(StandIn {
            proc,
            url: urls[0].clone(),
            urls,
        })
    }
}

/// A vm, an edge behind one NAT (enrolled, online) and a client behind another.
pub struct PlaybackLab {
    /// The lab (dropping it tears everything down).
    pub lab: Lab,
    /// The vm.
    pub vm: Vm,
    /// The edge.
    pub edge: Edge,
    /// The owner's machine.
    pub client: Client,
}

impl PlaybackLab {
    /// Builds it; the edge's uplink gets `uplink` both ways before the edge starts, and the
    /// edge gets the detector when `detector` (for a camera).
    pub fn new(
        client_nat: NatProfile,
        edge_nat: NatProfile,
        uplink: Option<Impairment>,
        detector: bool,
    ) -> Result<PlaybackLab> {
        let (lab, vm) = lab_with_vm()?;
        let host = lab.host_behind("edge", edge_nat)?;
        if let Some(imp) = uplink {
            lab.impair(&host.link, imp)?;
        }
        let pkg = vm.package("edge")?;
        let mut edge = Edge::install(&lab, host, &pkg)?;
        if detector {
            edge.with_detector()?;
        }
        edge.start(&lab)?;
        wait_enrolled(&lab, &vm, &edge, DELIVERY_TIMEOUT)?;
        let client = Client::new(&lab, "owner", client_nat)?;
        Ok(PlaybackLab {
            lab,
            vm,
            edge,
            client,
        })
    }

    /// Imports `bytes` as a clip of camera `camera` on the edge and waits for the vm to list
    /// the event; its id and the clip's path (for comparison).
    pub fn import(&self, camera: &str, bytes: &[u8]) -> Result<(String, PathBuf)> {
        let file = self.lab.path(&format!("{camera}-source.bin"));
        std::fs::write(&file, bytes).map_err(|e| Error::io("writing a clip", e))?;
        let id = self.edge.import_clip(camera, &file)?;
        wait_events(
            &self.lab,
            &self.vm,
            std::slice::from_ref(&id),
            DELIVERY_TIMEOUT,
            &[&self.edge],
        )?;
        Ok((id, file))
    }

    /// The edge's sealed clip of `event` (`clips/<camera>/<event>/clip.mp4.age`).
    pub fn edge_clip(&self, camera: &str, event: &str) -> PathBuf {
        self.edge
            .dir
            .join("clips")
            .join(camera)
            .join(event)
            .join("clip.mp4.age")
    }

    /// Plays `event` into `out` (in the lab's folder) with `args`.
    pub fn play(&mut self, event: &str, args: &[&str], out: &str) -> Result<PlayRun> {
        let out = self.lab.path(out);
        self.client.play(
            &self.lab,
            &self.vm,
            event,
            args,
            &out,
            Duration::from_secs(120),
        )
    }

    /// The closed events (their clips whole) the vm holds for `camera`, oldest first.
    pub fn camera_events(&self, camera: &str) -> Result<Vec<String>> {
        let (status, body) = self.vm.get(
            &self.lab,
            &format!("/api/v1/events?camera={camera}&limit=100"),
        )?;
        if status != 200 {
            return Err(Error::Invalid(format!("GET events: {status} {body}")));
        }
        let mut events: Vec<(u64, String)> = body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["camera_id"] == camera && e["state"] != "open")
            .filter_map(|e| {
                Some((
                    e["started_at_ms"].as_u64()?,
                    e["event_id"].as_str()?.to_owned(),
                ))
            })
            .collect();
        events.sort();
        Ok(events.into_iter().map(|(_, id)| id).collect())
    }
}

/// The benchmark's link: the edge's uplink, each way.
pub const BENCH_LINK: Impairment = Impairment {
    delay: Duration::from_millis(20),
    jitter: Duration::ZERO,
    loss: 0.0,
    rate_kbit: Some(100_000),
};

/// What [`bench_stream`] measured.
#[derive(Debug, Clone)]
pub struct StreamBench {
    /// The link (each way on the edge's uplink).
    pub link: Impairment,
    /// The clip's size.
    pub clip_bytes: u64,
    /// iperf3 (TCP, edge to vm, over the edge's uplink), bytes/s, median of the runs.
    pub iperf3: f64,
    /// Relay only, decrypting while streaming: bytes/s of the whole stream, median.
    pub relayed: f64,
    /// Relay only, the same ciphertext written as served (`--sealed`, no decryption):
    /// bytes/s, median; the reference for the cost of decrypting.
    pub relayed_sealed: f64,
    /// Relayed first, then direct: bytes/s of the part that went direct, median.
    pub direct: f64,
    /// Time to first byte (from the command's start: token, node, dial, request), median of
    /// every run, ms.
    pub first_byte_ms: u64,
    /// Time to a direct connection, median, ms.
    pub direct_after_ms: u64,
    /// Runs of each kind.
    pub runs: usize,
}

impl StreamBench {
    /// The printed table.
    pub fn table(&self) -> String {
        let mb = |b: f64| b * 8.0 / 1e6;
        format!(
            "link: edge uplink {} Mbit/s, +{} ms each way; clip {} MiB; median of {} runs each\n\
             {:<34} {:>10} {:>8}\n\
             {:<34} {:>10.1} {:>8}\n\
             {:<34} {:>10.1} {:>7.2}x\n\
             {:<34} {:>10.1} {:>7.2}x\n\
             {:<34} {:>10.1} {:>7.2}x\n\
             decrypting while streaming, relayed: {:.2}x of the same ciphertext not decrypted (goal >= 0.95)\n\
             time to first byte (relayed): {} ms (goal < 1000); direct connection after {} ms",
            self.link.rate_kbit.unwrap_or(0) / 1000,
            self.link.delay.as_millis(),
            self.clip_bytes >> 20,
            self.runs,
            "path",
            "Mbit/s",
            "ratio",
            "iperf3 TCP edge -> vm (reference)",
            mb(self.iperf3),
            "1.00x",
            "guardian play --sealed, relayed",
            mb(self.relayed_sealed),
            self.relayed_sealed / self.iperf3,
            "guardian play, relayed, decrypting",
            mb(self.relayed),
            self.relayed / self.iperf3,
            "guardian play, direct, decrypting",
            mb(self.direct),
            self.direct / self.iperf3,
            self.relayed / self.relayed_sealed,
            self.first_byte_ms,
            self.direct_after_ms,
        )
    }
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median_u(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// iperf3 from `from` to a server on `to` for `secs`: received bytes/s.
pub fn iperf3(lab: &Lab, from: &Host, to: &Host, secs: u32) -> Result<f64> {
    iperf3_at(lab, from, to, to.ip.into(), secs)
}

/// iperf3 (TCP) from `from` to a server on `to` bound to `addr` (one of `to`'s addresses:
/// its overlay's, a tunnel's) for `secs`: received bytes/s.
pub fn iperf3_at(
    lab: &Lab,
    from: &Host,
    to: &Host,
    addr: std::net::IpAddr,
    secs: u32,
) -> Result<f64> {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let mut server = Command::new("iperf3");
    server.args(["-s", "-1", "-p", "5201", "-B", &addr.to_string()]);
    let mut server = lab.spawn(to, &format!("{}-iperf3-server-{run}", to.name), server)?;
    // The server needs a moment to listen: the client tries again while it is refused.
    let mut last = String::new();
    for attempt in 0..20 {
        let mut client = Command::new("iperf3");
        client.args([
            "-c",
            &addr.to_string(),
            "-p",
            "5201",
            "-J",
            "-t",
            &secs.to_string(),
        ]);
        let mut p = lab.spawn(
            from,
            &format!("{}-iperf3-{run}-{attempt}", from.name),
            client,
        )?;
        p.wait_exit(Duration::from_secs(u64::from(secs) + 20))?;
        let v: serde_json::Value = serde_json::from_str(&p.stdout()).unwrap_or_default();
        if let Some(bits) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            let _ = server.stop();
            return Ok(bits / 8.0);
        }
        last = format!("{} {}", p.stdout(), p.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = server.stop();
    Err(Error::Invalid(format!("iperf3 did not run: {last}")))
}

/// The streaming benchmark: an edge behind a port-restricted NAT on `link`, a client behind
/// another; `runs` times each: iperf3, a relay-only play and a play that moves to direct,
/// interleaved so that the machine's drift hits all three alike.
pub fn bench_stream(link: Impairment, clip_mib: usize, runs: usize) -> Result<StreamBench> {
    let mut pl = PlaybackLab::new(
        NatProfile::PortRestrictedCone,
        NatProfile::PortRestrictedCone,
        Some(link),
        false,
    )?;
    let clip = crate::scenario::pseudo_random(clip_mib << 20, 11);
    let (event, _) = pl.import("bench", &clip)?;
    // Played bytes are the sealed clip's (the stream carries ciphertext).
    let sealed_len = std::fs::metadata(pl.edge_clip("bench", &event))
        .map_err(|e| Error::io("the sealed clip", e))?
        .len() as usize;
    let secs = ((clip.len() as f64 * 8.0 / f64::from(link.rate_kbit.unwrap_or(100_000)) / 1000.0)
        .ceil() as u32)
        .clamp(3, 30);
    let (mut ip, mut rel, mut dir, mut fb, mut da) = (vec![], vec![], vec![], vec![], vec![]);
    let mut sealed = vec![];
    for i in 0..runs {
        ip.push(iperf3(&pl.lab, &pl.edge.host, &pl.vm.host, secs)?);
        let r = pl
            .play(
                &event,
                &["--relay-only", "--sealed"],
                &format!("sealed-{i}.bin"),
            )?
            .ok()?;
        check_bytes(&r, sealed_len)?;
        sealed.push(r.relayed_bytes as f64 / (r.relayed_ms.max(1) as f64 / 1000.0));
        let r = pl
            .play(&event, &["--relay-only"], &format!("relayed-{i}.bin"))?
            .ok()?;
        check_bytes(&r, sealed_len)?;
        rel.push(r.relayed_bytes as f64 / (r.relayed_ms.max(1) as f64 / 1000.0));
        fb.push(r.first_byte_ms);
        let r = pl.play(&event, &[], &format!("direct-{i}.bin"))?.ok()?;
        check_bytes(&r, sealed_len)?;
        if !r.switched_to_direct || r.direct_bytes == 0 {
            return Err(Error::Invalid(format!(
                "the stream did not move to a direct connection: {r:?}"
            )));
        }
        dir.push(r.direct_bytes as f64 / (r.direct_ms.max(1) as f64 / 1000.0));
        fb.push(r.first_byte_ms);
        da.push(r.direct_after_ms.unwrap_or(0));
        for f in ["sealed", "relayed", "direct"] {
            let _ = std::fs::remove_file(pl.lab.path(&format!("{f}-{i}.bin")));
        }
    }
    Ok(StreamBench {
        link,
        clip_bytes: clip.len() as u64,
        iperf3: median_f(ip),
        relayed: median_f(rel),
        relayed_sealed: median_f(sealed),
        direct: median_f(dir),
        first_byte_ms: median_u(fb),
        direct_after_ms: median_u(da),
        runs,
    })
}

fn check_bytes(r: &PlayReport, want: usize) -> Result<()> {
    if r.bytes != want as u64 {
        return Err(Error::Invalid(format!(
            "played {} bytes of {want}: {r:?}",
            r.bytes
        )));
    }
    Ok(())
}
