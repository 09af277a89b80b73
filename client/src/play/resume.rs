//! When to resume a broken stream: at most `retries` times, waiting 1 s doubling to 8 s
//! between attempts; progress since the last break starts the waits over (not the count).
//! The node's [`Backoff`] without jitter ([`Backoff::next_fixed`]): one client against one
//! edge gains nothing from jitter, and the waits add up to cover an edge restart.

use std::time::Duration;

use guardian_node::backoff::Backoff;

/// The first wait before a resume.
pub(crate) const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(8);

/// The resumes of one playback.
#[derive(Debug)]
pub(crate) struct Resumes {
    limit: u32,
    used: u32,
    backoff: Backoff,
}

impl Resumes {
    /// At most `limit` resumes.
    pub(crate) fn new(limit: u32) -> Self {
        Resumes {
            limit,
            used: 0,
            backoff: Backoff::new(FIRST_WAIT, MAX_WAIT),
        }
    }

    /// Bytes arrived since the last break: the waits start over.
    pub(crate) fn progressed(&mut self) {
        self.backoff.reset();
    }

    /// The wait before the next resume, counting it; `None` when the budget is spent.
    pub(crate) fn next_wait(&mut self) -> Option<Duration> {
        if self.used >= self.limit {
            return None;
        }
        self.used += 1;
        Some(self.backoff.next_fixed())
    }

    /// Resumes made.
    pub(crate) fn used(&self) -> u32 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_to_the_cap_until_the_budget_is_spent() {
        let mut r = Resumes::new(6);
        let waits: Vec<u64> = std::iter::from_fn(|| r.next_wait())
            .map(|d| d.as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        assert_eq!(r.used(), 6);
        assert_eq!(r.next_wait(), None);
        assert_eq!(r.used(), 6);
    }

    #[test]
    fn progress_starts_the_waits_over_not_the_count() {
        let mut r = Resumes::new(4);
        assert_eq!(r.next_wait(), Some(FIRST_WAIT));
        assert_eq!(r.next_wait(), Some(2 * FIRST_WAIT));
        r.progressed();
        assert_eq!(r.next_wait(), Some(FIRST_WAIT));
        assert_eq!(r.used(), 3);
        assert!(r.next_wait().is_some());
        assert_eq!(r.next_wait(), None);
    }

    #[test]
    fn no_retries_means_no_resume() {
        let mut r = Resumes::new(0);
        assert_eq!(r.next_wait(), None);
        assert_eq!(r.used(), 0);
    }
}
