//! The NAT self-test: STUN-like UDP and TCP probes between a host behind a router and two
//! public servers, which tell the router's mapping (same public port for every destination?
//! port kept?) and filtering (does a packet from a host or port it never sent to get in?),
//! so scenarios trust a profile only after it behaves as named.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{Error, Result};
use crate::lab::{Host, Lab};
use crate::nat::NatProfile;

const WAIT: Duration = Duration::from_millis(700);
const PORT_A: u16 = 3478;
const PORT_B: u16 = 3479;

/// What the UDP probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpBehaviour {
    /// The public address the first server saw.
    pub public: SocketAddrV4,
    /// Whether the public port is the host's own.
    pub port_kept: bool,
    /// Whether three destinations saw the same public address and port.
    pub endpoint_independent_mapping: bool,
    /// Whether an unsolicited packet from the same server address, another port, got in.
    pub accepts_other_port: bool,
    /// Whether an unsolicited packet from another address got in.
    pub accepts_other_address: bool,
}

/// What the TCP probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpBehaviour {
    /// The public address the first server saw.
    pub public: SocketAddrV4,
    /// Whether the public port is the host's own.
    pub port_kept: bool,
    /// Whether two destinations saw the same public address and port.
    pub endpoint_independent_mapping: bool,
}

/// The self-test's findings for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatReport {
    /// The profile the host was built with.
    pub profile: NatProfile,
    /// The host's public address as the lab built it.
    pub expected_public_ip: Ipv4Addr,
    /// UDP, or `None` if no UDP got out.
    pub udp: Option<UdpBehaviour>,
    /// TCP, or `None` if no TCP got out.
    pub tcp: Option<TcpBehaviour>,
}

impl NatReport {
    /// Checks the findings against the profile's name: `Err` lists what differs.
    pub fn check(&self) -> std::result::Result<(), String> {
        use NatProfile as P;
        let mut wrong = Vec::new();
        let p = self.profile;
        match (&self.udp, p) {
            (Some(_), P::UdpBlocked) => wrong.push("UDP got out".to_owned()),
            (None, P::UdpBlocked) => {}
            (None, _) => wrong.push("no UDP got out".to_owned()),
            (Some(u), _) => {
                let eim = p.endpoint_independent_mapping();
                let (other_port, other_addr) = match p {
                    P::None | P::FullCone => (true, true),
                    P::RestrictedCone => (true, false),
                    _ => (false, false),
                };
                if u.endpoint_independent_mapping != eim {
                    wrong.push(format!(
                        "UDP mapping endpoint-independent: {}",
                        u.endpoint_independent_mapping
                    ));
                }
                if eim && !u.port_kept {
                    wrong.push("UDP port not kept".to_owned());
                }
                if u.accepts_other_port != other_port {
                    wrong.push(format!(
                        "UDP from another port let in: {}",
                        u.accepts_other_port
                    ));
                }
                if u.accepts_other_address != other_addr {
                    wrong.push(format!(
                        "UDP from another address let in: {}",
                        u.accepts_other_address
                    ));
                }
                if *u.public.ip() != self.expected_public_ip {
                    wrong.push(format!(
                        "UDP public address {} (expected {})",
                        u.public.ip(),
                        self.expected_public_ip
                    ));
                }
            }
        }
        match &self.tcp {
            None => wrong.push("no TCP got out".to_owned()),
            Some(t) => {
                if t.endpoint_independent_mapping != p.endpoint_independent_mapping() {
                    wrong.push(format!(
                        "TCP mapping endpoint-independent: {}",
                        t.endpoint_independent_mapping
                    ));
                }
                if *t.public.ip() != self.expected_public_ip {
                    wrong.push(format!(
                        "TCP public address {} (expected {})",
                        t.public.ip(),
                        self.expected_public_ip
                    ));
                }
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }

    /// One line for a table.
    pub fn summary(&self) -> String {
        let udp = match &self.udp {
            None => "UDP blocked".to_owned(),
            Some(u) => format!(
                "UDP {} mapping={} port={} filter={}",
                u.public,
                if u.endpoint_independent_mapping {
                    "EIM"
                } else {
                    "EDM"
                },
                if u.port_kept { "kept" } else { "changed" },
                match (u.accepts_other_address, u.accepts_other_port) {
                    (true, _) => "EIF",
                    (false, true) => "ADF",
                    (false, false) => "APDF",
                }
            ),
        };
        let tcp = match &self.tcp {
            None => "TCP blocked".to_owned(),
            Some(t) => format!(
                "TCP mapping={} port={}",
                if t.endpoint_independent_mapping {
                    "EIM"
                } else {
                    "EDM"
                },
                if t.port_kept { "kept" } else { "changed" }
            ),
        };
        format!("{:<16} {udp}; {tcp}", self.profile.name())
    }
}

/// Two public probe servers (A with two ports, B with one), made once per lab.
pub struct ProbeServers {
    a: Host,
    b: Host,
}

impl ProbeServers {
    /// Adds the two server hosts to `lab`.
    pub fn new(lab: &Lab) -> Result<ProbeServers> {
        Ok(ProbeServers {
            a: lab.public_host("stun-a")?,
            b: lab.public_host("stun-b")?,
        })
    }

    /// Probes `host` (which has sent nothing on ports 40000-40003 yet).
    pub fn probe(&self, lab: &Lab, host: &Host) -> Result<NatReport> {
        let bind_udp = |h: &Host, port: u16| -> Result<UdpSocket> {
            lab.run_in(h, move || UdpSocket::bind(("0.0.0.0", port)))?
                .map_err(|e| Error::io(format!("binding UDP {port} in {}", h.name), e))
        };
        let a1 = bind_udp(&self.a, PORT_A)?;
        let a2 = bind_udp(&self.a, PORT_B)?;
        let b1 = bind_udp(&self.b, PORT_A)?;
        for s in [&a1, &a2, &b1] {
            s.set_read_timeout(Some(WAIT))
                .map_err(|e| Error::io("timeout", e))?;
        }
        let dest = |h: &Host, port| SocketAddr::V4(SocketAddrV4::new(h.ip, port));

        // Mapping: one socket to three destinations.
        let m = bind_udp(host, 40000)?;
        let mut seen = Vec::new();
        for (server, to) in [
            (&a1, dest(&self.a, PORT_A)),
            (&a2, dest(&self.a, PORT_B)),
            (&b1, dest(&self.b, PORT_A)),
        ] {
            seen.push(udp_observe(&m, server, to));
        }
        let udp = match seen[0] {
            None => None,
            Some(first) => {
                // Filtering: a fresh socket sends to A:PORT_A only; then A:PORT_B and B write to it.
                let f = bind_udp(host, 40001)?;
                f.set_read_timeout(Some(WAIT))
                    .map_err(|e| Error::io("timeout", e))?;
                let public = udp_observe(&f, &a1, dest(&self.a, PORT_A));
                let (accepts_other_port, accepts_other_address) = match public {
                    None => (false, false),
                    Some(public) => {
                        let _ = a2.send_to(b"from-a2", public);
                        let _ = b1.send_to(b"from-b1", public);
                        let mut got = (false, false);
                        let mut buf = [0u8; 64];
                        while let Ok((n, _)) = f.recv_from(&mut buf) {
                            match &buf[..n] {
                                b"from-a2" => got.0 = true,
                                b"from-b1" => got.1 = true,
                                _ => {}
                            }
                            if got == (true, true) {
                                break;
                            }
                        }
                        got
                    }
                };
                Some(UdpBehaviour {
                    public: first,
                    port_kept: first.port() == 40000,
                    endpoint_independent_mapping: seen.iter().all(|s| *s == Some(first)),
                    accepts_other_port,
                    accepts_other_address,
                })
            }
        };

        // TCP mapping: two connections from one port (SO_REUSEPORT, as libp2p does).
        let listen_tcp = |h: &Host| -> Result<TcpListener> {
            lab.run_in(h, || TcpListener::bind(("0.0.0.0", PORT_A)))?
                .map_err(|e| Error::io(format!("listening in {}", h.name), e))
        };
        let la = listen_tcp(&self.a)?;
        let lb = listen_tcp(&self.b)?;
        let c1 = tcp_from(lab, host, 40002, dest(&self.a, PORT_A))?;
        let c2 = tcp_from(lab, host, 40002, dest(&self.b, PORT_A))?;
        let tcp = match (c1, c2) {
            (Some(mut c1), Some(mut c2)) => {
                let o1 = tcp_observe(&la, &mut c1)?;
                let o2 = tcp_observe(&lb, &mut c2)?;
                o1.map(|o1| TcpBehaviour {
                    public: o1,
                    port_kept: o1.port() == 40002,
                    endpoint_independent_mapping: o2 == Some(o1),
                })
            }
            _ => None,
        };
        Ok(NatReport {
            profile: host.nat,
            expected_public_ip: host.public_ip,
            udp,
            tcp,
        })
    }
}

/// Sends from `from` to `to`; the server socket answers with the source it saw, which is
/// returned (and read back by `from`, as a NAT needs for the reply path to count).
fn udp_observe(from: &UdpSocket, server: &UdpSocket, to: SocketAddr) -> Option<SocketAddrV4> {
    for _ in 0..3 {
        let _ = from.send_to(b"probe", to);
        let mut buf = [0u8; 64];
        if let Ok((_, SocketAddr::V4(src))) = server.recv_from(&mut buf) {
            let _ = server.send_to(src.to_string().as_bytes(), src);
            return Some(src);
        }
    }
    None
}

fn tcp_from(lab: &Lab, host: &Host, port: u16, to: SocketAddr) -> Result<Option<TcpStream>> {
    let r = lab.run_in(host, move || -> std::io::Result<TcpStream> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
        s.connect_timeout(&to.into(), Duration::from_secs(2))?;
        Ok(s.into())
    })?;
    Ok(r.ok())
}

fn tcp_observe(listener: &TcpListener, client: &mut TcpStream) -> Result<Option<SocketAddrV4>> {
    client
        .write_all(b"x")
        .map_err(|e| Error::io("tcp write", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("listener", e))?;
    let deadline = std::time::Instant::now() + WAIT;
    let (mut s, peer) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(Error::io("tcp accept", e)),
        }
    };
    s.set_nonblocking(false).map_err(|e| Error::io("tcp", e))?;
    s.set_read_timeout(Some(WAIT))
        .map_err(|e| Error::io("timeout", e))?;
    let mut b = [0u8; 1];
    let _ = s.read(&mut b);
    Ok(match peer {
        SocketAddr::V4(p) => Some(p),
        SocketAddr::V6(_) => None,
    })
}

/// What [`measure_path`] saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathStats {
    /// Pings sent.
    pub sent: u32,
    /// Answers received.
    pub answered: u32,
    /// The median round trip of the answered ones.
    pub median_rtt: Duration,
}

/// Measures the path from `from` to `to` as the lab built it: `n` numbered UDP pings, 10 ms
/// apart, to an echo server the call starts in `to` (port 7); answers are awaited until 3 s
/// after the last ping plus `max_rtt`.
pub fn measure_path(
    lab: &Lab,
    from: &Host,
    to: &Host,
    n: u32,
    max_rtt: Duration,
) -> Result<PathStats> {
    let server = lab
        .run_in(to, || UdpSocket::bind("0.0.0.0:7"))?
        .map_err(|e| Error::io("binding the echo server", e))?;
    let client = lab
        .run_in(from, || UdpSocket::bind("0.0.0.0:0"))?
        .map_err(|e| Error::io("binding the ping socket", e))?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| Error::io("timeout", e))?;
    let echo = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((k, src)) = server.recv_from(&mut buf) {
                    let _ = server.send_to(&buf[..k], src);
                }
            }
        })
    };
    let to_addr = SocketAddr::from((to.ip, 7));
    let reader = client.try_clone().map_err(|e| Error::io("socket", e))?;
    reader
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| Error::io("timeout", e))?;
    let start = std::time::Instant::now();
    let collect = std::thread::spawn(move || {
        let mut rtts = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let end = start + Duration::from_millis(10) * n + Duration::from_secs(3) + max_rtt;
        let mut buf = [0u8; 64];
        while std::time::Instant::now() < end && seen.len() < n as usize {
            if let Ok((12, _)) = reader.recv_from(&mut buf) {
                let i = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
                let sent_at = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
                if seen.insert(i) {
                    let now = start.elapsed().as_micros() as u64;
                    rtts.push(Duration::from_micros(now.saturating_sub(sent_at)));
                }
            }
        }
        rtts
    });
    for i in 0..n {
        let mut msg = [0u8; 12];
        msg[..4].copy_from_slice(&i.to_be_bytes());
        msg[4..].copy_from_slice(&(start.elapsed().as_micros() as u64).to_be_bytes());
        let _ = client.send_to(&msg, to_addr);
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut rtts = collect.join().unwrap_or_default();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = echo.join();
    rtts.sort();
    Ok(PathStats {
        sent: n,
        answered: rtts.len() as u32,
        median_rtt: rtts.get(rtts.len() / 2).copied().unwrap_or_default(),
    })
}
