//! The one SQLite helper of the edge and the vm.
//!
//! [`Database::open`] opens (creating if needed) a database file, sets the pragmas both nodes
//! rely on (WAL so a second process, such as a CLI command, can write while the service
//! runs; `synchronous = FULL` so a commit survives power loss; a busy timeout; foreign keys
//! where asked), then applies the migrations not yet applied, each in its own transaction,
//! tracked in `PRAGMA user_version`. One connection behind a mutex is the single writer:
//! async callers go through [`Database::call`] (the blocking pool), threads and CLI commands
//! through [`Database::with`].

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use rusqlite;
use rusqlite::Connection;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was made by a newer version of the program.
    #[error("the database is at version {found}, newer than this build's {supported}")]
    TooNew {
        /// Its version.
        found: usize,
        /// The newest this build knows.
        supported: usize,
    },
}

/// How a database is opened.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
    /// How long a statement waits for another process's lock.
    pub busy_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            foreign_keys: false,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// Applies the migrations `conn` has not had yet (`migrations[i]` brings the schema to
/// version `i + 1`); returns how many it applied.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<usize, OpenError> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > migrations.len() {
        return Err(OpenError::TooNew {
            found: version,
            supported: migrations.len(),
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(migrations.len() - version)
}

/// The schema as text (every table, index and trigger, in name order), to compare.
pub fn schema(conn: &Connection) -> Result<String, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{} {}: {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
}

/// A database: one connection behind a mutex. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

impl Database {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, migrations: &[&str], options: Options) -> Result<Self, OpenError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(options.busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        if options.foreign_keys {
            conn.pragma_update(None, "foreign_keys", "ON")?;
        }
        migrate(&mut conn, migrations)?;
        Ok(Database {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// An in-memory database with the same migrations (unit tests).
    pub fn open_in_memory(migrations: &[&str], options: Options) -> Result<Self, OpenError> {
        let mut conn = Connection::open_in_memory()?;
        if options.foreign_keys {
            conn.pragma_update(None, "foreign_keys", "ON")?;
        }
        migrate(&mut conn, migrations)?;
        Ok(Database {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A closure that panicked left no open transaction behind (rusqlite rolls back on
        // drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    {
        let conn = self.conn.clone();
        match tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a database call was cancelled: {e}"),
        }
    }

    /// Runs `f` with the connection on this thread (CLI commands, camera threads).
    pub fn with<R, E>(&self, f: impl FnOnce(&mut Connection) -> Result<R, E>) -> Result<R, E> {
        f(&mut self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[&str] = &[
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT NOT NULL);",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id));
         CREATE INDEX b_a ON b(a_id);",
    ];

    #[test]
    fn migrations_apply_once_and_leave_the_same_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let first = Database::open(&path, MIGRATIONS, Options::default()).unwrap();
        let schema1 = first.with(|c| schema(c)).unwrap();
        assert!(schema1.contains("CREATE TABLE b"), "{schema1}");
        assert!(schema1.contains("CREATE INDEX b_a"), "{schema1}");
        first
            .with(|c| c.execute("INSERT INTO a (v) VALUES ('kept')", []))
            .unwrap();
        drop(first);

        let mut again = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut again, MIGRATIONS).unwrap(), 0, "nothing new");
        assert_eq!(schema(&again).unwrap(), schema1);
        let kept: String = again
            .query_row("SELECT v FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "kept");
        let mode: String = again
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        Database::open(&path, MIGRATIONS, Options::default()).unwrap();
        let err = Database::open(&path, &MIGRATIONS[..1], Options::default()).unwrap_err();
        assert!(
            matches!(
                err,
                OpenError::TooNew {
                    found: 2,
                    supported: 1
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_failed_migration_leaves_the_previous_version() {
        let mut c = Connection::open_in_memory().unwrap();
        let bad = [MIGRATIONS[0], "CREATE TABLE b (; -- broken"];
        assert!(migrate(&mut c, &bad).is_err());
        let v: usize = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
        assert_eq!(migrate(&mut c, MIGRATIONS).unwrap(), 1);
    }

    #[test]
    fn foreign_keys_when_asked() {
        let db = Database::open_in_memory(
            MIGRATIONS,
            Options {
                foreign_keys: true,
                ..Options::default()
            },
        )
        .unwrap();
        let r = db.with(|c| c.execute("INSERT INTO b (a_id) VALUES (42)", []));
        assert!(r.is_err(), "a dangling reference is refused");
    }

    #[tokio::test]
    async fn call_runs_on_the_blocking_pool_and_returns_the_closure_error() {
        let db = Database::open_in_memory(MIGRATIONS, Options::default()).unwrap();
        let n = db
            .call(|c| c.execute("INSERT INTO a (v) VALUES ('x')", []))
            .await
            .unwrap();
        assert_eq!(n, 1);
        #[derive(Debug, PartialEq)]
        struct Mine;
        let e = db.call(|_| Err::<(), _>(Mine)).await.unwrap_err();
        assert_eq!(e, Mine);
    }
}
