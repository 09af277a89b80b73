//! Clip finishing: once an event closes, its clip is ended (the muxer writes its last
//! fragment into the encrypted working file), the clip, the best frame's snapshot and a
//! thumbnail are sealed into the event's folder with the signed manifest
//! ([`crate::sealed`]: objects, fsync, rename, manifest, folder fsync), then the rows are
//! written (the event, its outbox record and, by the archive policy, its archive row, in one
//! transaction), and only then is the working file with its key removed. Runs on a thread of
//! its own per event, so the camera goes on reading frames meanwhile.
//!
//! [`record`] is the part after the clip has ended, which crash recovery
//! ([`super::recovery`]) shares.

use std::io::Read;
use std::path::PathBuf;
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
use super::second_look::Look;
use super::workfile::WorkPaths;
use crate::config::{ArchiveConfig, CameraArchive, CameraSettings};
use crate::detect::labels;
use crate::key_slots::KeySlots;
use crate::sealed::{Plain, Recipients};
use crate::store::{LocalEvent, Store};

/// The longest wait for the muxer to write a clip's last fragment.
const CLIP_FINISH_TIMEOUT: Duration = Duration::from_secs(20);
/// Width of thumbnails, pixels.
pub const THUMBNAIL_WIDTH: u32 = 320;

/// What finishing needs of the edge.
pub struct FinishContext {
    /// The data directory.
    pub data: PathBuf,
    /// Where working files' keys are (memory-backed).
    pub key_dir: PathBuf,
    /// The install package (tenant).
    pub info: PackageInfo,
    /// Who each camera's clips are sealed to (the owner and the key slots).
    pub slots: KeySlots,
    /// Keep plain copies beside the sealed objects (`sealed_at_rest = false`).
    pub keep_plain: bool,
    /// The edge's key (signs manifests).
    pub key: ed25519_dalek::SigningKey,
    /// The edge's peer id.
    pub edge_id: String,
    /// Which events are sealed for the archive.
    pub archive: ArchiveConfig,
    /// The cameras' own archive policies when this context was made (for events recorded
    /// without their camera's settings at hand: recovered, imported).
    pub camera_archive: std::collections::BTreeMap<String, CameraArchive>,
    /// Wall time of the rows written.
    pub clock: SharedClock,
    /// Woken when an event's record is queued for the vm (the agent sends it at once).
    pub events_queued: Arc<tokio::sync::Notify>,
    /// Events being recorded now (the LAN API lists them and answers 409 for their clips).
    pub live: LiveEvents,
}

/// The events being recorded now, by event id, each with its latest open record: a camera
/// adds one when it opens and the finisher removes it once its rows are written (or it
/// failed).
pub type LiveEvents = Arc<std::sync::Mutex<std::collections::BTreeMap<String, EventRecord>>>;

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
    /// When the edge confirmed the object and opened it, Unix ms.
    pub confirmed_at_ms: u64,
    /// The revision its closed record carries (above every record sent while it was open).
    pub revision: u32,
    /// Named zones its objects were in.
    pub zones: Vec<String>,
    /// The second look at its object, if one was taken (still pending if it is not done).
    pub look: Option<Look>,
}

/// Finishes `event` on a thread of its own (errors are logged: the working file is then left
/// for recovery at the next start).
pub fn spawn(
    ctx: Arc<FinishContext>,
    cam: CameraSettings,
    event: ClosedEvent,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("finish-{}", cam.id))
        .spawn(move || {
            let id = event.event_id.clone();
            if let Err(e) = finish(&ctx, &cam, event) {
                tracing::error!(camera = %cam.id, error = %format!("{e:#}"), "event not saved");
            }
            if let Ok(mut live) = ctx.live.lock() {
                live.remove(&id);
            }
        })
}

/// What [`record`] seals and records for one event.
pub struct Finished<'a> {
    /// The record (CIDs are filled in by sealing).
    pub record: EventRecord,
    /// The box track, JSON.
    pub track_json: String,
    /// The clip's plaintext, if there is a clip.
    pub clip: Option<&'a mut dyn Read>,
    /// The snapshot and thumbnail JPEGs.
    pub images: Option<(Vec<u8>, Vec<u8>)>,
    /// The working file, removed once the rows are written.
    pub work: Option<WorkPaths>,
    /// The camera's own archive policy (else the context's for the camera, else
    /// `[archive]`'s).
    pub archive: Option<CameraArchive>,
}

/// Ends the clip, seals it with the snapshot and thumbnail, records the event.
pub fn finish(ctx: &FinishContext, cam: &CameraSettings, event: ClosedEvent) -> anyhow::Result<()> {
    let ClosedEvent {
        event_id,
        writer,
        best,
        track_json,
        started_at_ms,
        ended_at_ms,
        confirmed_at_ms,
        revision,
        zones,
        look,
    } = event;
    let frames = writer.frames;
    let work = writer
        .finish(CLIP_FINISH_TIMEOUT)
        .context("clip not finished")?;
    let (category, score) = match &best {
        Some(b) => (labels::category(b.class), b.score),
        None => (Category::Person, 0.0),
    };
    let images = match &best {
        Some(b) => Some(images(&b.rgb, cam.detect_width, cam.detect_height)?),
        None => None,
    };
    let record = EventRecord {
        event_id: event_id.clone(),
        tenant_id: ctx.info.tenant_id.clone(),
        edge_id: ctx.edge_id.clone(),
        camera_id: cam.id.clone(),
        started_at_ms,
        ended_at_ms: ended_at_ms.max(started_at_ms),
        category,
        score_milli: (score * 1000.0).round() as u16,
        clip_cid: None,
        snapshot_cid: None,
        thumbnail_cid: None,
        truncated: false,
        state: protocols::messages::events::EventState::Closed,
        revision,
        confirmed_at_ms,
        zones,
        verification: look.map(|l| l.current()),
    };
    let mut clip = work.reader().context("cannot read the working file")?;
    let bytes = record_event(
        ctx,
        Finished {
            record,
            track_json,
            clip: Some(&mut clip),
            images,
            work: Some(work.paths.clone()),
            archive: cam.archive.clone(),
        },
    )?;
    anyhow::ensure!(clip.clean_end, "the working file was damaged while sealing");
    tracing::info!(camera = %cam.id, event = %event_id, frames, bytes, "event recorded");
    Ok(())
}

/// Seals an ended event, writes its rows (and its archive row when the policy says so), then
/// removes its working file. The bytes it keeps on disk.
pub fn record_event(ctx: &FinishContext, f: Finished<'_>) -> anyhow::Result<u64> {
    let Finished {
        record,
        track_json,
        clip,
        images,
        work,
        archive: own,
    } = f;
    let (snapshot, thumbnail) = match &images {
        Some((s, t)) => (Some(s.as_slice()), Some(t.as_slice())),
        None => (None, None),
    };
    let to = Recipients::parse(&ctx.slots.recipients_for(&record.camera_id))?;
    let sealed = crate::sealed::seal_event(
        &ctx.data,
        &to,
        &ctx.key,
        record,
        Plain {
            clip,
            snapshot,
            thumbnail,
        },
        ctx.keep_plain,
        ctx.clock.wall_ms(),
    )?;
    let r = &sealed.record;
    let own = own
        .as_ref()
        .or_else(|| ctx.camera_archive.get(&r.camera_id));
    let archive = ctx.archive.admits(
        own,
        &r.camera_id,
        &r.category,
        f32::from(r.score_milli) / 1000.0,
        r.ended_at_ms,
    ) && sealed.path(protocols::manifest::ObjectKind::Clip).is_some();
    let mut store = Store::open(&ctx.data.join(crate::paths::DB))?;
    use protocols::manifest::ObjectKind;
    store.insert_event(
        &LocalEvent {
            record: sealed.record.clone(),
            track_json,
            clip_path: sealed.path(ObjectKind::Clip).map(str::to_owned),
            snapshot_path: sealed.path(ObjectKind::Snapshot).map(str::to_owned),
            thumbnail_path: sealed.path(ObjectKind::Thumbnail).map(str::to_owned),
            objects_dir: Some(sealed.dir.clone()),
            manifest_json: Some(sealed.manifest_json.clone()),
            bytes: sealed.bytes,
        },
        archive,
        ctx.clock.wall_ms(),
    )?;
    if let Some(w) = work {
        w.remove();
    }
    ctx.events_queued.notify_one();
    if archive {
        tracing::info!(event = %sealed.record.event_id, "event queued for the archive");
    }
    Ok(sealed.bytes)
}

/// The snapshot (full detection frame, quality 85) and thumbnail ([`THUMBNAIL_WIDTH`] wide,
/// quality 75) of an RGB frame, as JPEG bytes in memory: they are sealed before they touch
/// the disk.
pub fn images(rgb: &[u8], width: u32, height: u32) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let snapshot = snapshot_jpeg(rgb, width, height)?;
    let img = image::RgbImage::from_raw(width, height, rgb.to_vec()).context("a frame")?;
    Ok((snapshot, thumbnail(&img)?))
}

/// A fresh snapshot of an RGB frame (the owner draws zones on it): JPEG, quality 85.
pub fn snapshot_jpeg(rgb: &[u8], width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        rgb.len() == width as usize * height as usize * 3 && width > 0 && height > 0,
        "a {width}x{height} frame of {} bytes",
        rgb.len()
    );
    let img = image::RgbImage::from_raw(width, height, rgb.to_vec()).context("a frame")?;
    jpeg(&img, 85)
}

/// The thumbnail of a picture file's bytes (JPEG or PNG), as [`images`] makes it: for events
/// imported with a snapshot.
pub fn thumbnail_of(picture: &[u8]) -> anyhow::Result<Vec<u8>> {
    let img = image::load_from_memory(picture)
        .context("not a JPEG or PNG picture")?
        .to_rgb8();
    thumbnail(&img)
}

/// [`THUMBNAIL_WIDTH`] wide (never enlarged), quality 75.
fn thumbnail(img: &image::RgbImage) -> anyhow::Result<Vec<u8>> {
    let (width, height) = img.dimensions();
    let tw = THUMBNAIL_WIDTH.min(width);
    let th = ((u64::from(height) * u64::from(tw)) / u64::from(width)).max(1) as u32;
    jpeg(&image::imageops::thumbnail(img, tw, th), 75)
}

fn jpeg(img: &image::RgbImage, quality: u8) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn snapshots_are_the_frame_and_thumbnails_320_wide() {
        let (w, h) = (640u32, 360u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let (snap, thumb) = super::images(&rgb, w, h).unwrap();
        let s = image::load_from_memory(&snap).unwrap();
        assert_eq!((s.width(), s.height()), (640, 360));
        let t = image::load_from_memory(&thumb).unwrap();
        assert_eq!((t.width(), t.height()), (320, 180));
        assert!(thumb.len() < snap.len());
        assert!(super::images(&rgb[..10], w, h).is_err(), "a short frame");
        // A picture file (an imported event's snapshot) gives the same thumbnail size.
        let t = image::load_from_memory(&super::thumbnail_of(&snap).unwrap()).unwrap();
        assert_eq!((t.width(), t.height()), (320, 180));
        assert!(super::thumbnail_of(b"not a picture").is_err());
    }
}
