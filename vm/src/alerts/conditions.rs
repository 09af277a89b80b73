//! Health conditions an owner is told about, and when they end, pure: from each edge's health
//! ([`crate::health`]) and its cameras' last reported state.
//!
//! | condition | raised when | key |
//! |---|---|---|
//! | `edge_offline` | the edge is offline (`telemetry.offline_after_secs`) | per edge |
//! | `disk_nearly_full` | its disk use reaches `telemetry.disk_full_percent` | per edge |
//! | `archive_backlog_high` | its archive outbox reaches `telemetry.backlog_high_objects` | per edge |
//! | `detector_unavailable` | a camera reports the detector missing | per edge |
//! | `camera_down` | a camera neither streaming nor disabled for `alerts.camera_silent_secs` | per camera |
//!
//! (`enrollment_refused` is an occurrence, not a condition: it is sent when it happens.)
//! A camera of an offline edge is not reported apart: the edge's condition says it.

use std::collections::BTreeMap;

use protocols::messages::telemetry::{CameraState, CameraStatus};

use super::message::{Change, Payload, health_alert};
use super::rules::Severity;
use crate::health::{EdgeHealth, Issue};

/// One edge as the watcher sees it.
pub struct EdgeView<'a> {
    /// Its peer id.
    pub peer_id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its health now.
    pub health: &'a EdgeHealth,
    /// Its cameras' last reported state.
    pub cameras: &'a [CameraStatus],
}

/// A condition that holds now: its key (stable while it holds) and what to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `<condition>:<edge>[:<camera>]`.
    pub key: String,
    /// The alert to send when it is raised (and, changed, when it recovers).
    pub payload: Payload,
}

/// The conditions that hold at `now_ms`; `bad_since` says since when each camera (by
/// `<edge>:<camera>`) has been neither streaming nor disabled, and is kept up to date here.
pub fn conditions(
    edges: &[EdgeView<'_>],
    bad_since: &mut BTreeMap<String, u64>,
    camera_silent_secs: u64,
    now_ms: u64,
    link: &str,
) -> Vec<Condition> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for e in edges {
        let n = e.name;
        let mut raise =
            |condition: &str, severity, title: String, message: String, camera: Option<&str>| {
                let key = match camera {
                    Some(c) => format!("{condition}:{}:{c}", e.peer_id),
                    None => format!("{condition}:{}", e.peer_id),
                };
                let mut payload = health_alert(condition, severity, title, message, now_ms, link);
                payload.camera_id = camera.map(str::to_owned);
                payload.edge = Some(e.peer_id.to_owned());
                payload.edge_name = Some(e.name.to_owned());
                out.push(Condition { key, payload });
            };
        let offline = e.health.issues.contains(&Issue::Offline);
        if offline {
            raise(
                "edge_offline",
                Severity::Critical,
                format!("Edge {n} is offline"),
                format!(
                    "The edge {n} has not been heard from for {} s: its cameras are not watched from here.",
                    e.health.silent_for_ms / 1000
                ),
                None,
            );
        }
        if e.health.issues.contains(&Issue::DiskNearlyFull) {
            raise(
                "disk_nearly_full",
                Severity::Warning,
                format!("Edge {n}: disk nearly full"),
                format!(
                    "The edge {n}'s disk is {}% full; the oldest clips go first.",
                    e.health.disk_used_percent.unwrap_or(0)
                ),
                None,
            );
        }
        if e.health.issues.contains(&Issue::BacklogHigh) {
            raise(
                "archive_backlog_high",
                Severity::Warning,
                format!("Edge {n}: archive backlog high"),
                format!(
                    "{} sealed events wait on the edge {n} for the archive.",
                    e.health.archive_backlog_objects.unwrap_or(0)
                ),
                None,
            );
        }
        if offline {
            continue;
        }
        if let Some(why) = e.cameras.iter().find_map(|c| {
            c.last_error
                .as_deref()
                .filter(|m| m.starts_with("detector unavailable"))
        }) {
            raise(
                "detector_unavailable",
                Severity::Critical,
                format!("Edge {n}: the detector is unavailable"),
                format!("The edge {n} cannot detect: {why}. Its cameras record nothing."),
                None,
            );
        }
        for c in e.cameras {
            let key = format!("{}:{}", e.peer_id, c.camera_id);
            seen.insert(key.clone());
            if matches!(c.state, CameraState::Streaming | CameraState::Disabled) {
                bad_since.remove(&key);
                continue;
            }
            let since = *bad_since.entry(key).or_insert(now_ms);
            if now_ms.saturating_sub(since) >= camera_silent_secs * 1000 {
                let state = serde_json::to_value(c.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let why = c
                    .last_error
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                raise(
                    "camera_down",
                    Severity::Critical,
                    format!("Camera {} is {state}", c.camera_id),
                    format!(
                        "The camera {} on edge {n} has not streamed for {} s{why}.",
                        c.camera_id,
                        (now_ms - since) / 1000
                    ),
                    Some(&c.camera_id),
                );
            }
        }
    }
    bad_since.retain(|k, _| seen.contains(k));
    out
}

/// The alert that a condition is over.
pub fn recovered(raised: &Payload, now_ms: u64) -> Payload {
    let mut p = raised.clone();
    p.change = Some(Change::Recovered);
    p.severity = Severity::Info;
    p.at_ms = now_ms;
    p.title = match p.condition.as_deref() {
        Some("edge_offline") => format!(
            "Edge {} is back online",
            p.edge_name.clone().unwrap_or_default()
        ),
        Some("camera_down") => format!(
            "Camera {} is streaming again",
            p.camera_id.clone().unwrap_or_default()
        ),
        _ => format!("Resolved: {}", raised.title),
    };
    p.message = format!("{} (resolved).", raised.title);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(issues: Vec<Issue>) -> EdgeHealth {
        EdgeHealth {
            online: !issues.contains(&Issue::Offline),
            silent_for_ms: 130_000,
            disk_used_percent: Some(93),
            archive_backlog_objects: Some(150),
            event_backlog: Some(0),
            parked: None,
            issues,
        }
    }

    fn camera(id: &str, state: CameraState, error: Option<&str>) -> CameraStatus {
        CameraStatus {
            camera_id: id.into(),
            state,
            fps_milli: 0,
            last_error: error.map(str::to_owned),
            width: 0,
            height: 0,
            bitrate_kbps: 0,
            last_frame_ms: 0,
            detect_ms: 0,
        }
    }

    #[test]
    fn edges_and_cameras_raise_what_holds() {
        let h = health(vec![Issue::DiskNearlyFull, Issue::BacklogHigh]);
        let cams = [
            camera("porch", CameraState::Streaming, None),
            camera(
                "gate",
                CameraState::Failed,
                Some("unauthorized: the camera refused"),
            ),
            camera(
                "yard",
                CameraState::Connecting,
                Some("detector unavailable: no model"),
            ),
        ];
        let e = [EdgeView {
            peer_id: "p1",
            name: "home",
            health: &h,
            cameras: &cams,
        }];
        let mut since = BTreeMap::new();
        let keys = |c: &[Condition]| c.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        let first = conditions(&e, &mut since, 60, 1_000_000, "http://vm");
        assert_eq!(
            keys(&first),
            [
                "disk_nearly_full:p1",
                "archive_backlog_high:p1",
                "detector_unavailable:p1"
            ]
        );
        let later = conditions(&e, &mut since, 60, 1_061_000, "http://vm");
        assert_eq!(
            keys(&later)[3..],
            [
                "camera_down:p1:gate".to_string(),
                "camera_down:p1:yard".to_string()
            ]
        );
        let gate = &later[3].payload;
        assert_eq!(gate.title, "Camera gate is failed");
        assert!(gate.message.contains("unauthorized"));
        assert_eq!(gate.link.as_deref(), Some("http://vm/#/system"));
        // The gate camera streams again: its condition is gone, and so is its clock.
        let fixed = [camera("gate", CameraState::Streaming, None)];
        let e2 = [EdgeView {
            cameras: &fixed,
            ..e[0]
        }];
        let now = conditions(&e2, &mut since, 60, 1_062_000, "http://vm");
        assert!(!keys(&now).iter().any(|k| k.starts_with("camera_down")));
        assert!(since.is_empty());
        let r = recovered(gate, 5);
        assert_eq!(
            (r.title.as_str(), r.change, r.severity),
            (
                "Camera gate is streaming again",
                Some(Change::Recovered),
                Severity::Info
            )
        );
    }

    #[test]
    fn an_offline_edge_is_one_condition() {
        let h = health(vec![Issue::Offline]);
        let cams = [camera("gate", CameraState::Failed, Some("x"))];
        let e = [EdgeView {
            peer_id: "p1",
            name: "home",
            health: &h,
            cameras: &cams,
        }];
        let mut since = BTreeMap::new();
        let c = conditions(&e, &mut since, 0, 10, "l");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key, "edge_offline:p1");
        assert_eq!(c[0].payload.severity, Severity::Critical);
        assert_eq!(
            recovered(&c[0].payload, 11).title,
            "Edge home is back online"
        );
    }
}
