//! `/guardian/clips/1`: the owner plays a clip stored on the edge.
//!
//! ```text
//! client → edge  ClipRequest    a playback token signed by the tenant key, and an offset
//! edge → client  ClipResponse   Streaming { total, offset } then the bytes to the end | Refused
//! ```
//!
//! A playback token names one event and one nonce; the edge accepts each nonce once, before
//! its expiry, so a dropped stream resumes with a fresh token at the offset it reached.
//!
//! Outside the wire (HTTP, the command line) a token travels as text:
//! [`encode_token`] gives the unpadded base64url of its CBOR (`Signed { body, signature }`),
//! which fits a URL query parameter as is.

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;
use crate::signed::{Signed, SignedPayload};

/// The vm's answer to `POST /api/v1/events/{id}/play` (JSON): a playback token and how to
/// reach the edge that holds the clip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The playback token (text form: [`encode_token`]).
    pub token: String,
    /// The event.
    pub event_id: String,
    /// The edge that holds the clip.
    pub edge_peer_id: String,
    /// The vm (the relay).
    pub vm_peer_id: String,
    /// `<vm address>/p2p/<vm>/p2p-circuit/p2p/<edge>`, QUIC first.
    pub relay_addrs: Vec<String>,
    /// Not accepted after, Unix ms.
    pub expires_at_ms: u64,
    /// CID of the event's sealed clip as the edge reported it, which the client checks the
    /// ciphertext against (absent for an event recorded without a clip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_cid: Option<String>,
}

/// Permission to play one event's clip, issued by the vm and signed by the tenant key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackToken {
    /// The tenant.
    pub tenant_id: String,
    /// The event whose clip may be played.
    pub event_id: String,
    /// Who asked (the owner account or API token id).
    pub owner: String,
    /// The edge that holds the clip.
    pub edge_peer_id: String,
    /// Random, single use.
    pub nonce: String,
    /// Issued at, Unix ms.
    pub issued_at_ms: u64,
    /// Not accepted after, Unix ms.
    pub expires_at_ms: u64,
}

impl SignedPayload for PlaybackToken {
    const CONTEXT: &'static str = "playback-token/1";
}

/// The client's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipRequest {
    /// The playback token.
    pub token: Signed<PlaybackToken>,
    /// Byte offset to start from (0 for the beginning).
    pub offset: u64,
    /// The event the client means to play; the edge refuses a token for any other. Optional
    /// (added after version 1 shipped): without it the token's event is played.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl WireMessage for ClipRequest {
    const NAME: &'static str = "ClipRequest";
    const MAX_SIZE: usize = 8 * 1024;
}

/// The edge's answer; on `Streaming`, the clip's bytes from `offset` to the end follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClipResponse {
    /// The bytes follow.
    Streaming {
        /// The clip's total size.
        total_size: u64,
        /// Where the following bytes start.
        offset: u64,
        /// MIME type: `application/octet-stream`, the clip sealed with age.
        content_type: String,
        /// The event's signed manifest (JSON), naming the sealed clip's CID and size, so the
        /// client checks what it received against what the edge signed. Optional (added
        /// after version 1 shipped).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manifest_json: Option<String>,
    },
    /// Refused; the stream is closed after this message.
    Refused(ClipRefusal),
}

impl WireMessage for ClipResponse {
    const NAME: &'static str = "ClipResponse";
    const MAX_SIZE: usize = 16 * 1024;
}

/// Why the edge refused to play a clip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ClipRefusal {
    /// Not signed by this edge's tenant.
    #[error("the playback token is not signed by this tenant")]
    BadSignature,
    /// Past its expiry.
    #[error("the playback token expired")]
    Expired,
    /// The nonce was already used.
    #[error("the playback token was already used")]
    Replayed,
    /// Issued for another edge.
    #[error("the playback token is for another edge")]
    WrongEdge,
    /// Issued for another event than the one requested.
    #[error("the playback token is for event {token_event}, not {requested}")]
    WrongEvent {
        /// The event the token names.
        token_event: String,
        /// The event requested.
        requested: String,
    },
    /// No such event or its clip is gone (retention).
    #[error("no clip for event {0}")]
    NoSuchClip(String),
    /// The offset is past the end of the clip.
    #[error("offset {offset} is past the end of the clip ({total_size} bytes)")]
    BadOffset {
        /// Requested.
        offset: u64,
        /// The clip's size.
        total_size: u64,
    },
}

/// Why a textual playback token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a playback token (expected unpadded base64url of CBOR): {0}")]
pub struct TokenTextError(String);

/// The text form of a playback token: unpadded base64url of its CBOR.
pub fn encode_token(token: &Signed<PlaybackToken>) -> String {
    let mut bytes = Vec::new();
    ciborium::into_writer(token, &mut bytes).expect("a token encodes");
    data_encoding::BASE64URL_NOPAD.encode(&bytes)
}

/// Parses [`encode_token`]'s form (at most [`ClipRequest::MAX_SIZE`] bytes). The signature
/// is not checked here.
pub fn decode_token(text: &str) -> Result<Signed<PlaybackToken>, TokenTextError> {
    let text = text.trim();
    if text.len() > ClipRequest::MAX_SIZE * 4 / 3 {
        return Err(TokenTextError("too long".into()));
    }
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|e| TokenTextError(e.to_string()))?;
    ciborium::from_reader(bytes.as_slice()).map_err(|e| TokenTextError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    fn token() -> Signed<PlaybackToken> {
        Signed::sign(
            &PlaybackToken {
                tenant_id: "tenant-a".into(),
                event_id: "ev-1".into(),
                owner: "owner".into(),
                edge_peer_id: "12D3KooWexample".into(),
                nonce: "n0nce".into(),
                issued_at_ms: 1,
                expires_at_ms: 60_001,
            },
            &ed25519_dalek::SigningKey::from_bytes(&[2; 32]),
        )
    }

    #[test]
    fn clip_request() {
        conformance::check(&ClipRequest {
            token: token(),
            offset: 1 << 20,
            event_id: None,
        });
        conformance::check(&ClipRequest {
            token: token(),
            offset: 0,
            event_id: Some("ev-1".into()),
        });
    }

    #[test]
    fn token_text_round_trips() {
        let t = token();
        let text = encode_token(&t);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_token(&text).unwrap(), t);
        assert!(decode_token("not a token!").is_err());
        assert!(decode_token(&"A".repeat(20_000)).is_err());
    }

    #[test]
    fn clip_response() {
        conformance::check(&ClipResponse::Streaming {
            total_size: 8 << 20,
            offset: 0,
            content_type: "application/octet-stream".into(),
            manifest_json: Some("{\"format\":\"guardian-manifest/2\"}".into()),
        });
        conformance::check(&ClipResponse::Streaming {
            total_size: 8 << 20,
            offset: 0,
            content_type: "application/octet-stream".into(),
            manifest_json: None,
        });
        conformance::check(&ClipResponse::Refused(ClipRefusal::BadOffset {
            offset: 9,
            total_size: 8,
        }));
        conformance::check(&ClipResponse::Refused(ClipRefusal::Replayed));
        conformance::check(&ClipResponse::Refused(ClipRefusal::WrongEvent {
            token_event: "ev-1".into(),
            requested: "ev-2".into(),
        }));
    }
}
