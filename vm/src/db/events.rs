//! The events cache: records from edges, one row per event holding its highest revision
//! (an open event's record is replaced by its updates and its closed record), listed by time.

use protocols::messages::events::{EventRecord, Verification};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{DbError, u};

/// A cached event, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    /// The event id.
    pub event_id: String,
    /// The edge.
    pub edge_peer_id: String,
    /// The camera.
    pub camera_id: String,
    /// Start, Unix ms.
    pub started_at_ms: u64,
    /// End, Unix ms.
    pub ended_at_ms: u64,
    /// Category.
    pub category: String,
    /// Best score, thousandths.
    pub score_milli: u16,
    /// CID of the sealed clip.
    pub clip_cid: Option<String>,
    /// CID of the sealed snapshot.
    pub snapshot_cid: Option<String>,
    /// CID of the sealed thumbnail.
    pub thumbnail_cid: Option<String>,
    /// The clip ends early (recovered after the edge stopped mid-event).
    pub truncated: bool,
    /// When the vm stored it, Unix ms.
    pub received_at_ms: u64,
    /// `open` while it goes on, `closed` at its end.
    pub state: String,
    /// The revision held (0 from edges that send closed records only).
    pub revision: u32,
    /// When the edge confirmed the object, Unix ms (0: not said).
    pub confirmed_at_ms: u64,
    /// Named zones the object was in.
    pub zones: Vec<String>,
    /// The second model's verdict on the edge.
    pub verification: Option<Verification>,
    /// When an owner marked it reviewed, Unix ms (`None`: not reviewed).
    pub reviewed_at_ms: Option<u64>,
}

/// A record that changed the events cache: a new event, or a higher revision of one.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The record now held.
    pub record: EventRecord,
    /// The revision held before (`None`: the event is new).
    pub previous: Option<u32>,
}

/// Stores events by event id, each only if it is new or a higher revision than the one held
/// (a resent batch changes nothing); returns the records that changed the cache.
pub fn insert_events(
    c: &mut Connection,
    edge_peer_id: &str,
    events: &[EventRecord],
    now_ms: u64,
) -> Result<Vec<StoredEvent>, DbError> {
    let tx = c.transaction()?;
    let stored = insert_events_in(&tx, edge_peer_id, events, now_ms)?;
    tx.commit()?;
    Ok(stored)
}

/// [`insert_events`] inside the caller's transaction (which then queues their alerts).
pub fn insert_events_in(
    tx: &Connection,
    edge_peer_id: &str,
    events: &[EventRecord],
    now_ms: u64,
) -> Result<Vec<StoredEvent>, DbError> {
    let mut stored = Vec::new();
    {
        let mut held = tx.prepare("SELECT revision FROM events WHERE event_id = ?1")?;
        let mut stmt = tx.prepare(
            "INSERT INTO events (event_id, edge_peer_id, camera_id, started_at_ms, ended_at_ms,
                 category, score_milli, clip_cid, snapshot_cid, thumbnail_cid, truncated,
                 received_at_ms, state, revision, confirmed_at_ms, zones_json, verification_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT(event_id) DO UPDATE SET
                 ended_at_ms = excluded.ended_at_ms, category = excluded.category,
                 score_milli = excluded.score_milli, clip_cid = excluded.clip_cid,
                 snapshot_cid = excluded.snapshot_cid, thumbnail_cid = excluded.thumbnail_cid,
                 truncated = excluded.truncated, state = excluded.state,
                 revision = excluded.revision, confirmed_at_ms = excluded.confirmed_at_ms,
                 zones_json = excluded.zones_json, verification_json = excluded.verification_json
             WHERE excluded.revision > events.revision",
        )?;
        for e in events {
            let previous: Option<u32> = held
                .query_row([&e.event_id], |r| r.get::<_, i64>(0))
                .optional()?
                .map(|r| r as u32);
            let zones =
                serde_json::to_string(&e.zones).map_err(|x| DbError::Corrupt(x.to_string()))?;
            let verification = e
                .verification
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|x| DbError::Corrupt(x.to_string()))?;
            let changed = stmt.execute(params![
                e.event_id,
                edge_peer_id,
                e.camera_id,
                e.started_at_ms as i64,
                e.ended_at_ms as i64,
                e.category.as_str(),
                e.score_milli,
                e.clip_cid,
                e.snapshot_cid,
                e.thumbnail_cid,
                e.truncated,
                now_ms as i64,
                e.state.as_str(),
                e.revision,
                e.confirmed_at_ms as i64,
                zones,
                verification,
            ])?;
            if changed > 0 {
                stored.push(StoredEvent {
                    record: e.clone(),
                    previous,
                });
            }
        }
    }
    tx.execute(
        "UPDATE devices SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE peer_id = ?1",
        params![edge_peer_id, now_ms as i64],
    )?;
    Ok(stored)
}

/// Events from `since_ms` on (by start time), optionally of one camera, oldest first.
pub fn events(
    c: &Connection,
    camera: Option<&str>,
    since_ms: u64,
    limit: u32,
) -> Result<Vec<EventRow>, DbError> {
    let mut stmt = c.prepare(
        "SELECT event_id, edge_peer_id, camera_id, started_at_ms, ended_at_ms, category, score_milli,
                clip_cid, snapshot_cid, thumbnail_cid, truncated, received_at_ms, state, revision,
                confirmed_at_ms, zones_json, verification_json, reviewed_at_ms
         FROM events
         WHERE started_at_ms >= ?1 AND (?2 IS NULL OR camera_id = ?2)
         ORDER BY started_at_ms, event_id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![since_ms as i64, camera, limit], event_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What the review timeline asks for (see `GET /api/v1/review`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFilter {
    /// Only this camera.
    pub camera: Option<String>,
    /// Only this category.
    pub label: Option<String>,
    /// Only reviewed (`true`) or not reviewed (`false`) events.
    pub reviewed: Option<bool>,
    /// Started before this, Unix ms (exclusive).
    pub before: Option<u64>,
    /// Started at or after this, Unix ms.
    pub after: Option<u64>,
    /// The cameras the asker may see (`None`: all).
    pub allowed: Option<Vec<String>>,
}

/// Events for the review timeline, newest first, at most `limit`.
pub fn review(c: &Connection, f: &ReviewFilter, limit: u32) -> Result<Vec<EventRow>, DbError> {
    let mut sql = String::from(
        "SELECT event_id, edge_peer_id, camera_id, started_at_ms, ended_at_ms, category, score_milli,
                clip_cid, snapshot_cid, thumbnail_cid, truncated, received_at_ms, state, revision,
                confirmed_at_ms, zones_json, verification_json, reviewed_at_ms
         FROM events WHERE 1 = 1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let (where_sql, where_args) = review_where(f);
    sql.push_str(&where_sql);
    args.extend(where_args);
    sql.push_str(" ORDER BY started_at_ms DESC, event_id DESC LIMIT ?");
    args.push(i64::from(limit).into());
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), event_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Start times and whether reviewed, of every event the filter (without its time bounds)
/// lets through, newest first, at most `cap`: the calendar's input.
pub fn review_times(
    c: &Connection,
    f: &ReviewFilter,
    cap: u32,
) -> Result<Vec<(u64, bool)>, DbError> {
    let mut sql =
        String::from("SELECT started_at_ms, reviewed_at_ms IS NOT NULL FROM events WHERE 1 = 1");
    let (where_sql, mut args) = review_where(f);
    sql.push_str(&where_sql);
    sql.push_str(" ORDER BY started_at_ms DESC LIMIT ?");
    args.push(i64::from(cap).into());
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok((u(r.get(0)?), r.get::<_, bool>(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn review_where(f: &ReviewFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(cam) = &f.camera {
        sql.push_str(" AND camera_id = ?");
        args.push(cam.clone().into());
    }
    if let Some(label) = &f.label {
        sql.push_str(" AND category = ?");
        args.push(label.clone().into());
    }
    match f.reviewed {
        Some(true) => sql.push_str(" AND reviewed_at_ms IS NOT NULL"),
        Some(false) => sql.push_str(" AND reviewed_at_ms IS NULL"),
        None => {}
    }
    if let Some(b) = f.before {
        sql.push_str(" AND started_at_ms < ?");
        args.push((b.min(i64::MAX as u64) as i64).into());
    }
    if let Some(a) = f.after {
        sql.push_str(" AND started_at_ms >= ?");
        args.push((a.min(i64::MAX as u64) as i64).into());
    }
    if let Some(allowed) = &f.allowed {
        if allowed.is_empty() {
            sql.push_str(" AND 0");
        } else {
            sql.push_str(" AND camera_id IN (");
            sql.push_str(&vec!["?"; allowed.len()].join(", "));
            sql.push(')');
            args.extend(allowed.iter().map(|a| a.clone().into()));
        }
    }
    (sql, args)
}

/// Marks an event reviewed at `at_ms` (or not reviewed with `None`); false when there is no
/// such event.
pub fn set_reviewed(c: &Connection, event_id: &str, at_ms: Option<u64>) -> Result<bool, DbError> {
    let n = c.execute(
        "UPDATE events SET reviewed_at_ms = ?2 WHERE event_id = ?1",
        params![event_id, at_ms.map(|v| v as i64)],
    )?;
    Ok(n == 1)
}

/// An `events` row selected as `event_id, edge_peer_id, camera_id, started_at_ms,
/// ended_at_ms, category, score_milli, clip_cid, snapshot_cid, thumbnail_cid, truncated,
/// received_at_ms, state, revision, confirmed_at_ms, zones_json, verification_json,
/// reviewed_at_ms`.
fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        event_id: r.get(0)?,
        edge_peer_id: r.get(1)?,
        camera_id: r.get(2)?,
        started_at_ms: u(r.get(3)?),
        ended_at_ms: u(r.get(4)?),
        category: r.get(5)?,
        score_milli: r.get(6)?,
        clip_cid: r.get(7)?,
        snapshot_cid: r.get(8)?,
        thumbnail_cid: r.get(9)?,
        truncated: r.get(10)?,
        received_at_ms: u(r.get(11)?),
        state: r.get(12)?,
        revision: r.get::<_, i64>(13)? as u32,
        confirmed_at_ms: u(r.get(14)?),
        zones: serde_json::from_str(&r.get::<_, String>(15)?).unwrap_or_default(),
        verification: r
            .get::<_, Option<String>>(16)?
            .and_then(|v| serde_json::from_str(&v).ok()),
        reviewed_at_ms: r.get::<_, Option<i64>>(17)?.map(u),
    })
}

/// One cached event by id.
pub fn event(c: &Connection, event_id: &str) -> Result<Option<EventRow>, DbError> {
    Ok(c.query_row(
        "SELECT event_id, edge_peer_id, camera_id, started_at_ms, ended_at_ms, category, score_milli,
                clip_cid, snapshot_cid, thumbnail_cid, truncated, received_at_ms, state, revision,
                confirmed_at_ms, zones_json, verification_json, reviewed_at_ms
         FROM events WHERE event_id = ?1",
        [event_id],
        event_row,
    )
    .optional()?)
}

/// Open events (those the edge said opened and not yet that they closed) that ended after
/// `since_ms`, counted per camera and category.
pub fn open_event_counts(
    c: &Connection,
    since_ms: u64,
) -> Result<Vec<(String, String, u64)>, DbError> {
    let mut st = c.prepare(
        "SELECT camera_id, category, COUNT(*) FROM events
         WHERE state = 'open' AND ended_at_ms >= ?1 GROUP BY camera_id, category ORDER BY 1, 2",
    )?;
    let rows = st.query_map([since_ms as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Number of cached events.
pub fn event_count(c: &Connection) -> Result<u64, DbError> {
    Ok(u(c.query_row("SELECT COUNT(*) FROM events", [], |r| {
        r.get(0)
    })?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use protocols::messages::Category;

    fn record(id: &str, start: u64) -> EventRecord {
        EventRecord {
            event_id: id.into(),
            tenant_id: "t".into(),
            edge_id: "e".into(),
            camera_id: if start.is_multiple_of(2) {
                "front".into()
            } else {
                "back".into()
            },
            started_at_ms: start,
            ended_at_ms: start + 5,
            category: Category::Person,
            score_milli: 800,
            clip_cid: None,
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            ..Default::default()
        }
    }

    #[test]
    fn events_are_stored_once_and_filtered() {
        let db = Db::open_in_memory().unwrap();
        db.with(|c| {
            let batch = vec![record("a", 10), record("b", 11), record("c", 12)];
            assert_eq!(insert_events(c, "e", &batch, 1)?.len(), 3);
            assert_eq!(insert_events(c, "e", &batch, 2)?.len(), 0);
            assert_eq!(event_count(c)?, 3);
            let front = events(c, Some("front"), 0, 10)?;
            assert_eq!(
                front
                    .iter()
                    .map(|e| e.event_id.as_str())
                    .collect::<Vec<_>>(),
                ["a", "c"]
            );
            assert_eq!(events(c, None, 11, 10)?.len(), 2);
            assert_eq!(events(c, None, 0, 1)?.len(), 1);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_review_timeline_is_newest_first_filtered_and_scoped() {
        let db = Db::open_in_memory().unwrap();
        db.with(|c| {
            let batch: Vec<_> = (10..16).map(|i| record(&format!("e{i}"), i)).collect();
            insert_events(c, "e", &batch, 1)?;
            let ids =
                |rows: Vec<EventRow>| rows.into_iter().map(|e| e.event_id).collect::<Vec<_>>();
            let all = ReviewFilter::default();
            assert_eq!(ids(review(c, &all, 3)?), ["e15", "e14", "e13"]);
            let page2 = ReviewFilter {
                before: Some(13),
                ..all.clone()
            };
            assert_eq!(ids(review(c, &page2, 10)?), ["e12", "e11", "e10"]);
            let front = ReviewFilter {
                camera: Some("front".into()),
                ..all.clone()
            };
            assert_eq!(ids(review(c, &front, 10)?), ["e14", "e12", "e10"]);
            // A viewer allowed only the back camera never sees the front one, whatever it asks.
            let viewer = ReviewFilter {
                allowed: Some(vec!["back".into()]),
                ..front.clone()
            };
            assert!(review(c, &viewer, 10)?.is_empty());
            let nobody = ReviewFilter {
                allowed: Some(vec![]),
                ..all.clone()
            };
            assert!(review(c, &nobody, 10)?.is_empty());
            assert!(set_reviewed(c, "e14", Some(99))?);
            assert!(!set_reviewed(c, "nope", Some(99))?);
            let done = ReviewFilter {
                reviewed: Some(true),
                ..all.clone()
            };
            let rows = review(c, &done, 10)?;
            assert_eq!((rows.len(), rows[0].reviewed_at_ms), (1, Some(99)));
            let todo = ReviewFilter {
                reviewed: Some(false),
                after: Some(12),
                ..all.clone()
            };
            assert_eq!(ids(review(c, &todo, 10)?), ["e15", "e13", "e12"]);
            let none = ReviewFilter {
                label: Some("car".into()),
                ..all.clone()
            };
            assert!(review(c, &none, 10)?.is_empty());
            let times = review_times(c, &all, 100)?;
            assert_eq!(times.len(), 6);
            assert_eq!(times[1], (14, true));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_highest_revision_of_an_event_is_kept() {
        use protocols::messages::events::{EventState, Verdict};
        let db = Db::open_in_memory().unwrap();
        let rev = |r: u32, state: EventState| EventRecord {
            revision: r,
            state,
            score_milli: 500 + r as u16,
            zones: vec!["steps".into()],
            confirmed_at_ms: 7,
            verification: Some(Verification {
                model: "centernet".into(),
                verdict: Verdict::Confirmed,
                score_milli: 700,
            }),
            ..record("a", 10)
        };
        db.with(|c| {
            let first = insert_events(c, "e", &[rev(1, EventState::Open)], 1)?;
            assert_eq!((first.len(), first[0].previous), (1, None));
            let closed = insert_events(c, "e", &[rev(3, EventState::Closed)], 2)?;
            assert_eq!(closed[0].previous, Some(1));
            // A late or repeated lower revision changes nothing.
            assert!(
                insert_events(
                    c,
                    "e",
                    &[rev(2, EventState::Open), rev(3, EventState::Closed)],
                    3
                )?
                .is_empty()
            );
            let row = event(c, "a")?.unwrap();
            assert_eq!(
                (row.state.as_str(), row.revision, row.score_milli),
                ("closed", 3, 503)
            );
            assert_eq!(row.zones, ["steps"]);
            assert_eq!(row.verification.unwrap().verdict, Verdict::Confirmed);
            assert_eq!(row.received_at_ms, 1, "first received");
            Ok(())
        })
        .unwrap();
    }
}
