//! The vm's request-response handlers, one file per protocol: [`enroll`], [`events`],
//! [`telemetry`]. [`handle`] dispatches one inbound request from the node.

use guardian_node::Inbound;

use crate::db;
use crate::state::VmState;

pub mod enroll;
pub mod events;
pub mod telemetry;

/// Answers one inbound request.
pub async fn handle(state: &VmState, request: Inbound) {
    match request {
        Inbound::Enroll {
            peer,
            request,
            reply,
        } => enroll::enroll(state, peer, request, reply).await,
        Inbound::Events { peer, batch, reply } => {
            let ack = events::events(state, peer, batch).await;
            reply.send(ack);
        }
        Inbound::Telemetry {
            peer,
            report,
            reply,
        } => {
            let ack = telemetry::telemetry(state, peer, report).await;
            reply.send(ack);
        }
    }
}

/// Whether `peer` is a registered device (events and telemetry are refused otherwise).
pub(crate) async fn registered(state: &VmState, peer: &str) -> Result<bool, db::DbError> {
    let peer = peer.to_owned();
    state
        .db
        .call(move |c| Ok(db::device(c, &peer)?.is_some()))
        .await
}
