//! `make bench-recall`: person recall per appearance, time to event, false events per hour of
//! empty scenes and detector CPU per camera, for each model set-up made and each pair of
//! per-frame floor (`min_score`) and track threshold (`threshold`), on scenes composed from
//! photographs (`edge/tools/render-scenes.py`: people at 15-60 % of the frame's height on
//! street, interior, brick and night backgrounds, occluded, walking and standing; empty scenes
//! with a lighting change, leaves and a car crossing).
//!
//! Fast by construction: every setting replays the real [`Analysis`] (motion gating, where to
//! look, the whole-frame schedule, filters, tracker, events) over the scenes' frames, and the
//! detector's answer for a frame and a look (the whole frame, or a crop, on an 8-pixel grid)
//! is computed once, with the time it took, and cached on disk: settings ask mostly for the
//! same looks, and a second run asks the model nothing. Events are scored against the scenes'
//! ground truth by `guardian_test_support::recall::score`, a pure function. CPU per camera is
//! the detector time a setting asked for, per second of video, on one core.
//!
//! Environment: `RECALL_SCENES` (comma-separated names, default all), `RECALL_FPS` (5).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use guardian_edge::config::CameraSettings;
use guardian_edge::detect::boxes::{BBox, Detection};
use guardian_edge::detect::labels;
use guardian_edge::detect::runtime::{Detector, DetectorError, DetectorSettings, Look, look_for};
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

/// One cached answer: the frame, the look, the detections and what they cost.
#[derive(Serialize, Deserialize, Clone)]
struct Answer {
    frame: usize,
    /// `[0, side, 0]` for the whole frame, `[1, x, y]` for a crop.
    look: [u32; 3],
    dets: Vec<Detection>,
    ms: f64,
}

/// Answers by frame and look: the detections and their milliseconds.
type Answers = HashMap<(usize, [u32; 3]), (Vec<Detection>, f64)>;

fn look_key(l: Look) -> [u32; 3] {
    match l {
        Look::Whole { side } => [0, side, 0],
        Look::Crop { x, y, .. } => [1, x, y],
    }
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

/// The detector as [`Analysis`] sees it in a replay: cached answers, else the model's (then
/// cached); counts what the answers cost.
struct Replay<'a> {
    detector: &'a Detector,
    answers: &'a Mutex<Answers>,
    frame: AtomicUsize,
    cost_ms: Mutex<f64>,
}

impl Detect for Replay<'_> {
    fn detect_frame(
        &self,
        rgb: &[u8],
        w: u32,
        h: u32,
        region: Option<BBox>,
    ) -> Result<Vec<Detection>, DetectorError> {
        let key = (
            self.frame.load(Ordering::SeqCst),
            look_key(look_for(region, w, h)),
        );
        let known = self.answers.lock().unwrap().get(&key).cloned();
        let (dets, ms) = match known {
            Some(a) => a,
            None => {
                let t0 = Instant::now();
                let dets =
                    self.detector
                        .detect_region(rgb, w, h, region, Duration::from_secs(30))?;
                let a = (dets, t0.elapsed().as_secs_f64() * 1e3);
                self.answers.lock().unwrap().insert(key, a.clone());
                a
            }
        };
        *self.cost_ms.lock().unwrap() += ms;
        Ok(dets)
    }
}

/// A model's cached answers for a scene.
struct Cache {
    path: PathBuf,
    answers: Mutex<Answers>,
    loaded: usize,
}

impl Cache {
    fn open(dir: &Path, model: &(String, PathBuf), scene: &Scene) -> Cache {
        let info = std::fs::read(model.1.with_file_name("model.json")).unwrap_or_default();
        let stamp = fnv(&info) ^ fnv(scene.info.stamp.as_bytes());
        let path = dir
            .join("answers")
            .join(format!("{}-{}-{stamp:016x}.json", model.0, scene.name));
        let list: Vec<Answer> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let loaded = list.len();
        let answers = list
            .into_iter()
            .map(|a| ((a.frame, a.look), (a.dets, a.ms)))
            .collect();
        Cache {
            path,
            answers: Mutex::new(answers),
            loaded,
        }
    }

    fn save(&self) {
        let map = self.answers.lock().unwrap();
        if map.len() == self.loaded {
            return;
        }
        let list: Vec<Answer> = map
            .iter()
            .map(|(&(frame, look), (dets, ms))| Answer {
                frame,
                look,
                dets: dets.clone(),
                ms: *ms,
            })
            .collect();
        std::fs::create_dir_all(self.path.parent().unwrap()).unwrap();
        std::fs::write(&self.path, serde_json::to_vec(&list).unwrap()).unwrap();
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

/// FNV-1a, for cache file names.
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// One setting's replay of one scene: its events and the detector time it asked for.
fn replay(
    cam: &CameraSettings,
    scene: &Scene,
    detector: &Detector,
    cache: &Cache,
) -> (Vec<SeenEvent>, f64) {
    replay_looking(cam, scene, detector, cache, &mut |_, _| {})
}

/// [`replay`], calling `opened` with the analysis and the time (s) as each event opens.
fn replay_looking(
    cam: &CameraSettings,
    scene: &Scene,
    detector: &Detector,
    cache: &Cache,
    opened: &mut dyn FnMut(&Analysis, f64),
) -> (Vec<SeenEvent>, f64) {
    let r = Replay {
        detector,
        answers: &cache.answers,
        frame: AtomicUsize::new(0),
        cost_ms: Mutex::new(0.0),
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
        r.frame.store(i, Ordering::SeqCst);
        match a.on_frame(ns(i), &rgb, Some(&r)) {
            Step::Opened { .. } => {
                open = Some(ns(i) as f64 / 1e9);
                opened(&a, ns(i) as f64 / 1e9);
            }
            Step::Closed(c) => close(c, &mut open),
            _ => {}
        }
    }
    if let Some(c) = a.close() {
        close(c, &mut open);
    }
    let cost = *r.cost_ms.lock().unwrap();
    (events, cost)
}

/// The second look (`detector.verify_model`, CenterNet) on every event the default model opens
/// at the default setting (0.3, 0.5): confirmed among events with a person in view, rejected
/// among those without, and how long a look takes (median, one request).
fn second_look(
    scenes: &[Scene],
    models: &[(String, PathBuf)],
    detectors: &[Detector],
    caches: &[Vec<Cache>],
    fps: u32,
) {
    use guardian_edge::video::second_look::Verifier;
    use protocols::messages::events::Verdict;
    let (Some(first), Some(strong)) = (
        models.iter().position(|m| m.0.starts_with("nanodet")),
        models.iter().find(|m| m.0.starts_with("centernet")),
    ) else {
        println!("\nsecond look: needs the nanodet and centernet models");
        return;
    };
    let verifier = Verifier {
        model: "centernet".into(),
        min_score: guardian_edge::config::DetectorConfig::default().verify_min_score,
        detect: Detector::start(&DetectorSettings {
            model: strong.1.clone(),
            library: Some(openvino_lib()),
            device: "CPU".into(),
            infer_requests: 1,
            min_score: 0.1,
            nms_iou: 0.5,
        })
        .map(|d| std::sync::Arc::new(d) as std::sync::Arc<dyn Detect>)
        .map_err(|e| e.to_string()),
    };
    let cam = CameraSettings {
        id: "bench".into(),
        detect_width: WIDTH,
        detect_height: HEIGHT,
        detect_fps: fps,
        ..Default::default()
    };
    // (its kind of object in view, a person, confirmed, score, ms)
    let mut looks: Vec<(bool, bool, bool, u16, f64)> = Vec::new();
    for (s, cache) in scenes.iter().zip(&caches[first]) {
        let seen = s.appearances();
        replay_looking(&cam, s, &detectors[first], cache, &mut |a, at| {
            let Some(best) = a.best() else { return };
            let t = Instant::now();
            let said = verifier.look(best, WIDTH, HEIGHT);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let person = labels::category(best.class) == Category::Person;
            let in_view = seen.iter().any(|p| {
                (p.kind == "person") == person
                    && p.start_s - SLACK_S <= at
                    && at <= p.end_s + SLACK_S
            });
            looks.push((
                in_view,
                person,
                said.verdict == Verdict::Confirmed,
                said.score_milli,
                ms,
            ));
        });
    }
    let with: Vec<_> = looks.iter().filter(|l| l.0).collect();
    let without: Vec<_> = looks.iter().filter(|l| !l.0).collect();
    let mut ms: Vec<f64> = looks.iter().map(|l| l.4).collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "\nsecond look (centernet around the best box, confirms at {:.2}): confirmed {}/{} events whose object was in view ({} people, {} vehicles), rejected {}/{} whose object was not; a look takes {:.0} ms (median of {})",
        verifier.min_score,
        with.iter().filter(|l| l.2).count(),
        with.len(),
        with.iter().filter(|l| l.1).count(),
        with.iter().filter(|l| !l.1).count(),
        without.iter().filter(|l| !l.2).count(),
        without.len(),
        ms.get(ms.len() / 2).copied().unwrap_or(0.0),
        ms.len()
    );
    let mut scores: Vec<u16> = with.iter().filter(|l| l.1).map(|l| l.3).collect();
    scores.sort();
    println!("  its scores on the people in view: {scores:?}");
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
            min_score: 0.15,
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
    let caches: Vec<Vec<Cache>> = models
        .iter()
        .map(|m| scenes.iter().map(|s| Cache::open(&dir, m, s)).collect())
        .collect();
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
    // (model, floor, threshold, CPU ms per camera-second, rank)
    type Choice = (String, f32, f32, f64, (f32, f64, f64));
    let mut best: Option<Choice> = None;
    let mut empty_s = 0.0;
    let mut per_scene: BTreeMap<(String, String), Score> = BTreeMap::new();
    for ((m, detector), caches) in models.iter().zip(&detectors).zip(&caches) {
        for floor in [0.15f32, 0.2, 0.25, 0.3, 0.35] {
            for thr in [0.25f32, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7] {
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
                for (s, cache) in scenes.iter().zip(caches) {
                    let (events, c) = replay(&cam, s, detector, cache);
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
                // Of those meeting the goals: the highest threshold (the widest margin
                // against false events), then the best recall of everyone, then the least CPU.
                let rank = (thr, total.recall(), -ms_per_s);
                if meets && best.as_ref().is_none_or(|b| rank > b.4) {
                    best = Some((m.0.clone(), floor, thr, ms_per_s, rank));
                }
                empty_s = total.empty_s;
            }
        }
    }
    for c in caches.iter().flatten() {
        c.save();
    }
    second_look(&scenes, &models, &detectors, &caches, fps);
    drop(detectors);
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
    println!(
        "\nfalse/h: person events with nobody in view, per hour of the {empty_s:.0} s of the scenes with nobody in view"
    );
    match best {
        Some((m, f, t, c, _)) => println!(
            "chosen (recall25 >= 0.95, no false person event, first event <= 2 s; then the highest threshold, the best recall, the least CPU): {m}, min_score {f:.2}, threshold {t:.2}, {c:.1} ms of one core per camera-second ({:.0} cameras on 2 cores)",
            2000.0 / c
        ),
        None => println!(
            "no setting meets the goals (recall25 >= 0.95, no false person event, first event <= 2 s)"
        ),
    }
}
