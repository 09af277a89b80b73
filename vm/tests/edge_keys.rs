//! Keys the vm never made (issue 15), with the release binaries: the install package holds
//! no key of the edge; `guardian-edge init` makes the edge's keys (mode 0600) and keeps them
//! when run again; the edge enrolls as its token's enrollment identity and the vm registers
//! the key the edge made (not the enrollment identity), with its age recipient; a manifest
//! the edge signs verifies against that key; and an edge whose enrollment answer was lost
//! asks again, across a vm restart, and is answered without a second registration.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(40);

/// Every member of a tar file: (name, bytes), read with the system's `tar`.
fn tar_members(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let list = ok(Command::new("tar").arg("-tf").arg(path));
    list.lines()
        .map(|name| {
            let out = Command::new("tar")
                .arg("-xOf")
                .arg(path)
                .arg(name)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            (name.to_owned(), out.stdout)
        })
        .collect()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `guardian-vm package edge`, and the enrollment peer id it printed.
fn package(vm: &Vm, name: &str) -> (std::path::PathBuf, String) {
    let out = vm.dir.with_file_name(format!("{name}.tar"));
    let printed = ok(Command::new(bin("guardian-vm"))
        .args(["package", "edge", "--data"])
        .arg(&vm.dir)
        .args(["--name", name, "--recipient", RECIPIENT, "--out"])
        .arg(&out));
    (out, field(&printed, "enrollment peer id:"))
}

#[test]
fn the_edge_makes_its_keys_and_the_vm_registers_them() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let (pkg, enrollment_peer) = package(&vm, "home");
    assert_eq!(mode(&pkg), 0o600, "the package holds the token's secret");

    // The package: package.json and its signature, nothing of the edge's keys.
    let members = tar_members(&pkg);
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["guardian/package.json", "guardian/package.sig"]);
    let info: serde_json::Value = serde_json::from_slice(&members[0].1).unwrap();
    assert_eq!(info["format"], "guardian-install/2");
    for gone in ["edge_peer_id", "edge_key"] {
        assert!(info.get(gone).is_none(), "{gone} in {info}");
    }

    let dir = root.path().join("edge");
    let (mut edge, init_out) = Edge::install_printing(&pkg, &dir);
    let edge_peer = field(&init_out, "edge peer id:");
    let age_recipient = field(&init_out, "age recipient:");
    assert!(age_recipient.starts_with("age1"), "{init_out}");
    for f in ["edge.key", "edge.age"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    assert_ne!(
        edge_peer, enrollment_peer,
        "the edge's key is its own, not the enrollment identity"
    );
    // The edge's secrets appear nowhere in the package.
    let key_hex = std::fs::read_to_string(dir.join("edge.key")).unwrap();
    let age_secret = std::fs::read_to_string(dir.join("edge.age")).unwrap();
    assert!(age_secret.starts_with("AGE-SECRET-KEY-1"));
    let tar_bytes = std::fs::read(&pkg).unwrap();
    let tar_text = String::from_utf8_lossy(&tar_bytes).to_lowercase();
    for secret in [key_hex.trim(), age_secret.trim()] {
        assert!(!tar_text.contains(&secret.to_lowercase()));
    }
    // init and status print the same identity; the owner's archive key id is the package's.
    let status = edge.status();
    for label in [
        "edge peer id:",
        "edge key fingerprint:",
        "age recipient:",
        "age recipient fingerprint:",
        "owner archive key id:",
    ] {
        assert_eq!(field(&status, label), field(&init_out, label), "{label}");
    }
    assert_eq!(
        field(&status, "owner archive key id:"),
        info["archive_key_id"].as_str().unwrap()
    );
    assert!(
        field(&status, "enrolled:").starts_with("not yet"),
        "{status}"
    );
    assert!(status.contains(&enrollment_peer), "{status}");

    // init again on the same package: nothing changes, the keys are kept.
    let (_, again) = Edge::install_printing(&pkg, &dir);
    assert!(again.contains("nothing changed"), "{again}");
    assert_eq!(field(&again, "edge peer id:"), edge_peer);
    assert_eq!(
        std::fs::read_to_string(dir.join("edge.key")).unwrap(),
        key_hex
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("edge.age")).unwrap(),
        age_secret
    );
    // Another package into the same directory is refused.
    let (other, _) = package(&vm, "other");
    let refused = Command::new(bin("guardian-edge"))
        .arg("init")
        .arg("--package")
        .arg(&other)
        .arg("--data")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("another package"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Enrollment: the vm registers the key the edge made, with its age recipient.
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for(
        "the edge online under its own key",
        WAIT,
        &[&vm_log, &edge_log],
        || {
            vm.devices()
                .first()
                .is_some_and(|d| d["peer_id"] == edge_peer.as_str() && d["online"] == true)
        },
    );
    let devices = vm.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["age_recipient"], age_recipient.as_str());
    assert_ne!(devices[0]["peer_id"], enrollment_peer.as_str());
    wait_for(
        "the edge's status to say enrolled",
        WAIT,
        &[&edge_log],
        || field(&edge.status(), "enrolled:") == format!("yes, device {edge_peer}"),
    );

    // A manifest the edge signs verifies against the registered key, not the enrollment
    // identity's.
    let clip = root.path().join("clip.mp4");
    std::fs::write(&clip, pseudo_random(20_000, 0x15)).unwrap();
    let (_, cid) = archive_file(&edge, "porch", &clip, None);
    let url = format!("{}/api/v1/archive/{cid}/manifest", vm.http);
    let fetch_manifest = || {
        ureq::get(&url)
            .set("Authorization", &format!("Bearer {}", vm.token))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
    };
    wait_for(
        "the manifest at the vm",
        WAIT,
        &[&vm_log, &edge_log],
        || fetch_manifest().is_some(),
    );
    let manifest = root.path().join("manifest.json");
    std::fs::write(&manifest, fetch_manifest().unwrap()).unwrap();
    let verify = |key: &str| {
        Command::new(bin("guardian"))
            .arg("verify")
            .arg(&manifest)
            .args(["--edge-key", key])
            .output()
            .unwrap()
    };
    let registered = devices[0]["peer_id"].as_str().unwrap();
    let good = verify(registered);
    assert!(
        good.status.success() && String::from_utf8_lossy(&good.stdout).starts_with("ok:"),
        "{good:?}"
    );
    assert!(!verify(&enrollment_peer).status.success());
}

#[test]
fn a_lost_enrollment_answer_is_answered_again_after_a_vm_restart() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let (pkg, _) = package(&vm, "home");
    let mut edge = Edge::install(&pkg, &root.path().join("edge"));
    let edge_peer = edge.peer_id();
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for("the edge online", WAIT, &[&vm_log, &edge_log], || {
        vm.devices()
            .first()
            .is_some_and(|d| d["peer_id"] == edge_peer.as_str() && d["online"] == true)
    });
    assert_eq!(edge.stop(), Some(0));
    // The answer lost: the edge forgets it enrolled (as if the vm's answer never arrived), and
    // the vm restarts, so its gate knows only what its database allows.
    {
        let db = rusqlite::Connection::open(edge.dir.join("edge.sqlite")).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        let n = db
            .execute("DELETE FROM state WHERE key = 'device_config'", [])
            .unwrap();
        assert_eq!(n, 1);
    }
    assert!(field(&edge.status(), "enrolled:").starts_with("not yet"));
    assert_eq!(vm.stop(), Some(0));
    vm.start();
    edge.start();
    let id = edge.emit("porch");
    wait_for(
        "the edge enrolled again and its event delivered",
        WAIT,
        &[&vm_log, &edge_log],
        || vm.event_ids() == [id.clone()],
    );
    assert_eq!(
        field(&edge.status(), "enrolled:"),
        format!("yes, device {edge_peer}")
    );
    let devices = vm.devices();
    assert_eq!(devices.len(), 1, "one registration: {devices:?}");
    assert_eq!(devices[0]["peer_id"], edge_peer.as_str());
    // This run of the vm answered the enrollment (accepted, not refused).
    let metrics = vm.metrics();
    assert!(
        metric(
            &metrics,
            "guardian_vm_enrollments_total{result=\"accepted\"}"
        ) >= Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "guardian_vm_enrollments_total{result=\"refused\"}"
        )
        .unwrap_or(0.0),
        0.0,
        "{metrics}"
    );
}
