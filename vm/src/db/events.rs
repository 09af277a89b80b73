//! The events cache: records from edges, stored once by event id, listed by time.

use protocols::messages::events::EventRecord;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{DbError, u};

/// A cached event, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

/// Stores events idempotently by event id; returns how many were new.
pub fn insert_events(
    c: &mut Connection,
    edge_peer_id: &str,
    events: &[EventRecord],
    now_ms: u64,
) -> Result<usize, DbError> {
    let tx = c.transaction()?;
    let mut new = 0;
    {
        let mut stmt = tx.prepare(
            "INSERT OR IGNORE INTO events (event_id, edge_peer_id, camera_id, started_at_ms, ended_at_ms,
                 category, score_milli, clip_cid, snapshot_cid, thumbnail_cid, truncated,
                 received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for e in events {
            new += stmt.execute(params![
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
                now_ms as i64
            ])?;
        }
    }
    tx.execute(
        "UPDATE devices SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE peer_id = ?1",
        params![edge_peer_id, now_ms as i64],
    )?;
    tx.commit()?;
    Ok(new)
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
                clip_cid, snapshot_cid, thumbnail_cid, truncated, received_at_ms
         FROM events
         WHERE started_at_ms >= ?1 AND (?2 IS NULL OR camera_id = ?2)
         ORDER BY started_at_ms, event_id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![since_ms as i64, camera, limit], event_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An `events` row selected as `event_id, edge_peer_id, camera_id, started_at_ms,
/// ended_at_ms, category, score_milli, clip_cid, snapshot_cid, thumbnail_cid, truncated, received_at_ms`.
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
    })
}

/// One cached event by id.
pub fn event(c: &Connection, event_id: &str) -> Result<Option<EventRow>, DbError> {
    Ok(c.query_row(
        "SELECT event_id, edge_peer_id, camera_id, started_at_ms, ended_at_ms, category, score_milli,
                clip_cid, snapshot_cid, thumbnail_cid, truncated, received_at_ms
         FROM events WHERE event_id = ?1",
        [event_id],
        event_row,
    )
    .optional()?)
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

    fn event(id: &str, start: u64) -> EventRecord {
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
        }
    }

    #[test]
    fn events_are_stored_once_and_filtered() {
        let db = Db::open_in_memory().unwrap();
        db.with(|c| {
            let batch = vec![event("a", 10), event("b", 11), event("c", 12)];
            assert_eq!(insert_events(c, "e", &batch, 1)?, 3);
            assert_eq!(insert_events(c, "e", &batch, 2)?, 0);
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
}
