//! A lab: a set of network namespaces made for one test or run, named by a prefix
//! (`gns-<pid>-<n>-`), with a routed "internet" core (198.18.0.0/15), public hosts on it,
//! hosts behind NAT routers, link impairment and cuts, and processes started inside the
//! namespaces. Dropping the lab kills its processes and deletes every namespace (and so every
//! link) it made, also when a test panics; [`sweep`] removes what interrupted runs left.
//!
//! Everything is done with the system tools (`ip`, `nft`, `tc`, `iptables-nft`, see
//! [`crate::cmd`]): a netlink crate would save a few milliseconds per call and add a second
//! way of doing what the tools, which we need anyway for nftables, already do.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::cmd;
use crate::error::{Error, Result};
use crate::impair::{self, Applied, Impairment};
use crate::nat::{self, NatBox, NatProfile};
use crate::netns;
use crate::process::Proc;

/// Every namespace the harness makes starts with this.
pub const PREFIX: &str = "gns-";

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// One end of a link: an interface in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct End {
    /// The namespace.
    pub ns: String,
    /// The interface.
    pub iface: String,
}

/// A veth pair between two namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// The end nearer the host (the "upload" side).
    pub near: End,
    /// The end nearer the internet.
    pub far: End,
}

/// A direction across a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the host's side towards the internet (upload).
    Up,
    /// From the internet towards the host (download).
    Down,
}

/// A host: a namespace with one interface `eth0`, on the internet or behind NAT.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its name in the lab.
    pub name: String,
    /// Its namespace.
    pub ns: String,
    /// Its address (private behind NAT).
    pub ip: Ipv4Addr,
    /// The address the internet sees (the outermost router's, behind NAT).
    pub public_ip: Ipv4Addr,
    /// Its NAT profile.
    pub nat: NatProfile,
    /// Its own link (eth0 to the next hop): impair or cut this for its uplink.
    pub link: Link,
    /// The router namespaces in front of it, nearest first.
    pub routers: Vec<String>,
}

#[derive(Default)]
struct State {
    namespaces: Vec<String>,
    attachments: u32,
    lans: u32,
    /// Home routers whose LAN is a bridge, with the next bridge port's number.
    bridged: HashMap<String, u32>,
    next_queue: HashMap<String, u16>,
    impaired: HashMap<End, Applied>,
    cut: Vec<End>,
    /// Router namespaces whose forwarded UDP is blocked ([`Lab::block_udp`]).
    udp_blocked: Vec<String>,
    /// WireGuard interface names given out ([`Lab::wg_ifname`]).
    wg_ifnames: Vec<String>,
}

/// A lab of namespaces; see the module documentation.
pub struct Lab {
    prefix: String,
    core: String,
    dir: Option<tempfile::TempDir>,
    keep_dir: bool,
    backend: impair::Backend,
    state: Mutex<State>,
}

impl Lab {
    /// Sweeps leftovers of dead runs, then makes an empty internet core.
    pub fn new() -> Result<Lab> {
        if !cmd::is_root() {
            return Err(Error::NotRoot);
        }
        cmd::check_tools()?;
        sweep()?;
        let seq = LAB_SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{PREFIX}{}-{seq}-", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir()
            .map_err(|e| Error::io("making the lab directory", e))?;
        let mut lab = Lab {
            core: format!("{prefix}internet"),
            prefix,
            dir: Some(dir),
            keep_dir: std::env::var_os("NETSIM_KEEP").is_some(),
            backend: impair::Backend::Emulated,
            state: Mutex::new(State::default()),
        };
        lab.add_ns(&lab.core.clone())?;
        forwarding(&lab.core)?;
        lab.backend = impair::backend(&lab.core);
        tracing::info!(prefix = %lab.prefix, dir = %lab.dir().display(), "lab up");
        Ok(lab)
    }

    /// The namespace name prefix of this lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The lab's folder (logs, data directories); deleted with the lab unless `NETSIM_KEEP`
    /// is set or a test is panicking.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }

    /// The impairment mechanism in use.
    pub fn backend(&self) -> impair::Backend {
        self.backend
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add_ns(&self, ns: &str) -> Result<()> {
        cmd::run("ip", &["netns", "add", ns])?;
        self.state().namespaces.push(ns.to_owned());
        cmd::run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// A new /24 on the core: (core side .1, outer side .2).
    fn attach(&self, ns: &str, iface: &str) -> Result<(Link, Ipv4Addr)> {
        let k = {
            let mut s = self.state();
            s.attachments += 1;
            s.attachments
        };
        if k > 510 {
            return Err(Error::Invalid(
                "more than 510 attachments to the core".into(),
            ));
        }
        let (b, c) = (18 + (k / 256) as u8, (k % 256) as u8);
        let core_ip = format!("198.{b}.{c}.1/24");
        let ip = Ipv4Addr::new(198, b, c, 2);
        let port = format!("p{k}");
        veth(ns, iface, &self.core, &port)?;
        addr_up(&self.core, &port, &core_ip)?;
        addr_up(ns, iface, &format!("{ip}/24"))?;
        cmd::run(
            "ip",
            &[
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                &format!("198.{b}.{c}.1"),
            ],
        )?;
        let link = Link {
            near: End {
                ns: ns.into(),
                iface: iface.into(),
            },
            far: End {
                ns: self.core.clone(),
                iface: port,
            },
        };
        Ok((link, ip))
    }

    fn check_name(&self, name: &str) -> Result<String> {
        if name.is_empty()
            || name.len() > 24
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(Error::Invalid(format!("bad host name {name:?}")));
        }
        let ns = format!("{}{name}", self.prefix);
        if self.state().namespaces.contains(&ns) {
            return Err(Error::Invalid(format!("host {name} exists")));
        }
        Ok(ns)
    }

    /// A host with a public address on the internet core.
    pub fn public_host(&self, name: &str) -> Result<Host> {
        let ns = self.check_name(name)?;
        self.add_ns(&ns)?;
        let (link, ip) = self.attach(&ns, "eth0")?;
        Ok(Host {
            name: name.into(),
            ns,
            ip,
            public_ip: ip,
            nat: NatProfile::None,
            link,
            routers: Vec::new(),
        })
    }

    /// A host behind a NAT router of `profile` (a public host for [`NatProfile::None`]).
    pub fn host_behind(&self, name: &str, profile: NatProfile) -> Result<Host> {
        let boxes: &[NatBox] = match profile {
            NatProfile::None => return self.public_host(name),
            NatProfile::FullCone => &[NatBox::FullCone],
            NatProfile::RestrictedCone => &[NatBox::RestrictedCone],
            NatProfile::PortRestrictedCone => &[NatBox::PortRestrictedCone],
            NatProfile::Symmetric => &[NatBox::Symmetric],
            NatProfile::UdpBlocked => &[NatBox::UdpBlocked],
            // Outermost first: the carrier's box, then the home router.
            NatProfile::Cgnat => &[NatBox::PortRestrictedCone, NatBox::PortRestrictedCone],
        };
        let ns = self.check_name(name)?;
        let lan = {
            let mut s = self.state();
            s.lans += 1;
            s.lans
        };
        if lan > 4000 {
            return Err(Error::Invalid("too many NATed hosts".into()));
        }
        let (hi, lo) = ((lan / 256) as u8, (lan % 256) as u8);
        // Routers, outermost first; each one's WAN is the previous one's LAN.
        let mut routers = Vec::new();
        let mut public_ip = None;
        let mut upstream: Option<String> = None; // the previous (outer) router
        for (i, b) in boxes.iter().enumerate() {
            let rns = if i + 1 == boxes.len() {
                format!("{ns}-nat")
            } else {
                format!("{ns}-cg")
            };
            self.add_ns(&rns)?;
            forwarding(&rns)?;
            match &upstream {
                None => {
                    let (_, ip) = self.attach(&rns, "wan")?;
                    public_ip = Some(ip);
                }
                Some(up) => {
                    // Carrier segment 100.64.0.0/10: carrier .1, home router .2.
                    let net = format!("100.{}.{lo}", 64 + hi);
                    veth(&rns, "wan", up, "lan")?;
                    addr_up(up, "lan", &format!("{net}.1/24"))?;
                    addr_up(&rns, "wan", &format!("{net}.2/24"))?;
                    cmd::run(
                        "ip",
                        &[
                            "-n",
                            &rns,
                            "route",
                            "add",
                            "default",
                            "via",
                            &format!("{net}.1"),
                        ],
                    )?;
                }
            }
            cmd::nft(&rns, &nat::ruleset(*b))?;
            upstream = Some(rns.clone());
            routers.insert(0, rns);
        }
        let home = routers[0].clone();
        let net = format!("10.{hi}.{lo}");
        self.add_ns(&ns)?;
        veth(&ns, "eth0", &home, "lan")?;
        addr_up(&home, "lan", &format!("{net}.1/24"))?;
        addr_up(&ns, "eth0", &format!("{net}.2/24"))?;
        cmd::run(
            "ip",
            &[
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &format!("{net}.1"),
            ],
        )?;
        Ok(Host {
            name: name.into(),
            ns: ns.clone(),
            ip: format!("{net}.2").parse().expect("valid"),
            public_ip: public_ip.expect("one router at least"),
            nat: profile,
            link: Link {
                near: End {
                    ns,
                    iface: "eth0".into(),
                },
                far: End {
                    ns: home,
                    iface: "lan".into(),
                },
            },
            routers,
        })
    }

    /// Another host on the LAN of `beside` (a host behind NAT), such as a camera beside the
    /// edge: same subnet, same router, reachable by broadcast and multicast (WS-Discovery).
    /// The first such host makes the home router's LAN a bridge: the bridge takes the name
    /// `lan` and the router's address (so the NAT rules, which match `iifname "lan"`, hold
    /// for every host on it), and each host's veth is a port (`lanp0` is `beside`'s). From
    /// then on, impairing or cutting `beside.link` acts on the bridge: on the whole LAN's
    /// side of the router. Make the LAN before starting processes on `beside`.
    pub fn host_beside(&self, name: &str, beside: &Host) -> Result<Host> {
        let router = beside
            .routers
            .first()
            .ok_or_else(|| Error::Invalid(format!("{} is not behind NAT: no LAN", beside.name)))?
            .clone();
        let ns = self.check_name(name)?;
        let [a, b, c, _] = beside.ip.octets();
        let gateway = format!("{a}.{b}.{c}.1");
        let port = {
            let mut s = self.state();
            let next = s.bridged.entry(router.clone()).or_insert(0);
            *next += 1;
            *next
        };
        if port == 1 {
            let ip = |args: &[&str]| {
                let mut all = vec!["-n", router.as_str()];
                all.extend_from_slice(args);
                cmd::run("ip", &all).map(|_| ())
            };
            ip(&["link", "set", "lan", "down"])?;
            ip(&["link", "set", "lan", "name", "lanp0"])?;
            ip(&["addr", "flush", "dev", "lanp0"])?;
            ip(&[
                "link",
                "add",
                "name",
                "lan",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ])?;
            ip(&["link", "set", "lanp0", "master", "lan"])?;
            ip(&["link", "set", "lanp0", "up"])?;
            addr_up(&router, "lan", &format!("{gateway}/24"))?;
        }
        if port > 250 {
            return Err(Error::Invalid("too many hosts on one LAN".into()));
        }
        let iface = format!("lanp{port}");
        self.add_ns(&ns)?;
        veth(&ns, "eth0", &router, &iface)?;
        cmd::run(
            "ip",
            &["-n", &router, "link", "set", &iface, "master", "lan"],
        )?;
        cmd::run("ip", &["-n", &router, "link", "set", &iface, "up"])?;
        let ip: Ipv4Addr = format!("{a}.{b}.{c}.{}", 2 + port).parse().expect("valid");
        addr_up(&ns, "eth0", &format!("{ip}/24"))?;
        cmd::run(
            "ip",
            &["-n", &ns, "route", "add", "default", "via", &gateway],
        )?;
        Ok(Host {
            name: name.into(),
            ns: ns.clone(),
            ip,
            public_ip: beside.public_ip,
            nat: beside.nat,
            link: Link {
                near: End {
                    ns,
                    iface: "eth0".into(),
                },
                far: End { ns: router, iface },
            },
            routers: beside.routers.clone(),
        })
    }

    /// Impairs `link` in both directions (each way gets `imp`).
    pub fn impair(&self, link: &Link, imp: Impairment) -> Result<()> {
        self.impair_dir(link, Dir::Up, imp)?;
        self.impair_dir(link, Dir::Down, imp)
    }

    /// Impairs the packets crossing `link` one way (replacing what was there).
    pub fn impair_dir(&self, link: &Link, dir: Dir, imp: Impairment) -> Result<()> {
        let (from, to) = match dir {
            Dir::Up => (&link.near, &link.far),
            Dir::Down => (&link.far, &link.near),
        };
        self.clear_dir(from)?;
        let queue = {
            let mut s = self.state();
            // The delay line's queue lives where the packets arrive.
            let q = s.next_queue.entry(to.ns.clone()).or_insert(0);
            *q += 1;
            *q
        };
        let applied = impair::apply(
            self.backend,
            (&from.ns, &from.iface),
            (&to.ns, &to.iface),
            queue,
            &imp,
        )?;
        self.state().impaired.insert(from.clone(), applied);
        tracing::info!(ns = %from.ns, iface = %from.iface, ?imp, "impaired");
        Ok(())
    }

    /// Removes the impairment of `link`, both ways.
    pub fn clear_impairment(&self, link: &Link) -> Result<()> {
        self.clear_dir(&link.near)?;
        self.clear_dir(&link.far)
    }

    /// Removes the impairment of packets sent from `from`.
    fn clear_dir(&self, from: &End) -> Result<()> {
        let old = self.state().impaired.remove(from);
        match old {
            Some(a) => a.clear(),
            None => Ok(()),
        }
    }

    /// Cuts `link`: every packet either way is dropped silently (as when a line goes dead;
    /// the interfaces stay up, so nobody is told).
    pub fn cut(&self, link: &Link) -> Result<()> {
        let e = &link.near;
        cmd::nft(
            &e.ns,
            &format!(
                "table netdev gns_cut_{i} {{\n  chain in {{ type filter hook ingress device \"{i}\" priority -500; policy drop; }}\n  \
                 chain out {{ type filter hook egress device \"{i}\" priority -500; policy drop; }}\n}}\n",
                i = e.iface
            ),
        )?;
        self.state().cut.push(e.clone());
        tracing::info!(ns = %e.ns, iface = %e.iface, "link cut");
        Ok(())
    }

    /// Restores a cut link.
    pub fn restore(&self, link: &Link) -> Result<()> {
        let e = &link.near;
        cmd::nft(&e.ns, &format!("delete table netdev gns_cut_{}\n", e.iface))?;
        self.state().cut.retain(|c| c != e);
        tracing::info!(ns = %e.ns, iface = %e.iface, "link restored");
        Ok(())
    }

    /// Blocks UDP for `host` (behind NAT) from now on: its home router drops every forwarded
    /// UDP packet but DNS, both ways, as [`NatProfile::UdpBlocked`] does from the start (flows
    /// already going are cut too: the rule acts on every packet, not only new ones).
    pub fn block_udp(&self, host: &Host) -> Result<()> {
        let router = home_router(host)?;
        if self.state().udp_blocked.contains(&router) {
            return Ok(());
        }
        cmd::nft(&router, &nat::udp_block_ruleset())?;
        self.state().udp_blocked.push(router.clone());
        tracing::info!(ns = %router, host = %host.name, "UDP blocked");
        Ok(())
    }

    /// Lets UDP through again after [`Lab::block_udp`] (a no-op if it was not blocked; the
    /// [`NatProfile::UdpBlocked`] profile's own rule stays).
    pub fn unblock_udp(&self, host: &Host) -> Result<()> {
        let router = home_router(host)?;
        if !self.state().udp_blocked.contains(&router) {
            return Ok(());
        }
        cmd::nft(
            &router,
            &format!("delete table ip {}\n", nat::UDP_BLOCK_TABLE),
        )?;
        self.state().udp_blocked.retain(|r| r != &router);
        tracing::info!(ns = %router, host = %host.name, "UDP unblocked");
        Ok(())
    }

    /// A WireGuard interface name unique to this lab and this run, at most 15 characters:
    /// `g`, the lab's process id (6 hex digits), its sequence number (2 hex digits), a counter.
    /// The UAPI socket folder `/var/run/wireguard` is shared by every namespace, so each
    /// userspace device (the vm's, the edges', wireguard-go's) needs its own name. Their
    /// sockets are removed with the lab, and [`sweep`] removes those of dead runs.
    pub fn wg_ifname(&self) -> String {
        let (pid, seq) = prefix_ids(&self.prefix).unwrap_or((std::process::id(), 0));
        let mut s = self.state();
        let name = format!(
            "g{:06x}{:02x}{}",
            pid & 0xff_ffff,
            seq & 0xff,
            s.wg_ifnames.len()
        );
        s.wg_ifnames.push(name.clone());
        name
    }

    /// Runs `f` on a thread inside `host`'s namespace (sockets it opens live there).
    pub fn run_in<T: Send + 'static>(
        &self,
        host: &Host,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        netns::run(&host.ns, f)
    }

    /// Starts `cmd` inside `host`'s namespace, stdout to `<dir>/<name>.out`, stderr to
    /// `<dir>/<name>.log`. The process is stopped when the returned [`Proc`] or the lab is
    /// dropped.
    pub fn spawn(&self, host: &Host, name: &str, mut cmd: Command) -> Result<Proc> {
        netns::command_in(&mut cmd, &host.ns)?;
        Proc::spawn(name, cmd, self.dir())
    }

    /// A path in the lab's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// Keeps the lab's folder after drop (it is printed).
    pub fn keep_dir(&mut self) {
        self.keep_dir = true;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut state = std::mem::take(&mut *self.state());
        for (_, applied) in state.impaired.drain() {
            let _ = applied.clear();
        }
        // Namespaces in reverse order: hosts before routers before the core.
        for ns in state.namespaces.iter().rev() {
            remove_ns(ns);
        }
        // The userspace WireGuard devices died with their namespaces; their sockets stay.
        for name in &state.wg_ifnames {
            let _ = std::fs::remove_file(Path::new(WG_SOCKETS).join(format!("{name}.sock")));
        }
        if let Some(dir) = self.dir.take()
            && (self.keep_dir || std::thread::panicking())
        {
            let path = dir.keep();
            eprintln!("netsim: lab files kept in {}", path.display());
        }
        tracing::info!(prefix = %self.prefix, "lab down");
    }
}

/// Kills what runs in `ns` and deletes it (its interfaces go with it).
fn remove_ns(ns: &str) {
    if let Ok(pids) = cmd::run("ip", &["netns", "pids", ns]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    if let Err(e) = cmd::run("ip", &["netns", "del", ns]) {
        tracing::warn!(%ns, error = %e, "cannot delete namespace");
    }
}

/// Removes namespaces (and their processes) of labs whose creating process is gone. Returns
/// the namespaces removed.
pub fn sweep() -> Result<Vec<String>> {
    let list = cmd::run("ip", &["netns", "list"])?;
    let mut removed = Vec::new();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove_ns(name);
        removed.push(name.to_owned());
    }
    if !removed.is_empty() {
        tracing::info!(count = removed.len(), "swept leftover namespaces");
    }
    sweep_wg_sockets();
    Ok(removed)
}

/// Where userspace WireGuard devices put their UAPI sockets (shared by all namespaces).
pub const WG_SOCKETS: &str = "/var/run/wireguard";

/// Removes the UAPI sockets of [`Lab::wg_ifname`] names whose process is gone.
fn sweep_wg_sockets() {
    let Ok(dir) = std::fs::read_dir(WG_SOCKETS) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(iface) = name.strip_suffix(".sock") else {
            continue;
        };
        let Some(pid) = wg_ifname_pid(iface) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The process id in a name made by [`Lab::wg_ifname`].
fn wg_ifname_pid(iface: &str) -> Option<u32> {
    let rest = iface.strip_prefix('g')?;
    if rest.len() < 9 || rest.len() > 14 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(&rest[..6], 16).ok()
}

/// (process id, sequence number) of a lab prefix `gns-<pid>-<seq>-`.
fn prefix_ids(prefix: &str) -> Option<(u32, u32)> {
    let mut parts = prefix.strip_prefix(PREFIX)?.split('-');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The router namespace next to `host` (its home router).
fn home_router(host: &Host) -> Result<String> {
    host.routers
        .first()
        .cloned()
        .ok_or_else(|| Error::Invalid(format!("{} is not behind NAT: no router", host.name)))
}

fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<()> {
    cmd::run(
        "ip",
        &[
            "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ],
    )
    .map(|_| ())
}

fn addr_up(ns: &str, iface: &str, cidr: &str) -> Result<()> {
    cmd::run("ip", &["-n", ns, "addr", "add", cidr, "dev", iface])?;
    cmd::run("ip", &["-n", ns, "link", "set", iface, "up"]).map(|_| ())
}

fn forwarding(ns: &str) -> Result<()> {
    cmd::run_in(ns, "sysctl", &["-qw", "net.ipv4.ip_forward=1"]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wg_interface_names_carry_the_pid_and_fit() {
        assert_eq!(prefix_ids("gns-4194304-17-"), Some((4_194_304, 17)));
        assert_eq!(prefix_ids("other-1-2-"), None);
        let name = format!("g{:06x}{:02x}{}", 4_194_304, 17, 123);
        assert!(name.len() <= 15, "{name}");
        assert_eq!(wg_ifname_pid(&name), Some(4_194_304));
        assert_eq!(wg_ifname_pid("guardian0"), None);
        assert_eq!(wg_ifname_pid("wg0"), None);
    }
}
