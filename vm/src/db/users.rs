//! Users of the web app and their sessions. A session is stored by the SHA-256 of its cookie
//! value; a session without a user was opened with the owner token.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{DbError, u};

/// A user as the API shows it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    /// The sign-in name.
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// The cameras it may see (`None`: all).
    pub cameras: Option<Vec<String>>,
    /// Created at, Unix ms.
    pub created_at_ms: u64,
    /// Last successful sign-in, Unix ms.
    pub last_sign_in_ms: Option<u64>,
}

/// A user with its password hash, for signing in and for the edges' copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSecret {
    /// The user.
    pub user: UserRow,
    /// Its Argon2id PHC string.
    pub password_phc: String,
}

fn cameras_json(cameras: &Option<Vec<String>>) -> Option<String> {
    cameras
        .as_ref()
        .map(|c| serde_json::to_string(c).expect("strings serialize"))
}

fn user_secret(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserSecret> {
    let cameras: Option<String> = r.get(3)?;
    Ok(UserSecret {
        user: UserRow {
            name: r.get(0)?,
            role: r.get(2)?,
            cameras: cameras.and_then(|c| serde_json::from_str(&c).ok()),
            created_at_ms: u(r.get(4)?),
            last_sign_in_ms: r.get::<_, Option<i64>>(5)?.map(u),
        },
        password_phc: r.get(1)?,
    })
}

const USER_COLUMNS: &str = "name, password_phc, role, cameras_json, created_at_ms, last_sign_in_ms";

/// Every user, by name.
pub fn users(c: &Connection) -> Result<Vec<UserSecret>, DbError> {
    let mut stmt = c.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?;
    let rows = stmt.query_map([], user_secret)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One user by name.
pub fn user(c: &Connection, name: &str) -> Result<Option<UserSecret>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
        [name],
        user_secret,
    )
    .optional()?)
}

/// Creates or changes a user; `password_phc` `None` keeps the stored one (the user must exist
/// then). Returns false when it does not.
pub fn put_user(
    c: &Connection,
    name: &str,
    password_phc: Option<&str>,
    role: &str,
    cameras: &Option<Vec<String>>,
    now_ms: u64,
) -> Result<bool, DbError> {
    let cams = cameras_json(cameras);
    let n = match password_phc {
        Some(phc) => c.execute(
            "INSERT INTO users (name, password_phc, role, cameras_json, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (name) DO UPDATE SET password_phc = excluded.password_phc,
                 role = excluded.role, cameras_json = excluded.cameras_json,
                 updated_at_ms = excluded.updated_at_ms",
            params![name, phc, role, cams, now_ms as i64],
        )?,
        None => c.execute(
            "UPDATE users SET role = ?2, cameras_json = ?3, updated_at_ms = ?4 WHERE name = ?1",
            params![name, role, cams, now_ms as i64],
        )?,
    };
    if n == 1 {
        bump_revision(c)?;
    }
    if n == 1 && password_phc.is_some() {
        // A new password ends the sessions opened with the old one.
        c.execute("DELETE FROM sessions WHERE user_name = ?1", [name])?;
    }
    Ok(n == 1)
}

/// Deletes a user and its sessions; false when there was none.
pub fn delete_user(c: &Connection, name: &str) -> Result<bool, DbError> {
    c.execute("DELETE FROM sessions WHERE user_name = ?1", [name])?;
    let gone = c.execute("DELETE FROM users WHERE name = ?1", [name])? == 1;
    if gone {
        bump_revision(c)?;
    }
    Ok(gone)
}

/// Records a successful sign-in.
pub fn user_signed_in(c: &Connection, name: &str, now_ms: u64) -> Result<(), DbError> {
    c.execute(
        "UPDATE users SET last_sign_in_ms = ?2 WHERE name = ?1",
        params![name, now_ms as i64],
    )?;
    Ok(())
}

/// The revision of the users (bumped by every change): the edges' copy is pushed when theirs
/// is older.
pub fn users_revision(c: &Connection) -> Result<u64, DbError> {
    Ok(c.query_row("SELECT revision FROM users_revision", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(u)?)
}

fn bump_revision(c: &Connection) -> Result<(), DbError> {
    c.execute("UPDATE users_revision SET revision = revision + 1", [])?;
    Ok(())
}

/// Stores a new session (expired ones are dropped on the way).
pub fn insert_session(
    c: &Connection,
    id_sha256: &str,
    user_name: Option<&str>,
    now_ms: u64,
    expires_at_ms: u64,
) -> Result<(), DbError> {
    c.execute(
        "DELETE FROM sessions WHERE expires_at_ms <= ?1",
        [now_ms as i64],
    )?;
    c.execute(
        "INSERT INTO sessions (id_sha256, user_name, created_at_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![id_sha256, user_name, now_ms as i64, expires_at_ms as i64],
    )?;
    Ok(())
}

/// Who a live session is (`Some(None)`: the owner token's; `None`: no live session), and when
/// it expires.
pub fn session(
    c: &Connection,
    id_sha256: &str,
    now_ms: u64,
) -> Result<Option<(Option<UserSecret>, u64)>, DbError> {
    let row: Option<(Option<String>, i64)> = c
        .query_row(
            "SELECT user_name, expires_at_ms FROM sessions WHERE id_sha256 = ?1 AND expires_at_ms > ?2",
            params![id_sha256, now_ms as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((name, expires)) = row else {
        return Ok(None);
    };
    match name {
        None => Ok(Some((None, u(expires)))),
        Some(n) => Ok(user(c, &n)?.map(|s| (Some(s), u(expires)))),
    }
}

/// Ends a session.
pub fn delete_session(c: &Connection, id_sha256: &str) -> Result<(), DbError> {
    c.execute("DELETE FROM sessions WHERE id_sha256 = ?1", [id_sha256])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn users_and_sessions_live_and_end_together() {
        let db = Db::open_in_memory().unwrap();
        db.with(|c| {
            let cams = Some(vec!["porch".to_owned()]);
            assert!(put_user(
                c,
                "ana",
                Some("$argon2id$x"),
                "viewer",
                &cams,
                10
            )?);
            assert!(
                !put_user(c, "bob", None, "viewer", &None, 10)?,
                "no such user"
            );
            let ana = user(c, "ana")?.unwrap();
            assert_eq!(
                (ana.user.role.as_str(), ana.user.cameras.clone()),
                ("viewer", cams)
            );
            insert_session(c, "s1", Some("ana"), 20, 100)?;
            insert_session(c, "s0", None, 20, 100)?;
            assert!(session(c, "s1", 50)?.unwrap().0.is_some());
            assert!(session(c, "s0", 50)?.unwrap().0.is_none(), "the owner's");
            assert!(session(c, "s1", 100)?.is_none(), "expired");
            // A role change keeps sessions; a new password ends them.
            assert!(put_user(c, "ana", None, "admin", &None, 30)?);
            assert!(session(c, "s1", 50)?.is_some());
            assert!(put_user(c, "ana", Some("$argon2id$y"), "admin", &None, 40)?);
            assert!(session(c, "s1", 50)?.is_none());
            insert_session(c, "s2", Some("ana"), 45, 200)?;
            let r0 = users_revision(c)?;
            assert!(delete_user(c, "ana")?);
            assert!(session(c, "s2", 50)?.is_none());
            assert_ne!(users_revision(c)?, r0);
            assert!(users(c)?.is_empty());
            Ok(())
        })
        .unwrap();
    }
}
