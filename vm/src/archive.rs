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
//! Layout: bucket `camera-<camera_id>`, keys `events/<event_id>/clip.mp4.age`,
//! `events/<event_id>/snapshot.jpg.age`, `events/<event_id>/manifest.json`.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{AsyncWriteExt, StreamExt};
use guardian_node::PeerId;
use protocols::codec::{read_frame, write_frame};
use protocols::manifest::{Manifest, ObjectKind};
use protocols::messages::archive::{
    ArchiveDecision, ArchiveOffer, ArchiveRefusal, ArchiveResult, ObjectHeader,
};
use protocols::messages::valid_id;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::db::{self, ArchiveRow};
use crate::now_ms;
use crate::service::VmState;
use crate::storage::Storage;

/// Archive policy and limits (`[archive]` in `vm.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Bytes each camera's bucket may hold (default 10 GiB).
    pub quota_bytes_per_camera: u64,
    /// Days an archived event is kept (default 90).
    pub retention_days: u32,
    /// Categories archived; empty means all.
    pub categories: Vec<String>,
    /// Largest object accepted (default 2 GiB).
    pub max_object_bytes: u64,
    /// Uploads handled at once (each holds one S3 part in memory).
    pub concurrent_uploads: usize,
    /// Seconds between retention sweeps.
    pub retention_sweep_secs: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            quota_bytes_per_camera: 10 << 30,
            retention_days: 90,
            categories: Vec::new(),
            max_object_bytes: 2 << 30,
            concurrent_uploads: 4,
            retention_sweep_secs: 3600,
        }
    }
}

/// The bucket of a camera.
pub fn bucket_of(camera_id: &str) -> String {
    format!("camera-{camera_id}")
}

/// The key of an event's object.
pub fn object_key(event_id: &str, name: &str) -> String {
    format!("events/{event_id}/{name}")
}

/// Serves archive streams until the stream of incoming streams ends.
pub async fn serve(
    state: Arc<VmState>,
    storage: Arc<Storage>,
    mut incoming: guardian_node::IncomingStreams,
) {
    let permits = Arc::new(Semaphore::new(
        state.config.archive.concurrent_uploads.max(1),
    ));
    while let Some((peer, stream)) = incoming.next().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (state, storage) = (state.clone(), storage.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(&state, &storage, peer, stream).await {
                tracing::warn!(%peer, error = %e, "archive stream failed");
            }
            drop(permit);
        });
    }
}

fn refuse(reason: ArchiveRefusal) -> Result<ArchiveDecision, ArchiveRefusal> {
    Err(reason)
}

/// Checks an offer; `Ok` carries the decision to send (objects wanted, or already archived).
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
        return refuse(ArchiveRefusal::Invalid("this edge is not enrolled".into()));
    }
    let key =
        protocols::signed::parse_public_key(&peer_s).map_err(|_| ArchiveRefusal::BadSignature)?;
    if manifest.verify_signature(&key).is_err() {
        return refuse(ArchiveRefusal::BadSignature);
    }
    if manifest.tenant_id != state.config.tenant_id || manifest.edge_id != peer_s {
        return refuse(ArchiveRefusal::WrongTenant);
    }
    if !valid_id(&manifest.camera_id) || !valid_id(&manifest.event_id) {
        return refuse(ArchiveRefusal::Invalid("invalid camera or event id".into()));
    }
    if manifest.object(ObjectKind::Clip).is_none() {
        return refuse(ArchiveRefusal::Invalid("the manifest lists no clip".into()));
    }
    let policy = &state.config.archive;
    if !policy.categories.is_empty()
        && !manifest
            .labels
            .iter()
            .any(|l| policy.categories.iter().any(|c| c == &l.category))
    {
        return refuse(ArchiveRefusal::Policy(format!(
            "only {} events are archived",
            policy.categories.join(", ")
        )));
    }
    if let Some(o) = manifest
        .objects
        .iter()
        .find(|o| o.size > policy.max_object_bytes)
    {
        return refuse(ArchiveRefusal::Policy(format!(
            "the {} is {} bytes, over the limit of {}",
            o.kind, o.size, policy.max_object_bytes
        )));
    }
    let (held, manifest_held, used) = {
        let (event, camera) = (manifest.event_id.clone(), manifest.camera_id.clone());
        state
            .db
            .call(move |c| {
                let held: HashMap<String, String> = db::archived_objects_of_event(c, &event)?
                    .into_iter()
                    .map(|o| (o.kind, o.cid))
                    .collect();
                Ok((
                    held,
                    db::archived_manifest(c, &event)?.is_some(),
                    db::camera_usage(c, &camera)?,
                ))
            })
            .await
            .map_err(|e| ArchiveRefusal::StorageUnavailable(e.to_string()))?
    };
    let mut wanted = Vec::new();
    let mut needed = manifest_len;
    for o in &manifest.objects {
        match held.get(&o.kind.to_string()) {
            Some(cid) if *cid == o.cid.to_string() => {}
            Some(_) => {
                return refuse(ArchiveRefusal::Invalid(format!(
                    "event {} is already archived with another {}",
                    manifest.event_id, o.kind
                )));
            }
            None => {
                wanted.push(o.kind);
                needed += o.size;
            }
        }
    }
    if wanted.is_empty() && manifest_held {
        return Ok(ArchiveDecision::AlreadyArchived);
    }
    let quota = policy.quota_bytes_per_camera;
    if used + needed > quota {
        return refuse(ArchiveRefusal::QuotaExceeded {
            camera_id: manifest.camera_id.clone(),
            used,
            quota,
            needed,
        });
    }
    storage
        .ensure_bucket(&bucket_of(&manifest.camera_id))
        .await
        .map_err(|e| ArchiveRefusal::StorageUnavailable(e.to_string()))?;
    Ok(ArchiveDecision::Send { objects: wanted })
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
    let now = now_ms();
    let retain_until = now + u64::from(state.config.archive.retention_days) * 86_400_000;
    let key_id = manifest.key_id.clone();
    let rows: Vec<ArchiveRow> = manifest
        .objects
        .iter()
        .map(|o| ArchiveRow {
            cid: o.cid.to_string(),
            event_id: manifest.event_id.clone(),
            kind: o.kind.to_string(),
            camera_id: manifest.camera_id.clone(),
            edge_peer_id: peer.to_string(),
            bucket: bucket.clone(),
            key: object_key(&manifest.event_id, o.kind.file_name()),
            size: o.size,
            key_id: key_id.clone(),
            archived_at_ms: now,
            retain_until_ms: retain_until,
        })
        .collect();
    let json = manifest_json.to_vec();
    if let Err(e) = state
        .db
        .call(move |c| db::insert_archive(c, &rows, &manifest_key, &json))
        .await
    {
        return ArchiveResult::Refused(ArchiveRefusal::StorageUnavailable(e.to_string()));
    }
    ArchiveResult::Stored {
        bucket,
        retain_until_ms: retain_until,
    }
}

/// Deletes archived events past their retention from S3, then from the index.
pub async fn sweep_retention(state: &VmState, storage: &Storage) -> anyhow::Result<usize> {
    let now = now_ms();
    let expired = state.db.call(move |c| db::expired_archives(c, now)).await?;
    let mut n = 0;
    for (event, bucket, keys) in expired {
        for key in &keys {
            storage.delete(&bucket, key).await?;
        }
        let e = event.clone();
        state.db.call(move |c| db::delete_archive(c, &e)).await?;
        tracing::info!(%event, %bucket, "archived event past retention deleted");
        n += 1;
    }
    Ok(n)
}

/// Compares the index with what the buckets hold, at start-up: objects the index names but
/// S3 lacks are dropped from the index (so quota usage is true); objects S3 holds under
/// `events/` that the index does not name are logged (an upload interrupted before its index
/// row; the edge will send that event again).
pub async fn reconcile(state: &VmState, storage: &Storage) -> anyhow::Result<(usize, usize)> {
    let indexed = state
        .db
        .call(|c| db::archived_objects(c, None, 0, u32::MAX))
        .await?;
    let mut by_bucket: HashMap<String, Vec<ArchiveRow>> = HashMap::new();
    for row in indexed {
        by_bucket.entry(row.bucket.clone()).or_default().push(row);
    }
    let mut missing = 0;
    let mut unindexed = 0;
    let buckets = storage.buckets().await?;
    for bucket in buckets.iter().filter(|b| b.starts_with("camera-")) {
        let listed: HashMap<String, u64> = storage.list(bucket).await?.into_iter().collect();
        let rows = by_bucket.remove(bucket).unwrap_or_default();
        let keys: std::collections::HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        for row in &rows {
            if listed.get(&row.key) != Some(&row.size) {
                missing += 1;
                let e = row.event_id.clone();
                tracing::warn!(event = %e, key = %row.key, "indexed object missing from S3; forgetting the event");
                state.db.call(move |c| db::delete_archive(c, &e)).await?;
            }
        }
        for key in listed.keys() {
            if !key.ends_with("manifest.json") && !keys.contains(key.as_str()) {
                unindexed += 1;
                tracing::warn!(%bucket, %key, "object in S3 without an index row");
            }
        }
    }
    for (bucket, rows) in by_bucket {
        for row in rows {
            missing += 1;
            let e = row.event_id.clone();
            tracing::warn!(%bucket, event = %e, "indexed bucket missing from S3; forgetting the event");
            state.db.call(move |c| db::delete_archive(c, &e)).await?;
        }
    }
    Ok((missing, unindexed))
}
