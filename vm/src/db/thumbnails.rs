//! Sealed thumbnails (table `thumbnails`): one per event, stored as the edge sealed it.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;

/// A stored thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailRow {
    /// The event.
    pub event_id: String,
    /// The edge that sent it.
    pub edge_peer_id: String,
    /// The camera.
    pub camera_id: String,
    /// CID of the sealed bytes.
    pub cid: String,
    /// The age file.
    pub sealed: Vec<u8>,
    /// The edge's signed manifest naming it.
    pub manifest_json: Vec<u8>,
    /// Received at, Unix ms.
    pub received_at_ms: u64,
}

/// Stores a thumbnail; a second copy of the same event's is ignored.
pub fn insert_thumbnail(c: &Connection, t: &ThumbnailRow) -> Result<(), DbError> {
    c.execute(
        "INSERT OR IGNORE INTO thumbnails (event_id, edge_peer_id, camera_id, cid, sealed,
            manifest_json, received_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            t.event_id,
            t.edge_peer_id,
            t.camera_id,
            t.cid,
            t.sealed,
            t.manifest_json,
            t.received_at_ms as i64
        ],
    )?;
    Ok(())
}

/// The thumbnail of an event.
pub fn thumbnail(c: &Connection, event_id: &str) -> Result<Option<ThumbnailRow>, DbError> {
    Ok(c.query_row(
        "SELECT event_id, edge_peer_id, camera_id, cid, sealed, manifest_json, received_at_ms
         FROM thumbnails WHERE event_id = ?1",
        [event_id],
        |r| {
            Ok(ThumbnailRow {
                event_id: r.get(0)?,
                edge_peer_id: r.get(1)?,
                camera_id: r.get(2)?,
                cid: r.get(3)?,
                sealed: r.get(4)?,
                manifest_json: r.get(5)?,
                received_at_ms: super::u(r.get(6)?),
            })
        },
    )
    .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_once_by_event() {
        let db = crate::db::Db::open_in_memory().unwrap();
        db.with(|c| {
            let mut t = ThumbnailRow {
                event_id: "e1".into(),
                edge_peer_id: "p".into(),
                camera_id: "cam".into(),
                cid: "bafk".into(),
                sealed: vec![1, 2, 3],
                manifest_json: b"{}".to_vec(),
                received_at_ms: 5,
            };
            insert_thumbnail(c, &t)?;
            t.sealed = vec![9];
            insert_thumbnail(c, &t)?;
            let back = thumbnail(c, "e1")?.unwrap();
            assert_eq!(back.sealed, vec![1, 2, 3]);
            assert_eq!(back.received_at_ms, 5);
            assert!(thumbnail(c, "e2")?.is_none());
            Ok(())
        })
        .unwrap();
    }
}
