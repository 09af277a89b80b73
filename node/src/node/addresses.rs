//! Pure helpers about addresses and connected points: whether a connection runs through a
//! relay circuit, and the circuit address a relay reservation listens on.

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Whether a connection runs through a relay circuit. An inbound relayed connection's remote
/// address is a bare `/p2p/<peer>`: the circuit shows in the local address it arrived on.
pub(crate) fn is_relayed(endpoint: &ConnectedPoint) -> bool {
    let address = match endpoint {
        ConnectedPoint::Dialer { address, .. } => address,
        ConnectedPoint::Listener { local_addr, .. } => local_addr,
    };
    address.iter().any(|p| p == Protocol::P2pCircuit)
}

/// Whether the peer opened the connection.
pub(crate) fn is_inbound(endpoint: &ConnectedPoint) -> bool {
    matches!(endpoint, ConnectedPoint::Listener { .. })
}

/// The address to listen on for a reservation on `relay` reached at `address`:
/// `address/p2p/<relay>/p2p-circuit`.
pub(crate) fn circuit(address: Multiaddr, relay: PeerId) -> Multiaddr {
    address
        .with(Protocol::P2p(relay))
        .with(Protocol::P2pCircuit)
}

#[cfg(test)]
mod tests {
    use libp2p::core::Endpoint;
    use libp2p::core::transport::PortUse;

    use super::*;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn dialer(address: Multiaddr) -> ConnectedPoint {
        ConnectedPoint::Dialer {
            address,
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        }
    }

    fn listener(local_addr: Multiaddr, send_back_addr: Multiaddr) -> ConnectedPoint {
        ConnectedPoint::Listener {
            local_addr,
            send_back_addr,
        }
    }

    #[test]
    fn the_circuit_address_names_the_relay() {
        let relay = peer();
        let c = circuit(addr("/ip4/10.0.0.1/udp/4001/quic-v1"), relay);
        assert_eq!(
            c,
            addr(&format!(
                "/ip4/10.0.0.1/udp/4001/quic-v1/p2p/{relay}/p2p-circuit"
            ))
        );
    }

    #[test]
    fn a_dialed_circuit_is_relayed_a_direct_dial_is_not() {
        let (relay, target) = (peer(), peer());
        let via = circuit(addr("/ip4/10.0.0.1/tcp/4001"), relay).with(Protocol::P2p(target));
        let d = dialer(via);
        assert!(is_relayed(&d));
        assert!(!is_inbound(&d));
        let direct = dialer(addr("/ip4/10.0.0.1/udp/4001/quic-v1"));
        assert!(!is_relayed(&direct));
    }

    #[test]
    fn an_inbound_circuit_shows_in_the_local_address() {
        let relay = peer();
        let local = circuit(addr("/ip4/10.0.0.1/udp/4001/quic-v1"), relay);
        // The remote address of a relayed inbound connection does not show the circuit.
        let l = listener(local, addr(&format!("/p2p/{}", peer())));
        assert!(is_relayed(&l));
        assert!(is_inbound(&l));
        let direct = listener(
            addr("/ip4/0.0.0.0/udp/4001/quic-v1"),
            addr("/ip4/192.0.2.7/udp/5000/quic-v1"),
        );
        assert!(!is_relayed(&direct));
        assert!(is_inbound(&direct));
    }
}
