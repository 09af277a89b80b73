//! `/guardian/telemetry/1` on the vm: reports from enrolled edges into the telemetry
//! history (health reads the latest); reports from others are ignored.

use guardian_node::PeerId;
use protocols::messages::telemetry::{TelemetryAck, TelemetryReport};

use crate::db;
use crate::state::VmState;

/// Stores a report of an enrolled edge (bounded history); always answers with the interval.
pub async fn telemetry(state: &VmState, peer: PeerId, report: TelemetryReport) -> TelemetryAck {
    let next = TelemetryAck {
        next_interval_secs: state.config.telemetry.interval_secs,
    };
    let peer = peer.to_string();
    if !matches!(super::registered(state, &peer).await, Ok(true)) || report.edge_id != peer {
        tracing::warn!(%peer, "telemetry from an edge that is not enrolled (or names another) ignored");
        return next;
    }
    state.metrics.telemetry_reports.inc();
    let keep = state.config.telemetry.history_per_edge;
    let now = state.clock.wall_ms();
    if let Err(e) = state
        .db
        .call(move |c| db::insert_telemetry(c, &peer, &report, now, keep))
        .await
    {
        tracing::error!(error = %e, "cannot store telemetry");
    }
    next
}
