//! The archive against Ceph's radosgw, the production-class distributed S3 a large tenant
//! grows into: a one-node cluster on loopback booted by `scripts/radosgw.sh` (idempotent;
//! about 20 s the first time, instant when running). The storage layer round-trips objects;
//! then, end to end with real processes, a sealed clip lands in its camera's bucket, where an
//! independent S3 client (boto3, `scripts/s3-inspect.py`) finds the three objects; the clip
//! opens with stock `age`; `guardian fetch` gets it by CID; a flipped byte written back through
//! S3 is refused; and with radosgw stopped the edge's backlog grows in telemetry and drains
//! when it returns.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Starts (or finds running) the cluster; returns its `GUARDIAN_S3_*` variables.
fn radosgw() -> HashMap<String, String> {
    let script = repo().join("scripts/radosgw.sh");
    let start = Command::new(&script).arg("start").output().unwrap();
    assert!(
        start.status.success(),
        "scripts/radosgw.sh start failed:\n{}{}",
        String::from_utf8_lossy(&start.stdout),
        String::from_utf8_lossy(&start.stderr)
    );
    let env = ok(Command::new(&script).arg("env"));
    env.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.trim_matches('\'').trim_matches('"').to_owned(),
            )
        })
        .collect()
}

fn rgw(cmd: &str) {
    ok(Command::new(repo().join("scripts/radosgw.sh")).arg(cmd));
}

/// The independent S3 client.
fn inspect(env: &HashMap<String, String>, args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(repo().join("scripts/s3-inspect.py"))
        .args(args)
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_round_trips_on_radosgw() {
    let env = tokio::task::spawn_blocking(radosgw).await.unwrap();
    let config = guardian_vm::storage::S3Config {
        endpoint: env["GUARDIAN_S3_ENDPOINT"].clone(),
        access_key: env["GUARDIAN_S3_ACCESS_KEY"].clone(),
        secret_key: env["GUARDIAN_S3_SECRET_KEY"].clone(),
        region: env["GUARDIAN_S3_REGION"].clone(),
        part_size: 5 * 1024 * 1024,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = guardian_vm::storage::Storage::start(&config, dir.path())
        .await
        .unwrap();
    let bucket = format!("camera-rgw-{}", std::process::id());
    storage.ensure_bucket(&bucket).await.unwrap();
    storage.ensure_bucket(&bucket).await.unwrap();
    for (key, len) in [
        ("events/a/clip.mp4.age", 1000usize),
        ("events/b/clip.mp4.age", 12 << 20),
    ] {
        let bytes = pseudo_random(len, len as u32 + 3);
        let cid = storage
            .put_stream(&bucket, key, len as u64, &mut bytes.as_slice())
            .await
            .unwrap();
        assert_eq!(cid, protocols::ContentId::of_bytes(&bytes), "{key}");
        let got = storage
            .get(&bucket, key, Some("bytes=10-19"))
            .await
            .unwrap();
        let part = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(part.as_ref(), &bytes[10..20]);
    }
}

#[test]
fn archive_end_to_end_on_radosgw() {
    let env = radosgw();
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| {
        c.telemetry.interval_secs = 1;
        c.s3.endpoint = env["GUARDIAN_S3_ENDPOINT"].clone();
        c.s3.access_key = env["GUARDIAN_S3_ACCESS_KEY"].clone();
        c.s3.secret_key = env["GUARDIAN_S3_SECRET_KEY"].clone();
    });

    // The owner's keys: the vm and edge only ever see the recipient.
    let owner = owner(
        root.path(),
        &vm.tenant_id,
        "owner secret for the radosgw test",
    );

    vm.start();
    let mut edge = Edge::install(
        &vm.package_for("home", &owner.recipient, None),
        &root.path().join("edge"),
    );
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    let logs = [vm_log.as_path(), edge_log.as_path()];
    wait_for("the edge enrolled", WAIT, &logs, || vm.devices().len() == 1);

    let camera = format!("porch-{}", std::process::id() % 100_000);
    let archive = |file: &Path| archive_file(&edge, &camera, file, None);
    let clip = pseudo_random(6 << 20, 0xCE9F);
    let clip_path = root.path().join("clip.mp4");
    std::fs::write(&clip_path, &clip).unwrap();
    let (event, cid) = archive(&clip_path);
    let archived = |vm: &Vm| {
        let (_, body) = vm.get(&format!("/api/v1/archive?camera={camera}&limit=100"));
        body["objects"]
            .as_array()
            .map_or(0, |o| o.iter().filter(|o| o["kind"] == "clip").count())
    };
    wait_for("the clip in radosgw", WAIT, &logs, || archived(&vm) == 1);

    // An independent S3 client sees the objects where the design says they are.
    let bucket = format!("camera-{camera}");
    let listing = inspect(&env, &["list", &bucket]);
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let keys: Vec<serde_json::Value> = listing
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = keys.iter().filter_map(|k| k["key"].as_str()).collect();
    assert!(
        names.contains(&format!("events/{event}/clip.mp4.age").as_str()),
        "{listing}"
    );
    assert!(
        names.contains(&format!("events/{event}/manifest.json").as_str()),
        "{listing}"
    );

    // Stock age opens what boto3 downloads.
    let sealed = root.path().join("from-s3.age");
    let key = format!("events/{event}/clip.mp4.age");
    let got = inspect(&env, &["get", &bucket, &key, sealed.to_str().unwrap()]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let age = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&owner.identity_file)
        .arg(&sealed)
        .output()
        .unwrap();
    assert!(
        age.status.success(),
        "{}",
        String::from_utf8_lossy(&age.stderr)
    );
    assert_eq!(age.stdout, clip);

    // The owner fetches by CID.
    let fetch = |out: &Path| fetch(&vm, &owner, &cid, out);
    let out = root.path().join("fetched.mp4");
    let r = fetch(&out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), clip);

    // One flipped byte, written back through S3: refused, no output file.
    let mut bytes = std::fs::read(&sealed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = root.path().join("tampered.age");
    std::fs::write(&tampered, bytes).unwrap();
    let put = inspect(&env, &["put", &bucket, &key, tampered.to_str().unwrap()]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let bad = root.path().join("bad.mp4");
    let r = fetch(&bad);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("does not match its CID"), "{err}");
    assert!(!bad.exists());

    // radosgw down: the backlog grows and telemetry shows it; back up: it drains.
    rgw("stop-rgw");
    let guard = RgwBack;
    for i in 0..2u32 {
        let f = root.path().join(format!("late{i}.mp4"));
        std::fs::write(&f, pseudo_random(200_000, i + 40)).unwrap();
        archive(&f);
    }
    let backlog =
        |vm: &Vm| vm.get("/api/v1/health").1["edges"][0]["archive_backlog_objects"].clone();
    wait_for("telemetry to show a backlog of 2", WAIT, &logs, || {
        backlog(&vm) == 2
    });
    rgw("start-rgw");
    drop(guard);
    wait_for("the backlog to drain", WAIT, &logs, || archived(&vm) == 3);
    wait_for("telemetry to show no backlog", WAIT, &logs, || {
        backlog(&vm) == 0
    });
}

/// Starts radosgw again if the test fails while it is stopped.
struct RgwBack;

impl Drop for RgwBack {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/radosgw.sh"))
            .arg("start-rgw")
            .output();
    }
}
