//! When the agent sends from its outboxes, and what it does with the vm's answer: pure
//! decisions, driven by the time and the RNG the caller passes (a manual clock and a seeded
//! RNG in tests).
//!
//! The event outbox ([`EventPacer`]): a batch the vm stored is deleted and the backoff starts
//! over; a batch it refused for good (not enrolled, wrong tenant, malformed) is parked with
//! the reason and the next batch goes at once; a batch whose send failed, or that the vm
//! refused for now (its storage is unavailable), stays and nothing is sent before a backoff
//! of 1 s doubling to 60 s, with full jitter, has passed.
//!
//! The archive outbox keeps its retry time in its rows (wall time, it survives a restart):
//! [`archive_retry_at`].

use std::time::{Duration, Instant};

use guardian_node::backoff::Backoff;
use protocols::messages::events::EventAck;
use rand::Rng;

/// The first wait before an event batch is sent again after a failure or a retryable refusal.
pub const OUTBOX_RETRY: Duration = Duration::from_secs(1);
/// The longest such wait.
pub const OUTBOX_RETRY_MAX: Duration = Duration::from_secs(60);
/// The first wait before an archive send is tried again.
pub const ARCHIVE_RETRY: Duration = Duration::from_secs(1);
/// The longest such wait.
pub const ARCHIVE_RETRY_MAX: Duration = Duration::from_secs(300);
/// The shortest wait before an archive send is tried again.
pub const ARCHIVE_RETRY_MIN: Duration = Duration::from_millis(200);

/// What to do with a batch's rows once the vm answered, or did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The vm stored these: delete their rows; the next batch may go at once.
    Delete(Vec<String>),
    /// The vm refused these for good: park them with the reason; the next batch may go.
    Park {
        /// The batch.
        ids: Vec<String>,
        /// The refusal, as text.
        reason: String,
    },
    /// Not delivered for now: count an attempt on these and send nothing before `wait`.
    Retry {
        /// The batch.
        ids: Vec<String>,
        /// The backoff drawn.
        wait: Duration,
    },
}

/// Paces the event outbox: whether a send is due, and the backoff between failed sends.
#[derive(Debug, Clone)]
pub struct EventPacer {
    backoff: Backoff,
    blocked_until: Option<Instant>,
}

impl Default for EventPacer {
    fn default() -> Self {
        Self::new()
    }
}

impl EventPacer {
    /// A pacer with nothing to wait for.
    pub fn new() -> Self {
        EventPacer {
            backoff: Backoff::new(OUTBOX_RETRY, OUTBOX_RETRY_MAX),
            blocked_until: None,
        }
    }

    /// Whether a batch may be sent at `now` (monotonic time).
    pub fn is_due(&self, now: Instant) -> bool {
        self.blocked_until.is_none_or(|t| now >= t)
    }

    /// The time before which nothing is sent, if any.
    pub fn blocked_until(&self) -> Option<Instant> {
        self.blocked_until
    }

    /// Failed sends (and refusals for now) since the last delivered batch.
    pub fn failures(&self) -> u32 {
        self.backoff.attempts()
    }

    /// Decides what the reply to the batch `ids`, sent at `now`, means for its rows and for
    /// the next send. `reply` is the vm's ack, or the error of a send that got none.
    pub fn on_reply<E>(
        &mut self,
        ids: Vec<String>,
        reply: &Result<EventAck, E>,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Action {
        match reply {
            Ok(EventAck::Stored { event_ids }) => {
                self.backoff.reset();
                self.blocked_until = None;
                Action::Delete(event_ids.clone())
            }
            Ok(EventAck::Refused(refusal)) if !refusal.is_retryable() => {
                self.blocked_until = None;
                Action::Park {
                    ids,
                    reason: refusal.to_string(),
                }
            }
            Ok(EventAck::Refused(_)) | Err(_) => {
                let wait = self.backoff.next_delay(rng);
                self.blocked_until = Some(now + wait);
                Action::Retry { ids, wait }
            }
        }
    }
}

/// When (wall time, Unix ms) an archive send that failed after `attempts` earlier failures,
/// at `now_ms`, is tried again: 1 s doubling to 5 min with full jitter, at least 200 ms.
pub fn archive_retry_at(attempts: u32, now_ms: u64, rng: &mut impl Rng) -> u64 {
    let mut b = Backoff::new(ARCHIVE_RETRY, ARCHIVE_RETRY_MAX);
    for _ in 0..attempts.min(20) {
        b.next_delay(rng);
    }
    let wait = b.next_delay(rng).max(ARCHIVE_RETRY_MIN);
    now_ms.saturating_add(wait.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardian_node::clock::{Clock, ManualClock};
    use protocols::messages::events::EventRefusal;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn unavailable() -> Result<EventAck, String> {
        Ok(EventAck::Refused(EventRefusal::StorageUnavailable(
            "disk full".into(),
        )))
    }

    #[test]
    fn a_retryable_refusal_is_retried_after_the_backoff_and_not_before() {
        let clock = ManualClock::new(1_000);
        let mut rng = StdRng::seed_from_u64(1);
        let mut p = EventPacer::new();
        assert!(p.is_due(clock.monotonic()));
        let a = p.on_reply(
            ids(&["a", "b"]),
            &unavailable(),
            clock.monotonic(),
            &mut rng,
        );
        let Action::Retry { ids: kept, wait } = a else {
            panic!("{a:?}")
        };
        assert_eq!(kept, ids(&["a", "b"]));
        assert!(wait <= OUTBOX_RETRY, "{wait:?}");
        assert_eq!(p.blocked_until(), Some(clock.monotonic() + wait));
        if wait > Duration::ZERO {
            clock.advance(wait - Duration::from_millis(1));
            assert!(!p.is_due(clock.monotonic()), "not before the backoff");
            clock.advance(Duration::from_millis(1));
        }
        assert!(p.is_due(clock.monotonic()), "due once it has passed");
    }

    #[test]
    fn failures_back_off_doubling_to_the_cap() {
        let clock = ManualClock::new(0);
        let mut rng = StdRng::seed_from_u64(9);
        let mut p = EventPacer::new();
        let mut waits = Vec::new();
        for _ in 0..10 {
            let a = p.on_reply(
                ids(&["a"]),
                &Err::<EventAck, _>("timed out"),
                clock.monotonic(),
                &mut rng,
            );
            let Action::Retry { wait, .. } = a else {
                panic!("{a:?}")
            };
            waits.push(wait);
            clock.advance(wait);
        }
        assert_eq!(p.failures(), 10);
        for (n, w) in waits.iter().enumerate() {
            let ceiling = (OUTBOX_RETRY * (1u32 << n.min(10) as u32)).min(OUTBOX_RETRY_MAX);
            assert!(*w <= ceiling, "wait {n}: {w:?} > {ceiling:?}");
        }
        // With jitter the later waits are, with this seed, longer than the first ceiling.
        assert!(
            waits[6..].iter().any(|w| *w > OUTBOX_RETRY * 4),
            "{waits:?}"
        );
    }

    #[test]
    fn a_final_refusal_parks_the_rows_with_the_reason() {
        let clock = ManualClock::new(0);
        let mut rng = StdRng::seed_from_u64(2);
        let mut p = EventPacer::new();
        for refusal in [
            EventRefusal::NotEnrolled,
            EventRefusal::WrongTenant {
                event_id: "a".into(),
            },
            EventRefusal::Malformed("bad id".into()),
        ] {
            let reason = refusal.to_string();
            let a = p.on_reply(
                ids(&["a", "b"]),
                &Ok::<_, String>(EventAck::Refused(refusal)),
                clock.monotonic(),
                &mut rng,
            );
            assert_eq!(
                a,
                Action::Park {
                    ids: ids(&["a", "b"]),
                    reason
                }
            );
            assert!(p.is_due(clock.monotonic()), "the next batch goes at once");
        }
        assert_eq!(p.failures(), 0);
    }

    #[test]
    fn a_success_deletes_what_was_stored_and_resets_the_backoff() {
        let clock = ManualClock::new(0);
        let mut rng = StdRng::seed_from_u64(3);
        let mut p = EventPacer::new();
        for _ in 0..5 {
            p.on_reply(ids(&["a"]), &unavailable(), clock.monotonic(), &mut rng);
        }
        assert_eq!(p.failures(), 5);
        clock.advance(OUTBOX_RETRY_MAX);
        let a = p.on_reply(
            ids(&["a", "b"]),
            &Ok::<_, String>(EventAck::Stored {
                event_ids: ids(&["a"]),
            }),
            clock.monotonic(),
            &mut rng,
        );
        assert_eq!(a, Action::Delete(ids(&["a"])), "only what the vm acked");
        assert_eq!(p.failures(), 0);
        assert!(p.is_due(clock.monotonic()));
        // The next failure waits at most the first step again.
        let Action::Retry { wait, .. } =
            p.on_reply(ids(&["b"]), &unavailable(), clock.monotonic(), &mut rng)
        else {
            panic!()
        };
        assert!(wait <= OUTBOX_RETRY);
    }

    #[test]
    fn archive_retries_are_later_than_now_and_grow_with_attempts() {
        let mut rng = StdRng::seed_from_u64(4);
        let now = 1_700_000_000_000;
        for attempts in [0, 1, 5, 50] {
            let at = archive_retry_at(attempts, now, &mut rng);
            let ceiling = (ARCHIVE_RETRY * (1 << attempts.min(20)))
                .min(ARCHIVE_RETRY_MAX)
                .as_millis() as u64;
            assert!(
                at >= now + ARCHIVE_RETRY_MIN.as_millis() as u64,
                "{attempts}"
            );
            assert!(at <= now + ceiling.max(200), "{attempts}: {}", at - now);
        }
        let late: Vec<u64> = (0..20)
            .map(|_| archive_retry_at(50, now, &mut rng) - now)
            .collect();
        assert!(late.iter().any(|w| *w > 60_000), "{late:?}");
    }
}
