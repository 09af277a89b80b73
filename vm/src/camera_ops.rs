//! What the owner asks of an edge's cameras through the vm, over the edge's connection:
//! a scan of its LAN now (`/guardian/scan/1`) and a camera's current picture, sealed by the
//! edge (`/guardian/snapshot/1`). Each exchange is bounded; an edge that is not connected is
//! [`OpError::Offline`] at once.

use std::str::FromStr;
use std::time::Duration;

use guardian_node::PeerId;
use protocols::messages::discovery::{ScanAnswer, ScanRequest, SnapshotAnswer, SnapshotRequest};

use crate::state::VmState;

/// How long a scan request may take (the edge answers before it scans).
const SCAN_WITHIN: Duration = Duration::from_secs(10);
/// How long a snapshot may take (a JPEG encoded and sealed on the edge, then relayed).
const SNAPSHOT_WITHIN: Duration = Duration::from_secs(20);

/// Why an edge was not asked, or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The edge is not connected.
    #[error("the edge is offline")]
    Offline,
    /// It did not answer in time, or the stream failed.
    #[error("the edge did not answer: {0}")]
    NoAnswer(String),
}

async fn ask<Req, Resp>(
    state: &VmState,
    peer: &str,
    protocol: &'static str,
    req: &Req,
    within: Duration,
) -> Result<Resp, OpError>
where
    Req: protocols::WireMessage,
    Resp: protocols::WireMessage,
{
    let node = state.node.get().ok_or(OpError::Offline)?;
    let peer_id = PeerId::from_str(peer).map_err(|_| OpError::Offline)?;
    if !state.is_connected(peer) {
        return Err(OpError::Offline);
    }
    let mut control = node.streams();
    let (mut stream, answer) = tokio::time::timeout(
        within,
        guardian_node::open_with_request::<_, Resp>(&mut control, peer_id, protocol, req),
    )
    .await
    .map_err(|_| OpError::NoAnswer(format!("nothing within {within:?}")))?
    .map_err(|e| OpError::NoAnswer(e.to_string()))?;
    let _ = futures::AsyncWriteExt::close(&mut stream).await;
    Ok(answer)
}

/// Asks `peer` to scan its LAN now.
pub async fn scan(state: &VmState, peer: &str) -> Result<ScanAnswer, OpError> {
    ask(
        state,
        peer,
        protocols::messages::SCAN,
        &ScanRequest {},
        SCAN_WITHIN,
    )
    .await
}

/// Asks `peer` for `camera`'s current picture.
pub async fn snapshot(
    state: &VmState,
    peer: &str,
    camera: &str,
) -> Result<SnapshotAnswer, OpError> {
    ask(
        state,
        peer,
        protocols::messages::SNAPSHOT,
        &SnapshotRequest {
            camera_id: camera.to_owned(),
        },
        SNAPSHOT_WITHIN,
    )
    .await
}
