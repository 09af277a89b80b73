//! The WireGuard overlay in a lab (`docs/overlay.md`), driven as a user would: the vm's API
//! (`GET /api/v1/devices`, the proxy to an edge's local API, rotation), `curl` at an edge's
//! overlay address, the owner's `guardian wg device add|list|remove`, a stock client
//! (Debian's `wg-quick` with `wireguard-go`) and `wg show` on the UAPI sockets; and
//! `make bench-overlay`, iperf3 over the overlay against the underlay and against
//! wireguard-go on the same path, and the stream fallback against TCP.
//!
//! - [`overlay_vm`], [`overlay_edge`]: a vm with the overlay on and an enrolled edge (the
//!   wrappers in [`crate::guardian`] give each a WireGuard interface name unique to the lab).
//! - [`Tunnel`], [`wait_tunnel`]: an edge's tunnel as `GET /api/v1/devices` shows it.
//! - [`proxy_health`], [`curl_edge`]: the edge's `GET /api/v1/health` through the vm's proxy
//!   and straight at its overlay address.
//! - [`Traffic`]: requests through the proxy every 500 ms on a thread, counted.
//! - [`WgQuick`], [`wg_show`]: wg-quick with wireguard-go, and `wg show`.
//! - [`bench_overlay`]: the benchmark.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd;
use crate::error::{Error, Result};
use crate::guardian::{EDGE_API_PORT, Edge, Vm, command, run_in_host, wait_for};
use crate::impair::Impairment;
use crate::lab::{Host, Lab};
use crate::nat::NatProfile;
use crate::playback::iperf3_at;
use crate::scenario::{DELIVERY_TIMEOUT, wait_enrolled};

/// How long an enrolled edge may take to show a tunnel at the vm: the stream fallback starts
/// after about 10 s without an answer over UDP, so udp-blocked edges take longest.
pub const TUNNEL_TIMEOUT: Duration = Duration::from_secs(60);

/// The timeout of each request through the proxy in [`Traffic`]: generous, as a browser's,
/// so a request that waits out a path change counts as slow, not failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A vm with the overlay on (`[wg] enabled`, a unique interface, UDP port
/// [`crate::guardian::WG_PORT`]), on a new public host `name`, with more `[wg]` keys
/// `wg` (such as `("recheck_secs", 5)`), started.
pub fn overlay_vm(lab: &Lab, name: &str, wg: &[(&str, toml::Value)]) -> Result<Vm> {
    let host = lab.public_host(name)?;
    let mut vm = Vm::init(lab, host)?;
    if vm.wg_interface.is_none() {
        return Err(Error::Invalid(
            "guardian-vm has no [wg] in its vm.toml: it is built without the overlay".into(),
        ));
    }
    if !wg.is_empty() {
        vm.set_wg(wg)?;
    }
    vm.start(lab)?;
    Ok(vm)
}

/// A lab with an overlay vm named `vm` (see [`overlay_vm`]).
pub fn lab_with_overlay_vm(wg: &[(&str, toml::Value)]) -> Result<(Lab, Vm)> {
    let lab = Lab::new()?;
    let vm = overlay_vm(&lab, "vm", wg)?;
    Ok((lab, vm))
}

/// An edge on a new host `name` behind `profile` (its link impaired by `link` both ways
/// before it starts), installed from a package of `vm`, started and enrolled.
pub fn overlay_edge(
    lab: &Lab,
    vm: &Vm,
    name: &str,
    profile: NatProfile,
    link: Option<Impairment>,
) -> Result<Edge> {
    let host = lab.host_behind(name, profile)?;
    if let Some(imp) = link {
        lab.impair(&host.link, imp)?;
    }
    let pkg = vm.package(name)?;
    let mut edge = Edge::install(lab, host, &pkg)?;
    if edge.wg_interface.is_none() {
        return Err(Error::Invalid(
            "guardian-edge has no [wg] in its edge.toml: it is built without the overlay".into(),
        ));
    }
    if edge.local_token.is_none() {
        return Err(Error::Invalid(
            "guardian-edge init printed no local admin token".into(),
        ));
    }
    edge.start(lab)?;
    wait_enrolled(lab, vm, &edge, DELIVERY_TIMEOUT)?;
    Ok(edge)
}

/// The device named `name` in `GET /api/v1/devices`, if listed.
pub fn device(lab: &Lab, vm: &Vm, name: &str) -> Result<Option<Value>> {
    Ok(vm.devices(lab)?.into_iter().find(|d| d["name"] == name))
}

/// An edge's tunnel as `GET /api/v1/devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// The edge's peer id.
    pub peer_id: String,
    /// Its overlay IPv6 address (`overlay_ip`).
    pub overlay_ip: Ipv6Addr,
    /// Its overlay IPv4 address (`overlay_ipv4`).
    pub overlay_ipv4: Ipv4Addr,
    /// `udp` or `stream` (`overlay_path`).
    pub path: String,
    /// The last handshake, Unix ms (`last_handshake_ms`).
    pub last_handshake_ms: u64,
    /// The key generation (`overlay_generation`), if listed.
    pub generation: Option<u64>,
}

impl Tunnel {
    /// From a device of `GET /api/v1/devices`: `None` until it has addresses, a path and a
    /// handshake.
    pub fn from_device(d: &Value) -> Option<Tunnel> {
        Some(Tunnel {
            peer_id: d["peer_id"].as_str()?.to_owned(),
            overlay_ip: d["overlay_ip"].as_str()?.parse().ok()?,
            overlay_ipv4: d["overlay_ipv4"].as_str()?.parse().ok()?,
            path: d["overlay_path"]
                .as_str()
                .filter(|p| !p.is_empty())?
                .to_owned(),
            last_handshake_ms: d["last_handshake_ms"].as_u64().filter(|t| *t > 0)?,
            generation: d["overlay_generation"].as_u64(),
        })
    }

    /// The vm's own overlay IPv6 address: host 1 of the edge's /64.
    pub fn vm_ip(&self) -> Ipv6Addr {
        let s = self.overlay_ip.segments();
        Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 1)
    }
}

/// The vm's IPv4 overlay address: host 1 of its `[wg] range_v4` (default `10.77.0.0/16`).
pub fn vm_ipv4(vm: &Vm) -> Result<Ipv4Addr> {
    let path = vm.dir.join("vm.toml");
    let text =
        std::fs::read_to_string(&path).map_err(|e| Error::io("reading the vm's vm.toml", e))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| Error::Invalid(format!("vm.toml: {e}")))?;
    let range = table
        .get("wg")
        .and_then(|w| w.get("range_v4"))
        .and_then(|r| r.as_str())
        .unwrap_or("10.77.0.0/16");
    let (net, len) = range
        .split_once('/')
        .ok_or_else(|| Error::Invalid(format!("wg.range_v4 {range:?}")))?;
    let net: Ipv4Addr = net
        .parse()
        .map_err(|_| Error::Invalid(format!("wg.range_v4 {range:?}")))?;
    let len: u32 = len
        .parse()
        .ok()
        .filter(|l| *l <= 30)
        .ok_or_else(|| Error::Invalid(format!("wg.range_v4 {range:?}")))?;
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Ok(Ipv4Addr::from((u32::from(net) & mask) + 1))
}

/// The vm's and the edge's recent logs, for failure messages.
pub fn logs(vm: &Vm, edges: &[&Edge]) -> String {
    let mut text = vm.log_tail(30);
    for e in edges {
        text.push('\n');
        text.push_str(&e.log_tail(30));
    }
    text
}

/// Waits until the vm lists a tunnel for `edge` (on `path`, if given): addresses, path and a
/// handshake.
pub fn wait_tunnel(
    lab: &Lab,
    vm: &Vm,
    edge: &Edge,
    path: Option<&str>,
    timeout: Duration,
) -> Result<Tunnel> {
    let name = edge.host.name.clone();
    let mut last = Value::Null;
    let mut found = None;
    let what = match path {
        Some(p) => format!("a tunnel to {name} over {p}"),
        None => format!("a tunnel to {name}"),
    };
    wait_for(&what, timeout, || {
        if let Ok(Some(d)) = device(lab, vm, &name) {
            found = Tunnel::from_device(&d).filter(|t| path.is_none_or(|p| t.path == p));
            last = d;
        }
        found.is_some()
    })
    .map_err(|e| Error::Invalid(format!("{e}; the device: {last}\n{}", logs(vm, &[edge]))))?;
    Ok(found.expect("found"))
}

/// Waits until the vm lists `edge`'s tunnel on `path` (`udp` or `stream`); how long it took.
pub fn wait_path(
    lab: &Lab,
    vm: &Vm,
    edge: &Edge,
    path: &str,
    timeout: Duration,
) -> Result<Duration> {
    let t = Instant::now();
    wait_tunnel(lab, vm, edge, Some(path), timeout)?;
    Ok(t.elapsed())
}

/// The proxy's path to the edge's `GET /api/v1/health`.
pub fn proxy_health_path(peer_id: &str) -> String {
    format!("/api/v1/devices/{peer_id}/proxy/api/v1/health")
}

/// The edge's `GET /api/v1/health` through the vm's proxy (owner token, the edge's local
/// token in `X-Edge-Authorization`): (status, JSON body).
pub fn proxy_health(lab: &Lab, vm: &Vm, edge: &Edge, peer_id: &str) -> Result<(u16, Value)> {
    let auth = format!("Bearer {}", local_token(edge)?);
    vm.get_with(
        lab,
        &proxy_health_path(peer_id),
        &[("X-Edge-Authorization", auth.as_str())],
    )
}

/// Whether an answer of the edge's `GET /api/v1/health` is a 200 from the edge `peer_id`;
/// else what it was.
pub fn check_health(status: u16, body: &Value, peer_id: &str) -> std::result::Result<(), String> {
    if status == 200 && body["edge"]["peer_id"] == peer_id {
        Ok(())
    } else {
        Err(format!("{status} {body}"))
    }
}

fn local_token(edge: &Edge) -> Result<&str> {
    edge.local_token
        .as_deref()
        .ok_or_else(|| Error::Invalid(format!("{} has no local token", edge.host.name)))
}

/// `curl` in `from`'s namespace of `http://ADDR:7080/api/v1/health` with the edge's local
/// token as bearer, at most `timeout`: (status, JSON body), or an error when curl fails (no
/// route, no answer, refused).
pub fn curl_edge(
    from: &Host,
    addr: IpAddr,
    token: &str,
    timeout: Duration,
) -> Result<(u16, Value)> {
    let url = match addr {
        IpAddr::V6(a) => format!("http://[{a}]:{EDGE_API_PORT}/api/v1/health"),
        IpAddr::V4(a) => format!("http://{a}:{EDGE_API_PORT}/api/v1/health"),
    };
    let family = if addr.is_ipv6() { "-6" } else { "-4" };
    let mut c = Command::new("curl");
    c.args([
        family,
        "-g",
        "-sS",
        "--max-time",
        &timeout.as_secs().max(1).to_string(),
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-w",
        "\n%{http_code}",
        &url,
    ]);
    let out = run_in_host(from, c)?;
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", out.as_str()));
    let code: u16 = code
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("curl {url}: {out}")))?;
    Ok((code, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// What [`Traffic`] saw.
#[derive(Debug, Clone, Default)]
pub struct TrafficReport {
    /// Requests answered 200 by the right edge.
    pub ok: u32,
    /// The others: (seconds since the start, what happened).
    pub failed: Vec<(f64, String)>,
    /// The slowest successful request.
    pub slowest: Duration,
}

/// Requests through the vm's proxy to an edge's `GET /api/v1/health`, one every 500 ms
/// (each with [`REQUEST_TIMEOUT`]), on a thread in the vm's namespace, until finished.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU32>,
    report: Arc<Mutex<TrafficReport>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Traffic {
    /// Starts it.
    pub fn start(vm: &Vm, edge: &Edge, peer_id: &str) -> Result<Traffic> {
        let url = format!("{}{}", vm.url(), proxy_health_path(peer_id));
        let owner = format!("Bearer {}", vm.token);
        let edge_auth = format!("Bearer {}", local_token(edge)?);
        let peer = peer_id.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU32::new(0));
        let report = Arc::new(Mutex::new(TrafficReport::default()));
        let (stop2, ok2, report2) = (stop.clone(), ok.clone(), report.clone());
        let thread = crate::netns::spawn(&vm.host.ns, "overlay-traffic", move || {
            let start = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                let t = Instant::now();
                let answer = ureq::get(&url)
                    .timeout(REQUEST_TIMEOUT)
                    .set("Authorization", &owner)
                    .set("X-Edge-Authorization", &edge_auth)
                    .call();
                let outcome = match answer {
                    Ok(r) => {
                        let status = r.status();
                        let body: Value = r.into_json().unwrap_or(Value::Null);
                        check_health(status, &body, &peer)
                    }
                    Err(ureq::Error::Status(code, r)) => {
                        Err(format!("{code} {}", r.into_string().unwrap_or_default()))
                    }
                    Err(e) => Err(e.to_string()),
                };
                let took = t.elapsed();
                {
                    let mut rep = lock(&report2);
                    match outcome {
                        Ok(()) => {
                            rep.ok += 1;
                            rep.slowest = rep.slowest.max(took);
                            ok2.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => rep.failed.push((start.elapsed().as_secs_f64(), e)),
                    }
                }
                if let Some(rest) = Duration::from_millis(500).checked_sub(took) {
                    std::thread::sleep(rest);
                }
            }
        })?;
        Ok(Traffic {
            stop,
            ok,
            report,
            thread: Some(thread),
        })
    }

    /// Requests answered so far.
    pub fn ok(&self) -> u32 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Requests failed so far.
    pub fn failed(&self) -> usize {
        lock(&self.report).failed.len()
    }

    /// Waits until `n` more requests than now were answered (at most `timeout`).
    pub fn wait_more(&self, n: u32, timeout: Duration) -> Result<()> {
        let from = self.ok();
        wait_for(
            &format!("{n} more requests through the proxy"),
            timeout,
            || self.ok() >= from + n,
        )
        .map(|_| ())
    }

    /// Stops it (after the request under way) and reports.
    pub fn finish(mut self) -> TrafficReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        lock(&self.report).clone()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `wg show IFACE WHAT` (`public-key`, `peers`, `latest-handshakes`, `endpoints`) in `host`'s
/// namespace: its output. It reads the device through its UAPI socket, which every
/// userspace implementation serves (wireguard-go, the project's).
pub fn wg_show(host: &Host, iface: &str, what: &str) -> Result<String> {
    cmd::run_in(&host.ns, "wg", &["show", iface, what]).map(|s| s.trim().to_owned())
}

/// The newest handshake of any peer of `iface`, Unix seconds (`None`: none yet).
pub fn latest_handshake(host: &Host, iface: &str) -> Result<Option<u64>> {
    Ok(wg_show(host, iface, "latest-handshakes")?
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .max())
}

/// A new key pair from `wg genkey` / `wg pubkey`: (private, public), base64.
pub fn wg_keypair() -> Result<(String, String)> {
    let private = cmd::run("wg", &["genkey"])?.trim().to_owned();
    let public = cmd::run_input("wg", &["pubkey"], Some(&format!("{private}\n")))?
        .trim()
        .to_owned();
    Ok((private, public))
}

/// A device brought up by Debian's `wg-quick` with `wireguard-go` (the kernel has no
/// wireguard module) in a host's namespace, from `<iface>.conf`; taken down when dropped
/// (the lab's end kills what is left).
pub struct WgQuick {
    /// The host.
    pub host: Host,
    /// The interface (the file's name).
    pub iface: String,
    /// The configuration file.
    pub conf: PathBuf,
    up: bool,
}

impl WgQuick {
    /// `wg-quick up CONF` in `host`'s namespace; `conf` must be named `<iface>.conf`.
    pub fn up(host: &Host, conf: &Path) -> Result<WgQuick> {
        let iface = conf
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| conf.extension().is_some_and(|e| e == "conf") && s.len() <= 15)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: wg-quick needs IFACE.conf, IFACE at most 15 characters",
                    conf.display()
                ))
            })?
            .to_owned();
        wg_quick(host, "up", conf)?;
        Ok(WgQuick {
            host: host.clone(),
            iface,
            conf: conf.to_owned(),
            up: true,
        })
    }

    /// `wg-quick down`.
    pub fn down(mut self) -> Result<()> {
        self.up = false;
        wg_quick(&self.host, "down", &self.conf)
    }

    /// The newest handshake, Unix seconds.
    pub fn latest_handshake(&self) -> Result<Option<u64>> {
        latest_handshake(&self.host, &self.iface)
    }
}

impl Drop for WgQuick {
    fn drop(&mut self) {
        if self.up {
            let _ = wg_quick(&self.host, "down", &self.conf);
        }
    }
}

fn wg_quick(host: &Host, verb: &str, conf: &Path) -> Result<()> {
    let conf = conf.to_string_lossy();
    // wireguard-go daemonizes; without LOG_LEVEL its child holds none of our pipes.
    cmd::run_in(
        &host.ns,
        "env",
        &[
            "-u",
            "LOG_LEVEL",
            "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go",
            "wg-quick",
            verb,
            &conf,
        ],
    )
    .map(|_| ())
}

/// The value of `key` in a wg-quick configuration's text (the first one).
pub fn conf_value<'a>(conf: &'a str, key: &str) -> Option<&'a str> {
    conf.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// `conf` with the value of `key` (everywhere it occurs) replaced by `value`.
pub fn conf_with(conf: &str, key: &str, value: &str) -> String {
    conf.lines()
        .map(|l| match l.split_once('=') {
            Some((k, _)) if k.trim() == key => format!("{key} = {value}"),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The owner's `guardian wg device ...` in `host`'s namespace against `vm`: its stdout.
pub fn guardian_wg(host: &Host, vm: &Vm, args: &[&str]) -> Result<String> {
    let mut c = command("guardian")?;
    c.args(["wg", "device"])
        .args(args.get(..1).unwrap_or_default())
        .args(["--vm", &vm.url(), "--token", &vm.token])
        .args(args.get(1..).unwrap_or_default());
    run_in_host(host, c)
}

/// `guardian wg device add --vm URL --token T --name NAME -o <lab>/<iface>.conf --no-qr` on
/// `host` against `vm`, with a new interface name: the config's path.
pub fn device_add(lab: &Lab, host: &Host, vm: &Vm, name: &str) -> Result<PathBuf> {
    let conf = lab.path(&format!("{}.conf", lab.wg_ifname()));
    let conf_s = conf.to_string_lossy().into_owned();
    guardian_wg(host, vm, &["add", "--name", name, "-o", &conf_s, "--no-qr"])?;
    if !conf.is_file() {
        return Err(Error::Invalid(format!(
            "guardian wg device add wrote no {}",
            conf.display()
        )));
    }
    Ok(conf)
}

// ---------------------------------------------------------------------------------------
// make bench-overlay

/// What [`bench_overlay`] runs.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// The fast link: the edge's link, each way.
    pub link: Impairment,
    /// The link of the fallback's measurement, each way.
    pub fallback_link: Impairment,
    /// Seconds of each iperf3 run.
    pub secs: u32,
    /// Runs of each kind (medians are reported).
    pub runs: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            link: Impairment {
                rate_kbit: Some(1_000_000),
                ..Default::default()
            },
            fallback_link: crate::playback::BENCH_LINK,
            secs: 10,
            runs: 3,
        }
    }
}

/// What [`bench_overlay`] measured, bytes/s (medians).
#[derive(Debug, Clone)]
pub struct OverlayBench {
    /// What ran.
    pub options: BenchOptions,
    /// iperf3 edge -> vm on the underlay (their lab addresses, through the edge's NAT).
    pub underlay: f64,
    /// iperf3 edge -> vm over the overlay (UDP path).
    pub overlay: f64,
    /// iperf3 edge -> vm over Debian's wireguard-go between the same two namespaces.
    pub wireguard_go: f64,
    /// iperf3 TCP edge -> vm on the fallback's link, UDP blocked.
    pub tcp: f64,
    /// iperf3 edge -> vm over the overlay's stream fallback on that link.
    pub fallback: f64,
    /// Seconds from blocking UDP to the vm listing the stream path.
    pub to_stream_s: f64,
}

impl OverlayBench {
    /// The printed table.
    pub fn table(&self) -> String {
        let mb = |b: f64| b * 8.0 / 1e6;
        let link = |i: &Impairment| {
            format!(
                "{} Mbit/s, +{} ms each way",
                i.rate_kbit.unwrap_or(0) / 1000,
                i.delay.as_millis()
            )
        };
        let o = &self.options;
        format!(
            "edge behind a port-restricted NAT -> public vm, iperf3 TCP, {} s a run, median of {} runs\n\
             {:<46} {:>10} {:>8}\n\
             link: {}\n\
             {:<46} {:>10.1} {:>8}\n\
             {:<46} {:>10.1} {:>7.2}x\n\
             {:<46} {:>10.1} {:>7.2}x\n\
             link: {}, UDP blocked at the edge's router (stream after {:.1} s)\n\
             {:<46} {:>10.1} {:>8}\n\
             {:<46} {:>10.1} {:>7.2}x\n\
             overlay / wireguard-go: {:.2}x (goal >= 1.0); overlay / underlay: {:.2}x; \
             wireguard-go / underlay: {:.2}x\n\
             fallback / TCP: {:.2}x (goal >= 0.7)",
            o.secs,
            o.runs,
            "path",
            "Mbit/s",
            "ratio",
            link(&o.link),
            "underlay (reference)",
            mb(self.underlay),
            "1.00x",
            "overlay, UDP (GotaTun)",
            mb(self.overlay),
            self.overlay / self.underlay,
            "wireguard-go (Debian, wg-quick), same path",
            mb(self.wireguard_go),
            self.wireguard_go / self.underlay,
            link(&o.fallback_link),
            self.to_stream_s,
            "underlay TCP (reference)",
            mb(self.tcp),
            "1.00x",
            "overlay, stream fallback (libp2p over TCP)",
            mb(self.fallback),
            self.fallback / self.tcp,
            self.overlay / self.wireguard_go,
            self.overlay / self.underlay,
            self.wireguard_go / self.underlay,
            self.fallback / self.tcp,
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The UDP port of the benchmark's wireguard-go pair at the vm.
pub const WIREGUARD_GO_PORT: u16 = 51821;

/// A wireguard-go pair (wg-quick) between `edge` and `vm`, as the overlay's reference:
/// `10.99.0.2` (edge) dials `10.99.0.1` (vm, public, UDP [`WIREGUARD_GO_PORT`]); up once a
/// handshake is done. (the vm's device, the edge's device).
pub fn wireguard_go_pair(lab: &Lab, edge: &Host, vm: &Host) -> Result<(WgQuick, WgQuick)> {
    let (vm_key, vm_pub) = wg_keypair()?;
    let (edge_key, edge_pub) = wg_keypair()?;
    let vm_conf = lab.path(&format!("{}.conf", lab.wg_ifname()));
    let edge_conf = lab.path(&format!("{}.conf", lab.wg_ifname()));
    let write = |p: &Path, text: String| {
        std::fs::write(p, text).map_err(|e| Error::io(format!("writing {}", p.display()), e))
    };
    write(
        &vm_conf,
        format!(
            "[Interface]\nPrivateKey = {vm_key}\nListenPort = {WIREGUARD_GO_PORT}\nAddress = 10.99.0.1/24\n\n\
             [Peer]\nPublicKey = {edge_pub}\nAllowedIPs = 10.99.0.2/32\n"
        ),
    )?;
    write(
        &edge_conf,
        format!(
            "[Interface]\nPrivateKey = {edge_key}\nAddress = 10.99.0.2/24\n\n\
             [Peer]\nPublicKey = {vm_pub}\nEndpoint = {}:{WIREGUARD_GO_PORT}\nAllowedIPs = 10.99.0.1/32\n\
             PersistentKeepalive = 25\n",
            vm.ip
        ),
    )?;
    let v = WgQuick::up(vm, &vm_conf)?;
    let e = WgQuick::up(edge, &edge_conf)?;
    wait_for("a wireguard-go handshake", Duration::from_secs(20), || {
        e.latest_handshake().is_ok_and(|h| h.is_some())
    })?;
    Ok((v, e))
}

/// `make bench-overlay`: a vm and an edge behind a port-restricted NAT on `options.link`;
/// `options.runs` times, interleaved: iperf3 on the underlay, over the overlay and over
/// wireguard-go on the same two namespaces; then on `options.fallback_link` with UDP blocked
/// at the edge's router: iperf3 over TCP on the underlay and over the overlay's stream
/// fallback. Prints nothing, asserts nothing about speed.
pub fn bench_overlay(options: BenchOptions) -> Result<OverlayBench> {
    if options.runs == 0 || options.secs == 0 {
        return Err(Error::Invalid("runs and secs must be at least 1".into()));
    }
    let (lab, vm) = lab_with_overlay_vm(&[])?;
    let edge = overlay_edge(
        &lab,
        &vm,
        "edge",
        NatProfile::PortRestrictedCone,
        Some(options.link),
    )?;
    let t = wait_tunnel(&lab, &vm, &edge, Some("udp"), TUNNEL_TIMEOUT)?;
    let vm4 = IpAddr::V4(vm_ipv4(&vm)?);
    // The overlay answers before iperf3 starts.
    let token = local_token(&edge)?.to_owned();
    wait_for(
        "the edge's API at its overlay address from the vm",
        Duration::from_secs(30),
        || {
            curl_edge(
                &vm.host,
                IpAddr::V6(t.overlay_ip),
                &token,
                Duration::from_secs(5),
            )
            .is_ok_and(|(s, _)| s == 200)
        },
    )
    .map_err(|e| Error::Invalid(format!("{e}\n{}", logs(&vm, &[&edge]))))?;
    let (_wg_vm, _wg_edge) = wireguard_go_pair(&lab, &edge.host, &vm.host)?;
    let wg_go = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1));
    let (mut under, mut over, mut go) = (vec![], vec![], vec![]);
    for _ in 0..options.runs {
        under.push(iperf3_at(
            &lab,
            &edge.host,
            &vm.host,
            vm.ip().into(),
            options.secs,
        )?);
        over.push(iperf3_at(&lab, &edge.host, &vm.host, vm4, options.secs)?);
        go.push(iperf3_at(&lab, &edge.host, &vm.host, wg_go, options.secs)?);
    }

    lab.impair(&edge.host.link, options.fallback_link)?;
    let blocked = Instant::now();
    lab.block_udp(&edge.host)?;
    wait_path(&lab, &vm, &edge, "stream", Duration::from_secs(90))?;
    let to_stream_s = blocked.elapsed().as_secs_f64();
    wait_for(
        "the edge's API over the stream fallback",
        Duration::from_secs(60),
        || {
            curl_edge(
                &vm.host,
                IpAddr::V4(t.overlay_ipv4),
                &token,
                Duration::from_secs(10),
            )
            .is_ok_and(|(s, _)| s == 200)
        },
    )
    .map_err(|e| Error::Invalid(format!("{e}\n{}", logs(&vm, &[&edge]))))?;
    let (mut tcp, mut fallback) = (vec![], vec![]);
    for _ in 0..options.runs {
        tcp.push(iperf3_at(
            &lab,
            &edge.host,
            &vm.host,
            vm.ip().into(),
            options.secs,
        )?);
        fallback.push(iperf3_at(&lab, &edge.host, &vm.host, vm4, options.secs)?);
    }
    Ok(OverlayBench {
        options,
        underlay: median(under),
        overlay: median(over),
        wireguard_go: median(go),
        tcp: median(tcp),
        fallback: median(fallback),
        to_stream_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_row_makes_a_tunnel_once_complete() {
        let mut d = serde_json::json!({
            "peer_id": "12D3KooWx",
            "name": "edge",
            "overlay_ip": "fd12:3456:789a::2",
            "overlay_ipv4": "10.77.0.2",
            "overlay_path": null,
            "last_handshake_ms": null,
        });
        assert_eq!(Tunnel::from_device(&d), None);
        d["overlay_path"] = "udp".into();
        d["last_handshake_ms"] = 1_700_000_000_000u64.into();
        d["overlay_generation"] = 3.into();
        let t = Tunnel::from_device(&d).unwrap();
        assert_eq!(t.path, "udp");
        assert_eq!(t.generation, Some(3));
        assert_eq!(t.vm_ip(), "fd12:3456:789a::1".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn wg_quick_configs_are_edited_by_key() {
        let conf = "[Interface]\nPrivateKey = abc=\nAddress = fd00::3/128, 10.77.0.3/32\n\n\
                    [Peer]\nPublicKey = xyz=\nEndpoint = 198.18.1.2:51820\nAllowedIPs = fd00::/64\n";
        assert_eq!(conf_value(conf, "PrivateKey"), Some("abc="));
        assert_eq!(conf_value(conf, "Endpoint"), Some("198.18.1.2:51820"));
        let edited = conf_with(conf, "Endpoint", "198.18.2.2:51820");
        assert_eq!(conf_value(&edited, "Endpoint"), Some("198.18.2.2:51820"));
        assert_eq!(conf_value(&edited, "PublicKey"), Some("xyz="));
    }
}
