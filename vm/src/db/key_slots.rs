//! The household's key slots at the vm (tables `key_slot_lists`, `config_acks`, and the
//! tenant's `owner_signing_key`): the lists as the owner signed them, and what each edge did
//! with each configuration section. The vm keeps and forwards lists; it cannot make one.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{DbError, u};

/// A stored list: the CBOR body and signature exactly as the owner's CLI made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredList {
    /// Its version.
    pub version: u64,
    /// The signed CBOR body.
    pub body: Vec<u8>,
    /// The ed25519 signature.
    pub signature: Vec<u8>,
    /// Uploaded at, Unix ms.
    pub uploaded_at_ms: u64,
}

/// What an edge did with a section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckRow {
    /// The edge.
    pub peer_id: String,
    /// The revision it runs.
    pub applied_revision: Option<u64>,
    /// The last revision offered to it.
    pub offered_revision: Option<u64>,
    /// Why it refused the offered revision, if it did.
    pub refused_reason: Option<String>,
    /// When this was last updated, Unix ms.
    pub updated_at_ms: u64,
}

/// The tenant's owner signing key (hex), if a package named one.
pub fn owner_signing_key(c: &Connection) -> Result<Option<String>, DbError> {
    Ok(
        c.query_row("SELECT owner_signing_key FROM tenant", [], |r| {
            r.get::<_, Option<String>>(0)
        })
        .optional()?
        .flatten(),
    )
}

/// Sets the tenant's owner signing key.
pub fn set_owner_signing_key(c: &Connection, key_hex: &str) -> Result<(), DbError> {
    c.execute("UPDATE tenant SET owner_signing_key = ?1", [key_hex])?;
    Ok(())
}

/// The latest list, if any.
pub fn latest_key_slots(c: &Connection) -> Result<Option<StoredList>, DbError> {
    Ok(c.query_row(
        "SELECT version, body, signature, uploaded_at_ms FROM key_slot_lists
         ORDER BY version DESC LIMIT 1",
        [],
        |r| {
            Ok(StoredList {
                version: u(r.get(0)?),
                body: r.get(1)?,
                signature: r.get(2)?,
                uploaded_at_ms: u(r.get(3)?),
            })
        },
    )
    .optional()?)
}

/// Stores a list (its version must be new).
pub fn insert_key_slots(c: &Connection, l: &StoredList) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO key_slot_lists (version, body, signature, uploaded_at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![l.version as i64, l.body, l.signature, l.uploaded_at_ms as i64],
    )?;
    Ok(())
}

/// Records that `revision` of `section` was offered to `peer`.
pub fn record_offer(
    c: &Connection,
    peer: &str,
    section: &str,
    revision: u64,
    now_ms: u64,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO config_acks (peer_id, section, offered_revision, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (peer_id, section) DO UPDATE SET offered_revision = ?3, updated_at_ms = ?4",
        params![peer, section, revision as i64, now_ms as i64],
    )?;
    Ok(())
}

/// Records an edge's answer for `section`: the revision it runs, and the reason it refused
/// the one offered (`None` when it applied it).
pub fn record_ack(
    c: &Connection,
    peer: &str,
    section: &str,
    applied: Option<u64>,
    refused_reason: Option<&str>,
    now_ms: u64,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO config_acks (peer_id, section, applied_revision, refused_reason, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (peer_id, section) DO UPDATE SET applied_revision = ?3,
            refused_reason = ?4, updated_at_ms = ?5",
        params![
            peer,
            section,
            applied.map(|v| v as i64),
            refused_reason,
            now_ms as i64
        ],
    )?;
    Ok(())
}

/// Every edge's state for `section`, by peer id.
pub fn config_acks(c: &Connection, section: &str) -> Result<Vec<AckRow>, DbError> {
    let mut stmt = c.prepare(
        "SELECT peer_id, applied_revision, offered_revision, refused_reason, updated_at_ms
         FROM config_acks WHERE section = ?1 ORDER BY peer_id",
    )?;
    let rows = stmt.query_map([section], |r| {
        Ok(AckRow {
            peer_id: r.get(0)?,
            applied_revision: r.get::<_, Option<i64>>(1)?.map(u),
            offered_revision: r.get::<_, Option<i64>>(2)?.map(u),
            refused_reason: r.get(3)?,
            updated_at_ms: u(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tests::enrolled;

    #[test]
    fn lists_by_version_and_acks_per_edge() {
        let db = crate::db::Db::open_in_memory().unwrap();
        db.with(|c| {
            crate::db::insert_tenant(c, "t", 1, "{}", "hash")?;
            assert_eq!(owner_signing_key(c)?, None);
            set_owner_signing_key(c, "ab")?;
            assert_eq!(owner_signing_key(c)?.as_deref(), Some("ab"));
            assert!(latest_key_slots(c)?.is_none());
            for v in [1u64, 2] {
                insert_key_slots(
                    c,
                    &StoredList {
                        version: v,
                        body: vec![v as u8],
                        signature: vec![0; 64],
                        uploaded_at_ms: v,
                    },
                )?;
            }
            assert_eq!(latest_key_slots(c)?.unwrap().version, 2);
            let dup = StoredList {
                version: 2,
                body: vec![],
                signature: vec![],
                uploaded_at_ms: 3,
            };
            assert!(
                insert_key_slots(c, &dup).is_err(),
                "a version is stored once"
            );

            enrolled(c, "p1", 1)?;
            record_offer(c, "p1", "key_slots", 2, 5)?;
            let a = &config_acks(c, "key_slots")?[0];
            assert_eq!((a.applied_revision, a.offered_revision), (None, Some(2)));
            record_ack(c, "p1", "key_slots", Some(1), Some("bad signature"), 6)?;
            let a = &config_acks(c, "key_slots")?[0];
            assert_eq!(a.applied_revision, Some(1));
            assert_eq!(a.offered_revision, Some(2));
            assert_eq!(a.refused_reason.as_deref(), Some("bad signature"));
            record_ack(c, "p1", "key_slots", Some(2), None, 7)?;
            let a = &config_acks(c, "key_slots")?[0];
            assert_eq!(
                (a.applied_revision, a.refused_reason.as_deref()),
                (Some(2), None)
            );
            assert!(config_acks(c, "cameras")?.is_empty());
            Ok(())
        })
        .unwrap();
    }
}
