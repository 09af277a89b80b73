//! `make bench-archive`: sealed clips from the edge's outbox to S3 through the vm, against
//! uploading the same sealed files straight to the same S3 server with aws-sdk-s3, in the
//! same run.
//!
//! One s3s-fs server (on loopback, data on disk) serves both. The reference puts each sealed
//! file with the vm's own storage client (PutObject with a SHA-256 checksum). The measured
//! path is the product, the release binaries meeting only on the wire: `guardian-edge run`
//! empties an outbox of events sealed beforehand with `guardian-edge archive-file`, over
//! `/guardian/archive/1`, to a `guardian-vm run` that checks, streams to S3 and indexes each
//! one. Time runs from the edge's start to the last event leaving the outbox.
//! `GUARDIAN_BENCH_CLIPS` (default 100) and `GUARDIAN_BENCH_CLIP_MIB` (default 8) set the
//! load.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use guardian_vm::storage::{S3Config, Storage};
use support::{Edge, Vm, archive_file, free_port, pseudo_random, wait_for_every};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const AK: &str = "benchaccess";
const SK: &str = "benchsecretkey0123456789";

fn main() {
    let clips = env_or("GUARDIAN_BENCH_CLIPS", 100);
    let mib = env_or("GUARDIAN_BENCH_CLIP_MIB", 8);
    let root = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3_port = free_port();
    let s3_endpoint = format!("http://127.0.0.1:{s3_port}");

    // The S3 server both paths use.
    let server = rt
        .block_on(Storage::start(
            &S3Config {
                embedded_listen: format!("127.0.0.1:{s3_port}"),
                access_key: AK.into(),
                secret_key: SK.into(),
                ..Default::default()
            },
            &root.path().join("s3-server"),
        ))
        .unwrap();

    // A vm using that server, and an edge installed from its package.
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| {
        c.s3.endpoint = s3_endpoint.clone();
        c.s3.access_key = AK.into();
        c.s3.secret_key = SK.into();
        c.archive.quota_bytes_per_camera = 1 << 40;
    });
    let mut edge = Edge::install(&vm.package("bench", None), &root.path().join("edge"));

    // Seal the clips into the edge's outbox (not timed): what the camera pipeline would do.
    let plain = root.path().join("clip.mp4");
    for i in 0..clips {
        std::fs::write(&plain, pseudo_random(mib << 20, i as u32 + 1)).unwrap();
        archive_file(&edge, "bench", &plain, None);
    }
    let outbox = edge.dir.join("archive");
    let sealed: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path().join("clip.mp4.age"))
        .collect();
    assert_eq!(sealed.len(), clips, "one sealed event per clip");
    let total: u64 = sealed
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();

    // Reference: the same sealed files straight to the same server.
    let reference = rt.block_on(async {
        let client = Storage::start(
            &S3Config {
                endpoint: s3_endpoint.clone(),
                access_key: AK.into(),
                secret_key: SK.into(),
                ..Default::default()
            },
            root.path(),
        )
        .await
        .unwrap();
        client.ensure_bucket("camera-reference").await.unwrap();
        let start = Instant::now();
        for (i, p) in sealed.iter().enumerate() {
            let bytes = tokio::fs::read(p).await.unwrap();
            client
                .put_stream(
                    "camera-reference",
                    &format!("events/ref-{i}/clip.mp4.age"),
                    bytes.len() as u64,
                    &mut bytes.as_slice(),
                )
                .await
                .unwrap();
        }
        start.elapsed()
    });

    // The product path.
    vm.start();
    let start = Instant::now();
    edge.start();
    wait_for_every(
        "the edge's archive outbox to drain",
        Duration::from_secs(1800),
        Duration::from_millis(20),
        &[&vm.log(), &edge.log()],
        || edge.archive_backlog() == 0,
    );
    let measured = start.elapsed();
    let (_, body) = vm.get(&format!("/api/v1/archive?camera=bench&limit={}", clips * 2));
    let indexed = body["objects"]
        .as_array()
        .map_or(0, |o| o.iter().filter(|o| o["kind"] == "clip").count());
    assert_eq!(indexed, clips, "every clip indexed by the vm: {body}");
    edge.stop();
    vm.stop();
    drop(server);

    let mb = total as f64 / 1e6;
    println!(
        "bench-archive: {clips} sealed clips of {mib} MiB ({mb:.0} MB), one s3s-fs server on loopback"
    );
    println!(
        "  aws-sdk-s3 PutObject straight to S3   {:>7.2} s  {:>7.1} MB/s",
        reference.as_secs_f64(),
        mb / reference.as_secs_f64()
    );
    println!(
        "  edge outbox -> vm -> S3 (indexed)     {:>7.2} s  {:>7.1} MB/s",
        measured.as_secs_f64(),
        mb / measured.as_secs_f64()
    );
    println!(
        "  ratio (reference time / guardian time): {:.2}x  (goal >= 0.8x)",
        reference.as_secs_f64() / measured.as_secs_f64()
    );
}
