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
