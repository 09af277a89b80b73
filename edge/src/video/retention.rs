//! Local retention: which recorded events to delete, oldest first, by age, by a byte budget
//! and to keep a share of the disk free. An event still waiting in the archive outbox is never
//! deleted (its sealed copy has not reached the vm). Planning is pure; [`sweep`] applies it:
//! the row goes first, then the files, so a crash leaves at worst a file without a row,
//! which the next sweep removes.

use std::collections::HashSet;
use std::path::Path;

use crate::config::StorageConfig;
use crate::store::Store;

/// One recorded event as retention sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The event.
    pub event_id: String,
    /// When it ended, Unix ms.
    pub ended_at_ms: u64,
    /// Its files' bytes.
    pub bytes: u64,
}

/// The limits in force.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Delete events that ended longer ago than this, ms.
    pub max_age_ms: Option<u64>,
    /// Keep at most this many bytes of clips.
    pub budget_bytes: Option<u64>,
    /// Keep at least this many bytes free on the volume.
    pub min_free_bytes: u64,
}

impl Limits {
    /// From the configuration and the volume's size.
    pub fn from_config(c: &StorageConfig, volume_bytes: u64) -> Self {
        Limits {
            max_age_ms: (c.retention_days > 0).then(|| c.retention_days as u64 * 86_400_000),
            budget_bytes: (c.budget_mib > 0).then(|| c.budget_mib * 1024 * 1024),
            min_free_bytes: volume_bytes / 100 * c.min_free_percent as u64,
        }
    }
}

/// The events to delete, oldest first. `events` must be oldest first.
pub fn plan(
    events: &[Candidate],
    protected: &HashSet<String>,
    now_ms: u64,
    limits: Limits,
    free_bytes: u64,
) -> Vec<String> {
    let mut total: u64 = events.iter().map(|e| e.bytes).sum();
    let mut free = free_bytes;
    let mut out = Vec::new();
    for e in events {
        if protected.contains(&e.event_id) {
            continue;
        }
        let too_old = limits
            .max_age_ms
            .is_some_and(|max| now_ms.saturating_sub(e.ended_at_ms) > max);
        let over_budget = limits.budget_bytes.is_some_and(|b| total > b);
        let disk_full = free < limits.min_free_bytes;
        if too_old || over_budget || disk_full {
            out.push(e.event_id.clone());
            total -= e.bytes;
            free += e.bytes;
        }
    }
    out
}

/// Applies retention to the data directory; returns the events deleted.
pub fn sweep(
    data: &Path,
    store: &Store,
    c: &StorageConfig,
    volume_bytes: u64,
    free_bytes: u64,
) -> Result<Vec<String>, crate::store::StoreError> {
    let events = store.events(None)?;
    let candidates: Vec<Candidate> = events
        .iter()
        .map(|e| Candidate {
            event_id: e.record.event_id.clone(),
            ended_at_ms: e.record.ended_at_ms,
            bytes: e.bytes,
        })
        .collect();
    let protected = store.archive_event_ids()?;
    let doomed = plan(
        &candidates,
        &protected,
        crate::now_ms(),
        Limits::from_config(c, volume_bytes),
        free_bytes,
    );
    for id in &doomed {
        let Some(e) = events.iter().find(|e| &e.record.event_id == id) else {
            continue;
        };
        store.delete_event(id)?;
        for p in e.clip_path.iter().chain(&e.snapshot_path) {
            let _ = std::fs::remove_file(data.join(p));
        }
        tracing::info!(event = %id, "deleted by local retention");
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    fn ev(id: &str, day: u64, bytes: u64) -> Candidate {
        Candidate {
            event_id: id.into(),
            ended_at_ms: day * DAY,
            bytes,
        }
    }

    #[test]
    fn by_age_by_budget_and_by_free_space_oldest_first() {
        let events = [
            ev("a", 1, 100),
            ev("b", 2, 100),
            ev("c", 9, 100),
            ev("d", 10, 100),
        ];
        let none = HashSet::new();
        let age = Limits {
            max_age_ms: Some(7 * DAY),
            budget_bytes: None,
            min_free_bytes: 0,
        };
        assert_eq!(plan(&events, &none, 10 * DAY, age, 1_000), ["a", "b"]);
        let budget = Limits {
            max_age_ms: None,
            budget_bytes: Some(250),
            min_free_bytes: 0,
        };
        assert_eq!(plan(&events, &none, 10 * DAY, budget, 1_000), ["a", "b"]);
        let disk = Limits {
            max_age_ms: None,
            budget_bytes: None,
            min_free_bytes: 150,
        };
        assert_eq!(plan(&events, &none, 10 * DAY, disk, 0), ["a", "b"]);
        assert!(plan(&events, &none, 10 * DAY, disk, 150).is_empty());
    }

    #[test]
    fn never_deletes_what_waits_for_the_archive() {
        let events = [ev("a", 1, 100), ev("b", 2, 100)];
        let protected: HashSet<String> = ["a".to_string()].into();
        let all = Limits {
            max_age_ms: Some(0),
            budget_bytes: None,
            min_free_bytes: 0,
        };
        assert_eq!(plan(&events, &protected, 10 * DAY, all, 0), ["b"]);
    }
}
