//! WS-Discovery on the edge's LAN: the multicast probe for ONVIF cameras ([`probe`]) and a
//! listener for the hellos and byes cameras send when they join or leave ([`listen`]). The
//! messages are [`protocols::lan::wsd`]'s. Multicast stays on the LAN: the hop limit is 1 and
//! nothing is sent on loopback.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use guardian_node::shutdown::Shutdown;
use protocols::lan::wsd::{self, Endpoint, Message};
use rand::RngCore;
use socket2::{Domain, Protocol, Socket, Type};

/// A new `urn:uuid:` (random, version 4).
pub fn new_urn() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn sender(iface: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_multicast_if_v4(&iface)?;
    s.set_multicast_ttl_v4(1)?;
    s.set_multicast_loop_v4(false)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(iface, 0)).into())?;
    Ok(s.into())
}

/// Probes for ONVIF video transmitters from each of `interfaces` and collects the matches
/// for `wait` (the probe is sent twice, 200 ms apart, for a lost datagram): each endpoint
/// once, with the address it answered from. Errors of one interface are returned beside
/// the others' matches.
pub fn probe(interfaces: &[Ipv4Addr], wait: Duration) -> (Vec<(Endpoint, Ipv4Addr)>, Vec<String>) {
    let mut found: Vec<(Endpoint, Ipv4Addr)> = Vec::new();
    let mut errors = Vec::new();
    let mut sockets = Vec::new();
    for &iface in interfaces {
        let id = new_urn();
        match sender(iface) {
            Ok(s) => sockets.push((s, id, iface)),
            Err(e) => errors.push(format!("WS-Discovery on {iface}: {e}")),
        }
    }
    let deadline = Instant::now() + wait;
    let mut sent = 0;
    let mut buf = vec![0u8; wsd::MAX_DATAGRAM];
    while Instant::now() < deadline && !sockets.is_empty() {
        if sent < 2 {
            for (s, id, iface) in &sockets {
                if let Err(e) = s.send_to(wsd::probe(id).as_bytes(), wsd::GROUP)
                    && sent == 0
                {
                    errors.push(format!("WS-Discovery probe from {iface}: {e}"));
                }
            }
            sent += 1;
        }
        let slice =
            Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now()));
        let per = (slice / sockets.len() as u32).max(Duration::from_millis(10));
        for (s, id, _) in &sockets {
            let _ = s.set_read_timeout(Some(per));
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let SocketAddr::V4(from) = from else { continue };
                if let Ok(Message::ProbeMatches {
                    relates_to,
                    matches,
                }) = wsd::parse(&buf[..n])
                    && relates_to == *id
                {
                    for m in matches {
                        if m.is_video_transmitter()
                            && !found.iter().any(|(f, _)| f.address == m.address)
                        {
                            found.push((m, *from.ip()));
                        }
                    }
                }
                let _ = s.set_read_timeout(Some(Duration::from_millis(10)));
            }
        }
    }
    (found, errors)
}

/// What a listener heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A camera joined (or came back), from this address.
    Hello(Endpoint, Ipv4Addr),
    /// A camera left.
    Bye(String),
}

/// Listens on port 3702 for hellos and byes on `interfaces` until `stop`, handing each to
/// `tell` (which must not block). Returns when stopped, or at once with the error when the
/// port cannot be had.
pub fn listen(
    interfaces: &[Ipv4Addr],
    stop: &Shutdown,
    mut tell: impl FnMut(Heard),
) -> std::io::Result<()> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, wsd::GROUP.port())).into())?;
    for iface in interfaces {
        if let Err(e) = s.join_multicast_v4(wsd::GROUP.ip(), iface) {
            tracing::warn!(interface = %iface, error = %e, "cannot listen for WS-Discovery hellos there");
        }
    }
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = vec![0u8; wsd::MAX_DATAGRAM];
    while !stop.is_triggered() {
        let Ok((n, SocketAddr::V4(from))) = s.recv_from(&mut buf) else {
            continue;
        };
        match wsd::parse(&buf[..n]) {
            Ok(Message::Hello(e)) if e.is_video_transmitter() => tell(Heard::Hello(e, *from.ip())),
            Ok(Message::Bye { address }) => tell(Heard::Bye(address)),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_are_version_4_uuids() {
        let a = new_urn();
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a[9 + 14..9 + 15], "4");
        assert_ne!(a, new_urn());
    }
}
