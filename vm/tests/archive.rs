//! The archive end to end with real processes and the vm's embedded S3 server: a file sealed
//! on the edge reaches its camera's bucket, is fetched by CID and decrypted with the owner's
//! secret (and with stock `age`), a flipped byte in storage is refused, nothing the vm stores
//! holds plaintext, and a quota refusal keeps the clip on the edge.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(40);

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn archived_clip_is_fetched_by_cid_decrypted_and_never_stored_in_the_clear() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    let owner = owner(
        root.path(),
        &vm.tenant_id,
        "owner passphrase for the archive test",
    );
    vm.start();
    let mut edge = Edge::install(
        &vm.package_for("home", &owner.recipient, None),
        &root.path().join("edge"),
    );
    edge.start();
    let clip = pseudo_random(3 << 20, 0x1234_5678);
    let snap = pseudo_random(50_000, 0x1234_5678);
    let (clip_path, snap_path) = (
        root.path().join("clip.mp4"),
        root.path().join("snapshot.jpg"),
    );
    std::fs::write(&clip_path, &clip).unwrap();
    std::fs::write(&snap_path, &snap).unwrap();
    let (event, cid) = archive_file(&edge, "front-door", &clip_path, Some(&snap_path));

    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for(
        "the event in the archive",
        WAIT,
        &[&vm_log, &edge_log],
        || {
            let (_, body) = vm.get("/api/v1/archive?camera=front-door");
            body["objects"].as_array().is_some_and(|o| o.len() == 2)
        },
    );
    wait_for(
        "the edge's archive outbox to empty",
        WAIT,
        &[&edge_log],
        || edge.archive_backlog() == 0,
    );
    // The edge keeps its sealed copy (playback streams it, local retention deletes it): the
    // same bytes the archive holds, sealed once.
    assert!(
        edge.sealed_clip(&event)
            == std::fs::read(
                vm.dir
                    .join("s3/camera-front-door/events")
                    .join(&event)
                    .join("clip.mp4.age")
            )
            .unwrap()
    );
    let (_, body) = vm.get("/api/v1/archive?camera=front-door");
    let clip_row = body["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "clip")
        .unwrap()
        .clone();
    assert_eq!(clip_row["cid"], cid.as_str());
    assert_eq!(clip_row["bucket"], "camera-front-door");
    assert_eq!(clip_row["key"], format!("events/{event}/clip.mp4.age"));
    // The event record arrives too (it travels apart from the archive).
    wait_for("the event record", WAIT, &[&vm_log, &edge_log], || {
        vm.event_ids().contains(&event)
    });

    // Fetched by CID and decrypted with the owner's secret.
    let out = root.path().join("fetched.mp4");
    let r = fetch(&vm, &owner, &cid, &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), clip);

    // The stored object opens with stock age and the derived identity.
    let stored = vm
        .dir
        .join("s3/camera-front-door/events")
        .join(&event)
        .join("clip.mp4.age");
    let age = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&owner.identity_file)
        .arg(&stored)
        .output()
        .expect("stock age is installed (scripts/setup.sh)");
    assert!(
        age.status.success(),
        "{}",
        String::from_utf8_lossy(&age.stderr)
    );
    assert_eq!(age.stdout, clip);

    // Privacy: no 32-byte run of either plaintext anywhere the vm wrote, and no identity.
    vm.stop();
    let mut haystack = Vec::new();
    for f in files(&vm.dir).into_iter().chain([vm.log()]) {
        haystack.extend(std::fs::read(&f).unwrap());
    }
    let identity = std::fs::read_to_string(&owner.identity_file).unwrap();
    assert!(
        !haystack
            .windows(identity.trim().len())
            .any(|w| w == identity.trim().as_bytes()),
        "the owner's identity is on the vm"
    );
    for (name, plain) in [("clip", &clip), ("snapshot", &snap)] {
        for start in (0..plain.len() - 32).step_by(4099) {
            let needle = &plain[start..start + 32];
            assert!(
                !haystack.windows(32).any(|w| w == needle),
                "plaintext of the {name} at offset {start} is stored on the vm"
            );
        }
    }
    vm.start();

    // One flipped byte in storage: refused, and no output file.
    let mut bytes = std::fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&stored, bytes).unwrap();
    let bad = root.path().join("tampered.mp4");
    let r = fetch(&vm, &owner, &cid, &bad);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("does not match its CID"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!bad.exists());
    let leftovers: Vec<_> = files(root.path())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".guardian-")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A CID the vm does not hold.
    let r = fetch(
        &vm,
        &owner,
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        &bad,
    );
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("404"));
}

#[test]
fn over_quota_the_clip_stays_on_the_edge() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| c.archive.quota_bytes_per_camera = 100_000);
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let small = root.path().join("small.mp4");
    std::fs::write(&small, pseudo_random(20_000, 0x1234_5678)).unwrap();
    let big = root.path().join("big.mp4");
    std::fs::write(&big, pseudo_random(200_000, 0x1234_5678)).unwrap();
    let (_, small_cid) = archive_file(&edge, "porch", &small, None);
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for(
        "the small clip archived",
        WAIT,
        &[&vm_log, &edge_log],
        || vm.get(&format!("/api/v1/archive/{small_cid}/manifest")).0 == 200,
    );
    let (big_event, big_cid) = archive_file(&edge, "porch", &big, None);
    wait_for(
        "the quota refusal noted in the edge's archive outbox",
        WAIT,
        &[&vm_log, &edge_log],
        || {
            edge.archive_outbox().iter().any(|r| {
                r.event_id == big_event
                    && r.attempts >= 1
                    && r.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("over its archive quota"))
            })
        },
    );
    assert_eq!(
        vm.get(&format!("/api/v1/archive/{big_cid}/manifest")).0,
        404
    );
    assert!(
        !edge.sealed_clip(&big_event).is_empty(),
        "the refused event stays on the edge"
    );
}
