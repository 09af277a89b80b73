//! Household key slots signed by the owner (issue 15), with the release binaries: the edge
//! prints the owner signing key's fingerprint that `guardian keys init` prints; a member added
//! with `guardian keys slots add` opens the clips sealed after the edge applied the list, and
//! not the clips sealed after `remove`; the vm refuses an upload the owner did not sign or an
//! old version; and when the vm itself is made to forward a list signed by another key, or an
//! older list (a compromised vm, simulated by writing its database), the edge refuses it,
//! says why in its log, keeps the list it runs, and the vm shows the refusal.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use protocols::key_slots::{Cameras, KeySlot, KeySlotList};
use protocols::signed::Signed;
use support::*;

const WAIT: Duration = Duration::from_secs(40);

fn slots(vm: &Vm, owner: &Owner, args: &[&str]) -> std::process::Output {
    let mut words = vec!["keys", "slots"];
    words.extend_from_slice(args);
    owner_command(vm, owner, &words).output().unwrap()
}

/// Whether `identity` opens the sealed file at `path` (stock `age -d`).
fn opens(identity: &Path, path: &Path) -> bool {
    Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(path)
        .output()
        .unwrap()
        .status
        .success()
}

/// The first edge's entry in `GET /api/v1/key-slots`.
fn edge_entry(vm: &Vm) -> serde_json::Value {
    let (status, body) = vm.get("/api/v1/key-slots");
    assert_eq!(status, 200, "{body}");
    body["edges"][0].clone()
}

/// Writes a list straight into the stopped vm's database, as a compromised vm would forward.
fn plant(vm: &Vm, list: &Signed<KeySlotList>, replace: bool) {
    let db = rusqlite::Connection::open(vm.dir.join("vm.sqlite")).unwrap();
    if replace {
        db.execute("DELETE FROM key_slot_lists", []).unwrap();
    }
    let version = list.peek().unwrap().version;
    db.execute(
        "INSERT INTO key_slot_lists (version, body, signature, uploaded_at_ms) VALUES (?1, ?2, ?3, 0)",
        rusqlite::params![version as i64, list.body, list.signature],
    )
    .unwrap();
}

#[test]
fn members_open_what_the_owner_signed_them_in_for_and_forged_lists_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    let owner = owner(root.path(), &vm.tenant_id, "owner passphrase for key slots");
    let member = person(
        root.path(),
        "alice",
        &vm.tenant_id,
        "alice's own passphrase",
    );
    assert_ne!(member.recipient, owner.recipient);
    vm.start();
    let mut edge = Edge::install(
        &vm.package_signed("home", &owner.recipient, Some(&owner.signing_key), None),
        &root.path().join("edge"),
    );
    // The owner compares the fingerprint the edge prints with their own.
    let status = edge.status();
    assert!(
        status.contains(&format!(
            "owner signing key fingerprint: {}",
            owner.signing_fingerprint
        )),
        "{status}"
    );
    assert!(status.contains("key slots: none applied"), "{status}");
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for("the edge enrolled", WAIT, &[&vm_log, &edge_log], || {
        vm.get("/api/v1/devices").1["devices"][0]["online"] == true
    });

    // Version 1: alice, every camera.
    let out = slots(
        &vm,
        &owner,
        &["add", "--name", "alice", "--recipient", &member.recipient],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the edge to apply version 1",
        WAIT,
        &[&vm_log, &edge_log],
        || {
            let e = edge_entry(&vm);
            e["state"] == "applied" && e["applied_version"] == 1
        },
    );
    let listed = slots(&vm, &owner, &["list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("key-slot list version 1"), "{text}");
    assert!(
        text.contains(&format!("slot alice  {}", member.recipient)),
        "{text}"
    );
    assert!(text.contains("applied, applied version 1"), "{text}");
    assert!(edge.status().contains("key slots: version 1, alice"));

    let clip = root.path().join("clip.mp4");
    std::fs::write(&clip, pseudo_random(100_000, 0x51)).unwrap();
    let sealed_path = |event: &str| {
        let path = root.path().join(format!("{event}.age"));
        std::fs::write(&path, edge.sealed_clip(event)).unwrap();
        path
    };
    let with_alice = edge.import_clip("porch", &clip, false);
    let p = sealed_path(&with_alice);
    assert!(
        opens(&member.identity_file, &p),
        "alice opens a clip sealed while she is in"
    );
    assert!(opens(&owner.identity_file, &p));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            edge.dir
                .join("clips/porch")
                .join(&with_alice)
                .join("manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["key_ids"].as_array().unwrap().len(), 2);

    // Version 2: alice removed; what is sealed after is not hers to open.
    let out = slots(&vm, &owner, &["remove", "--name", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the edge to apply version 2",
        WAIT,
        &[&vm_log, &edge_log],
        || edge_entry(&vm)["applied_version"] == 2,
    );
    let after = edge.import_clip("porch", &clip, false);
    let p = sealed_path(&after);
    assert!(
        !opens(&member.identity_file, &p),
        "a removed member opens nothing new"
    );
    assert!(opens(&owner.identity_file, &p));
    // What she could open before, she still can (the removal is for new clips).
    assert!(opens(&member.identity_file, &sealed_path(&with_alice)));

    // The vm refuses a list signed by another key, and an old version.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    let forged = Signed::sign(
        &KeySlotList {
            tenant_id: vm.tenant_id.clone(),
            version: 3,
            slots: vec![KeySlot {
                name: "intruder".into(),
                recipient: member.recipient.clone(),
                cameras: Cameras::All,
                added_at_ms: 1,
            }],
            signed_at_ms: 1,
        },
        &stranger,
    );
    let put = |s: &Signed<KeySlotList>| {
        let body = serde_json::json!({
            "body": data_encoding::BASE64.encode(&s.body),
            "signature": data_encoding::BASE64.encode(&s.signature),
        });
        match ureq::put(&format!("{}/api/v1/key-slots", vm.http))
            .set("Authorization", &format!("Bearer {}", vm.token))
            .send_json(body)
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(c, _)) => c,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(put(&forged), 400);
    let (_, body) = vm.get("/api/v1/key-slots");
    let v1 = Signed::<KeySlotList>::from_parts(
        data_encoding::BASE64
            .decode(body["signed"]["body"].as_str().unwrap().as_bytes())
            .unwrap(),
        data_encoding::BASE64
            .decode(body["signed"]["signature"].as_str().unwrap().as_bytes())
            .unwrap(),
    );
    assert_eq!(v1.peek().unwrap().version, 2);
    assert_eq!(put(&v1), 409, "the same version again");

    // A compromised vm forwards the forged list: the edge refuses it and keeps version 2.
    let refused = |vm: &mut Vm, list: &Signed<KeySlotList>, replace: bool, why: &str| {
        let offered = list.peek().unwrap().version;
        vm.stop();
        plant(vm, list, replace);
        vm.start();
        wait_for(
            &format!("the edge to refuse version {offered}"),
            WAIT,
            &[&vm_log, &edge_log],
            || {
                let e = edge_entry(vm);
                e["state"] == "refused" && e["offered_version"] == offered
            },
        );
        let e = edge_entry(vm);
        assert_eq!(e["applied_version"], 2);
        assert!(e["reason"].as_str().unwrap().contains(why), "{e}");
        let p = sealed_path(&edge.import_clip("porch", &clip, false));
        assert!(
            !opens(&member.identity_file, &p),
            "the refused list seals nothing to alice"
        );
    };
    refused(
        &mut vm,
        &forged,
        false,
        "not signed by the owner's signing key",
    );

    // And replays the owner's own version 1 (alice in): refused as a rollback.
    let first = {
        let db = rusqlite::Connection::open(vm.dir.join("vm.sqlite")).unwrap();
        let (body, sig): (Vec<u8>, Vec<u8>) = db
            .query_row(
                "SELECT body, signature FROM key_slot_lists WHERE version = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        Signed::<KeySlotList>::from_parts(body, sig)
    };
    refused(&mut vm, &first, true, "older than the applied version 2");
    // The edge logged each refusal with its reason.
    edge.stop();
    let log = std::fs::read_to_string(edge.log()).unwrap();
    assert!(log.contains("key-slot list refused"), "{log}");
    assert!(log.contains("older than the applied version 2"));
}
