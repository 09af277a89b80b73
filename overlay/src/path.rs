//! Which path the edge's WireGuard packets take to the vm: UDP while the vm answers the
//! edge's UDP probes, the libp2p stream when no answer came for [`PathRule::udp_timeout`]
//! (including the first that long after start), and back to UDP after
//! [`PathRule::answers_to_return`] answers in a row. Pure: the caller says when.

use std::time::{Duration, Instant};

/// The path in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// Direct UDP to the vm's WireGuard port.
    Udp,
    /// Over the libp2p connection, framed.
    Stream,
}

impl Path {
    /// `udp` or `stream`, as the API and telemetry say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Udp => "udp",
            Path::Stream => "stream",
        }
    }
}

/// The rule's constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRule {
    /// With no answer for this long, the stream.
    pub udp_timeout: Duration,
    /// Answers in a row (one per probe) that bring the tunnel back to UDP.
    pub answers_to_return: u32,
}

impl Default for PathRule {
    fn default() -> Self {
        PathRule {
            udp_timeout: Duration::from_secs(10),
            answers_to_return: 2,
        }
    }
}

/// The rule's state.
#[derive(Debug, Clone)]
pub struct PathState {
    rule: PathRule,
    current: Path,
    /// The last answer, or the start (UDP gets the same grace at the start).
    last_answer: Instant,
    answers_in_a_row: u32,
}

impl PathState {
    /// Starting on UDP at `now`.
    pub fn new(rule: PathRule, now: Instant) -> PathState {
        PathState {
            rule,
            current: Path::Udp,
            last_answer: now,
            answers_in_a_row: 0,
        }
    }

    /// The path in use.
    pub fn current(&self) -> Path {
        self.current
    }

    /// A probe was sent at `now` (counts the previous one as lost if it had no answer by now).
    pub fn on_probe_sent(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_answer) > self.rule.udp_timeout / 4 {
            self.answers_in_a_row = 0;
        }
    }

    /// An answer came at `now`.
    pub fn on_answer(&mut self, now: Instant) {
        self.last_answer = now;
        self.answers_in_a_row = self.answers_in_a_row.saturating_add(1);
    }

    /// The path to use at `now`; `Some` when it changed.
    pub fn update(&mut self, now: Instant) -> Option<Path> {
        let next = match self.current {
            Path::Udp
                if now.saturating_duration_since(self.last_answer) >= self.rule.udp_timeout =>
            {
                Path::Stream
            }
            Path::Stream if self.answers_in_a_row >= self.rule.answers_to_return => Path::Udp,
            p => p,
        };
        if next == self.current {
            return None;
        }
        self.current = next;
        if next == Path::Stream {
            self.answers_in_a_row = 0;
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Probes every second; `answered(i)` says whether probe `i` got an answer.
    fn run(t0: Instant, seconds: u64, answered: impl Fn(u64) -> bool) -> Vec<(u64, Path)> {
        let mut s = PathState::new(PathRule::default(), t0);
        let mut changes = vec![];
        for i in 0..seconds {
            let now = t0 + secs(i);
            s.on_probe_sent(now);
            if answered(i) {
                s.on_answer(now + Duration::from_millis(20));
            }
            if let Some(p) = s.update(now + Duration::from_millis(500)) {
                changes.push((i, p));
            }
        }
        changes
    }

    #[test]
    fn udp_that_works_stays() {
        assert_eq!(run(Instant::now(), 120, |_| true), vec![]);
    }

    #[test]
    fn blocked_from_the_start_moves_to_the_stream_after_ten_seconds() {
        assert_eq!(run(Instant::now(), 60, |_| false), vec![(10, Path::Stream)]);
    }

    #[test]
    fn blocked_then_unblocked_goes_there_and_back() {
        // Answers until 20 s, none from 20 to 40 s, then answers again.
        let changes = run(Instant::now(), 60, |i| !(20..40).contains(&i));
        assert_eq!(changes, vec![(29, Path::Stream), (41, Path::Udp)]);
    }

    #[test]
    fn a_lone_answer_does_not_bring_it_back() {
        // On the stream from 10 s; one answer at 30 s, none after.
        let changes = run(Instant::now(), 60, |i| i == 30);
        assert_eq!(changes, vec![(10, Path::Stream)]);
    }

    #[test]
    fn a_few_lost_probes_do_not_move_it() {
        let changes = run(Instant::now(), 60, |i| i % 4 != 0);
        assert_eq!(changes, vec![]);
        assert_eq!(Path::Stream.as_str(), "stream");
    }
}
