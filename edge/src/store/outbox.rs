//! The event outbox (table `event_outbox`): event records waiting for the vm's ack, oldest
//! first, one row per event holding its latest revision (an open event's record is replaced
//! by its update and then its closed record). A row leaves only on the ack of the revision it
//! holds; a row the vm refused for good stays, parked with the reason, and is no longer sent.

use guardian_sqlite::rusqlite::params;
use protocols::messages::events::EventRecord;

use super::{Store, StoreError, from_json, to_json};

impl Store {
    /// Adds an event's record to the outbox, or replaces the one waiting there when this
    /// revision is higher (a parked row stays parked: the vm refused that event for good).
    pub fn enqueue_event(&self, e: &EventRecord, now_ms: u64) -> Result<(), StoreError> {
        let json = to_json(e)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO event_outbox (event_id, record_json, created_at_ms, revision)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(event_id) DO UPDATE SET record_json = excluded.record_json,
                     revision = excluded.revision
                 WHERE excluded.revision > event_outbox.revision",
                params![e.event_id, json, now_ms as i64, e.revision],
            )?;
            Ok(())
        })
    }

    /// The oldest `limit` events not refused by the vm.
    pub fn pending_events(&self, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let rows: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT record_json FROM event_outbox WHERE refused_reason IS NULL ORDER BY seq LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        rows.iter().map(|j| from_json(j)).collect()
    }

    /// Removes acked events, each only if it still holds the revision that was sent (a newer
    /// one waits for its own send); returns how many rows went.
    pub fn remove_events(&mut self, sent: &[(String, u32)]) -> Result<usize, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut stmt =
                    tx.prepare("DELETE FROM event_outbox WHERE event_id = ?1 AND revision <= ?2")?;
                for (id, revision) in sent {
                    n += stmt.execute(params![id, revision])?;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    /// Counts a failed attempt for events.
    pub fn note_attempt(&mut self, ids: &[String]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare(
                    "UPDATE event_outbox SET attempts = attempts + 1 WHERE event_id = ?1",
                )?;
                for id in ids {
                    stmt.execute([id])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Parks events the vm refused (kept for inspection, no longer sent).
    pub fn mark_refused(&mut self, ids: &[String], reason: &str) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt =
                    tx.prepare("UPDATE event_outbox SET refused_reason = ?2 WHERE event_id = ?1")?;
                for id in ids {
                    stmt.execute(params![id, reason])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Events waiting for an ack (not counting refused ones).
    pub fn event_backlog(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM event_outbox WHERE refused_reason IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protocols::messages::Category;

    pub(crate) fn record(id: &str) -> EventRecord {
        EventRecord {
            event_id: id.into(),
            tenant_id: "t".into(),
            edge_id: "e".into(),
            camera_id: "c".into(),
            started_at_ms: 1,
            ended_at_ms: 2,
            category: Category::Person,
            score_milli: 900,
            clip_cid: None,
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            ..Default::default()
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
        assert_eq!(s.remove_events(&[("a".into(), 0)]).unwrap(), 1);
        s.mark_refused(&["b".into()], "bad").unwrap();
        assert_eq!(s.event_backlog().unwrap(), 1);
        assert_eq!(s.pending_events(10).unwrap()[0].event_id, "c");
    }

    #[test]
    fn a_newer_revision_replaces_the_waiting_one_and_survives_the_ack_of_the_older() {
        let mut s = Store::open_in_memory().unwrap();
        let rev = |r: u32, score: u16| {
            let mut e = record("a");
            e.revision = r;
            e.score_milli = score;
            e
        };
        s.enqueue_event(&rev(1, 600), 1).unwrap();
        s.enqueue_event(&record("b"), 1).unwrap();
        let sent = s.pending_events(10).unwrap();
        assert_eq!(sent[0].revision, 1);
        // While revision 1 is on its way, the event closes.
        s.enqueue_event(&rev(3, 900), 2).unwrap();
        s.enqueue_event(&rev(2, 700), 2).unwrap(); // an older one arriving late changes nothing
        assert_eq!(
            s.remove_events(&[("a".into(), 1), ("b".into(), 0)])
                .unwrap(),
            1
        );
        let left = s.pending_events(10).unwrap();
        assert_eq!(
            (left.len(), left[0].revision, left[0].score_milli),
            (1, 3, 900)
        );
        assert_eq!(s.remove_events(&[("a".into(), 3)]).unwrap(), 1);
        assert_eq!(s.event_backlog().unwrap(), 0);
    }

    #[test]
    fn attempts_are_counted_and_a_refusal_keeps_its_reason() {
        let mut s = Store::open_in_memory().unwrap();
        s.enqueue_event(&record("a"), 1).unwrap();
        s.note_attempt(&["a".into()]).unwrap();
        s.note_attempt(&["a".into()]).unwrap();
        s.mark_refused(&["a".into()], "not enrolled").unwrap();
        let (attempts, reason): (u32, String) = s
            .with(|c| {
                Ok(c.query_row(
                    "SELECT attempts, refused_reason FROM event_outbox WHERE event_id = 'a'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .unwrap();
        assert_eq!((attempts, reason.as_str()), (2, "not enrolled"));
        assert!(s.pending_events(10).unwrap().is_empty());
    }
}
