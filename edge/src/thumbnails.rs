//! The thumbnail sender: each event's sealed thumbnail pushed to the vm over
//! `/guardian/thumbnails/1`, beside (not inside) its event record, so the owner's timeline has
//! it even when the edge is offline later or the clip is never archived.
//!
//! A row of the thumbnail outbox leaves when the vm answers `Stored`, or when the thumbnail
//! is gone from the edge (retention removed its event). A retryable refusal or a failed send
//! waits with the archive's backoff; a final refusal parks the row with its reason.

use std::path::Path;

use anyhow::{Context, Result};
use futures::AsyncWriteExt;
use guardian_node::{NodeHandle, PeerId};
use protocols::manifest::ObjectKind;
use protocols::messages::thumbnails::{
    MAX_THUMBNAIL, ThumbnailAck, ThumbnailRefusal, ThumbnailUpload,
};

use crate::store::ThumbnailItem;

/// How one send ended.
#[derive(Debug)]
pub enum SendOutcome {
    /// Stored by the vm.
    Stored,
    /// The thumbnail is no longer on the edge: nothing to send.
    Gone,
    /// Refused by the vm.
    Refused(ThumbnailRefusal),
}

/// Sends one event's thumbnail.
pub async fn send(
    handle: &NodeHandle,
    vm: PeerId,
    data: &Path,
    item: &ThumbnailItem,
) -> Result<SendOutcome> {
    let path = data
        .join(&item.objects_dir)
        .join(ObjectKind::Thumbnail.file_name());
    let thumbnail = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SendOutcome::Gone),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    anyhow::ensure!(
        thumbnail.len() <= MAX_THUMBNAIL,
        "{} is {} bytes, over the {MAX_THUMBNAIL} the vm takes",
        path.display(),
        thumbnail.len()
    );
    let mut control = handle.streams();
    let (mut stream, ack) = guardian_node::open_with_request::<_, ThumbnailAck>(
        &mut control,
        vm,
        protocols::messages::THUMBNAILS,
        &ThumbnailUpload {
            manifest_json: item.manifest_json.clone(),
            thumbnail,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("thumbnail to the vm: {e}"))?;
    let _ = stream.close().await;
    Ok(match ack {
        ThumbnailAck::Stored => SendOutcome::Stored,
        ThumbnailAck::Refused(r) => SendOutcome::Refused(r),
    })
}
