//! [`NodeEvent`]: what happened on the node (listening, connections, relay reservations,
//! hole punches), broadcast to whoever subscribes.

use libp2p::{Multiaddr, PeerId};

/// Something that happened on the node, for whoever listens.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A listen address is up.
    Listening {
        /// The address.
        address: Multiaddr,
    },
    /// A connection opened.
    Connected {
        /// The peer.
        peer: PeerId,
        /// The remote address.
        address: Multiaddr,
        /// Through a relay circuit rather than direct.
        relayed: bool,
        /// Opened by the peer.
        inbound: bool,
    },
    /// A connection closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Connections to the peer still open.
        remaining: u32,
    },
    /// A dial failed.
    DialFailed {
        /// The peer, if known.
        peer: Option<PeerId>,
        /// Why.
        error: String,
    },
    /// An inbound connection failed before it was established (refused by the gate, or a
    /// failed handshake).
    IncomingFailed {
        /// The remote address.
        address: Multiaddr,
        /// Why.
        error: String,
    },
    /// A relay accepted our reservation: peers can now reach us through it.
    RelayReserved {
        /// The relay.
        relay: PeerId,
    },
    /// A hole punch with a peer finished.
    HolePunch {
        /// The peer.
        peer: PeerId,
        /// Whether a direct connection came of it.
        direct: bool,
    },
}
