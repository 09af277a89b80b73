//! The UDP transport handed to GotaTun: real addresses go over the UDP socket; *virtual
//! endpoints* (in `100::/64`, RFC 6666's discard-only prefix, never a real address) go over
//! relay streams attached to the [`Hub`]; probes ([`crate::probe`]) are answered (at the vm)
//! or counted (at the edge) and never reach WireGuard.
//!
//! WireGuard follows the last authenticated source address of a peer, so a peer whose
//! packets arrive from a virtual endpoint is answered over its stream, and over UDP again
//! once its packets come that way.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gotatun::packet::{Packet, PacketBufPool};
use gotatun::udp::socket::{UdpSocket, UdpSocketFactory};
use gotatun::udp::{UdpRecv, UdpSend, UdpTransportFactory, UdpTransportFactoryParams};
use tokio::sync::{mpsc, watch};

use crate::probe::{self, Probe};

/// Packets waiting to be written to one relay stream.
const STREAM_QUEUE: usize = 1024;
/// Packets read from relay streams waiting for WireGuard.
const INBOUND_QUEUE: usize = 2048;
/// How long a send waits for room in a full stream queue before the packet is dropped (as
/// UDP would drop it).
const FULL_QUEUE_WAIT: Duration = Duration::from_millis(20);

/// The virtual endpoint numbered `n`: `[100::n]:1`.
pub fn virtual_endpoint(n: u32) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(
            0x100,
            0,
            0,
            0,
            0,
            0,
            (n >> 16) as u16,
            n as u16,
        )),
        1,
    )
}

/// Whether `addr` is a virtual endpoint (a relay stream, not a UDP address).
pub fn is_virtual(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V6(a) => {
            let s = a.segments();
            s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0
        }
        IpAddr::V4(_) => false,
    }
}

/// Where relay streams, the UDP socket and the probes meet. Cheap to clone.
#[derive(Clone)]
pub struct Hub(Arc<HubInner>);

struct HubInner {
    routes: Mutex<HashMap<SocketAddr, (u64, mpsc::Sender<Bytes>)>>,
    next_id: AtomicU64,
    inbound_tx: mpsc::Sender<(Bytes, SocketAddr)>,
    inbound_rx: tokio::sync::Mutex<mpsc::Receiver<(Bytes, SocketAddr)>>,
    udp: Mutex<Option<UdpSocket>>,
    answer_probes: bool,
    answers: watch::Sender<u64>,
}

/// A relay stream's place in the hub; leaving it (dropping this) detaches the endpoint,
/// unless a newer stream took it.
pub struct Attached {
    hub: Hub,
    endpoint: SocketAddr,
    id: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Ok(mut routes) = self.hub.0.routes.lock()
            && routes
                .get(&self.endpoint)
                .is_some_and(|(id, _)| *id == self.id)
        {
            routes.remove(&self.endpoint);
        }
    }
}

impl Hub {
    /// A hub; `answer_probes` at the vm.
    pub fn new(answer_probes: bool) -> Hub {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        Hub(Arc::new(HubInner {
            routes: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            inbound_tx,
            inbound_rx: tokio::sync::Mutex::new(inbound_rx),
            udp: Mutex::new(None),
            answer_probes,
            answers: watch::Sender::new(0),
        }))
    }

    /// Attaches a stream to `endpoint`: what WireGuard sends there comes out of the receiver.
    pub fn attach(&self, endpoint: SocketAddr) -> (mpsc::Receiver<Bytes>, Attached) {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut routes) = self.0.routes.lock() {
            routes.insert(endpoint, (id, tx));
        }
        (
            rx,
            Attached {
                hub: self.clone(),
                endpoint,
                id,
            },
        )
    }

    /// Whether a stream is attached to `endpoint`.
    pub fn is_attached(&self, endpoint: &SocketAddr) -> bool {
        self.0
            .routes
            .lock()
            .map(|r| r.contains_key(endpoint))
            .unwrap_or(false)
    }

    /// Hands a packet read from a stream to WireGuard, as coming from `from` (waits while
    /// WireGuard is behind: back-pressure onto the stream).
    pub async fn deliver(&self, packet: Bytes, from: SocketAddr) {
        let _ = self.0.inbound_tx.send((packet, from)).await;
    }

    /// Sends a probe to `to` on the tunnel's UDP socket (once the device has bound it).
    pub fn send_probe(&self, to: SocketAddr, nonce: u64) -> io::Result<()> {
        let sock = self
            .0
            .udp
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no socket yet"))?;
        send_raw(&sock, &probe::encode(Probe::Ask(nonce)), to)
    }

    /// Counts the probe answers received.
    pub fn probe_answers(&self) -> watch::Receiver<u64> {
        self.0.answers.subscribe()
    }

    /// The UDP socket's local port, once bound.
    pub fn local_port(&self) -> Option<u16> {
        let sock = self.0.udp.lock().ok()?.clone()?;
        sock.local_addr().ok().map(|a| a.port())
    }

    async fn send_virtual(&self, packet: &[u8], to: SocketAddr) {
        let tx = match self.0.routes.lock() {
            Ok(r) => r.get(&to).map(|(_, tx)| tx.clone()),
            Err(_) => None,
        };
        let Some(tx) = tx else { return };
        let b = Bytes::copy_from_slice(packet);
        if let Err(mpsc::error::TrySendError::Full(b)) = tx.try_send(b) {
            let _ = tokio::time::timeout(FULL_QUEUE_WAIT, tx.send(b)).await;
        }
    }
}

/// Sends on the raw socket, mapping IPv4 for a dual-stack socket.
fn send_raw(sock: &UdpSocket, buf: &[u8], to: SocketAddr) -> io::Result<()> {
    let to = match (sock.local_addr()?, to.ip()) {
        (SocketAddr::V6(_), IpAddr::V4(v4)) => {
            SocketAddr::new(v4.to_ipv6_mapped().into(), to.port())
        }
        _ => to,
    };
    // Straight to the kernel (the socket is non-blocking): tokio's `try_send_to` refuses
    // until the socket's readiness was polled once.
    socket2::SockRef::from(sock.socket())
        .send_to(buf, &to.into())
        .map(|_| ())
}

/// The factory GotaTun binds its transport with.
pub struct MuxFactory {
    udp: UdpSocketFactory,
    hub: Hub,
}

impl MuxFactory {
    /// Over `hub`, with large socket buffers.
    pub fn new(hub: Hub) -> MuxFactory {
        MuxFactory {
            udp: UdpSocketFactory {
                recv_buffer_size: Some(4 << 20),
                send_buffer_size: Some(4 << 20),
            },
            hub,
        }
    }
}

impl UdpTransportFactory for MuxFactory {
    type Send = MuxSend;
    type Recv = MuxRecv;

    async fn bind(&mut self, params: &UdpTransportFactoryParams) -> io::Result<(MuxSend, MuxRecv)> {
        // GotaTun binds again on the same port when it reconfigures (a new private key): the
        // hub's copy of the old socket must not hold that port.
        if let Ok(mut slot) = self.hub.0.udp.lock() {
            *slot = None;
        }
        // GotaTun stops the old connection's buffered sender by aborting its task without
        // waiting: the old socket can outlive `stop` by a moment. A few short retries.
        let mut tries = 0;
        let (send, recv) = loop {
            match self.udp.bind(params).await {
                Err(e)
                    if e.kind() == io::ErrorKind::AddrInUse && params.port != 0 && tries < 50 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                r => break r?,
            }
        };
        if let Ok(mut slot) = self.hub.0.udp.lock() {
            *slot = Some(send.clone());
        }
        Ok((
            MuxSend {
                udp: send,
                hub: self.hub.clone(),
            },
            MuxRecv {
                udp: recv,
                hub: self.hub.clone(),
            },
        ))
    }
}

/// The sending half.
#[derive(Clone)]
pub struct MuxSend {
    udp: UdpSocket,
    hub: Hub,
}

impl UdpSend for MuxSend {
    type SendManyBuf = <UdpSocket as UdpSend>::SendManyBuf;

    async fn send_to(&self, packet: Packet, destination: SocketAddr) -> io::Result<()> {
        if is_virtual(&destination) {
            self.hub.send_virtual(&packet, destination).await;
            Ok(())
        } else {
            self.udp.send_to(packet, destination).await
        }
    }

    fn max_number_of_packets_to_send(&self) -> usize {
        self.udp.max_number_of_packets_to_send()
    }

    async fn send_many_to(
        &self,
        send_buf: &mut Self::SendManyBuf,
        packets: &mut Vec<(Packet, SocketAddr)>,
    ) -> io::Result<()> {
        if packets.iter().any(|(_, d)| is_virtual(d)) {
            let all = std::mem::take(packets);
            for (p, d) in all {
                if is_virtual(&d) {
                    self.hub.send_virtual(&p, d).await;
                } else {
                    packets.push((p, d));
                }
            }
        }
        if packets.is_empty() {
            return Ok(());
        }
        self.udp.send_many_to(send_buf, packets).await
    }

    fn local_addr(&self) -> io::Result<Option<SocketAddr>> {
        UdpSend::local_addr(&self.udp)
    }

    fn set_fwmark(&self, mark: u32) -> io::Result<()> {
        UdpSend::set_fwmark(&self.udp, mark)
    }
}

/// The receiving half.
pub struct MuxRecv {
    udp: UdpSocket,
    hub: Hub,
}

impl UdpRecv for MuxRecv {
    type RecvManyBuf = <UdpSocket as UdpRecv>::RecvManyBuf;

    async fn recv_from(&mut self, pool: &mut PacketBufPool) -> io::Result<(Packet, SocketAddr)> {
        let mut buf = Self::RecvManyBuf::default();
        let mut packets = Vec::with_capacity(1);
        loop {
            self.recv_many_from(&mut buf, pool, &mut packets).await?;
            if let Some(p) = packets.pop() {
                return Ok(p);
            }
        }
    }

    async fn recv_many_from(
        &mut self,
        recv_buf: &mut Self::RecvManyBuf,
        pool: &mut PacketBufPool,
        packets: &mut Vec<(Packet, SocketAddr)>,
    ) -> io::Result<()> {
        let hub = &self.hub;
        let udp = &mut self.udp;
        let mut inbound = hub.0.inbound_rx.lock().await;
        loop {
            let start = packets.len();
            tokio::select! {
                r = udp.recv_many_from(recv_buf, pool, packets) => {
                    r?;
                    take_probes(hub, packets, start);
                }
                Some((bytes, from)) = inbound.recv() => {
                    push(pool, &bytes, from, packets);
                    while packets.len() - start < 64 {
                        match inbound.try_recv() {
                            Ok((bytes, from)) => push(pool, &bytes, from, packets),
                            Err(_) => break,
                        }
                    }
                }
            }
            if packets.len() > start {
                return Ok(());
            }
        }
    }

    fn enable_udp_gro(&self) -> io::Result<()> {
        self.udp.enable_udp_gro()
    }
}

fn push(
    pool: &mut PacketBufPool,
    bytes: &[u8],
    from: SocketAddr,
    packets: &mut Vec<(Packet, SocketAddr)>,
) {
    let mut p = pool.get();
    if bytes.len() > p.len() {
        return;
    }
    p[..bytes.len()].copy_from_slice(bytes);
    p.truncate(bytes.len());
    packets.push((p, from));
}

/// Takes the probes out of `packets[start..]`: answers asks (at the vm), counts answers.
fn take_probes(hub: &Hub, packets: &mut Vec<(Packet, SocketAddr)>, start: usize) {
    if !packets[start..].iter().any(|(p, _)| probe::maybe(p)) {
        return;
    }
    let tail = packets.split_off(start);
    for (p, from) in tail {
        match probe::decode(&p) {
            Some(Probe::Ask(nonce)) => {
                if hub.0.answer_probes {
                    let sock = hub.0.udp.lock().ok().and_then(|s| s.clone());
                    if let Some(sock) = sock {
                        let _ = send_raw(&sock, &probe::encode(Probe::Answer(nonce)), from);
                    }
                }
            }
            Some(Probe::Answer(_)) => hub.0.answers.send_modify(|n| *n += 1),
            None => packets.push((p, from)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_endpoints_are_never_real_addresses() {
        let v = virtual_endpoint(70000);
        assert!(is_virtual(&v));
        assert_eq!(v.to_string(), "[100::1:1170]:1");
        assert!(!is_virtual(&"198.18.0.5:51820".parse().unwrap()));
        assert!(!is_virtual(&"[fd00::1]:51820".parse().unwrap()));
        assert!(!is_virtual(&"[100:0:0:1::1]:1".parse().unwrap()));
    }

    #[tokio::test]
    async fn probes_are_answered_by_the_vm_and_counted_by_the_edge() {
        let params = UdpTransportFactoryParams {
            addr: None,
            port: 0,
            fwmark: None,
        };
        let vm_hub = Hub::new(true);
        let (_vs, mut vr) = MuxFactory::new(vm_hub.clone()).bind(&params).await.unwrap();
        let edge_hub = Hub::new(false);
        let (_es, mut er) = MuxFactory::new(edge_hub.clone())
            .bind(&params)
            .await
            .unwrap();
        let vm_port = vm_hub.local_port().unwrap();
        let mut answers = edge_hub.probe_answers();
        // The vm's receive loop answers the probe and hands WireGuard nothing for it; a
        // WireGuard-looking datagram passes through.
        let vm_loop = tokio::spawn(async move {
            let mut pool = PacketBufPool::new(16);
            vr.recv_from(&mut pool).await.map(|(p, _)| p.to_vec())
        });
        let edge_loop = tokio::spawn(async move {
            let mut pool = PacketBufPool::new(16);
            er.recv_from(&mut pool).await.map(|(p, _)| p.to_vec())
        });
        let to = SocketAddr::new("127.0.0.1".parse().unwrap(), vm_port);
        edge_hub.send_probe(to, 42).unwrap();
        tokio::time::timeout(Duration::from_secs(5), answers.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*answers.borrow(), 1);
        let plain = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        plain.send_to(&[4, 0, 0, 0, 9, 9], to).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), vm_loop)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![4, 0, 0, 0, 9, 9]);
        edge_loop.abort();
    }

    #[tokio::test]
    async fn streams_carry_packets_to_and_from_virtual_endpoints() {
        let params = UdpTransportFactoryParams {
            addr: None,
            port: 0,
            fwmark: None,
        };
        let hub = Hub::new(true);
        let (send, mut recv) = MuxFactory::new(hub.clone()).bind(&params).await.unwrap();
        let endpoint = virtual_endpoint(2);
        let (mut out, attached) = hub.attach(endpoint);
        assert!(hub.is_attached(&endpoint));
        let pool = PacketBufPool::<4096>::new(4);
        let mut p = pool.get();
        p.truncate(3);
        p.copy_from_slice(&[1, 2, 3]);
        send.send_to(p, endpoint).await.unwrap();
        assert_eq!(&out.recv().await.unwrap()[..], &[1, 2, 3]);
        hub.deliver(Bytes::from_static(&[4, 0, 0, 0, 5]), endpoint)
            .await;
        let mut pool = PacketBufPool::new(4);
        let (p, from) = recv.recv_from(&mut pool).await.unwrap();
        assert_eq!((&p[..], from), (&[4u8, 0, 0, 0, 5][..], endpoint));
        drop(attached);
        assert!(!hub.is_attached(&endpoint));
    }
}
