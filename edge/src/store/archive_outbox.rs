//! The archive outbox (table `archive_outbox`): sealed events waiting for the vm's archive,
//! with their signed manifest, attempts and the time of the next try; a row the vm refused
//! for good stays, parked with the reason. The sealed objects are in `archive/<event_id>/`
//! ([`crate::archive`]).

use std::collections::HashSet;

use guardian_sqlite::rusqlite::params;
use protocols::messages::events::EventRecord;

use super::{Queue, Store, StoreError, to_json};

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
    /// The folder of its sealed objects, relative to the data directory.
    pub objects_dir: String,
}

impl Store {
    /// Queues a sealed event (objects in `objects_dir`) and its event record, in one
    /// transaction. Camera events are queued with [`Store::insert_event`].
    pub fn enqueue_archive(
        &mut self,
        record: &EventRecord,
        manifest_json: &[u8],
        total_bytes: u64,
        objects_dir: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let json = to_json(record)?;
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO archive_outbox (event_id, camera_id, manifest_json, total_bytes, created_at_ms, objects_dir)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![record.event_id, record.camera_id, manifest_json, total_bytes as i64, now_ms as i64, objects_dir],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO event_outbox (event_id, record_json, created_at_ms) VALUES (?1, ?2, ?3)",
                params![record.event_id, json, now_ms as i64],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The oldest `limit` sealed events due for a (re)try.
    pub fn due_archives(&self, now_ms: u64, limit: u32) -> Result<Vec<ArchiveItem>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT event_id, camera_id, manifest_json, total_bytes, attempts, objects_dir FROM archive_outbox
                 WHERE refused_reason IS NULL AND next_attempt_ms <= ?1
                 ORDER BY created_at_ms, event_id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_ms as i64, limit], |r| {
                let event_id: String = r.get(0)?;
                let objects_dir: Option<String> = r.get(5)?;
                Ok(ArchiveItem {
                    objects_dir: objects_dir.unwrap_or_else(|| format!("archive/{event_id}")),
                    event_id,
                    camera_id: r.get(1)?,
                    manifest_json: r.get(2)?,
                    total_bytes: r.get::<_, i64>(3)? as u64,
                    attempts: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Removes an archived event's row (its folder stays: it is the local copy).
    pub fn remove_archive(&self, event_id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM archive_outbox WHERE event_id = ?1", [event_id])?;
            Ok(())
        })
    }

    /// Records a failed or refused-for-now attempt and when to try again.
    pub fn retry_archive_at(
        &self,
        event_id: &str,
        next_attempt_ms: u64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.retry_at(Queue::Archive, event_id, next_attempt_ms, error)
    }

    /// Parks an event the vm refused for good; its sealed objects stay on the edge.
    pub fn park_archive(&self, event_id: &str, reason: &str) -> Result<(), StoreError> {
        self.park(Queue::Archive, event_id, reason)
    }

    /// Event ids with a row in the archive outbox (parked ones included).
    pub fn archive_event_ids(&self) -> Result<HashSet<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT event_id FROM archive_outbox")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Sealed events waiting (not parked): count and bytes.
    pub fn archive_backlog(&self) -> Result<(u64, u64), StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(total_bytes), 0) FROM archive_outbox WHERE refused_reason IS NULL",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::tests::record;

    #[test]
    fn due_items_wait_for_their_retry_time_and_parked_ones_leave_the_backlog() {
        let mut s = Store::open_in_memory().unwrap();
        s.enqueue_archive(&record("a"), b"{}", 100, "clips/c/x", 10)
            .unwrap();
        s.enqueue_archive(&record("b"), b"{}", 50, "clips/c/x", 20)
            .unwrap();
        // The event record is queued with the sealed event.
        assert_eq!(s.event_backlog().unwrap(), 2);
        assert_eq!(s.archive_backlog().unwrap(), (2, 150));
        let due: Vec<_> = s.due_archives(0, 10).unwrap();
        assert_eq!(
            due.iter().map(|i| i.event_id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );

        s.retry_archive_at("a", 1_000, "vm busy").unwrap();
        let due = s.due_archives(999, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].event_id, "b");
        let due = s.due_archives(1_000, 10).unwrap();
        assert_eq!(due[0].event_id, "a");
        assert_eq!(due[0].attempts, 1);

        assert_eq!(s.parked().unwrap(), (0, 0, 0));
        s.park_archive("b", "quota").unwrap();
        assert_eq!(s.parked().unwrap(), (0, 1, 0), "reported in telemetry");
        assert_eq!(s.archive_backlog().unwrap(), (1, 100));
        assert_eq!(s.due_archives(u64::MAX / 4, 10).unwrap().len(), 1);
        assert_eq!(s.archive_event_ids().unwrap().len(), 2, "parked rows stay");
        s.remove_archive("a").unwrap();
        assert_eq!(
            s.archive_event_ids().unwrap(),
            HashSet::from(["b".to_owned()])
        );
    }
}
