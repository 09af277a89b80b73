//! The archive's pure decisions: where an event's objects go in S3, whether an offer is
//! acceptable (signature, tenant, ids, policy), what to ask for and whether the camera's
//! quota allows it, and how long an archived event is kept.

use std::collections::HashMap;

use protocols::manifest::{Manifest, ObjectKind};
use protocols::messages::archive::ArchiveRefusal;
use protocols::messages::valid_id;

use crate::config::ArchiveConfig;

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;

/// The bucket of a camera.
pub fn bucket_of(camera_id: &str) -> String {
    format!("camera-{camera_id}")
}

/// The key of an event's object.
pub fn object_key(event_id: &str, name: &str) -> String {
    format!("events/{event_id}/{name}")
}

/// When an event archived at `now_ms` may be deleted.
pub fn retain_until(now_ms: u64, retention_days: u32) -> u64 {
    now_ms.saturating_add(u64::from(retention_days) * DAY_MS)
}

/// Checks an offer's manifest against the offering edge (`peer`, its peer id, which is also
/// its public key), this tenant and the policy: signature, tenant and edge, ids, a clip,
/// categories, object sizes.
pub fn check_offer(
    manifest: &Manifest,
    peer: &str,
    tenant_id: &str,
    policy: &ArchiveConfig,
) -> Result<(), ArchiveRefusal> {
    let key =
        protocols::signed::parse_public_key(peer).map_err(|_| ArchiveRefusal::BadSignature)?;
    if manifest.verify_signature(&key).is_err() {
        return Err(ArchiveRefusal::BadSignature);
    }
    if manifest.tenant_id != tenant_id || manifest.edge_id != peer {
        return Err(ArchiveRefusal::WrongTenant);
    }
    if !valid_id(&manifest.camera_id) || !valid_id(&manifest.event_id) {
        return Err(ArchiveRefusal::Invalid("invalid camera or event id".into()));
    }
    if manifest.object(ObjectKind::Clip).is_none() {
        return Err(ArchiveRefusal::Invalid("the manifest lists no clip".into()));
    }
    if !policy.categories.is_empty()
        && !manifest
            .labels
            .iter()
            .any(|l| policy.categories.iter().any(|c| c == &l.category))
    {
        return Err(ArchiveRefusal::Policy(format!(
            "only {} events are archived",
            policy.categories.join(", ")
        )));
    }
    if let Some(o) = manifest
        .objects
        .iter()
        .find(|o| o.size > policy.max_object_bytes)
    {
        return Err(ArchiveRefusal::Policy(format!(
            "the {} is {} bytes, over the limit of {}",
            o.kind, o.size, policy.max_object_bytes
        )));
    }
    Ok(())
}

/// The index rows of an event's objects, archived from edge `edge_peer_id` at `now_ms` and
/// kept until `retain_until_ms`. The rows keep the key ids the objects are sealed to,
/// comma separated.
pub fn index_rows(
    manifest: &Manifest,
    edge_peer_id: &str,
    now_ms: u64,
    retain_until_ms: u64,
) -> Vec<crate::db::ArchiveRow> {
    let key_id = manifest.key_ids.join(",");
    manifest
        .objects
        .iter()
        .map(|o| crate::db::ArchiveRow {
            cid: o.cid.to_string(),
            event_id: manifest.event_id.clone(),
            kind: o.kind.to_string(),
            camera_id: manifest.camera_id.clone(),
            edge_peer_id: edge_peer_id.to_owned(),
            bucket: bucket_of(&manifest.camera_id),
            key: object_key(&manifest.event_id, o.kind.file_name()),
            size: o.size,
            key_id: key_id.clone(),
            archived_at_ms: now_ms,
            retain_until_ms,
        })
        .collect()
}

/// What the index already holds of an event, and the camera's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Objects of the event already indexed: kind (`clip`, `snapshot`) to CID.
    pub objects: HashMap<String, String>,
    /// Whether its manifest is stored.
    pub manifest: bool,
    /// Bytes the camera's bucket holds (objects and manifests).
    pub camera_used: u64,
}

/// What to do with an acceptable offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Every object and the manifest are already archived.
    AlreadyArchived,
    /// Ask for these objects (possibly none, when only the manifest is missing).
    Send(Vec<ObjectKind>),
}

/// Decides which objects to ask for (by CID, so a retry sends nothing twice) and whether the
/// camera's quota allows the bytes still needed (the missing objects and the manifest).
pub fn plan(
    manifest: &Manifest,
    manifest_len: u64,
    held: &Held,
    quota_bytes: u64,
) -> Result<Plan, ArchiveRefusal> {
    let mut wanted = Vec::new();
    let mut needed = manifest_len;
    for o in &manifest.objects {
        match held.objects.get(&o.kind.to_string()) {
            Some(cid) if *cid == o.cid.to_string() => {}
            Some(_) => {
                return Err(ArchiveRefusal::Invalid(format!(
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
    if wanted.is_empty() && held.manifest {
        return Ok(Plan::AlreadyArchived);
    }
    let used = held.camera_used;
    if used + needed > quota_bytes {
        return Err(ArchiveRefusal::QuotaExceeded {
            camera_id: manifest.camera_id.clone(),
            used,
            quota: quota_bytes,
            needed,
        });
    }
    Ok(Plan::Send(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use protocols::ContentId;
    use protocols::manifest::{FORMAT, Label, ObjectRef};

    fn manifest(edge: &SigningKey, tenant: &str, category: &str) -> Manifest {
        let mut m = Manifest {
            camera_id: "front".into(),
            edge_id: protocols::signed::peer_id_of(&edge.verifying_key()),
            ended_at_ms: 2,
            event_id: "ev-1".into(),
            format: FORMAT.into(),
            key_ids: vec!["k".into()],
            labels: vec![Label {
                category: category.into(),
                score_milli: 900,
            }],
            objects: vec![
                ObjectRef {
                    cid: ContentId::of_bytes(b"clip"),
                    kind: ObjectKind::Clip,
                    size: 100,
                },
                ObjectRef {
                    cid: ContentId::of_bytes(b"snap"),
                    kind: ObjectKind::Snapshot,
                    size: 10,
                },
            ],
            sealed_at_ms: 3,
            signature: None,
            started_at_ms: 1,
            tenant_id: tenant.into(),
            truncated: false,
        };
        m.sign(edge);
        m
    }

    #[test]
    fn layout_and_retention() {
        assert_eq!(bucket_of("front"), "camera-front");
        assert_eq!(
            object_key("ev-1", "clip.mp4.age"),
            "events/ev-1/clip.mp4.age"
        );
        assert_eq!(retain_until(1_000, 2), 1_000 + 2 * 86_400_000);
        assert_eq!(retain_until(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn offers_are_checked_against_edge_tenant_and_policy() {
        let edge = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let peer = protocols::signed::peer_id_of(&edge.verifying_key());
        let policy = ArchiveConfig::default();
        let m = manifest(&edge, "t", "person");
        assert_eq!(check_offer(&m, &peer, "t", &policy), Ok(()));
        let other_peer = protocols::signed::peer_id_of(&other.verifying_key());
        assert_eq!(
            check_offer(&m, &other_peer, "t", &policy),
            Err(ArchiveRefusal::BadSignature),
            "signed by another edge's key"
        );
        assert_eq!(
            check_offer(&m, &peer, "other", &policy),
            Err(ArchiveRefusal::WrongTenant)
        );
        let mut no_clip = manifest(&edge, "t", "person");
        no_clip.objects.remove(0);
        no_clip.sign(&edge);
        assert!(matches!(
            check_offer(&no_clip, &peer, "t", &policy),
            Err(ArchiveRefusal::Invalid(_))
        ));
        let cars_only = ArchiveConfig {
            categories: vec!["car".into()],
            ..ArchiveConfig::default()
        };
        assert!(matches!(
            check_offer(&m, &peer, "t", &cars_only),
            Err(ArchiveRefusal::Policy(_))
        ));
        let small = ArchiveConfig {
            max_object_bytes: 99,
            ..ArchiveConfig::default()
        };
        assert!(matches!(
            check_offer(&m, &peer, "t", &small),
            Err(ArchiveRefusal::Policy(_))
        ));
    }

    #[test]
    fn plans_ask_only_for_missing_objects_within_quota() {
        let edge = SigningKey::from_bytes(&[7; 32]);
        let m = manifest(&edge, "t", "person");
        let none = Held::default();
        assert_eq!(
            plan(&m, 50, &none, 160),
            Ok(Plan::Send(vec![ObjectKind::Clip, ObjectKind::Snapshot]))
        );
        // 100 + 10 + 50 = 160 bytes needed: one byte less of quota refuses.
        assert_eq!(
            plan(&m, 50, &none, 159),
            Err(ArchiveRefusal::QuotaExceeded {
                camera_id: "front".into(),
                used: 0,
                quota: 159,
                needed: 160
            })
        );
        let clip_held = Held {
            objects: [("clip".to_string(), ContentId::of_bytes(b"clip").to_string())].into(),
            manifest: false,
            camera_used: 100,
        };
        assert_eq!(
            plan(&m, 50, &clip_held, 160),
            Ok(Plan::Send(vec![ObjectKind::Snapshot]))
        );
        let all = Held {
            objects: [
                ("clip".to_string(), ContentId::of_bytes(b"clip").to_string()),
                (
                    "snapshot".to_string(),
                    ContentId::of_bytes(b"snap").to_string(),
                ),
            ]
            .into(),
            manifest: true,
            camera_used: 10_000,
        };
        assert_eq!(plan(&m, 50, &all, 0), Ok(Plan::AlreadyArchived));
        let conflicting = Held {
            objects: [(
                "clip".to_string(),
                ContentId::of_bytes(b"other").to_string(),
            )]
            .into(),
            ..Held::default()
        };
        assert!(matches!(
            plan(&m, 50, &conflicting, u64::MAX),
            Err(ArchiveRefusal::Invalid(_))
        ));
    }
}
