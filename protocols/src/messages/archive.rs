//! `/guardian/archive/1`: one stream per archived event.
//!
//! ```text
//! edge → vm  ArchiveOffer      the signed manifest, as it will be stored
//! vm → edge  ArchiveDecision   Send(kinds still needed) | AlreadyArchived | Refused(reason)
//! edge → vm  ObjectHeader, then exactly `size` raw ciphertext bytes; once per kind asked for
//! vm → edge  ArchiveResult     Stored | Refused(reason)
//! ```
//!
//! The vm checks the manifest's signature, tenant, camera, quota and policy before any byte
//! of ciphertext moves, and the CID and size of each object as it streams it to S3. Only
//! `Stored` lets the edge drop the objects from its outbox. Refusals say whether a retry can
//! help ([`ArchiveRefusal::is_retryable`]).

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;
use crate::manifest::ObjectKind;

/// The edge's opening message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveOffer {
    /// The signed manifest JSON (see [`crate::manifest`]).
    #[serde(with = "serde_bytes")]
    pub manifest_json: Vec<u8>,
}

impl WireMessage for ArchiveOffer {
    const NAME: &'static str = "ArchiveOffer";
    const MAX_SIZE: usize = crate::manifest::MAX_MANIFEST_SIZE + 64;
}

/// The vm's answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchiveDecision {
    /// Send these objects, in this order (those already stored by CID are left out).
    Send {
        /// The kinds to send.
        objects: Vec<ObjectKind>,
    },
    /// Every object and the index row are already there: a retry after a lost ack.
    AlreadyArchived,
    /// Not archived.
    Refused(ArchiveRefusal),
}

impl WireMessage for ArchiveDecision {
    const NAME: &'static str = "ArchiveDecision";
    const MAX_SIZE: usize = 4 * 1024;
}

/// Precedes each object's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeader {
    /// Which object follows.
    pub kind: ObjectKind,
    /// Exactly how many bytes follow.
    pub size: u64,
}

impl WireMessage for ObjectHeader {
    const NAME: &'static str = "ObjectHeader";
    const MAX_SIZE: usize = 256;
}

/// The vm's final word on an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchiveResult {
    /// Stored in S3 and indexed: the edge may drop the objects from its outbox.
    Stored {
        /// The bucket (`camera-<camera_id>`).
        bucket: String,
        /// Retention target, Unix ms.
        retain_until_ms: u64,
    },
    /// Not stored.
    Refused(ArchiveRefusal),
}

impl WireMessage for ArchiveResult {
    const NAME: &'static str = "ArchiveResult";
    const MAX_SIZE: usize = 4 * 1024;
}

/// Why the vm did not archive an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ArchiveRefusal {
    /// The camera's bucket would exceed its quota.
    #[error(
        "camera {camera_id} is over its archive quota: {used} of {quota} bytes used, {needed} more needed"
    )]
    QuotaExceeded {
        /// The camera.
        camera_id: String,
        /// Bytes used.
        used: u64,
        /// The quota.
        quota: u64,
        /// Bytes this event needs.
        needed: u64,
    },
    /// The tenant's policy does not archive this event.
    #[error("archive policy refuses this event: {0}")]
    Policy(String),
    /// The manifest's signature does not verify under the edge's key.
    #[error("the manifest's signature does not verify under this edge's key")]
    BadSignature,
    /// The manifest names another tenant or edge.
    #[error("the manifest names another tenant or edge")]
    WrongTenant,
    /// The manifest or an object header is invalid.
    #[error("invalid archive offer: {0}")]
    Invalid(String),
    /// An object's bytes do not match the manifest's CID or size.
    #[error("object does not match its manifest: {0}")]
    ObjectMismatch(String),
    /// Storage is unavailable for now; retry later.
    #[error("archive storage is unavailable: {0}")]
    StorageUnavailable(String),
}

impl ArchiveRefusal {
    /// Whether sending the same event again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ArchiveRefusal::StorageUnavailable(_) | ArchiveRefusal::QuotaExceeded { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    #[test]
    fn archive_offer() {
        conformance::check(&ArchiveOffer {
            manifest_json: br#"{"format":"guardian-manifest/1"}"#.to_vec(),
        });
        conformance::check_encoder_limit(&ArchiveOffer {
            manifest_json: vec![b' '; 70_000],
        });
    }

    #[test]
    fn archive_decision() {
        conformance::check(&ArchiveDecision::Send {
            objects: vec![ObjectKind::Clip, ObjectKind::Snapshot],
        });
        conformance::check(&ArchiveDecision::AlreadyArchived);
        conformance::check(&ArchiveDecision::Refused(ArchiveRefusal::QuotaExceeded {
            camera_id: "front".into(),
            used: 10,
            quota: 11,
            needed: 5,
        }));
    }

    #[test]
    fn object_header() {
        conformance::check(&ObjectHeader {
            kind: ObjectKind::Snapshot,
            size: 123_456_789,
        });
    }

    #[test]
    fn archive_result() {
        conformance::check(&ArchiveResult::Stored {
            bucket: "camera-front".into(),
            retain_until_ms: 1_800_000_000_000,
        });
        conformance::check(&ArchiveResult::Refused(ArchiveRefusal::StorageUnavailable(
            "S3 timed out".into(),
        )));
        assert!(ArchiveRefusal::StorageUnavailable(String::new()).is_retryable());
        assert!(!ArchiveRefusal::BadSignature.is_retryable());
    }
}
