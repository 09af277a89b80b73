//! What a node listens on, announces and allows, with the defaults each role needs.

use std::time::Duration;

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

use crate::gate::AllowList;

/// Which part of the product a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The tenant's public node: relay server, no hole punching.
    Vm,
    /// The edge appliance behind NAT: relay client, DCUtR, AutoNAT v2.
    Edge,
    /// The owner's client: like an edge.
    Client,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Vm => "vm",
            Role::Edge => "edge",
            Role::Client => "client",
        }
    }
}

/// Limits of the vm's relay. The libp2p defaults (128 KiB and 2 min per circuit) would cut a
/// clip stream, so circuits here may carry a clip for an hour; per-peer caps keep one peer
/// from taking the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayLimits {
    /// Reservations held at once (default 1024).
    pub max_reservations: usize,
    /// Reservations per peer (default 16).
    pub max_reservations_per_peer: usize,
    /// How long a reservation lasts before renewal, seconds (default 3600).
    pub reservation_secs: u64,
    /// Circuits at once (default 1024).
    pub max_circuits: usize,
    /// Circuits per peer (default 64).
    pub max_circuits_per_peer: usize,
    /// Longest circuit, seconds (default 3600).
    pub max_circuit_secs: u64,
    /// Most bytes through one circuit (default 1 GiB).
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits {
            max_reservations: 1024,
            max_reservations_per_peer: 16,
            reservation_secs: 3600,
            max_circuits: 1024,
            max_circuits_per_peer: 64,
            max_circuit_secs: 3600,
            max_circuit_bytes: 1 << 30,
        }
    }
}

impl RelayLimits {
    pub(crate) fn to_config(self) -> libp2p::relay::Config {
        libp2p::relay::Config {
            max_reservations: self.max_reservations,
            max_reservations_per_peer: self.max_reservations_per_peer,
            reservation_duration: Duration::from_secs(self.reservation_secs),
            reservation_rate_limiters: Vec::new(),
            max_circuits: self.max_circuits,
            max_circuits_per_peer: self.max_circuits_per_peer,
            max_circuit_duration: Duration::from_secs(self.max_circuit_secs),
            max_circuit_bytes: self.max_circuit_bytes,
            circuit_src_rate_limiters: Vec::new(),
        }
    }
}

/// Everything a node is started with.
#[derive(Clone)]
pub struct NodeConfig {
    /// The role.
    pub role: Role,
    /// The node's ed25519 key (its peer id).
    pub key: ed25519_dalek::SigningKey,
    /// Addresses to listen on (QUIC and TCP), such as `/ip4/0.0.0.0/udp/4001/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Public addresses to announce (the vm's, from its FQDN); none on edges and clients.
    pub external: Vec<Multiaddr>,
    /// Who may connect.
    pub allow: AllowList,
    /// Relay limits (vm only).
    pub relay_limits: RelayLimits,
    /// Idle connections are closed after this long.
    pub idle_timeout: Duration,
    /// Timeout of one request-response exchange.
    pub request_timeout: Duration,
    /// The software version, for identify.
    pub agent_version: String,
    /// Take part in DCUtR hole punching (default: not on the vm). A client that must stay on
    /// the relay turns it off.
    pub hole_punch: bool,
}

impl NodeConfig {
    /// Defaults for `role`, listening on every interface on ports chosen by the system.
    pub fn new(role: Role, key: ed25519_dalek::SigningKey) -> Self {
        NodeConfig {
            role,
            key,
            listen: vec![
                "/ip4/0.0.0.0/udp/0/quic-v1".parse().expect("valid"),
                "/ip4/0.0.0.0/tcp/0".parse().expect("valid"),
            ],
            external: Vec::new(),
            allow: AllowList::open(),
            relay_limits: RelayLimits::default(),
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            agent_version: format!("guardian-{}/{}", role.name(), env!("CARGO_PKG_VERSION")),
            hole_punch: role != Role::Vm,
        }
    }
}
