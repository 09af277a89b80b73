//! One camera's thread: runs its pipeline, feeds each detection frame through motion gating,
//! the detector and the tracker into the event machine, writes clips from the pre-roll ring,
//! and hands finished events to a finisher thread (snapshot, database, archive).
//!
//! A pipeline that fails or goes quiet for `watchdog_secs` is rebuilt with backoff (1 s to
//! 30 s); an open event is closed first, so its clip is complete and playable. Stopping
//! sends end-of-stream and closes the open event the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use guardian_node::backoff::Backoff;
use protocols::messages::Category;
use protocols::messages::events::EventRecord;
use protocols::messages::telemetry::{CameraState, CameraStatus};
use protocols::package::PackageInfo;
use rand::Rng;

use super::event::{EventMachine, EventParams, EventSignal};
use super::gop_ring::GopRing;
use super::pipeline::{CameraPipeline, EncodedShared, PipelineError, RgbFrame};
use super::recorder::ClipWriter;
use crate::config::{ArchiveConfig, CameraSettings};
use crate::detect::boxes::{BBox, Detection};
use crate::detect::labels;
use crate::detect::motion::{Motion, MotionParams};
use crate::detect::runtime::{Detector, DetectorError};
use crate::detect::tracker::{Tracked, Tracker, TrackerParams};
use crate::store::{LocalEvent, Store};

/// Folder of local clips and snapshots, inside the data directory.
pub const CLIPS_DIR: &str = "clips";
const S: u64 = 1_000_000_000;

/// Every camera's status, shared with telemetry and `camera list`.
pub type StatusBoard = Arc<Mutex<BTreeMap<String, CameraStatus>>>;

/// What all cameras share.
pub struct CameraContext {
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
    /// The detector, if it loaded.
    pub detector: Option<Arc<Detector>>,
    /// Why not, if it did not.
    pub detector_error: Option<String>,
    /// Statuses.
    pub status: StatusBoard,
}

/// A running camera.
pub struct CameraHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Its settings.
    pub settings: CameraSettings,
}

impl CameraHandle {
    /// Starts the camera's thread.
    pub fn spawn(settings: CameraSettings, ctx: Arc<CameraContext>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (settings.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("camera-{}", settings.id))
            .spawn(move || Camera::new(s, ctx, st).run())?;
        Ok(CameraHandle {
            stop,
            thread: Some(thread),
            settings,
        })
    }

    /// Asks the thread to stop (returns at once).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops it and waits: open clips are finished.
    pub fn stop(mut self) {
        self.request_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CameraHandle {
    fn drop(&mut self) {
        self.request_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The best detection of an event so far, with its frame for the snapshot.
struct Best {
    score: f32,
    class: usize,
    rgb: Vec<u8>,
}

/// An event being recorded.
struct Recording {
    event_id: String,
    writer: ClipWriter,
    next_seq: u64,
    first_seen_ns: u64,
}

struct Camera {
    cam: CameraSettings,
    ctx: Arc<CameraContext>,
    stop: Arc<AtomicBool>,
    ring: Arc<Mutex<GopRing>>,
    shared: Arc<EncodedShared>,
    finishers: Vec<JoinHandle<()>>,
    // Per pipeline run:
    motion: Motion,
    tracker: Tracker,
    machine: EventMachine,
    recording: Option<Recording>,
    best: Option<Best>,
    track: Vec<(u64, BBox)>,
    wall0: Option<(u64, u64)>,
    last_pts: u64,
    frames: u64,
    detector_error: Option<String>,
}

impl Camera {
    fn new(cam: CameraSettings, ctx: Arc<CameraContext>, stop: Arc<AtomicBool>) -> Self {
        let keep = (cam.pre_roll_secs as u64 + 10) * S;
        Camera {
            ring: Arc::new(Mutex::new(GopRing::new(keep, 96 * 1024 * 1024))),
            shared: Arc::new(EncodedShared::default()),
            motion: Motion::new(
                cam.detect_width as usize,
                cam.detect_height as usize,
                MotionParams::default(),
            ),
            tracker: Tracker::new(TrackerParams::default()),
            machine: EventMachine::new(event_params(&cam)),
            detector_error: ctx.detector_error.clone(),
            cam,
            ctx,
            stop,
            finishers: Vec::new(),
            recording: None,
            best: None,
            track: Vec::new(),
            wall0: None,
            last_pts: 0,
            frames: 0,
        }
    }

    fn set_status(&self, state: CameraState, fps_milli: u32, error: Option<String>) {
        let error = error.or_else(|| {
            self.detector_error
                .as_ref()
                .map(|e| format!("detector unavailable: {e}"))
        });
        if let Ok(mut board) = self.ctx.status.lock() {
            board.insert(
                self.cam.id.clone(),
                CameraStatus {
                    camera_id: self.cam.id.clone(),
                    state,
                    fps_milli,
                    last_error: error,
                },
            );
        }
    }

    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn run(mut self) {
        if !self.cam.enabled {
            self.set_status(CameraState::Disabled, 0, None);
            return;
        }
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut rng = rand::thread_rng();
        while !self.stop.load(Ordering::SeqCst) {
            self.set_status(CameraState::Connecting, 0, None);
            let outcome =
                match CameraPipeline::start(&self.cam, self.ring.clone(), self.shared.clone()) {
                    Ok(p) => self.run_pipeline(p, &mut backoff),
                    Err(e) => Err(e),
                };
            self.reset();
            if let Ok(mut c) = self.shared.other_codec.lock() {
                *c = None;
            }
            let Err(e) = outcome else { break };
            let state = match e {
                PipelineError::Url(_) | PipelineError::NotH264(_) => CameraState::Failed,
                PipelineError::Build(_) => CameraState::Failed,
                PipelineError::Stream(_) => CameraState::Stalled,
            };
            tracing::warn!(camera = %self.cam.id, error = %e, "camera pipeline stopped; retrying");
            self.set_status(state, 0, Some(e.to_string()));
            let wait = backoff.next_delay(&mut rng).max(Duration::from_millis(500));
            self.sleep(wait);
        }
        for f in self.finishers.drain(..) {
            let _ = f.join();
        }
        if let Ok(mut board) = self.ctx.status.lock() {
            board.remove(&self.cam.id);
        }
    }

    /// Runs one pipeline until stop (Ok) or failure (Err).
    fn run_pipeline(
        &mut self,
        p: CameraPipeline,
        backoff: &mut Backoff,
    ) -> Result<(), PipelineError> {
        let watchdog = Duration::from_secs(self.cam.watchdog_secs as u64);
        let mut last_progress = Instant::now();
        let mut last_buffers = 0;
        let mut window = (Instant::now(), 0u64);
        let mut streaming = false;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                self.close_event();
                p.stop(3_000);
                return Ok(());
            }
            if let Some(e) = p.poll_bus() {
                self.close_event();
                return Err(e);
            }
            if let Some(frame) = p.next_frame(200) {
                self.on_frame(frame);
            }
            let buffers = p.shared.buffers.load(Ordering::Relaxed);
            if buffers != last_buffers {
                last_buffers = buffers;
                last_progress = Instant::now();
                if !streaming {
                    streaming = true;
                    *backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
                    tracing::info!(camera = %self.cam.id, "camera streaming");
                }
            }
            if last_progress.elapsed() > watchdog {
                self.close_event();
                return Err(PipelineError::Stream(format!(
                    "no video for {} s",
                    self.cam.watchdog_secs
                )));
            }
            let elapsed = window.0.elapsed();
            if elapsed >= Duration::from_secs(2) {
                let fps_milli =
                    ((buffers - window.1) as f64 * 1000.0 / elapsed.as_secs_f64()) as u32;
                window = (Instant::now(), buffers);
                let state = if streaming {
                    CameraState::Streaming
                } else {
                    CameraState::Connecting
                };
                self.set_status(state, fps_milli, None);
            }
        }
    }

    /// Forgets per-stream state after a pipeline ends (timestamps restart with the next).
    fn reset(&mut self) {
        self.close_event();
        *self.ring.lock().expect("ring") =
            GopRing::new((self.cam.pre_roll_secs as u64 + 10) * S, 96 * 1024 * 1024);
        self.motion = Motion::new(
            self.cam.detect_width as usize,
            self.cam.detect_height as usize,
            MotionParams::default(),
        );
        self.tracker = Tracker::new(TrackerParams::default());
        self.machine = EventMachine::new(event_params(&self.cam));
        self.wall0 = None;
        if let Ok(mut c) = self.shared.caps.lock() {
            *c = None;
        }
    }

    fn wall_ms(&self, pts_ns: u64) -> u64 {
        match self.wall0 {
            Some((wall, pts0)) => {
                (wall as i64 + (pts_ns as i64 - pts0 as i64) / 1_000_000).max(0) as u64
            }
            None => crate::now_ms(),
        }
    }

    fn on_frame(&mut self, frame: RgbFrame) {
        let t = frame.pts_ns;
        self.frames += 1;
        self.last_pts = t;
        if self.wall0.is_none() {
            self.wall0 = Some((crate::now_ms(), t));
        }
        let (w, h) = (self.cam.detect_width, self.cam.detect_height);
        if frame.rgb.len() != (w * h * 3) as usize {
            tracing::warn!(camera = %self.cam.id, len = frame.rgb.len(), "unexpected frame size");
            return;
        }
        let motion = self.motion.update(&frame.rgb, w as usize * 3);
        let active = self.tracker.has_active() || self.machine.is_open();
        let mut dets: Vec<Detection> = Vec::new();
        if let Some(detector) = &self.ctx.detector
            && (motion.region.is_some() || active)
        {
            // With objects being followed, look at the whole frame; else only where it moved.
            let region = if active { None } else { motion.region };
            match detector.detect_region(&frame.rgb, w, h, region, Duration::from_secs(5)) {
                Ok(d) => {
                    dets = d;
                    self.detector_error = None;
                }
                Err(DetectorError::Busy) => {
                    tracing::debug!(camera = %self.cam.id, "detector busy, frame skipped");
                    return;
                }
                Err(e) => {
                    tracing::warn!(camera = %self.cam.id, error = %e, "detection failed");
                    self.detector_error = Some(e.to_string());
                }
            }
        }
        let cam = &self.cam;
        let dets: Vec<Detection> = dets
            .into_iter()
            .filter(|d| {
                let (fx, fy) = d.bbox.foot();
                d.score >= cam.min_score
                    && cam.categories.contains(&labels::category(d.class))
                    && cam.counts_at(fx, fy)
            })
            .collect();
        let tracked = self.tracker.update(t, dets);
        let qualifying: Vec<Tracked> = tracked.into_iter().filter(|t| !t.stationary).collect();
        if let Some(top) = qualifying
            .iter()
            .max_by(|a, b| a.det.score.total_cmp(&b.det.score))
        {
            if self.best.as_ref().is_none_or(|b| top.det.score > b.score) {
                self.best = Some(Best {
                    score: top.det.score,
                    class: top.det.class,
                    rgb: frame.rgb.clone(),
                });
            }
            if self.track.len() < 2_000 {
                self.track.push((t, top.det.bbox));
            }
        }
        match self.machine.on_frame(t, &qualifying) {
            Some(EventSignal::Open {
                first_seen_ns,
                clip_from_ns,
            }) => self.open_event(first_seen_ns, clip_from_ns),
            Some(EventSignal::Close {
                last_seen_ns,
                clip_until_ns,
            }) => {
                self.write_until(clip_until_ns);
                self.finish_event(last_seen_ns);
            }
            None => {}
        }
        if self.recording.is_some() {
            self.write_until(t);
        } else if !self.machine.is_open() && qualifying.is_empty() && !self.tracker.has_active() {
            // Nothing going on: forget candidates from glimpses that opened nothing.
            self.best = None;
            self.track.clear();
        }
    }

    fn open_event(&mut self, first_seen_ns: u64, clip_from_ns: u64) {
        let event_id = format!(
            "ev-{:x}-{:08x}",
            self.wall_ms(first_seen_ns),
            rand::thread_rng().r#gen::<u32>()
        );
        let dir = self.ctx.data.join(CLIPS_DIR).join(&self.cam.id);
        let clip = dir.join(format!("{event_id}.mp4"));
        let caps = self.ring_caps();
        let start = self
            .ring
            .lock()
            .expect("ring")
            .gop_start_before(clip_from_ns);
        let (Some(caps), Some(seq)) = (caps, start) else {
            tracing::warn!(camera = %self.cam.id, "event opened before any video: no clip");
            return;
        };
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::error!(camera = %self.cam.id, error = %e, "cannot create the clips folder");
            return;
        }
        match ClipWriter::start(&clip, &caps) {
            Ok(writer) => {
                self.ring.lock().expect("ring").pin(seq);
                tracing::info!(camera = %self.cam.id, event = %event_id, "event opened");
                self.recording = Some(Recording {
                    event_id,
                    writer,
                    next_seq: seq,
                    first_seen_ns,
                });
            }
            Err(e) => tracing::error!(camera = %self.cam.id, error = %e, "cannot start a clip"),
        }
    }

    fn ring_caps(&self) -> Option<gstreamer::Caps> {
        self.shared.caps.lock().ok()?.clone()
    }

    /// Writes ring frames up to `until_ns` into the open clip.
    fn write_until(&mut self, until_ns: u64) {
        let Some(rec) = self.recording.as_mut() else {
            return;
        };
        let mut ring = self.ring.lock().expect("ring");
        let (next, frames) = match ring.read(rec.next_seq, until_ns) {
            Ok(x) => x,
            Err(first_kept) => {
                tracing::warn!(camera = %self.cam.id, "clip fell behind the ring; frames lost");
                match ring.read(first_kept, until_ns) {
                    Ok(x) => x,
                    Err(_) => return,
                }
            }
        };
        ring.move_pin(rec.next_seq, next);
        drop(ring);
        rec.next_seq = next;
        if let Err(e) = rec.writer.write(&frames) {
            tracing::error!(camera = %self.cam.id, error = %e, "clip write failed");
        }
    }

    /// Closes an open event now (stream ended, stopping).
    fn close_event(&mut self) {
        if let Some(EventSignal::Close { last_seen_ns, .. }) = self.machine.close() {
            let until = self.last_pts.max(last_seen_ns);
            self.write_until(until);
            self.finish_event(last_seen_ns);
        }
    }

    /// Hands the closed event to a finisher thread.
    fn finish_event(&mut self, last_seen_ns: u64) {
        let Some(rec) = self.recording.take() else {
            self.best = None;
            self.track.clear();
            return;
        };
        self.ring.lock().expect("ring").unpin(rec.next_seq);
        let best = self.best.take();
        let track = std::mem::take(&mut self.track);
        let started = self.wall_ms(rec.first_seen_ns);
        let ended = self.wall_ms(last_seen_ns);
        let ctx = self.ctx.clone();
        let cam = self.cam.clone();
        let track_json = serde_json::to_string(
            &track
                .iter()
                .map(|(t, b)| (self.wall_ms(*t), b.x0, b.y0, b.x1, b.y1))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".into());
        self.finishers.retain(|f| !f.is_finished());
        let handle = std::thread::Builder::new()
            .name(format!("finish-{}", cam.id))
            .spawn(move || {
                if let Err(e) = finish(&ctx, &cam, rec, best, track_json, started, ended) {
                    tracing::error!(camera = %cam.id, error = %format!("{e:#}"), "event not saved");
                }
            });
        match handle {
            Ok(h) => self.finishers.push(h),
            Err(e) => tracing::error!(error = %e, "cannot start a finisher thread"),
        }
    }
}

fn event_params(cam: &CameraSettings) -> EventParams {
    EventParams {
        pre_roll_ns: cam.pre_roll_secs as u64 * S,
        post_roll_ns: cam.post_roll_secs as u64 * S,
        min_hits: 2,
        max_len_ns: cam.max_event_secs as u64 * S,
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Ends the clip, writes the snapshot, records the event and seals it for the archive when
/// the policy says so. Write order: files, fsync, folder fsync, then the rows.
fn finish(
    ctx: &CameraContext,
    cam: &CameraSettings,
    rec: Recording,
    best: Option<Best>,
    track_json: String,
    started_at_ms: u64,
    ended_at_ms: u64,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let frames = rec.writer.frames;
    let clip = rec
        .writer
        .finish(Duration::from_secs(20))
        .context("clip not finished")?;
    let dir = clip.parent().expect("clip in a folder").to_path_buf();
    let (category, score) = match &best {
        Some(b) => (labels::category(b.class), b.score),
        None => (Category::Person, 0.0),
    };
    let snapshot = match &best {
        Some(b) => {
            let path = dir.join(format!("{}.jpg", rec.event_id));
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
        event_id: rec.event_id.clone(),
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
        crate::now_ms(),
    )?;
    tracing::info!(
        camera = %cam.id, event = %rec.event_id, category = category.as_str(), score,
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
            crate::now_ms(),
        )?;
        store.mark_archived(&m.event_id)?;
        tracing::info!(event = %m.event_id, "event sealed for the archive");
    }
    Ok(())
}

/// Writes an RGB frame as a JPEG (quality 85), fsynced.
pub fn write_jpeg(path: &Path, rgb: &[u8], width: u32, height: u32) -> anyhow::Result<()> {
    use std::io::Write;
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
