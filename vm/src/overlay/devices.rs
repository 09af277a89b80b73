//! The owner's devices on the overlay (phones, laptops with the stock WireGuard apps): an
//! admin registers a device's public key under a name (`POST /api/v1/wg/devices`, `guardian-vm
//! wg device add`); it gets the next index's addresses and routes the overlay through the vm.
//! Removing it takes it off the device at once (the CLI's removal within the reconciliation's
//! period). The key pair is made on the owner's machine: the vm sees only the public key.

use guardian_overlay::OverlayPrefixes;
use guardian_overlay::keys::PublicKey;
use rusqlite::Connection;
use serde::Serialize;

use crate::db::{self, OverlayPeer};
use crate::state::VmState;

/// Why a device cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The overlay does not run here.
    #[error("the WireGuard overlay is off at this vm")]
    Off,
    /// Not a device name.
    #[error(
        "{0:?} is not a device name: 1 to 48 characters of a-z, 0-9 and -, not starting or ending with -"
    )]
    BadName(String),
    /// Not a public key.
    #[error("the public key is not WireGuard's base64 of 32 bytes")]
    BadKey,
    /// The name is another device's.
    #[error("a device named {0:?} exists")]
    NameTaken(String),
    /// The key is another peer's (a device, an edge, the vm).
    #[error("this public key is already on the overlay")]
    KeyTaken,
    /// No address left.
    #[error("the overlay's address range is full")]
    Full,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] db::DbError),
}

/// A registered device, as the API and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    /// Its name.
    pub name: String,
    /// Its WireGuard public key (base64).
    pub public_key: String,
    /// Its IPv6 overlay address.
    pub overlay_ip: String,
    /// Its IPv4 overlay address.
    pub overlay_ipv4: String,
    /// Registered at, Unix ms.
    pub created_ms: u64,
}

/// A device with its tunnel's state, for the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceListed {
    /// The device.
    #[serde(flatten)]
    pub device: DeviceView,
    /// Its last handshake with the vm, Unix ms.
    pub last_handshake_ms: Option<u64>,
    /// Where its packets last came from, `ip:port`.
    pub endpoint: Option<String>,
}

/// The name and key of a new device, checked. Pure.
pub fn check(name: &str, public_key: &str) -> Result<PublicKey, AddError> {
    if !protocols::messages::valid_id(name) {
        return Err(AddError::BadName(name.to_owned()));
    }
    PublicKey::from_base64(public_key).map_err(|_| AddError::BadKey)
}

/// The API's view of a stored device (`None` when it has no address in `prefixes`).
pub fn view(prefixes: &OverlayPrefixes, row: &OverlayPeer) -> Option<DeviceView> {
    let a = prefixes.peer(row.index).ok()?;
    Some(DeviceView {
        name: row.name.clone()?,
        public_key: row.public_key.clone(),
        overlay_ip: a.v6.to_string(),
        overlay_ipv4: a.v4.to_string(),
        created_ms: row.created_ms,
    })
}

/// Stores a device in one transaction: the name and key free (and not the vm's), an address
/// left for its index.
pub fn register(
    c: &mut Connection,
    prefixes: &OverlayPrefixes,
    vm_key: &PublicKey,
    name: &str,
    key: &PublicKey,
    now_ms: u64,
) -> Result<OverlayPeer, AddError> {
    let tx = c.transaction().map_err(db::DbError::from)?;
    if db::overlay_device(&tx, name)?.is_some() {
        return Err(AddError::NameTaken(name.to_owned()));
    }
    let b64 = key.to_base64();
    if key == vm_key || db::overlay_peer_by_key(&tx, &b64)?.is_some() {
        return Err(AddError::KeyTaken);
    }
    let row = db::insert_overlay_device(&tx, name, &b64, now_ms)?;
    if prefixes.peer(row.index).is_err() {
        return Err(AddError::Full);
    }
    tx.commit().map_err(db::DbError::from)?;
    Ok(row)
}

/// Registers a device and puts it on the running device at once.
pub async fn add(state: &VmState, name: &str, public_key: &str) -> Result<DeviceView, AddError> {
    let overlay = match state.overlay.get() {
        Some(o) if o.is_running().await => o.clone(),
        _ => return Err(AddError::Off),
    };
    let key = check(name, public_key)?;
    let _changing = overlay.changes().await;
    let row = {
        let (name, prefixes, vm_key) = (
            name.to_owned(),
            overlay.settings.prefixes,
            overlay.public_key,
        );
        let now = state.clock.wall_ms();
        state
            .db
            .call(move |c| Ok(register(c, &prefixes, &vm_key, &name, &key, now)))
            .await??
    };
    if let Err(e) = overlay.put_peer(key, row.index).await {
        // Stored: the reconciliation tries again within seconds.
        tracing::warn!(device = %name, error = %e, "cannot put a device on the WireGuard device");
    }
    tracing::info!(device = %name, index = row.index, "a device joined the WireGuard overlay");
    view(&overlay.settings.prefixes, &row).ok_or(AddError::Full)
}

/// Every device with its tunnel's state (the addresses from `[wg]` even when the overlay is
/// off).
pub async fn list(state: &VmState) -> Result<Vec<DeviceListed>, db::DbError> {
    let rows = state.db.call(|c| db::overlay_peers(c)).await?;
    let (prefixes, peers) = match state.overlay.get() {
        Some(o) => (o.settings.prefixes, super::status::by_key(o.peers().await)),
        None => match state.config.overlay_settings() {
            Ok(s) => (s.prefixes, Default::default()),
            Err(_) => return Ok(Vec::new()),
        },
    };
    let now = state.clock.wall_ms();
    Ok(rows
        .iter()
        .filter(|r| r.kind == db::OverlayKind::Device)
        .filter_map(|r| {
            let status = super::status::status_of(&peers, r);
            Some(DeviceListed {
                device: view(&prefixes, r)?,
                last_handshake_ms: super::status::handshake_ms(status, now),
                endpoint: status.and_then(|s| s.endpoint).map(|e| e.to_string()),
            })
        })
        .collect())
}

/// Removes a device and takes it off the running device at once; `false` when there was
/// none of that name.
pub async fn remove(state: &VmState, name: &str) -> Result<bool, super::OverlayError> {
    let overlay = state.overlay.get();
    let _changing = match overlay {
        Some(o) => Some(o.changes().await),
        None => None,
    };
    let n = name.to_owned();
    let Some(row) = state
        .db
        .call(move |c| db::delete_overlay_device(c, &n))
        .await?
    else {
        return Ok(false);
    };
    if let (Some(o), Ok(key)) = (overlay, PublicKey::from_base64(&row.public_key)) {
        o.drop_peer(&key).await?;
    }
    tracing::info!(device = %name, "a device left the WireGuard overlay");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys_are_checked() {
        let k = PublicKey([3; 32]).to_base64();
        assert_eq!(check("phone-1", &k).unwrap(), PublicKey([3; 32]));
        assert!(matches!(check("Phone", &k), Err(AddError::BadName(_))));
        assert!(matches!(check("-x", &k), Err(AddError::BadName(_))));
        assert!(matches!(check("", &k), Err(AddError::BadName(_))));
        assert!(matches!(
            check(&"a".repeat(49), &k),
            Err(AddError::BadName(_))
        ));
        assert!(matches!(check("phone", "short"), Err(AddError::BadKey)));
        assert!(matches!(
            check("phone", &data_encoding::BASE64.encode(&[1; 31])),
            Err(AddError::BadKey)
        ));
    }

    #[test]
    fn registration_refuses_taken_names_and_keys_and_a_full_range() {
        let db = crate::db::Db::open_in_memory().unwrap();
        // A /29: five peers.
        let p = OverlayPrefixes::new("t", "fd12:3456:789a::/64", "192.168.9.0/29").unwrap();
        let vm = PublicKey([9; 32]);
        db.with(|c| {
            let phone = register(c, &p, &vm, "phone", &PublicKey([1; 32]), 5).unwrap();
            assert_eq!(
                view(&p, &phone).unwrap(),
                DeviceView {
                    name: "phone".into(),
                    public_key: PublicKey([1; 32]).to_base64(),
                    overlay_ip: "fd12:3456:789a::2".into(),
                    overlay_ipv4: "192.168.9.2".into(),
                    created_ms: 5,
                }
            );
            assert!(matches!(
                register(c, &p, &vm, "phone", &PublicKey([2; 32]), 6),
                Err(AddError::NameTaken(_))
            ));
            assert!(matches!(
                register(c, &p, &vm, "tablet", &PublicKey([1; 32]), 6),
                Err(AddError::KeyTaken)
            ));
            assert!(matches!(
                register(c, &p, &vm, "tablet", &vm, 6),
                Err(AddError::KeyTaken)
            ));
            for n in 2..=5u8 {
                register(c, &p, &vm, &format!("d{n}"), &PublicKey([10 + n; 32]), 7).unwrap();
            }
            assert!(matches!(
                register(c, &p, &vm, "d6", &PublicKey([16; 32]), 8),
                Err(AddError::Full)
            ));
            // Nothing was stored of the refusals.
            assert_eq!(crate::db::overlay_peers(c)?.len(), 5);
            Ok(())
        })
        .unwrap();
    }
}
