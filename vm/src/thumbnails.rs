//! `/guardian/thumbnails/1`: stores each event's sealed thumbnail as its edge sent it.
//!
//! [`check`] is the decision (pure): the manifest is signed by the sending edge and names
//! this tenant, and the bytes are the thumbnail it names (CID and size). Then the row is
//! written and `Stored` answered; only then does the edge forget it. The vm never has a key
//! that opens it; `GET /api/v1/events/{id}/thumbnail` serves the same bytes.

use std::sync::Arc;

use guardian_node::{PeerId, Shutdown};
use protocols::codec::{read_frame, write_frame};
use protocols::manifest::{Manifest, ObjectKind};
use protocols::messages::thumbnails::{
    MAX_THUMBNAIL, ThumbnailAck, ThumbnailRefusal, ThumbnailUpload,
};
use protocols::messages::valid_id;

use crate::db;
use crate::state::VmState;

/// Thumbnail streams handled at once.
const CONCURRENT: usize = 8;
/// How long one stream may take.
const WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Checks an upload from `peer` of tenant `tenant_id`: the manifest and the thumbnail's CID.
pub fn check(
    upload: &ThumbnailUpload,
    peer: &str,
    tenant_id: &str,
) -> Result<(Manifest, String), ThumbnailRefusal> {
    let bad = |m: String| ThumbnailRefusal::BadManifest(m);
    let manifest = Manifest::from_json(&upload.manifest_json).map_err(|e| bad(e.to_string()))?;
    let key = protocols::signed::parse_public_key(peer).map_err(|e| bad(e.to_string()))?;
    manifest
        .verify_signature(&key)
        .map_err(|_| bad("not signed by this edge".into()))?;
    if manifest.tenant_id != tenant_id || manifest.edge_id != peer {
        return Err(bad("it names another tenant or edge".into()));
    }
    if !valid_id(&manifest.camera_id) || !valid_id(&manifest.event_id) {
        return Err(bad("invalid camera or event id".into()));
    }
    if upload.thumbnail.len() > MAX_THUMBNAIL {
        return Err(ThumbnailRefusal::Mismatch(format!(
            "{} bytes, over the limit of {MAX_THUMBNAIL}",
            upload.thumbnail.len()
        )));
    }
    let object = manifest
        .object(ObjectKind::Thumbnail)
        .ok_or_else(|| bad("it names no thumbnail".into()))?;
    manifest
        .verify_object(ObjectKind::Thumbnail, upload.thumbnail.as_slice())
        .map_err(|e| ThumbnailRefusal::Mismatch(e.to_string()))?;
    let cid = object.cid.to_string();
    Ok((manifest, cid))
}

/// Serves thumbnail streams until `shutdown` or the end of the incoming streams.
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
        "thumbnail stream",
        |peer, stream| {
            let state = state.clone();
            async move { handle(&state, peer, stream).await }
        },
    )
    .await
}

async fn handle(state: &VmState, peer: PeerId, mut stream: libp2p::Stream) -> anyhow::Result<()> {
    let upload: ThumbnailUpload = read_frame(&mut stream).await?;
    let ack = match store(state, &peer.to_string(), upload).await {
        Ok(()) => ThumbnailAck::Stored,
        Err(r) => {
            tracing::warn!(%peer, reason = %r, "thumbnail refused");
            ThumbnailAck::Refused(r)
        }
    };
    write_frame(&mut stream, &ack).await?;
    let _ = futures::AsyncWriteExt::close(&mut stream).await;
    Ok(())
}

async fn store(
    state: &VmState,
    peer: &str,
    upload: ThumbnailUpload,
) -> Result<(), ThumbnailRefusal> {
    let unavailable = |e: db::DbError| ThumbnailRefusal::StorageUnavailable(e.to_string());
    if !crate::handlers::registered(state, peer)
        .await
        .map_err(unavailable)?
    {
        return Err(ThumbnailRefusal::NotEnrolled);
    }
    let (manifest, cid) = check(&upload, peer, &state.config.tenant_id)?;
    let row = db::ThumbnailRow {
        event_id: manifest.event_id,
        edge_peer_id: peer.to_owned(),
        camera_id: manifest.camera_id,
        cid,
        sealed: upload.thumbnail,
        manifest_json: upload.manifest_json,
        received_at_ms: state.clock.wall_ms(),
    };
    state
        .db
        .call(move |c| db::insert_thumbnail(c, &row))
        .await
        .map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use protocols::content_id::ContentId;
    use protocols::manifest::{Label, ObjectRef};

    fn signed(key: &SigningKey, thumbnail: &[u8], tenant: &str) -> Vec<u8> {
        let mut m = Manifest {
            camera_id: "door".into(),
            edge_id: protocols::signed::peer_id_of(&key.verifying_key()),
            ended_at_ms: 2,
            event_id: "ev-1".into(),
            format: protocols::manifest::FORMAT.into(),
            key_ids: vec!["kabc".into()],
            labels: vec![Label {
                category: "person".into(),
                score_milli: 900,
            }],
            objects: vec![
                ObjectRef {
                    cid: ContentId::of_bytes(b"clip"),
                    kind: ObjectKind::Clip,
                    size: 4,
                },
                ObjectRef {
                    cid: ContentId::of_bytes(thumbnail),
                    kind: ObjectKind::Thumbnail,
                    size: thumbnail.len() as u64,
                },
            ],
            sealed_at_ms: 2,
            signature: None,
            started_at_ms: 1,
            tenant_id: tenant.into(),
            truncated: false,
        };
        m.sign(key);
        m.to_json()
    }

    #[test]
    fn accepts_the_named_thumbnail_of_the_sender_only() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let peer = protocols::signed::peer_id_of(&key.verifying_key());
        let thumb = b"age-encryption.org/v1 thumbnail".to_vec();
        let up = |manifest_json, thumbnail| ThumbnailUpload {
            manifest_json,
            thumbnail,
        };
        let (m, cid) = check(&up(signed(&key, &thumb, "t"), thumb.clone()), &peer, "t").unwrap();
        assert_eq!(m.event_id, "ev-1");
        assert_eq!(cid, ContentId::of_bytes(&thumb).to_string());

        let mut flipped = thumb.clone();
        flipped[3] ^= 1;
        assert!(matches!(
            check(&up(signed(&key, &thumb, "t"), flipped), &peer, "t"),
            Err(ThumbnailRefusal::Mismatch(_))
        ));
        assert!(matches!(
            check(&up(signed(&other, &thumb, "t"), thumb.clone()), &peer, "t"),
            Err(ThumbnailRefusal::BadManifest(_))
        ));
        assert!(matches!(
            check(&up(signed(&key, &thumb, "u"), thumb.clone()), &peer, "t"),
            Err(ThumbnailRefusal::BadManifest(_))
        ));
        assert!(matches!(
            check(&up(b"{}".to_vec(), thumb.clone()), &peer, "t"),
            Err(ThumbnailRefusal::BadManifest(_))
        ));
        let big = vec![0u8; MAX_THUMBNAIL + 1];
        assert!(matches!(
            check(&up(signed(&key, &big, "t"), big.clone()), &peer, "t"),
            Err(ThumbnailRefusal::Mismatch(_))
        ));
    }
}
