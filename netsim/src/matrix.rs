//! The relay + DCUtR matrix: for each pair of NAT profiles, a dialing probe peer ("client",
//! behind NAT A) reaches a listening probe peer ("edge", behind NAT B) through the vm's relay,
//! then tries to go direct. Each peer is a `netsim peer` process in its own namespace, keyed
//! by an install package of the lab's vm (the vm relays only for peers on its allow-list).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::guardian::{Vm, wait_for};
use crate::lab::Lab;
use crate::nat::NatProfile;
use crate::process::Proc;

/// What a pair must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Go direct (within [`DIRECT_WITHIN`]).
    Direct,
    /// Connect through the relay; a direct connection is impossible.
    Relayed,
    /// Connect; direct depends on which side dials (noted, not asserted).
    Either,
}

/// How soon an endpoint-independent pair must be direct.
pub const DIRECT_WITHIN: Duration = Duration::from_secs(15);

/// The expectation by NAT theory: hole punching needs a predictable public port on at least
/// one side whose filter lets the other side's packets in. Two endpoint-independent mappings
/// always go direct. A symmetric side can only reach a peer that takes packets from any port
/// of its address (none, full cone, restricted cone), and only when its own packets are the
/// ones that open the path, which depends on the roles DCUtR gives: `Either`. Against
/// port-restricted filtering, or a second symmetric NAT, no path exists. Without UDP only TCP
/// is left, whose simultaneous open through two NATs we do not require.
pub fn expectation(client: NatProfile, edge: NatProfile) -> Expect {
    use NatProfile as P;
    let open_filter = |p: P| matches!(p, P::None | P::FullCone | P::RestrictedCone);
    match (client, edge) {
        (P::Symmetric, P::Symmetric) => Expect::Relayed,
        (P::Symmetric, other) | (other, P::Symmetric) => {
            if !other.udp() {
                Expect::Relayed
            } else if open_filter(other) {
                Expect::Either
            } else {
                Expect::Relayed
            }
        }
        (a, b) if !a.udp() || !b.udp() => Expect::Either,
        _ => Expect::Direct,
    }
}

/// What happened for one pair.
#[derive(Debug, Clone)]
pub struct PairResult {
    /// The dialer's NAT.
    pub client: NatProfile,
    /// The listener's NAT.
    pub edge: NatProfile,
    /// Seconds from the dial to the first connection (relayed or direct).
    pub connect_s: Option<f64>,
    /// Seconds from the dial to the first direct connection.
    pub direct_s: Option<f64>,
    /// The direct connection's remote address (QUIC or TCP).
    pub direct_addr: Option<String>,
    /// What went wrong before a result, if anything.
    pub error: Option<String>,
}

impl PairResult {
    /// Whether the result meets [`expectation`]; `Err` says how not.
    pub fn check(&self) -> std::result::Result<(), String> {
        let e = expectation(self.client, self.edge);
        let name = format!("{} -> {}", self.client, self.edge);
        if let Some(err) = &self.error {
            return Err(format!("{name}: {err}"));
        }
        if self.connect_s.is_none() {
            return Err(format!("{name}: never connected"));
        }
        match (e, self.direct_s) {
            (Expect::Direct, None) => Err(format!("{name}: not direct")),
            (Expect::Direct, Some(t)) if t > DIRECT_WITHIN.as_secs_f64() => {
                Err(format!("{name}: direct only after {t:.1} s"))
            }
            (Expect::Relayed, Some(_)) => Err(format!(
                "{name}: went direct ({}) where the NATs should not allow it",
                self.direct_addr.as_deref().unwrap_or("?")
            )),
            _ => Ok(()),
        }
    }
}

fn netsim_exe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("NETSIM_EXE") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("current exe", e))?;
    let mut candidates = vec![exe.clone()];
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join("netsim"));
        if let Some(up) = dir.parent() {
            candidates.push(up.join("netsim"));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "netsim") && p.is_file())
        .ok_or_else(|| Error::Invalid("the netsim binary is not built (set NETSIM_EXE)".into()))
}

/// Parses a peer's JSON lines.
fn lines(p: &Proc) -> Vec<serde_json::Value> {
    p.stdout()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn first_t(lines: &[serde_json::Value], event: &str) -> Option<(f64, serde_json::Value)> {
    lines
        .iter()
        .find(|l| l["event"] == event)
        .and_then(|l| l["t"].as_f64().map(|t| (t, l.clone())))
}

/// Runs `pairs` (client NAT, edge NAT), `parallel` at a time, through `vm`'s relay.
/// `settle` is how long a dialer waits for a direct connection before giving up.
pub fn run(
    lab: &Lab,
    vm: &Vm,
    pairs: &[(NatProfile, NatProfile)],
    parallel: usize,
    settle: Duration,
) -> Result<Vec<PairResult>> {
    let exe = netsim_exe()?;
    let mut results = Vec::new();
    for (batch_no, batch) in pairs.chunks(parallel.max(1)).enumerate() {
        // Hosts and packages for the whole batch first, then one allow-list refresh.
        struct Pair {
            client: NatProfile,
            edge: NatProfile,
            c_host: crate::lab::Host,
            e_host: crate::lab::Host,
            c_pkg: PathBuf,
            e_pkg: PathBuf,
            listener: Option<Proc>,
            dialer: Option<Proc>,
            error: Option<String>,
        }
        let mut set = Vec::new();
        for (i, &(client, edge)) in batch.iter().enumerate() {
            let tag = format!("m{batch_no}x{i}");
            let c_host = lab.host_behind(&format!("{tag}c"), client)?;
            let e_host = lab.host_behind(&format!("{tag}e"), edge)?;
            let c_pkg = vm.package(&format!("{tag}c"))?;
            let e_pkg = vm.package(&format!("{tag}e"))?;
            set.push(Pair {
                client,
                edge,
                c_host,
                e_host,
                c_pkg,
                e_pkg,
                listener: None,
                dialer: None,
                error: None,
            });
        }
        // The vm refreshes its allow-list every 2 s.
        std::thread::sleep(Duration::from_millis(2500));
        let peer_cmd = |pkg: &PathBuf, extra: &[&str]| {
            let mut c = Command::new(&exe);
            c.arg("peer").arg("--package").arg(pkg).args(extra);
            c.env("GUARDIAN_LOG", "info,libp2p=warn,libp2p_dcutr=debug");
            c
        };
        let total = format!("{}", settle.as_secs() + 40);
        for p in &mut set {
            let cmd = peer_cmd(&p.e_pkg, &["--listen", "--timeout", &total]);
            p.listener = Some(lab.spawn(&p.e_host, &format!("{}-listener", p.e_host.name), cmd)?);
        }
        for p in &mut set {
            let l = p.listener.as_ref().expect("started");
            if let Err(e) = wait_for(
                "the listener's relay reservation",
                Duration::from_secs(30),
                || lines(l).iter().any(|v| v["event"] == "reserved"),
            ) {
                p.error = Some(format!("{e}\n{}", l.log_tail(20)));
            }
        }
        for p in &mut set {
            if p.error.is_some() {
                continue;
            }
            let target = lines(p.listener.as_ref().expect("started"))
                .iter()
                .find(|v| v["event"] == "started")
                .and_then(|v| v["peer"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let timeout = format!("{}", settle.as_secs());
            let cmd = peer_cmd(
                &p.c_pkg,
                &["--dial", &target, "--timeout", &timeout, "--hold", "1"],
            );
            p.dialer = Some(lab.spawn(&p.c_host, &format!("{}-dialer", p.c_host.name), cmd)?);
        }
        for p in &mut set {
            let mut r = PairResult {
                client: p.client,
                edge: p.edge,
                connect_s: None,
                direct_s: None,
                direct_addr: None,
                error: p.error.clone(),
            };
            if let Some(d) = p.dialer.as_mut() {
                if let Err(e) = d.wait_exit(settle + Duration::from_secs(40)) {
                    r.error = Some(e.to_string());
                }
                let l = lines(d);
                let dial_t = first_t(&l, "dialing").map(|(t, _)| t);
                if let Some(t0) = dial_t {
                    r.connect_s = first_t(&l, "connected").map(|(t, _)| t - t0);
                    if let Some((t, v)) = first_t(&l, "direct") {
                        r.direct_s = Some(t - t0);
                        r.direct_addr = v["address"].as_str().map(str::to_owned);
                    }
                } else if r.error.is_none() {
                    r.error = Some(format!("the dialer never dialed\n{}", d.log_tail(20)));
                }
            }
            results.push(r);
        }
        // Stop this batch's peers before the next one starts.
        drop(set);
    }
    Ok(results)
}

/// The matrix as a table: rows are the client's NAT, columns the edge's; each cell is
/// `Q 0.01/0.40` (direct over QUIC, or `T` TCP: seconds from the dial to the relayed
/// connection / to the direct one), `relay 0.01` (relayed only), or `FAIL`; `!` marks a
/// cell that missed its expectation.
pub fn table(results: &[PairResult]) -> String {
    let mut rows: Vec<NatProfile> = results.iter().map(|r| r.client).collect();
    let mut cols: Vec<NatProfile> = results.iter().map(|r| r.edge).collect();
    rows.sort();
    rows.dedup();
    cols.sort();
    cols.dedup();
    let w = 16;
    let mut s = format!("{:<w$}", "client \\ edge");
    for c in &cols {
        s.push_str(&format!("{:<w$}", c.name()));
    }
    s.push('\n');
    for r in &rows {
        s.push_str(&format!("{:<w$}", r.name()));
        for c in &cols {
            let cell = match results.iter().find(|x| x.client == *r && x.edge == *c) {
                None => "-".to_owned(),
                Some(x) => {
                    let mark = if x.check().is_ok() { "" } else { "!" };
                    let proto = |a: &Option<String>| match a {
                        Some(a) if a.contains("quic") => "Q",
                        Some(_) => "T",
                        None => "",
                    };
                    match (x.connect_s, x.direct_s) {
                        (Some(c), Some(d)) => {
                            format!("{} {c:.2}/{d:.2}{mark}", proto(&x.direct_addr))
                        }
                        (None, Some(d)) => format!("{} -/{d:.2}{mark}", proto(&x.direct_addr)),
                        (Some(c), None) => format!("relay {c:.2}{mark}"),
                        (None, None) => format!("FAIL{mark}"),
                    }
                }
            };
            s.push_str(&format!("{cell:<w$}"));
        }
        s.push('\n');
    }
    s.push_str(
        "Q/T a/b = direct over QUIC/TCP, a s from dial to the relayed connection, b s to the direct one; \
         relay a = relayed only; ! = not what NAT theory expects\n",
    );
    s
}

/// Every pair of `profiles` (client, edge).
pub fn all_pairs(profiles: &[NatProfile]) -> Vec<(NatProfile, NatProfile)> {
    profiles
        .iter()
        .flat_map(|&c| profiles.iter().map(move |&e| (c, e)))
        .collect()
}
