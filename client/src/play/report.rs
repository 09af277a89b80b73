//! [`PlayReport`], what a playback did, and the [`Tally`] it is counted in while streaming:
//! bytes, first byte, and bytes and time per path (through the relay, direct). Pure: times
//! come in as arguments.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlayReport {
    /// The event.
    pub event_id: String,
    /// Bytes received (the clip's size on success).
    pub bytes: u64,
    /// Milliseconds from the start to the first byte of the clip.
    pub first_byte_ms: u64,
    /// Whether the first stream went through the vm's relay.
    pub relayed: bool,
    /// Milliseconds from the start until a direct connection to the edge came up, if one did.
    pub direct_after_ms: Option<u64>,
    /// Whether the stream moved to a direct connection.
    pub switched_to_direct: bool,
    /// Bytes per second from the first byte to the last.
    pub throughput: f64,
    /// Milliseconds from the start to the end.
    pub total_ms: u64,
    /// Times the stream was reopened after it broke.
    pub resumes: u32,
    /// Bytes that came through the vm's relay.
    pub relayed_bytes: u64,
    /// Milliseconds spent streaming through the relay (from each stream's open).
    pub relayed_ms: u64,
    /// Bytes that came over a direct connection.
    pub direct_bytes: u64,
    /// Milliseconds spent streaming over a direct connection (from each stream's open).
    pub direct_ms: u64,
    /// Where it went: a path, `-` for stdout, or empty.
    pub output: String,
}

/// What a playback counts while it streams.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Bytes received (the offset to resume from).
    pub(crate) bytes: u64,
    first_byte: Option<Duration>,
    first_relayed: Option<bool>,
    direct_after: Option<Duration>,
    /// The stream now open: when it opened, the offset then, whether it is relayed.
    open_path: Option<(Instant, u64, bool)>,
    /// (bytes, time) through the relay and direct.
    relayed: (u64, Duration),
    direct: (u64, Duration),
}

impl Tally {
    /// A stream opened at `at` (relayed or direct), from the current offset.
    pub(crate) fn opened(&mut self, at: Instant, relayed: bool) {
        self.open_path = Some((at, self.bytes, relayed));
        if self.first_relayed.is_none() {
            self.first_relayed = Some(relayed);
        }
    }

    /// Bytes arrive `since_start` into the playback: the first mark the first byte.
    pub(crate) fn first_byte_at(&mut self, since_start: Duration) {
        if self.first_byte.is_none() {
            self.first_byte = Some(since_start);
        }
    }

    /// `n` bytes were written.
    pub(crate) fn received(&mut self, n: u64) {
        self.bytes += n;
    }

    /// A direct connection to the edge came up `since_start` into the playback (the first
    /// one counts).
    pub(crate) fn direct_seen(&mut self, since_start: Duration) {
        if self.direct_after.is_none() {
            self.direct_after = Some(since_start);
        }
    }

    /// The open stream ended at `now`: its bytes and time go to its path.
    pub(crate) fn close_path(&mut self, now: Instant) {
        if let Some((opened, from, relayed)) = self.open_path.take() {
            let slot = if relayed {
                &mut self.relayed
            } else {
                &mut self.direct
            };
            slot.0 += self.bytes - from;
            slot.1 += now.saturating_duration_since(opened);
        }
    }

    /// The report of a playback of `event_id` that took `total`, resumed `resumes` times,
    /// written to `output`.
    pub(crate) fn report(
        &self,
        event_id: &str,
        total: Duration,
        resumes: u32,
        switched_to_direct: bool,
        output: String,
    ) -> PlayReport {
        let total_ms = total.as_millis() as u64;
        let first_byte_ms = self
            .first_byte
            .map(|d| d.as_millis() as u64)
            .unwrap_or(total_ms);
        let secs = (total_ms.saturating_sub(first_byte_ms)).max(1) as f64 / 1000.0;
        PlayReport {
            event_id: event_id.to_owned(),
            bytes: self.bytes,
            first_byte_ms,
            relayed: self.first_relayed.unwrap_or(true),
            direct_after_ms: self.direct_after.map(|d| d.as_millis() as u64),
            switched_to_direct,
            throughput: self.bytes as f64 / secs,
            total_ms,
            resumes,
            relayed_bytes: self.relayed.0,
            relayed_ms: self.relayed.1.as_millis() as u64,
            direct_bytes: self.direct.0,
            direct_ms: self.direct.1.as_millis() as u64,
            output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn bytes_and_time_go_to_the_path_that_carried_them() {
        let t0 = Instant::now();
        let mut t = Tally::default();
        t.opened(t0, true);
        t.first_byte_at(Duration::from_millis(300));
        t.received(100);
        t.received(20);
        t.close_path(t0 + 2 * S);
        // Resumed over a direct connection from offset 120.
        t.opened(t0 + 2 * S, false);
        t.direct_seen(Duration::from_millis(1900));
        t.direct_seen(Duration::from_millis(2500));
        t.first_byte_at(Duration::from_millis(2100));
        t.received(80);
        t.close_path(t0 + 3 * S);
        // A second close without an open stream books nothing.
        t.close_path(t0 + 9 * S);
        let r = t.report("ev", 4 * S, 1, true, "clip.mp4".into());
        assert_eq!(r.bytes, 200);
        assert_eq!((r.relayed_bytes, r.relayed_ms), (120, 2000));
        assert_eq!((r.direct_bytes, r.direct_ms), (80, 1000));
        assert!(r.relayed, "the first stream was relayed");
        assert_eq!(r.first_byte_ms, 300, "the first byte counts");
        assert_eq!(
            r.direct_after_ms,
            Some(1900),
            "the first direct connection counts"
        );
        assert_eq!(r.total_ms, 4000);
        assert_eq!(r.resumes, 1);
        assert!(r.switched_to_direct);
        assert_eq!(r.output, "clip.mp4");
        assert_eq!(r.event_id, "ev");
        // 200 bytes from the first byte (0.3 s) to the end (4 s).
        assert!(
            (r.throughput - 200.0 / 3.7).abs() < 1e-9,
            "{}",
            r.throughput
        );
    }

    #[test]
    fn throughput_never_divides_by_zero() {
        let t0 = Instant::now();
        let mut t = Tally::default();
        t.opened(t0, false);
        t.first_byte_at(Duration::from_millis(50));
        t.received(1000);
        t.close_path(t0);
        let r = t.report("ev", Duration::from_millis(50), 0, false, String::new());
        // First byte and end at the same millisecond: counted over 1 ms.
        assert_eq!(r.throughput, 1_000_000.0);
        assert!(!r.relayed);
    }

    #[test]
    fn nothing_received_reports_the_total_as_first_byte() {
        let r = Tally::default().report("ev", 2 * S, 0, false, "-".into());
        assert_eq!(r.bytes, 0);
        assert_eq!(r.first_byte_ms, 2000);
        assert_eq!(r.throughput, 0.0);
        assert!(r.relayed, "unknown path counts as relayed");
        assert_eq!(r.direct_after_ms, None);
    }
}
