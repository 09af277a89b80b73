//! Remote playback on the vm: playback tokens for the owner's client, and the HTTP clip path
//! for clients without libp2p.
//!
//! - `POST /api/v1/events/{id}/play` ([`ticket`]): a [`PlaybackToken`] for the event, signed by
//!   the tenant key (fresh random nonce, valid `[playback] token_secs`), with the edge's peer
//!   id and the relay addresses through which the client reaches it. A `client_peer_id` in the
//!   request body is admitted by the vm's gate until the token expires, so the client may use
//!   the vm's relay; no one else can (the vm relays only for its edges and such clients).
//! - `GET /api/v1/events/{id}/clip` ([`open_clip`]): the vm mints a token for itself (owner
//!   `vm-http`) and opens `/guardian/clips/1` to the edge over the connection it already has;
//!   a `Range: bytes=N-` (or `N-M`, or the suffix `-N`) becomes the request's offset (and a limit).
//!
//! The pure minting and checking of tokens is in [`token`]. Tokens travel as unpadded base64url of their CBOR
//! ([`protocols::messages::clips::encode_token`]).

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use guardian_node::{PeerId, Stream};
use protocols::messages::clips::{ClipRefusal, ClipRequest, ClipResponse, PlaybackToken};
use protocols::signed::Signed;
use rand::RngCore;

use crate::db::{self, EventRow};
use crate::state::VmState;

pub mod token;

/// The owner named in tokens the vm mints for its own HTTP clip path.
pub const VM_HTTP_OWNER: &str = "vm-http";
/// The owner named in tokens minted for the owner's API token.
pub const OWNER_API: &str = "owner-api";
/// How long opening a clip stream on the edge may take (stream and first answer).
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one read from the edge may take once streaming.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why playback could not start.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    /// No such event in the vm's cache.
    #[error("no event {0}")]
    NoSuchEvent(String),
    /// The edge holding the event is not connected.
    #[error("the edge {edge} holding event {event} is offline")]
    EdgeOffline {
        /// The edge.
        edge: String,
        /// The event.
        event: String,
    },
    /// The event is still going on: its clip is written when it closes. Retry then.
    #[error("event {0} is still recording; its clip can be played once it closes")]
    StillRecording(String),
    /// The edge refused.
    #[error("the edge refused: {0}")]
    Refused(ClipRefusal),
    /// Talking to the edge failed.
    #[error("cannot stream from the edge: {0}")]
    Edge(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] db::DbError),
}

pub use protocols::messages::clips::Ticket;

/// The event, if known.
pub async fn event(state: &VmState, event_id: &str) -> Result<EventRow, PlaybackError> {
    let id = event_id.to_owned();
    state
        .db
        .call(move |c| db::event(c, &id))
        .await?
        .ok_or_else(|| PlaybackError::NoSuchEvent(event_id.to_owned()))
}

/// The event, if known and closed (its clip is whole).
pub async fn closed_event(state: &VmState, event_id: &str) -> Result<EventRow, PlaybackError> {
    let event = event(state, event_id).await?;
    if event.state == "open" {
        return Err(PlaybackError::StillRecording(event.event_id));
    }
    Ok(event)
}

/// Signs a fresh token for `event` on behalf of `owner`, valid `[playback] token_secs` from
/// now on the vm's clock.
pub fn mint(state: &VmState, event: &EventRow, owner: &str) -> Signed<PlaybackToken> {
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    token::mint(
        token::Minting {
            tenant_id: &state.config.tenant_id,
            owner,
            now_ms: state.clock.wall_ms(),
            valid_secs: state.config.playback.token_secs,
            nonce,
        },
        event,
        &state.tenant_signing,
    )
}

/// Mints a token for the owner's client, admits `client` (if given) until it expires, and
/// says how to reach the edge.
pub async fn ticket(
    state: &VmState,
    event_id: &str,
    client: Option<PeerId>,
) -> Result<Ticket, PlaybackError> {
    let event = closed_event(state, event_id).await?;
    if !state.is_connected(&event.edge_peer_id) {
        return Err(PlaybackError::EdgeOffline {
            edge: event.edge_peer_id,
            event: event.event_id,
        });
    }
    let signed = mint(state, &event, OWNER_API);
    let token = signed.peek().expect("just signed");
    if let Some(peer) = client {
        let secs = state.config.playback.token_secs.max(1);
        state
            .allow
            .allow_until(peer, state.clock.monotonic() + Duration::from_secs(secs));
        tracing::info!(%peer, event = %event.event_id, secs, "playback client admitted");
    }
    let vm_peer_id = state
        .node
        .get()
        .map(|h| h.peer_id().to_string())
        .unwrap_or_default();
    let relay_addrs = state
        .relay_base
        .iter()
        .map(|a| format!("{a}/p2p-circuit/p2p/{}", event.edge_peer_id))
        .collect();
    Ok(Ticket {
        token: protocols::messages::clips::encode_token(&signed),
        event_id: event.event_id,
        edge_peer_id: event.edge_peer_id,
        vm_peer_id,
        relay_addrs,
        expires_at_ms: token.expires_at_ms,
        clip_cid: event.clip_cid,
    })
}

/// Checks a playback token presented over HTTP for `event_id`: the tenant's signature, this
/// tenant, the event, the expiry. Over HTTP a token is a bearer credential until it expires
/// (a player makes several range requests); the edge's single use applies to the tokens the
/// vm mints for each request.
pub fn check_http_token(state: &VmState, text: &str, event_id: &str) -> bool {
    token::check(
        text,
        state.tenant_key(),
        &state.config.tenant_id,
        event_id,
        state.clock.wall_ms(),
    )
}

/// An open clip stream from the edge: the size, where the bytes start, and the stream.
pub struct OpenClip {
    /// The clip's total size.
    pub total_size: u64,
    /// Where the bytes start.
    pub offset: u64,
    /// MIME type.
    pub content_type: String,
    /// The bytes from `offset` to the end follow on it.
    pub stream: Stream,
}

/// Opens `/guardian/clips/1` on the event's edge at `offset`, with a token the vm mints.
pub async fn open_clip(
    state: &VmState,
    event_id: &str,
    offset: u64,
) -> Result<OpenClip, PlaybackError> {
    let event = closed_event(state, event_id).await?;
    let offline = || PlaybackError::EdgeOffline {
        edge: event.edge_peer_id.clone(),
        event: event.event_id.clone(),
    };
    if !state.is_connected(&event.edge_peer_id) {
        return Err(offline());
    }
    let edge: PeerId = event
        .edge_peer_id
        .parse()
        .map_err(|_| PlaybackError::Edge("the event's edge id does not parse".into()))?;
    let node = state
        .node
        .get()
        .ok_or_else(|| PlaybackError::Edge("the node is not started".into()))?;
    let request = ClipRequest {
        token: mint(state, &event, VM_HTTP_OWNER),
        offset,
        event_id: Some(event.event_id.clone()),
    };
    let mut control = node.streams();
    let opened = tokio::time::timeout(
        OPEN_TIMEOUT,
        guardian_node::open_with_request::<_, ClipResponse>(
            &mut control,
            edge,
            protocols::messages::CLIPS,
            &request,
        ),
    )
    .await
    .map_err(|_| PlaybackError::Edge(format!("no answer from the edge in {OPEN_TIMEOUT:?}")))?
    .map_err(|e| PlaybackError::Edge(e.to_string()))?;
    match opened {
        (
            stream,
            ClipResponse::Streaming {
                total_size,
                offset,
                content_type,
                ..
            },
        ) => Ok(OpenClip {
            total_size,
            offset,
            content_type,
            stream,
        }),
        (mut stream, ClipResponse::Refused(r)) => {
            let _ = stream.close().await;
            let mut rest = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest)).await;
            Err(PlaybackError::Refused(r))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardian_node::ManualClock;
    use protocols::messages::Category;
    use protocols::messages::events::EventRecord;

    const T0: u64 = 1_800_000_000_000;

    async fn with_event(clock: &ManualClock) -> (tempfile::TempDir, std::sync::Arc<VmState>) {
        let (dir, state) = crate::state::for_tests(clock.shared()).await;
        state
            .db
            .call(|c| {
                crate::db::tests::enrolled(c, "edge-a", T0)?;
                let e = EventRecord {
                    event_id: "ev-1".into(),
                    tenant_id: "t".into(),
                    edge_id: "edge-a".into(),
                    camera_id: "front".into(),
                    started_at_ms: T0,
                    ended_at_ms: T0 + 1,
                    category: Category::Person,
                    score_milli: 900,
                    clip_cid: Some("clip-1".into()),
                    snapshot_cid: None,
                    thumbnail_cid: None,
                    truncated: false,
                    ..Default::default()
                };
                db::insert_events(c, "edge-a", &[e], T0)
            })
            .await
            .unwrap();
        (dir, state)
    }

    #[tokio::test]
    async fn an_http_token_expires_on_the_vms_clock() {
        let clock = ManualClock::new(T0);
        let (_dir, state) = with_event(&clock).await;
        let ev = event(&state, "ev-1").await.unwrap();
        let signed = mint(&state, &ev, OWNER_API);
        let t = signed.peek().unwrap();
        assert_eq!(t.issued_at_ms, T0);
        assert_eq!(
            t.expires_at_ms,
            T0 + state.config.playback.token_secs * 1000
        );
        let text = protocols::messages::clips::encode_token(&signed);
        assert!(check_http_token(&state, &text, "ev-1"));
        assert!(!check_http_token(&state, &text, "ev-2"), "another event");
        clock.advance(Duration::from_secs(state.config.playback.token_secs));
        assert!(
            check_http_token(&state, &text, "ev-1"),
            "valid at its expiry"
        );
        clock.advance(Duration::from_millis(1));
        assert!(
            !check_http_token(&state, &text, "ev-1"),
            "refused one ms after"
        );
    }

    #[tokio::test]
    async fn a_ticket_needs_a_known_event_on_a_connected_edge() {
        let clock = ManualClock::new(T0);
        let (_dir, state) = with_event(&clock).await;
        assert!(matches!(
            ticket(&state, "ev-404", None).await,
            Err(PlaybackError::NoSuchEvent(_))
        ));
        assert!(matches!(
            ticket(&state, "ev-1", None).await,
            Err(PlaybackError::EdgeOffline { .. })
        ));
        state.set_connected("edge-a", true);
        let client: PeerId = protocols::signed::peer_id_of(
            &ed25519_dalek::SigningKey::from_bytes(&[8; 32]).verifying_key(),
        )
        .parse()
        .unwrap();
        let t = ticket(&state, "ev-1", Some(client)).await.unwrap();
        assert_eq!(t.edge_peer_id, "edge-a");
        assert_eq!(
            t.expires_at_ms,
            T0 + state.config.playback.token_secs * 1000
        );
        assert!(check_http_token(&state, &t.token, "ev-1"));
        assert!(state.allow().is_allowed(&client), "the client is admitted");
    }
}
