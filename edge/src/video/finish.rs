//! Clip finishing: once an event closes, its clip is ended (the muxer writes its index, the
//! file is fsynced), the best frame becomes a JPEG snapshot, the folder is fsynced, and only
//! then are the rows written (the event, its outbox record); the archive policy decides
//! whether the event is also sealed for the vm. Runs on a thread of its own per event, so the
//! camera goes on reading frames meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use guardian_node::clock::SharedClock;
use protocols::messages::Category;
use protocols::messages::events::EventRecord;
use protocols::package::PackageInfo;

use super::analysis::Best;
use super::recorder::ClipWriter;
use crate::config::{ArchiveConfig, CameraSettings};
use crate::detect::labels;
use crate::store::{LocalEvent, Store};

/// The longest wait for the muxer to write a clip's index.
const CLIP_FINISH_TIMEOUT: Duration = Duration::from_secs(20);

/// What finishing needs of the edge.
pub struct FinishContext {
    /// The data directory.
    pub data: PathBuf,
    /// The install package (tenant, owner's recipient).
    pub info: PackageInfo,
    /// The edge's key (signs manifests).
    pub key: ed25519_dalek::SigningKey,
    /// The edge's peer id.
    pub edge_id: String,
    /// Which events are sealed for the archive.
    pub archive: ArchiveConfig,
    /// Wall time of the rows written.
    pub clock: SharedClock,
}

/// A closed event whose clip is still open.
pub struct ClosedEvent {
    /// The event.
    pub event_id: String,
    /// Its clip, all frames written.
    pub writer: ClipWriter,
    /// Its best detection (its category, score and snapshot).
    pub best: Option<Best>,
    /// Its box track, JSON (`[[t_ms, x0, y0, x1, y1], ...]`).
    pub track_json: String,
    /// When it started, Unix ms.
    pub started_at_ms: u64,
    /// When it ended, Unix ms.
    pub ended_at_ms: u64,
}

/// Finishes `event` on a thread of its own (errors are logged: the event is then not saved).
pub fn spawn(
    ctx: Arc<FinishContext>,
    cam: CameraSettings,
    event: ClosedEvent,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("finish-{}", cam.id))
        .spawn(move || {
            if let Err(e) = finish(&ctx, &cam, event) {
                tracing::error!(camera = %cam.id, error = %format!("{e:#}"), "event not saved");
            }
        })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Ends the clip, writes the snapshot, records the event and seals it for the archive when
/// the policy says so. Write order: files, fsync, folder fsync, then the rows.
pub fn finish(ctx: &FinishContext, cam: &CameraSettings, event: ClosedEvent) -> anyhow::Result<()> {
    let ClosedEvent {
        event_id,
        writer,
        best,
        track_json,
        started_at_ms,
        ended_at_ms,
    } = event;
    let frames = writer.frames;
    let clip = writer
        .finish(CLIP_FINISH_TIMEOUT)
        .context("clip not finished")?;
    let dir = clip.parent().expect("clip in a folder").to_path_buf();
    let (category, score) = match &best {
        Some(b) => (labels::category(b.class), b.score),
        None => (Category::Person, 0.0),
    };
    let snapshot = match &best {
        Some(b) => {
            let path = dir.join(format!("{event_id}.jpg"));
            write_jpeg(&path, &b.rgb, cam.detect_width, cam.detect_height)?;
            Some(path)
        }
        None => None,
    };
    sync_dir(&dir)?;
    let bytes = std::fs::metadata(&clip)?.len()
        + snapshot
            .as_ref()
            .and_then(|s| std::fs::metadata(s).ok())
            .map_or(0, |m| m.len());
    let rel = |p: &Path| {
        p.strip_prefix(&ctx.data)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let record = EventRecord {
        event_id: event_id.clone(),
        tenant_id: ctx.info.tenant_id.clone(),
        edge_id: ctx.edge_id.clone(),
        camera_id: cam.id.clone(),
        started_at_ms,
        ended_at_ms: ended_at_ms.max(started_at_ms),
        category: category.clone(),
        score_milli: (score * 1000.0).round() as u16,
        clip_id: None,
        snapshot_id: None,
    };
    let mut store = Store::open(&ctx.data.join(crate::paths::DB))?;
    store.insert_event(
        &LocalEvent {
            record: record.clone(),
            track_json,
            clip_path: Some(rel(&clip)),
            snapshot_path: snapshot.as_deref().map(rel),
            bytes,
        },
        ctx.clock.wall_ms(),
    )?;
    tracing::info!(
        camera = %cam.id, event = %event_id, category = category.as_str(), score,
        frames, bytes, "event recorded"
    );
    if ctx
        .archive
        .admits(&cam.id, &category, score, record.ended_at_ms)
    {
        let m = crate::archive::seal_event(
            &ctx.data,
            &mut store,
            &ctx.info,
            &ctx.key,
            crate::archive::EventToSeal {
                record,
                clip: &clip,
                snapshot: snapshot.as_deref(),
            },
            ctx.clock.wall_ms(),
        )?;
        store.mark_archived(&m.event_id)?;
        tracing::info!(event = %m.event_id, "event sealed for the archive");
    }
    Ok(())
}

/// Writes an RGB frame as a JPEG (quality 85), fsynced.
pub fn write_jpeg(path: &Path, rgb: &[u8], width: u32, height: u32) -> anyhow::Result<()> {
    use std::io::Write;
    anyhow::ensure!(
        rgb.len() == width as usize * height as usize * 3,
        "a {width}x{height} frame of {} bytes",
        rgb.len()
    );
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode(
        rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    let mut f = std::fs::File::create(path)?;
    f.write_all(&out)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_snapshot_is_a_jpeg_of_the_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jpg");
        let rgb: Vec<u8> = (0..32 * 16 * 3).map(|i| (i % 251) as u8).collect();
        super::write_jpeg(&path, &rgb, 32, 16).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), (32, 16));
        assert!(
            super::write_jpeg(&path, &rgb[..10], 32, 16).is_err(),
            "a short frame"
        );
    }
}
