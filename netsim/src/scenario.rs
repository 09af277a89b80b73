//! The scenarios the product must survive, shared by the tests (which assert) and the
//! `netsim run` command (which prints): an edge behind each NAT enrolling and delivering
//! events, a vm restart and a cut uplink, an impaired uplink carrying events and an archive.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::guardian::{Edge, Vm, wait_for};
use crate::impair::Impairment;
use crate::lab::Lab;
use crate::nat::NatProfile;

/// How long an edge may take to enroll, or a batch of events to arrive, on a clean network.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A lab with a running vm on a public host.
pub fn lab_with_vm() -> Result<(Lab, Vm)> {
    let lab = Lab::new()?;
    let host = lab.public_host("vm")?;
    let mut vm = Vm::init(&lab, host)?;
    vm.start(&lab)?;
    Ok((lab, vm))
}

/// Makes a host behind `profile`, packages and installs an edge on it, and starts it.
pub fn edge_behind(lab: &Lab, vm: &Vm, name: &str, profile: NatProfile) -> Result<Edge> {
    let host = lab.host_behind(name, profile)?;
    let pkg = vm.package(name)?;
    let mut edge = Edge::install(lab, host, &pkg)?;
    edge.start(lab)?;
    Ok(edge)
}

fn with_logs(e: Error, vm: &Vm, edges: &[&Edge]) -> Error {
    let mut text = format!("{e}\n{}", vm.log_tail(25));
    for edge in edges {
        text.push('\n');
        text.push_str(&edge.log_tail(25));
    }
    Error::Invalid(text)
}

/// Waits until the vm lists the edge named `name` as enrolled and online.
pub fn wait_enrolled(lab: &Lab, vm: &Vm, edge: &Edge, timeout: Duration) -> Result<Duration> {
    let name = edge.host.name.clone();
    wait_for(&format!("{name} to enroll"), timeout, || {
        vm.devices(lab).is_ok_and(|d| {
            d.iter()
                .any(|d| d["name"] == name.as_str() && d["online"] == true)
        })
    })
    .map_err(|e| with_logs(e, vm, &[edge]))
}

/// Waits until the vm holds every id of `ids`; fails if it holds any twice.
pub fn wait_events(
    lab: &Lab,
    vm: &Vm,
    ids: &[String],
    timeout: Duration,
    edges: &[&Edge],
) -> Result<Duration> {
    let want: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut dup = None;
    let r = wait_for(&format!("{} events at the vm", ids.len()), timeout, || {
        let Ok(held) = vm.event_ids(lab) else {
            return false;
        };
        let mut seen = HashSet::new();
        for id in &held {
            if !seen.insert(id.as_str()) {
                dup = Some(id.clone());
            }
        }
        dup.is_some() || want.iter().all(|w| seen.contains(w))
    })
    .map_err(|e| with_logs(e, vm, edges))?;
    if let Some(d) = dup {
        return Err(Error::Invalid(format!("the vm holds event {d} twice")));
    }
    Ok(r)
}

/// The transport an edge reached the vm over, from its log (`quic`, `tcp`, or `?`).
pub fn transport(edge: &Edge) -> &'static str {
    let log = edge.proc.as_ref().map(|p| p.stderr()).unwrap_or_default();
    let line = log
        .lines()
        .rfind(|l| l.contains(" connected") && l.contains("relayed=false"))
        .unwrap_or("");
    if line.contains("quic") {
        "quic"
    } else if line.contains("/tcp/") {
        "tcp"
    } else {
        "?"
    }
}

/// What happened for one edge in [`enroll_behind_each`].
#[derive(Debug, Clone)]
pub struct EnrollResult {
    /// Its NAT.
    pub profile: NatProfile,
    /// Seconds from start to enrolled and online.
    pub enrolled_s: f64,
    /// Seconds from emitting events to all held by the vm.
    pub delivered_s: f64,
    /// The transport to the vm.
    pub transport: &'static str,
}

/// Scenario a: an edge behind each of `profiles` (all at once) enrolls with the public vm and
/// delivers `events` test events.
pub fn enroll_behind_each(
    lab: &Lab,
    vm: &Vm,
    profiles: &[NatProfile],
    events: usize,
) -> Result<Vec<EnrollResult>> {
    let start = Instant::now();
    let mut edges = Vec::new();
    for p in profiles {
        edges.push((*p, edge_behind(lab, vm, &format!("edge-{}", p.name()), *p)?));
    }
    let mut enrolled = Vec::new();
    for (_, e) in &edges {
        wait_enrolled(lab, vm, e, DELIVERY_TIMEOUT)?;
        enrolled.push(start.elapsed().as_secs_f64());
    }
    let mut out = Vec::new();
    for ((p, e), enrolled_s) in edges.iter().zip(enrolled) {
        let t = Instant::now();
        let mut ids = Vec::new();
        for _ in 0..events {
            ids.push(e.emit(&format!("cam-{}", p.name()))?);
        }
        wait_events(lab, vm, &ids, DELIVERY_TIMEOUT, &[e])?;
        out.push(EnrollResult {
            profile: *p,
            enrolled_s,
            delivered_s: t.elapsed().as_secs_f64(),
            transport: transport(e),
        });
    }
    Ok(out)
}

/// What [`outage`] measured.
#[derive(Debug, Clone)]
pub struct OutageReport {
    /// Seconds from the vm's restart to the backlog held by it.
    pub after_restart_s: f64,
    /// How long the link was cut.
    pub cut_s: f64,
    /// Seconds from the link's restoration to the backlog held by the vm.
    pub after_restore_s: f64,
    /// Events delivered in all, each exactly once.
    pub events: usize,
    /// Connections the edge opened to the vm over the restart (at least 1).
    pub connections_after_restart: usize,
    /// Connections the edge opened to the vm over the cut (0: its QUIC connection, which
    /// idles out after 60 s, outlived a shorter cut).
    pub connections_after_cut: usize,
}

/// Scenario b: an edge behind `profile` delivers events; the vm restarts (events emitted while
/// it is down), then the edge's uplink is cut for `cut` (events emitted meanwhile): every
/// event reaches the vm once.
pub fn outage(lab: &Lab, vm: &mut Vm, profile: NatProfile, cut: Duration) -> Result<OutageReport> {
    let edge = edge_behind(lab, vm, "edge-outage", profile)?;
    wait_enrolled(lab, vm, &edge, DELIVERY_TIMEOUT)?;
    let emit = |n: usize, tag: &str| -> Result<Vec<String>> {
        (0..n).map(|_| edge.emit(&format!("cam-{tag}"))).collect()
    };
    let mut all = emit(3, "before")?;
    wait_events(lab, vm, &all, DELIVERY_TIMEOUT, &[&edge])?;

    let connections = |edge: &Edge, vm: &Vm| {
        edge.proc
            .as_ref()
            .map(|p| p.stderr())
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains(" connected") && l.contains(&vm.peer_id) && l.contains("relayed=false")
            })
            .count()
    };
    let n0 = connections(&edge, vm);
    vm.stop();
    let during_restart = emit(3, "restart")?;
    all.extend(during_restart);
    std::thread::sleep(Duration::from_secs(2));
    vm.start(lab)?;
    let after_restart_s = wait_events(lab, vm, &all, DELIVERY_TIMEOUT, &[&edge])?.as_secs_f64();

    let n1 = connections(&edge, vm);
    lab.cut(&edge.host.link)?;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    all.extend(emit(3, "cut")?);
    std::thread::sleep(cut.saturating_sub(t.elapsed()));
    lab.restore(&edge.host.link)?;
    let cut_s = t.elapsed().as_secs_f64();
    all.extend(emit(2, "after")?);
    let after_restore_s =
        wait_events(lab, vm, &all, DELIVERY_TIMEOUT + cut, &[&edge])?.as_secs_f64();
    let held = vm.event_ids(lab)?;
    let unique: HashSet<&String> = held.iter().collect();
    if unique.len() != held.len() {
        return Err(Error::Invalid("the vm holds an event twice".into()));
    }
    let n2 = connections(&edge, vm);
    Ok(OutageReport {
        after_restart_s,
        cut_s,
        after_restore_s,
        events: all.len(),
        connections_after_restart: n1 - n0,
        connections_after_cut: n2 - n1,
    })
}

/// What [`impaired_uplink`] measured.
#[derive(Debug, Clone)]
pub struct ImpairedReport {
    /// The impairment (each direction).
    pub impairment: Impairment,
    /// Seconds to enroll over it.
    pub enrolled_s: f64,
    /// Seconds for the events to arrive.
    pub events_s: f64,
    /// Seconds for the archived file's objects to be listed by the vm.
    pub archive_s: f64,
    /// Bytes archived.
    pub archive_bytes: usize,
    /// The transport to the vm.
    pub transport: &'static str,
    /// The impaired path (edge to vm) as measured before the edge started.
    pub measured: crate::probe::PathStats,
}

/// Scenario d: an edge behind `profile` on an impaired uplink (both directions) enrolls,
/// delivers `events` events and archives a file of `archive_bytes`.
pub fn impaired_uplink(
    lab: &Lab,
    vm: &Vm,
    profile: NatProfile,
    imp: Impairment,
    events: usize,
    archive_bytes: usize,
    timeout: Duration,
) -> Result<ImpairedReport> {
    let host = lab.host_behind("edge-slow", profile)?;
    lab.impair(&host.link, imp)?;
    let measured =
        crate::probe::measure_path(lab, &host, &vm.host, 200, imp.delay * 2 + imp.jitter * 2)?;
    let pkg = vm.package("edge-slow")?;
    let mut edge = Edge::install(lab, host, &pkg)?;
    let t = Instant::now();
    edge.start(lab)?;
    wait_enrolled(lab, vm, &edge, timeout)?;
    let enrolled_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let ids: Vec<String> = (0..events)
        .map(|_| edge.emit("cam-slow"))
        .collect::<Result<_>>()?;
    let events_s = wait_events(lab, vm, &ids, timeout, &[&edge])?.as_secs_f64();
    let _ = t;

    let file = lab.path("clip.bin");
    std::fs::write(&file, pseudo_random(archive_bytes, 7))
        .map_err(|e| Error::io("writing the clip", e))?;
    edge.archive_file("cam-archive", &file)?;
    let archive_s = wait_for("the archived clip at the vm", timeout, || {
        vm.archive(lab, "cam-archive").is_ok_and(|o| !o.is_empty())
    })
    .map_err(|e| with_logs(e, vm, &[&edge]))?
    .as_secs_f64();
    Ok(ImpairedReport {
        impairment: imp,
        enrolled_s,
        events_s,
        archive_s,
        archive_bytes,
        transport: transport(&edge),
        measured,
    })
}

pub use guardian_test_support::pseudo_random;
