//! `/guardian/thumbnails/1`: one stream per event's sealed thumbnail, edge to vm, so a
//! timeline shows every event even when the edge is offline or the clip was never archived.
//!
//! ```text
//! edge → vm  ThumbnailUpload   the signed manifest and the sealed thumbnail (the age file)
//! vm → edge  ThumbnailAck      Stored | Refused(reason)
//! ```
//!
//! It travels apart from the event batches (whose size limit is for metadata): the vm checks
//! the manifest's signature against the sending edge, and the thumbnail's CID and size
//! against the manifest, before it stores a byte. The vm never holds a key to open it.

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;

/// The largest sealed thumbnail accepted (a 320 px JPEG is tens of KB).
pub const MAX_THUMBNAIL: usize = 256 * 1024;

/// The edge's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThumbnailUpload {
    /// The event's signed manifest JSON (see [`crate::manifest`]), naming the thumbnail.
    #[serde(with = "serde_bytes")]
    pub manifest_json: Vec<u8>,
    /// The sealed thumbnail (`thumbnail.jpg.age`), exactly as the manifest names it.
    #[serde(with = "serde_bytes")]
    pub thumbnail: Vec<u8>,
}

impl WireMessage for ThumbnailUpload {
    const NAME: &'static str = "ThumbnailUpload";
    const MAX_SIZE: usize = crate::manifest::MAX_MANIFEST_SIZE + MAX_THUMBNAIL + 256;
}

/// The vm's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThumbnailAck {
    /// Stored durably (or already held): the edge may forget it.
    Stored,
    /// Not stored.
    Refused(ThumbnailRefusal),
}

impl WireMessage for ThumbnailAck {
    const NAME: &'static str = "ThumbnailAck";
    const MAX_SIZE: usize = 4 * 1024;
}

/// Why the vm refused a thumbnail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ThumbnailRefusal {
    /// The sender is not an enrolled edge of this vm.
    #[error("this edge is not enrolled")]
    NotEnrolled,
    /// The manifest does not parse, is not signed by the sender, or names another tenant.
    #[error("the manifest is refused: {0}")]
    BadManifest(String),
    /// The bytes are not the thumbnail the manifest names (CID or size), or too large.
    #[error("the thumbnail does not match its manifest: {0}")]
    Mismatch(String),
    /// The vm cannot write for now; send it again later.
    #[error("the vm's storage is unavailable: {0}")]
    StorageUnavailable(String),
}

impl ThumbnailRefusal {
    /// Whether sending the same thumbnail again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ThumbnailRefusal::StorageUnavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    #[test]
    fn upload_and_ack() {
        conformance::check(&ThumbnailUpload {
            manifest_json: br#"{"format":"guardian-manifest/2"}"#.to_vec(),
            thumbnail: vec![7; 40_000],
        });
        conformance::check_encoder_limit(&ThumbnailUpload {
            manifest_json: vec![1; 1024],
            thumbnail: vec![7; ThumbnailUpload::MAX_SIZE],
        });
        conformance::check(&ThumbnailAck::Stored);
        conformance::check(&ThumbnailAck::Refused(ThumbnailRefusal::Mismatch(
            "size 3, the manifest says 4".into(),
        )));
    }

    #[test]
    fn only_storage_is_retried() {
        assert!(ThumbnailRefusal::StorageUnavailable("busy".into()).is_retryable());
        assert!(!ThumbnailRefusal::NotEnrolled.is_retryable());
        assert!(!ThumbnailRefusal::BadManifest("x".into()).is_retryable());
        assert!(!ThumbnailRefusal::Mismatch("x".into()).is_retryable());
    }
}
