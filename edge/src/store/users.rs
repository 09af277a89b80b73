//! The household's users as the vm synced them (table `local_users`, the revision in `state`
//! under `users_revision`): who may sign in to the edge's LAN web app. A newer revision of the
//! users section replaces the whole list in one transaction; an older or equal one changes
//! nothing.

use guardian_sqlite::rusqlite::{OptionalExtension, params};
use protocols::messages::config::{LocalUser, Role, UsersSection};

use super::{Store, StoreError, from_json, to_json};

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The user name.
    pub name: String,
    /// The Argon2id PHC string of the password.
    pub password_phc: String,
    /// Admin or viewer.
    pub role: Role,
    /// The cameras the user sees; `None` for every camera.
    pub cameras: Option<Vec<String>>,
}

/// What replacing the users did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsersApplied {
    /// This revision is stored.
    Applied(u64),
    /// The stored revision is this one or newer; nothing changed.
    Stale {
        /// The stored revision.
        applied: u64,
    },
}

impl Store {
    /// The revision of the users stored, if any.
    pub fn users_revision(&self) -> Result<Option<u64>, StoreError> {
        self.with(|c| {
            let v: Option<String> = c
                .query_row(
                    "SELECT value FROM state WHERE key = 'users_revision'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            v.map(|v| {
                v.parse::<u64>()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .transpose()
        })
    }

    /// Replaces every user with `section`'s, unless the stored revision is the same or newer.
    /// The caller validated it.
    pub fn replace_users(&mut self, section: &UsersSection) -> Result<UsersApplied, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let held: Option<String> = tx
                .query_row(
                    "SELECT value FROM state WHERE key = 'users_revision'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(applied) = held.and_then(|v| v.parse::<u64>().ok())
                && applied >= section.revision
            {
                return Ok(UsersApplied::Stale { applied });
            }
            tx.execute("DELETE FROM local_users", [])?;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO local_users (name, password_phc, role, cameras_json)
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for LocalUser {
                    name,
                    password_phc,
                    role,
                    cameras,
                } in &section.users
                {
                    let cameras = cameras.as_ref().map(to_json).transpose()?;
                    stmt.execute(params![name, password_phc, role.as_str(), cameras])?;
                }
            }
            tx.execute(
                "INSERT INTO state (key, value) VALUES ('users_revision', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [section.revision.to_string()],
            )?;
            tx.commit()?;
            Ok(UsersApplied::Applied(section.revision))
        })
    }

    /// One user by name.
    pub fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let row: Option<(String, String, String, Option<String>)> = self.with(|c| {
            Ok(c.query_row(
                "SELECT name, password_phc, role, cameras_json FROM local_users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?)
        })?;
        row.map(|(name, password_phc, role, cameras)| {
            Ok(UserRow {
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("user role {role:?}")))?,
                cameras: cameras.as_deref().map(from_json).transpose()?,
                name,
                password_phc,
            })
        })
        .transpose()
    }

    /// Every user's name, in order.
    pub fn user_names(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT name FROM local_users ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(revision: u64, names: &[&str]) -> UsersSection {
        UsersSection {
            revision,
            users: names
                .iter()
                .map(|n| LocalUser {
                    name: (*n).into(),
                    password_phc: format!("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA{n}"),
                    role: Role::Viewer,
                    cameras: Some(vec!["porch".into()]),
                })
                .collect(),
        }
    }

    #[test]
    fn a_newer_revision_replaces_every_user_and_an_older_changes_nothing() {
        let mut s = Store::open_in_memory().unwrap();
        assert_eq!(s.users_revision().unwrap(), None);
        assert_eq!(s.user("alice").unwrap(), None);
        assert_eq!(
            s.replace_users(&section(2, &["alice", "bob"])).unwrap(),
            UsersApplied::Applied(2)
        );
        let alice = s.user("alice").unwrap().unwrap();
        assert_eq!(alice.role, Role::Viewer);
        assert_eq!(alice.cameras, Some(vec!["porch".to_owned()]));
        assert!(alice.password_phc.ends_with("alice"));
        assert_eq!(
            s.replace_users(&section(2, &["carol"])).unwrap(),
            UsersApplied::Stale { applied: 2 }
        );
        assert_eq!(s.user_names().unwrap(), ["alice", "bob"]);
        assert_eq!(
            s.replace_users(&section(3, &["carol"])).unwrap(),
            UsersApplied::Applied(3)
        );
        assert_eq!(s.user_names().unwrap(), ["carol"]);
        assert_eq!(s.users_revision().unwrap(), Some(3));
    }
}
