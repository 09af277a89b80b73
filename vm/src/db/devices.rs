//! Registered edges: enrollment (spending the token), lookups, last seen.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{DbError, u};

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
    /// The recipient its clips are sealed to (the owner's).
    pub recipient: String,
    /// The edge's own X25519 age recipient, for secrets sent to it (`None` for devices
    /// enrolled before edges made their own keys).
    pub age_recipient: Option<String>,
    /// Enrolled at, Unix ms.
    pub enrolled_at_ms: u64,
    /// Its software version.
    pub agent_version: String,
    /// Last heard from, Unix ms.
    pub last_seen_ms: u64,
}

/// Spends the token and registers the device, atomically.
pub fn enroll_device(c: &mut Connection, d: &DeviceRow) -> Result<(), DbError> {
    let tx = c.transaction()?;
    tx.execute(
        "UPDATE packages SET used_at_ms = ?2 WHERE token_id = ?1 AND used_at_ms IS NULL",
        params![d.token_id, d.enrolled_at_ms as i64],
    )?;
    tx.execute(
        "INSERT INTO devices (peer_id, name, token_id, recipient, age_recipient, enrolled_at_ms, agent_version, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
        params![
            d.peer_id,
            d.name,
            d.token_id,
            d.recipient,
            d.age_recipient,
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
        age_recipient: r.get(4)?,
        enrolled_at_ms: u(r.get(5)?),
        agent_version: r.get(6)?,
        last_seen_ms: u(r.get(7)?),
    })
}

const DEVICE_COLUMNS: &str = "peer_id, name, token_id, recipient, age_recipient, enrolled_at_ms, agent_version, last_seen_ms";

/// A registered device by peer id.
pub fn device(c: &Connection, peer_id: &str) -> Result<Option<DeviceRow>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE peer_id = ?1"),
        [peer_id],
        device_from_row,
    )
    .optional()?)
}

/// The device registered with a token, if any.
pub fn device_by_token(c: &Connection, token_id: &str) -> Result<Option<DeviceRow>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_id = ?1"),
        [token_id],
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
