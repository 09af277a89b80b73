//! `/guardian/wg/1`: after enrollment, edge and vm agree on a WireGuard peer. The libp2p
//! connection already authenticates both ends, so the keys exchanged here need no signature:
//! the vm answers only an enrolled edge's peer id, which binds the WireGuard key to it.
//! `/guardian/wg-relay/1` carries the tunnel's packets when UDP does not pass: each packet
//! framed with a 2-byte big-endian length, both ways (`docs/overlay.md`).

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;

/// The edge's offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WgOffer {
    /// The edge's WireGuard public key (Curve25519, 32 bytes).
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
    /// The key's generation: 1 for the first, one more at each rotation. The vm refuses an
    /// older generation than the one it has (an old key replayed).
    #[serde(default)]
    pub generation: u64,
    /// The TCP port of the edge's local API on its overlay addresses (0: none).
    #[serde(default)]
    pub api_port: u16,
}

impl WireMessage for WgOffer {
    const NAME: &'static str = "WgOffer";
    const MAX_SIZE: usize = 1024;
}

/// The vm's answer: the peer configuration of both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WgAnswer {
    /// The tunnel to bring up.
    Accepted(WgPeerConfig),
    /// No tunnel (disabled on the vm, or a malformed offer).
    Refused {
        /// Why.
        reason: String,
    },
}

/// A WireGuard peer configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WgPeerConfig {
    /// The vm's WireGuard public key (32 bytes).
    #[serde(with = "serde_bytes")]
    pub vm_public_key: Vec<u8>,
    /// The vm's UDP endpoint, `host:port`.
    pub vm_endpoint: String,
    /// The edge's IPv6 overlay address with the overlay's prefix length, such as
    /// `fd12:3456:789a::2/64`.
    pub edge_address: String,
    /// The vm's IPv6 overlay address, such as `fd12:3456:789a::1`.
    pub vm_address: String,
    /// The edge's IPv4 overlay address with the range's length, such as `10.77.0.2/16`.
    #[serde(default)]
    pub edge_address_v4: String,
    /// The vm's IPv4 overlay address, such as `10.77.0.1`.
    #[serde(default)]
    pub vm_address_v4: String,
    /// The generation of the edge's key the vm now holds.
    #[serde(default)]
    pub generation: u64,
    /// The vm asks the edge to make a new key and offer it (an admin asked for a rotation).
    #[serde(default)]
    pub rotate: bool,
    /// How often the edge offers its key again (the vm's restarts and rotation requests
    /// reach it that way), seconds.
    #[serde(default)]
    pub recheck_secs: u32,
    /// Networks routed through the tunnel from the edge.
    pub allowed_ips: Vec<String>,
    /// Persistent keepalive, seconds (25 keeps a home NAT mapping open).
    pub keepalive_secs: u16,
}

impl WireMessage for WgAnswer {
    const NAME: &'static str = "WgAnswer";
    const MAX_SIZE: usize = 4 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    #[test]
    fn wg_offer() {
        conformance::check(&WgOffer {
            public_key: vec![9; 32],
            generation: 3,
            api_port: 7080,
        });
    }

    #[test]
    fn wg_answer() {
        conformance::check(&WgAnswer::Accepted(WgPeerConfig {
            vm_public_key: vec![3; 32],
            vm_endpoint: "vm.example.org:51820".into(),
            edge_address: "fd12:3456:789a::2/64".into(),
            vm_address: "fd12:3456:789a::1".into(),
            edge_address_v4: "10.77.0.2/16".into(),
            vm_address_v4: "10.77.0.1".into(),
            allowed_ips: vec!["fd12:3456:789a::/64".into(), "10.77.0.0/16".into()],
            keepalive_secs: 25,
            generation: 3,
            rotate: false,
            recheck_secs: 60,
        }));
        conformance::check(&WgAnswer::Refused {
            reason: "disabled".into(),
        });
    }
}
