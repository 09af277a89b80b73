//! Runs the cameras of `edge.toml` and keeps them in line with it: every 2 s the file is read
//! again and cameras added, changed or removed are started, restarted or stopped (a running
//! edge needs no restart after `guardian-edge camera add`). It also publishes camera statuses
//! to the database for `camera list`, and runs local retention.
//!
//! Its waits go through the clock (`clock.sleep_blocking`) and end on its stop signal, a
//! child of the process's; each camera thread gets a child of that, so a camera removed at
//! run time stops alone and [`Video::stop`] (or the process's signal) stops them all, each
//! finishing its open clip, within a bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use guardian_node::clock::SharedClock;
use guardian_node::shutdown::Shutdown;

use super::analysis::Detect;
use super::camera::{CameraContext, CameraHandle, FrameBoard, StatusBoard, join_within};
use super::finish::{FinishContext, LiveEvents};
use super::retention;
use super::second_look::Verifier;
use crate::config::{DetectorConfig, EdgeConfig};
use crate::data_dir::Installed;
use crate::detect::locate;
use crate::detect::runtime::{Detector, DetectorSettings};
use crate::store::{CameraStatusRow, Store};

/// How often `edge.toml` is read again and statuses are written.
pub const TICK: Duration = Duration::from_secs(2);
/// How long [`Video::stop`] waits for the cameras (each finishes its open clip first).
pub const STOP_BOUND: Duration = Duration::from_secs(30);

/// The running video side of the edge.
pub struct Video {
    stop: Shutdown,
    thread: Option<(JoinHandle<()>, Receiver<()>)>,
    /// Camera statuses (for telemetry).
    pub status: StatusBoard,
    /// The cameras' latest frames (for fresh snapshots).
    pub frames: FrameBoard,
    /// Woken when an event's record is queued for the vm.
    pub events_queued: Arc<tokio::sync::Notify>,
    /// The events being recorded now.
    pub live: LiveEvents,
}

impl Video {
    /// Starts the cameras of `installed` in a supervisor thread. Times come from `clock`; the
    /// cameras stop when `shutdown` (the process's signal) or [`Video::stop`] says so.
    pub fn start(
        installed: &Installed,
        clock: SharedClock,
        shutdown: Shutdown,
    ) -> anyhow::Result<Video> {
        let stop = shutdown.child();
        let status: StatusBoard = Arc::new(Mutex::new(BTreeMap::new()));
        let frames: FrameBoard = Arc::new(Mutex::new(BTreeMap::new()));
        let events_queued = Arc::new(tokio::sync::Notify::new());
        let live: LiveEvents = Arc::default();
        let mut sup = Supervisor {
            live: live.clone(),
            frames: frames.clone(),
            events_queued: events_queued.clone(),
            data: installed.data.clone(),
            info: installed.info.clone(),
            slots: installed.key_slots.clone(),
            key: installed.key.clone(),
            edge_id: installed.peer_id(),
            config: installed.config.clone(),
            config_text: String::new(),
            status: status.clone(),
            cameras: HashMap::new(),
            ctx: None,
            clock,
            stop: stop.clone(),
        };
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("video".into())
            .spawn(move || {
                let _done = done_tx;
                sup.run();
            })?;
        Ok(Video {
            stop,
            thread: Some((thread, done)),
            status,
            frames,
            events_queued,
            live,
        })
    }

    /// Stops every camera (finishing open clips) and waits, at most [`STOP_BOUND`].
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.trigger();
        if let Some((t, done)) = self.thread.take() {
            join_within(t, &done, STOP_BOUND, "video");
        }
    }
}

impl Drop for Video {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

struct Supervisor {
    data: PathBuf,
    info: protocols::package::PackageInfo,
    slots: crate::key_slots::KeySlots,
    key: ed25519_dalek::SigningKey,
    edge_id: String,
    config: EdgeConfig,
    config_text: String,
    status: StatusBoard,
    frames: FrameBoard,
    events_queued: Arc<tokio::sync::Notify>,
    live: LiveEvents,
    cameras: HashMap<String, CameraHandle>,
    ctx: Option<Arc<CameraContext>>,
    clock: SharedClock,
    stop: Shutdown,
}

/// Whether a retention sweep is due at `now`: never swept yet, or `every` since the last.
pub fn sweep_due(last: Option<Instant>, now: Instant, every: Duration) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) >= every)
}

/// The detector's settings from the configuration.
pub fn detector_settings(c: &DetectorConfig, data: &Path) -> DetectorSettings {
    DetectorSettings {
        model: locate::locate_model(&c.model, data)
            .path
            .expect("a model path is always given"),
        library: locate::locate_library(&c.openvino_lib).path,
        device: c.device.clone(),
        infer_requests: if c.infer_requests == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
        } else {
            c.infer_requests
        },
        min_score: c.min_score,
        nms_iou: c.nms_iou,
    }
}

/// The second look's model (`detector.verify_model`), started beside the detector `main`
/// with one inference request; `None` when it is off, not found, or the first model itself.
/// A model found that does not load is kept as unavailable (verdicts say so, and rules do
/// not wait for it). It is warmed up for looks of each of `sides` (pixels).
pub fn verifier(
    c: &DetectorConfig,
    main: &DetectorSettings,
    data: &Path,
    sides: &[u32],
) -> Option<Arc<Verifier>> {
    let model = locate::locate_verifier(&c.verify_model, &main.model, data)?;
    let settings = DetectorSettings {
        model: model.clone(),
        infer_requests: 1,
        // Weak answers are kept: the verdict reports the best score it saw.
        min_score: 0.1,
        ..main.clone()
    };
    let name = if locate::MODELS.iter().any(|(n, _)| *n == c.verify_model) {
        c.verify_model.clone()
    } else {
        model
            .file_stem()
            .map_or_else(|| "verifier".into(), |s| s.to_string_lossy().into_owned())
    };
    let detect = match Detector::start(&settings) {
        Ok(d) => {
            // A first inference is slow (OpenVINO finishes compiling): not on the first alarm.
            // The first inference of each input size compiles it (slow): not on the first
            // alarm. A look is a square of the detection frame's shorter side, or the whole
            // frame padded to a square of its longer side.
            for &side in sides {
                let n = side as usize * side as usize * 3;
                if let Err(e) = d.detect(vec![0; n], side, side, Duration::from_secs(30)) {
                    tracing::warn!(error = %e, side, "the second look's model did not warm up");
                }
            }
            tracing::info!(model = %model.display(), "second look ready");
            Ok(Arc::new(d) as Arc<dyn Detect>)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the second look's model did not load; events say it is unavailable");
            Err(e.to_string())
        }
    };
    Some(Arc::new(Verifier {
        model: name,
        min_score: c.verify_min_score,
        detect,
    }))
}

impl Supervisor {
    /// What finishing (and recovery) needs, for `config`. A key folder that cannot be made is
    /// logged; events then fail to open with that reason.
    fn finish_context(&self, config: &EdgeConfig) -> FinishContext {
        let key_dir = super::workfile::key_dir(&config.storage.key_dir).unwrap_or_else(|e| {
            tracing::error!(error = %e, "no memory-backed folder for event keys ([storage] key_dir); events cannot be recorded");
            PathBuf::from(&config.storage.key_dir)
        });
        FinishContext {
            data: self.data.clone(),
            key_dir,
            info: self.info.clone(),
            slots: self.slots.clone(),
            keep_plain: !config.storage.sealed_at_rest,
            key: self.key.clone(),
            edge_id: self.edge_id.clone(),
            archive: config.archive.clone(),
            camera_archive: config
                .cameras
                .iter()
                .filter_map(|c| Some((c.id.clone(), c.archive.clone()?)))
                .collect(),
            clock: self.clock.clone(),
            events_queued: self.events_queued.clone(),
            live: self.live.clone(),
        }
    }

    fn run(&mut self) {
        let config_path = self.data.join(crate::paths::CONFIG);
        let mut last_sweep: Option<Instant> = None;
        let config = self.config.clone();
        // Events a crash left open are sealed before any camera starts.
        match super::recovery::recover(&self.finish_context(&config)) {
            Ok(r) if r.is_empty() => {}
            Ok(r) => tracing::warn!(events = ?r, "sealed the events a stop left open, truncated"),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "recovering working files failed"),
        }
        self.apply(config);
        // Every 2 s: configuration changes, statuses, and retention when due.
        while !self.clock.sleep_blocking(TICK, &self.stop) {
            if let Ok(text) = std::fs::read_to_string(&config_path)
                && text != self.config_text
            {
                match EdgeConfig::load(&config_path) {
                    Ok(c) => {
                        tracing::info!("edge.toml changed; applying");
                        self.config_text = text;
                        self.apply(c);
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "edge.toml is invalid; keeping the running configuration");
                        self.config_text = text;
                    }
                }
            }
            self.publish_statuses();
            let every = Duration::from_secs(self.config.storage.sweep_secs.max(5));
            let now = self.clock.monotonic();
            if sweep_due(last_sweep, now, every) {
                last_sweep = Some(now);
                if let Err(e) = self.sweep() {
                    tracing::warn!(error = %format!("{e:#}"), "retention sweep failed");
                }
            }
        }
        // The cameras' signals are children of `stop`: all are stopping already.
        let cameras: Vec<CameraHandle> = self.cameras.drain().map(|(_, c)| c).collect();
        for c in cameras {
            c.stop();
        }
        self.publish_statuses();
    }

    /// Brings the running cameras in line with `new`.
    fn apply(&mut self, new: EdgeConfig) {
        if self.config_text.is_empty() {
            self.config_text =
                std::fs::read_to_string(self.data.join(crate::paths::CONFIG)).unwrap_or_default();
        }
        let restart_all = self.ctx.is_none()
            || format!("{:?}", new.detector) != format!("{:?}", self.config.detector)
            || format!("{:?}", new.archive) != format!("{:?}", self.config.archive)
            || new.storage.sealed_at_rest != self.config.storage.sealed_at_rest
            || new.storage.key_dir != self.config.storage.key_dir
            // The second look's model is loaded only while a camera wants it.
            || new.cameras.iter().any(|c| c.verify) != self.config.cameras.iter().any(|c| c.verify);
        let wanted: HashMap<&str, _> = new.cameras.iter().map(|c| (c.id.as_str(), c)).collect();
        let stale: Vec<String> = self
            .cameras
            .iter()
            .filter(|(id, h)| {
                restart_all || wanted.get(id.as_str()).is_none_or(|c| **c != h.settings)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let stopping: Vec<CameraHandle> = stale
            .iter()
            .filter_map(|id| self.cameras.remove(id))
            .collect();
        for c in &stopping {
            c.request_stop();
        }
        for c in stopping {
            tracing::info!(camera = %c.settings.id, "camera stopped");
            c.stop();
        }
        if restart_all {
            self.ctx = None;
        }
        if self.ctx.is_none() && !new.cameras.is_empty() {
            let settings = detector_settings(&new.detector, &self.data);
            let (detector, detector_error) = match Detector::start(&settings) {
                Ok(d) => {
                    tracing::info!(model = %settings.model.display(), requests = settings.infer_requests, "detector ready");
                    (Some(Arc::new(d) as Arc<dyn Detect>), None)
                }
                Err(e) => {
                    tracing::error!(error = %e, "detector unavailable; cameras record nothing until it loads");
                    (None, Some(e.to_string()))
                }
            };
            let verifier = if new.cameras.iter().any(|c| c.verify) && detector.is_some() {
                let mut sides: Vec<u32> = new
                    .cameras
                    .iter()
                    .filter(|c| c.verify)
                    .flat_map(|c| [c.detect_width, c.detect_height])
                    .collect();
                sides.sort_unstable();
                sides.dedup();
                verifier(&new.detector, &settings, &self.data, &sides)
            } else {
                None
            };
            self.ctx = Some(Arc::new(CameraContext {
                finish: Arc::new(self.finish_context(&new)),
                detector,
                detector_error,
                verifier,
                status: self.status.clone(),
                frames: self.frames.clone(),
                clock: self.clock.clone(),
            }));
        }
        for cam in &new.cameras {
            if self.cameras.contains_key(&cam.id) {
                continue;
            }
            let Some(ctx) = self.ctx.clone() else { break };
            match CameraHandle::spawn(cam.clone(), ctx, self.stop.child()) {
                Ok(h) => {
                    tracing::info!(camera = %cam.id, url = %redact(&cam.url), "camera started");
                    self.cameras.insert(cam.id.clone(), h);
                }
                Err(e) => tracing::error!(camera = %cam.id, error = %e, "cannot start camera"),
            }
        }
        if let Ok(mut board) = self.status.lock() {
            let ids: HashSet<&str> = new.cameras.iter().map(|c| c.id.as_str()).collect();
            board.retain(|id, _| ids.contains(id.as_str()));
        }
        self.config = new;
    }

    fn publish_statuses(&self) {
        let rows: Vec<CameraStatusRow> = match self.status.lock() {
            Ok(b) => b
                .values()
                .map(|s| CameraStatusRow {
                    camera_id: s.camera_id.clone(),
                    state: serde_json::to_value(s.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    fps_milli: s.fps_milli,
                    last_error: s.last_error.clone(),
                    updated_at_ms: self.clock.wall_ms(),
                })
                .collect(),
            Err(_) => return,
        };
        match Store::open(&self.data.join(crate::paths::DB)) {
            Ok(mut s) => {
                if let Err(e) = s.set_camera_statuses(&rows) {
                    tracing::warn!(error = %e, "cannot write camera statuses");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot open the database"),
        }
    }

    fn sweep(&self) -> anyhow::Result<()> {
        let store = Store::open(&self.data.join(crate::paths::DB))?;
        let (volume, free) = volume_space(&self.data);
        retention::sweep(
            &self.data,
            &store,
            &self.config.storage,
            volume,
            free,
            &*self.clock,
        )?;
        Ok(())
    }
}

/// Total and free bytes of the volume holding `path`.
pub fn volume_space(path: &Path) -> (u64, u64) {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let disks = sysinfo::Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| (d.total_space(), d.available_space()))
        .unwrap_or((0, u64::MAX))
}

/// A URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls until `f` holds (at most 10 s of real time).
    fn wait(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// With a manual clock, the supervisor's periodic work happens only as the clock moves:
    /// status rows carry the clock's wall time, an edited edge.toml is applied on a tick, and
    /// stopping ends the cameras though the clock stands still.
    #[test]
    fn ticks_follow_the_clock_and_stop_ends_the_cameras() {
        use guardian_node::clock::{Clock, ManualClock};

        use crate::config::CameraSettings;

        const W: u64 = 1_000_000;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let off = |id: &str| CameraSettings {
            id: id.into(),
            url: "test://ball".into(),
            enabled: false,
            ..Default::default()
        };
        let mut config = EdgeConfig::default();
        config.detector.model = data.join("missing.xml").to_string_lossy().into_owned();
        config.cameras = vec![off("one")];
        let config_path = data.join(crate::paths::CONFIG);
        config.save(&config_path).unwrap();
        let installed = Installed {
            data: data.clone(),
            config: config.clone(),
            info: super::super::camera::tests::package_info(),
            key: ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]),
            age: age::x25519::Identity::generate(),
            key_slots: crate::key_slots::KeySlots::fixed(vec![
                age::x25519::Identity::generate().to_public().to_string(),
            ]),
        };
        let clock = ManualClock::new(W);
        let video = Video::start(&installed, clock.shared(), Shutdown::new()).unwrap();
        let store = Store::open(&data.join(crate::paths::DB)).unwrap();
        wait("the camera to start", || {
            video.status.lock().unwrap().contains_key("one")
        });
        assert!(
            store.camera_statuses().unwrap().is_empty(),
            "nothing written before the first tick"
        );

        // Ticks: advance until the statuses are written; their time is the clock's.
        let mut row = None;
        wait("a status row", || {
            clock.advance(TICK);
            std::thread::sleep(Duration::from_millis(20));
            row = store.camera_statuses().unwrap().into_iter().next();
            row.is_some()
        });
        let row = row.unwrap();
        assert_eq!(row.camera_id, "one");
        assert_eq!(row.state, "disabled");
        let offset = row.updated_at_ms - W;
        assert!(
            offset > 0
                && offset.is_multiple_of(TICK.as_millis() as u64)
                && row.updated_at_ms <= clock.wall_ms(),
            "a wall time from the manual clock: {}",
            row.updated_at_ms
        );

        // An edited edge.toml is applied on a tick.
        config.cameras.push(off("two"));
        config.save(&config_path).unwrap();
        wait("the new camera", || {
            clock.advance(TICK);
            std::thread::sleep(Duration::from_millis(20));
            video.status.lock().unwrap().contains_key("two")
        });

        let before = clock.elapsed();
        let started = Instant::now();
        video.stop();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(clock.elapsed(), before, "stopped without the clock moving");
    }

    #[test]
    fn the_first_sweep_is_at_once_then_every_interval() {
        let clock = guardian_node::clock::ManualClock::new(0);
        use guardian_node::clock::Clock;
        let every = Duration::from_secs(60);
        let t0 = clock.monotonic();
        assert!(sweep_due(None, t0, every));
        clock.advance(Duration::from_secs(59));
        assert!(!sweep_due(Some(t0), clock.monotonic(), every));
        clock.advance(Duration::from_secs(1));
        assert!(sweep_due(Some(t0), clock.monotonic(), every));
    }

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(
            super::redact("rtsp://admin:hunter2@10.0.0.2/main"),
            "rtsp://admin:***@10.0.0.2/main"
        );
        assert_eq!(
            super::redact("rtsp://10.0.0.2/main"),
            "rtsp://10.0.0.2/main"
        );
    }
}
