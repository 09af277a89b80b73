//! The pre-roll ring: the camera's recent encoded video as whole GOPs, so a clip can start
//! on a keyframe some seconds before the detection that opened it.
//!
//! Frames get increasing sequence numbers. A clip being written holds a *pin* on the first
//! sequence number it has not written yet; the ring never drops a pinned frame unless its
//! byte budget is exceeded (then the pin's owner learns it lost frames and ends its clip).
//! Without pins the ring keeps the GOPs that cover `keep` of time: it drops the oldest GOP
//! while the next GOP still starts at least `keep` before the newest frame.

use std::collections::VecDeque;
use std::sync::Arc;

/// One encoded access unit (an H.264 frame in AVC form).
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// Presentation time, ns (stream time).
    pub pts_ns: u64,
    /// Decode time, ns; equals `pts_ns` for streams without B-frames.
    pub dts_ns: u64,
    /// Duration, ns (0 when unknown).
    pub duration_ns: u64,
    /// A keyframe (starts a GOP).
    pub keyframe: bool,
    /// The bytes.
    pub data: Arc<[u8]>,
}

/// The ring.
#[derive(Debug)]
pub struct GopRing {
    frames: VecDeque<(u64, EncodedFrame)>,
    next_seq: u64,
    bytes: usize,
    keep_ns: u64,
    max_bytes: usize,
    pins: Vec<u64>,
}

impl GopRing {
    /// A ring keeping at least `keep_ns` of video, at most `max_bytes` of it.
    pub fn new(keep_ns: u64, max_bytes: usize) -> Self {
        GopRing {
            frames: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            keep_ns,
            max_bytes,
            pins: Vec::new(),
        }
    }

    /// Changes how much time the ring keeps (a new pre-roll).
    pub fn set_keep(&mut self, keep_ns: u64) {
        self.keep_ns = keep_ns;
    }

    /// Appends a frame and drops what is no longer needed. Frames before the first keyframe
    /// are dropped: a clip can only start on one.
    pub fn push(&mut self, frame: EncodedFrame) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.frames.is_empty() && !frame.keyframe {
            return seq;
        }
        self.bytes += frame.data.len();
        self.frames.push_back((seq, frame));
        self.trim();
        seq
    }

    fn trim(&mut self) {
        let Some(newest) = self.frames.back().map(|(_, f)| f.pts_ns) else {
            return;
        };
        let min_pin = self.pins.iter().copied().min();
        // The second GOP's start: dropping the first is allowed when it still covers keep.
        while let Some(next_gop) = self.frames.iter().skip(1).position(|(_, f)| f.keyframe) {
            let next_gop = next_gop + 1;
            let (next_seq, next_start) = {
                let (s, f) = &self.frames[next_gop];
                (*s, f.pts_ns)
            };
            let time_ok = newest.saturating_sub(next_start) >= self.keep_ns;
            let pin_ok = min_pin.is_none_or(|p| p >= next_seq);
            let over_budget = self.bytes > self.max_bytes;
            if !((time_ok && pin_ok) || over_budget) {
                break;
            }
            for _ in 0..next_gop {
                let (_, f) = self.frames.pop_front().expect("counted");
                self.bytes -= f.data.len();
            }
        }
    }

    /// The sequence number of the first frame of the GOP that starts at or before `pts_ns`
    /// (the oldest GOP when none does), or `None` when the ring is empty.
    pub fn gop_start_before(&self, pts_ns: u64) -> Option<u64> {
        let mut best = None;
        for (s, f) in &self.frames {
            if !f.keyframe {
                continue;
            }
            if best.is_none() || f.pts_ns <= pts_ns {
                best = Some(*s);
            }
            if f.pts_ns > pts_ns {
                break;
            }
        }
        best
    }

    /// Frames from sequence number `from` (inclusive) whose pts is at most `until_pts_ns`, in
    /// order. The first element of the answer is the sequence number to ask from next time.
    /// `Err(first_kept)` when frames from `from` on were already dropped.
    pub fn read(&self, from: u64, until_pts_ns: u64) -> Result<(u64, Vec<EncodedFrame>), u64> {
        let first = self
            .frames
            .front()
            .map(|(s, _)| *s)
            .unwrap_or(self.next_seq);
        if from < first {
            return Err(first);
        }
        let mut out = Vec::new();
        let mut next = from;
        for (s, f) in self.frames.iter().skip((from - first) as usize) {
            if f.pts_ns > until_pts_ns {
                break;
            }
            out.push(f.clone());
            next = s + 1;
        }
        Ok((next, out))
    }

    /// Keeps frames from `seq` on until [`GopRing::unpin`].
    pub fn pin(&mut self, seq: u64) {
        self.pins.push(seq);
    }

    /// Moves a pin forward (after writing up to `to`).
    pub fn move_pin(&mut self, from: u64, to: u64) {
        if let Some(p) = self.pins.iter_mut().find(|p| **p == from) {
            *p = to;
        }
        self.trim();
    }

    /// Releases a pin.
    pub fn unpin(&mut self, seq: u64) {
        if let Some(i) = self.pins.iter().position(|p| *p == seq) {
            self.pins.swap_remove(i);
        }
        self.trim();
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The pts of the oldest and newest frames held.
    pub fn span(&self) -> Option<(u64, u64)> {
        Some((self.frames.front()?.1.pts_ns, self.frames.back()?.1.pts_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// 10 fps, a keyframe every `gop` frames, 100 bytes each.
    fn feed(ring: &mut GopRing, frames: std::ops::Range<u64>, gop: u64) {
        for i in frames {
            ring.push(EncodedFrame {
                pts_ns: i * S / 10,
                dts_ns: i * S / 10,
                duration_ns: S / 10,
                keyframe: i % gop == 0,
                data: vec![0u8; 100].into(),
            });
        }
    }

    #[test]
    fn keeps_whole_gops_covering_the_pre_roll() {
        let mut ring = GopRing::new(5 * S, usize::MAX);
        feed(&mut ring, 0..200, 20); // 20 s, GOP 2 s
        let (first, last) = ring.span().unwrap();
        assert_eq!(last, 199 * S / 10);
        // The first kept GOP starts at or before now - 5 s, the second one after it.
        assert!(last - first >= 5 * S, "{first} {last}");
        assert!(last - first < 7 * S + S / 10, "{first} {last}");
        assert_eq!(first % (2 * S), 0, "starts on a keyframe");
    }

    #[test]
    fn drops_leading_delta_frames() {
        let mut ring = GopRing::new(S, usize::MAX);
        feed(&mut ring, 5..30, 10);
        assert_eq!(
            ring.span().unwrap().0,
            S,
            "starts at the first keyframe (frame 10)"
        );
    }

    #[test]
    fn gop_start_before_finds_the_keyframe_at_or_before() {
        let mut ring = GopRing::new(10 * S, usize::MAX);
        feed(&mut ring, 0..100, 20);
        assert_eq!(ring.gop_start_before(5 * S), Some(40)); // keyframe at 4 s is frame 40
        assert_eq!(ring.gop_start_before(4 * S), Some(40));
        assert_eq!(ring.gop_start_before(0), Some(0));
    }

    #[test]
    fn a_pin_holds_frames_until_released() {
        let mut ring = GopRing::new(S, usize::MAX);
        feed(&mut ring, 0..20, 10);
        let start = ring.gop_start_before(0).unwrap();
        ring.pin(start);
        feed(&mut ring, 20..200, 10);
        let (next, frames) = ring.read(start, 50 * S / 10).unwrap();
        assert_eq!(frames.len(), 51);
        assert_eq!(next, 51);
        ring.move_pin(start, next);
        let (next2, frames) = ring.read(next, u64::MAX).unwrap();
        assert_eq!(frames.len(), 149);
        assert_eq!(next2, 200);
        ring.unpin(next);
        assert!(
            ring.span().unwrap().0 >= 180 * S / 10,
            "trimmed after unpin"
        );
    }

    #[test]
    fn the_byte_budget_beats_a_pin() {
        let mut ring = GopRing::new(S, 5_000);
        feed(&mut ring, 0..10, 10);
        ring.pin(0);
        feed(&mut ring, 10..200, 10);
        assert!(ring.bytes() <= 5_000 + 1_000);
        assert!(
            ring.read(0, u64::MAX).is_err(),
            "the pinned frames were dropped"
        );
    }
}
