//! Connections that stopped answering: each open connection's last ping answer (or its
//! opening), and the ones silent for longer than [`SILENCE_LIMIT`], which the swarm task
//! closes. libp2p's ping reports a failure only after its second in a row, and the second
//! waits out a stream negotiation timeout, so on a TCP connection to a dead peer that would
//! be 20 s and more; this bound holds on every transport. Pure: each method takes `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// A connection with no ping answered for this long is closed (pings go every 3 s).
pub(crate) const SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// Open connections and when each last answered.
#[derive(Debug, Default)]
pub(crate) struct Liveness(HashMap<ConnectionId, (PeerId, Instant)>);

impl Liveness {
    /// A connection opened at `now` (it counts as an answer).
    pub(crate) fn opened(&mut self, peer: PeerId, id: ConnectionId, now: Instant) {
        self.0.insert(id, (peer, now));
    }

    /// A ping on `id` was answered at `now`.
    pub(crate) fn answered(&mut self, id: ConnectionId, now: Instant) {
        if let Some(e) = self.0.get_mut(&id) {
            e.1 = now;
        }
    }

    /// `id` closed, or its peer does not speak ping (then it is not judged).
    pub(crate) fn forget(&mut self, id: ConnectionId) {
        self.0.remove(&id);
    }

    /// The connections silent for longer than [`SILENCE_LIMIT`] at `now`, taken out (the
    /// caller closes them).
    pub(crate) fn take_silent(&mut self, now: Instant) -> Vec<(PeerId, ConnectionId)> {
        let silent: Vec<(PeerId, ConnectionId)> = self
            .0
            .iter()
            .filter(|(_, (_, last))| now.saturating_duration_since(*last) > SILENCE_LIMIT)
            .map(|(id, (peer, _))| (*peer, *id))
            .collect();
        for (_, id) in &silent {
            self.0.remove(id);
        }
        silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connections_silent_past_the_limit_are_taken() {
        let t0 = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        let (ca, cb, cc) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        let mut l = Liveness::default();
        l.opened(a, ca, t0);
        l.opened(b, cb, t0);
        l.opened(b, cc, t0);
        l.answered(cb, t0 + Duration::from_secs(10));
        l.forget(cc);
        assert!(
            l.take_silent(t0 + SILENCE_LIMIT).is_empty(),
            "at the limit: not yet"
        );
        let later = t0 + SILENCE_LIMIT + Duration::from_millis(1);
        assert_eq!(l.take_silent(later), [(a, ca)]);
        assert!(l.take_silent(later).is_empty(), "taken once");
        let much_later = t0 + Duration::from_secs(10) + SILENCE_LIMIT + Duration::from_millis(1);
        assert_eq!(l.take_silent(much_later), [(b, cb)]);
    }
}
