//! The archive outbox: sealed event objects waiting for the vm, and the sender that pushes
//! them over `/guardian/archive/1`.
//!
//! # Write order (as Moonfire NVR's writer)
//!
//! Sealing an event writes each object to `archive/<event_id>/<name>.part`, fsyncs it, renames
//! it into place, writes the signed `manifest.json` the same way, fsyncs the folder, and only
//! then inserts the outbox row (with the event record, in one transaction). A crash before the
//! row leaves a folder with no row, which [`sweep_orphans`] removes at start-up; a row always
//! has its complete folder.
//!
//! # Leaving the outbox
//!
//! A row leaves only when the vm answers `Stored` (or `AlreadyArchived`, a retry after a lost
//! ack): the row is deleted first, then the folder. A retryable refusal (quota, storage down)
//! or a failed send waits with exponential backoff; a final refusal parks the row with its
//! reason, and the sealed objects stay on the edge.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures::{AsyncReadExt, AsyncWriteExt};
use guardian_node::{NodeHandle, PeerId};
use protocols::codec::{read_frame, write_frame};
use protocols::manifest::{FORMAT, Label, Manifest, ObjectKind, ObjectRef};
use protocols::messages::archive::{
    ArchiveDecision, ArchiveOffer, ArchiveRefusal, ArchiveResult, ObjectHeader,
};
use protocols::messages::events::EventRecord;
use protocols::package::PackageInfo;
use tokio::io::AsyncReadExt as _;

use crate::store::{ArchiveItem, Store};

/// Folder of the sealed objects, inside the data directory.
pub const ARCHIVE_DIR: &str = "archive";
const COPY_BUF: usize = 256 * 1024;

/// What to seal for one event.
pub struct EventToSeal<'a> {
    /// The event record (also queued for `/guardian/events/1`).
    pub record: EventRecord,
    /// The clip file.
    pub clip: &'a Path,
    /// The snapshot file, if any.
    pub snapshot: Option<&'a Path>,
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

fn seal_object(
    plain: &Path,
    dir: &Path,
    kind: ObjectKind,
    recipients: &[age::x25519::Recipient],
) -> Result<ObjectRef> {
    let input =
        std::fs::File::open(plain).with_context(|| format!("cannot open {}", plain.display()))?;
    let dest = dir.join(kind.file_name());
    let part = dest.with_extension("age.part");
    let mut out = std::io::BufWriter::with_capacity(COPY_BUF, std::fs::File::create(&part)?);
    let summary = protocols::seal::seal(std::io::BufReader::new(input), &mut out, recipients)
        .with_context(|| format!("cannot seal {}", plain.display()))?;
    out.flush()?;
    out.get_ref().sync_all()?;
    drop(out);
    std::fs::rename(&part, &dest).with_context(|| format!("cannot rename {}", part.display()))?;
    Ok(ObjectRef {
        cid: summary.cid,
        kind,
        size: summary.size,
    })
}

/// Seals an event's objects to the owner's recipient, signs its manifest, and queues it (and
/// its event record) in one transaction. Returns the manifest.
pub fn seal_event(
    data: &Path,
    store: &mut Store,
    info: &PackageInfo,
    edge_key: &ed25519_dalek::SigningKey,
    event: EventToSeal<'_>,
    now_ms: u64,
) -> Result<Manifest> {
    let record = &event.record;
    let recipients = protocols::seal::parse_recipients(&[info.archive_recipient.as_str()])?;
    let root = data.join(ARCHIVE_DIR);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let dir = root.join(&record.event_id);
    if dir.exists() {
        bail!("event {} is already sealed", record.event_id);
    }
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut objects = vec![seal_object(
        event.clip,
        &dir,
        ObjectKind::Clip,
        &recipients,
    )?];
    if let Some(s) = event.snapshot {
        objects.push(seal_object(s, &dir, ObjectKind::Snapshot, &recipients)?);
    }
    let mut manifest = Manifest {
        camera_id: record.camera_id.clone(),
        edge_id: protocols::signed::peer_id_of(&edge_key.verifying_key()),
        ended_at_ms: record.ended_at_ms,
        event_id: record.event_id.clone(),
        format: FORMAT.into(),
        key_id: info.archive_key_id.clone(),
        labels: vec![Label {
            category: record.category.as_str().to_owned(),
            score_milli: record.score_milli,
        }],
        objects,
        sealed_at_ms: now_ms,
        signature: None,
        started_at_ms: record.started_at_ms,
        tenant_id: info.tenant_id.clone(),
    };
    manifest.sign(edge_key);
    let json = manifest.to_json();
    let part = dir.join("manifest.json.part");
    {
        let mut f = std::fs::File::create(&part)?;
        f.write_all(&json)?;
        f.sync_all()?;
    }
    std::fs::rename(&part, dir.join("manifest.json"))?;
    sync_dir(&dir)?;
    sync_dir(&root)?;
    let total: u64 = manifest.objects.iter().map(|o| o.size).sum();
    store.enqueue_archive(record, &json, total, now_ms)?;
    Ok(manifest)
}

/// How old a folder without an outbox row must be before [`sweep_orphans`] removes it: an
/// `archive-file` command may be sealing one right now.
pub const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes sealed folders that have no outbox row and are older than [`ORPHAN_GRACE`] at
/// `now_ms` (wall time, compared with the folders' modification times; left by a crash
/// between sealing and queueing, or between deleting a row and its folder).
pub fn sweep_orphans(data: &Path, store: &Store, now_ms: u64) -> Result<usize> {
    let root = data.join(ARCHIVE_DIR);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(0);
    };
    let queued = store.archive_event_ids()?;
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|modified| {
                now_ms.saturating_sub(modified.as_millis() as u64) > ORPHAN_GRACE.as_millis() as u64
            });
        if old && !queued.contains(&name) {
            tracing::warn!(event = %name, "removing sealed objects with no outbox row");
            std::fs::remove_dir_all(e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

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
    let dir: PathBuf = data.join(ARCHIVE_DIR).join(&item.event_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn modified_ms(p: &Path) -> u64 {
        std::fs::metadata(p)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn only_old_folders_without_a_row_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(ARCHIVE_DIR);
        for name in ["orphan", "queued"] {
            std::fs::create_dir_all(root.join(name)).unwrap();
            std::fs::write(root.join(name).join("clip.age"), b"x").unwrap();
        }
        let mut store = Store::open_in_memory().unwrap();
        let record = EventRecord {
            event_id: "queued".into(),
            tenant_id: "t".into(),
            edge_id: "e".into(),
            camera_id: "c".into(),
            started_at_ms: 1,
            ended_at_ms: 2,
            category: protocols::messages::Category::Person,
            score_milli: 900,
            clip_id: None,
            snapshot_id: None,
        };
        store.enqueue_archive(&record, b"{}", 1, 1).unwrap();
        let t = modified_ms(&root.join("orphan")).max(modified_ms(&root.join("queued")));
        let grace = ORPHAN_GRACE.as_millis() as u64;

        // Within the grace an `archive-file` may still be sealing it: kept.
        assert_eq!(sweep_orphans(dir.path(), &store, t + grace).unwrap(), 0);
        assert!(root.join("orphan").exists());
        // After it: the folder with no row goes, the queued one stays.
        assert_eq!(sweep_orphans(dir.path(), &store, t + grace + 1).unwrap(), 1);
        assert!(!root.join("orphan").exists());
        assert!(root.join("queued").join("clip.age").exists());
        // No archive folder at all: nothing to do.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(sweep_orphans(empty.path(), &store, u64::MAX).unwrap(), 0);
    }
}
