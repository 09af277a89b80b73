//! The vm's SQLite database: tenant, install packages, devices, the events cache, the
//! telemetry history, the archive index, sealed thumbnails, and the key-slot lists with what
//! each edge applied.
//!
//! [`Db`] wraps [`guardian_sqlite::Database`] (one connection behind a mutex, the single
//! writer; WAL so `guardian-vm package` can add a package while `guardian-vm run` holds it
//! open; foreign keys on). Migrations (`vm/migrations/*.sql`) are applied in order at open,
//! tracked in `PRAGMA user_version`. The queries live in one file per table group and are
//! re-exported here, so callers write `db::device(c, peer)`.
//!
//! - [`packages`]: the tenant row, install packages, who may connect.
//! - [`devices`]: registered edges.
//! - [`events`]: the events cache.
//! - [`telemetry`]: the telemetry history.
//! - [`archive`]: the archive index.
//! - [`thumbnails`]: each event's sealed thumbnail.
//! - [`key_slots`]: the owner's signed key-slot lists and each edge's configuration acks.
//! - [`cameras`]: camera configuration owned by the vm, each edge's camera revision.
//! - [`discovery`]: each edge's latest report of the cameras on its LAN.
//! - [`alerts`]: the mode and rules set through the API, decisions, cooldowns, the
//!   notification outbox, the health conditions raised.
//! - [`overlay`]: the WireGuard overlay's peers (edges and the owner's devices).

use std::path::Path;

use guardian_sqlite::{Database, OpenError, Options};
use rusqlite::Connection;

pub mod alerts;
pub mod archive;
pub mod cameras;
pub mod devices;
pub mod discovery;
pub mod events;
pub mod key_slots;
pub mod overlay;
pub mod packages;
pub mod telemetry;
pub mod thumbnails;
pub mod uploads;
pub mod users;

pub use alerts::*;
pub use archive::*;
pub use cameras::*;
pub use devices::*;
pub use discovery::*;
pub use events::*;
pub use key_slots::*;
pub use overlay::*;
pub use packages::*;
pub use telemetry::*;
pub use thumbnails::*;
pub use uploads::*;
pub use users::*;

/// The vm's migrations, oldest first (`MIGRATIONS[i]` brings the schema to version `i + 1`).
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_archive.sql"),
    include_str!("../../migrations/0003_edge_keys.sql"),
    include_str!("../../migrations/0004_sealed_events.sql"),
    include_str!("../../migrations/0005_thumbnails_key_slots.sql"),
    include_str!("../../migrations/0006_quarantine.sql"),
    include_str!("../../migrations/0007_uploads_quota.sql"),
    include_str!("../../migrations/0008_cameras.sql"),
    include_str!("../../migrations/0009_discovery.sql"),
    include_str!("../../migrations/0010_live_events.sql"),
    include_str!("../../migrations/0011_alerts.sql"),
    include_str!("../../migrations/0012_users.sql"),
    include_str!("../../migrations/0013_overlay.sql"),
];

const OPTIONS: Options = Options {
    foreign_keys: true,
    busy_timeout: std::time::Duration::from_secs(10),
};

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be opened or migrated (including one made by a newer version).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value did not parse.
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
}

/// The database handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    inner: Database,
}

/// A stored integer as the unsigned value it was written from.
pub(crate) fn u(v: i64) -> u64 {
    v.max(0) as u64
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Ok(Db {
            inner: Database::open(path, MIGRATIONS, OPTIONS)?,
        })
    }

    /// An in-memory database with the same schema (unit tests).
    pub fn open_in_memory() -> Result<Self, DbError> {
        Ok(Db {
            inner: Database::open_in_memory(MIGRATIONS, OPTIONS)?,
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
    {
        self.inner.call(f).await
    }

    /// Runs `f` with the connection on this thread (for the CLI commands).
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        self.inner.with(f)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A package and its registered device, so rows that reference a device can be written.
    pub(crate) fn enrolled(c: &mut Connection, peer: &str, now_ms: u64) -> Result<(), DbError> {
        insert_package(
            c,
            &PackageRow {
                token_id: format!("tok-{peer}"),
                enroll_peer_id: format!("enroll-{peer}"),
                edge_name: "home".into(),
                recipient: "age1x".into(),
                issued_at_ms: now_ms,
                expires_at_ms: now_ms + 1000,
                used_at_ms: None,
            },
        )?;
        enroll_device(
            c,
            &DeviceRow {
                peer_id: peer.into(),
                name: "home".into(),
                token_id: format!("tok-{peer}"),
                recipient: "age1x".into(),
                age_recipient: Some("age1edge".into()),
                enrolled_at_ms: now_ms,
                agent_version: "test".into(),
                last_seen_ms: now_ms,
            },
        )
    }

    #[test]
    fn migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vm.sqlite");
        let first = Db::open(&p).unwrap();
        let schema1 = first
            .with(|c| {
                enrolled(c, "edge-a", 5)?;
                insert_tenant(c, "t", 1, "{}", "hash")?;
                Ok(guardian_sqlite::schema(c)?)
            })
            .unwrap();
        for table in [
            "tenant",
            "packages",
            "devices",
            "events",
            "telemetry",
            "archive_objects",
            "archive_manifests",
        ] {
            assert!(
                schema1.contains(&format!("CREATE TABLE {table}")),
                "{table} missing from:\n{schema1}"
            );
        }
        drop(first);

        let again = Db::open(&p).unwrap();
        again
            .with(|c| {
                assert_eq!(guardian_sqlite::schema(c)?, schema1, "the same schema");
                let version: usize = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
                assert_eq!(version, MIGRATIONS.len());
                assert_eq!(owner_token_hash(c)?, "hash", "the tenant row survived");
                let d = device(c, "edge-a")?.expect("the device row survived");
                assert_eq!(d.enrolled_at_ms, 5);
                assert_eq!(
                    package(c, "tok-edge-a")?.and_then(|p| p.used_at_ms),
                    Some(5),
                    "the spent package survived"
                );
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn foreign_keys_are_enforced() {
        let db = Db::open_in_memory().unwrap();
        let r = db.with(|c| {
            enroll_device(
                c,
                &DeviceRow {
                    peer_id: "p".into(),
                    name: "n".into(),
                    token_id: "no-such-token".into(),
                    recipient: "r".into(),
                    age_recipient: None,
                    enrolled_at_ms: 0,
                    agent_version: "v".into(),
                    last_seen_ms: 0,
                },
            )
        });
        assert!(r.is_err(), "a device without its package is refused");
    }
}
