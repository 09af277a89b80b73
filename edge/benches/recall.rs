//! `make bench-recall`: person recall per appearance, time to event, false events per hour of
//! empty scenes and detector CPU per camera, for each model set-up made and each pair of
//! per-frame floor (`min_score`) and track threshold (`threshold`), on scenes composed from
//! photographs (`edge/tools/render-scenes.py`: people at 10-80 % of the frame's height on
//! street, interior, brick and night backgrounds, occluded, walking and standing; empty scenes
//! with a lighting change, leaves and a car crossing).
//!
//! Fast by construction: each model looks at each frame once, at the whole frame and at the
//! moving region (what [`Analysis`] may ask for), and its answers are cached on disk with the
//! time each took. Every setting is then a replay of the real analysis (motion gating, the
//! whole-frame schedule, filters, tracker, events) over the cached answers, scored by
//! `guardian_test_support::recall::score`, a pure function. CPU per camera is the detector time
//! the replay asked for, per second of video, on one core.
//!
//! Environment: `RECALL_SCENES` (comma-separated names, default all), `RECALL_FPS` (5).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use guardian_edge::config::CameraSettings;
use guardian_edge::detect::boxes::{BBox, Detection};
use guardian_edge::detect::labels;
use guardian_edge::detect::motion::{Motion, MotionParams};
use guardian_edge::detect::runtime::{Detector, DetectorError, DetectorSettings};
use guardian_edge::video::analysis::{Analysis, Detect, Step};
use guardian_test_support::recall::{Appearance, Score, SeenEvent, score};
use protocols::messages::Category;
use serde::{Deserialize, Serialize};
use support::*;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
/// People at least this tall are "in plain view" (the goal's recall).
const TALL: f64 = 0.25;
const SLACK_S: f64 = 1.0;

#[derive(Deserialize)]
struct SceneInfo {
    width: u32,
    height: u32,
    fps: f64,
    frames: usize,
    appearances: Vec<AppearanceJson>,
    stamp: String,
}

#[derive(Deserialize)]
struct AppearanceJson {
    kind: String,
    start_s: f64,
    end_s: f64,
    height_frac: f64,
}

/// One frame's answers.
#[derive(Serialize, Deserialize, Clone)]
struct Cached {
    full: Vec<Detection>,
    full_ms: f64,
    region: Option<BBox>,
    at_region: Vec<Detection>,
    region_ms: f64,
}

struct Scene {
    name: String,
    info: SceneInfo,
    rgb: PathBuf,
}

impl Scene {
    fn frame_len(&self) -> usize {
        (self.info.width * self.info.height * 3) as usize
    }

    fn frames(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        use std::io::Read;
        let mut f = std::io::BufReader::new(std::fs::File::open(&self.rgb).unwrap());
        let len = self.frame_len();
        (0..self.info.frames).map(move |_| {
            let mut b = vec![0u8; len];
            f.read_exact(&mut b).unwrap();
            b
        })
    }

    fn duration_s(&self) -> f64 {
        self.info.frames as f64 / self.info.fps
    }

    fn appearances(&self) -> Vec<Appearance> {
        self.info
            .appearances
            .iter()
            .map(|a| Appearance {
                kind: a.kind.clone(),
                start_s: a.start_s,
                end_s: a.end_s,
                height_frac: a.height_frac,
            })
            .collect()
    }
}

/// The cached answers that [`Analysis`] asks for, frame by frame; counts what they cost.
struct Replay {
    frames: Vec<Cached>,
    at: AtomicUsize,
    cost_ms: Mutex<f64>,
    misses: AtomicUsize,
}

impl Detect for Replay {
    fn detect_frame(
        &self,
        _rgb: &[u8],
        _w: u32,
        _h: u32,
        region: Option<BBox>,
    ) -> Result<Vec<Detection>, DetectorError> {
        let f = &self.frames[self.at.load(Ordering::SeqCst)];
        let mut cost = self.cost_ms.lock().unwrap();
        match region {
            Some(r) if f.region == Some(r) => {
                *cost += f.region_ms;
                Ok(f.at_region.clone())
            }
            Some(_) => {
                // Not what the cache pass saw (it should not happen: motion is the same).
                self.misses.fetch_add(1, Ordering::SeqCst);
                *cost += f.full_ms;
                Ok(f.full.clone())
            }
            None => {
                *cost += f.full_ms;
                Ok(f.full.clone())
            }
        }
    }
}

fn models() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(cache().join("models")).unwrap().flatten() {
        let dir = e.path();
        if !dir.join("model.json").is_file() {
            continue;
        }
        let xml = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|f| f.path())
            .find(|p| p.extension().is_some_and(|x| x == "xml"));
        if let Some(xml) = xml {
            out.push((e.file_name().to_string_lossy().into_owned(), xml));
        }
    }
    out.sort();
    out
}

fn render(dir: &Path, fps: u32) -> Vec<Scene> {
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.arg(repo().join("edge/tools/render-scenes.py"))
        .arg("--out")
        .arg(dir)
        .args([
            "--width",
            &WIDTH.to_string(),
            "--height",
            &HEIGHT.to_string(),
        ])
        .args(["--fps", &fps.to_string()]);
    let wanted: Vec<String> = std::env::var("RECALL_SCENES")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    for w in &wanted {
        cmd.args(["--scene", w]);
    }
    eprintln!("rendering scenes into {} (cached)", dir.display());
    ok(&mut cmd);
    let mut scenes = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if !wanted.is_empty() && !wanted.contains(&name) {
            continue;
        }
        let info: SceneInfo = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT), "{name}");
        scenes.push(Scene {
            rgb: p.with_extension("rgb"),
            name,
            info,
        });
    }
    scenes.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        !scenes.is_empty(),
        "no scenes rendered in {}",
        dir.display()
    );
    scenes
}

/// Each frame's answers from `model`, cached under `dir` by model, scene and the scene's stamp.
fn cached(dir: &Path, model: &(String, PathBuf), scene: &Scene, d: &Detector) -> Vec<Cached> {
    let info = std::fs::read(model.1.with_file_name("model.json")).unwrap_or_default();
    let stamp = fnv(&info) ^ fnv(scene.info.stamp.as_bytes());
    let path = dir.join(format!("dets-{}-{}-{stamp:016x}.json", model.0, scene.name));
    if let Ok(b) = std::fs::read(&path)
        && let Ok(v) = serde_json::from_slice::<Vec<Cached>>(&b)
        && v.len() == scene.info.frames
    {
        return v;
    }
    eprintln!(
        "  {} on {} ({} frames)",
        model.0, scene.name, scene.info.frames
    );
    let mut motion = Motion::new(WIDTH as usize, HEIGHT as usize, MotionParams::default());
    let t = Duration::from_secs(30);
    let mut out = Vec::with_capacity(scene.info.frames);
    for rgb in scene.frames() {
        let region = motion.update(&rgb, WIDTH as usize * 3).region;
        let t0 = Instant::now();
        let full = d.detect_region(&rgb, WIDTH, HEIGHT, None, t).unwrap();
        let full_ms = t0.elapsed().as_secs_f64() * 1e3;
        let (at_region, region_ms) = match region {
            Some(r) => {
                let t0 = Instant::now();
                let v = d.detect_region(&rgb, WIDTH, HEIGHT, Some(r), t).unwrap();
                (v, t0.elapsed().as_secs_f64() * 1e3)
            }
            None => (Vec::new(), 0.0),
        };
        out.push(Cached {
            full,
            full_ms,
            region,
            at_region,
            region_ms,
        });
    }
    std::fs::write(&path, serde_json::to_vec(&out).unwrap()).unwrap();
    out
}

/// FNV-1a, for cache file names.
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// One setting's replay of one scene: its events and the detector time it asked for.
fn replay(cam: &CameraSettings, scene: &Scene, frames: &[Cached]) -> (Vec<SeenEvent>, f64) {
    let r = Replay {
        frames: frames.to_vec(),
        at: AtomicUsize::new(0),
        cost_ms: Mutex::new(0.0),
        misses: AtomicUsize::new(0),
    };
    let mut a = Analysis::new(cam, None);
    let ns = |i: usize| (i as f64 / scene.info.fps * 1e9) as u64;
    let mut events = Vec::new();
    let mut open: Option<f64> = None;
    let mut close = |c: guardian_edge::video::analysis::Closed, open: &mut Option<f64>| {
        let kind = match c.evidence.best.map(|b| labels::category(b.class)) {
            Some(Category::Person) => "person",
            _ => "vehicle",
        };
        events.push(SeenEvent {
            kind: kind.into(),
            open_s: open.take().unwrap_or(0.0),
            close_s: c.last_seen_ns as f64 / 1e9,
        });
    };
    for (i, rgb) in scene.frames().enumerate() {
        r.at.store(i, Ordering::SeqCst);
        match a.on_frame(ns(i), &rgb, Some(&r)) {
            Step::Opened { .. } => open = Some(ns(i) as f64 / 1e9),
            Step::Closed(c) => close(c, &mut open),
            _ => {}
        }
    }
    if let Some(c) = a.close() {
        close(c, &mut open);
    }
    assert_eq!(
        r.misses.load(Ordering::SeqCst),
        0,
        "replay asked for a region the cache lacks"
    );
    let cost = *r.cost_ms.lock().unwrap();
    (events, cost)
}

fn main() {
    let fps: u32 = std::env::var("RECALL_FPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = cache().join(format!("scenes-{WIDTH}x{HEIGHT}-{fps}fps"));
    std::fs::create_dir_all(&dir).unwrap();
    let scenes = render(&dir, fps);
    let mut models = models();
    assert!(
        !models.is_empty(),
        "no models under {}",
        cache().join("models").display()
    );
    let mut detectors = Vec::new();
    models.retain(|m| {
        match Detector::start(&DetectorSettings {
            model: m.1.clone(),
            library: Some(openvino_lib()),
            device: "CPU".into(),
            // One request at a time on one core: its time is one core's.
            infer_requests: 2,
            min_score: 0.2,
            nms_iou: 0.5,
        }) {
            Ok(d) => {
                detectors.push(d);
                true
            }
            Err(e) => {
                println!("skipped model {}: {e}", m.0);
                false
            }
        }
    });
    let total_s: f64 = scenes.iter().map(Scene::duration_s).sum();
    println!(
        "{} scenes, {:.0} s of video at {fps} fps, {} models: {}",
        scenes.len(),
        total_s,
        models.len(),
        models
            .iter()
            .map(|m| m.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut answers: BTreeMap<String, Vec<Vec<Cached>>> = BTreeMap::new();
    for (m, d) in models.iter().zip(&detectors) {
        answers.insert(
            m.0.clone(),
            scenes.iter().map(|s| cached(&dir, m, s, d)).collect(),
        );
    }
    drop(detectors);
    println!(
        "\n{:<16} {:>5} {:>5} | {:>8} {:>7} {:>6} | {:>7} {:>7} | {:>8} {:>7} | {:>8} {:>6}",
        "model",
        "floor",
        "thr",
        "recall25",
        "recall",
        "cars",
        "tte p50",
        "tte max",
        "false/h",
        "false",
        "cpu ms/s",
        "cams"
    );
    let mut best: Option<(String, f32, f32, f64)> = None;
    let mut per_scene: BTreeMap<(String, String), Score> = BTreeMap::new();
    for m in &models {
        for floor in [0.25f32, 0.3, 0.35] {
            for thr in [0.4f32, 0.45, 0.5, 0.55, 0.6, 0.7] {
                if thr < floor {
                    continue;
                }
                let cam = CameraSettings {
                    id: "bench".into(),
                    detect_width: WIDTH,
                    detect_height: HEIGHT,
                    detect_fps: fps,
                    min_score: floor,
                    threshold: thr,
                    ..Default::default()
                };
                let mut total = Score::default();
                let mut cost = 0.0;
                for (s, frames) in scenes.iter().zip(&answers[&m.0]) {
                    let (events, c) = replay(&cam, s, frames);
                    let sc = score(&s.appearances(), &events, s.duration_s(), TALL, SLACK_S);
                    if (floor, thr) == (0.3, 0.5) {
                        per_scene.insert((m.0.clone(), s.name.clone()), sc.clone());
                    }
                    total.add(&sc);
                    cost += c;
                }
                let ms_per_s = cost / total_s;
                println!(
                    "{:<16} {:>5.2} {:>5.2} | {:>8.3} {:>7.3} {:>3}/{:<2} | {:>6.2}s {:>6.2}s | {:>8.1} {:>7} | {:>8.1} {:>6.0}",
                    m.0,
                    floor,
                    thr,
                    total.tall_recall(),
                    total.recall(),
                    total.vehicles_found,
                    total.vehicles,
                    total.time_to_event(0.5),
                    total.time_to_event(1.0),
                    total.false_per_hour(),
                    total.false_events,
                    ms_per_s,
                    2000.0 / ms_per_s.max(1e-9),
                );
                let meets = total.tall_recall() >= 0.95
                    && total.false_in_empty == 0
                    && total.time_to_event(1.0) <= 2.0;
                if meets && best.as_ref().is_none_or(|b| ms_per_s < b.3) {
                    best = Some((m.0.clone(), floor, thr, ms_per_s));
                }
            }
        }
    }
    println!(
        "\nper scene at floor 0.30, threshold 0.50 (tall found/tall, people found/people, cars, false events):"
    );
    for ((m, s), sc) in &per_scene {
        println!(
            "  {m:<16} {s:<20} {}/{} {}/{} {}/{} {}",
            sc.tall_found,
            sc.tall,
            sc.people_found,
            sc.people,
            sc.vehicles_found,
            sc.vehicles,
            sc.false_events
        );
    }
    match best {
        Some((m, f, t, c)) => println!(
            "\ncheapest setting meeting the goals (recall25 >= 0.95, no false person event in empty scenes, first event <= 2 s): {m}, min_score {f:.2}, threshold {t:.2}, {c:.1} ms of one core per camera-second ({:.0} cameras on 2 cores)",
            2000.0 / c
        ),
        None => println!(
            "\nno setting meets the goals (recall25 >= 0.95, no false person event in empty scenes, first event <= 2 s)"
        ),
    }
}
