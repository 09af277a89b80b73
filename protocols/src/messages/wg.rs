//! `/guardian/wg/1`: after enrollment, edge and vm agree on a WireGuard peer. The libp2p
//! connection already authenticates both ends, so the keys exchanged here need no signature.

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;

/// The edge's offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WgOffer {
    /// The edge's WireGuard public key (Curve25519, 32 bytes).
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
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
    /// The edge's overlay address with prefix, such as `10.77.0.2/32`.
    pub edge_address: String,
    /// The vm's overlay address, such as `10.77.0.1`.
    pub vm_address: String,
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
        });
    }

    #[test]
    fn wg_answer() {
        conformance::check(&WgAnswer::Accepted(WgPeerConfig {
            vm_public_key: vec![3; 32],
            vm_endpoint: "vm.example.org:51820".into(),
            edge_address: "10.77.0.2/32".into(),
            vm_address: "10.77.0.1".into(),
            allowed_ips: vec!["10.77.0.1/32".into()],
            keepalive_secs: 25,
        }));
        conformance::check(&WgAnswer::Refused {
            reason: "disabled".into(),
        });
    }
}
