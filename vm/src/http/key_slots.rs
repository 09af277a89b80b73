//! `GET` and `PUT /api/v1/key-slots`: the household's key-slot list as the owner signed it,
//! and what each edge runs.
//!
//! The vm cannot sign a list: `PUT` takes one the owner's CLI signed (`guardian keys slots
//! add|remove`), checks it against the tenant's owner signing key (the one the install
//! packages name), its tenant, its form, and that its version is newer than the latest, then
//! stores it byte for byte and wakes the pusher ([`crate::configure`]). The edges check it
//! again themselves; `GET` shows, per edge, the version it applied or why it refused.

use std::sync::Arc;

use protocols::key_slots::{Cameras, KeySlotList};
use protocols::messages::config::SectionName;
use protocols::signed::Signed;
use serde::{Deserialize, Serialize};
use warp::{Rejection, Reply};

use super::{ApiError, internal};
use crate::db;
use crate::state::VmState;

/// The largest list body accepted.
pub(super) const MAX_BODY: u64 = 64 * 1024;

/// A signed list on the wire: the CBOR body and the signature, base64.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedList {
    /// The CBOR body (standard base64).
    pub body: String,
    /// The ed25519 signature (standard base64).
    pub signature: String,
}

#[derive(Serialize)]
struct SlotView {
    name: String,
    recipient: String,
    key_id: String,
    cameras: Cameras,
    added_at_ms: u64,
}

#[derive(Serialize)]
struct EdgeView {
    peer_id: String,
    name: String,
    online: bool,
    /// `applied` (runs the latest), `pending` (not answered yet), `refused`, or `none` (no
    /// list yet).
    state: &'static str,
    applied_version: Option<u64>,
    offered_version: Option<u64>,
    reason: Option<String>,
    updated_at_ms: Option<u64>,
}

#[derive(Serialize)]
struct KeySlotsBody {
    owner_signing_key: Option<String>,
    owner_signing_key_fingerprint: Option<String>,
    version: u64,
    signed_at_ms: Option<u64>,
    slots: Vec<SlotView>,
    signed: Option<SignedList>,
    edges: Vec<EdgeView>,
}

/// The state of one edge for the latest `version` (0: none), from its ack row.
pub fn edge_state(version: u64, ack: Option<&db::AckRow>) -> &'static str {
    match ack {
        _ if version == 0 => "none",
        Some(a) if a.applied_revision == Some(version) => "applied",
        Some(a) if a.offered_revision == Some(version) && a.refused_reason.is_some() => "refused",
        _ => "pending",
    }
}

fn b64() -> data_encoding::Encoding {
    data_encoding::BASE64
}

async fn body(state: &VmState) -> Result<KeySlotsBody, Rejection> {
    let (key, latest, devices, acks) = state
        .db
        .call(|c| {
            Ok((
                db::owner_signing_key(c)?,
                db::latest_key_slots(c)?,
                db::devices(c)?,
                db::config_acks(c, SectionName::KeySlots.as_str())?,
            ))
        })
        .await
        .map_err(internal)?;
    let list: Option<KeySlotList> = match &latest {
        Some(l) => Some(
            Signed::<KeySlotList>::from_parts(l.body.clone(), l.signature.clone())
                .peek()
                .map_err(internal)?,
        ),
        None => None,
    };
    let version = list.as_ref().map_or(0, |l| l.version);
    let edges = devices
        .into_iter()
        .map(|d| {
            let ack = acks.iter().find(|a| a.peer_id == d.peer_id);
            let state_name = edge_state(version, ack);
            EdgeView {
                online: state.is_connected(&d.peer_id),
                state: state_name,
                applied_version: ack.and_then(|a| a.applied_revision),
                offered_version: ack.and_then(|a| a.offered_revision),
                reason: ack
                    .filter(|_| state_name == "refused")
                    .and_then(|a| a.refused_reason.clone()),
                updated_at_ms: ack.map(|a| a.updated_at_ms),
                peer_id: d.peer_id,
                name: d.name,
            }
        })
        .collect();
    Ok(KeySlotsBody {
        owner_signing_key_fingerprint: key.as_deref().and_then(|k| {
            protocols::signed::parse_public_key(k)
                .ok()
                .map(|k| protocols::signed::fingerprint(k.as_bytes()))
        }),
        owner_signing_key: key,
        version,
        signed_at_ms: list.as_ref().map(|l| l.signed_at_ms),
        slots: list
            .map(|l| {
                l.slots
                    .into_iter()
                    .map(|s| SlotView {
                        key_id: protocols::owner_key::key_id(&s.recipient),
                        name: s.name,
                        recipient: s.recipient,
                        cameras: s.cameras,
                        added_at_ms: s.added_at_ms,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        signed: latest.map(|l| SignedList {
            body: b64().encode(&l.body),
            signature: b64().encode(&l.signature),
        }),
        edges,
    })
}

/// `GET /api/v1/key-slots`.
pub(super) async fn get_key_slots(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    Ok(warp::reply::json(&body(&state).await?).into_response())
}

/// `PUT /api/v1/key-slots`.
pub(super) async fn put_key_slots(
    state: Arc<VmState>,
    raw: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    let bad = |m: String| warp::reject::custom(ApiError::BadRequest(m));
    let given: SignedList =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("not a signed list: {e}")))?;
    let decode = |what: &str, s: &str| {
        b64()
            .decode(s.trim().as_bytes())
            .map_err(|_| bad(format!("{what} is not base64")))
    };
    let signed = Signed::<KeySlotList>::from_parts(
        decode("body", &given.body)?,
        decode("signature", &given.signature)?,
    );
    let (key, latest) = state
        .db
        .call(|c| Ok((db::owner_signing_key(c)?, db::latest_key_slots(c)?)))
        .await
        .map_err(internal)?;
    let key = key.ok_or_else(|| {
        warp::reject::custom(ApiError::Conflict(
            "no install package names an owner signing key yet: make the edge's package with \
             `guardian-vm package edge --owner-signing-key KEY` (from `guardian keys init`)"
                .into(),
        ))
    })?;
    let key = protocols::signed::parse_public_key(&key).map_err(internal)?;
    let list = protocols::key_slots::accept(&signed, Some(&key), &state.config.tenant_id, 0, None)
        .map_err(|e| bad(e.to_string()))?;
    let latest = latest.map_or(0, |l| l.version);
    if list.version <= latest {
        return Err(warp::reject::custom(ApiError::Conflict(format!(
            "version {} is not newer than the latest, {latest}: sign a new list from the latest",
            list.version
        ))));
    }
    let row = db::StoredList {
        version: list.version,
        body: signed.body,
        signature: signed.signature,
        uploaded_at_ms: state.clock.wall_ms(),
    };
    state
        .db
        .call(move |c| db::insert_key_slots(c, &row))
        .await
        .map_err(internal)?;
    tracing::info!(
        version = list.version,
        slots = list.slots.len(),
        "key-slot list stored; offering it to the edges"
    );
    state.config_changed.notify_one();
    Ok(warp::reply::json(&body(&state).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_states() {
        let a = |applied, offered, refused: bool| db::AckRow {
            peer_id: "p".into(),
            applied_revision: applied,
            offered_revision: offered,
            refused_reason: refused.then(|| "why".into()),
            updated_at_ms: 1,
        };
        assert_eq!(edge_state(0, None), "none");
        assert_eq!(edge_state(2, None), "pending");
        assert_eq!(edge_state(2, Some(&a(Some(2), Some(2), false))), "applied");
        assert_eq!(edge_state(2, Some(&a(Some(1), Some(2), true))), "refused");
        assert_eq!(edge_state(2, Some(&a(Some(1), Some(2), false))), "pending");
        assert_eq!(edge_state(3, Some(&a(Some(1), Some(2), true))), "pending");
    }
}
