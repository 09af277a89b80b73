//! Re-indexing what S3 holds and the index does not name (an index restored from an older
//! backup, rows lost with a database): an event's objects come back into the index only from
//! its signed `manifest.json` in the same bucket, once [`check`] found the manifest signed by
//! an edge enrolled here, of this tenant, naming this bucket and event, with every object
//! listed at its size, and once each object's CID, computed from the bytes S3 returns,
//! matches the manifest. Anything else is reported and left alone: nothing is indexed that
//! the edge did not sign.

use std::collections::{HashMap, HashSet};

use protocols::manifest::{MAX_MANIFEST_SIZE, Manifest, ObjectKind};

use super::policy::{self, bucket_of, object_key};
use crate::db::{self, Db};
use crate::storage::Storage;

/// What re-indexing needs of the vm's configuration.
#[derive(Debug, Clone)]
pub struct Context {
    /// This vm's tenant.
    pub tenant_id: String,
    /// Days an archived event is kept (counted from the event's start here).
    pub retention_days: u32,
}

/// Why an event's objects were not re-indexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `manifest.json` beside the objects (or one over the size limit).
    #[error("no manifest.json of at most {MAX_MANIFEST_SIZE} bytes beside the objects")]
    NoManifest,
    /// The manifest does not parse.
    #[error("the manifest does not parse: {0}")]
    Unreadable(String),
    /// The manifest's edge is not enrolled at this vm.
    #[error("the manifest names edge {0}, which is not enrolled here")]
    UnknownEdge(String),
    /// The signature does not verify under the named edge's key.
    #[error("the manifest's signature does not verify under its edge's key")]
    BadSignature,
    /// Another tenant's manifest.
    #[error("the manifest is tenant {0}'s")]
    WrongTenant(String),
    /// The manifest is for another camera or event than where it lies.
    #[error("the manifest is for camera {camera}, event {event}: not this folder")]
    WrongPlace {
        /// The manifest's camera.
        camera: String,
        /// The manifest's event.
        event: String,
    },
    /// An object the manifest lists is not in S3 at its size.
    #[error("the {kind} the manifest lists is not in S3 at {size} bytes")]
    ObjectMissing {
        /// The object.
        kind: ObjectKind,
        /// Its size in the manifest.
        size: u64,
    },
    /// An object's bytes do not hash to the manifest's CID.
    #[error("the {kind} in S3 has CID {got}, the manifest says {want}")]
    CidMismatch {
        /// The object.
        kind: ObjectKind,
        /// Computed.
        got: String,
        /// Signed.
        want: String,
    },
}

/// The checks on a manifest found at `bucket/events/<event_id>/manifest.json`, with the
/// bucket's `listing` (key → size) and the enrolled edges' peer ids. Pure.
pub fn check(
    manifest_json: &[u8],
    bucket: &str,
    event_id: &str,
    ctx: &Context,
    listing: &HashMap<String, u64>,
    enrolled: &HashSet<String>,
) -> Result<Manifest, Refusal> {
    let m = Manifest::from_json(manifest_json).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if !enrolled.contains(&m.edge_id) {
        return Err(Refusal::UnknownEdge(m.edge_id.clone()));
    }
    let key = protocols::signed::parse_public_key(&m.edge_id).map_err(|_| Refusal::BadSignature)?;
    m.verify_signature(&key)
        .map_err(|_| Refusal::BadSignature)?;
    if m.tenant_id != ctx.tenant_id {
        return Err(Refusal::WrongTenant(m.tenant_id.clone()));
    }
    if bucket_of(&m.camera_id) != bucket || m.event_id != event_id {
        return Err(Refusal::WrongPlace {
            camera: m.camera_id.clone(),
            event: m.event_id.clone(),
        });
    }
    for o in &m.objects {
        let key = object_key(&m.event_id, o.kind.file_name());
        if listing.get(&key) != Some(&o.size) {
            return Err(Refusal::ObjectMissing {
                kind: o.kind,
                size: o.size,
            });
        }
    }
    Ok(m)
}

/// The event id of a key under `events/<event_id>/`.
pub fn event_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("events/")?;
    let (event, name) = rest.split_once('/')?;
    (!event.is_empty() && !name.is_empty()).then_some(event)
}

/// Re-indexes one event of `bucket` from its manifest: the checks, then each object's CID
/// from its bytes, then the rows in one transaction (`INSERT OR IGNORE`: rows that exist
/// stay as they are).
pub async fn reindex_event(
    db: &Db,
    storage: &Storage,
    ctx: &Context,
    bucket: &str,
    event_id: &str,
    listing: &HashMap<String, u64>,
    now_ms: u64,
) -> anyhow::Result<Result<(), Refusal>> {
    let manifest_key = object_key(event_id, "manifest.json");
    let Some(json) = storage
        .get_small(bucket, &manifest_key, MAX_MANIFEST_SIZE as u64)
        .await?
    else {
        return Ok(Err(Refusal::NoManifest));
    };
    let enrolled: HashSet<String> = db
        .call(|c| db::devices(c))
        .await?
        .into_iter()
        .map(|d| d.peer_id)
        .collect();
    let manifest = match check(&json, bucket, event_id, ctx, listing, &enrolled) {
        Ok(m) => m,
        Err(r) => return Ok(Err(r)),
    };
    for o in &manifest.objects {
        let got = storage
            .cid_of(bucket, &object_key(event_id, o.kind.file_name()))
            .await?;
        if got != o.cid {
            return Ok(Err(Refusal::CidMismatch {
                kind: o.kind,
                got: got.to_string(),
                want: o.cid.to_string(),
            }));
        }
    }
    let retain_until = policy::retain_until(manifest.started_at_ms, ctx.retention_days);
    let rows = policy::index_rows(&manifest, &manifest.edge_id, now_ms, retain_until);
    db.call(move |c| db::insert_archive(c, &rows, &manifest_key, &json))
        .await?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use protocols::ContentId;
    use protocols::manifest::ObjectRef;

    fn ctx() -> Context {
        Context {
            tenant_id: "t".into(),
            retention_days: 90,
        }
    }

    fn signed(key: &SigningKey, edit: impl FnOnce(&mut Manifest)) -> (Manifest, Vec<u8>) {
        let clip = b"sealed clip";
        let mut m = Manifest {
            camera_id: "front".into(),
            edge_id: protocols::signed::peer_id_of(&key.verifying_key()),
            ended_at_ms: 2,
            event_id: "ev-1".into(),
            format: protocols::manifest::FORMAT.into(),
            key_ids: vec!["k".into()],
            labels: vec![],
            objects: vec![ObjectRef {
                cid: ContentId::of_bytes(clip),
                kind: ObjectKind::Clip,
                size: clip.len() as u64,
            }],
            sealed_at_ms: 3,
            signature: None,
            started_at_ms: 1,
            tenant_id: "t".into(),
            truncated: false,
        };
        edit(&mut m);
        m.sign(key);
        let json = m.to_json();
        (m, json)
    }

    #[test]
    fn only_a_manifest_signed_by_an_enrolled_edge_for_this_place_is_taken() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let edge = protocols::signed::peer_id_of(&key.verifying_key());
        let enrolled: HashSet<String> = [edge.clone()].into();
        let (m, json) = signed(&key, |_| {});
        let listing: HashMap<String, u64> =
            [("events/ev-1/clip.mp4.age".to_owned(), m.objects[0].size)].into();
        let ok = check(&json, "camera-front", "ev-1", &ctx(), &listing, &enrolled).unwrap();
        assert_eq!(ok.event_id, "ev-1");

        // Each refusal, one change at a time.
        assert!(matches!(
            check(b"{", "camera-front", "ev-1", &ctx(), &listing, &enrolled),
            Err(Refusal::Unreadable(_))
        ));
        assert_eq!(
            check(
                &json,
                "camera-front",
                "ev-1",
                &ctx(),
                &listing,
                &HashSet::new()
            ),
            Err(Refusal::UnknownEdge(edge.clone()))
        );
        let mut tampered = m.clone();
        tampered.started_at_ms += 1;
        assert_eq!(
            check(
                &tampered.to_json(),
                "camera-front",
                "ev-1",
                &ctx(),
                &listing,
                &enrolled
            ),
            Err(Refusal::BadSignature)
        );
        let (_, other_tenant) = signed(&key, |m| m.tenant_id = "u".into());
        assert_eq!(
            check(
                &other_tenant,
                "camera-front",
                "ev-1",
                &ctx(),
                &listing,
                &enrolled
            ),
            Err(Refusal::WrongTenant("u".into()))
        );
        assert!(matches!(
            check(&json, "camera-back", "ev-1", &ctx(), &listing, &enrolled),
            Err(Refusal::WrongPlace { .. })
        ));
        assert!(matches!(
            check(&json, "camera-front", "ev-2", &ctx(), &listing, &enrolled),
            Err(Refusal::WrongPlace { .. })
        ));
        let short: HashMap<String, u64> = [("events/ev-1/clip.mp4.age".to_owned(), 3)].into();
        assert_eq!(
            check(&json, "camera-front", "ev-1", &ctx(), &short, &enrolled),
            Err(Refusal::ObjectMissing {
                kind: ObjectKind::Clip,
                size: m.objects[0].size
            })
        );
    }

    #[test]
    fn event_ids_come_from_the_key_layout() {
        assert_eq!(event_of("events/ev-1/clip.mp4.age"), Some("ev-1"));
        assert_eq!(event_of("events/ev-1/"), None);
        assert_eq!(event_of("events//x"), None);
        assert_eq!(event_of("other/ev-1/x"), None);
    }
}
