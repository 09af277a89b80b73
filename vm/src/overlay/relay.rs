//! `/guardian/wg-relay/1` at the vm: an edge whose UDP does not pass sends its WireGuard
//! packets over a libp2p stream on the connection it already has, each framed with a 2-byte
//! length ([`guardian_overlay::relay`]). The stream is joined to the device as the edge's
//! virtual endpoint `[100::<index + 1>]:1`: WireGuard answers there once the edge's packets
//! come from it, and over UDP again once they come that way.
//!
//! Only an enrolled edge with an overlay peer is relayed. A stream lives as long as the edge
//! keeps it (no time limit) and ends on the shutdown; a new stream of the same edge replaces
//! the old one (the old one ends then).

use std::sync::Arc;
use std::time::Duration;

use guardian_node::{PeerId, Shutdown};
use guardian_overlay::transport::virtual_endpoint;

use crate::db;
use crate::state::VmState;

/// Relay streams at once (one per edge; the next waits for a free one).
const CONCURRENT: usize = 32;
/// How long the checks before relaying may take.
const CHECK_WITHIN: Duration = Duration::from_secs(10);

/// Serves relay streams until `shutdown`.
pub async fn serve(
    state: Arc<VmState>,
    incoming: guardian_node::IncomingStreams,
    shutdown: Shutdown,
) {
    let stop = shutdown.clone();
    guardian_node::serve_streams(incoming, CONCURRENT, shutdown, move |peer, stream| {
        let (state, stop) = (state.clone(), stop.clone());
        async move { relay(&state, peer, stream, &stop).await }
    })
    .await
}

async fn relay(state: &VmState, peer: PeerId, mut stream: libp2p::Stream, stop: &Shutdown) {
    let peer = peer.to_string();
    let Some(hub) = state.overlay.get().and_then(|o| o.hub().cloned()) else {
        tracing::debug!(%peer, "WireGuard relay stream refused: the overlay is off");
        let _ = futures::AsyncWriteExt::close(&mut stream).await;
        return;
    };
    let index = {
        let p = peer.clone();
        let lookup = state.db.call(move |c| {
            Ok(match db::device(c, &p)? {
                Some(_) => db::overlay_edge(c, &p)?.map(|e| e.index),
                None => None,
            })
        });
        match tokio::time::timeout(CHECK_WITHIN, lookup).await {
            Ok(Ok(Some(index))) => index,
            Ok(Ok(None)) => {
                tracing::info!(%peer, "WireGuard relay stream refused: not an enrolled edge with an overlay key");
                let _ = futures::AsyncWriteExt::close(&mut stream).await;
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "WireGuard relay stream dropped: cannot read the overlay peers");
                return;
            }
            Err(_) => {
                tracing::warn!(%peer, "WireGuard relay stream dropped: the database is slow");
                return;
            }
        }
    };
    let endpoint = virtual_endpoint(index + 1);
    tracing::info!(%peer, %endpoint, "WireGuard relay stream open");
    tokio::select! {
        r = guardian_overlay::relay::pump(stream, endpoint, hub) => match r {
            Ok(()) => tracing::info!(%peer, "WireGuard relay stream ended"),
            Err(e) => tracing::info!(%peer, error = %e, "WireGuard relay stream broke"),
        },
        _ = stop.wait() => {}
    }
}
