//! `make bench-archive`: sealed clips from the edge's outbox to S3 through the vm, against
//! uploading the same sealed files straight to the same S3 server with aws-sdk-s3, in the
//! same run.
//!
//! One s3s-fs server (on loopback, data on disk) serves both. The reference puts each sealed
//! file with the vm's own storage client (PutObject with a SHA-256 checksum). The measured
//! path is the product: the edge agent (`guardian_edge::agent::run`) empties an outbox of
//! pre-sealed events over `/guardian/archive/1` to a vm (`guardian_vm::service::run`) that
//! checks, streams to S3 and indexes each one. Time runs from the agent's start to the last
//! event leaving the outbox. `GUARDIAN_BENCH_CLIPS` (default 100) and `GUARDIAN_BENCH_CLIP_MIB`
//! (default 8) set the load.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use guardian_vm::storage::{S3Config, Storage};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const AK: &str = "benchaccess";
const SK: &str = "benchsecretkey0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn count_dirs(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

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
    let vm_dir = root.path().join("vm");
    let p2p_port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    guardian_vm::provision::init(
        &vm_dir,
        "127.0.0.1",
        &[format!("/ip4/127.0.0.1/udp/{p2p_port}/quic-v1")],
        Some("127.0.0.1:0"),
    )
    .unwrap();
    let config = vm_dir.join("vm.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("endpoint = \"\"", &format!("endpoint = \"{s3_endpoint}\""))
        .replace("access_key = \"\"", &format!("access_key = \"{AK}\""))
        .replace("secret_key = \"\"", &format!("secret_key = \"{SK}\""))
        .replace(
            "quota_bytes_per_camera = 10737418240",
            "quota_bytes_per_camera = 1099511627776",
        );
    std::fs::write(&config, text).unwrap();
    let pkg = root.path().join("edge.tar");
    guardian_vm::provision::package_edge(
        &vm_dir,
        "bench",
        "age1ydtd594d737rjz4ezm8ckwzrkv7n8qge5xuh4zj8taxdvhl4sssq2upmtd",
        &pkg,
        None,
        guardian_vm::provision::PackageFormat::Tar,
    )
    .unwrap();
    let edge_dir = root.path().join("edge");
    guardian_edge::install::install(&pkg, &edge_dir).unwrap();

    // Seal the clips into the edge's outbox (not timed): what the camera pipeline would do.
    let installed = guardian_edge::agent::Installed::load(&edge_dir).unwrap();
    let mut store = installed.store().unwrap();
    let plain = root.path().join("clip.mp4");
    for i in 0..clips {
        std::fs::write(&plain, support::pseudo_random(mib << 20, i as u32 + 1)).unwrap();
        let now = guardian_edge::now_ms();
        let record = protocols::messages::events::EventRecord {
            event_id: format!("bench-{i}"),
            tenant_id: installed.info.tenant_id.clone(),
            edge_id: installed.peer_id(),
            camera_id: "bench".into(),
            started_at_ms: now - 5000,
            ended_at_ms: now,
            category: protocols::messages::Category::Person,
            score_milli: 900,
            clip_id: None,
            snapshot_id: None,
        };
        guardian_edge::archive::seal_event(
            &edge_dir,
            &mut store,
            &installed.info,
            &installed.key,
            guardian_edge::archive::EventToSeal {
                record,
                clip: &plain,
                snapshot: None,
            },
            now,
        )
        .unwrap();
    }
    drop(store);
    let outbox = edge_dir.join(guardian_edge::archive::ARCHIVE_DIR);
    let sealed: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path().join("clip.mp4.age"))
        .collect();
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
    let measured = rt.block_on(async {
        let (vm_stop, vm_stopped) = tokio::sync::oneshot::channel::<()>();
        let vm = tokio::spawn({
            let vm_dir = vm_dir.clone();
            async move {
                guardian_vm::service::run(&vm_dir, async {
                    let _ = vm_stopped.await;
                })
                .await
                .unwrap()
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = Instant::now();
        let (edge_stop, edge_stopped) = tokio::sync::oneshot::channel::<()>();
        let edge = tokio::spawn({
            let edge_dir = edge_dir.clone();
            async move {
                guardian_edge::agent::run(&edge_dir, async {
                    let _ = edge_stopped.await;
                })
                .await
                .unwrap()
            }
        });
        while count_dirs(&outbox) > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(1800),
                "the outbox does not drain"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = start.elapsed();
        let _ = edge_stop.send(());
        let _ = edge.await;
        let _ = vm_stop.send(());
        let _ = vm.await;
        took
    });
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
