//! The thumbnail outbox (table `thumbnail_outbox`): events whose sealed thumbnail the vm has
//! not stored yet, with the folder it is in, the signed manifest naming it, attempts and the
//! time of the next try; a row the vm refused for good stays, parked with the reason. Rows
//! are added with their event ([`Store::insert_event`]).

use guardian_sqlite::rusqlite::params;

use super::{Queue, Store, StoreError};

/// An event's thumbnail waiting for the vm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailItem {
    /// The event.
    pub event_id: String,
    /// The folder of its sealed objects, relative to the data directory.
    pub objects_dir: String,
    /// The signed manifest.
    pub manifest_json: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
}

impl Store {
    /// The oldest `limit` thumbnails due for a (re)try at `now_ms`.
    pub fn due_thumbnails(
        &self,
        now_ms: u64,
        limit: u32,
    ) -> Result<Vec<ThumbnailItem>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT event_id, objects_dir, manifest_json, attempts FROM thumbnail_outbox
                 WHERE refused_reason IS NULL AND next_attempt_ms <= ?1
                 ORDER BY created_at_ms, event_id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_ms as i64, limit], |r| {
                Ok(ThumbnailItem {
                    event_id: r.get(0)?,
                    objects_dir: r.get(1)?,
                    manifest_json: r.get(2)?,
                    attempts: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Removes a row: the vm stored the thumbnail (or its event is gone).
    pub fn remove_thumbnail(&self, event_id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM thumbnail_outbox WHERE event_id = ?1",
                [event_id],
            )?;
            Ok(())
        })
    }

    /// Records a failed or refused-for-now attempt and when to try again.
    pub fn retry_thumbnail_at(
        &self,
        event_id: &str,
        next_attempt_ms: u64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.retry_at(Queue::Thumbnail, event_id, next_attempt_ms, error)
    }

    /// Parks a thumbnail the vm refused for good.
    pub fn park_thumbnail(&self, event_id: &str, reason: &str) -> Result<(), StoreError> {
        self.park(Queue::Thumbnail, event_id, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalEvent;
    use crate::store::outbox::tests::record;

    fn event(id: &str, thumbnail: bool) -> LocalEvent {
        LocalEvent {
            record: record(id),
            track_json: "[]".into(),
            clip_path: Some(format!("clips/cam/{id}/clip.mp4.age")),
            snapshot_path: None,
            thumbnail_path: thumbnail.then(|| format!("clips/cam/{id}/thumbnail.jpg.age")),
            objects_dir: Some(format!("clips/cam/{id}")),
            manifest_json: Some(b"{}".to_vec()),
            bytes: 10,
        }
    }

    #[test]
    fn events_with_a_thumbnail_queue_it_until_stored() {
        let mut s = Store::open_in_memory().unwrap();
        s.insert_event(&event("e1", true), false, 5).unwrap();
        s.insert_event(&event("e2", false), false, 6).unwrap();
        s.insert_event(&event("e3", true), false, 7).unwrap();
        let due = s.due_thumbnails(0, 10).unwrap();
        let ids: Vec<&str> = due.iter().map(|i| i.event_id.as_str()).collect();
        assert_eq!(ids, ["e1", "e3"]);
        assert_eq!(due[0].objects_dir, "clips/cam/e1");
        assert_eq!(due[0].manifest_json, b"{}");

        s.retry_thumbnail_at("e1", 1_000, "offline").unwrap();
        let due = s.due_thumbnails(999, 10).unwrap();
        assert_eq!(due.len(), 1, "e1 waits for its retry time");
        let due = s.due_thumbnails(1_000, 10).unwrap();
        assert_eq!(due[0].attempts, 1);

        s.park_thumbnail("e3", "mismatch").unwrap();
        s.remove_thumbnail("e1").unwrap();
        assert!(s.due_thumbnails(u64::MAX >> 1, 10).unwrap().is_empty());
    }
}
