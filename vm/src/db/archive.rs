//! The archive index: sealed objects and manifests stored in S3, per camera usage, retention.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{DbError, u};

/// An archived object's index row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveRow {
    /// CID of the ciphertext.
    pub cid: String,
    /// The event.
    pub event_id: String,
    /// `clip` or `snapshot`.
    pub kind: String,
    /// The camera.
    pub camera_id: String,
    /// The edge that sealed it.
    pub edge_peer_id: String,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// Key id of the recipient it is sealed to.
    pub key_id: String,
    /// Archived at, Unix ms.
    pub archived_at_ms: u64,
    /// Deleted after, Unix ms.
    pub retain_until_ms: u64,
}

const ARCHIVE_COLUMNS: &str = "cid, event_id, kind, camera_id, edge_peer_id, bucket, key, size, key_id, archived_at_ms, retain_until_ms";

fn archive_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArchiveRow> {
    Ok(ArchiveRow {
        cid: r.get(0)?,
        event_id: r.get(1)?,
        kind: r.get(2)?,
        camera_id: r.get(3)?,
        edge_peer_id: r.get(4)?,
        bucket: r.get(5)?,
        key: r.get(6)?,
        size: u(r.get(7)?),
        key_id: r.get(8)?,
        archived_at_ms: u(r.get(9)?),
        retain_until_ms: u(r.get(10)?),
    })
}

/// The archived objects of an event.
pub fn archived_objects_of_event(
    c: &Connection,
    event_id: &str,
) -> Result<Vec<ArchiveRow>, DbError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {ARCHIVE_COLUMNS} FROM archive_objects WHERE event_id = ?1"
    ))?;
    let rows = stmt.query_map([event_id], archive_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An archived object by CID.
pub fn archived_object(c: &Connection, cid: &str) -> Result<Option<ArchiveRow>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {ARCHIVE_COLUMNS} FROM archive_objects WHERE cid = ?1"),
        [cid],
        archive_from_row,
    )
    .optional()?)
}

/// Archived objects from `since_ms` on, optionally of one camera, oldest first.
pub fn archived_objects(
    c: &Connection,
    camera: Option<&str>,
    since_ms: u64,
    limit: u32,
) -> Result<Vec<ArchiveRow>, DbError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {ARCHIVE_COLUMNS} FROM archive_objects
         WHERE archived_at_ms >= ?1 AND (?2 IS NULL OR camera_id = ?2)
         ORDER BY archived_at_ms, cid LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![since_ms as i64, camera, limit], archive_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Bytes archived for a camera (objects and manifests), from the index.
pub fn camera_usage(c: &Connection, camera_id: &str) -> Result<u64, DbError> {
    let objects: i64 = c.query_row(
        "SELECT COALESCE(SUM(size), 0) FROM archive_objects WHERE camera_id = ?1",
        [camera_id],
        |r| r.get(0),
    )?;
    let manifests: i64 = c.query_row(
        "SELECT COALESCE(SUM(LENGTH(manifest_json)), 0) FROM archive_manifests WHERE camera_id = ?1",
        [camera_id],
        |r| r.get(0),
    )?;
    Ok(u(objects) + u(manifests))
}

/// Records an archived event: its objects and manifest, in one transaction; rows already
/// present (a retry) are left as they are.
pub fn insert_archive(
    c: &mut Connection,
    objects: &[ArchiveRow],
    manifest_key: &str,
    manifest_json: &[u8],
) -> Result<(), DbError> {
    let Some(first) = objects.first() else {
        return Ok(());
    };
    let tx = c.transaction()?;
    for o in objects {
        tx.execute(
            &format!(
                "INSERT OR IGNORE INTO archive_objects ({ARCHIVE_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                o.cid,
                o.event_id,
                o.kind,
                o.camera_id,
                o.edge_peer_id,
                o.bucket,
                o.key,
                o.size as i64,
                o.key_id,
                o.archived_at_ms as i64,
                o.retain_until_ms as i64
            ],
        )?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO archive_manifests (event_id, camera_id, bucket, key, manifest_json, archived_at_ms, retain_until_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            first.event_id,
            first.camera_id,
            first.bucket,
            manifest_key,
            manifest_json,
            first.archived_at_ms as i64,
            first.retain_until_ms as i64
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// The stored manifest of an event.
pub fn archived_manifest(c: &Connection, event_id: &str) -> Result<Option<Vec<u8>>, DbError> {
    Ok(c.query_row(
        "SELECT manifest_json FROM archive_manifests WHERE event_id = ?1",
        [event_id],
        |r| r.get(0),
    )
    .optional()?)
}

/// Events whose retention ended by `now_ms`: (event id, bucket, keys to delete).
pub fn expired_archives(
    c: &Connection,
    now_ms: u64,
) -> Result<Vec<(String, String, Vec<String>)>, DbError> {
    let mut stmt = c.prepare(
        "SELECT event_id, bucket, key FROM archive_manifests WHERE retain_until_ms <= ?1",
    )?;
    let manifests: Vec<(String, String, String)> = stmt
        .query_map([now_ms as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (event, bucket, manifest_key) in manifests {
        let mut keys: Vec<String> = archived_objects_of_event(c, &event)?
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.push(manifest_key);
        out.push((event, bucket, keys));
    }
    Ok(out)
}

/// Forgets an archived event (after its objects were deleted from S3).
pub fn delete_archive(c: &mut Connection, event_id: &str) -> Result<(), DbError> {
    let tx = c.transaction()?;
    tx.execute(
        "DELETE FROM archive_objects WHERE event_id = ?1",
        [event_id],
    )?;
    tx.execute(
        "DELETE FROM archive_manifests WHERE event_id = ?1",
        [event_id],
    )?;
    tx.commit()?;
    Ok(())
}
/// An archived object S3 did not show at the last check, kept in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// CID of the ciphertext.
    pub cid: String,
    /// The event.
    pub event_id: String,
    /// Where it should be.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Why it is quarantined.
    pub reason: String,
    /// Quarantined since, Unix ms.
    pub since_ms: u64,
}

/// Quarantines the object `cid` with `reason` (kept since the first time).
pub fn quarantine_object(
    c: &Connection,
    cid: &str,
    reason: &str,
    now_ms: u64,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE archive_objects SET quarantined_reason = ?2,
            quarantined_at_ms = COALESCE(quarantined_at_ms, ?3) WHERE cid = ?1",
        params![cid, reason, now_ms as i64],
    )?;
    Ok(())
}

/// Takes `cid` out of quarantine; whether it was in.
pub fn release_object(c: &Connection, cid: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE archive_objects SET quarantined_reason = NULL, quarantined_at_ms = NULL
         WHERE cid = ?1 AND quarantined_reason IS NOT NULL",
        [cid],
    )? > 0)
}

/// The quarantined objects, oldest first.
pub fn quarantined_objects(c: &Connection) -> Result<Vec<Quarantined>, DbError> {
    let mut stmt = c.prepare(
        "SELECT cid, event_id, bucket, key, quarantined_reason, quarantined_at_ms
         FROM archive_objects WHERE quarantined_reason IS NOT NULL
         ORDER BY quarantined_at_ms, cid",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Quarantined {
            cid: r.get(0)?,
            event_id: r.get(1)?,
            bucket: r.get(2)?,
            key: r.get(3)?,
            reason: r.get(4)?,
            since_ms: u(r.get::<_, Option<i64>>(5)?.unwrap_or(0)),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
