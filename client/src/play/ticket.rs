//! The playback ticket: `POST /api/v1/events/{id}/play` on the vm's API ([`crate::api`]),
//! which admits this run's peer id to the vm's relay until the token expires.

use guardian_node::PeerId;
use protocols::messages::clips::Ticket;

use super::error::PlayError;
use super::options::PlayOptions;
use crate::api::{Timeouts, VmApi};

/// Asks the vm for a playback token (blocking; admits `client` to the vm's relay).
pub fn request_ticket(
    vm: &str,
    api_token: &str,
    event_id: &str,
    client: Option<&PeerId>,
) -> Result<Ticket, PlayError> {
    let client = client.map(|c| c.to_string());
    VmApi::new(vm, api_token, Timeouts::REQUEST)
        .play_ticket(event_id, client.as_deref())
        .map_err(PlayError::from)
}

/// [`request_ticket`] off the async runtime's threads.
pub(crate) async fn ticket_async(opts: &PlayOptions, client: PeerId) -> Result<Ticket, PlayError> {
    let (vm, tok, ev) = (
        opts.vm.clone(),
        opts.api_token.clone(),
        opts.event_id.clone(),
    );
    tokio::task::spawn_blocking(move || request_ticket(&vm, &tok, &ev, Some(&client)))
        .await
        .map_err(|e| PlayError::Node(e.to_string()))?
}
