//! `/guardian/discovery/1` at the vm: each enrolled edge's report of the cameras it found on
//! its LAN, stored as its latest (`GET /api/v1/cameras/discovered` shows them). A report from
//! a peer that is not an enrolled edge is refused; one that does not decode ends the stream.

use std::sync::Arc;

use guardian_node::{PeerId, Shutdown};
use protocols::codec::{read_frame, write_frame};
use protocols::messages::discovery::{DiscoveryAck, DiscoveryReport};

use crate::db;
use crate::state::VmState;

/// Streams served at once.
const CONCURRENT: usize = 4;
/// How long one exchange may take.
const WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

/// Serves reports until `shutdown`.
pub async fn serve(
    state: Arc<VmState>,
    incoming: guardian_node::IncomingStreams,
    shutdown: Shutdown,
) {
    guardian_node::serve_streams_within(
        incoming,
        CONCURRENT,
        shutdown,
        WITHIN,
        "camera discovery report",
        |peer, stream| {
            let state = state.clone();
            async move { handle(&state, peer, stream).await }
        },
    )
    .await
}

async fn handle(state: &VmState, peer: PeerId, mut stream: libp2p::Stream) -> anyhow::Result<()> {
    let report: DiscoveryReport = read_frame(&mut stream).await?;
    let peer = peer.to_string();
    let ack = if !crate::handlers::registered(state, &peer).await? {
        DiscoveryAck::Refused("not an enrolled edge".into())
    } else {
        let (p, now, findings) = (peer.clone(), state.clock.wall_ms(), report.findings.len());
        match state
            .db
            .call(move |c| db::put_discovery(c, &p, &report, now))
            .await
        {
            Ok(()) => {
                tracing::info!(%peer, findings, "camera findings stored");
                DiscoveryAck::Stored
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot store camera findings");
                DiscoveryAck::Refused("the vm cannot store them now".into())
            }
        }
    };
    write_frame(&mut stream, &ack).await?;
    let _ = futures::AsyncWriteExt::close(&mut stream).await;
    Ok(())
}
