//! The open connections of every peer, each flagged relayed or direct: a pure map the swarm
//! task updates on each connection event and asks questions of (connected? only relayed?
//! which relayed connections can go now that a direct one is open?).

use std::collections::HashMap;

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// Open connections by peer: connection id -> relayed.
#[derive(Debug, Default)]
pub(crate) struct Connections(HashMap<PeerId, HashMap<ConnectionId, bool>>);

impl Connections {
    /// A connection to `peer` opened.
    pub(crate) fn opened(&mut self, peer: PeerId, id: ConnectionId, relayed: bool) {
        self.0.entry(peer).or_default().insert(id, relayed);
    }

    /// A connection to `peer` closed; `true` when it was the peer's last one.
    pub(crate) fn closed(&mut self, peer: &PeerId, id: ConnectionId) -> bool {
        let Some(c) = self.0.get_mut(peer) else {
            return false;
        };
        c.remove(&id);
        if c.is_empty() {
            self.0.remove(peer);
            true
        } else {
            false
        }
    }

    /// Whether any connection to `peer` is open.
    pub(crate) fn is_connected(&self, peer: &PeerId) -> bool {
        self.0.get(peer).is_some_and(|c| !c.is_empty())
    }

    /// `Some(relayed)` when a connection to `peer` is open: relayed when every one is.
    pub(crate) fn state(&self, peer: &PeerId) -> Option<bool> {
        self.0
            .get(peer)
            .filter(|c| !c.is_empty())
            .map(|c| c.values().all(|relayed| *relayed))
    }

    /// Whether a direct (not relayed) connection to `peer` is open.
    pub(crate) fn has_direct(&self, peer: &PeerId) -> bool {
        self.0
            .get(peer)
            .is_some_and(|c| c.values().any(|relayed| !relayed))
    }

    /// Every open connection to `peer`.
    pub(crate) fn ids(&self, peer: &PeerId) -> Vec<ConnectionId> {
        self.0
            .get(peer)
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The relayed connections to `peer` that may close because a direct one is open (none
    /// when there is no direct connection).
    pub(crate) fn relayed_besides_direct(&self, peer: &PeerId) -> Vec<ConnectionId> {
        match self.0.get(peer) {
            Some(c) if c.values().any(|relayed| !relayed) => c
                .iter()
                .filter(|(_, relayed)| **relayed)
                .map(|(id, _)| *id)
                .collect(),
            _ => Vec::new(),
        }
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

    fn id(n: usize) -> ConnectionId {
        ConnectionId::new_unchecked(n)
    }

    #[test]
    fn the_last_close_disconnects() {
        let mut c = Connections::default();
        let p = peer();
        assert!(!c.is_connected(&p));
        assert_eq!(c.state(&p), None);
        c.opened(p, id(1), false);
        c.opened(p, id(2), true);
        assert!(c.is_connected(&p));
        assert!(!c.closed(&p, id(1)));
        assert!(c.is_connected(&p));
        assert!(c.closed(&p, id(2)));
        assert!(!c.is_connected(&p));
        assert!(c.ids(&p).is_empty());
        // A close of a peer never seen is not a disconnection.
        assert!(!c.closed(&peer(), id(3)));
    }

    #[test]
    fn state_is_relayed_only_when_every_connection_is() {
        let mut c = Connections::default();
        let p = peer();
        c.opened(p, id(1), true);
        assert_eq!(c.state(&p), Some(true));
        assert!(!c.has_direct(&p));
        c.opened(p, id(2), false);
        assert_eq!(c.state(&p), Some(false));
        assert!(c.has_direct(&p));
    }

    #[test]
    fn relayed_connections_close_only_beside_a_direct_one() {
        let mut c = Connections::default();
        let p = peer();
        c.opened(p, id(1), true);
        c.opened(p, id(2), true);
        assert!(
            c.relayed_besides_direct(&p).is_empty(),
            "no direct path yet"
        );
        c.opened(p, id(3), false);
        let mut ids = c.relayed_besides_direct(&p);
        ids.sort();
        assert_eq!(ids, [id(1), id(2)]);
        let mut all = c.ids(&p);
        all.sort();
        assert_eq!(all, [id(1), id(2), id(3)]);
        assert!(c.relayed_besides_direct(&peer()).is_empty());
    }
}
