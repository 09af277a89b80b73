//! Local retention: which recorded events to delete, oldest first, by age, by a byte budget
//! and to keep a share of the disk free. An event still waiting in the archive outbox is never
//! deleted (its sealed copy has not reached the vm). Planning is pure; [`sweep`] applies it:
//! the row goes first, then the files, so a crash leaves at worst a file without a row,
//! which the sweep removes once it is older than [`ORPHAN_GRACE`]. "Now" is the clock's wall
//! time, so tests move it with a manual clock.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use guardian_node::clock::Clock;

use super::recorder::CLIPS_DIR;
use crate::config::StorageConfig;
use crate::store::{Store, StoreError};

/// A clip or snapshot without an event row is removed once it is this old (a clip being
/// written has no row yet).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(600);

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Events deleted, oldest first.
    pub events: Vec<String>,
    /// Files without a row removed, relative to the data directory.
    pub orphans: Vec<String>,
}

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

/// Applies retention to the data directory at the clock's wall time: deletes the events
/// [`plan`] names (row, then files), then files without a row older than [`ORPHAN_GRACE`].
pub fn sweep(
    data: &Path,
    store: &Store,
    c: &StorageConfig,
    volume_bytes: u64,
    free_bytes: u64,
    clock: &dyn Clock,
) -> Result<Swept, StoreError> {
    let now_ms = clock.wall_ms();
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
        now_ms,
        Limits::from_config(c, volume_bytes),
        free_bytes,
    );
    for id in &doomed {
        let Some(e) = events.iter().find(|e| &e.record.event_id == id) else {
            continue;
        };
        store.delete_event(id)?;
        if let Some(d) = &e.objects_dir {
            let _ = std::fs::remove_dir_all(data.join(d));
        }
        for p in e.clip_path.iter().chain(&e.snapshot_path) {
            let _ = std::fs::remove_file(data.join(p));
        }
        tracing::info!(event = %id, "deleted by local retention");
    }
    let orphans = remove_orphans(data, store, now_ms)?;
    Ok(Swept {
        events: doomed,
        orphans,
    })
}

/// Files and event folders under `clips/<camera>/` without an event row (a crash between
/// sealing and recording the event), removed once older than [`ORPHAN_GRACE`] at `now_ms`.
fn remove_orphans(data: &Path, store: &Store, now_ms: u64) -> Result<Vec<String>, StoreError> {
    let known: HashSet<String> = store
        .events(None)?
        .into_iter()
        .flat_map(|e| {
            e.clip_path
                .into_iter()
                .chain(e.snapshot_path)
                .chain(e.objects_dir)
        })
        .collect();
    let mut removed = Vec::new();
    let root = data.join(CLIPS_DIR);
    for cam in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(cam.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = f.path();
            let rel = path
                .strip_prefix(data)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let modified_ms = f
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64);
            let old = modified_ms
                .is_some_and(|m| now_ms.saturating_sub(m) > ORPHAN_GRACE.as_millis() as u64);
            if old && !known.contains(&rel) {
                tracing::info!(file = %rel, "removing a clip file without an event");
                let gone = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if gone.is_ok() {
                    removed.push(rel);
                }
            }
        }
    }
    Ok(removed)
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

    mod sweeping {
        use std::path::Path;
        use std::time::{Duration, SystemTime, UNIX_EPOCH};

        use guardian_node::clock::ManualClock;
        use protocols::messages::Category;
        use protocols::messages::events::EventRecord;

        use super::super::*;
        use crate::store::LocalEvent;

        const DAY_MS: u64 = 86_400_000;
        const T0: u64 = 1_780_000_000_000;

        fn record(id: &str, ended_at_ms: u64) -> EventRecord {
            EventRecord {
                event_id: id.into(),
                tenant_id: "tenant".into(),
                edge_id: "edge".into(),
                camera_id: "porch".into(),
                started_at_ms: ended_at_ms - 10_000,
                ended_at_ms,
                category: Category::Person,
                score_milli: 900,
                clip_cid: None,
                snapshot_cid: None,
                thumbnail_cid: None,
                truncated: false,
                ..Default::default()
            }
        }

        fn folder(id: &str) -> String {
            format!("{CLIPS_DIR}/porch/{id}")
        }

        fn clip(id: &str) -> String {
            format!("{}/clip.mp4.age", folder(id))
        }

        /// An event recorded with a clip of `bytes` bytes.
        fn recorded(data: &Path, store: &mut Store, id: &str, ended_at_ms: u64, bytes: usize) {
            let path = data.join(clip(id));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vec![7u8; bytes]).unwrap();
            store
                .insert_event(
                    &LocalEvent {
                        record: record(id, ended_at_ms),
                        track_json: "[]".into(),
                        clip_path: Some(clip(id)),
                        snapshot_path: None,
                        thumbnail_path: None,
                        objects_dir: Some(folder(id)),
                        manifest_json: None,
                        bytes: bytes as u64,
                    },
                    false,
                    ended_at_ms,
                )
                .unwrap();
        }

        fn ids(store: &Store) -> Vec<String> {
            store
                .events(None)
                .unwrap()
                .into_iter()
                .map(|e| e.record.event_id)
                .collect()
        }

        fn storage(retention_days: u32, budget_mib: u64) -> StorageConfig {
            StorageConfig {
                retention_days,
                budget_mib,
                min_free_percent: 0,
                sweep_secs: 60,
                ..StorageConfig::default()
            }
        }

        #[test]
        fn events_go_exactly_when_the_clock_passes_the_retention_age_unless_awaiting_the_archive() {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path();
            let mut store = Store::open(&data.join("edge.sqlite")).unwrap();
            recorded(data, &mut store, "a", T0 - 1_000, 100);
            recorded(data, &mut store, "b", T0, 100);
            // The oldest is sealed and still waits in the archive outbox.
            recorded(data, &mut store, "sealed", T0 - 5_000, 100);
            store
                .enqueue_archive(
                    &record("sealed", T0 - 5_000),
                    b"{}",
                    100,
                    &folder("sealed"),
                    T0,
                )
                .unwrap();
            let c = storage(1, 0);
            let clock = ManualClock::new(T0);
            let sweep = |clock: &ManualClock| sweep(data, &store, &c, 1 << 40, 1 << 40, clock);

            // "a" is exactly one day old: kept.
            clock.advance(Duration::from_millis(DAY_MS - 1_000));
            assert_eq!(sweep(&clock).unwrap(), Swept::default());
            assert_eq!(ids(&store), ["sealed", "a", "b"]);
            // One millisecond later it is older than the retention age: row and clip go.
            clock.advance(Duration::from_millis(1));
            assert_eq!(sweep(&clock).unwrap().events, ["a"]);
            assert_eq!(ids(&store), ["sealed", "b"]);
            assert!(!data.join(clip("a")).exists());
            assert!(data.join(clip("b")).exists());
            // Then "b"; the sealed event stays however old it gets.
            clock.advance(Duration::from_millis(1_000));
            assert_eq!(sweep(&clock).unwrap().events, ["b"]);
            clock.advance(Duration::from_millis(100 * DAY_MS));
            assert_eq!(sweep(&clock).unwrap(), Swept::default());
            assert_eq!(ids(&store), ["sealed"]);
            assert!(data.join(clip("sealed")).exists());
            // Once it left the archive outbox, it goes too.
            store.remove_archive("sealed").unwrap();
            assert_eq!(sweep(&clock).unwrap().events, ["sealed"]);
            assert!(ids(&store).is_empty());
        }

        #[test]
        fn the_byte_budget_deletes_oldest_first_until_it_fits() {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path();
            let mut store = Store::open(&data.join("edge.sqlite")).unwrap();
            for (i, id) in ["a", "b", "c"].iter().enumerate() {
                recorded(data, &mut store, id, T0 + i as u64 * 1_000, 600 * 1024);
            }
            let c = storage(0, 1);
            let clock = ManualClock::new(T0 + 10_000);
            // 1 800 KiB over a 1 MiB budget: the two oldest go, 600 KiB stay.
            let swept = sweep(data, &store, &c, 1 << 40, 1 << 40, &clock).unwrap();
            assert_eq!(swept.events, ["a", "b"]);
            assert_eq!(ids(&store), ["c"]);
            assert!(!data.join(clip("a")).exists() && !data.join(clip("b")).exists());
            // Within budget: nothing more, however much time passes (no age limit).
            clock.advance(Duration::from_millis(1_000 * DAY_MS));
            let swept = sweep(data, &store, &c, 1 << 40, 1 << 40, &clock).unwrap();
            assert!(swept.events.is_empty());
            assert_eq!(ids(&store), ["c"]);
        }

        #[test]
        fn a_file_without_a_row_goes_after_the_grace_period() {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path();
            let mut store = Store::open(&data.join("edge.sqlite")).unwrap();
            recorded(data, &mut store, "kept", T0, 100);
            let stray = data.join(clip("stray"));
            std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
            std::fs::write(&stray, b"half a clip").unwrap();
            // The files' times are real ones: start the manual clock at the real time.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let clock = ManualClock::new(now + 1_000);
            let c = storage(0, 0);
            let swept = sweep(data, &store, &c, 1 << 40, 1 << 40, &clock).unwrap();
            assert!(
                swept.orphans.is_empty(),
                "a clip being written has no row yet"
            );
            assert!(stray.exists());
            clock.advance(ORPHAN_GRACE);
            let swept = sweep(data, &store, &c, 1 << 40, 1 << 40, &clock).unwrap();
            assert_eq!(swept.orphans, [folder("stray")]);
            assert!(!stray.exists());
            assert!(data.join(clip("kept")).exists(), "a clip with a row stays");
        }
    }
}
