//! `/guardian/wg/1` at the vm: an enrolled edge offers its WireGuard public key (with its
//! generation and the port of its local API); the vm stores it (a new index the first time),
//! puts it on its device and answers the tunnel's settings. The libp2p connection
//! authenticates the edge, so the key is bound to the edge's peer id. The edge offers again
//! every `recheck_secs`: the vm's restarts and rotation requests reach it that way.
//!
//! [`decide`] is the decision, pure: who is refused and why, what is stored.

use std::sync::Arc;
use std::time::Duration;

use guardian_node::{PeerId, Shutdown};
use guardian_overlay::keys::PublicKey;
use protocols::codec::{read_frame, write_frame};
use protocols::messages::wg::{WgAnswer, WgOffer, WgPeerConfig};

use crate::db::{self, OverlayPeer};
use crate::overlay::Overlay;
use crate::state::VmState;

/// Offers handled at once.
const CONCURRENT: usize = 8;
/// How long one exchange may take.
const WITHIN: Duration = Duration::from_secs(15);

/// Why an offer is refused when the overlay does not run here.
const OFF: &str = "the WireGuard overlay is off at this vm";

/// What the vm does with an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No tunnel, and why (told to the edge).
    Refuse(String),
    /// The edge's first key: a new index.
    Register,
    /// The key the vm holds (a recheck); its generation and API port are stored.
    Keep,
    /// A new key in place of the stored one, with the same addresses.
    Replace,
}

/// What [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Offered<'a> {
    /// The overlay runs at this vm.
    pub overlay_on: bool,
    /// The peer that opened the stream is an enrolled edge.
    pub enrolled: bool,
    /// That peer's id.
    pub peer_id: &'a str,
    /// The offered key (`None`: not 32 bytes).
    pub key: Option<PublicKey>,
    /// The offered generation.
    pub generation: u64,
    /// The vm's own key.
    pub vm_key: PublicKey,
    /// The edge's stored peer, if any.
    pub stored: Option<&'a OverlayPeer>,
    /// The peer already holding the offered key, if any.
    pub key_holder: Option<&'a OverlayPeer>,
}

/// Accept or refuse an offer, and why. Pure.
pub fn decide(o: &Offered<'_>) -> Decision {
    let refuse = |why: String| Decision::Refuse(why);
    if !o.overlay_on {
        return refuse(OFF.into());
    }
    if !o.enrolled {
        return refuse("not an enrolled edge".into());
    }
    let Some(key) = o.key else {
        return refuse("the public key is not 32 bytes".into());
    };
    if key == o.vm_key {
        return refuse("the public key is the vm's own".into());
    }
    if o.key_holder
        .is_some_and(|h| h.peer_id.as_deref() != Some(o.peer_id))
    {
        return refuse("the public key is another peer's".into());
    }
    let Some(stored) = o.stored else {
        return Decision::Register;
    };
    if o.generation < stored.generation {
        return refuse(format!(
            "key generation {} is older than the vm's {}",
            o.generation, stored.generation
        ));
    }
    if stored.public_key == key.to_base64() {
        Decision::Keep
    } else {
        Decision::Replace
    }
}

/// Serves offers until `shutdown`.
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
        "WireGuard offer",
        |peer, stream| {
            let state = state.clone();
            async move { handle(&state, peer, stream).await }
        },
    )
    .await
}

async fn handle(state: &VmState, peer: PeerId, mut stream: libp2p::Stream) -> anyhow::Result<()> {
    let offer: WgOffer = read_frame(&mut stream).await?;
    let peer = peer.to_string();
    let answer = answer(state, &peer, &offer).await;
    match &answer {
        WgAnswer::Accepted(c) => tracing::debug!(
            %peer,
            generation = c.generation,
            rotate = c.rotate,
            "WireGuard offer accepted"
        ),
        WgAnswer::Refused { reason } => {
            tracing::info!(%peer, reason = %reason, "WireGuard offer refused")
        }
    }
    write_frame(&mut stream, &answer).await?;
    let _ = futures::AsyncWriteExt::close(&mut stream).await;
    Ok(())
}

/// What the vm answers `peer`'s offer: it is stored and the peer put on the device, or refused.
pub async fn answer(state: &VmState, peer: &str, offer: &WgOffer) -> WgAnswer {
    let refused = |reason: &str| WgAnswer::Refused {
        reason: reason.into(),
    };
    let overlay = match state.overlay.get() {
        Some(o) if o.is_running().await => o.clone(),
        _ => return refused(OFF),
    };
    let _changing = overlay.changes().await;
    let stored = {
        let (peer, offer) = (peer.to_owned(), offer.clone());
        let (vm_key, prefixes) = (overlay.public_key, overlay.settings.prefixes);
        let now = state.clock.wall_ms();
        state
            .db
            .call(move |c| store(c, &peer, &offer, vm_key, &prefixes, now))
            .await
    };
    let (decision, row, old_key) = match stored {
        Ok(Stored::Refused(reason)) => return WgAnswer::Refused { reason },
        Ok(Stored::Accepted {
            decision,
            row,
            old_key,
        }) => (decision, row, old_key),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot store a WireGuard offer");
            return refused("the vm cannot store the key now; try again");
        }
    };
    if let Err(e) = apply(&overlay, &row, old_key.as_deref()).await {
        // Stored: the reconciliation tries again within seconds.
        tracing::warn!(%peer, error = %e, "cannot put an edge's WireGuard key on the device");
    }
    if decision == Decision::Replace {
        tracing::info!(%peer, generation = row.generation, "an edge's WireGuard key rotated");
    } else if decision == Decision::Register {
        tracing::info!(%peer, index = row.index, "an edge joined the WireGuard overlay");
    }
    match config(&overlay, &row) {
        Ok(c) => WgAnswer::Accepted(c),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "no overlay addresses for an edge");
            refused("the vm has no overlay address for this edge")
        }
    }
}

/// What the database step came to.
enum Stored {
    Refused(String),
    Accepted {
        decision: Decision,
        row: OverlayPeer,
        /// The key the new one replaced (base64).
        old_key: Option<String>,
    },
}

/// Reads what is stored, decides and writes, in one transaction.
fn store(
    c: &mut rusqlite::Connection,
    peer: &str,
    offer: &WgOffer,
    vm_key: PublicKey,
    prefixes: &guardian_overlay::OverlayPrefixes,
    now_ms: u64,
) -> Result<Stored, db::DbError> {
    let tx = c.transaction()?;
    let enrolled = db::device(&tx, peer)?.is_some();
    let key = PublicKey::from_slice(&offer.public_key).ok();
    let stored = db::overlay_edge(&tx, peer)?;
    let holder = match key {
        Some(k) => db::overlay_peer_by_key(&tx, &k.to_base64())?,
        None => None,
    };
    let decision = decide(&Offered {
        overlay_on: true,
        enrolled,
        peer_id: peer,
        key,
        generation: offer.generation,
        vm_key,
        stored: stored.as_ref(),
        key_holder: holder.as_ref(),
    });
    let key = match (&decision, key) {
        (Decision::Refuse(reason), _) => return Ok(Stored::Refused(reason.clone())),
        (_, Some(k)) => k.to_base64(),
        (_, None) => return Ok(Stored::Refused("the public key is not 32 bytes".into())),
    };
    let row = if decision == Decision::Register {
        let row =
            db::insert_overlay_edge(&tx, peer, &key, offer.generation, offer.api_port, now_ms)?;
        if prefixes.peer(row.index).is_err() {
            // Rolled back with the transaction.
            return Ok(Stored::Refused(
                "the vm's overlay address range is full".into(),
            ));
        }
        row
    } else {
        db::update_overlay_edge(&tx, peer, &key, offer.generation, offer.api_port, now_ms)?;
        db::overlay_edge(&tx, peer)?
            .ok_or_else(|| db::DbError::Corrupt("the overlay peer vanished".into()))?
    };
    tx.commit()?;
    let old_key = match (&decision, stored) {
        (Decision::Replace, Some(s)) => Some(s.public_key),
        _ => None,
    };
    Ok(Stored::Accepted {
        decision,
        row,
        old_key,
    })
}

/// Puts the stored key on the device (the replaced one off first).
async fn apply(
    overlay: &Overlay,
    row: &OverlayPeer,
    old_key: Option<&str>,
) -> Result<(), guardian_overlay::device::DeviceError> {
    let key = PublicKey::from_base64(&row.public_key)
        .map_err(|e| guardian_overlay::device::DeviceError::Invalid(e.to_string()))?;
    if let Some(old) = old_key.and_then(|k| PublicKey::from_base64(k).ok()) {
        overlay.drop_peer(&old).await?;
    }
    overlay.put_peer(key, row.index).await?;
    Ok(())
}

/// The tunnel's settings for the edge of `row`.
pub fn config(
    overlay: &Overlay,
    row: &OverlayPeer,
) -> Result<WgPeerConfig, guardian_overlay::addressing::AddressError> {
    let s = &overlay.settings;
    let edge = s.prefixes.peer(row.index)?;
    let vm = s.prefixes.vm();
    Ok(WgPeerConfig {
        vm_public_key: overlay.public_key.0.to_vec(),
        vm_endpoint: s.endpoint.clone(),
        edge_address: format!("{}/64", edge.v6),
        vm_address: vm.v6.to_string(),
        edge_address_v4: format!("{}/{}", edge.v4, s.prefixes.v4.len),
        vm_address_v4: vm.v4.to_string(),
        generation: row.generation,
        rotate: row.rotate_requested,
        recheck_secs: s.recheck_secs,
        allowed_ips: s.prefixes.cidrs(),
        keepalive_secs: s.keepalive_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::OverlayKind;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn edge(peer: &str, k: PublicKey, generation: u64) -> OverlayPeer {
        OverlayPeer {
            index: 1,
            kind: OverlayKind::Edge,
            peer_id: Some(peer.into()),
            name: None,
            public_key: k.to_base64(),
            generation,
            api_port: 7080,
            created_ms: 0,
            updated_ms: 0,
            rotate_requested: false,
        }
    }

    fn offered<'a>(
        stored: Option<&'a OverlayPeer>,
        holder: Option<&'a OverlayPeer>,
    ) -> Offered<'a> {
        Offered {
            overlay_on: true,
            enrolled: true,
            peer_id: "edge-a",
            key: Some(key(2)),
            generation: 2,
            vm_key: key(9),
            stored,
            key_holder: holder,
        }
    }

    fn refused(d: Decision) -> String {
        match d {
            Decision::Refuse(why) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_first_offer_registers_and_a_recheck_keeps() {
        assert_eq!(decide(&offered(None, None)), Decision::Register);
        let same = edge("edge-a", key(2), 2);
        assert_eq!(decide(&offered(Some(&same), Some(&same))), Decision::Keep);
        // A newer generation of the same key is kept (and stored).
        let older = edge("edge-a", key(2), 1);
        assert_eq!(decide(&offered(Some(&older), Some(&older))), Decision::Keep);
    }

    #[test]
    fn a_new_key_replaces_unless_it_is_older() {
        let stored = edge("edge-a", key(1), 1);
        assert_eq!(decide(&offered(Some(&stored), None)), Decision::Replace);
        // The same generation with another key is not older: taken (the edge re-made it).
        let same_gen = edge("edge-a", key(1), 2);
        assert_eq!(decide(&offered(Some(&same_gen), None)), Decision::Replace);
        // A replayed old key.
        let newer = edge("edge-a", key(1), 3);
        let why = refused(decide(&offered(Some(&newer), None)));
        assert_eq!(why, "key generation 2 is older than the vm's 3");
        // Even the stored key at an older generation.
        let newer_same = edge("edge-a", key(2), 3);
        assert!(matches!(
            decide(&offered(Some(&newer_same), Some(&newer_same))),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn strangers_bad_keys_and_taken_keys_are_refused() {
        let mut o = offered(None, None);
        o.overlay_on = false;
        assert_eq!(
            refused(decide(&o)),
            "the WireGuard overlay is off at this vm"
        );
        let mut o = offered(None, None);
        o.enrolled = false;
        assert_eq!(refused(decide(&o)), "not an enrolled edge");
        let mut o = offered(None, None);
        o.key = None;
        assert_eq!(refused(decide(&o)), "the public key is not 32 bytes");
        let mut o = offered(None, None);
        o.key = Some(key(9));
        assert_eq!(refused(decide(&o)), "the public key is the vm's own");
        // Another edge's key, or a device's.
        let other = edge("edge-b", key(2), 1);
        assert_eq!(
            refused(decide(&offered(None, Some(&other)))),
            "the public key is another peer's"
        );
        let mut phone = edge("x", key(2), 0);
        phone.kind = OverlayKind::Device;
        phone.peer_id = None;
        phone.name = Some("phone".into());
        let stored = edge("edge-a", key(1), 1);
        assert_eq!(
            refused(decide(&offered(Some(&stored), Some(&phone)))),
            "the public key is another peer's"
        );
    }

    #[test]
    fn the_transaction_stores_what_was_decided() {
        let db = crate::db::Db::open_in_memory().unwrap();
        let p = guardian_overlay::OverlayPrefixes::new("t", "", "192.168.9.0/29").unwrap();
        let offer = |k: u8, generation: u64| WgOffer {
            public_key: vec![k; 32],
            generation,
            api_port: 7080,
        };
        db.with(|c| {
            crate::db::tests::enrolled(c, "edge-a", 0)?;
            let accepted = |s: Stored| match s {
                Stored::Accepted {
                    decision,
                    row,
                    old_key,
                } => (decision, row.index, row.generation, old_key),
                Stored::Refused(r) => panic!("refused: {r}"),
            };
            let s = store(c, "edge-a", &offer(1, 1), key(9), &p, 10)?;
            assert_eq!(accepted(s), (Decision::Register, 1, 1, None));
            let s = store(c, "edge-a", &offer(1, 1), key(9), &p, 11)?;
            assert_eq!(accepted(s), (Decision::Keep, 1, 1, None));
            let s = store(c, "edge-a", &offer(2, 2), key(9), &p, 12)?;
            assert_eq!(
                accepted(s),
                (Decision::Replace, 1, 2, Some(key(1).to_base64()))
            );
            match store(c, "edge-a", &offer(1, 1), key(9), &p, 13)? {
                Stored::Refused(r) => assert!(r.contains("older"), "{r}"),
                Stored::Accepted { .. } => panic!("an old key was taken again"),
            }
            match store(c, "stranger", &offer(3, 1), key(9), &p, 13)? {
                Stored::Refused(r) => assert_eq!(r, "not an enrolled edge"),
                Stored::Accepted { .. } => panic!("a stranger was taken"),
            }
            let mut short = offer(3, 4);
            short.public_key.truncate(31);
            match store(c, "edge-a", &short, key(9), &p, 13)? {
                Stored::Refused(r) => assert_eq!(r, "the public key is not 32 bytes"),
                Stored::Accepted { .. } => panic!("a short key was taken"),
            }
            assert_eq!(db::overlay_peers(c)?.len(), 1);
            Ok(())
        })
        .unwrap();
    }
}
