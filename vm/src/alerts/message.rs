//! What a notification says, pure: the payload stored in the outbox and POSTed to webhooks
//! ([`Payload`], its schema in `vm/openapi.yaml`), and its forms for people (a title and a
//! line of text for ntfy and e-mail). Metadata only: a camera, a label, a score, a time, the
//! event's id and a link to it in the web app; never an image.

use protocols::messages::events::{EventRecord, Verification};
use serde::{Deserialize, Serialize};

use super::rules::Severity;

/// What kind of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A rule fired for an event.
    Event,
    /// A health condition was raised or recovered.
    Health,
}

/// A health condition's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It started.
    Raised,
    /// It is over.
    Recovered,
}

/// The notification, as stored and as webhooks receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// `event` or `health`.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// One line for people.
    pub title: String,
    /// A sentence for people.
    pub message: String,
    /// How urgent.
    pub severity: Severity,
    /// When it happened, Unix ms.
    pub at_ms: u64,
    /// The rule that fired (events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The event (events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    /// What was seen (events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Its best score so far, 0-1 (events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Named zones it was in (events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// The edge's second look (events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// When the edge confirmed the object, Unix ms (events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at_ms: Option<u64>,
    /// The event (or the system page) in the web app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The condition (`edge_offline`, `camera_failed`, ...) (health).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Raised or recovered (health).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The edge (its peer id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
    /// The edge's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_name: Option<String>,
}

fn label_words(label: &str) -> String {
    match label {
        "person" => "A person".into(),
        l => format!("A {l}"),
    }
}

/// The alert of `rule` for event `e`; `link_base` is the web app's address.
pub fn event_alert(e: &EventRecord, rule: &str, severity: Severity, link_base: &str) -> Payload {
    let label = e.category.as_str().to_owned();
    let zones = if e.zones.is_empty() {
        String::new()
    } else {
        format!(" ({})", e.zones.join(", "))
    };
    let score = f32::from(e.score_milli) / 1000.0;
    Payload {
        kind: Kind::Event,
        title: format!("{} at {}{zones}", label_words(&label), e.camera_id),
        message: format!(
            "{} seen by camera {}{zones}, score {:.2}; rule {rule}.",
            label_words(&label),
            e.camera_id,
            score
        ),
        severity,
        at_ms: e.started_at_ms,
        rule: Some(rule.to_owned()),
        event_id: Some(e.event_id.clone()),
        camera_id: Some(e.camera_id.clone()),
        label: Some(label),
        score: Some(score),
        zones: e.zones.clone(),
        verification: e.verification.clone(),
        confirmed_at_ms: (e.confirmed_at_ms > 0).then_some(e.confirmed_at_ms),
        link: Some(format!(
            "{}/#/events/{}",
            link_base.trim_end_matches('/'),
            e.event_id
        )),
        condition: None,
        change: None,
        edge: Some(e.edge_id.clone()),
        edge_name: None,
    }
}

/// A health notification (raised) about `condition`, linking to the system page.
pub fn health_alert(
    condition: &str,
    severity: Severity,
    title: String,
    message: String,
    at_ms: u64,
    link_base: &str,
) -> Payload {
    Payload {
        kind: Kind::Health,
        title,
        message,
        severity,
        at_ms,
        rule: None,
        event_id: None,
        camera_id: None,
        label: None,
        score: None,
        zones: Vec::new(),
        verification: None,
        confirmed_at_ms: None,
        link: Some(format!("{}/#/system", link_base.trim_end_matches('/'))),
        condition: Some(condition.to_owned()),
        change: Some(Change::Raised),
        edge: None,
        edge_name: None,
    }
}

/// ntfy's priority (1-5) of a severity, and its tags.
pub fn ntfy_priority(p: &Payload) -> (&'static str, String) {
    let priority = match (p.kind, p.change, p.severity) {
        (Kind::Health, Some(Change::Recovered), _) => "3",
        (_, _, Severity::Info) => "3",
        (_, _, Severity::Warning) => "4",
        (_, _, Severity::Critical) => "5",
    };
    let mut tags = vec![
        match (p.kind, p.change) {
            (Kind::Health, Some(Change::Recovered)) => "white_check_mark",
            (Kind::Health, _) => "warning",
            (Kind::Event, _) => "rotating_light",
        }
        .to_owned(),
    ];
    tags.extend(p.label.clone());
    (priority, tags.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::messages::Category;

    #[test]
    fn an_event_alert_is_metadata_with_a_link() {
        let e = EventRecord {
            event_id: "ev-1".into(),
            edge_id: "12D3".into(),
            camera_id: "porch".into(),
            category: Category::Person,
            score_milli: 812,
            started_at_ms: 5,
            confirmed_at_ms: 6,
            zones: vec!["steps".into()],
            ..Default::default()
        };
        let p = event_alert(&e, "night", Severity::Critical, "https://vm.example.org/");
        assert_eq!(p.title, "A person at porch (steps)");
        assert_eq!(
            p.link.as_deref(),
            Some("https://vm.example.org/#/events/ev-1")
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["type"], "event");
        assert_eq!(json["score"].as_f64().unwrap(), 0.812f32 as f64);
        assert!(json.get("condition").is_none());
        assert_eq!(ntfy_priority(&p), ("5", "rotating_light,person".into()));
        let back: Payload = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
