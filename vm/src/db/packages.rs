//! The tenant row and the install packages (their single-use enrollment tokens), and who may
//! connect because of them.

use rusqlite::{Connection, OptionalExtension, params};

use super::{DbError, u};

/// An install package's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRow {
    /// The token's id.
    pub token_id: String,
    /// The peer id of the token's enrollment identity: the one peer that may enroll with it
    /// (the edge's own key is unknown until it enrolls).
    pub enroll_peer_id: String,
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

/// The tenant's key-derivation parameters (JSON), written at `init`.
pub fn tenant_kdf_json(c: &Connection) -> Result<String, DbError> {
    Ok(c.query_row("SELECT kdf_json FROM tenant", [], |r| r.get(0))?)
}

/// The owner's recipient of the latest install package (what new edges seal to).
pub fn latest_owner_recipient(c: &Connection) -> Result<Option<String>, DbError> {
    use rusqlite::OptionalExtension;
    Ok(c.query_row(
        "SELECT recipient FROM packages ORDER BY issued_at_ms DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()?)
}

/// Records a new install package.
pub fn insert_package(c: &Connection, p: &PackageRow) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO packages (token_id, enroll_peer_id, edge_name, recipient, issued_at_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            p.token_id,
            p.enroll_peer_id,
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
            "SELECT token_id, enroll_peer_id, edge_name, recipient, issued_at_ms, expires_at_ms, used_at_ms
             FROM packages WHERE token_id = ?1",
            [token_id],
            |r| {
                Ok(PackageRow {
                    token_id: r.get(0)?,
                    enroll_peer_id: r.get(1)?,
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

/// How long after its expiry an unspent package's enrollment identity may still connect, to
/// be told by the enrollment protocol that its token expired (rather than being dropped
/// without a reason); and how long after it was spent, so an edge whose answer was lost is
/// answered again (even by a restarted vm), and a copy of a spent package is told so.
pub const EXPIRED_GRACE_MS: u64 = 7 * 24 * 3600 * 1000;

/// Peers that may connect: registered devices (their own keys), and the enrollment
/// identities of packages that are unspent (and expired less than [`EXPIRED_GRACE_MS`] ago)
/// or were spent less than [`EXPIRED_GRACE_MS`] ago.
pub fn allowed_peers(c: &Connection, now_ms: u64) -> Result<Vec<String>, DbError> {
    let mut stmt = c.prepare(
        "SELECT peer_id FROM devices
         UNION
         SELECT enroll_peer_id FROM packages
         WHERE (used_at_ms IS NULL AND expires_at_ms > ?1) OR used_at_ms > ?1",
    )?;
    let rows = stmt.query_map([now_ms.saturating_sub(EXPIRED_GRACE_MS) as i64], |r| {
        r.get::<_, String>(0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
