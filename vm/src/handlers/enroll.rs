//! `/guardian/enroll/1` on the vm: an edge, connected as its token's enrollment identity,
//! presents the token and its own keys; the pure [`crate::enroll::decide`] says whether to
//! register it, this handler reads and writes the database around it, admits the edge's own
//! key to the gate and answers with its configuration.

use guardian_node::PeerId;
use guardian_node::node::Reply;
use protocols::messages::enroll::{DeviceConfig, EnrollRefusal, EnrollRequest, EnrollResponse};

use crate::db::{self, DeviceRow};
use crate::enroll::{Decision, Known, decide};
use crate::state::VmState;

/// Answers an enrollment request; a refusal by the checks closes the connection, a database
/// failure does not (the edge tries again).
pub async fn enroll(
    state: &VmState,
    peer: PeerId,
    request: EnrollRequest,
    reply: Reply<EnrollResponse>,
) {
    let peer_s = peer.to_string();
    let token_id = request.token.peek().map(|t| t.token_id).unwrap_or_default();
    let lookup = {
        let (edge, token_id) = (request.edge_peer_id.clone(), token_id.clone());
        state
            .db
            .call(move |c| {
                Ok((
                    db::package(c, &token_id)?,
                    db::device_by_token(c, &token_id)?,
                    db::device(c, &edge)?,
                ))
            })
            .await
    };
    let (package, device_of_token, device_of_key) = match lookup {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "enrollment lookup failed");
            reply.send(EnrollResponse::Refused(EnrollRefusal::Other(
                "the vm could not read its database; try again".into(),
            )));
            return;
        }
    };
    let decision = decide(
        &request,
        &peer_s,
        &state.config.tenant_id,
        state.tenant_key(),
        state.clock.wall_ms(),
        Known {
            package: package.as_ref(),
            device_of_token: device_of_token.as_ref(),
            device_of_key: device_of_key.as_ref(),
        },
    );
    let edge = request.edge_peer_id.clone();
    let recipient = match decision {
        Ok(Decision::AlreadyRegistered) => {
            tracing::info!(enrollment_peer = %peer_s, edge = %edge, "registered edge enrolled again");
            device_of_token.map(|d| d.recipient).unwrap_or_default()
        }
        Ok(Decision::Register(token)) => {
            let package = package.expect("decide checked the package");
            let Ok(edge_peer) = edge.parse::<PeerId>() else {
                // decide parsed it as a key; a peer id that does not parse back is a bug.
                reply.send_and_close(EnrollResponse::Refused(EnrollRefusal::BadProof));
                return;
            };
            let now = state.clock.wall_ms();
            let row = DeviceRow {
                peer_id: edge.clone(),
                name: token.edge_name.clone(),
                token_id: token.token_id.clone(),
                recipient: package.recipient.clone(),
                age_recipient: Some(request.age_recipient.clone()),
                enrolled_at_ms: now,
                agent_version: request.agent_version.clone(),
                last_seen_ms: now,
            };
            if let Err(e) = state.db.call(move |c| db::enroll_device(c, &row)).await {
                tracing::error!(error = %e, "cannot register the edge");
                reply.send(EnrollResponse::Refused(EnrollRefusal::Other(
                    "the vm could not record the enrollment; try again".into(),
                )));
                return;
            }
            // Its own key may connect at once (the periodic refresh would within 2 s).
            state.allow.allow(edge_peer);
            tracing::info!(enrollment_peer = %peer_s, edge = %edge, name = %token.edge_name, "edge enrolled");
            package.recipient
        }
        Err(refusal) => {
            tracing::warn!(peer = %peer_s, token = %token_id, reason = %refusal, "enrollment refused; closing the connection");
            state.count_enrollment("refused");
            let reason = refusal.to_string();
            reply.send_and_close(EnrollResponse::Refused(refusal));
            crate::alerts::health::occurrence(
                state,
                "enrollment_refused",
                &format!("{token_id}:{peer_s}"),
                format!("An edge's enrollment was refused: {reason}"),
                format!("An edge tried to enroll with package token {token_id} and was refused: {reason}."),
                None,
            )
            .await;
            return;
        }
    };
    state.count_enrollment("accepted");
    reply.send(EnrollResponse::Accepted(DeviceConfig {
        tenant_id: state.config.tenant_id.clone(),
        device_id: edge,
        telemetry_interval_secs: state.config.telemetry.interval_secs,
        archive_key_id: protocols::owner_key::key_id(&recipient),
        archive_recipient: recipient,
    }))
}
