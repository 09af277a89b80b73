//! The edge's SQLite database: the device configuration from enrollment, the outbox of event
//! records waiting for the vm's ack, the archive and thumbnail outboxes of sealed events, the local camera
//! events with their clips, camera statuses and spent playback nonces.
//!
//! Opened through `guardian_sqlite` (WAL, so `guardian-edge emit-test-event`, another
//! process, can add to the outbox while the agent runs; `synchronous = FULL`; migrations in
//! `edge/migrations/` tracked in `PRAGMA user_version`). A record leaves the outbox only when
//! the vm has acked it, so nothing is lost across restarts of either side.
//!
//! One file per table group: [`device`], [`outbox`], [`archive_outbox`],
//! [`thumbnail_outbox`], [`events`], [`cameras`], [`nonces`], [`users`] (the users the vm
//! synced for the LAN web app), each adding its methods to [`Store`]. Threads and CLI commands
//! use a [`Store`] directly; async code goes through [`Db`] (the blocking pool).

pub mod archive_outbox;
pub mod cameras;
pub mod device;
pub mod events;
pub mod nonces;
pub mod outbox;
pub mod thumbnail_outbox;
pub mod users;

use std::path::Path;

use guardian_sqlite::rusqlite::{self, Connection};
use guardian_sqlite::{Database, OpenError, Options};

pub use archive_outbox::ArchiveItem;
pub use cameras::CameraStatusRow;
pub use events::{LocalEvent, Playable, ReviewQuery};
pub use thumbnail_outbox::ThumbnailItem;
pub use users::{UserRow, UsersApplied};

/// The migrations, in order (`MIGRATIONS[i]` brings the schema to version `i + 1`).
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_archive.sql"),
    include_str!("../../migrations/0003_video.sql"),
    include_str!("../../migrations/0004_playback.sql"),
    include_str!("../../migrations/0005_sealed.sql"),
    include_str!("../../migrations/0006_thumbnails.sql"),
    include_str!("../../migrations/0007_live_events.sql"),
    include_str!("../../migrations/0008_local_users.sql"),
];

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value did not parse.
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
    /// Made by a newer version.
    #[error("the database is at version {0}, newer than this build")]
    TooNew(usize),
    /// The caller asked for something inconsistent.
    #[error("{0}")]
    Invalid(String),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Sqlite(e) => StoreError::Sqlite(e),
            OpenError::TooNew { found, .. } => StoreError::TooNew(found),
        }
    }
}

/// JSON of a value stored in a column.
fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A value from a JSON column.
fn from_json<T: serde::de::DeserializeOwned>(j: &str) -> Result<T, StoreError> {
    serde_json::from_str(j).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The edge's database: one connection of its own. Clones share the connection.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (creating and migrating) the database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::open(path, MIGRATIONS, Options::default())?;
        Ok(Store { db })
    }

    /// An in-memory database with the same schema (unit tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let db = Database::open_in_memory(MIGRATIONS, Options::default())?;
        Ok(Store { db })
    }

    /// Runs `f` with the connection (one statement or one transaction per method).
    fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.db.with(f)
    }
}

/// An outbox whose rows carry an attempt count, a retry time, the last error and a refusal
/// (same column names in each).
#[derive(Debug, Clone, Copy)]
enum Queue {
    Archive,
    Thumbnail,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::Archive => "archive_outbox",
            Queue::Thumbnail => "thumbnail_outbox",
        }
    }
}

impl Store {
    /// Counts a failed attempt on `event_id`'s row of `queue` and sets its next try.
    fn retry_at(
        &self,
        queue: Queue,
        event_id: &str,
        next_attempt_ms: u64,
        error: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE {} SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3
             WHERE event_id = ?1",
            queue.table()
        );
        self.with(|c| {
            c.execute(
                &sql,
                rusqlite::params![event_id, next_attempt_ms as i64, error],
            )?;
            Ok(())
        })
    }

    /// Rows the vm refused for good, kept and no longer sent: (events, archives, thumbnails).
    pub fn parked(&self) -> Result<(u64, u64, u64), StoreError> {
        self.with(|c| {
            let count = |table: &str| -> Result<u64, StoreError> {
                Ok(c.query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE refused_reason IS NOT NULL"),
                    [],
                    |r| r.get::<_, i64>(0),
                )? as u64)
            };
            Ok((
                count("event_outbox")?,
                count(Queue::Archive.table())?,
                count(Queue::Thumbnail.table())?,
            ))
        })
    }

    /// Parks `event_id`'s row of `queue` with the refusal's reason.
    fn park(&self, queue: Queue, event_id: &str, reason: &str) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE {} SET refused_reason = ?2 WHERE event_id = ?1",
            queue.table()
        );
        self.with(|c| {
            c.execute(&sql, rusqlite::params![event_id, reason])?;
            Ok(())
        })
    }
}

/// The store for async code: each call runs on the blocking pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db(Store);

impl Db {
    /// Async access to `store`.
    pub fn new(store: Store) -> Self {
        Db(store)
    }

    /// Runs `f` with the store on the blocking pool.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let mut store = self.0.clone();
        match tokio::task::spawn_blocking(move || f(&mut store)).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a store call was cancelled: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLES: &[&str] = &[
        "archive_outbox",
        "camera_status",
        "event_outbox",
        "events",
        "local_users",
        "playback_nonces",
        "state",
    ];

    #[test]
    fn migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.sqlite");
        let first = Store::open(&p).unwrap();
        let schema = first.with(|c| Ok(guardian_sqlite::schema(c)?)).unwrap();
        for t in TABLES {
            assert!(
                schema.contains(&format!("table {t}: CREATE TABLE {t}")),
                "{t}: {schema}"
            );
        }
        assert!(schema.contains("index events_by_start"), "{schema}");
        assert!(
            schema.contains("index playback_nonces_by_expiry"),
            "{schema}"
        );
        first
            .enqueue_event(&outbox::tests::record("kept"), 1)
            .unwrap();
        drop(first);

        // Opening again applies nothing: same schema, same version, the row kept.
        let again = Store::open(&p).unwrap();
        let (schema2, version) = again
            .with(|c| {
                let v: usize = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
                Ok((guardian_sqlite::schema(c)?, v))
            })
            .unwrap();
        assert_eq!(schema2, schema);
        assert_eq!(version, MIGRATIONS.len());
        assert_eq!(again.event_backlog().unwrap(), 1);
        // A fresh database has the same schema as an upgraded one.
        let fresh = Store::open_in_memory().unwrap();
        assert_eq!(
            fresh.with(|c| Ok(guardian_sqlite::schema(c)?)).unwrap(),
            schema
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.sqlite");
        Store::open(&p).unwrap();
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", MIGRATIONS.len() + 1)
            .unwrap();
        drop(c);
        assert!(matches!(
            Store::open(&p),
            Err(StoreError::TooNew(n)) if n == MIGRATIONS.len() + 1
        ));
    }

    #[tokio::test]
    async fn db_calls_run_on_the_blocking_pool_and_see_each_other() {
        let db = Db::new(Store::open_in_memory().unwrap());
        db.call(|s| s.enqueue_event(&outbox::tests::record("a"), 1))
            .await
            .unwrap();
        let n = db.call(|s| s.event_backlog()).await.unwrap();
        assert_eq!(n, 1);
    }
}
