//! The WireGuard overlay's peers: the enrolled edges' keys (negotiated over `/guardian/wg/1`)
//! and the owner's devices, each with the index its overlay addresses come from (given once,
//! never again).

use rusqlite::{Connection, OptionalExtension, params};

use super::{DbError, u};

/// What kind of peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayKind {
    /// An enrolled edge.
    Edge,
    /// One of the owner's devices (a phone, a laptop).
    Device,
}

impl OverlayKind {
    fn as_str(self) -> &'static str {
        match self {
            OverlayKind::Edge => "edge",
            OverlayKind::Device => "device",
        }
    }
}

/// A peer of the vm's WireGuard device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayPeer {
    /// Its index (≥ 1): its addresses are host `index + 1` of the overlay's prefixes.
    pub index: u32,
    /// An edge or a device.
    pub kind: OverlayKind,
    /// An edge's libp2p peer id.
    pub peer_id: Option<String>,
    /// A device's name.
    pub name: Option<String>,
    /// Its WireGuard public key (base64).
    pub public_key: String,
    /// An edge's key generation (0 for devices).
    pub generation: u64,
    /// The port of an edge's local API on its overlay addresses (0: none).
    pub api_port: u16,
    /// Registered at, Unix ms.
    pub created_ms: u64,
    /// Last changed at, Unix ms.
    pub updated_ms: u64,
    /// An admin asked the edge for a new key (cleared when it offers one).
    pub rotate_requested: bool,
}

const COLUMNS: &str = "idx, kind, peer_id, name, public_key, generation, api_port, created_ms, \
                       updated_ms, rotate_requested";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(OverlayPeer, String)> {
    let kind: String = r.get(1)?;
    Ok((
        OverlayPeer {
            index: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            kind: OverlayKind::Edge,
            peer_id: r.get(2)?,
            name: r.get(3)?,
            public_key: r.get(4)?,
            generation: u(r.get(5)?),
            api_port: u16::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
            created_ms: u(r.get(7)?),
            updated_ms: u(r.get(8)?),
            rotate_requested: r.get::<_, i64>(9)? != 0,
        },
        kind,
    ))
}

fn checked((mut p, kind): (OverlayPeer, String)) -> Result<OverlayPeer, DbError> {
    p.kind = match kind.as_str() {
        "edge" => OverlayKind::Edge,
        "device" => OverlayKind::Device,
        other => return Err(DbError::Corrupt(format!("overlay peer kind {other:?}"))),
    };
    if p.index == 0 {
        return Err(DbError::Corrupt("overlay peer index out of range".into()));
    }
    Ok(p)
}

fn query_one(c: &Connection, condition: &str, value: &str) -> Result<Option<OverlayPeer>, DbError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM overlay_peers WHERE {condition} = ?1"),
        [value],
        from_row,
    )
    .optional()?
    .map(checked)
    .transpose()
}

/// Every peer, by index.
pub fn overlay_peers(c: &Connection) -> Result<Vec<OverlayPeer>, DbError> {
    let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM overlay_peers ORDER BY idx"))?;
    let rows = st.query_map([], from_row)?;
    rows.map(|r| checked(r?)).collect()
}

/// An edge's peer, by its libp2p peer id.
pub fn overlay_edge(c: &Connection, peer_id: &str) -> Result<Option<OverlayPeer>, DbError> {
    query_one(c, "kind = 'edge' AND peer_id", peer_id)
}

/// A device, by name.
pub fn overlay_device(c: &Connection, name: &str) -> Result<Option<OverlayPeer>, DbError> {
    query_one(c, "kind = 'device' AND name", name)
}

/// The peer holding a public key (base64).
pub fn overlay_peer_by_key(c: &Connection, key: &str) -> Result<Option<OverlayPeer>, DbError> {
    query_one(c, "public_key", key)
}

/// Registers an edge's first key: a new index.
pub fn insert_overlay_edge(
    c: &Connection,
    peer_id: &str,
    public_key: &str,
    generation: u64,
    api_port: u16,
    now_ms: u64,
) -> Result<OverlayPeer, DbError> {
    c.execute(
        "INSERT INTO overlay_peers (kind, peer_id, public_key, generation, api_port, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            OverlayKind::Edge.as_str(),
            peer_id,
            public_key,
            generation as i64,
            api_port,
            now_ms as i64
        ],
    )?;
    overlay_edge(c, peer_id)?
        .ok_or_else(|| DbError::Corrupt("the new overlay peer vanished".into()))
}

/// Stores an edge's offer: its key, generation and API port. A new key clears a rotation
/// request (the edge did what was asked). `false` when the edge has no peer.
pub fn update_overlay_edge(
    c: &Connection,
    peer_id: &str,
    public_key: &str,
    generation: u64,
    api_port: u16,
    now_ms: u64,
) -> Result<bool, DbError> {
    // SQLite evaluates every SET expression on the row as it was.
    let n = c.execute(
        "UPDATE overlay_peers SET
             rotate_requested = CASE WHEN public_key = ?2 THEN rotate_requested ELSE 0 END,
             public_key = ?2, generation = ?3, api_port = ?4, updated_ms = ?5
         WHERE kind = 'edge' AND peer_id = ?1",
        params![
            peer_id,
            public_key,
            generation as i64,
            api_port,
            now_ms as i64
        ],
    )?;
    Ok(n == 1)
}

/// Asks the edge for a new key at its next offer. `false` when the edge has no peer.
pub fn request_overlay_rotation(
    c: &Connection,
    peer_id: &str,
    now_ms: u64,
) -> Result<bool, DbError> {
    let n = c.execute(
        "UPDATE overlay_peers SET rotate_requested = 1, updated_ms = ?2
         WHERE kind = 'edge' AND peer_id = ?1",
        params![peer_id, now_ms as i64],
    )?;
    Ok(n == 1)
}

/// Registers an owner's device: a new index. The name and the key must be free (a taken one
/// is a constraint error: check first, in the same transaction).
pub fn insert_overlay_device(
    c: &Connection,
    name: &str,
    public_key: &str,
    now_ms: u64,
) -> Result<OverlayPeer, DbError> {
    c.execute(
        "INSERT INTO overlay_peers (kind, name, public_key, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![
            OverlayKind::Device.as_str(),
            name,
            public_key,
            now_ms as i64
        ],
    )?;
    overlay_device(c, name)?.ok_or_else(|| DbError::Corrupt("the new overlay peer vanished".into()))
}

/// Removes a device; what it was, or `None` when there was none of that name.
pub fn delete_overlay_device(c: &Connection, name: &str) -> Result<Option<OverlayPeer>, DbError> {
    let Some(d) = overlay_device(c, name)? else {
        return Ok(None);
    };
    c.execute("DELETE FROM overlay_peers WHERE idx = ?1", [d.index as i64])?;
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_and_devices_get_indexes_that_are_never_given_again() {
        let db = crate::db::Db::open_in_memory().unwrap();
        db.with(|c| {
            crate::db::tests::enrolled(c, "edge-a", 1)?;
            let a = insert_overlay_edge(c, "edge-a", "KA=", 1, 7080, 10)?;
            assert_eq!(
                (
                    a.index,
                    a.kind,
                    a.generation,
                    a.api_port,
                    a.rotate_requested
                ),
                (1, OverlayKind::Edge, 1, 7080, false)
            );
            assert_eq!(a.name, None);
            let phone = insert_overlay_device(c, "phone", "KP=", 20)?;
            assert_eq!((phone.index, phone.kind), (2, OverlayKind::Device));
            assert_eq!(phone.name.as_deref(), Some("phone"));
            // Names and keys are unique; an edge must be enrolled.
            assert!(insert_overlay_device(c, "phone", "KQ=", 21).is_err());
            assert!(insert_overlay_device(c, "tablet", "KA=", 21).is_err());
            assert!(insert_overlay_edge(c, "edge-a", "KB=", 1, 0, 21).is_err());
            assert!(insert_overlay_edge(c, "not-enrolled", "KC=", 1, 0, 21).is_err());
            assert_eq!(overlay_peer_by_key(c, "KP=")?, Some(phone.clone()));
            assert_eq!(overlay_device(c, "phone")?, Some(phone.clone()));
            assert_eq!(overlay_device(c, "edge-a")?, None);
            assert_eq!(overlay_edge(c, "edge-a")?, Some(a.clone()));
            // A removed device's index is not given again.
            assert_eq!(delete_overlay_device(c, "phone")?, Some(phone));
            assert_eq!(delete_overlay_device(c, "phone")?, None);
            let laptop = insert_overlay_device(c, "laptop", "KP=", 30)?;
            assert_eq!(laptop.index, 3);
            assert_eq!(
                overlay_peers(c)?
                    .iter()
                    .map(|p| p.index)
                    .collect::<Vec<_>>(),
                [1, 3]
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_new_key_clears_a_rotation_request() {
        let db = crate::db::Db::open_in_memory().unwrap();
        db.with(|c| {
            crate::db::tests::enrolled(c, "edge-a", 1)?;
            assert!(!request_overlay_rotation(c, "edge-a", 5)?);
            insert_overlay_edge(c, "edge-a", "K1=", 1, 7080, 10)?;
            assert!(request_overlay_rotation(c, "edge-a", 11)?);
            assert!(overlay_edge(c, "edge-a")?.unwrap().rotate_requested);
            // The same key again (a recheck): the request stays.
            assert!(update_overlay_edge(c, "edge-a", "K1=", 1, 7080, 12)?);
            assert!(overlay_edge(c, "edge-a")?.unwrap().rotate_requested);
            // The next key: done.
            assert!(update_overlay_edge(c, "edge-a", "K2=", 2, 7081, 13)?);
            let e = overlay_edge(c, "edge-a")?.unwrap();
            assert_eq!(
                (
                    e.public_key.as_str(),
                    e.generation,
                    e.api_port,
                    e.rotate_requested
                ),
                ("K2=", 2, 7081, false)
            );
            assert_eq!((e.index, e.created_ms, e.updated_ms), (1, 10, 13));
            assert!(!update_overlay_edge(c, "edge-b", "K3=", 1, 0, 14)?);
            Ok(())
        })
        .unwrap();
    }
}
