//! `make bench-detect`: the detector's latency beside OpenVINO's own `benchmark_app` (from the
//! same wheel) on the same model and CPU, in the same run, as a ratio; then throughput over
//! all cores with one and with several inference requests.
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
    DetectorSettings {
        model: model_path(),
        library: Some(openvino_lib()),
        device: "CPU".into(),
        infer_requests: requests,
        min_score: 0.35,
        nms_iou: 0.5,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// benchmark_app's median latency (ms) and throughput (fps) for `args`.
fn benchmark_app(args: &[&str]) -> (f64, f64) {
    let out = std::process::Command::new(support::benchmark_app())
        .arg("-m")
        .arg(model_path())
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

fn main() {
    let frame = Arc::new(std::fs::read(photos().join("astronaut-416x416.rgb")).unwrap());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Latency: one request with every core, as benchmark_app's latency hint runs it.
    let d = Detector::start(&settings(1)).unwrap();
    for _ in 0..5 {
        d.detect(frame.to_vec(), 416, 416, Duration::from_secs(30))
            .unwrap();
    }
    let mut ours = Vec::new();
    for _ in 0..ITER {
        let t = Instant::now();
        let dets = d
            .detect(frame.to_vec(), 416, 416, Duration::from_secs(30))
            .unwrap();
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(dets.iter().any(|x| x.class == 0));
    }
    drop(d);
    let ours = median(ours);
    let (reference, _) = benchmark_app(&["-hint", "latency", "-api", "sync", "-niter", "60"]);
    println!("detector latency, NanoDet-m 416, {cores} cores, median of {ITER}:");
    println!("  benchmark_app (inference only)      {reference:7.2} ms");
    println!("  guardian detect (copy+infer+decode) {ours:7.2} ms");
    println!(
        "  ratio benchmark_app / guardian      {:7.2}x (goal >= 0.9)",
        reference / ours
    );

    // Throughput over all cores.
    let one = throughput(1, &frame);
    let several = throughput(cores, &frame);
    let (_, reference_tput) = benchmark_app(&["-hint", "throughput", "-api", "async", "-t", "6"]);
    println!("detector throughput (frames/s over all cameras):");
    println!("  guardian, 1 request                 {one:7.1} fps");
    println!("  guardian, {cores} requests                 {several:7.1} fps");
    println!("  benchmark_app, throughput hint      {reference_tput:7.1} fps");
    println!(
        "  ratio guardian {cores} req / benchmark_app {:7.2}x",
        several / reference_tput
    );
}
