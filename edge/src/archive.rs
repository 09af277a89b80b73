//! The archive sender: events of the archive outbox pushed to the vm over
//! `/guardian/archive/1`.
//!
//! The objects sent are the event's sealed objects in its folder ([`crate::sealed`]): the
//! same bytes playback streams, never sealed twice. A row leaves only when the vm answers
//! `Stored` (or `AlreadyArchived`, a retry after a lost ack); the folder stays (local
//! retention deletes it). A retryable refusal (quota, storage down) or a failed send waits
//! with exponential backoff; a final refusal parks the row with its reason.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures::{AsyncReadExt, AsyncWriteExt};
use guardian_node::{NodeHandle, PeerId};
use protocols::codec::{read_frame, write_frame};
use protocols::manifest::Manifest;
use protocols::messages::archive::{
    ArchiveDecision, ArchiveOffer, ArchiveRefusal, ArchiveResult, ObjectHeader,
};
use tokio::io::AsyncReadExt as _;

use crate::store::ArchiveItem;

const COPY_BUF: usize = 256 * 1024;

/// How one send ended.
#[derive(Debug)]
pub enum SendOutcome {
    /// Stored (or already stored) by the vm: the item may leave the outbox.
    Stored,
    /// Refused by the vm.
    Refused(ArchiveRefusal),
}

/// Pushes one queued event to the vm.
pub async fn send(
    handle: &NodeHandle,
    vm: PeerId,
    data: &Path,
    item: &ArchiveItem,
) -> Result<SendOutcome> {
    let dir: PathBuf = data.join(&item.objects_dir);
    let manifest = Manifest::from_json(&item.manifest_json)?;
    let mut control = handle.streams();
    let (mut stream, decision) = guardian_node::open_with_request::<_, ArchiveDecision>(
        &mut control,
        vm,
        protocols::messages::ARCHIVE,
        &ArchiveOffer {
            manifest_json: item.manifest_json.clone(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("archive offer to the vm: {e}"))?;
    let kinds = match decision {
        ArchiveDecision::Send { objects } => objects,
        ArchiveDecision::AlreadyArchived => return Ok(SendOutcome::Stored),
        ArchiveDecision::Refused(r) => return Ok(SendOutcome::Refused(r)),
    };
    let mut buf = vec![0u8; COPY_BUF];
    for kind in kinds {
        let object = manifest
            .object(kind)
            .with_context(|| format!("the vm asked for a {kind} the manifest does not list"))?;
        write_frame(
            &mut stream,
            &ObjectHeader {
                kind,
                size: object.size,
            },
        )
        .await?;
        let path = dir.join(kind.file_name());
        let mut file = tokio::fs::File::open(&path)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut sent = 0u64;
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n]).await?;
            sent += n as u64;
        }
        if sent != object.size {
            bail!(
                "{} is {sent} bytes, the manifest says {}",
                path.display(),
                object.size
            );
        }
    }
    stream.flush().await?;
    let result = read_frame::<ArchiveResult, _>(&mut stream).await?;
    let _ = stream.close().await;
    // Drain anything the vm still sends, so the stream ends cleanly.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    Ok(match result {
        ArchiveResult::Stored { .. } => SendOutcome::Stored,
        ArchiveResult::Refused(r) => SendOutcome::Refused(r),
    })
}
