//! Who is connected: follows the node's events, keeps [`VmState`]'s connected set and each
//! device's `last_seen_ms` (on the vm's clock) as edges connect and lose their last
//! connection.

use std::sync::Arc;

use guardian_node::{NodeEvent, Shutdown};
use tokio::sync::broadcast;

use crate::db;
use crate::state::VmState;

/// Follows `events` until `shutdown` or the node's end.
pub async fn watch(
    state: Arc<VmState>,
    mut events: broadcast::Receiver<NodeEvent>,
    shutdown: Shutdown,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.wait() => break,
            e = events.recv() => e,
        };
        match event {
            Ok(NodeEvent::Connected { peer, .. }) => seen(&state, &peer.to_string(), true).await,
            Ok(NodeEvent::Disconnected { peer, remaining: 0 }) => {
                seen(&state, &peer.to_string(), false).await
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "node events lagged");
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

async fn seen(state: &VmState, peer: &str, connected: bool) {
    state.set_connected(peer, connected);
    let now = state.clock.wall_ms();
    let peer = peer.to_owned();
    if let Err(e) = state
        .db
        .call(move |c| db::touch_device(c, &peer, now))
        .await
    {
        tracing::warn!(error = %e, "cannot record when an edge was last seen");
    }
}
