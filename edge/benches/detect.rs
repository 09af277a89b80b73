//! `make bench-detect`: the detector's latency beside OpenVINO's own `benchmark_app` (from the
//! same wheel) on the same model and CPU, in the same run, as a ratio, for NanoDet (the light
//! default), CenterNet (the stronger model) and MoveNet MultiPose (people only), with the
//! others' cost as a ratio to NanoDet's; all also on a 1280×720 frame (resized by OpenVINO's pre-processing, as the edge sends whole
//! frames); then NanoDet's throughput over all cores with one and with several inference
//! requests.
//!
//! Our latency is a whole `Detector::detect` call: queue, input copy, inference, box decoding
//! and NMS. benchmark_app's is the inference alone (it fills its inputs outside the loop).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use guardian_edge::detect::runtime::{Detector, DetectorSettings};
use support::*;

const ITER: usize = 60;

fn settings(requests: usize) -> DetectorSettings {
    settings_of("nanodet", requests)
}

fn settings_of(kind: &str, requests: usize) -> DetectorSettings {
    DetectorSettings {
        model: model_path_of(kind),
        library: Some(openvino_lib()),
        device: "CPU".into(),
        infer_requests: requests,
        // CenterNet's peak scores run lower than NanoDet's (0.6 where NanoDet gives 0.74-0.88),
        // MoveNet's lower still (0.33-0.50 on the photos).
        min_score: match kind {
            "centernet" => 0.3,
            "movenet" => 0.25,
            _ => 0.35,
        },
        nms_iou: 0.5,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// benchmark_app's median latency (ms) and throughput (fps) for `args` on the model of `kind`.
fn benchmark_app(kind: &str, args: &[&str]) -> (f64, f64) {
    let out = std::process::Command::new(support::benchmark_app())
        .arg("-m")
        .arg(model_path_of(kind))
        .args(["-d", "CPU"])
        .args(args)
        .output()
        .expect("benchmark_app (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let find = |label: &str| -> f64 {
        text.lines()
            .find_map(|l| l.split_once(label).map(|(_, v)| v.trim()))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {label} in benchmark_app's output:\n{text}"))
    };
    (find("Median:"), find("Throughput:"))
}

fn throughput(requests: usize, frame: &Arc<Vec<u8>>) -> f64 {
    let d = Arc::new(Detector::start(&settings(requests)).unwrap());
    d.detect(frame.to_vec(), 416, 416, Duration::from_secs(30))
        .unwrap();
    let window = Duration::from_secs(6);
    let start = Instant::now();
    let clients = 2 * requests.max(1);
    let counts: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|_| {
                let (d, frame) = (d.clone(), frame.clone());
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < window {
                        if d.detect(frame.to_vec(), 416, 416, Duration::from_secs(30))
                            .is_ok()
                        {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    counts.iter().sum::<usize>() as f64 / start.elapsed().as_secs_f64()
}

/// The median latency (ms) of `Detector::detect` on `frame` (`w`×`h`), one request with every
/// core, as benchmark_app's latency hint runs it; every answer must hold a person.
/// The median latency (ms) of `kind` on `frame`, and the best person score it found.
fn latency(kind: &str, frame: &[u8], w: u32, h: u32) -> (f64, f32) {
    let d = Detector::start(&settings_of(kind, 1)).unwrap();
    let mut best = 0.0f32;
    for _ in 0..5 {
        d.detect(frame.to_vec(), w, h, Duration::from_secs(30))
            .unwrap();
    }
    let mut ours = Vec::new();
    for _ in 0..ITER {
        let t = Instant::now();
        let dets = d
            .detect(frame.to_vec(), w, h, Duration::from_secs(30))
            .unwrap();
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(dets.iter().any(|x| x.class == 0), "{kind}: {dets:?}");
        best = dets
            .iter()
            .filter(|x| x.class == 0)
            .fold(best, |b, x| b.max(x.score));
    }
    (median(ours), best)
}

/// The cameraman, 720 px high, at the left of a 1280×720 mid-grey frame. (Not the astronaut:
/// squeezed 2.5× across and 1.4× down to 512×512, CenterNet scores her below 0.3.)
fn wide_frame() -> Vec<u8> {
    let side = 720usize;
    let img = image::imageops::resize(
        &image::open(photos().join("camera.png")).unwrap().to_rgb8(),
        side as u32,
        side as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut frame = vec![128u8; 1280 * 720 * 3];
    for y in 0..side {
        let row = &img.as_raw()[y * side * 3..(y + 1) * side * 3];
        frame[y * 1280 * 3..y * 1280 * 3 + side * 3].copy_from_slice(row);
    }
    frame
}

fn main() {
    let frame = Arc::new(std::fs::read(photos().join("astronaut-416x416.rgb")).unwrap());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Latency: one request with every core, as benchmark_app's latency hint runs it.
    let bench_args = ["-hint", "latency", "-api", "sync", "-niter", "60"];
    let (nano, nano_score) = latency("nanodet", &frame, 416, 416);
    let (nano_ref, _) = benchmark_app("nanodet", &bench_args);
    let centre_frame = std::fs::read(photos().join("astronaut-512x512.rgb")).unwrap();
    let (centre, centre_score) = latency("centernet", &centre_frame, 512, 512);
    let (centre_ref, _) = benchmark_app("centernet", &bench_args);
    let move_frame = std::fs::read(photos().join("astronaut-256x256.rgb")).unwrap();
    let (moves, move_score) = latency("movenet", &move_frame, 256, 256);
    let (move_ref, _) = benchmark_app("movenet", &bench_args);
    let wide = wide_frame();
    let (nano_wide, nano_wide_score) = latency("nanodet", &wide, 1280, 720);
    let (centre_wide, centre_wide_score) = latency("centernet", &wide, 1280, 720);
    let (move_wide, move_wide_score) = latency("movenet", &wide, 1280, 720);
    println!("detector latency, {cores} cores, median of {ITER}:");
    for (name, reference, ours, score) in [
        ("NanoDet-m 416", nano_ref, nano, nano_score),
        (
            "CenterNet MobileNetV3 512",
            centre_ref,
            centre,
            centre_score,
        ),
        ("MoveNet MultiPose 256", move_ref, moves, move_score),
    ] {
        println!("  {name} (the astronaut: person {score:.3}):");
        println!("    benchmark_app (inference only)      {reference:7.2} ms");
        println!("    guardian detect (copy+infer+decode) {ours:7.2} ms");
        println!(
            "    ratio benchmark_app / guardian      {:7.2}x (goal >= 0.9)",
            reference / ours
        );
    }
    println!("  a 1280x720 frame (the cameraman), resized in OpenVINO:");
    for (name, ms, score) in [
        ("NanoDet-m 416", nano_wide, nano_wide_score),
        ("CenterNet MobileNetV3 512", centre_wide, centre_wide_score),
        ("MoveNet MultiPose 256", move_wide, move_wide_score),
    ] {
        println!("    {name:<35} {ms:7.2} ms  person {score:.3}");
    }
    for (name, at, wide) in [
        ("CenterNet", centre, centre_wide),
        ("MoveNet", moves, move_wide),
    ] {
        println!(
            "  ratio {name} / NanoDet {:>w$}{:7.2}x at the model's size, {:.2}x on 1280x720",
            "",
            at / nano,
            wide / nano_wide,
            w = 15 - name.len()
        );
    }

    // Throughput over all cores.
    let one = throughput(1, &frame);
    let several = throughput(cores, &frame);
    let (_, reference_tput) = benchmark_app(
        "nanodet",
        &["-hint", "throughput", "-api", "async", "-t", "6"],
    );
    println!("NanoDet detector throughput (frames/s over all cameras):");
    println!("  guardian, 1 request                 {one:7.1} fps");
    println!("  guardian, {cores} requests                 {several:7.1} fps");
    println!("  benchmark_app, throughput hint      {reference_tput:7.1} fps");
    println!(
        "  ratio guardian {cores} req / benchmark_app {:7.2}x",
        several / reference_tput
    );
}
