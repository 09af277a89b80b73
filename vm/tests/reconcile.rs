//! Nothing forgotten (issue 16), with the release binaries: a vm started while its S3 shows
//! an archived event's bucket missing (as an empty listing, a bucket gone for a moment or a
//! wrong endpoint would) keeps the index rows, quarantined with the reason and shown as
//! degraded health; when the bucket is back, the next check releases them and the clip is
//! fetched by CID and decrypted as before.

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(40);

#[test]
fn a_bucket_missing_at_start_quarantines_the_index_and_its_return_releases_it() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| c.archive.reconcile_secs = 1);
    let owner = owner(
        root.path(),
        &vm.tenant_id,
        "owner passphrase for reconciliation",
    );
    vm.start();
    let mut edge = Edge::install(
        &vm.package_for("home", &owner.recipient, None),
        &root.path().join("edge"),
    );
    edge.start();
    let clip = pseudo_random(300_000, 0xbead);
    let clip_path = root.path().join("clip.mp4");
    std::fs::write(&clip_path, &clip).unwrap();
    let (event, cid) = archive_file(&edge, "porch", &clip_path, None);
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for("the clip archived", WAIT, &[&vm_log, &edge_log], || {
        vm.get(&format!("/api/v1/archive/{cid}/manifest")).0 == 200 && edge.archive_backlog() == 0
    });
    edge.stop();

    // The bucket is gone while the vm starts.
    vm.stop();
    let bucket = vm.dir.join("s3/camera-porch");
    let away = root.path().join("camera-porch.away");
    std::fs::rename(&bucket, &away).unwrap();
    vm.start();
    wait_for("the object quarantined", WAIT, &[&vm_log], || {
        let (_, h) = vm.get("/api/v1/health");
        h["archive_quarantined"]
            .as_array()
            .is_some_and(|q| q.iter().any(|o| o["cid"] == cid.as_str()))
    });
    let (_, health) = vm.get("/api/v1/health");
    assert_eq!(health["status"], "degraded");
    let q = &health["archive_quarantined"][0];
    assert_eq!(q["event_id"], event.as_str());
    assert!(
        q["reason"].as_str().unwrap().contains("camera-porch"),
        "{q}"
    );
    // Still in the index: the archive lists it and names its manifest.
    assert_eq!(vm.get(&format!("/api/v1/archive/{cid}/manifest")).0, 200);

    // The bucket is back: released at the next check, and the clip is fetched as before.
    std::fs::rename(&away, &bucket).unwrap();
    wait_for("the object released", WAIT, &[&vm_log], || {
        let (_, h) = vm.get("/api/v1/health");
        h["archive_quarantined"]
            .as_array()
            .is_some_and(|q| q.is_empty())
    });
    let out = root.path().join("fetched.mp4");
    let r = fetch(&vm, &owner, &cid, &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(std::fs::read(&out).unwrap() == clip);
}

#[test]
fn objects_without_index_rows_come_back_only_from_a_manifest_that_checks() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    let owner = owner(
        root.path(),
        &vm.tenant_id,
        "owner passphrase for re-indexing",
    );
    vm.start();
    let mut edge = Edge::install(
        &vm.package_for("home", &owner.recipient, None),
        &root.path().join("edge"),
    );
    edge.start();
    let clips: Vec<Vec<u8>> = (0..2).map(|i| pseudo_random(200_000, 0xf00 + i)).collect();
    let mut archived = Vec::new();
    for (i, clip) in clips.iter().enumerate() {
        let path = root.path().join(format!("clip{i}.mp4"));
        std::fs::write(&path, clip).unwrap();
        archived.push(archive_file(&edge, "porch", &path, None));
    }
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for("both clips archived", WAIT, &[&vm_log, &edge_log], || {
        archived
            .iter()
            .all(|(_, cid)| vm.get(&format!("/api/v1/archive/{cid}/manifest")).0 == 200)
            && edge.archive_backlog() == 0
    });
    edge.stop();
    vm.stop();

    // The index loses its rows (an older backup of the database, say); S3 still holds the
    // objects. The second event's manifest in S3 is changed by one byte.
    {
        let db = rusqlite::Connection::open(vm.db_path()).unwrap();
        db.execute_batch("DELETE FROM archive_objects; DELETE FROM archive_manifests;")
            .unwrap();
    }
    let tampered = vm.s3_root().join(format!(
        "camera-porch/events/{}/manifest.json",
        archived[1].0
    ));
    let mut bytes = std::fs::read(&tampered).unwrap();
    let at = bytes
        .windows(b"\"started_at_ms\":".len())
        .position(|w| w == b"\"started_at_ms\":")
        .unwrap()
        + b"\"started_at_ms\":".len();
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&tampered, &bytes).unwrap();

    vm.start();
    let (good, bad) = (&archived[0].1, &archived[1].1);
    wait_for("the first event re-indexed", WAIT, &[&vm_log], || {
        vm.get(&format!("/api/v1/archive/{good}/manifest")).0 == 200
    });
    let out = root.path().join("fetched.mp4");
    let r = fetch(&vm, &owner, good, &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(std::fs::read(&out).unwrap() == clips[0]);
    // The tampered one is not: its signature does not verify. It stays in S3, unindexed,
    // and health says why.
    wait_for("the tampered event reported", WAIT, &[&vm_log], || {
        vm.get("/api/v1/health").1["archive_unindexed"]
            .as_array()
            .is_some_and(|u| u.iter().any(|e| e["event_id"] == archived[1].0.as_str()))
    });
    let (_, health) = vm.get("/api/v1/health");
    assert_eq!(health["status"], "degraded");
    let reason = health["archive_unindexed"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("signature"), "{reason}");
    assert_eq!(vm.get(&format!("/api/v1/archive/{bad}")).0, 404);
}
