//! Alert rules and the mode, pure: which events a rule applies to ([`applies`]), whether it
//! fires now ([`decide`]: the edge's second look, once per event, the cooldown per camera and
//! rule), and the rules every tenant starts with ([`default_rules`]).
//!
//! A rule names cameras (none: all), categories (`person`, `vehicle` for the detector's
//! vehicle labels, or a label), a minimum score, named zones (none: anywhere), a schedule in
//! the tenant's time zone (days `mon`..`sun`, hours `"22-06"`), the modes it is armed in
//! (`home`, `away`, `off`), a cooldown and a severity.

use protocols::messages::Category;
use protocols::messages::config::parse_hours;
use protocols::messages::events::{EventRecord, Verdict};
use serde::{Deserialize, Serialize};

/// The household's arming mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Someone is at home: rules armed `home` apply (such as the outdoor cameras).
    Home,
    /// Nobody is at home: rules armed `away` apply (every rule by default).
    Away,
    /// Disarmed: no rule applies unless it names `off`.
    Off,
}

impl Mode {
    /// `home`, `away` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Home => "home",
            Mode::Away => "away",
            Mode::Off => "off",
        }
    }

    /// Parses `home`, `away` or `off`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "home" => Some(Mode::Home),
            "away" => Some(Mode::Away),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// How urgent an alert is (ntfy's priority, the e-mail's subject).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Someone should look.
    #[default]
    Warning,
    /// Look now.
    Critical,
}

impl Severity {
    /// `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rule {
    /// Its name (1-48 of a-z, 0-9, -), unique.
    pub name: String,
    /// Cameras it watches; empty for every camera.
    pub cameras: Vec<String>,
    /// `person`, `vehicle` (car, truck, bus, motorcycle, bicycle) or a detector label.
    pub categories: Vec<String>,
    /// The event's best score must reach this, 0-1.
    pub min_score: f32,
    /// Named zones the object must have been in (any of them); empty for anywhere.
    pub zones: Vec<String>,
    /// Days it applies (`mon` .. `sun`); empty for every day.
    pub days: Vec<String>,
    /// Hours it applies (`"22-06"`, the tenant's time zone); empty for all day.
    pub hours: Vec<String>,
    /// Modes it is armed in.
    pub modes: Vec<Mode>,
    /// After it fires for a camera, it stays quiet for that camera this long, seconds.
    pub cooldown_secs: u64,
    /// How urgent its alerts are.
    pub severity: Severity,
    /// Wait for the edge's second look when it is coming, and send nothing when it rejects
    /// the object.
    pub require_verification: bool,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            name: "people-and-vehicles".into(),
            cameras: Vec::new(),
            categories: vec!["person".into(), "vehicle".into()],
            min_score: 0.0,
            zones: Vec::new(),
            days: Vec::new(),
            hours: Vec::new(),
            modes: vec![Mode::Away],
            cooldown_secs: 60,
            severity: Severity::Warning,
            require_verification: true,
        }
    }
}

/// The rules a tenant starts with: every camera, a person or a vehicle, when away.
pub fn default_rules() -> Vec<Rule> {
    vec![Rule::default()]
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The detector's vehicle labels.
pub fn is_vehicle(c: &Category) -> bool {
    matches!(
        c,
        Category::Car | Category::Truck | Category::Bus | Category::Motorcycle | Category::Bicycle
    )
}

/// Checks a rule set; the message names the rule and the field.
pub fn validate(rules: &[Rule]) -> Result<(), String> {
    if rules.len() > 64 {
        return Err("at most 64 rules".into());
    }
    let mut names = std::collections::HashSet::new();
    for r in rules {
        let n = &r.name;
        if !protocols::messages::valid_id(n) {
            return Err(format!("rule name {n:?} must be 1 to 48 of a-z, 0-9 and -"));
        }
        if !names.insert(n) {
            return Err(format!("rule {n} appears twice"));
        }
        let fail = |m: &str| Err(format!("rule {n}: {m}"));
        if r.categories.is_empty() || r.categories.iter().any(|c| c.is_empty() || c.len() > 32) {
            return fail("categories: name at least one (person, vehicle, or a label)");
        }
        if !(0.0..=1.0).contains(&r.min_score) {
            return fail("min_score must be 0 to 1");
        }
        if r.cameras.iter().any(|c| !protocols::messages::valid_id(c)) {
            return fail("cameras: ids of a-z, 0-9 and -");
        }
        if r.days.iter().any(|d| !DAYS.contains(&d.as_str())) {
            return fail("days are mon, tue, wed, thu, fri, sat, sun");
        }
        if r.hours.iter().any(|h| parse_hours(h).is_none()) {
            return fail("hours are ranges \"HH-HH\" of hours 0 to 24");
        }
        if r.modes.is_empty() {
            return fail("modes: name at least one of home, away, off");
        }
        if r.cooldown_secs > 7 * 86_400 {
            return fail("cooldown_secs is at most a week");
        }
    }
    Ok(())
}

/// A moment in the tenant's time zone, as schedules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
    /// 0-23.
    pub hour: u8,
}

/// `unix_ms` in `tz` (an IANA name such as `Europe/Berlin`; unknown names are refused when
/// the configuration loads).
pub fn local_time(unix_ms: u64, tz: &jiff::tz::TimeZone) -> LocalTime {
    let z = jiff::Timestamp::from_millisecond(unix_ms as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz.clone());
    LocalTime {
        weekday: z.weekday().to_monday_zero_offset() as u8,
        hour: z.hour() as u8,
    }
}

fn category_matches(wanted: &str, c: &Category) -> bool {
    match wanted {
        "vehicle" => is_vehicle(c),
        w => w == c.as_str(),
    }
}

/// Whether `rule` applies to event `e` in `mode` at local time `at` (its cameras, categories,
/// score, zones, schedule and modes; not its cooldown or the edge's second look).
pub fn applies(rule: &Rule, e: &EventRecord, mode: Mode, at: LocalTime) -> bool {
    let hour = u32::from(at.hour);
    rule.modes.contains(&mode)
        && (rule.cameras.is_empty() || rule.cameras.contains(&e.camera_id))
        && rule
            .categories
            .iter()
            .any(|w| category_matches(w, &e.category))
        && f32::from(e.score_milli) / 1000.0 >= rule.min_score
        && (rule.zones.is_empty() || rule.zones.iter().any(|z| e.zones.contains(z)))
        && (rule.days.is_empty() || rule.days.iter().any(|d| DAYS[at.weekday as usize % 7] == d))
        && (rule.hours.is_empty()
            || rule
                .hours
                .iter()
                .filter_map(|h| parse_hours(h))
                .any(|(from, to)| {
                    if from <= to {
                        (from..to).contains(&hour)
                    } else {
                        hour >= from || hour < to
                    }
                }))
}

/// What a rule does with one stored revision of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It fires: an alert goes to every channel.
    Fire,
    /// Not now, perhaps with a later revision (the second look is pending).
    Wait,
    /// Not for this event (it does not apply, the object was rejected, or it fired already).
    No,
    /// It applies, but fired for this camera less than its cooldown ago.
    Cooldown,
}

/// Whether `rule` fires for this revision `e` of an event: `fired` says whether it fired for
/// this event already, `last_fired_ms` when it last fired for the event's camera.
pub fn decide(
    rule: &Rule,
    e: &EventRecord,
    mode: Mode,
    at: LocalTime,
    fired: bool,
    last_fired_ms: Option<u64>,
    now_ms: u64,
) -> Decision {
    if fired || !applies(rule, e, mode, at) {
        return Decision::No;
    }
    if rule.require_verification {
        match e.verification.as_ref().map(|v| v.verdict) {
            Some(Verdict::Rejected) => return Decision::No,
            // The verdict follows in a later revision; an event that closes without one
            // fires then.
            Some(Verdict::Pending) if e.state == protocols::messages::events::EventState::Open => {
                return Decision::Wait;
            }
            _ => {}
        }
    }
    if last_fired_ms.is_some_and(|t| now_ms.saturating_sub(t) < rule.cooldown_secs * 1000) {
        return Decision::Cooldown;
    }
    Decision::Fire
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::messages::events::{EventState, Verification};

    fn ev(category: Category, score: u16) -> EventRecord {
        EventRecord {
            event_id: "ev-1".into(),
            camera_id: "porch".into(),
            category,
            score_milli: score,
            state: EventState::Open,
            revision: 1,
            zones: vec!["steps".into()],
            ..Default::default()
        }
    }

    const NOON_MONDAY: LocalTime = LocalTime {
        weekday: 0,
        hour: 12,
    };

    #[test]
    fn the_default_rule_is_people_and_vehicles_when_away() {
        let r = &default_rules()[0];
        assert_eq!(validate(&default_rules()), Ok(()));
        assert!(applies(
            r,
            &ev(Category::Person, 600),
            Mode::Away,
            NOON_MONDAY
        ));
        assert!(applies(
            r,
            &ev(Category::Truck, 600),
            Mode::Away,
            NOON_MONDAY
        ));
        assert!(!applies(
            r,
            &ev(Category::Other("dog".into()), 900),
            Mode::Away,
            NOON_MONDAY
        ));
        assert!(!applies(
            r,
            &ev(Category::Person, 600),
            Mode::Home,
            NOON_MONDAY
        ));
        assert!(!applies(
            r,
            &ev(Category::Person, 600),
            Mode::Off,
            NOON_MONDAY
        ));
    }

    #[test]
    fn cameras_scores_zones_days_and_hours() {
        let r = Rule {
            name: "night-steps".into(),
            cameras: vec!["porch".into()],
            categories: vec!["person".into()],
            min_score: 0.7,
            zones: vec!["steps".into(), "gate".into()],
            days: vec!["fri".into(), "sat".into()],
            hours: vec!["22-06".into()],
            modes: vec![Mode::Home, Mode::Away],
            ..Default::default()
        };
        assert_eq!(validate(std::slice::from_ref(&r)), Ok(()));
        let sat_23 = LocalTime {
            weekday: 5,
            hour: 23,
        };
        assert!(applies(&r, &ev(Category::Person, 800), Mode::Home, sat_23));
        assert!(
            !applies(&r, &ev(Category::Person, 600), Mode::Home, sat_23),
            "score"
        );
        assert!(
            !applies(&r, &ev(Category::Person, 800), Mode::Home, NOON_MONDAY),
            "day"
        );
        assert!(
            !applies(
                &r,
                &ev(Category::Person, 800),
                Mode::Home,
                LocalTime {
                    weekday: 5,
                    hour: 12
                }
            ),
            "hour"
        );
        assert!(applies(
            &r,
            &ev(Category::Person, 800),
            Mode::Home,
            LocalTime {
                weekday: 4,
                hour: 2
            }
        ));
        let mut elsewhere = ev(Category::Person, 800);
        elsewhere.zones = vec!["lawn".into()];
        assert!(!applies(&r, &elsewhere, Mode::Home, sat_23), "zone");
        elsewhere.camera_id = "yard".into();
        elsewhere.zones = vec!["steps".into()];
        assert!(!applies(&r, &elsewhere, Mode::Home, sat_23), "camera");
    }

    #[test]
    fn once_per_event_a_cooldown_per_camera_and_the_edge_s_second_look() {
        let r = Rule {
            cooldown_secs: 60,
            ..Default::default()
        };
        let e = ev(Category::Person, 800);
        let d = |e: &EventRecord, fired, last| {
            decide(&r, e, Mode::Away, NOON_MONDAY, fired, last, 100_000)
        };
        assert_eq!(d(&e, false, None), Decision::Fire);
        assert_eq!(d(&e, true, None), Decision::No, "once per event");
        assert_eq!(d(&e, false, Some(50_000)), Decision::Cooldown);
        assert_eq!(d(&e, false, Some(40_000)), Decision::Fire, "60 s later");
        let look = |verdict| {
            let mut e = e.clone();
            e.verification = Some(Verification {
                model: "centernet".into(),
                verdict,
                score_milli: 0,
            });
            e
        };
        assert_eq!(d(&look(Verdict::Pending), false, None), Decision::Wait);
        assert_eq!(d(&look(Verdict::Rejected), false, None), Decision::No);
        assert_eq!(d(&look(Verdict::Confirmed), false, None), Decision::Fire);
        assert_eq!(d(&look(Verdict::Unavailable), false, None), Decision::Fire);
        let mut closed = look(Verdict::Pending);
        closed.state = EventState::Closed;
        assert_eq!(
            d(&closed, false, None),
            Decision::Fire,
            "closed without a verdict"
        );
        let trusting = Rule {
            require_verification: false,
            ..r.clone()
        };
        assert_eq!(
            decide(
                &trusting,
                &look(Verdict::Rejected),
                Mode::Away,
                NOON_MONDAY,
                false,
                None,
                0
            ),
            Decision::Fire
        );
    }

    #[test]
    fn bad_rules_say_why() {
        let bad = |f: fn(&mut Rule), what: &str| {
            let mut r = Rule::default();
            f(&mut r);
            let e = validate(&[r]).unwrap_err();
            assert!(e.contains(what), "{e} should say {what}");
        };
        bad(|r| r.name = "Bad Name".into(), "rule name");
        bad(|r| r.categories.clear(), "categories");
        bad(|r| r.min_score = 2.0, "min_score");
        bad(|r| r.days = vec!["monday".into()], "days");
        bad(|r| r.hours = vec!["9-25".into()], "hours");
        bad(|r| r.modes.clear(), "modes");
        let twice = vec![Rule::default(), Rule::default()];
        assert!(validate(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn local_time_in_the_tenant_s_zone() {
        // 2026-12-07 (a Monday) 23:30 UTC is Tuesday 00:30 in Berlin (UTC+1 in winter).
        let t = 1_796_686_200_000;
        assert_eq!(
            local_time(t, &jiff::tz::TimeZone::UTC),
            LocalTime {
                weekday: 0,
                hour: 23
            }
        );
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            local_time(t, &berlin),
            LocalTime {
                weekday: 1,
                hour: 0
            }
        );
        assert_eq!(Mode::parse(" Away "), Some(Mode::Away));
        assert_eq!(Mode::parse("armed"), None);
    }
}
