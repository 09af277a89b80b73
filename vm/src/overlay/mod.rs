//! The WireGuard overlay at the vm (`docs/overlay.md`): a userspace WireGuard device on a TUN
//! interface whose peers are the enrolled edges and the owner's devices, each with the
//! addresses of its index in the `overlay_peers` table.
//!
//! - [`handle`]: the running device as the API and the tasks share it (in the state);
//! - [`negotiate`]: `/guardian/wg/1`, an edge's key offered and the tunnel's settings answered;
//! - [`relay`]: `/guardian/wg-relay/1`, an edge's WireGuard packets over libp2p when UDP does
//!   not pass;
//! - [`devices`]: the owner's devices (phones, laptops) registered by an admin;
//! - [`status`]: what the API shows of each peer (addresses, path, last handshake);
//! - here: [`start`] and the reconciliation, which makes the device hold what the table says
//!   every [`RECONCILE`] (so `guardian-vm wg device add`, another process, takes effect).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use guardian_node::{NodeHandle, Shutdown};
use guardian_overlay::device::{DeviceSpec, OverlayDevice};
use guardian_overlay::keys::PublicKey;

use crate::db::{self, OverlayPeer};
use crate::state::VmState;

pub mod devices;
pub mod handle;
pub mod negotiate;
pub mod relay;
pub mod status;

pub use handle::Overlay;

/// How often the device is made to hold what the table says.
pub const RECONCILE: Duration = Duration::from_secs(2);
/// How long the device may take to stop.
const STOP_WITHIN: Duration = Duration::from_secs(3);

/// Why a change of peers failed.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The device refused.
    #[error(transparent)]
    Device(#[from] guardian_overlay::device::DeviceError),
}

/// Serves `/guardian/wg/1` and `/guardian/wg-relay/1` (an edge gets a refusal when the overlay
/// is off) and, with `[wg] enabled`, brings the device up with every stored peer and starts
/// the reconciliation. A device that cannot be brought up (not root, no `/dev/net/tun`, the
/// name taken) leaves the vm running without it, saying why (in the log and in `GET
/// /api/v1/wg`). The tasks end on `shutdown`; the reconciliation takes the device down then.
pub async fn start(
    state: &Arc<VmState>,
    data: &Path,
    node: &NodeHandle,
    shutdown: &Shutdown,
) -> Result<Vec<(&'static str, tokio::task::JoinHandle<()>)>> {
    let mut tasks = Vec::new();
    let offers = node.accept(protocols::messages::WG)?;
    tasks.push((
        "WireGuard negotiation",
        tokio::spawn(negotiate::serve(state.clone(), offers, shutdown.child())),
    ));
    let streams = node.accept(protocols::messages::WG_RELAY)?;
    tasks.push((
        "WireGuard relay",
        tokio::spawn(relay::serve(state.clone(), streams, shutdown.child())),
    ));
    if !state.config.wg.enabled {
        tracing::info!("WireGuard overlay off ([wg] enabled = false)");
        return Ok(tasks);
    }
    let settings = state.config.overlay_settings()?;
    let secret = crate::data_dir::wg_key(data).context("the vm's WireGuard key")?;
    let public_key = secret.public();
    let spec = DeviceSpec {
        interface: settings.interface.clone(),
        secret,
        listen_port: settings.listen_port,
        addresses: settings.prefixes.vm(),
        prefixes: settings.prefixes,
        mtu: settings.mtu,
        answer_probes: true,
        forward: true,
    };
    let overlay = match OverlayDevice::start(spec).await {
        Ok(device) => {
            tracing::info!(
                interface = %settings.interface,
                endpoint = %settings.endpoint,
                prefix_v6 = %settings.prefixes.v6_cidr(),
                range_v4 = %settings.prefixes.v4_cidr(),
                "WireGuard overlay up"
            );
            Arc::new(Overlay::running(settings, public_key, device))
        }
        Err(e) => {
            tracing::warn!(
                interface = %settings.interface,
                error = %e,
                "the WireGuard overlay is off: its device cannot be brought up; the vm runs on without it"
            );
            Arc::new(Overlay::failed(settings, public_key, e.to_string()))
        }
    };
    let _ = state.overlay.set(overlay.clone());
    if !overlay.is_running().await {
        return Ok(tasks);
    }
    match reconcile(state, &overlay).await {
        Ok((added, _)) => tracing::info!(peers = added, "WireGuard peers on the device"),
        Err(e) => tracing::warn!(error = %e, "cannot put the stored WireGuard peers on the device"),
    }
    tasks.push((
        "WireGuard reconciliation",
        tokio::spawn(reconcile_periodically(
            state.clone(),
            overlay,
            shutdown.child(),
        )),
    ));
    Ok(tasks)
}

/// Key → index of every stored peer whose key and addresses are sound. Pure.
pub fn wanted(
    rows: &[OverlayPeer],
    prefixes: &guardian_overlay::OverlayPrefixes,
) -> HashMap<PublicKey, u32> {
    rows.iter()
        .filter_map(|r| {
            let key = PublicKey::from_base64(&r.public_key).ok();
            let fits = prefixes.peer(r.index).is_ok();
            if key.is_none() || !fits {
                tracing::debug!(
                    index = r.index,
                    "overlay peer left off: malformed key or no address"
                );
            }
            key.filter(|_| fits).map(|k| (k, r.index))
        })
        .collect()
}

/// Makes the device hold what the table says; (added, removed).
pub async fn reconcile(state: &VmState, overlay: &Overlay) -> Result<(usize, usize), OverlayError> {
    let _changing = overlay.changes().await;
    let rows = state.db.call(|c| db::overlay_peers(c)).await?;
    let want = wanted(&rows, &overlay.settings.prefixes);
    Ok(overlay.sync(&want).await?)
}

/// [`reconcile`] every [`RECONCILE`] on the vm's clock until `shutdown`; then the device is
/// taken down.
async fn reconcile_periodically(state: Arc<VmState>, overlay: Arc<Overlay>, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = state.clock.sleep(RECONCILE) => match reconcile(&state, &overlay).await {
                Ok((0, 0)) => {}
                Ok((added, removed)) => {
                    tracing::info!(added, removed, "WireGuard peers changed to match the table")
                }
                Err(e) => tracing::warn!(error = %e, "cannot reconcile the WireGuard peers"),
            },
        }
    }
    overlay.stop(STOP_WITHIN).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::OverlayKind;

    #[test]
    fn only_sound_rows_are_wanted() {
        let p = guardian_overlay::OverlayPrefixes::new("t", "", "192.168.9.0/29").unwrap();
        let key = |n: u8| PublicKey([n; 32]);
        let row = |index: u32, public_key: String| OverlayPeer {
            index,
            kind: OverlayKind::Device,
            peer_id: None,
            name: Some(format!("d{index}")),
            public_key,
            generation: 0,
            api_port: 0,
            created_ms: 0,
            updated_ms: 0,
            rotate_requested: false,
        };
        let rows = [
            row(1, key(1).to_base64()),
            row(2, "short".into()),
            row(5, key(5).to_base64()),
            // A /29 has 5 peers: index 6 has no address.
            row(6, key(6).to_base64()),
        ];
        assert_eq!(wanted(&rows, &p), [(key(1), 1), (key(5), 5)].into());
    }
}
