//! When an event opens and closes, from the qualifying detections of each processed frame
//! (the caller has applied categories, minimum score, zones, masks and dropped stationary
//! tracks). Pure: times are stream times in ns, so tests drive it frame by frame.
//!
//! An event opens on a confirmed track (its median score reached its class's threshold, see
//! [`crate::detect::tracker`]); it lasts while confirmed objects are seen and closes
//! `post_roll` after the last one. Its clip covers `[first seen − pre_roll,
//! last seen + post_roll]`. An event longer than `max_len` closes and, if objects are still
//! there, the next frame opens a new one, so no clip grows without bound.

use crate::detect::tracker::Tracked;

/// Timing.
#[derive(Debug, Clone, Copy)]
pub struct EventParams {
    /// Recorded before the first detection, ns.
    pub pre_roll_ns: u64,
    /// Recorded after the last detection, ns.
    pub post_roll_ns: u64,
    /// Longest event, ns.
    pub max_len_ns: u64,
}

/// What changed.
#[derive(Debug, Clone, PartialEq)]
pub enum EventSignal {
    /// An event opened: its clip starts at `clip_from_ns`.
    Open {
        /// When the object was first seen.
        first_seen_ns: u64,
        /// `first_seen − pre_roll`.
        clip_from_ns: u64,
    },
    /// The event closed: its clip ends at `clip_until_ns`.
    Close {
        /// When an object was last seen.
        last_seen_ns: u64,
        /// `last_seen + post_roll`.
        clip_until_ns: u64,
    },
}

/// The state of one camera's events.
#[derive(Debug)]
pub struct EventMachine {
    p: EventParams,
    open: Option<Open>,
    /// Where the previous event's objects were last seen: a following event starts no
    /// earlier, so clips of a split event do not overlap by more than the rolls.
    floor_ns: u64,
}

#[derive(Debug)]
struct Open {
    first_seen_ns: u64,
    last_seen_ns: u64,
}

impl EventMachine {
    /// No event open.
    pub fn new(p: EventParams) -> Self {
        EventMachine {
            p,
            open: None,
            floor_ns: 0,
        }
    }

    /// Whether an event is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// One processed frame at `t_ns` with its qualifying detections.
    pub fn on_frame(&mut self, t_ns: u64, qualifying: &[Tracked]) -> Option<EventSignal> {
        let seen = qualifying.iter().any(|q| q.confirmed);
        match &mut self.open {
            None if seen => {
                let first = qualifying
                    .iter()
                    .filter(|q| q.confirmed)
                    .map(|q| q.first_seen_ns)
                    .min()
                    .unwrap_or(t_ns)
                    .max(self.floor_ns);
                self.open = Some(Open {
                    first_seen_ns: first,
                    last_seen_ns: t_ns,
                });
                Some(EventSignal::Open {
                    first_seen_ns: first,
                    clip_from_ns: first.saturating_sub(self.p.pre_roll_ns),
                })
            }
            None => None,
            Some(o) => {
                if seen {
                    o.last_seen_ns = t_ns;
                }
                let quiet = t_ns.saturating_sub(o.last_seen_ns) >= self.p.post_roll_ns;
                let too_long = t_ns.saturating_sub(o.first_seen_ns) >= self.p.max_len_ns;
                if quiet || too_long {
                    self.close()
                } else {
                    None
                }
            }
        }
    }

    /// Closes the open event now (the stream ended or the camera is stopping).
    pub fn close(&mut self) -> Option<EventSignal> {
        let o = self.open.take()?;
        self.floor_ns = o.last_seen_ns;
        Some(EventSignal::Close {
            last_seen_ns: o.last_seen_ns,
            clip_until_ns: o.last_seen_ns + self.p.post_roll_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::boxes::{BBox, Detection};

    const S: u64 = 1_000_000_000;

    fn p() -> EventParams {
        EventParams {
            pre_roll_ns: 5 * S,
            post_roll_ns: 5 * S,
            max_len_ns: 600 * S,
        }
    }

    fn seen(hits: u32, first: u64) -> Tracked {
        Tracked {
            track_id: 1,
            det: Detection {
                class: 0,
                score: 0.8,
                bbox: BBox {
                    x0: 0.1,
                    y0: 0.1,
                    x1: 0.2,
                    y1: 0.5,
                },
            },
            hits,
            score: 0.8,
            confirmed: hits >= 2,
            first_seen_ns: first,
            stationary: false,
        }
    }

    /// A person seen from 10 s to 14 s at 5 fps: one event, clip 5 s to 19 s.
    #[test]
    fn one_appearance_is_one_event_with_pre_and_post_roll() {
        let mut m = EventMachine::new(p());
        let mut signals = Vec::new();
        for i in 0..150u64 {
            let t = i * S / 5;
            let q = if (10 * S..=14 * S).contains(&t) {
                vec![seen((t - 10 * S) as u32 / (S as u32 / 5) + 1, 10 * S)]
            } else {
                vec![]
            };
            signals.extend(m.on_frame(t, &q));
        }
        assert_eq!(
            signals,
            vec![
                EventSignal::Open {
                    first_seen_ns: 10 * S,
                    clip_from_ns: 5 * S
                },
                EventSignal::Close {
                    last_seen_ns: 14 * S,
                    clip_until_ns: 19 * S
                },
            ]
        );
    }

    #[test]
    fn a_single_frame_glimpse_opens_nothing() {
        let mut m = EventMachine::new(p());
        assert_eq!(m.on_frame(0, &[seen(1, 0)]), None);
        assert_eq!(m.on_frame(S, &[]), None);
        assert!(!m.is_open());
    }

    #[test]
    fn a_short_gap_keeps_the_event_open_and_max_len_splits() {
        let mut m = EventMachine::new(EventParams {
            max_len_ns: 20 * S,
            ..p()
        });
        assert!(matches!(
            m.on_frame(0, &[seen(2, 0)]),
            Some(EventSignal::Open { .. })
        ));
        assert_eq!(m.on_frame(3 * S, &[]), None, "3 s gap < 5 s post-roll");
        assert_eq!(m.on_frame(4 * S, &[seen(3, 0)]), None);
        assert!(matches!(
            m.on_frame(20 * S, &[seen(4, 0)]),
            Some(EventSignal::Close { .. })
        ));
        assert_eq!(
            m.on_frame(20 * S + 1, &[seen(5, 0)]),
            Some(EventSignal::Open {
                first_seen_ns: 20 * S,
                clip_from_ns: 15 * S
            })
        );
    }

    #[test]
    fn the_post_roll_closes_exactly_when_it_has_passed() {
        let mut m = EventMachine::new(p());
        assert!(m.on_frame(S, &[seen(2, S)]).is_some());
        assert_eq!(m.on_frame(2 * S, &[seen(3, S)]), None);
        assert_eq!(
            m.on_frame(7 * S - 1, &[]),
            None,
            "1 ns short of the post-roll"
        );
        assert_eq!(
            m.on_frame(7 * S, &[]),
            Some(EventSignal::Close {
                last_seen_ns: 2 * S,
                clip_until_ns: 7 * S
            })
        );
        assert!(!m.is_open());
    }

    #[test]
    fn closing_on_stop_ends_the_clip_a_post_roll_after_the_last_sighting() {
        let mut m = EventMachine::new(p());
        assert_eq!(m.close(), None, "nothing open");
        m.on_frame(10 * S, &[seen(2, 9 * S)]);
        m.on_frame(11 * S, &[seen(3, 9 * S)]);
        assert_eq!(
            m.close(),
            Some(EventSignal::Close {
                last_seen_ns: 11 * S,
                clip_until_ns: 16 * S
            })
        );
        assert_eq!(m.close(), None, "closed once");
        // The same track seen again opens an event that starts where the last one ended.
        assert_eq!(
            m.on_frame(12 * S, &[seen(4, 9 * S)]),
            Some(EventSignal::Open {
                first_seen_ns: 11 * S,
                clip_from_ns: 6 * S
            })
        );
    }
}
