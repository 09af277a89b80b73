//! Tracking across frames, so one object is one event, and scoring like a tracker rather
//! than a frame: detections are matched to tracks greedily by IoU (same class, best overlap
//! first); when the detector could only look at a camera now and then (a busy detector shared
//! by many cameras), a detection whose centre is within one box size of a track's still
//! continues it, after every overlapping match.
//!
//! A track's score is the median of its last [`SCORE_HISTORY`] hits, padded with zeros to
//! three (as Frigate does), so one good frame is not enough and one poor frame does not
//! lose a person; a track whose score reaches its class's threshold is *confirmed* for the
//! rest of its life. A track ends when the detector looked where it was at least
//! `max_misses` times without finding it and it has not been seen for `max_gap_ns`, or when
//! it has not been seen for `max_idle_ns` at all; so a person standing still, seen only by the
//! whole-frame looks every few seconds, stays one track. A track that has not moved for a
//! while is *stationary* (a parked car) and stops keeping an event open; it becomes active
//! again when it moves.

use std::collections::VecDeque;

use super::boxes::{BBox, Detection};

/// Scores kept per track for its median.
pub const SCORE_HISTORY: usize = 10;

/// Tuning.
#[derive(Debug, Clone, Copy)]
pub struct TrackerParams {
    /// Minimum IoU to continue a track.
    pub match_iou: f32,
    /// A track missed by `max_misses` looks ends once it is unseen this long, ns.
    pub max_gap_ns: u64,
    /// Looks that covered a track and did not find it before it may end.
    pub max_misses: u32,
    /// A track unseen this long ends whatever the looks, ns.
    pub max_idle_ns: u64,
    /// IoU with the position the track had when it last moved above which it has not moved.
    pub still_iou: f32,
    /// Not moving for this long makes a track stationary, ns.
    pub stationary_after_ns: u64,
}

impl Default for TrackerParams {
    fn default() -> Self {
        TrackerParams {
            match_iou: 0.3,
            max_gap_ns: 3_000_000_000,
            max_misses: 2,
            max_idle_ns: 60_000_000_000,
            still_iou: 0.8,
            stationary_after_ns: 30_000_000_000,
        }
    }
}

/// A detection with its track.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// The track's id (unique per tracker).
    pub track_id: u64,
    /// The detection.
    pub det: Detection,
    /// Frames in which the track was seen.
    pub hits: u32,
    /// The track's score: the median of its recent hits (see the module's doc).
    pub score: f32,
    /// Its score has reached its class's threshold (and stays confirmed).
    pub confirmed: bool,
    /// When the track was first seen, ns.
    pub first_seen_ns: u64,
    /// Not moved for `stationary_after_ns`.
    pub stationary: bool,
}

#[derive(Debug)]
struct Track {
    id: u64,
    class: usize,
    bbox: BBox,
    hits: u32,
    scores: VecDeque<f32>,
    confirmed: bool,
    misses: u32,
    first_seen_ns: u64,
    last_seen_ns: u64,
    anchor: BBox,
    anchor_ns: u64,
}

/// The median of `scores` padded with zeros to three.
pub fn track_score(scores: impl IntoIterator<Item = f32>) -> f32 {
    let mut v: Vec<f32> = scores.into_iter().collect();
    while v.len() < 3 {
        v.push(0.0);
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The tracker of one camera.
#[derive(Debug, Default)]
pub struct Tracker {
    p: TrackerParams,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    /// A tracker.
    pub fn new(p: TrackerParams) -> Self {
        Tracker {
            p,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Whether any track is alive and not stationary.
    pub fn has_active(&self) -> bool {
        self.tracks
            .iter()
            .any(|t| t.last_seen_ns.saturating_sub(t.anchor_ns) < self.p.stationary_after_ns)
    }

    /// The boxes of the live tracks that are not stationary (where to look next).
    pub fn active_boxes(&self) -> Vec<BBox> {
        self.tracks
            .iter()
            .filter(|t| t.last_seen_ns.saturating_sub(t.anchor_ns) < self.p.stationary_after_ns)
            .map(|t| t.bbox)
            .collect()
    }

    /// Whether any track is alive (stationary or not).
    pub fn has_tracks(&self) -> bool {
        !self.tracks.is_empty()
    }

    /// Ends the tracks nobody has seen for `max_idle_ns` (call on frames nobody looked at).
    pub fn expire(&mut self, t_ns: u64) {
        let idle = self.p.max_idle_ns;
        self.tracks
            .retain(|t| t_ns.saturating_sub(t.last_seen_ns) <= idle);
    }

    /// Matches the detections of one look at `t_ns`: the detector looked at `looked`
    /// (fractions of the frame; `None` for the whole frame) and found `dets`. `threshold`
    /// gives a class's confirmation threshold.
    pub fn update(
        &mut self,
        t_ns: u64,
        looked: Option<BBox>,
        dets: Vec<Detection>,
        threshold: impl Fn(usize) -> f32,
    ) -> Vec<Tracked> {
        self.expire(t_ns);
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in dets.iter().enumerate() {
                if t.class != d.class {
                    continue;
                }
                let iou = t.bbox.iou(&d.bbox);
                if iou >= self.p.match_iou {
                    pairs.push((iou, ti, di));
                } else {
                    // Near enough for a fast object seen rarely: ranks below any overlap.
                    let (a, b) = (t.bbox.centre(), d.bbox.centre());
                    let dist = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
                    let size = (t.bbox.x1 - t.bbox.x0).max(t.bbox.y1 - t.bbox.y0);
                    if size > 0.0 && dist < size {
                        pairs.push((-dist, ti, di));
                    }
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of = vec![None; dets.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if !taken[ti] && track_of[di].is_none() {
                taken[ti] = true;
                track_of[di] = Some(ti);
            }
        }
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            let (cx, cy) = t.bbox.centre();
            let covered =
                looked.is_none_or(|r| r.x0 <= cx && cx <= r.x1 && r.y0 <= cy && cy <= r.y1);
            if !taken[ti] && covered {
                t.misses += 1;
            }
        }
        let (gap, misses) = (self.p.max_gap_ns, self.p.max_misses);
        let ended: Vec<bool> = self
            .tracks
            .iter()
            .enumerate()
            .map(|(ti, t)| {
                !taken[ti] && t.misses >= misses && t_ns.saturating_sub(t.last_seen_ns) > gap
            })
            .collect();
        // Indices shift as ended tracks go: remap the matches first.
        let mut new_index = Vec::with_capacity(ended.len());
        let mut kept = 0;
        for &e in &ended {
            new_index.push(if e { None } else { Some(kept) });
            kept += usize::from(!e);
        }
        let mut i = 0;
        self.tracks.retain(|_| {
            i += 1;
            !ended[i - 1]
        });
        let track_of: Vec<Option<usize>> = track_of
            .into_iter()
            .map(|t| t.and_then(|ti| new_index[ti]))
            .collect();
        let mut out = Vec::with_capacity(dets.len());
        for (di, det) in dets.into_iter().enumerate() {
            let ti = match track_of[di] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    t.bbox = det.bbox;
                    t.hits += 1;
                    t.misses = 0;
                    t.last_seen_ns = t_ns;
                    if t.scores.len() == SCORE_HISTORY {
                        t.scores.pop_front();
                    }
                    t.scores.push_back(det.score);
                    if t.anchor.iou(&det.bbox) < self.p.still_iou {
                        t.anchor = det.bbox;
                        t.anchor_ns = t_ns;
                    }
                    ti
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        class: det.class,
                        bbox: det.bbox,
                        hits: 1,
                        scores: VecDeque::from([det.score]),
                        confirmed: false,
                        misses: 0,
                        first_seen_ns: t_ns,
                        last_seen_ns: t_ns,
                        anchor: det.bbox,
                        anchor_ns: t_ns,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let t = &mut self.tracks[ti];
            let score = track_score(t.scores.iter().copied());
            if score >= threshold(t.class) {
                t.confirmed = true;
            }
            out.push(Tracked {
                track_id: t.id,
                hits: t.hits,
                score,
                confirmed: t.confirmed,
                first_seen_ns: t.first_seen_ns,
                stationary: t_ns.saturating_sub(t.anchor_ns) >= self.p.stationary_after_ns,
                det,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn person(x: f32) -> Detection {
        Detection {
            class: 0,
            score: 0.8,
            bbox: BBox {
                x0: x,
                y0: 0.2,
                x1: x + 0.1,
                y1: 0.6,
            },
        }
    }

    #[test]
    fn a_walking_person_is_one_track() {
        let mut t = Tracker::new(TrackerParams::default());
        let mut ids = std::collections::HashSet::new();
        for i in 0..20 {
            let out = t.update(i * S / 5, None, vec![person(0.1 + i as f32 * 0.01)], |_| {
                0.5
            });
            ids.insert(out[0].track_id);
            assert_eq!(out[0].hits, i as u32 + 1);
            assert!(!out[0].stationary);
        }
        assert_eq!(ids.len(), 1);
    }

    #[test]
    fn a_fast_person_seen_rarely_is_still_one_track() {
        let mut t = Tracker::new(TrackerParams::default());
        // Moves its own width (0.1) between sightings 0.7 s apart: no overlap at all.
        let a = t.update(0, None, vec![person(0.1)], |_| 0.5);
        let b = t.update(7 * S / 10, None, vec![person(0.21)], |_| 0.5);
        assert_eq!(a[0].track_id, b[0].track_id);
        assert_eq!(b[0].hits, 2);
        // Far away: someone else.
        let c = t.update(14 * S / 10, None, vec![person(0.8)], |_| 0.5);
        assert_ne!(c[0].track_id, a[0].track_id);
    }

    #[test]
    fn two_people_far_apart_are_two_tracks_and_a_gap_ends_a_track() {
        let mut t = Tracker::new(TrackerParams::default());
        let a = t.update(0, None, vec![person(0.1), person(0.7)], |_| 0.5);
        assert_ne!(a[0].track_id, a[1].track_id);
        let b = t.update(S / 5, None, vec![person(0.7), person(0.11)], |_| 0.5);
        assert_eq!(b[0].track_id, a[1].track_id);
        assert_eq!(b[1].track_id, a[0].track_id);
        // Looked for and not found for more than the gap: the track ends.
        for s in 1..=4 {
            assert!(t.update(s * S, None, vec![], |_| 0.5).is_empty());
        }
        let c = t.update(5 * S, None, vec![person(0.11)], |_| 0.5);
        assert_ne!(
            c[0].track_id, a[0].track_id,
            "after a long gap, a new track"
        );
    }

    #[test]
    fn a_parked_car_becomes_stationary_and_active_again_when_it_moves() {
        let mut t = Tracker::new(TrackerParams::default());
        let car = |x: f32| Detection {
            class: 2,
            score: 0.7,
            bbox: BBox {
                x0: x,
                y0: 0.5,
                x1: x + 0.3,
                y1: 0.8,
            },
        };
        let mut last = None;
        for i in 0..=200u64 {
            last = Some(t.update(i * S / 5, None, vec![car(0.3)], |_| 0.5).remove(0));
        }
        assert!(last.unwrap().stationary, "40 s without moving");
        assert!(!t.has_active());
        let moved = t
            .update(201 * S / 5, None, vec![car(0.42)], |_| 0.5)
            .remove(0);
        assert!(!moved.stationary);
        assert!(t.has_active());
    }

    fn scored(x: f32, score: f32) -> Detection {
        Detection { score, ..person(x) }
    }

    #[test]
    fn the_track_score_is_a_median_padded_to_three() {
        assert_eq!(track_score([0.9]), 0.0);
        assert_eq!(track_score([0.9, 0.6]), 0.6);
        assert_eq!(track_score([0.9, 0.6, 0.3]), 0.6);
        assert_eq!(track_score([0.9, 0.6, 0.3, 0.4]), 0.5);
    }

    #[test]
    fn a_track_is_confirmed_when_its_median_holds_and_stays_so() {
        let mut t = Tracker::new(TrackerParams::default());
        // One strong frame among weak ones is not enough...
        let scores = [0.9, 0.4, 0.4, 0.45];
        for (i, s) in scores.iter().enumerate() {
            let out = t.update(i as u64 * S / 5, None, vec![scored(0.1, *s)], |_| 0.6);
            assert!(!out[0].confirmed, "frame {i}: {out:?}");
        }
        // ...a run of good ones is, and a poor frame afterwards does not undo it.
        let mut confirmed_at = None;
        for i in 4..12u64 {
            let out = t.update(i * S / 5, None, vec![scored(0.1, 0.7)], |_| 0.6);
            if out[0].confirmed && confirmed_at.is_none() {
                confirmed_at = Some(i);
            }
        }
        assert_eq!(
            confirmed_at,
            Some(6),
            "median of 0.9 .4 .4 .45 .7 .7 .7 is 0.7 at frame 6"
        );
        let out = t.update(12 * S / 5, None, vec![scored(0.1, 0.36)], |_| 0.6);
        assert!(out[0].confirmed);
        // Per-class thresholds: a car needs more.
        let mut t = Tracker::new(TrackerParams::default());
        let car = |s| Detection {
            class: 2,
            ..scored(0.5, s)
        };
        for i in 0..5u64 {
            let out = t.update(i * S / 5, None, vec![car(0.7)], |c| {
                if c == 2 { 0.8 } else { 0.5 }
            });
            assert!(!out[0].confirmed);
        }
    }

    #[test]
    fn a_person_standing_still_seen_every_few_seconds_stays_one_track() {
        let mut t = Tracker::new(TrackerParams::default());
        let first = t.update(0, None, vec![person(0.4)], |_| 0.5)[0].track_id;
        for k in 1..=12u64 {
            // Nobody looked between the whole-frame looks 5 s apart.
            t.expire(k * 5 * S - S);
            let out = t.update(k * 5 * S, None, vec![person(0.4)], |_| 0.5);
            assert_eq!(out[0].track_id, first, "look {k}");
        }
        // Looks elsewhere (motion on the other side) do not count as misses.
        let elsewhere = BBox {
            x0: 0.7,
            y0: 0.0,
            x1: 1.0,
            y1: 1.0,
        };
        for k in 0..10u64 {
            t.update(61 * S + k * S, Some(elsewhere), vec![], |_| 0.5);
        }
        let out = t.update(72 * S, None, vec![person(0.4)], |_| 0.5);
        assert_eq!(out[0].track_id, first);
        // Nobody looks for a minute: it ends.
        t.expire(133 * S);
        assert!(!t.has_tracks());
    }
}
