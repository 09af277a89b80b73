//! Connection gating by an allow-list: a connection from or to a peer that is not on the list
//! is refused as soon as the peer is authenticated, before any protocol runs. The list is
//! shared (`Arc`), so the vm's database layer can admit or drop peers without going through
//! the swarm task; a peer dropped from the list has its open connections closed.
//!
//! Two narrower admissions serve remote playback:
//! - [`AllowList::allow_until`] admits a peer's *new* connections until a deadline (the vm
//!   admits an owner's ephemeral client key for a playback token's lifetime); connections
//!   open at the deadline stay open.
//! - [`AllowList::admit_via_relay`] admits inbound connections that arrive through a circuit
//!   of one named relay (an edge admits what its own vm relays: the vm admits only its edges
//!   and clients it issued a playback token to), and then admits that peer's direct
//!   connections for a while, so DCUtR can upgrade the circuit to a direct connection.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;

use libp2p::core::{Endpoint, transport::PortUse};
use libp2p::swarm::{
    CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Peers allowed to connect; `open` allows every peer (a node that gates at the protocol
/// level instead).
#[derive(Clone, Default)]
pub struct AllowList {
    inner: Arc<RwLock<Inner>>,
    refused: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default)]
struct Inner {
    open: bool,
    peers: HashSet<PeerId>,
    until: HashMap<PeerId, Instant>,
    relay: Option<(PeerId, Duration)>,
    to_close: Vec<PeerId>,
    waker: Option<Waker>,
}

/// The most temporary admissions kept at once; the oldest deadlines go first beyond it.
const MAX_TEMPORARY: usize = 4096;

impl AllowList {
    /// An empty list: nobody may connect until allowed.
    pub fn closed() -> Self {
        Self::default()
    }

    /// A list that allows every peer.
    pub fn open() -> Self {
        let l = Self::default();
        l.inner.write().expect("not poisoned").open = true;
        l
    }

    /// Connections refused by the gate so far (before any protocol ran on them).
    pub fn refused_count(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Allows `peer`.
    pub fn allow(&self, peer: PeerId) {
        self.inner.write().expect("not poisoned").peers.insert(peer);
    }

    /// Admits new connections of `peer` until `deadline` (a later deadline extends it).
    pub fn allow_until(&self, peer: PeerId, deadline: Instant) {
        let mut inner = self.inner.write().expect("not poisoned");
        let now = Instant::now();
        if inner.until.len() >= MAX_TEMPORARY {
            inner.until.retain(|_, d| *d > now);
            while inner.until.len() >= MAX_TEMPORARY {
                let oldest = *inner
                    .until
                    .iter()
                    .min_by_key(|(_, d)| **d)
                    .expect("not empty")
                    .0;
                inner.until.remove(&oldest);
            }
        }
        let d = inner.until.entry(peer).or_insert(deadline);
        *d = (*d).max(deadline);
    }

    /// Admits inbound connections relayed by `relay` (through its circuits), and then the
    /// relayed peer's other connections for `direct_for` (DCUtR's direct connection).
    pub fn admit_via_relay(&self, relay: PeerId, direct_for: Duration) {
        self.inner.write().expect("not poisoned").relay = Some((relay, direct_for));
    }

    /// Removes `peer` and closes its connections.
    pub fn disallow(&self, peer: &PeerId) {
        let mut inner = self.inner.write().expect("not poisoned");
        inner.peers.remove(peer);
        if !inner.open {
            inner.to_close.push(*peer);
            if let Some(w) = inner.waker.take() {
                w.wake();
            }
        }
    }

    /// Whether `peer` may connect.
    pub fn is_allowed(&self, peer: &PeerId) -> bool {
        let inner = self.inner.read().expect("not poisoned");
        inner.open
            || inner.peers.contains(peer)
            || inner.until.get(peer).is_some_and(|d| *d > Instant::now())
    }

    /// An inbound connection whose local address is `local`: admitted if the peer is, or if
    /// it came through the admitted relay's circuit (the peer is then admitted for a while).
    fn check_inbound(&self, peer: &PeerId, local: &Multiaddr) -> Result<(), ConnectionDenied> {
        if self.is_allowed(peer) {
            return Ok(());
        }
        let relay = self.inner.read().expect("not poisoned").relay;
        if let Some((relay, direct_for)) = relay
            && through_relay(local, &relay)
        {
            tracing::info!(%peer, %relay, "admitting a peer relayed by our relay");
            self.allow_until(*peer, Instant::now() + direct_for);
            return Ok(());
        }
        self.check(peer)
    }

    fn check(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.is_allowed(peer) {
            Ok(())
        } else {
            tracing::warn!(%peer, "connection refused: peer is not on the allow-list");
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(ConnectionDenied::new(NotAllowed(*peer)))
        }
    }
}

/// Whether `addr` is a circuit of `relay`: `.../p2p/<relay>/p2p-circuit...`.
fn through_relay(addr: &Multiaddr, relay: &PeerId) -> bool {
    let mut last_peer = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => last_peer = Some(peer),
            Protocol::P2pCircuit => return last_peer.as_ref() == Some(relay),
            _ => {}
        }
    }
    false
}

/// The reason a gated connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("peer {0} is not on the allow-list")]
pub struct NotAllowed(pub PeerId);

/// The behaviour that enforces an [`AllowList`].
pub struct Gate {
    list: AllowList,
}

impl Gate {
    /// Enforces `list`.
    pub fn new(list: AllowList) -> Self {
        Gate { list }
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.list.check_inbound(&peer, local_addr)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.list.check(&peer)?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.list.check(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        let mut inner = self.list.inner.write().expect("not poisoned");
        if let Some(peer) = inner.to_close.pop() {
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::All,
            });
        }
        inner.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    #[test]
    fn temporary_admission_expires() {
        let l = AllowList::closed();
        let p = peer();
        assert!(!l.is_allowed(&p));
        l.allow_until(p, Instant::now() + Duration::from_secs(60));
        assert!(l.is_allowed(&p));
        let q = peer();
        l.allow_until(q, Instant::now() - Duration::from_secs(1));
        assert!(!l.is_allowed(&q));
    }

    #[test]
    fn only_the_named_relays_circuits_are_admitted() {
        let (relay, other, client) = (peer(), peer(), peer());
        let l = AllowList::closed();
        let via = |r: &PeerId| -> Multiaddr {
            format!("/ip4/127.0.0.1/udp/4001/quic-v1/p2p/{r}/p2p-circuit")
                .parse()
                .unwrap()
        };
        let direct: Multiaddr = "/ip4/127.0.0.1/udp/5000/quic-v1".parse().unwrap();
        assert!(l.check_inbound(&client, &via(&relay)).is_err());
        l.admit_via_relay(relay, Duration::from_secs(60));
        assert!(l.check_inbound(&client, &via(&other)).is_err());
        assert!(l.check_inbound(&client, &direct).is_err());
        assert!(l.check_inbound(&client, &via(&relay)).is_ok());
        // Now its direct connection (DCUtR) is admitted too.
        assert!(l.check_inbound(&client, &direct).is_ok());
    }

    #[test]
    fn refusals_are_counted_admissions_are_not() {
        let l = AllowList::closed();
        let (known, stranger) = (peer(), peer());
        l.allow(known);
        let direct: Multiaddr = "/ip4/127.0.0.1/udp/5000/quic-v1".parse().unwrap();
        assert!(l.check_inbound(&known, &direct).is_ok());
        assert_eq!(l.refused_count(), 0);
        assert!(l.check_inbound(&stranger, &direct).is_err());
        assert!(l.check(&stranger).is_err());
        assert_eq!(l.refused_count(), 2);
        // Clones share the counter (the vm reads it from its state).
        assert_eq!(l.clone().refused_count(), 2);
    }
}
