//! One camera's thread: runs its pipeline, hands each detection frame to the frame analysis
//! ([`super::analysis`]), writes the open event's clip from the pre-roll ring, and hands each
//! closed event to clip finishing ([`super::finish`]) on a thread of its own. It also keeps
//! the camera's status (state, fps, last error) on the shared board.
//!
//! A pipeline that fails or goes quiet for `watchdog_secs` is rebuilt with backoff (1 s to
//! 30 s, [`reconnect_backoff`]); an open event is closed first, so its clip is complete and
//! playable. Its stop signal (a child of the video side's) sends end-of-stream and closes the
//! open event the same way. Every wait goes through the clock and ends on the stop signal.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use guardian_node::backoff::Backoff;
use guardian_node::clock::SharedClock;
use guardian_node::shutdown::Shutdown;
use protocols::messages::telemetry::{CameraState, CameraStatus};
use rand::Rng;

use super::analysis::{Analysis, Best, Closed, Detect, Step};
use super::finish::{self, ClosedEvent, FinishContext};
use super::gop_ring::GopRing;
use super::pipeline::{CameraPipeline, EncodedShared, PipelineError, RgbFrame};
use super::recorder::ClipWriter;
use super::second_look::{Look, Verifier};
use super::workfile::{self, WorkMeta};
use crate::config::CameraSettings;
use crate::discover::onvif::OnvifError;
use protocols::messages::events::{EventRecord, EventState};

pub use super::recorder::CLIPS_DIR;

const S: u64 = 1_000_000_000;
/// The first wait before a failed pipeline is rebuilt.
pub const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// The longest such wait.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// The shortest such wait, whatever the jitter draws.
pub const RECONNECT_MIN: Duration = Duration::from_millis(500);
/// How long a stopping camera waits for its pipeline's end-of-stream.
const PIPELINE_STOP_MS: u64 = 3_000;
/// How long [`CameraHandle::stop`] waits for the thread (it finishes its open clip first).
pub const STOP_BOUND: Duration = Duration::from_secs(25);
/// How often fps and the state are published while streaming.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// How long one wait for a detection frame lasts (the loop's pace when the camera is silent).
const FRAME_WAIT_MS: u64 = 200;
/// Bytes of encoded video the pre-roll ring holds at most.
const RING_BYTES: usize = 96 * 1024 * 1024;

/// What the status says of the stream besides its state.
#[derive(Debug, Clone, Copy, Default)]
struct Live {
    fps_milli: u32,
    /// The detector's time per look, smoothed (ms).
    detect_ms: u32,
    width: u32,
    height: u32,
    bitrate_kbps: u32,
    last_frame_ms: u64,
}

/// Every camera's status, shared with telemetry and `camera list`.
pub type StatusBoard = Arc<Mutex<BTreeMap<String, CameraStatus>>>;

/// A camera's latest decoded detection frame (for a fresh snapshot).
#[derive(Clone)]
pub struct LatestFrame {
    /// Packed RGB, `width × height × 3`.
    pub rgb: Arc<Vec<u8>>,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// When it was decoded, Unix ms.
    pub at_ms: u64,
}

/// Every running camera's latest frame.
pub type FrameBoard = Arc<Mutex<BTreeMap<String, LatestFrame>>>;

/// What all cameras share.
pub struct CameraContext {
    /// What finishing a clip needs (data directory, package, key, archive policy).
    pub finish: Arc<FinishContext>,
    /// The detector, if it loaded.
    pub detector: Option<Arc<dyn Detect>>,
    /// Why not, if it did not.
    pub detector_error: Option<String>,
    /// The second look's model, where it is present (cameras with `verify` use it).
    pub verifier: Option<Arc<Verifier>>,
    /// Statuses.
    pub status: StatusBoard,
    /// Latest frames.
    pub frames: FrameBoard,
    /// Wall and monotonic time, waits.
    pub clock: SharedClock,
}

/// The reconnect backoff of a camera: 1 s doubling to 30 s, with full jitter.
pub fn reconnect_backoff() -> Backoff {
    Backoff::new(RECONNECT_FIRST, RECONNECT_MAX)
}

/// The next wait before a pipeline is rebuilt (never under [`RECONNECT_MIN`]).
pub fn reconnect_delay(backoff: &mut Backoff, rng: &mut impl Rng) -> Duration {
    backoff.next_delay(rng).max(RECONNECT_MIN)
}

/// Waits for a thread that drops `done`'s sender when it ends, at most `bound`, then joins it;
/// false when it did not end in time (it is left to finish alone).
pub(crate) fn join_within(
    thread: JoinHandle<()>,
    done: &Receiver<()>,
    bound: Duration,
    what: &str,
) -> bool {
    match done.recv_timeout(bound) {
        Err(RecvTimeoutError::Timeout) => {
            tracing::warn!(
                thread = what,
                secs = bound.as_secs(),
                "did not stop in time"
            );
            false
        }
        _ => {
            let _ = thread.join();
            true
        }
    }
}

/// A running camera.
pub struct CameraHandle {
    stop: Shutdown,
    thread: Option<(JoinHandle<()>, Receiver<()>)>,
    /// Its settings.
    pub settings: CameraSettings,
}

impl CameraHandle {
    /// Starts the camera's thread; it stops when `stop` (a child of the video side's signal)
    /// is triggered.
    pub fn spawn(
        settings: CameraSettings,
        ctx: Arc<CameraContext>,
        stop: Shutdown,
    ) -> std::io::Result<Self> {
        let (s, st) = (settings.clone(), stop.clone());
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("camera-{}", settings.id))
            .spawn(move || {
                let _done = done_tx;
                Camera::new(s, ctx, st).run();
            })?;
        Ok(CameraHandle {
            stop,
            thread: Some((thread, done)),
            settings,
        })
    }

    /// Asks the thread to stop (returns at once).
    pub fn request_stop(&self) {
        self.stop.trigger();
    }

    /// Stops it and waits (at most [`STOP_BOUND`]): the open clip is finished.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.request_stop();
        if let Some((t, done)) = self.thread.take() {
            join_within(
                t,
                &done,
                STOP_BOUND,
                &format!("camera-{}", self.settings.id),
            );
        }
    }
}

impl Drop for CameraHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// An event being recorded.
struct Recording {
    event_id: String,
    writer: ClipWriter,
    next_seq: u64,
    first_seen_ns: u64,
    /// When the event opened, Unix ms.
    confirmed_at_ms: u64,
    /// The revision of the last record sent while open.
    revision: u32,
    /// The second look at its object, if one is taken.
    look: Option<Look>,
}

struct Camera {
    cam: CameraSettings,
    ctx: Arc<CameraContext>,
    stop: Shutdown,
    ring: Arc<Mutex<GopRing>>,
    shared: Arc<EncodedShared>,
    finishers: Vec<JoinHandle<()>>,
    analysis: Analysis,
    // Per pipeline run:
    recording: Option<Recording>,
    wall0: Option<(u64, u64)>,
    last_pts: u64,
    live: Live,
}

fn new_ring(cam: &CameraSettings) -> GopRing {
    GopRing::new((cam.pre_roll_secs as u64 + 10) * S, RING_BYTES)
}

impl Camera {
    fn new(cam: CameraSettings, ctx: Arc<CameraContext>, stop: Shutdown) -> Self {
        Camera {
            ring: Arc::new(Mutex::new(new_ring(&cam))),
            shared: Arc::new(EncodedShared::default()),
            analysis: Analysis::new(&cam, ctx.detector_error.clone()),
            cam,
            ctx,
            stop,
            finishers: Vec::new(),
            recording: None,
            wall0: None,
            last_pts: 0,
            live: Live::default(),
        }
    }

    fn set_status(&self, state: CameraState, live: Live, error: Option<String>) {
        let error = error.or_else(|| {
            self.analysis
                .detector_error()
                .map(|e| format!("detector unavailable: {e}"))
        });
        if let Ok(mut board) = self.ctx.status.lock() {
            board.insert(
                self.cam.id.clone(),
                CameraStatus {
                    camera_id: self.cam.id.clone(),
                    state,
                    fps_milli: live.fps_milli,
                    last_error: error,
                    width: live.width,
                    height: live.height,
                    bitrate_kbps: live.bitrate_kbps,
                    last_frame_ms: live.last_frame_ms,
                    detect_ms: live.detect_ms,
                },
            );
        }
    }

    fn run(mut self) {
        if !self.cam.enabled {
            self.set_status(CameraState::Disabled, Live::default(), None);
            return;
        }
        let mut backoff = reconnect_backoff();
        let mut rng = rand::thread_rng();
        while !self.stop.is_triggered() {
            self.set_status(CameraState::Connecting, self.live, None);
            let outcome = match self.source().and_then(|source| {
                CameraPipeline::start(&source, self.ring.clone(), self.shared.clone())
            }) {
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
                PipelineError::Build(_) | PipelineError::Unauthorized(_) => CameraState::Failed,
                PipelineError::Source(_) => CameraState::Failed,
                PipelineError::Stream(_) => CameraState::Stalled,
            };
            tracing::warn!(camera = %self.cam.id, error = %e, "camera pipeline stopped; retrying");
            self.live.fps_milli = 0;
            self.live.bitrate_kbps = 0;
            self.set_status(state, self.live, Some(e.to_string()));
            let wait = reconnect_delay(&mut backoff, &mut rng);
            if self.ctx.clock.sleep_blocking(wait, &self.stop) {
                break;
            }
        }
        for f in self.finishers.drain(..) {
            let _ = f.join();
        }
        if let Ok(mut board) = self.ctx.status.lock() {
            board.remove(&self.cam.id);
        }
        if let Ok(mut frames) = self.ctx.frames.lock() {
            frames.remove(&self.cam.id);
        }
    }

    /// The settings the pipeline runs: this camera's, with an ONVIF camera's stream URLs
    /// asked of it now (with its user name and password put in).
    fn source(&self) -> Result<CameraSettings, PipelineError> {
        let Some(o) = &self.cam.onvif else {
            return Ok(self.cam.clone());
        };
        let login = crate::discover::onvif::Login {
            username: &o.username,
            password: &o.password,
        };
        let (main, sub) = crate::discover::onvif::resolve(
            &o.xaddr,
            login,
            &o.profile,
            &o.substream_profile,
            self.ctx.clock.wall_ms(),
        )
        .map_err(|e| match e {
            OnvifError::Unauthorized => PipelineError::Unauthorized(e.to_string()),
            OnvifError::Unreachable(_) => PipelineError::Stream(e.to_string()),
            OnvifError::Camera(_) => PipelineError::Source(e.to_string()),
        })?;
        let with = |u: &str| {
            let pw = (!o.password.is_empty()).then_some(o.password.as_str());
            protocols::credential::with_userinfo(u, &o.username, pw).to_string()
        };
        let mut cam = self.cam.clone();
        cam.url = with(&main);
        cam.substream = sub.as_deref().map(with);
        cam.onvif = None;
        Ok(cam)
    }

    /// Runs one pipeline until stop (Ok) or failure (Err).
    fn run_pipeline(
        &mut self,
        p: CameraPipeline,
        backoff: &mut Backoff,
    ) -> Result<(), PipelineError> {
        let clock = self.ctx.clock.clone();
        let watchdog = Duration::from_secs(self.cam.watchdog_secs as u64);
        let mut last_progress = clock.monotonic();
        let mut last_buffers = 0;
        let mut window = (clock.monotonic(), 0u64, 0u64);
        let mut streaming = false;
        loop {
            if self.stop.is_triggered() {
                self.close_event();
                p.stop(PIPELINE_STOP_MS);
                return Ok(());
            }
            if let Some(e) = p.poll_bus() {
                self.close_event();
                return Err(e);
            }
            if let Some(frame) = p.next_frame(FRAME_WAIT_MS) {
                self.on_frame(frame);
            }
            let now = clock.monotonic();
            let buffers = p.shared.buffers.load(Ordering::Relaxed);
            if buffers != last_buffers {
                last_buffers = buffers;
                last_progress = now;
                self.live.last_frame_ms = clock.wall_ms();
                if !streaming {
                    streaming = true;
                    backoff.reset();
                    tracing::info!(camera = %self.cam.id, "camera streaming");
                }
            }
            if now.saturating_duration_since(last_progress) > watchdog {
                self.close_event();
                return Err(PipelineError::Stream(format!(
                    "no video for {} s",
                    self.cam.watchdog_secs
                )));
            }
            let elapsed = now.saturating_duration_since(window.0);
            if elapsed >= STATUS_EVERY {
                let bytes = p.shared.bytes.load(Ordering::Relaxed);
                let secs = elapsed.as_secs_f64();
                self.live.fps_milli = ((buffers - window.1) as f64 * 1000.0 / secs) as u32;
                self.live.bitrate_kbps = ((bytes - window.2) as f64 * 8.0 / 1000.0 / secs) as u32;
                window = (now, buffers, bytes);
                if let Some((w, h)) = p.shared.size() {
                    (self.live.width, self.live.height) = (w, h);
                }
                let state = if streaming {
                    CameraState::Streaming
                } else {
                    CameraState::Connecting
                };
                self.set_status(state, self.live, None);
            }
        }
    }

    /// Forgets per-stream state after a pipeline ends (timestamps restart with the next).
    fn reset(&mut self) {
        self.close_event();
        *self.ring.lock().expect("ring") = new_ring(&self.cam);
        self.analysis.reset();
        self.wall0 = None;
        if let Ok(mut c) = self.shared.caps.lock() {
            *c = None;
        }
    }

    /// Wall time (Unix ms) of stream time `pts_ns`, from the wall time of the stream's first
    /// frame.
    fn wall_ms(&self, pts_ns: u64) -> u64 {
        match self.wall0 {
            Some((wall, pts0)) => {
                (wall as i64 + (pts_ns as i64 - pts0 as i64) / 1_000_000).max(0) as u64
            }
            None => self.ctx.clock.wall_ms(),
        }
    }

    fn on_frame(&mut self, frame: RgbFrame) {
        let t = frame.pts_ns;
        self.last_pts = t;
        if self.wall0.is_none() {
            self.wall0 = Some((self.ctx.clock.wall_ms(), t));
        }
        let rgb = Arc::new(frame.rgb);
        if let Ok(mut frames) = self.ctx.frames.lock() {
            frames.insert(
                self.cam.id.clone(),
                LatestFrame {
                    rgb: rgb.clone(),
                    width: self.cam.detect_width,
                    height: self.cam.detect_height,
                    at_ms: self.ctx.clock.wall_ms(),
                },
            );
        }
        let detector = self.ctx.detector.as_deref();
        let started = std::time::Instant::now();
        let step = self.analysis.on_frame(t, &rgb, detector);
        if self.analysis.looked() {
            // Smoothed over about ten looks: what the System screen plots.
            let ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
            let prev = self.live.detect_ms;
            self.live.detect_ms = if prev == 0 { ms } else { (prev * 9 + ms) / 10 };
        }
        match step {
            Step::Skipped => return,
            Step::Nothing => {}
            Step::Opened {
                first_seen_ns,
                clip_from_ns,
            } => self.open_event(first_seen_ns, clip_from_ns),
            Step::Closed(closed) => {
                self.write_until(closed.clip_until_ns);
                self.finish_event(closed);
            }
        }
        if self.recording.is_some() {
            self.write_until(t);
        }
    }

    fn open_event(&mut self, first_seen_ns: u64, clip_from_ns: u64) {
        let event_id = format!(
            "ev-{:x}-{:08x}",
            self.wall_ms(first_seen_ns),
            rand::thread_rng().r#gen::<u32>()
        );
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
        let (class, score) = self.analysis.best_so_far().unwrap_or((0, 0.0));
        let meta = WorkMeta {
            event_id: event_id.clone(),
            camera_id: self.cam.id.clone(),
            started_at_ms: self.wall_ms(first_seen_ns),
            category: crate::detect::labels::category(class),
            score_milli: (score * 1000.0).round() as u16,
        };
        let fin = &self.ctx.finish;
        let work = match workfile::begin(&fin.data, &fin.key_dir, &meta) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(camera = %self.cam.id, error = %e, "cannot start a working file");
                return;
            }
        };
        let paths = work.paths.clone();
        match ClipWriter::start(work, &caps) {
            Ok(writer) => {
                self.ring.lock().expect("ring").pin(seq);
                tracing::info!(camera = %self.cam.id, event = %event_id, "event opened");
                let confirmed_at_ms = self.ctx.clock.wall_ms();
                // The second look, where this camera wants one and the model is present.
                let second = match (&self.ctx.verifier, self.analysis.best()) {
                    (Some(v), Some(best)) if self.cam.verify => {
                        Some((v.clone(), best.clone(), Look::pending(v)))
                    }
                    _ => None,
                };
                let look = second.as_ref().map(|(_, _, l)| l.clone());
                let record = EventRecord {
                    event_id: event_id.clone(),
                    tenant_id: fin.info.tenant_id.clone(),
                    edge_id: fin.edge_id.clone(),
                    camera_id: self.cam.id.clone(),
                    started_at_ms: self.wall_ms(first_seen_ns),
                    ended_at_ms: self.wall_ms(first_seen_ns).max(confirmed_at_ms),
                    category: crate::detect::labels::category(class),
                    score_milli: (score * 1000.0).round() as u16,
                    state: EventState::Open,
                    revision: 1,
                    confirmed_at_ms,
                    zones: self.analysis.zones_so_far(),
                    verification: look.as_ref().map(Look::current),
                    ..Default::default()
                };
                self.announce(record, second);
                self.recording = Some(Recording {
                    event_id,
                    writer,
                    next_seq: seq,
                    first_seen_ns,
                    confirmed_at_ms,
                    // Revision 2 is the second look's verdict.
                    revision: if look.is_some() { 2 } else { 1 },
                    look,
                });
            }
            Err(e) => {
                paths.remove();
                tracing::error!(camera = %self.cam.id, error = %e, "cannot start a clip");
            }
        }
    }

    /// Queues an open event's record for the vm and wakes the event sender, which sends it at
    /// once; then, with `second`, takes the second look and queues the verdict as revision 2.
    /// On a thread of its own: the camera thread goes on with its frames.
    fn announce(&self, record: EventRecord, second: Option<(Arc<Verifier>, Best, Look)>) {
        let fin = self.ctx.finish.clone();
        if let Ok(mut live) = fin.live.lock() {
            live.insert(record.event_id.clone(), record.clone());
        }
        let (width, height) = (self.cam.detect_width, self.cam.detect_height);
        let spawned = std::thread::Builder::new()
            .name(format!("announce-{}", self.cam.id))
            .spawn(move || {
                let queue = |record: &EventRecord| {
                    let queued = crate::store::Store::open(&fin.data.join(crate::paths::DB))
                        .and_then(|s| s.enqueue_event(record, fin.clock.wall_ms()));
                    match queued {
                        Ok(()) => fin.events_queued.notify_one(),
                        Err(e) => tracing::warn!(event = %record.event_id, error = %e, "cannot queue the open event for the vm; it goes when it closes"),
                    }
                };
                queue(&record);
                let Some((verifier, best, look)) = second else {
                    return;
                };
                let said = verifier.look(&best, width, height);
                tracing::info!(event = %record.event_id, model = %said.model, verdict = ?said.verdict, score = said.score_milli, "second look");
                look.set(said.clone());
                let update = EventRecord {
                    revision: 2,
                    verification: Some(said),
                    ..record
                };
                if let Ok(mut live) = fin.live.lock()
                    && let Some(held) = live.get_mut(&update.event_id)
                {
                    *held = update.clone();
                }
                queue(&update);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread to announce an event");
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
        if let Some(closed) = self.analysis.close() {
            let until = self.last_pts.max(closed.last_seen_ns);
            self.write_until(until);
            self.finish_event(closed);
        }
    }

    /// Hands the closed event to a finisher thread.
    fn finish_event(&mut self, closed: Closed) {
        let Some(rec) = self.recording.take() else {
            return;
        };
        self.ring.lock().expect("ring").unpin(rec.next_seq);
        let track_json = serde_json::to_string(
            &closed
                .evidence
                .track
                .iter()
                .map(|(t, b)| (self.wall_ms(*t), b.x0, b.y0, b.x1, b.y1))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".into());
        let event = ClosedEvent {
            event_id: rec.event_id,
            writer: rec.writer,
            best: closed.evidence.best,
            track_json,
            started_at_ms: self.wall_ms(rec.first_seen_ns),
            ended_at_ms: self.wall_ms(closed.last_seen_ns),
            confirmed_at_ms: rec.confirmed_at_ms,
            revision: rec.revision + 1,
            zones: closed.evidence.zones.iter().cloned().collect(),
            look: rec.look,
        };
        self.finishers.retain(|f| !f.is_finished());
        match finish::spawn(self.ctx.finish.clone(), self.cam.clone(), event) {
            Ok(h) => self.finishers.push(h),
            Err(e) => tracing::error!(error = %e, "cannot start a finisher thread"),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;
    use std::time::Instant;

    use guardian_node::clock::ManualClock;
    use protocols::package::PackageInfo;
    use rand::SeedableRng;

    use super::*;
    use crate::config::ArchiveConfig;

    /// A package for tests that neither enroll nor seal for real.
    pub(in crate::video) fn package_info() -> PackageInfo {
        crate::key_slots::tests::package_info()
    }

    fn context(clock: SharedClock, data: &Path) -> Arc<CameraContext> {
        Arc::new(CameraContext {
            finish: Arc::new(FinishContext {
                data: data.to_path_buf(),
                key_dir: data.join("keys"),
                slots: crate::key_slots::KeySlots::fixed(vec![
                    age::x25519::Identity::generate().to_public().to_string(),
                ]),
                keep_plain: false,
                info: package_info(),
                key: ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]),
                edge_id: "edge".into(),
                archive: ArchiveConfig::default(),
                camera_archive: Default::default(),
                clock: clock.clone(),
                events_queued: Arc::new(tokio::sync::Notify::new()),
                live: Default::default(),
            }),
            detector: None,
            detector_error: None,
            verifier: None,
            status: Arc::new(Mutex::new(BTreeMap::new())),
            frames: Arc::new(Mutex::new(BTreeMap::new())),
            clock,
        })
    }

    /// Polls the status board until `f` holds (at most 10 s of real time).
    fn wait_board(
        ctx: &CameraContext,
        what: &str,
        f: impl Fn(&BTreeMap<String, CameraStatus>) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f(&ctx.status.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A camera whose URL is unusable fails, then waits for its retry on the clock: a manual
    /// clock that never moves keeps it waiting, and the process's stop signal (the parent of
    /// its own) ends the wait and the thread at once, taking its status off the board.
    #[test]
    fn a_failed_camera_waits_on_the_clock_and_stops_with_its_parent_signal() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        let ctx = context(clock.shared(), dir.path());
        let cam = CameraSettings {
            id: "gone".into(),
            url: "http://not-a-camera/".into(),
            ..Default::default()
        };
        let root = Shutdown::new();
        let handle = CameraHandle::spawn(cam, ctx.clone(), root.child()).unwrap();
        wait_board(&ctx, "the camera to fail", |b| {
            b.get("gone").is_some_and(|s| {
                s.state == CameraState::Failed
                    && s.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("unsupported camera url"))
            })
        });
        let started = Instant::now();
        root.trigger();
        handle.stop();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            clock.elapsed(),
            Duration::ZERO,
            "no time passed on the clock"
        );
        assert!(ctx.status.lock().unwrap().is_empty(), "its status is gone");
    }

    #[test]
    fn a_disabled_camera_says_so_and_its_thread_ends() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(ManualClock::new(0).shared(), dir.path());
        let cam = CameraSettings {
            id: "off".into(),
            url: "test://ball".into(),
            enabled: false,
            ..Default::default()
        };
        let handle = CameraHandle::spawn(cam, ctx.clone(), Shutdown::new()).unwrap();
        wait_board(&ctx, "the camera disabled", |b| {
            b.get("off")
                .is_some_and(|s| s.state == CameraState::Disabled)
        });
        let (thread, done) = {
            let mut h = handle;
            h.thread.take().unwrap()
        };
        assert!(
            join_within(thread, &done, Duration::from_secs(10), "off"),
            "ends without being stopped"
        );
    }

    /// Waits before a pipeline is rebuilt: the ceiling doubles from 1 s to 30 s, each wait is
    /// drawn below it and never under 0.5 s; streaming again starts over at 1 s.
    #[test]
    fn reconnect_waits_double_from_one_to_thirty_seconds() {
        let mut b = reconnect_backoff();
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let ceiling = b.ceiling();
            ceilings.push(ceiling.as_secs());
            let d = reconnect_delay(&mut b, &mut rng);
            assert!(
                d >= RECONNECT_MIN && d <= ceiling.max(RECONNECT_MIN),
                "{d:?}"
            );
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 30, 30, 30]);
        // Jitter: the waits at the cap are not all the same.
        let at_cap: std::collections::HashSet<Duration> =
            (0..5).map(|_| reconnect_delay(&mut b, &mut rng)).collect();
        assert!(at_cap.len() > 1, "{at_cap:?}");
        b.reset();
        assert_eq!(b.ceiling(), RECONNECT_FIRST);
    }

    #[test]
    fn a_bounded_join_gives_up_on_a_thread_that_does_not_end() {
        let stop = Shutdown::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            let _done = tx;
            s.wait_blocking(Duration::from_secs(30));
        });
        assert!(!join_within(t, &rx, Duration::from_millis(50), "test"));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            let _done = tx;
            s.wait_blocking(Duration::from_secs(30));
        });
        stop.trigger();
        assert!(join_within(t, &rx, Duration::from_secs(10), "test"));
    }
}
