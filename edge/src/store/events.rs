//! Local camera events (table `events`): what a camera recorded on this edge, with the folder
//! of its sealed objects and its signed manifest. Inserting one also queues its record in the
//! event outbox, its thumbnail in the thumbnail outbox, and the event in the archive outbox
//! when the policy archives it, in one transaction.

use guardian_sqlite::rusqlite::{OptionalExtension, params};
use protocols::messages::events::EventRecord;

use super::{Store, StoreError, to_json};

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
    /// The thumbnail, relative to the data directory.
    pub thumbnail_path: Option<String>,
    /// The folder of the sealed objects (`clips/<camera>/<event_id>`), relative to the data
    /// directory; retention deletes it whole.
    pub objects_dir: Option<String>,
    /// The signed manifest of the sealed objects.
    pub manifest_json: Option<Vec<u8>>,
    /// Bytes on disk.
    pub bytes: u64,
}

/// What playback needs of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playable {
    /// The sealed clip, relative to the data directory.
    pub clip_path: String,
    /// The signed manifest naming it.
    pub manifest_json: Option<Vec<u8>>,
}

/// What [`Store::review`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewQuery {
    /// Only this camera's events.
    pub camera: Option<String>,
    /// Only this category's.
    pub label: Option<String>,
    /// Started before this, Unix ms.
    pub before_ms: u64,
    /// Started at or after this, Unix ms.
    pub after_ms: u64,
    /// Only these cameras' (a viewer's); `None` for all.
    pub allowed: Option<Vec<String>>,
    /// At most this many.
    pub limit: u32,
}

/// The columns [`local_event`] reads, in its order.
const COLUMNS: &str = "e.event_id, e.record_json, e.track_json, e.clip_path, e.snapshot_path,
    e.clip_bytes, e.camera_id, e.started_at_ms, e.ended_at_ms, e.category, e.score_milli,
    e.thumbnail_path, e.objects_dir, e.manifest_json";

/// An `events` row selected as [`COLUMNS`].
fn local_event(
    r: &guardian_sqlite::rusqlite::Row<'_>,
) -> guardian_sqlite::rusqlite::Result<LocalEvent> {
    let category: String = r.get(9)?;
    let kept: Option<EventRecord> = r
        .get::<_, Option<String>>(1)?
        .and_then(|j| serde_json::from_str(&j).ok());
    Ok(LocalEvent {
        record: kept.unwrap_or(EventRecord {
            event_id: r.get(0)?,
            tenant_id: String::new(),
            edge_id: String::new(),
            camera_id: r.get(6)?,
            started_at_ms: r.get::<_, i64>(7)? as u64,
            ended_at_ms: r.get::<_, i64>(8)? as u64,
            category: serde_json::from_value(serde_json::Value::String(category))
                .unwrap_or(protocols::messages::Category::Other("unknown".into())),
            score_milli: r.get(10)?,
            clip_cid: None,
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            ..Default::default()
        }),
        track_json: r.get(2)?,
        clip_path: r.get(3)?,
        snapshot_path: r.get(4)?,
        thumbnail_path: r.get(11)?,
        objects_dir: r.get(12)?,
        manifest_json: r.get(13)?,
        bytes: r.get::<_, i64>(5)? as u64,
    })
}

impl Store {
    /// Records a camera event and queues its record for the vm, and for the archive when
    /// `archive` (its manifest and objects folder then must be set), in one transaction
    /// (after its files are durable).
    pub fn insert_event(
        &mut self,
        e: &LocalEvent,
        archive: bool,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let json = to_json(&e.record)?;
        let r = &e.record;
        if archive && (e.manifest_json.is_none() || e.objects_dir.is_none()) {
            return Err(StoreError::Invalid(
                "an archived event needs its manifest and folder".into(),
            ));
        }
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO events (event_id, camera_id, started_at_ms, ended_at_ms, category,
                    score_milli, track_json, clip_path, snapshot_path, clip_bytes, thumbnail_path,
                    objects_dir, manifest_json, record_json, archived)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
                    e.bytes as i64,
                    e.thumbnail_path,
                    e.objects_dir,
                    e.manifest_json,
                    json,
                    archive,
                ],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO event_outbox (event_id, record_json, created_at_ms) VALUES (?1, ?2, ?3)",
                params![r.event_id, json, now_ms as i64],
            )?;
            if let (Some(_), Some(dir), Some(manifest)) =
                (&e.thumbnail_path, &e.objects_dir, &e.manifest_json)
            {
                tx.execute(
                    "INSERT OR IGNORE INTO thumbnail_outbox (event_id, objects_dir, manifest_json,
                        created_at_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![r.event_id, dir, manifest, now_ms as i64],
                )?;
            }
            if archive {
                tx.execute(
                    "INSERT INTO archive_outbox (event_id, camera_id, manifest_json, total_bytes,
                        created_at_ms, objects_dir)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        r.event_id,
                        r.camera_id,
                        e.manifest_json,
                        e.bytes as i64,
                        now_ms as i64,
                        e.objects_dir
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Camera events, oldest first, optionally of one camera.
    pub fn events(&self, camera: Option<&str>) -> Result<Vec<LocalEvent>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT e.event_id, e.record_json, e.track_json, e.clip_path, e.snapshot_path,
                        e.clip_bytes, e.camera_id, e.started_at_ms, e.ended_at_ms, e.category,
                        e.score_milli, e.thumbnail_path, e.objects_dir, e.manifest_json
                 FROM events e
                 WHERE ?1 IS NULL OR e.camera_id = ?1 ORDER BY e.started_at_ms, e.event_id",
            )?;
            let rows = stmt.query_map([camera], local_event)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Events newest first for the LAN web app's review: started before `before_ms` and at or
    /// after `after_ms`, optionally of one camera and one category, only of `allowed` cameras
    /// when given; at most `limit`.
    pub fn review(&self, q: &ReviewQuery) -> Result<Vec<LocalEvent>, StoreError> {
        let allowed = q.allowed.as_ref().map(super::to_json).transpose()?;
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM events e
                 WHERE (?1 IS NULL OR e.camera_id = ?1) AND (?2 IS NULL OR e.category = ?2)
                   AND e.started_at_ms < ?3 AND e.started_at_ms >= ?4
                   AND (?5 IS NULL OR e.camera_id IN (SELECT value FROM json_each(?5)))
                 ORDER BY e.started_at_ms DESC, e.event_id DESC LIMIT ?6"
            ))?;
            let rows = stmt.query_map(
                params![
                    q.camera,
                    q.label,
                    q.before_ms.min(i64::MAX as u64) as i64,
                    q.after_ms.min(i64::MAX as u64) as i64,
                    allowed,
                    q.limit
                ],
                local_event,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// One camera event by id.
    pub fn event(&self, event_id: &str) -> Result<Option<LocalEvent>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM events e WHERE e.event_id = ?1"),
                [event_id],
                local_event,
            )
            .optional()?)
        })
    }

    /// The clip of an event and its manifest, if the event exists and has a clip.
    pub fn playable(&self, event_id: &str) -> Result<Option<Playable>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT clip_path, manifest_json FROM events WHERE event_id = ?1",
                [event_id],
                |r| {
                    Ok(r.get::<_, Option<String>>(0)?.map(|clip_path| Playable {
                        clip_path,
                        manifest_json: r.get(1).unwrap_or(None),
                    }))
                },
            )
            .optional()?
            .flatten())
        })
    }

    /// Whether the event has a row.
    pub fn has_event(&self, event_id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM events WHERE event_id = ?1",
                [event_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }

    /// Notes that an event was sealed for the archive.
    pub fn mark_archived(&self, event_id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE events SET archived = 1 WHERE event_id = ?1",
                [event_id],
            )?;
            Ok(())
        })
    }

    /// Deletes an event's row (its files are deleted after).
    pub fn delete_event(&self, event_id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM events WHERE event_id = ?1", [event_id])?;
            tx.execute(
                "DELETE FROM thumbnail_outbox WHERE event_id = ?1",
                [event_id],
            )?;
            tx.commit()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::tests::record;

    fn event(id: &str, camera: &str, started: u64) -> LocalEvent {
        let mut r = record(id);
        r.camera_id = camera.into();
        r.started_at_ms = started;
        LocalEvent {
            record: r,
            track_json: "[]".into(),
            clip_path: Some(format!("clips/{id}.mp4")),
            snapshot_path: None,
            thumbnail_path: None,
            objects_dir: None,
            manifest_json: Some(b"{}".to_vec()),
            bytes: 1,
        }
    }

    #[test]
    fn clip_path_of_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("edge.sqlite")).unwrap();
        s.insert_event(&event("ev", "c", 1), false, 1).unwrap();
        let p = s.playable("ev").unwrap().unwrap();
        assert_eq!(p.clip_path, "clips/ev.mp4");
        assert_eq!(p.manifest_json.as_deref(), Some(&b"{}"[..]));
        assert_eq!(s.playable("nope").unwrap(), None);
        // Archiving needs the folder; with it, the event joins the archive outbox.
        assert!(s.insert_event(&event("ev2", "c", 1), true, 1).is_err());
        let mut e = event("ev3", "c", 1);
        e.objects_dir = Some("clips/c/ev3".into());
        s.insert_event(&e, true, 1).unwrap();
        assert_eq!(s.due_archives(1, 10).unwrap()[0].objects_dir, "clips/c/ev3");
    }

    #[test]
    fn review_lists_newest_first_within_the_filters() {
        let mut s = Store::open_in_memory().unwrap();
        for (id, cam, t) in [("a", "porch", 10), ("b", "yard", 20), ("c", "porch", 30)] {
            s.insert_event(&event(id, cam, t), false, 1).unwrap();
        }
        let q = ReviewQuery {
            camera: None,
            label: None,
            before_ms: u64::MAX,
            after_ms: 0,
            allowed: None,
            limit: 10,
        };
        let ids = |q: &ReviewQuery| {
            s.review(q)
                .unwrap()
                .into_iter()
                .map(|e| e.record.event_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&q), ["c", "b", "a"]);
        assert_eq!(
            ids(&ReviewQuery {
                limit: 2,
                ..q.clone()
            }),
            ["c", "b"]
        );
        assert_eq!(
            ids(&ReviewQuery {
                before_ms: 30,
                ..q.clone()
            }),
            ["b", "a"]
        );
        assert_eq!(
            ids(&ReviewQuery {
                after_ms: 20,
                ..q.clone()
            }),
            ["c", "b"]
        );
        assert_eq!(
            ids(&ReviewQuery {
                camera: Some("porch".into()),
                ..q.clone()
            }),
            ["c", "a"]
        );
        assert_eq!(
            ids(&ReviewQuery {
                allowed: Some(vec!["yard".into()]),
                ..q.clone()
            }),
            ["b"]
        );
        assert!(
            ids(&ReviewQuery {
                allowed: Some(vec![]),
                ..q.clone()
            })
            .is_empty()
        );
        let label = record("x").category.as_str().to_owned();
        assert_eq!(
            ids(&ReviewQuery {
                label: Some(label),
                ..q.clone()
            })
            .len(),
            3
        );
        assert!(
            ids(&ReviewQuery {
                label: Some("boat".into()),
                ..q.clone()
            })
            .is_empty()
        );
        assert_eq!(s.event("b").unwrap().unwrap().record.camera_id, "yard");
        assert_eq!(s.event("nope").unwrap(), None);
    }

    #[test]
    fn events_are_listed_by_start_per_camera_and_deleted_alone() {
        let mut s = Store::open_in_memory().unwrap();
        s.insert_event(&event("late", "porch", 20), false, 1)
            .unwrap();
        s.insert_event(&event("early", "porch", 10), false, 1)
            .unwrap();
        s.insert_event(&event("yard", "yard", 15), false, 1)
            .unwrap();
        let ids = |v: Vec<LocalEvent>| v.into_iter().map(|e| e.record.event_id).collect::<Vec<_>>();
        assert_eq!(ids(s.events(None).unwrap()), ["early", "yard", "late"]);
        assert_eq!(ids(s.events(Some("porch")).unwrap()), ["early", "late"]);
        let listed = &s.events(Some("yard")).unwrap()[0];
        assert_eq!(listed.record.category, record("x").category);
        assert_eq!(listed.clip_path.as_deref(), Some("clips/yard.mp4"));
        // Each is also queued for the vm.
        assert_eq!(s.event_backlog().unwrap(), 3);
        s.delete_event("early").unwrap();
        assert_eq!(ids(s.events(Some("porch")).unwrap()), ["late"]);
        assert_eq!(
            s.event_backlog().unwrap(),
            3,
            "the outbox row is not the event row"
        );
    }
}
