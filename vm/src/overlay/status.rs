//! What the API shows of each overlay peer: its addresses, the path its packets take, its last
//! handshake. [`path_of`] is the pure rule.

use std::collections::HashMap;
use std::time::Duration;

use guardian_overlay::device::PeerStatus;
use guardian_overlay::keys::PublicKey;
use guardian_overlay::path::Path;
use guardian_overlay::transport::is_virtual;
use serde::Serialize;

use crate::db::{self, OverlayPeer};
use crate::state::VmState;

/// A handshake older than this says the tunnel is down (WireGuard rekeys every 2 minutes
/// while packets flow, and keepalives make them flow).
pub const STALE_HANDSHAKE: Duration = Duration::from_secs(300);

/// The path of a peer's packets as the device sees it: over a relay stream when its endpoint
/// is virtual, UDP when it is a real address; `None` without a recent handshake. Pure.
pub fn path_of(status: Option<&PeerStatus>) -> Option<Path> {
    let s = status?;
    let endpoint = s.endpoint?;
    if s.last_handshake.is_none_or(|h| h > STALE_HANDSHAKE) {
        return None;
    }
    Some(if is_virtual(&endpoint) {
        Path::Stream
    } else {
        Path::Udp
    })
}

/// The Unix ms of the last handshake, `now_ms` minus its age.
pub fn handshake_ms(status: Option<&PeerStatus>, now_ms: u64) -> Option<u64> {
    let age = status?.last_handshake?;
    Some(now_ms.saturating_sub(age.as_millis() as u64))
}

/// An edge's overlay, for `GET /api/v1/devices`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EdgeOverlay {
    /// Its IPv6 overlay address.
    pub overlay_ip: Option<String>,
    /// Its IPv4 overlay address.
    pub overlay_ipv4: Option<String>,
    /// `udp`, `stream`, or null when the tunnel is not up.
    pub overlay_path: Option<&'static str>,
    /// Its last handshake with the vm, Unix ms.
    pub last_handshake_ms: Option<u64>,
    /// The generation of its key the vm holds.
    pub overlay_generation: Option<u64>,
}

/// The overlay state of every edge that has a peer, by peer id, as the running device sees
/// it now (addresses only when it is not running).
pub async fn edges(state: &VmState) -> Result<HashMap<String, EdgeOverlay>, db::DbError> {
    let Some(overlay) = state.overlay.get() else {
        return Ok(HashMap::new());
    };
    let rows = state.db.call(|c| db::overlay_peers(c)).await?;
    let peers = by_key(overlay.peers().await);
    let now = state.clock.wall_ms();
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let peer_id = r.peer_id.clone()?;
            let status = status_of(&peers, &r);
            let addresses = overlay.settings.prefixes.peer(r.index).ok();
            Some((
                peer_id,
                EdgeOverlay {
                    overlay_ip: addresses.map(|a| a.v6.to_string()),
                    overlay_ipv4: addresses.map(|a| a.v4.to_string()),
                    overlay_path: path_of(status).map(Path::as_str),
                    last_handshake_ms: handshake_ms(status, now),
                    overlay_generation: Some(r.generation),
                },
            ))
        })
        .collect())
}

/// Peer states by key.
pub fn by_key(peers: Vec<PeerStatus>) -> HashMap<PublicKey, PeerStatus> {
    peers.into_iter().map(|p| (p.public_key, p)).collect()
}

/// The state of a stored peer's key, if it is on the device.
pub fn status_of<'a>(
    peers: &'a HashMap<PublicKey, PeerStatus>,
    row: &OverlayPeer,
) -> Option<&'a PeerStatus> {
    PublicKey::from_base64(&row.public_key)
        .ok()
        .and_then(|k| peers.get(&k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardian_overlay::transport::virtual_endpoint;

    fn status(endpoint: Option<&str>, handshake_secs: Option<u64>) -> PeerStatus {
        PeerStatus {
            public_key: PublicKey([1; 32]),
            endpoint: endpoint.map(|e| e.parse().unwrap()),
            last_handshake: handshake_secs.map(Duration::from_secs),
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    #[test]
    fn the_path_follows_the_endpoint_of_a_live_tunnel() {
        let stream = virtual_endpoint(2).to_string();
        assert_eq!(
            path_of(Some(&status(Some(&stream), Some(3)))),
            Some(Path::Stream)
        );
        assert_eq!(
            path_of(Some(&status(Some("198.51.100.7:40000"), Some(3)))),
            Some(Path::Udp)
        );
        assert_eq!(
            path_of(Some(&status(Some("[2001:db8::7]:40000"), Some(299)))),
            Some(Path::Udp)
        );
        // No handshake, a stale one, no endpoint, not on the device: no path.
        assert_eq!(
            path_of(Some(&status(Some("198.51.100.7:40000"), None))),
            None
        );
        assert_eq!(path_of(Some(&status(Some(&stream), Some(301)))), None);
        assert_eq!(path_of(Some(&status(None, Some(3)))), None);
        assert_eq!(path_of(None), None);
    }

    #[test]
    fn the_handshake_time_is_now_minus_its_age() {
        assert_eq!(
            handshake_ms(Some(&status(None, Some(5))), 1_000_000),
            Some(995_000)
        );
        assert_eq!(handshake_ms(Some(&status(None, None)), 1_000_000), None);
        assert_eq!(handshake_ms(None, 1_000_000), None);
        assert_eq!(handshake_ms(Some(&status(None, Some(5))), 1_000), Some(0));
    }
}
