//! `/guardian/archive/1` on the vm: sealed events from edges into per-camera S3 buckets,
//! indexed by CID.
//!
//! For each stream: the edge must be registered; the manifest must verify under the edge's
//! own key and name this tenant and that edge; policy (categories, object size) and the
//! camera's quota (bytes, from the index) must allow it. Then the vm asks for the objects it
//! does not hold yet (by CID, so a retry after a lost ack sends nothing twice), streams each
//! to S3 (bounded memory, SHA-256 checked by the server), checks each one's CID and size
//! against the manifest, stores the manifest, writes the index rows in one transaction, and
//! only then acks `Stored`. Any failure before the ack leaves the edge's copy in its outbox.
//!
//! The pure checks are in [`policy`]; the retention sweep and the start-up reconciliation
//! in [`retention`].
//!
//! Layout: bucket `camera-<camera_id>`, keys `events/<event_id>/clip.mp4.age`,
//! `events/<event_id>/snapshot.jpg.age`, `events/<event_id>/manifest.json`.

use std::sync::Arc;

use futures::AsyncWriteExt;
use guardian_node::{PeerId, Shutdown};
use protocols::codec::{read_frame, write_frame};
use protocols::manifest::{Manifest, ObjectKind};
use protocols::messages::archive::{
    ArchiveDecision, ArchiveOffer, ArchiveRefusal, ArchiveResult, ObjectHeader,
};

use crate::db;
use crate::state::VmState;
use crate::storage::Storage;

pub mod policy;
pub mod reindex;
pub mod retention;
pub mod uploads;

pub use crate::config::ArchiveConfig;
pub use policy::{bucket_of, object_key};
pub use retention::{Reconciled, reconcile, sweep_retention};

use policy::{Held, Plan};

/// Serves archive streams until `shutdown` or the end of the incoming streams.
pub async fn serve(
    state: Arc<VmState>,
    storage: Arc<Storage>,
    incoming: guardian_node::IncomingStreams,
    shutdown: Shutdown,
) {
    let width = state.config.archive.concurrent_uploads;
    guardian_node::serve_streams(incoming, width, shutdown, |peer, stream| {
        let (state, storage) = (state.clone(), storage.clone());
        async move {
            if let Err(e) = handle(&state, &storage, peer, stream).await {
                tracing::warn!(%peer, error = %e, "archive stream failed");
            }
        }
    })
    .await
}

/// Checks an offer against the index and the policy; `Ok` carries the decision to send
/// (objects wanted, or already archived).
async fn decide(
    state: &VmState,
    storage: &Storage,
    peer: &PeerId,
    manifest: &Manifest,
    manifest_len: u64,
) -> Result<ArchiveDecision, ArchiveRefusal> {
    let peer_s = peer.to_string();
    let registered = {
        let p = peer_s.clone();
        state
            .db
            .call(move |c| Ok(db::device(c, &p)?.is_some()))
            .await
            .map_err(|e| ArchiveRefusal::StorageUnavailable(e.to_string()))?
    };
    if !registered {
        return Err(ArchiveRefusal::Invalid("this edge is not enrolled".into()));
    }
    let policy = &state.config.archive;
    policy::check_offer(manifest, &peer_s, &state.config.tenant_id, policy)?;
    let held = {
        let (event, camera) = (manifest.event_id.clone(), manifest.camera_id.clone());
        state
            .db
            .call(move |c| {
                Ok(Held {
                    objects: db::archived_objects_of_event(c, &event)?
                        .into_iter()
                        .map(|o| (o.kind, o.cid))
                        .collect(),
                    manifest: db::archived_manifest(c, &event)?.is_some(),
                    camera_used: db::camera_usage(c, &camera)?,
                })
            })
            .await
            .map_err(|e| ArchiveRefusal::StorageUnavailable(e.to_string()))?
    };
    let planned = policy::plan(manifest, manifest_len, &held, policy.quota_bytes_per_camera);
    if let Err(ArchiveRefusal::QuotaExceeded {
        camera_id,
        used,
        quota,
        needed,
    }) = &planned
    {
        let r = db::OverQuota {
            camera_id: camera_id.clone(),
            refused_at_ms: state.clock.wall_ms(),
            used_bytes: *used,
            needed_bytes: *needed,
            quota_bytes: *quota,
        };
        if let Err(e) = state.db.call(move |c| db::quota_refused(c, &r)).await {
            tracing::warn!(error = %e, "cannot record a quota refusal");
        }
    }
    match planned? {
        Plan::AlreadyArchived => Ok(ArchiveDecision::AlreadyArchived),
        Plan::Send(objects) => {
            storage
                .ensure_bucket(&bucket_of(&manifest.camera_id))
                .await
                .map_err(|e| ArchiveRefusal::StorageUnavailable(e.to_string()))?;
            Ok(ArchiveDecision::Send { objects })
        }
    }
}

async fn handle(
    state: &VmState,
    storage: &Storage,
    peer: PeerId,
    mut stream: libp2p::Stream,
) -> anyhow::Result<()> {
    let offer: ArchiveOffer = read_frame(&mut stream).await?;
    let manifest = match Manifest::from_json(&offer.manifest_json) {
        Ok(m) => m,
        Err(e) => {
            let r = ArchiveRefusal::Invalid(e.to_string());
            write_frame(&mut stream, &ArchiveDecision::Refused(r)).await?;
            return Ok(());
        }
    };
    let decision = decide(
        state,
        storage,
        &peer,
        &manifest,
        offer.manifest_json.len() as u64,
    )
    .await
    .unwrap_or_else(ArchiveDecision::Refused);
    if let ArchiveDecision::Refused(r) = &decision {
        tracing::warn!(%peer, event = %manifest.event_id, reason = %r, "archive refused");
    }
    write_frame(&mut stream, &decision).await?;
    let ArchiveDecision::Send { objects } = decision else {
        let _ = stream.close().await;
        return Ok(());
    };
    let result = receive(
        state,
        storage,
        &peer,
        &manifest,
        &offer.manifest_json,
        &objects,
        &mut stream,
    )
    .await;
    match &result {
        ArchiveResult::Stored { bucket, .. } => {
            tracing::info!(%peer, event = %manifest.event_id, %bucket, objects = objects.len(), "event archived")
        }
        ArchiveResult::Refused(r) => {
            tracing::warn!(%peer, event = %manifest.event_id, reason = %r, "archive failed")
        }
    }
    write_frame(&mut stream, &result).await?;
    let _ = stream.close().await;
    Ok(())
}

async fn receive(
    state: &VmState,
    storage: &Storage,
    peer: &PeerId,
    manifest: &Manifest,
    manifest_json: &[u8],
    wanted: &[ObjectKind],
    stream: &mut libp2p::Stream,
) -> ArchiveResult {
    let bucket = bucket_of(&manifest.camera_id);
    for &kind in wanted {
        let expected = manifest
            .object(kind)
            .expect("decide only asks for listed objects");
        let header: ObjectHeader = match read_frame(stream).await {
            Ok(h) => h,
            Err(e) => return ArchiveResult::Refused(ArchiveRefusal::Invalid(e.to_string())),
        };
        if header.kind != kind || header.size != expected.size {
            return ArchiveResult::Refused(ArchiveRefusal::Invalid(format!(
                "expected the {kind} of {} bytes, got a {} of {}",
                expected.size, header.kind, header.size
            )));
        }
        let key = object_key(&manifest.event_id, kind.file_name());
        let cid = match storage.put_stream(&bucket, &key, header.size, stream).await {
            Ok(cid) => cid,
            Err(e) => {
                return ArchiveResult::Refused(ArchiveRefusal::StorageUnavailable(e.to_string()));
            }
        };
        if cid != expected.cid {
            let _ = storage.delete(&bucket, &key).await;
            return ArchiveResult::Refused(ArchiveRefusal::ObjectMismatch(format!(
                "the {kind} has CID {cid}, the manifest says {}",
                expected.cid
            )));
        }
    }
    let manifest_key = object_key(&manifest.event_id, "manifest.json");
    if let Err(e) = storage
        .put_bytes(&bucket, &manifest_key, manifest_json.to_vec())
        .await
    {
        return ArchiveResult::Refused(ArchiveRefusal::StorageUnavailable(e.to_string()));
    }
    let now = state.clock.wall_ms();
    let retain_until = policy::retain_until(now, state.config.archive.retention_days);
    let rows = policy::index_rows(manifest, &peer.to_string(), now, retain_until);
    let json = manifest_json.to_vec();
    let camera = manifest.camera_id.clone();
    if let Err(e) = state
        .db
        .call(move |c| {
            db::insert_archive(c, &rows, &manifest_key, &json)?;
            db::quota_fits(c, &camera)
        })
        .await
    {
        return ArchiveResult::Refused(ArchiveRefusal::StorageUnavailable(e.to_string()));
    }
    ArchiveResult::Stored {
        bucket,
        retain_until_ms: retain_until,
    }
}
