//! Turning stored event revisions into notifications, inside the transaction that stored
//! them: an event held is an alert queued, even across a crash ("delivered once, at least").
//!
//! For each revision that changed the events cache and each rule in force (the API's, else
//! `vm.toml`'s), [`rules::decide`] says whether it fires; a decision (fired, or held back by
//! the cooldown) is recorded once per event and rule; a firing queues one notification per
//! channel (deduplicated by `event:<id>:<rule>`), and sets the rule's cooldown for the camera.
//! With MQTT, every revision is also queued as a Frigate-style `events` message
//! (`new`, `update`, `end`).

use rusqlite::Connection;
use serde_json::json;

use super::message::{self, Payload};
use super::rules::{self, Decision, Mode, Rule};
use crate::db::{self, DbError, StoredEvent};

/// What the engine needs of the configuration.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `vm.toml`'s rules (the API's win once set).
    pub rules: Vec<Rule>,
    /// The household's time zone.
    pub tz: jiff::tz::TimeZone,
    /// The web app's address, for links.
    pub link_base: String,
    /// The outbox names of the channels (`mqtt` included when a broker is configured).
    pub channels: Vec<String>,
}

impl Setup {
    /// Whether a broker is configured.
    pub fn mqtt(&self) -> bool {
        self.channels.iter().any(|c| c == "mqtt")
    }
}

/// The rules in force.
pub fn rules_in_force(c: &Connection, setup: &Setup) -> Result<Vec<Rule>, DbError> {
    match db::alert_rules_json(c)? {
        Some(j) => serde_json::from_str(&j).map_err(|e| DbError::Corrupt(e.to_string())),
        None => Ok(setup.rules.clone()),
    }
}

/// The mode (away until set).
pub fn mode(c: &Connection) -> Result<Mode, DbError> {
    Ok(db::alert_mode(c)?
        .and_then(|m| Mode::parse(&m))
        .unwrap_or(Mode::Away))
}

fn to_json(p: &impl serde::Serialize) -> Result<String, DbError> {
    serde_json::to_string(p).map_err(|e| DbError::Corrupt(e.to_string()))
}

/// Queues `payload` to every alert channel under `dedup`; how many were queued.
pub fn queue(
    c: &Connection,
    setup: &Setup,
    dedup: &str,
    payload: &Payload,
    now_ms: u64,
) -> Result<usize, DbError> {
    let json = to_json(payload)?;
    let kind = match payload.kind {
        message::Kind::Event => "event",
        message::Kind::Health => "health",
    };
    let mut n = 0;
    for ch in &setup.channels {
        if db::enqueue_notification(c, ch, dedup, kind, &json, now_ms)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Plans the notifications of `stored` (in the caller's transaction); how many were queued.
pub fn plan_events(
    c: &Connection,
    setup: &Setup,
    stored: &[StoredEvent],
    now_ms: u64,
) -> Result<usize, DbError> {
    if stored.is_empty() {
        return Ok(0);
    }
    let rules = rules_in_force(c, setup)?;
    let mode = mode(c)?;
    let mut queued = 0;
    for s in stored {
        let e = &s.record;
        if setup.mqtt() {
            let kind = match (s.previous, e.state) {
                (_, protocols::messages::events::EventState::Closed) => "end",
                (None, _) => "new",
                (Some(_), _) => "update",
            };
            let after = json!({
                "id": e.event_id, "camera": e.camera_id, "label": e.category.as_str(),
                "score": f32::from(e.score_milli) / 1000.0, "start_time": e.started_at_ms as f64 / 1000.0,
                "end_time": (e.state == protocols::messages::events::EventState::Closed)
                    .then_some(e.ended_at_ms as f64 / 1000.0),
                "zones": e.zones, "revision": e.revision, "verification": e.verification,
            });
            let body = json!({ "type": kind, "before": serde_json::Value::Null, "after": after });
            if db::enqueue_notification(
                c,
                "mqtt",
                &format!("event:{}:rev:{}", e.event_id, e.revision),
                "mqtt_event",
                &to_json(&body)?,
                now_ms,
            )? {
                queued += 1;
            }
        }
        let at = rules::local_time(e.started_at_ms, &setup.tz);
        for r in &rules {
            let decided = db::alert_decided(c, &e.event_id, &r.name)?;
            let last = db::alert_last_fired(c, &e.camera_id, &r.name)?;
            match rules::decide(r, e, mode, at, decided, last, now_ms) {
                Decision::Fire => {
                    db::record_alert_decision(c, &e.event_id, &r.name, "fired", now_ms)?;
                    db::set_alert_fired(c, &e.camera_id, &r.name, now_ms)?;
                    let payload = message::event_alert(e, &r.name, r.severity, &setup.link_base);
                    let n = queue(
                        c,
                        setup,
                        &format!("event:{}:{}", e.event_id, r.name),
                        &payload,
                        now_ms,
                    )?;
                    tracing::info!(event = %e.event_id, camera = %e.camera_id, rule = %r.name, channels = n, "alert fired");
                    queued += n;
                }
                Decision::Cooldown => {
                    db::record_alert_decision(c, &e.event_id, &r.name, "cooldown", now_ms)?;
                    tracing::info!(event = %e.event_id, camera = %e.camera_id, rule = %r.name, "alert held back by the rule's cooldown");
                }
                Decision::Wait | Decision::No => {}
            }
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use protocols::messages::Category;
    use protocols::messages::events::{EventRecord, EventState};

    fn setup() -> Setup {
        Setup {
            rules: rules::default_rules(),
            tz: jiff::tz::TimeZone::UTC,
            link_base: "http://vm".into(),
            channels: vec!["webhook:a".into(), "mqtt".into()],
        }
    }

    fn stored(
        id: &str,
        camera: &str,
        revision: u32,
        previous: Option<u32>,
        state: EventState,
    ) -> StoredEvent {
        StoredEvent {
            record: EventRecord {
                event_id: id.into(),
                camera_id: camera.into(),
                category: Category::Person,
                score_milli: 700,
                revision,
                state,
                ..Default::default()
            },
            previous,
        }
    }

    fn count(c: &Connection, channel: &str, kind: &str) -> usize {
        db::notifications(c, Some(channel), 100)
            .unwrap()
            .iter()
            .filter(|n| n.kind == kind)
            .count()
    }

    #[test]
    fn one_alert_per_event_and_channel_a_cooldown_per_camera_and_mode_off_sends_nothing() {
        let db = Db::open_in_memory().unwrap();
        let s = setup();
        db.with(|c| {
            let t = 1_000_000;
            // Opened, then closed: one alert (on the open record), two MQTT event messages.
            plan_events(
                c,
                &s,
                &[stored("e1", "porch", 1, None, EventState::Open)],
                t,
            )?;
            plan_events(
                c,
                &s,
                &[stored("e1", "porch", 2, Some(1), EventState::Closed)],
                t + 5_000,
            )?;
            assert_eq!(count(c, "webhook:a", "event"), 1);
            assert_eq!(count(c, "mqtt", "event"), 1);
            assert_eq!(count(c, "mqtt", "mqtt_event"), 2);
            // Another person at the porch 30 s later: the 60 s cooldown holds; another camera fires.
            plan_events(
                c,
                &s,
                &[stored("e2", "porch", 1, None, EventState::Open)],
                t + 30_000,
            )?;
            plan_events(
                c,
                &s,
                &[stored("e3", "yard", 1, None, EventState::Open)],
                t + 30_000,
            )?;
            assert_eq!(count(c, "webhook:a", "event"), 2);
            // ... and decided once: the cooldown over by its close, e2 still sends nothing.
            plan_events(
                c,
                &s,
                &[stored("e2", "porch", 2, Some(1), EventState::Closed)],
                t + 100_000,
            )?;
            assert_eq!(count(c, "webhook:a", "event"), 2);
            // Disarmed: nothing.
            db::set_alert_mode(c, "off")?;
            plan_events(
                c,
                &s,
                &[stored("e4", "porch", 1, None, EventState::Open)],
                t + 200_000,
            )?;
            assert_eq!(count(c, "webhook:a", "event"), 2);
            // Rules set through the API win: one armed when off.
            let off_rule = Rule {
                name: "always".into(),
                modes: vec![Mode::Off],
                cooldown_secs: 0,
                ..Default::default()
            };
            db::set_alert_rules_json(c, &serde_json::to_string(&[off_rule]).unwrap())?;
            plan_events(
                c,
                &s,
                &[stored("e5", "porch", 1, None, EventState::Open)],
                t + 300_000,
            )?;
            assert_eq!(count(c, "webhook:a", "event"), 3);
            let p: Payload =
                serde_json::from_str(&db::notifications(c, Some("webhook:a"), 1)?[0].payload_json)
                    .unwrap();
            assert_eq!(
                (p.rule.as_deref(), p.event_id.as_deref()),
                (Some("always"), Some("e5"))
            );
            Ok(())
        })
        .unwrap();
    }
}
