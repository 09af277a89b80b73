//! The vm's SQLite database: tenant, install packages, devices, the events cache and the
//! telemetry history.
//!
//! One connection behind a mutex is the single writer; async callers go through
//! [`Db::call`], which runs the closure on the blocking pool. The database is in WAL mode so
//! the `guardian-vm package` command can add a package while `guardian-vm run` holds it open.
//! Migrations (`vm/migrations/*.sql`) are applied in order at open, tracked in
//! `PRAGMA user_version`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use protocols::messages::events::EventRecord;
use protocols::messages::telemetry::TelemetryReport;

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_archive.sql"),
];

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was made by a newer version.
    #[error("the database is at version {found}, newer than this build's {supported}")]
    TooNew {
        /// Its version.
        found: usize,
        /// Ours.
        supported: usize,
    },
    /// A stored value did not parse.
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
}

/// The database handle; cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

/// An install package's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRow {
    /// The token's id.
    pub token_id: String,
    /// The edge it was made for.
    pub edge_peer_id: String,
    /// The edge's name.
    pub edge_name: String,
    /// The owner's recipient at packaging.
    pub recipient: String,
    /// Issued, Unix ms.
    pub issued_at_ms: u64,
    /// Expires, Unix ms.
    pub expires_at_ms: u64,
    /// Spent at, Unix ms.
    pub used_at_ms: Option<u64>,
}

/// A registered edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRow {
    /// Its peer id.
    pub peer_id: String,
    /// Its name.
    pub name: String,
    /// The token it enrolled with.
    #[serde(skip)]
    pub token_id: String,
    /// The recipient its clips are sealed to.
    pub recipient: String,
    /// Enrolled at, Unix ms.
    pub enrolled_at_ms: u64,
    /// Its software version.
    pub agent_version: String,
    /// Last heard from, Unix ms.
    pub last_seen_ms: u64,
}

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
    /// Edge-local clip id.
    pub clip_id: Option<String>,
    /// Edge-local snapshot id.
    pub snapshot_id: Option<String>,
    /// When the vm stored it, Unix ms.
    pub received_at_ms: u64,
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(DbError::TooNew {
                found: version,
                supported: MIGRATIONS.len(),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().expect("a panic while holding the db is a bug");
            f(&mut c)
        })
        .await
        .expect("database closures do not panic")
    }

    /// Runs `f` with the connection on this thread (for the CLI commands).
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        let mut c = self.conn.lock().expect("not poisoned");
        f(&mut c)
    }
}

/// Creates the tenant row.
pub fn insert_tenant(
    c: &Connection,
    id: &str,
    now_ms: u64,
    kdf_json: &str,
    owner_token_sha256: &str,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO tenant (id, created_at_ms, kdf_json, owner_token_sha256) VALUES (?1, ?2, ?3, ?4)",
        params![id, now_ms as i64, kdf_json, owner_token_sha256],
    )?;
    Ok(())
}

/// The stored SHA-256 (hex) of the owner's API token.
pub fn owner_token_hash(c: &Connection) -> Result<String, DbError> {
    Ok(c.query_row("SELECT owner_token_sha256 FROM tenant", [], |r| r.get(0))?)
}

/// Records a new install package.
pub fn insert_package(c: &Connection, p: &PackageRow) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO packages (token_id, edge_peer_id, edge_name, recipient, issued_at_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            p.token_id,
            p.edge_peer_id,
            p.edge_name,
            p.recipient,
            p.issued_at_ms as i64,
            p.expires_at_ms as i64
        ],
    )?;
    Ok(())
}

/// The package of a token id.
pub fn package(c: &Connection, token_id: &str) -> Result<Option<PackageRow>, DbError> {
    Ok(c
        .query_row(
            "SELECT token_id, edge_peer_id, edge_name, recipient, issued_at_ms, expires_at_ms, used_at_ms
             FROM packages WHERE token_id = ?1",
            [token_id],
            |r| {
                Ok(PackageRow {
                    token_id: r.get(0)?,
                    edge_peer_id: r.get(1)?,
                    edge_name: r.get(2)?,
                    recipient: r.get(3)?,
                    issued_at_ms: u(r.get(4)?),
                    expires_at_ms: u(r.get(5)?),
                    used_at_ms: r.get::<_, Option<i64>>(6)?.map(u),
                })
            },
        )
        .optional()?)
}

/// How long after its expiry an unspent package's edge may still connect, to be told by the
/// enrollment protocol that its token expired (rather than being dropped without a reason).
pub const EXPIRED_GRACE_MS: u64 = 7 * 24 * 3600 * 1000;

/// Peers that may connect: registered devices, and edges whose package is unspent (and
/// expired less than [`EXPIRED_GRACE_MS`] ago).
pub fn allowed_peers(c: &Connection, now_ms: u64) -> Result<Vec<String>, DbError> {
    let mut stmt = c.prepare(
        "SELECT peer_id FROM devices
         UNION
         SELECT edge_peer_id FROM packages WHERE used_at_ms IS NULL AND expires_at_ms > ?1",
    )?;
    let rows = stmt.query_map([now_ms.saturating_sub(EXPIRED_GRACE_MS) as i64], |r| {
        r.get::<_, String>(0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Spends the token and registers the device, atomically.
pub fn enroll_device(c: &mut Connection, d: &DeviceRow) -> Result<(), DbError> {
    let tx = c.transaction()?;
    tx.execute(
        "UPDATE packages SET used_at_ms = ?2 WHERE token_id = ?1 AND used_at_ms IS NULL",
        params![d.token_id, d.enrolled_at_ms as i64],
    )?;
    tx.execute(
        "INSERT INTO devices (peer_id, name, token_id, recipient, enrolled_at_ms, agent_version, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)",
        params![
            d.peer_id,
            d.name,
            d.token_id,
            d.recipient,
            d.enrolled_at_ms as i64,
            d.agent_version
        ],
    )?;
    tx.commit()?;
    Ok(())
}

fn device_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        peer_id: r.get(0)?,
        name: r.get(1)?,
        token_id: r.get(2)?,
        recipient: r.get(3)?,
        enrolled_at_ms: u(r.get(4)?),
        agent_version: r.get(5)?,
        last_seen_ms: u(r.get(6)?),
    })
}

const DEVICE_COLUMNS: &str =
    "peer_id, name, token_id, recipient, enrolled_at_ms, agent_version, last_seen_ms";

/// A registered device by peer id.
pub fn device(c: &Connection, peer_id: &str) -> Result<Option<DeviceRow>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE peer_id = ?1"),
        [peer_id],
        device_from_row,
    )
    .optional()?)
}

/// Every registered device, oldest first.
pub fn devices(c: &Connection) -> Result<Vec<DeviceRow>, DbError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at_ms, peer_id"
    ))?;
    let rows = stmt.query_map([], device_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Notes that a device was heard from.
pub fn touch_device(c: &Connection, peer_id: &str, now_ms: u64) -> Result<(), DbError> {
    c.execute(
        "UPDATE devices SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE peer_id = ?1",
        params![peer_id, now_ms as i64],
    )?;
    Ok(())
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
                 category, score_milli, clip_id, snapshot_id, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
                e.clip_id,
                e.snapshot_id,
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
                clip_id, snapshot_id, received_at_ms
         FROM events
         WHERE started_at_ms >= ?1 AND (?2 IS NULL OR camera_id = ?2)
         ORDER BY started_at_ms, event_id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![since_ms as i64, camera, limit], |r| {
        Ok(EventRow {
            event_id: r.get(0)?,
            edge_peer_id: r.get(1)?,
            camera_id: r.get(2)?,
            started_at_ms: u(r.get(3)?),
            ended_at_ms: u(r.get(4)?),
            category: r.get(5)?,
            score_milli: r.get(6)?,
            clip_id: r.get(7)?,
            snapshot_id: r.get(8)?,
            received_at_ms: u(r.get(9)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One cached event by id.
pub fn event(c: &Connection, event_id: &str) -> Result<Option<EventRow>, DbError> {
    Ok(c.query_row(
        "SELECT event_id, edge_peer_id, camera_id, started_at_ms, ended_at_ms, category, score_milli,
                clip_id, snapshot_id, received_at_ms
         FROM events WHERE event_id = ?1",
        [event_id],
        |r| {
            Ok(EventRow {
                event_id: r.get(0)?,
                edge_peer_id: r.get(1)?,
                camera_id: r.get(2)?,
                started_at_ms: u(r.get(3)?),
                ended_at_ms: u(r.get(4)?),
                category: r.get(5)?,
                score_milli: r.get(6)?,
                clip_id: r.get(7)?,
                snapshot_id: r.get(8)?,
                received_at_ms: u(r.get(9)?),
            })
        },
    )
    .optional()?)
}

/// Number of cached events.
pub fn event_count(c: &Connection) -> Result<u64, DbError> {
    Ok(u(c.query_row("SELECT COUNT(*) FROM events", [], |r| {
        r.get(0)
    })?))
}

/// Stores a telemetry report and prunes the edge's history to `keep` reports.
pub fn insert_telemetry(
    c: &mut Connection,
    edge_peer_id: &str,
    report: &TelemetryReport,
    now_ms: u64,
    keep: u32,
) -> Result<(), DbError> {
    let json = serde_json::to_string(report).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO telemetry (edge_peer_id, at_ms, received_at_ms, report_json) VALUES (?1, ?2, ?3, ?4)",
        params![edge_peer_id, report.at_ms as i64, now_ms as i64, json],
    )?;
    tx.execute(
        "DELETE FROM telemetry WHERE edge_peer_id = ?1 AND id <=
            (SELECT id FROM telemetry WHERE edge_peer_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![edge_peer_id, keep],
    )?;
    tx.execute(
        "UPDATE devices SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE peer_id = ?1",
        params![edge_peer_id, now_ms as i64],
    )?;
    tx.commit()?;
    Ok(())
}

/// The latest telemetry report of an edge.
pub fn latest_telemetry(
    c: &Connection,
    edge_peer_id: &str,
) -> Result<Option<TelemetryReport>, DbError> {
    let json: Option<String> = c
        .query_row(
            "SELECT report_json FROM telemetry WHERE edge_peer_id = ?1 ORDER BY id DESC LIMIT 1",
            [edge_peer_id],
            |r| r.get(0),
        )
        .optional()?;
    json.map(|j| serde_json::from_str(&j).map_err(|e| DbError::Corrupt(e.to_string())))
        .transpose()
}

/// Reports kept for an edge.
pub fn telemetry_count(c: &Connection, edge_peer_id: &str) -> Result<u64, DbError> {
    Ok(u(c.query_row(
        "SELECT COUNT(*) FROM telemetry WHERE edge_peer_id = ?1",
        [edge_peer_id],
        |r| r.get(0),
    )?))
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::messages::Category;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("vm.sqlite")).unwrap();
        (dir, db)
    }

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
            clip_id: None,
            snapshot_id: None,
        }
    }

    #[test]
    fn migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vm.sqlite");
        Db::open(&p).unwrap();
        Db::open(&p).unwrap();
    }

    #[test]
    fn events_are_stored_once_and_filtered() {
        let (_d, db) = db();
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

    #[test]
    fn telemetry_history_is_bounded() {
        let (_d, db) = db();
        db.with(|c| {
            for i in 0..10u64 {
                let r = TelemetryReport {
                    edge_id: "e".into(),
                    at_ms: i,
                    cpu_milli: 1,
                    mem_used_bytes: 1,
                    mem_total_bytes: 2,
                    disk_used_bytes: 1,
                    disk_free_bytes: 1,
                    cameras: vec![],
                    archive_backlog_objects: i,
                    archive_backlog_bytes: 0,
                    event_backlog: 0,
                };
                insert_telemetry(c, "e", &r, i, 4)?;
            }
            assert_eq!(telemetry_count(c, "e")?, 4);
            assert_eq!(latest_telemetry(c, "e")?.unwrap().at_ms, 9);
            Ok(())
        })
        .unwrap();
    }
}
