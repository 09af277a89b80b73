//! Scoring a detector's events against a scene's ground truth (`make bench-recall`, and the
//! end-to-end video tests): which appearances made an event, how soon, and which events
//! matched nothing. Pure: appearances and events in, a [`Score`] out.
//!
//! An appearance is *found* when an event of its kind was open at some time during it (from
//! its start to its end plus `slack_s`, which covers the detector's sampling); its time to
//! event is the event's opening time minus the appearance's start (0 when an event was
//! already open). An event is *false* when it overlaps no appearance of its kind.

/// What a scene shows: a kind (`person`, `car`) from `start_s` to `end_s`, at a height
/// (fraction of the frame).
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    /// `person`, `car`, ...
    pub kind: String,
    /// When it enters, seconds.
    pub start_s: f64,
    /// When it has left, seconds.
    pub end_s: f64,
    /// Its height, fraction of the frame's.
    pub height_frac: f64,
}

/// An event the edge made: its kind (`person`, or `vehicle` for any vehicle label), open
/// from `open_s` to `close_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenEvent {
    /// `person` or `vehicle`.
    pub kind: String,
    /// When it opened, seconds.
    pub open_s: f64,
    /// When its object was last seen (or the scene ended), seconds.
    pub close_s: f64,
}

/// Whether an event's kind covers an appearance's.
pub fn kind_matches(event: &str, appearance: &str) -> bool {
    event == appearance
        || (event == "vehicle"
            && matches!(
                appearance,
                "car" | "truck" | "bus" | "motorcycle" | "bicycle"
            ))
}

/// The score of one scene (or several, summed with [`Score::add`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    /// Person appearances at least `tall` of the frame high.
    pub tall: u32,
    /// Of those, found.
    pub tall_found: u32,
    /// All person appearances.
    pub people: u32,
    /// Of those, found.
    pub people_found: u32,
    /// Vehicle appearances.
    pub vehicles: u32,
    /// Of those, found.
    pub vehicles_found: u32,
    /// Time to event of each found person appearance, seconds.
    pub time_to_event_s: Vec<f64>,
    /// Events that matched no appearance of their kind.
    pub false_events: u32,
    /// Person events while nobody was in view (matching no person appearance).
    pub false_in_empty: u32,
    /// Seconds of scene with nobody in view.
    pub empty_s: f64,
}

impl Score {
    /// Adds another scene's.
    pub fn add(&mut self, o: &Score) {
        self.tall += o.tall;
        self.tall_found += o.tall_found;
        self.people += o.people;
        self.people_found += o.people_found;
        self.vehicles += o.vehicles;
        self.vehicles_found += o.vehicles_found;
        self.time_to_event_s.extend_from_slice(&o.time_to_event_s);
        self.false_events += o.false_events;
        self.false_in_empty += o.false_in_empty;
        self.empty_s += o.empty_s;
    }

    /// Found tall people / tall people (1 when there were none).
    pub fn tall_recall(&self) -> f64 {
        ratio(self.tall_found, self.tall)
    }

    /// Found people / people.
    pub fn recall(&self) -> f64 {
        ratio(self.people_found, self.people)
    }

    /// The `q` quantile (0-1) of the times to event, seconds; NaN without any.
    pub fn time_to_event(&self, q: f64) -> f64 {
        let mut v = self.time_to_event_s.clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    }

    /// False person events per hour with nobody in view.
    pub fn false_per_hour(&self) -> f64 {
        if self.empty_s <= 0.0 {
            0.0
        } else {
            self.false_in_empty as f64 * 3600.0 / self.empty_s
        }
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Scores one scene of `duration_s`: `tall` is the height that counts as plainly in view.
pub fn score(
    appearances: &[Appearance],
    events: &[SeenEvent],
    duration_s: f64,
    tall: f64,
    slack_s: f64,
) -> Score {
    let mut s = Score::default();
    for a in appearances {
        let found = events
            .iter()
            .filter(|e| kind_matches(&e.kind, &a.kind))
            .filter(|e| e.open_s <= a.end_s + slack_s && e.close_s >= a.start_s)
            .map(|e| (e.open_s - a.start_s).max(0.0))
            .reduce(f64::min);
        if a.kind == "person" {
            s.people += 1;
            let tall_one = a.height_frac >= tall;
            s.tall += u32::from(tall_one);
            if let Some(t) = found {
                s.people_found += 1;
                s.tall_found += u32::from(tall_one);
                s.time_to_event_s.push(t);
            }
        } else {
            s.vehicles += 1;
            s.vehicles_found += u32::from(found.is_some());
        }
    }
    for e in events {
        let matched = appearances.iter().any(|a| {
            kind_matches(&e.kind, &a.kind)
                && e.open_s <= a.end_s + slack_s
                && e.close_s >= a.start_s
        });
        s.false_events += u32::from(!matched);
    }
    s.false_in_empty = events
        .iter()
        .filter(|e| e.kind == "person")
        .filter(|e| {
            !appearances.iter().any(|a| {
                a.kind == "person" && e.open_s <= a.end_s + slack_s && e.close_s >= a.start_s
            })
        })
        .count() as u32;
    s.empty_s = duration_s - covered(appearances.iter().filter(|a| a.kind == "person"));
    s
}

/// The seconds covered by the appearances (overlaps counted once).
fn covered<'a>(apps: impl Iterator<Item = &'a Appearance>) -> f64 {
    let mut spans: Vec<(f64, f64)> = apps.map(|a| (a.start_s, a.end_s)).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut cur: Option<(f64, f64)> = None;
    for (a, b) in spans {
        cur = match cur {
            Some((x, y)) if a <= y => Some((x, y.max(b))),
            Some((x, y)) => {
                total += y - x;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    total + cur.map_or(0.0, |(x, y)| y - x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(kind: &str, start: f64, end: f64, h: f64) -> Appearance {
        Appearance {
            kind: kind.into(),
            start_s: start,
            end_s: end,
            height_frac: h,
        }
    }

    fn e(kind: &str, open: f64, close: f64) -> SeenEvent {
        SeenEvent {
            kind: kind.into(),
            open_s: open,
            close_s: close,
        }
    }

    #[test]
    fn found_missed_and_false() {
        let apps = [
            a("person", 5.0, 9.0, 0.5),
            a("person", 20.0, 24.0, 0.15),
            a("person", 40.0, 44.0, 0.4),
            a("car", 50.0, 54.0, 0.3),
        ];
        let events = [
            e("person", 5.6, 9.0),   // the first, 0.6 s late
            e("person", 30.0, 31.0), // nobody there: false
            e("vehicle", 51.0, 54.0),
        ];
        let s = score(&apps, &events, 60.0, 0.25, 1.0);
        assert_eq!((s.tall, s.tall_found), (2, 1), "the 40 s walk was missed");
        assert_eq!((s.people, s.people_found), (3, 1));
        assert_eq!((s.vehicles, s.vehicles_found), (1, 1));
        assert!((s.time_to_event(0.5) - 0.6).abs() < 1e-9);
        assert_eq!(s.false_events, 1);
        assert_eq!(s.false_in_empty, 1, "nobody was there at 30 s");
        assert_eq!(s.empty_s, 60.0 - 12.0);
        assert_eq!(s.tall_recall(), 0.5);
        let overlapping = [a("person", 0.0, 10.0, 0.5), a("person", 5.0, 12.0, 0.5)];
        assert_eq!(score(&overlapping, &[], 20.0, 0.25, 1.0).empty_s, 8.0);
    }

    #[test]
    fn a_person_event_in_an_empty_scene_counts_per_hour_and_a_car_is_not_a_person() {
        let apps = [a("car", 10.0, 14.0, 0.3)];
        let s = score(&apps, &[e("person", 11.0, 14.0)], 60.0, 0.25, 1.0);
        assert_eq!(s.false_events, 1);
        assert_eq!(s.false_in_empty, 1);
        assert_eq!(s.vehicles_found, 0);
        let mut all = Score::default();
        all.add(&s);
        all.add(&score(&[], &[], 3540.0, 0.25, 1.0));
        assert_eq!(all.false_per_hour(), 1.0);
        assert_eq!(all.recall(), 1.0, "no people: nothing to miss");
        assert!(all.time_to_event(0.5).is_nan());
    }

    #[test]
    fn an_event_already_open_finds_the_appearance_at_once() {
        let apps = [a("person", 10.0, 14.0, 0.5)];
        let s = score(&apps, &[e("person", 2.0, 12.0)], 20.0, 0.25, 1.0);
        assert_eq!(s.time_to_event_s, vec![0.0]);
    }
}
