//! Edge health, derived from the last contact and the latest telemetry report: offline for
//! too long, disk nearly full, archive backlog high, work parked after a final refusal.
//! Pure, so each threshold is tested.

use protocols::messages::telemetry::TelemetryReport;
use serde::Serialize;

use crate::config::TelemetryConfig;

/// One health problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Issue {
    /// Not connected and not heard from for longer than `offline_after_secs`.
    Offline,
    /// Disk use at or over `disk_full_percent`.
    DiskNearlyFull,
    /// Archive outbox at or over `backlog_high_objects`.
    BacklogHigh,
    /// No telemetry report received yet.
    NoTelemetry,
    /// The edge holds work the vm refused for good (events, archives or thumbnails): it is
    /// kept there, and no longer sent; someone should look.
    Parked,
}

/// Work an edge holds after a final refusal, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Parked {
    /// Event records.
    pub events: u64,
    /// Sealed events for the archive.
    pub archive: u64,
    /// Sealed thumbnails.
    pub thumbnails: u64,
}

/// Health of one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeHealth {
    /// Connected right now.
    pub online: bool,
    /// Milliseconds since last heard from.
    pub silent_for_ms: u64,
    /// Disk use, percent, from the latest report.
    pub disk_used_percent: Option<u8>,
    /// Archive backlog, objects, from the latest report.
    pub archive_backlog_objects: Option<u64>,
    /// Event records waiting on the edge, from the latest report.
    pub event_backlog: Option<u64>,
    /// Work parked on the edge after a final refusal, from the latest report.
    pub parked: Option<Parked>,
    /// Problems; empty when healthy.
    pub issues: Vec<Issue>,
}

/// Derives an edge's health.
pub fn derive(
    cfg: &TelemetryConfig,
    now_ms: u64,
    connected: bool,
    last_seen_ms: u64,
    latest: Option<&TelemetryReport>,
) -> EdgeHealth {
    let silent_for_ms = now_ms.saturating_sub(last_seen_ms);
    let mut issues = Vec::new();
    if !connected && silent_for_ms > cfg.offline_after_secs * 1000 {
        issues.push(Issue::Offline);
    }
    let disk_used_percent = latest.and_then(|r| {
        let total = r.disk_used_bytes.checked_add(r.disk_free_bytes)?;
        (total > 0).then(|| (r.disk_used_bytes as u128 * 100 / total as u128) as u8)
    });
    if disk_used_percent.is_some_and(|p| p >= cfg.disk_full_percent) {
        issues.push(Issue::DiskNearlyFull);
    }
    if latest.is_some_and(|r| r.archive_backlog_objects >= cfg.backlog_high_objects) {
        issues.push(Issue::BacklogHigh);
    }
    if latest.is_none() {
        issues.push(Issue::NoTelemetry);
    }
    if latest.is_some_and(|r| r.events_parked + r.archive_parked + r.thumbnails_parked > 0) {
        issues.push(Issue::Parked);
    }
    EdgeHealth {
        online: connected,
        silent_for_ms,
        disk_used_percent,
        archive_backlog_objects: latest.map(|r| r.archive_backlog_objects),
        event_backlog: latest.map(|r| r.event_backlog),
        parked: latest.map(|r| Parked {
            events: r.events_parked,
            archive: r.archive_parked,
            thumbnails: r.thumbnails_parked,
        }),
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(used: u64, free: u64, backlog: u64) -> TelemetryReport {
        TelemetryReport {
            edge_id: "e".into(),
            at_ms: 0,
            cpu_milli: 0,
            mem_used_bytes: 0,
            mem_total_bytes: 0,
            disk_used_bytes: used,
            disk_free_bytes: free,
            cameras: vec![],
            archive_backlog_objects: backlog,
            archive_backlog_bytes: 0,
            event_backlog: 0,
            events_parked: 0,
            archive_parked: 0,
            thumbnails_parked: 0,
            overlay_path: String::new(),
        }
    }

    #[test]
    fn thresholds() {
        let cfg = TelemetryConfig::default();
        let healthy = derive(&cfg, 10_000, true, 9_000, Some(&report(10, 90, 0)));
        assert!(healthy.issues.is_empty(), "{healthy:?}");
        assert_eq!(healthy.disk_used_percent, Some(10));

        let offline = derive(&cfg, 200_000, false, 10_000, Some(&report(10, 90, 0)));
        assert_eq!(offline.issues, [Issue::Offline]);
        // Disconnected but recently heard from: not yet offline.
        let blip = derive(&cfg, 20_000, false, 10_000, Some(&report(10, 90, 0)));
        assert!(blip.issues.is_empty());

        let full = derive(&cfg, 0, true, 0, Some(&report(90, 10, 0)));
        assert_eq!(full.issues, [Issue::DiskNearlyFull]);
        let backlog = derive(&cfg, 0, true, 0, Some(&report(1, 99, 100)));
        assert_eq!(backlog.issues, [Issue::BacklogHigh]);
        let none = derive(&cfg, 0, true, 0, None);
        assert_eq!(none.issues, [Issue::NoTelemetry]);
        let parked = TelemetryReport {
            archive_parked: 2,
            ..report(1, 99, 0)
        };
        let h = derive(&cfg, 0, true, 0, Some(&parked));
        assert_eq!(h.issues, [Issue::Parked]);
        assert_eq!(h.parked.unwrap().archive, 2);
    }
}
