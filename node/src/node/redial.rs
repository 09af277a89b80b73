//! What the node keeps up, as pure state driven by the swarm task with the current time:
//! [`Redials`], the peers to stay connected to (redialed with backoff, 0.5 s doubling to 3 s,
//! full jitter: the vm link comes back within seconds of the vm's return, and many edges
//! still spread out), and [`RelayReservation`], the reservation to hold on a relay (listened for
//! again whenever the relay's connection comes back, retried every [`RELAY_RETRY`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::{Multiaddr, PeerId};
use rand::Rng;

use crate::backoff::Backoff;

/// The first redial wait's ceiling.
pub(crate) const REDIAL_BASE: Duration = Duration::from_millis(500);
/// The longest redial wait.
pub(crate) const REDIAL_MAX: Duration = Duration::from_secs(3);
/// The wait before listening through the relay again after a failure or a lost reservation.
pub(crate) const RELAY_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Kept {
    addresses: Vec<Multiaddr>,
    backoff: Backoff,
    next_attempt: Instant,
    dialing: bool,
}

/// Peers to keep a connection to.
#[derive(Debug, Default)]
pub(crate) struct Redials(HashMap<PeerId, Kept>);

impl Redials {
    /// Keeps `peer` connected from `now` on, dialing `addresses` in order.
    pub(crate) fn keep(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, now: Instant) {
        self.0.insert(
            peer,
            Kept {
                addresses,
                backoff: Backoff::new(REDIAL_BASE, REDIAL_MAX),
                next_attempt: now,
                dialing: false,
            },
        );
    }

    /// The kept peers to dial now (not connected, not being dialed, their wait over), marked
    /// as being dialed.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        connected: impl Fn(&PeerId) -> bool,
    ) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.0
            .iter_mut()
            .filter(|(peer, k)| !k.dialing && k.next_attempt <= now && !connected(peer))
            .map(|(peer, k)| {
                k.dialing = true;
                (*peer, k.addresses.clone())
            })
            .collect()
    }

    /// A dial of `peer` failed: the next attempt waits. Returns the attempt count and the
    /// wait, when the peer is kept.
    pub(crate) fn failed(
        &mut self,
        peer: &PeerId,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Option<(u32, Duration)> {
        let k = self.0.get_mut(peer)?;
        k.dialing = false;
        let wait = k.backoff.next_delay(rng);
        k.next_attempt = now + wait;
        Some((k.backoff.attempts(), wait))
    }

    /// A connection to `peer` opened: the backoff starts over.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        if let Some(k) = self.0.get_mut(peer) {
            k.dialing = false;
            k.backoff.reset();
        }
    }

    /// The last connection to `peer` closed: come back soon after a drop, then back off if it
    /// keeps failing.
    pub(crate) fn dropped(&mut self, peer: &PeerId, now: Instant, rng: &mut impl Rng) {
        if let Some(k) = self.0.get_mut(peer) {
            let wait = k.backoff.next_delay(rng);
            k.next_attempt = now + wait;
        }
    }
}

/// The relay reservation to hold: listening on the relay's circuit address.
#[derive(Debug)]
pub(crate) struct RelayReservation {
    relay: PeerId,
    circuit: Multiaddr,
    listener: Option<ListenerId>,
    next_attempt: Instant,
}

impl RelayReservation {
    /// A reservation on `relay` through `circuit`, wanted from `now` on.
    pub(crate) fn new(relay: PeerId, circuit: Multiaddr, now: Instant) -> Self {
        RelayReservation {
            relay,
            circuit,
            listener: None,
            next_attempt: now,
        }
    }

    /// The relay.
    pub(crate) fn relay(&self) -> PeerId {
        self.relay
    }

    /// The circuit address to listen on now, if due: no listener, the wait over, and a direct
    /// connection to the relay open (`relay_direct`).
    pub(crate) fn due(&self, now: Instant, relay_direct: bool) -> Option<Multiaddr> {
        (self.listener.is_none() && self.next_attempt <= now && relay_direct)
            .then(|| self.circuit.clone())
    }

    /// Listening started.
    pub(crate) fn listening(&mut self, id: ListenerId) {
        self.listener = Some(id);
    }

    /// Listening could not start: try again after [`RELAY_RETRY`].
    pub(crate) fn listen_failed(&mut self, now: Instant) {
        self.next_attempt = now + RELAY_RETRY;
    }

    /// A listener closed; `true` when it was the reservation's (then retried after
    /// [`RELAY_RETRY`]).
    pub(crate) fn listener_closed(&mut self, id: ListenerId, now: Instant) -> bool {
        if self.listener != Some(id) {
            return false;
        }
        self.listener = None;
        self.next_attempt = now + RELAY_RETRY;
        true
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_kept_peer_is_due_at_once_then_not_while_dialing() {
        let t0 = Instant::now();
        let mut r = Redials::default();
        let p = peer();
        let a = vec![
            addr("/ip4/10.0.0.1/udp/4001/quic-v1"),
            addr("/ip4/10.0.0.1/tcp/4001"),
        ];
        r.keep(p, a.clone(), t0);
        assert_eq!(r.due(t0, |_| false), [(p, a)]);
        assert!(r.due(t0, |_| false).is_empty(), "being dialed");
    }

    #[test]
    fn a_connected_peer_is_not_due() {
        let t0 = Instant::now();
        let mut r = Redials::default();
        let p = peer();
        r.keep(p, vec![], t0);
        assert!(r.due(t0, |q| *q == p).is_empty());
    }

    #[test]
    fn failures_back_off_and_a_connection_resets() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut r = Redials::default();
        let p = peer();
        r.keep(p, vec![], t0);
        assert_eq!(r.due(t0, |_| false).len(), 1);
        let mut now = t0;
        for attempt in 1..=8u32 {
            let (n, wait) = r.failed(&p, now, &mut rng).expect("kept");
            assert_eq!(n, attempt);
            let ceiling = REDIAL_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(REDIAL_MAX);
            assert!(wait <= ceiling, "attempt {attempt}: {wait:?} > {ceiling:?}");
            // Not due before its wait is over (unless the wait drew 0), due after.
            if wait > Duration::ZERO {
                assert!(
                    r.due(now + wait - Duration::from_millis(1), |_| false)
                        .is_empty()
                );
            }
            now += wait;
            assert_eq!(r.due(now, |_| false).len(), 1, "attempt {attempt}");
        }
        r.connected(&p);
        let (n, wait) = r.failed(&p, now, &mut rng).unwrap();
        assert_eq!(n, 1, "the backoff started over");
        assert!(wait <= REDIAL_BASE);
        // A peer that is not kept has no backoff.
        assert!(r.failed(&peer(), now, &mut rng).is_none());
    }

    #[test]
    fn a_drop_waits_a_backoff_before_the_redial() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut r = Redials::default();
        let p = peer();
        r.keep(p, vec![], t0);
        r.due(t0, |_| false);
        r.connected(&p);
        r.dropped(&p, t0, &mut rng);
        assert_eq!(r.due(t0 + REDIAL_BASE, |_| false).len(), 1);
    }

    #[test]
    fn the_reservation_waits_for_a_direct_relay_connection() {
        let t0 = Instant::now();
        let relay = peer();
        let circuit = addr(&format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit"));
        let mut r = RelayReservation::new(relay, circuit.clone(), t0);
        assert_eq!(r.relay(), relay);
        assert_eq!(r.due(t0, false), None);
        assert_eq!(r.due(t0, true), Some(circuit.clone()));
        r.listen_failed(t0);
        assert_eq!(r.due(t0 + RELAY_RETRY / 2, true), None);
        assert_eq!(r.due(t0 + RELAY_RETRY, true), Some(circuit.clone()));
        let id = ListenerId::next();
        r.listening(id);
        assert_eq!(r.due(t0 + RELAY_RETRY, true), None, "already listening");
        assert!(
            !r.listener_closed(ListenerId::next(), t0),
            "another listener"
        );
        assert!(r.listener_closed(id, t0 + RELAY_RETRY));
        assert_eq!(r.due(t0 + RELAY_RETRY, true), None);
        assert_eq!(r.due(t0 + RELAY_RETRY * 2, true), Some(circuit));
    }
}
