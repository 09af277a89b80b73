//! Crash recovery of working files, at start-up before any camera runs.
//!
//! An event that was open when the edge stopped without closing it (`kill -9`, a crash, the
//! OOM killer) left its encrypted working file in `<data>/work/`, its metadata beside it and
//! its key in the memory-backed key folder ([`super::workfile`]). For each:
//!
//! 1. The event already has a row (the crash came after the rows, before the clean-up): the
//!    working file and key are removed.
//! 2. Its key is gone (a power cut cleared `/run`): nobody can open it; it is removed.
//! 3. Otherwise the plaintext is read once to find where its last complete fragment ends
//!    ([`super::workfile::playable_prefix`]), then read again up to there into the sealing,
//!    and the event is recorded with `truncated: true` and the label it opened with; a file
//!    without a complete fragment records the event without a clip. Then the working file
//!    and its key go.
//!
//! Nothing of a working file is left once this returns; plaintext never touched the disk.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use protocols::messages::events::EventRecord;

use super::finish::{FinishContext, Finished, record_event};
use super::workfile::{self, WorkMeta, WorkPaths, WorkReader};
use crate::store::Store;

/// Seals every working file left in `ctx.data`; the ids of the events recorded.
pub fn recover(ctx: &FinishContext) -> Result<Vec<String>> {
    let dir = ctx.data.join(workfile::WORK_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json")
                .or_else(|| name.strip_suffix(".work"))
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids.dedup();
    let mut recovered = Vec::new();
    for id in ids {
        let paths = WorkPaths::new(&ctx.data, &ctx.key_dir, &id);
        match recover_one(ctx, &id, &paths) {
            Ok(true) => recovered.push(id),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(event = %id, error = %format!("{e:#}"), "cannot recover a working file; removing it");
            }
        }
        paths.remove();
    }
    Ok(recovered)
}

/// Recovers one working file; `true` when an event was recorded.
fn recover_one(ctx: &FinishContext, id: &str, paths: &WorkPaths) -> Result<bool> {
    let store = Store::open(&ctx.data.join(crate::paths::DB))?;
    if store.has_event(id)? {
        tracing::info!(event = %id, "working file of an event already recorded; removing it");
        return Ok(false);
    }
    drop(store);
    let meta: WorkMeta = serde_json::from_slice(
        &std::fs::read(&paths.meta).context("the working file's metadata is missing")?,
    )
    .context("the working file's metadata does not parse")?;
    let key = match workfile::read_key(&paths.key) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(event = %id, error = %e, "the key of a working file is gone (power cut?): it cannot be opened");
            return Ok(false);
        }
    };
    let prefix = if paths.file.exists() {
        workfile::playable_prefix(WorkReader::open(&paths.file, &key)?)?
    } else {
        workfile::Prefix {
            len: 0,
            fragments: 0,
            complete: false,
        }
    };
    let ended_at_ms = modified_ms(&paths.file).unwrap_or(meta.started_at_ms);
    let record = EventRecord {
        event_id: meta.event_id.clone(),
        tenant_id: ctx.info.tenant_id.clone(),
        edge_id: ctx.edge_id.clone(),
        camera_id: meta.camera_id.clone(),
        started_at_ms: meta.started_at_ms,
        ended_at_ms: ended_at_ms.max(meta.started_at_ms),
        category: meta.category.clone(),
        score_milli: meta.score_milli,
        clip_cid: None,
        snapshot_cid: None,
        thumbnail_cid: None,
        truncated: true,
        ..Default::default()
    };
    let mut clip = if prefix.fragments > 0 {
        Some(WorkReader::open(&paths.file, &key)?.take(prefix.len))
    } else {
        None
    };
    record_event(
        ctx,
        Finished {
            record,
            track_json: "[]".into(),
            clip: clip.as_mut().map(|c| c as &mut dyn Read),
            images: None,
            work: Some(paths.clone()),
            archive: None,
        },
    )?;
    tracing::warn!(
        event = %id, camera = %meta.camera_id, fragments = prefix.fragments, bytes = prefix.len,
        "recovered an event left open by a stop: sealed up to its last complete fragment"
    );
    Ok(true)
}

fn modified_ms(p: &Path) -> Option<u64> {
    std::fs::metadata(p)
        .ok()?
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}
