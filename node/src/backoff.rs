//! Exponential backoff with full jitter (AWS architecture blog's "full jitter"): the n-th wait
//! is uniform in `[0, min(max, base · 2^n)]`, so many edges that lost the vm at once do not
//! come back in lockstep. Written here rather than taken from a crate: it is a dozen lines
//! driven by an explicit RNG, which keeps it deterministic under test.

use std::time::Duration;

use rand::Rng;

/// Backoff state for one thing being retried.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base` and capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The cap for the next wait, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The next wait, drawn from `rng`, and counts the attempt.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(if millis == 0 {
            0
        } else {
            rng.gen_range(0..=millis)
        })
    }

    /// The next wait without jitter (the ceiling), and counts the attempt: for one client
    /// retrying against one peer, where nothing is to be spread out.
    pub fn next_fixed(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling
    }

    /// Attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Back to the first, shortest wait (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ceiling_doubles_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            ceilings.push(b.ceiling().as_millis());
            let d = b.next_delay(&mut rng);
            assert!(d <= Duration::from_secs(2));
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn fixed_waits_are_the_ceilings() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let waits: Vec<u64> = (0..6).map(|_| b.next_fixed().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        assert_eq!(b.attempts(), 6);
    }

    #[test]
    fn jitter_spreads_waits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let waits: Vec<_> = (0..50)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
                b.next_delay(&mut rng).as_millis()
            })
            .collect();
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 40, "{waits:?}");
        assert!(waits.iter().all(|w| *w <= 1000));
    }

    #[test]
    fn survives_many_attempts() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..1000 {
            assert!(b.next_delay(&mut rng) <= Duration::from_secs(30));
        }
    }
}
