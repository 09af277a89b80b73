//! The edge's SQLite database: the device configuration from enrollment, and the outbox of
//! event records waiting for the vm's ack.
//!
//! WAL mode, so `guardian-edge emit-test-event` (another process) can add to the outbox while
//! the agent runs; a record leaves the outbox only when the vm has acked it, so nothing is
//! lost across restarts of either side. Migrations in `edge/migrations/` are tracked in
//! `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use protocols::messages::enroll::DeviceConfig;
use protocols::messages::events::EventRecord;

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_archive.sql"),
    include_str!("../migrations/0003_video.sql"),
    include_str!("../migrations/0004_playback.sql"),
];

/// A camera event recorded on this edge.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalEvent {
    /// The record sent to the vm.
    pub record: EventRecord,
    /// The box track, JSON (`[[t_ms, x0, y0, x1, y1], ...]`).
    pub track_json: String,
    /// The clip, relative to the data directory.
    pub clip_path: Option<String>,
    /// The snapshot, relative to the data directory.
    pub snapshot_path: Option<String>,
    /// Clip plus snapshot bytes.
    pub bytes: u64,
}

/// A camera's status row.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraStatusRow {
    /// The camera.
    pub camera_id: String,
    /// `streaming`, `connecting`, `stalled`, `failed`, `disabled`.
    pub state: String,
    /// Frames per second, thousandths.
    pub fps_milli: u32,
    /// Last error.
    pub last_error: Option<String>,
    /// When written, Unix ms.
    pub updated_at_ms: u64,
}

/// A sealed event waiting in the archive outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveItem {
    /// The event.
    pub event_id: String,
    /// The camera.
    pub camera_id: String,
    /// The signed manifest.
    pub manifest_json: Vec<u8>,
    /// Sealed bytes.
    pub total_bytes: u64,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value did not parse.
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
    /// Made by a newer version.
    #[error("the database is at version {0}, newer than this build")]
    TooNew(usize),
}

/// The edge's database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating and migrating) the database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::TooNew(version));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(Store { conn })
    }

    /// The configuration from enrollment, if enrolled.
    pub fn device_config(&self) -> Result<Option<DeviceConfig>, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM state WHERE key = 'device_config'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        v.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Records the configuration from enrollment.
    pub fn set_device_config(&self, c: &DeviceConfig) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn.execute(
            "INSERT INTO state (key, value) VALUES ('device_config', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [json],
        )?;
        Ok(())
    }

    /// Adds an event to the outbox (idempotent by event id).
    pub fn enqueue_event(&self, e: &EventRecord, now_ms: u64) -> Result<(), StoreError> {
        let json = serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn.execute(
            "INSERT OR IGNORE INTO event_outbox (event_id, record_json, created_at_ms) VALUES (?1, ?2, ?3)",
            params![e.event_id, json, now_ms as i64],
        )?;
        Ok(())
    }

    /// The oldest `limit` events not refused by the vm.
    pub fn pending_events(&self, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT record_json FROM event_outbox WHERE refused_reason IS NULL ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| r.get::<_, String>(0))?;
        rows.map(|r| {
            let j = r?;
            serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .collect()
    }

    /// Removes acked events.
    pub fn remove_events(&mut self, ids: &[String]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            let mut stmt = tx.prepare("DELETE FROM event_outbox WHERE event_id = ?1")?;
            for id in ids {
                n += stmt.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Counts a failed attempt for events.
    pub fn note_attempt(&mut self, ids: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt =
                tx.prepare("UPDATE event_outbox SET attempts = attempts + 1 WHERE event_id = ?1")?;
            for id in ids {
                stmt.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Parks events the vm refused (kept for inspection, no longer sent).
    pub fn mark_refused(&mut self, ids: &[String], reason: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt =
                tx.prepare("UPDATE event_outbox SET refused_reason = ?2 WHERE event_id = ?1")?;
            for id in ids {
                stmt.execute(params![id, reason])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Queues a sealed event and its event record, in one transaction.
    pub fn enqueue_archive(
        &mut self,
        record: &EventRecord,
        manifest_json: &[u8],
        total_bytes: u64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO archive_outbox (event_id, camera_id, manifest_json, total_bytes, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![record.event_id, record.camera_id, manifest_json, total_bytes as i64, now_ms as i64],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO event_outbox (event_id, record_json, created_at_ms) VALUES (?1, ?2, ?3)",
            params![record.event_id, json, now_ms as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The oldest `limit` sealed events due for a (re)try.
    pub fn due_archives(&self, now_ms: u64, limit: u32) -> Result<Vec<ArchiveItem>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT event_id, camera_id, manifest_json, total_bytes, attempts FROM archive_outbox
             WHERE refused_reason IS NULL AND next_attempt_ms <= ?1
             ORDER BY created_at_ms, event_id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms as i64, limit], |r| {
            Ok(ArchiveItem {
                event_id: r.get(0)?,
                camera_id: r.get(1)?,
                manifest_json: r.get(2)?,
                total_bytes: r.get::<_, i64>(3)? as u64,
                attempts: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes an archived event's row (its folder is removed after).
    pub fn remove_archive(&self, event_id: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM archive_outbox WHERE event_id = ?1", [event_id])?;
        Ok(())
    }

    /// Records a failed or refused-for-now attempt and when to try again.
    pub fn retry_archive_at(
        &self,
        event_id: &str,
        next_attempt_ms: u64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE archive_outbox SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3
             WHERE event_id = ?1",
            params![event_id, next_attempt_ms as i64, error],
        )?;
        Ok(())
    }

    /// Parks an event the vm refused for good; its sealed objects stay on the edge.
    pub fn park_archive(&self, event_id: &str, reason: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE archive_outbox SET refused_reason = ?2 WHERE event_id = ?1",
            params![event_id, reason],
        )?;
        Ok(())
    }

    /// Event ids with a row in the archive outbox (parked ones included).
    pub fn archive_event_ids(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT event_id FROM archive_outbox")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sealed events waiting (not parked): count and bytes.
    pub fn archive_backlog(&self) -> Result<(u64, u64), StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(total_bytes), 0) FROM archive_outbox WHERE refused_reason IS NULL",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Records a camera event and queues its record for the vm, in one transaction (after
    /// its files are durable).
    pub fn insert_event(&mut self, e: &LocalEvent, now_ms: u64) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(&e.record).map_err(|x| StoreError::Corrupt(x.to_string()))?;
        let r = &e.record;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO events (event_id, camera_id, started_at_ms, ended_at_ms, category,
                score_milli, track_json, clip_path, snapshot_path, clip_bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.event_id,
                r.camera_id,
                r.started_at_ms as i64,
                r.ended_at_ms as i64,
                r.category.as_str(),
                r.score_milli,
                e.track_json,
                e.clip_path,
                e.snapshot_path,
                e.bytes as i64
            ],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO event_outbox (event_id, record_json, created_at_ms) VALUES (?1, ?2, ?3)",
            params![r.event_id, json, now_ms as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Camera events, oldest first, optionally of one camera.
    pub fn events(&self, camera: Option<&str>) -> Result<Vec<LocalEvent>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT e.event_id, o.record_json, e.track_json, e.clip_path, e.snapshot_path,
                    e.clip_bytes, e.camera_id, e.started_at_ms, e.ended_at_ms, e.category,
                    e.score_milli
             FROM events e LEFT JOIN event_outbox o ON o.event_id = e.event_id
             WHERE ?1 IS NULL OR e.camera_id = ?1 ORDER BY e.started_at_ms, e.event_id",
        )?;
        let rows = stmt.query_map([camera], |r| {
            let category: String = r.get(9)?;
            Ok(LocalEvent {
                record: EventRecord {
                    event_id: r.get(0)?,
                    tenant_id: String::new(),
                    edge_id: String::new(),
                    camera_id: r.get(6)?,
                    started_at_ms: r.get::<_, i64>(7)? as u64,
                    ended_at_ms: r.get::<_, i64>(8)? as u64,
                    category: serde_json::from_value(serde_json::Value::String(category))
                        .unwrap_or(protocols::messages::Category::Other("unknown".into())),
                    score_milli: r.get(10)?,
                    clip_id: None,
                    snapshot_id: None,
                },
                track_json: r.get(2)?,
                clip_path: r.get(3)?,
                snapshot_path: r.get(4)?,
                bytes: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The clip of an event: its path relative to the data directory, if the event exists
    /// and has one.
    pub fn clip_path(&self, event_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT clip_path FROM events WHERE event_id = ?1",
                [event_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Spends a playback token's nonce: true if it was unused (and is now recorded until
    /// `expires_at_ms`), false if already spent. Prunes nonces whose tokens have expired.
    pub fn spend_nonce(
        &mut self,
        nonce: &str,
        expires_at_ms: u64,
        event_id: &str,
        owner: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM playback_nonces WHERE expires_at_ms < ?1",
            [now_ms as i64],
        )?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO playback_nonces (nonce, expires_at_ms, event_id, owner, used_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![nonce, expires_at_ms as i64, event_id, owner, now_ms as i64],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Notes that an event was sealed for the archive.
    pub fn mark_archived(&self, event_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE events SET archived = 1 WHERE event_id = ?1",
            [event_id],
        )?;
        Ok(())
    }

    /// Deletes an event's row (its files are deleted after).
    pub fn delete_event(&self, event_id: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM events WHERE event_id = ?1", [event_id])?;
        Ok(())
    }

    /// Writes camera statuses (replacing the whole table).
    pub fn set_camera_statuses(&mut self, rows: &[CameraStatusRow]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM camera_status", [])?;
        for c in rows {
            tx.execute(
                "INSERT INTO camera_status (camera_id, state, fps_milli, last_error, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    c.camera_id,
                    c.state,
                    c.fps_milli,
                    c.last_error,
                    c.updated_at_ms as i64
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Camera statuses the agent last wrote.
    pub fn camera_statuses(&self) -> Result<Vec<CameraStatusRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT camera_id, state, fps_milli, last_error, updated_at_ms FROM camera_status
             ORDER BY camera_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(CameraStatusRow {
                camera_id: r.get(0)?,
                state: r.get(1)?,
                fps_milli: r.get(2)?,
                last_error: r.get(3)?,
                updated_at_ms: r.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Events waiting for an ack (not counting refused ones).
    pub fn event_backlog(&self) -> Result<u64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM event_outbox WHERE refused_reason IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::messages::Category;

    fn record(id: &str) -> EventRecord {
        EventRecord {
            event_id: id.into(),
            tenant_id: "t".into(),
            edge_id: "e".into(),
            camera_id: "c".into(),
            started_at_ms: 1,
            ended_at_ms: 2,
            category: Category::Person,
            score_milli: 900,
            clip_id: None,
            snapshot_id: None,
        }
    }

    #[test]
    fn outbox_survives_reopen_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.sqlite");
        {
            let s = Store::open(&p).unwrap();
            for id in ["a", "b", "c", "a"] {
                s.enqueue_event(&record(id), 1).unwrap();
            }
        }
        let mut s = Store::open(&p).unwrap();
        let ids: Vec<_> = s
            .pending_events(10)
            .unwrap()
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(s.remove_events(&["a".into()]).unwrap(), 1);
        s.mark_refused(&["b".into()], "bad").unwrap();
        assert_eq!(s.event_backlog().unwrap(), 1);
        assert_eq!(s.pending_events(10).unwrap()[0].event_id, "c");
    }

    #[test]
    fn nonces_are_spent_once_across_reopen_and_pruned_after_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.sqlite");
        {
            let mut s = Store::open(&p).unwrap();
            assert!(s.spend_nonce("n1", 1000, "e", "o", 10).unwrap());
            assert!(!s.spend_nonce("n1", 1000, "e", "o", 11).unwrap());
        }
        let mut s = Store::open(&p).unwrap();
        assert!(!s.spend_nonce("n1", 1000, "e", "o", 12).unwrap());
        // After n1's expiry it is pruned (its token is refused as expired by then anyway).
        assert!(s.spend_nonce("n2", 5000, "e", "o", 2000).unwrap());
        let left: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM playback_nonces", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1);
    }

    #[test]
    fn clip_path_of_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("edge.sqlite")).unwrap();
        let e = LocalEvent {
            record: record("ev"),
            track_json: "[]".into(),
            clip_path: Some("clips/ev.mp4".into()),
            snapshot_path: None,
            bytes: 1,
        };
        s.insert_event(&e, 1).unwrap();
        assert_eq!(s.clip_path("ev").unwrap().as_deref(), Some("clips/ev.mp4"));
        assert_eq!(s.clip_path("nope").unwrap(), None);
    }
}
