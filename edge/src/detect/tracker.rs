//! Tracking across frames, so one object is one event: detections are matched to tracks
//! greedily by IoU (same class, best overlap first); when the detector could only look at a
//! camera now and then (a busy detector shared by many cameras), a detection whose centre is
//! within one box size of a track's still continues it, after every overlapping match. A track that has not moved for a while
//! is *stationary* (a parked car) and stops keeping an event open; it becomes active again
//! when it moves.

use super::boxes::{BBox, Detection};

/// Tuning.
#[derive(Debug, Clone, Copy)]
pub struct TrackerParams {
    /// Minimum IoU to continue a track.
    pub match_iou: f32,
    /// A track not seen for this long ends, ns.
    pub max_gap_ns: u64,
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
    first_seen_ns: u64,
    last_seen_ns: u64,
    anchor: BBox,
    anchor_ns: u64,
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

    /// Matches one frame's detections at `t_ns`.
    pub fn update(&mut self, t_ns: u64, dets: Vec<Detection>) -> Vec<Tracked> {
        self.tracks
            .retain(|t| t_ns.saturating_sub(t.last_seen_ns) <= self.p.max_gap_ns);
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
        let mut out = Vec::with_capacity(dets.len());
        for (di, det) in dets.into_iter().enumerate() {
            let ti = match track_of[di] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    t.bbox = det.bbox;
                    t.hits += 1;
                    t.last_seen_ns = t_ns;
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
                        first_seen_ns: t_ns,
                        last_seen_ns: t_ns,
                        anchor: det.bbox,
                        anchor_ns: t_ns,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let t = &self.tracks[ti];
            out.push(Tracked {
                track_id: t.id,
                hits: t.hits,
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
            let out = t.update(i * S / 5, vec![person(0.1 + i as f32 * 0.01)]);
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
        let a = t.update(0, vec![person(0.1)]);
        let b = t.update(7 * S / 10, vec![person(0.21)]);
        assert_eq!(a[0].track_id, b[0].track_id);
        assert_eq!(b[0].hits, 2);
        // Far away: someone else.
        let c = t.update(14 * S / 10, vec![person(0.8)]);
        assert_ne!(c[0].track_id, a[0].track_id);
    }

    #[test]
    fn two_people_far_apart_are_two_tracks_and_a_gap_ends_a_track() {
        let mut t = Tracker::new(TrackerParams::default());
        let a = t.update(0, vec![person(0.1), person(0.7)]);
        assert_ne!(a[0].track_id, a[1].track_id);
        let b = t.update(S / 5, vec![person(0.7), person(0.11)]);
        assert_eq!(b[0].track_id, a[1].track_id);
        assert_eq!(b[1].track_id, a[0].track_id);
        let c = t.update(10 * S, vec![person(0.11)]);
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
            last = Some(t.update(i * S / 5, vec![car(0.3)]).remove(0));
        }
        assert!(last.unwrap().stationary, "40 s without moving");
        assert!(!t.has_active());
        let moved = t.update(201 * S / 5, vec![car(0.42)]).remove(0);
        assert!(!moved.stationary);
        assert!(t.has_active());
    }
}
