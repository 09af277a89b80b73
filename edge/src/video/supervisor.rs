//! Runs the cameras of `edge.toml` and keeps them in line with it: every 2 s the file is read
//! again and cameras added, changed or removed are started, restarted or stopped (a running
//! edge needs no restart after `guardian-edge camera add`). It also publishes camera statuses
//! to the database for `camera list`, and runs local retention.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::camera::{CLIPS_DIR, CameraContext, CameraHandle, StatusBoard};
use super::retention;
use crate::config::{DetectorConfig, EdgeConfig};
use crate::data_dir::Installed;
use crate::detect::runtime::{self, Detector, DetectorSettings};
use crate::store::{CameraStatusRow, Store};

/// The running video side of the edge.
pub struct Video {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Camera statuses (for telemetry).
    pub status: StatusBoard,
}

impl Video {
    /// Starts the cameras of `installed` in a supervisor thread.
    pub fn start(installed: &Installed) -> std::io::Result<Video> {
        let stop = Arc::new(AtomicBool::new(false));
        let status: StatusBoard = Arc::new(Mutex::new(BTreeMap::new()));
        let mut sup = Supervisor {
            data: installed.data.clone(),
            info: installed.info.clone(),
            key: installed.key.clone(),
            edge_id: installed.peer_id(),
            config: installed.config.clone(),
            config_text: String::new(),
            status: status.clone(),
            cameras: HashMap::new(),
            ctx: None,
        };
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("video".into())
            .spawn(move || sup.run(&st))?;
        Ok(Video {
            stop,
            thread: Some(thread),
            status,
        })
    }

    /// Stops every camera (finishing open clips) and waits.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Video {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Supervisor {
    data: PathBuf,
    info: protocols::package::PackageInfo,
    key: ed25519_dalek::SigningKey,
    edge_id: String,
    config: EdgeConfig,
    config_text: String,
    status: StatusBoard,
    cameras: HashMap<String, CameraHandle>,
    ctx: Option<Arc<CameraContext>>,
}

/// The detector's settings from the configuration.
pub fn detector_settings(c: &DetectorConfig, data: &Path) -> DetectorSettings {
    DetectorSettings {
        model: if c.model.is_empty() {
            runtime::default_model(data)
        } else {
            PathBuf::from(&c.model)
        },
        library: if c.openvino_lib.is_empty() {
            runtime::default_library()
        } else {
            Some(PathBuf::from(&c.openvino_lib))
        },
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

impl Supervisor {
    fn run(&mut self, stop: &AtomicBool) {
        let config_path = self.data.join(crate::paths::CONFIG);
        let mut last_sweep: Option<Instant> = None;
        let mut tick = 0u64;
        let config = self.config.clone();
        self.apply(config);
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(250));
            tick += 1;
            if !tick.is_multiple_of(8) {
                continue;
            }
            // Every 2 s: configuration changes, statuses.
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
            if last_sweep.is_none_or(|t| t.elapsed() >= every) {
                last_sweep = Some(Instant::now());
                if let Err(e) = self.sweep() {
                    tracing::warn!(error = %format!("{e:#}"), "retention sweep failed");
                }
            }
        }
        let cameras: Vec<CameraHandle> = self.cameras.drain().map(|(_, c)| c).collect();
        for c in &cameras {
            c.request_stop();
        }
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
            || format!("{:?}", new.archive) != format!("{:?}", self.config.archive);
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
                    (Some(Arc::new(d)), None)
                }
                Err(e) => {
                    tracing::error!(error = %e, "detector unavailable; cameras record nothing until it loads");
                    (None, Some(e.to_string()))
                }
            };
            self.ctx = Some(Arc::new(CameraContext {
                data: self.data.clone(),
                info: self.info.clone(),
                key: self.key.clone(),
                edge_id: self.edge_id.clone(),
                archive: new.archive.clone(),
                detector,
                detector_error,
                status: self.status.clone(),
            }));
        }
        for cam in &new.cameras {
            if self.cameras.contains_key(&cam.id) {
                continue;
            }
            let Some(ctx) = self.ctx.clone() else { break };
            match CameraHandle::spawn(cam.clone(), ctx) {
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
                    updated_at_ms: crate::now_ms(),
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
        retention::sweep(&self.data, &store, &self.config.storage, volume, free)?;
        // Files without a row (a crash between writing a clip and recording its event),
        // after a grace period: a clip being written has no row yet.
        let known: HashSet<String> = store
            .events(None)?
            .into_iter()
            .flat_map(|e| e.clip_path.into_iter().chain(e.snapshot_path))
            .collect();
        let root = self.data.join(CLIPS_DIR);
        for cam in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(cam.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = f.path();
                let rel = path
                    .strip_prefix(&self.data)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let old = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(600));
                if old && !known.contains(&rel) {
                    tracing::info!(file = %rel, "removing a clip file without an event");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
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
