//! The journal of multipart uploads in flight (`multipart_uploads`), the cameras whose last
//! archive was refused for their quota (`quota_refusals`), and the events S3 holds that the
//! last reconciliation could not re-index (`unindexed_events`).

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{DbError, u};

/// A multipart upload the journal holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournaledUpload {
    /// S3's upload id.
    pub upload_id: String,
    /// The bucket.
    pub bucket: String,
    /// The key being written.
    pub key: String,
    /// Started at, Unix ms.
    pub started_at_ms: u64,
    /// Why the last abort failed, if one did.
    pub abort_error: Option<String>,
}

/// Journals an upload S3 just made.
pub fn upload_started(
    c: &Connection,
    upload_id: &str,
    bucket: &str,
    key: &str,
    now_ms: u64,
) -> Result<(), DbError> {
    c.execute(
        "INSERT OR REPLACE INTO multipart_uploads (upload_id, bucket, key, started_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![upload_id, bucket, key, now_ms as i64],
    )?;
    Ok(())
}

/// The upload completed or was aborted.
pub fn upload_ended(c: &Connection, upload_id: &str) -> Result<(), DbError> {
    c.execute(
        "DELETE FROM multipart_uploads WHERE upload_id = ?1",
        [upload_id],
    )?;
    Ok(())
}

/// An abort of the upload failed with `error`; it stays journaled.
pub fn upload_abort_failed(c: &Connection, upload_id: &str, error: &str) -> Result<(), DbError> {
    c.execute(
        "UPDATE multipart_uploads SET abort_error = ?2 WHERE upload_id = ?1",
        params![upload_id, error],
    )?;
    Ok(())
}

/// Every journaled upload, oldest first.
pub fn journaled_uploads(c: &Connection) -> Result<Vec<JournaledUpload>, DbError> {
    let mut stmt = c.prepare(
        "SELECT upload_id, bucket, key, started_at_ms, abort_error FROM multipart_uploads
         ORDER BY started_at_ms, upload_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(JournaledUpload {
            upload_id: r.get(0)?,
            bucket: r.get(1)?,
            key: r.get(2)?,
            started_at_ms: u(r.get(3)?),
            abort_error: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A camera whose last archive did not fit its quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverQuota {
    /// The camera.
    pub camera_id: String,
    /// When, Unix ms.
    pub refused_at_ms: u64,
    /// Bytes its archive held then.
    pub used_bytes: u64,
    /// Bytes the refused event needed.
    pub needed_bytes: u64,
    /// The quota.
    pub quota_bytes: u64,
}

/// Records a quota refusal (the latest per camera).
pub fn quota_refused(c: &Connection, r: &OverQuota) -> Result<(), DbError> {
    c.execute(
        "INSERT OR REPLACE INTO quota_refusals (camera_id, refused_at_ms, used_bytes, needed_bytes, quota_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            r.camera_id,
            r.refused_at_ms as i64,
            r.used_bytes as i64,
            r.needed_bytes as i64,
            r.quota_bytes as i64
        ],
    )?;
    Ok(())
}

/// An archive of `camera_id` fitted again.
pub fn quota_fits(c: &Connection, camera_id: &str) -> Result<(), DbError> {
    c.execute(
        "DELETE FROM quota_refusals WHERE camera_id = ?1",
        [camera_id],
    )?;
    Ok(())
}

/// Cameras over their quota, by id.
pub fn over_quota(c: &Connection) -> Result<Vec<OverQuota>, DbError> {
    let mut stmt = c.prepare(
        "SELECT camera_id, refused_at_ms, used_bytes, needed_bytes, quota_bytes FROM quota_refusals
         ORDER BY camera_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OverQuota {
            camera_id: r.get(0)?,
            refused_at_ms: u(r.get(1)?),
            used_bytes: u(r.get(2)?),
            needed_bytes: u(r.get(3)?),
            quota_bytes: u(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An event S3 holds without index rows, not re-indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unindexed {
    /// The bucket.
    pub bucket: String,
    /// The event.
    pub event_id: String,
    /// Why it was not re-indexed.
    pub reason: String,
    /// Seen at, Unix ms.
    pub seen_at_ms: u64,
}

/// Replaces the list of unindexed events with `events`.
pub fn set_unindexed(c: &mut Connection, events: &[Unindexed]) -> Result<(), DbError> {
    let tx = c.transaction()?;
    tx.execute("DELETE FROM unindexed_events", [])?;
    for e in events {
        tx.execute(
            "INSERT OR REPLACE INTO unindexed_events (bucket, event_id, reason, seen_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![e.bucket, e.event_id, e.reason, e.seen_at_ms as i64],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The unindexed events of the last reconciliation.
pub fn unindexed(c: &Connection) -> Result<Vec<Unindexed>, DbError> {
    let mut stmt = c.prepare(
        "SELECT bucket, event_id, reason, seen_at_ms FROM unindexed_events ORDER BY bucket, event_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Unindexed {
            bucket: r.get(0)?,
            event_id: r.get(1)?,
            reason: r.get(2)?,
            seen_at_ms: u(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn the_journal_and_the_quota_refusals_keep_what_they_are_told() {
        let db = Db::open_in_memory().unwrap();
        db.with(|c| {
            upload_started(c, "u1", "camera-a", "events/e/clip.mp4.age", 5)?;
            upload_started(c, "u2", "camera-a", "events/f/clip.mp4.age", 6)?;
            upload_ended(c, "u1")?;
            upload_abort_failed(c, "u2", "AccessDenied")?;
            let j = journaled_uploads(c)?;
            assert_eq!(j.len(), 1);
            assert_eq!(j[0].upload_id, "u2");
            assert_eq!(j[0].abort_error.as_deref(), Some("AccessDenied"));
            let r = OverQuota {
                camera_id: "a".into(),
                refused_at_ms: 1,
                used_bytes: 90,
                needed_bytes: 20,
                quota_bytes: 100,
            };
            quota_refused(c, &r)?;
            quota_refused(
                c,
                &OverQuota {
                    refused_at_ms: 2,
                    ..r.clone()
                },
            )?;
            assert_eq!(over_quota(c)?.len(), 1);
            assert_eq!(over_quota(c)?[0].refused_at_ms, 2);
            quota_fits(c, "a")?;
            assert!(over_quota(c)?.is_empty());
            let u = Unindexed {
                bucket: "camera-a".into(),
                event_id: "e".into(),
                reason: "bad signature".into(),
                seen_at_ms: 3,
            };
            set_unindexed(c, std::slice::from_ref(&u))?;
            assert_eq!(unindexed(c)?, [u]);
            set_unindexed(c, &[])?;
            assert!(unindexed(c)?.is_empty());
            Ok(())
        })
        .unwrap();
    }
}
