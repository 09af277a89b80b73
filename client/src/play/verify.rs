//! What the client checks of the edge's answer before trusting a byte (pure): the manifest
//! the edge sends with the sealed clip must be signed by the edge the client is connected to
//! (its peer id is the key; libp2p's handshake proved the peer holds it), name the event asked
//! for and list a clip of the size being streamed, whose CID the vm's event record agrees
//! with. The ciphertext is then checked against that CID as it arrives ([`super::sink`]).

use protocols::content_id::ContentId;
use protocols::manifest::{Manifest, ObjectKind};

use super::error::PlayError;

/// Checks the manifest of a clip answer; the CID the ciphertext must have.
pub(crate) fn check_manifest(
    manifest_json: Option<&str>,
    edge_peer_id: &str,
    event_id: &str,
    event_clip_cid: Option<&str>,
    total_size: u64,
) -> Result<(Manifest, ContentId), PlayError> {
    let bad = |why: String| PlayError::Integrity(why);
    let json = manifest_json.ok_or_else(|| bad("the edge sent no signed manifest".into()))?;
    let m = Manifest::from_json(json.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let key = protocols::signed::parse_public_key(edge_peer_id)
        .map_err(|e| bad(format!("the edge's id is not a key: {e}")))?;
    m.verify_signature(&key).map_err(|e| bad(e.to_string()))?;
    if m.event_id != event_id {
        return Err(bad(format!(
            "the manifest is of event {}, not {event_id}",
            m.event_id
        )));
    }
    let clip = m
        .object(ObjectKind::Clip)
        .ok_or_else(|| bad("the manifest lists no clip".into()))?;
    if clip.size != total_size {
        return Err(bad(format!(
            "the edge streams {total_size} bytes, its manifest says {}",
            clip.size
        )));
    }
    if let Some(c) = event_clip_cid
        && c != clip.cid.to_string()
    {
        return Err(bad(format!(
            "the vm's event names clip {c}, the edge's manifest {}",
            clip.cid
        )));
    }
    let cid = clip.cid;
    Ok((m, cid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use protocols::manifest::{FORMAT, ObjectRef};

    fn signed(key: &SigningKey, size: u64) -> String {
        let mut m = Manifest {
            camera_id: "c".into(),
            edge_id: protocols::signed::peer_id_of(&key.verifying_key()),
            ended_at_ms: 2,
            event_id: "ev".into(),
            format: FORMAT.into(),
            key_ids: vec!["k".into()],
            labels: Vec::new(),
            objects: vec![ObjectRef {
                cid: ContentId::of_bytes(b"clip"),
                kind: ObjectKind::Clip,
                size,
            }],
            sealed_at_ms: 3,
            signature: None,
            started_at_ms: 1,
            tenant_id: "t".into(),
            truncated: false,
        };
        m.sign(key);
        String::from_utf8(m.to_json()).unwrap()
    }

    #[test]
    fn only_the_edges_own_manifest_of_this_clip_passes() {
        let edge = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let id = protocols::signed::peer_id_of(&edge.verifying_key());
        let cid = ContentId::of_bytes(b"clip").to_string();
        let ok = signed(&edge, 10);
        let (_, got) = check_manifest(Some(&ok), &id, "ev", Some(&cid), 10).unwrap();
        assert_eq!(got.to_string(), cid);
        assert!(check_manifest(Some(&ok), &id, "ev", None, 10).is_ok());
        let refused = [
            check_manifest(None, &id, "ev", None, 10),
            check_manifest(Some(&signed(&other, 10)), &id, "ev", None, 10),
            check_manifest(Some(&ok), &id, "ev2", None, 10),
            check_manifest(Some(&ok), &id, "ev", None, 11),
            check_manifest(Some(&ok), &id, "ev", Some("bafkreiother"), 10),
            check_manifest(Some("{}"), &id, "ev", None, 10),
        ];
        for (i, r) in refused.into_iter().enumerate() {
            assert!(matches!(r, Err(PlayError::Integrity(_))), "case {i}: {r:?}");
        }
    }
}
