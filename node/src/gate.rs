//! Connection gating by an allow-list: a connection from or to a peer that is not on the list
//! is refused as soon as the peer is authenticated, before any protocol runs. The list is
//! shared (`Arc`), so the vm's database layer can admit or drop peers without going through
//! the swarm task; a peer dropped from the list has its open connections closed.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};

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
}

#[derive(Default)]
struct Inner {
    open: bool,
    peers: HashSet<PeerId>,
    to_close: Vec<PeerId>,
    waker: Option<Waker>,
}

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

    /// Allows `peer`.
    pub fn allow(&self, peer: PeerId) {
        self.inner.write().expect("not poisoned").peers.insert(peer);
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
        inner.open || inner.peers.contains(peer)
    }

    fn check(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.is_allowed(peer) {
            Ok(())
        } else {
            tracing::warn!(%peer, "connection refused: peer is not on the allow-list");
            Err(ConnectionDenied::new(NotAllowed(*peer)))
        }
    }
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
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.list.check(&peer)?;
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
