//! The `guardian` CLI driven as a user would: CIDs checked against an independent
//! computation, the refusal cases (wrong secret, corrupt, truncated) leaving no output file,
//! and manifest verification with tampering.

mod common;
use common::*;

use ed25519_dalek::SigningKey;
use protocols::manifest::{FORMAT, Label, Manifest, ObjectKind, ObjectRef};
use protocols::signed::peer_id_of;

/// Computes the CID the long way: `sha256sum` for the digest, then the CIDv1 bytes and base32
/// by hand (no `cid` or `multihash` crate involved).
fn independent_cid(path: &std::path::Path) -> String {
    let out = ok(tool("sha256sum").arg(path));
    let hex = out.split_whitespace().next().unwrap();
    let mut bytes = vec![0x01, 0x55, 0x12, 0x20];
    bytes.extend(data_encoding::HEXLOWER.decode(hex.as_bytes()).unwrap());
    format!(
        "b{}",
        data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
    )
}

#[test]
fn cid_and_seal_print_the_independent_cid() {
    let f = Fixture::new();
    let (recipient, _) = f.recipient();
    let plain = f.plaintext("p", 200_000);
    let sealed = f.path("p.age");
    let printed = ok(guardian()
        .args(["seal", "-r", &recipient])
        .arg(&plain)
        .arg("-o")
        .arg(&sealed));
    assert_eq!(printed.trim(), independent_cid(&sealed));
    assert_eq!(
        ok(guardian().arg("cid").arg(&sealed)).trim(),
        independent_cid(&sealed)
    );
    assert_eq!(
        ok(guardian().arg("cid").arg(&plain)).trim(),
        independent_cid(&plain)
    );
}

#[test]
fn keys_are_the_same_on_every_run_and_differ_by_tenant() {
    let f = Fixture::new();
    let (a, ka) = f.recipient();
    let (b, kb) = f.recipient();
    assert_eq!((&a, &ka), (&b, &kb));
    let other = ok(guardian()
        .args([
            "keys",
            "init",
            "--tenant",
            "another-tenant",
            "--secret-file",
        ])
        .arg(f.path("secret")));
    assert!(!other.contains(&a));
}

fn sealed_fixture() -> (Fixture, std::path::PathBuf, std::path::PathBuf) {
    let f = Fixture::new();
    let (recipient, _) = f.recipient();
    let plain = f.plaintext("p", 200_000);
    let sealed = f.path("p.age");
    ok(guardian()
        .args(["seal", "-r", &recipient])
        .arg(&plain)
        .arg("-o")
        .arg(&sealed));
    (f, plain, sealed)
}

#[test]
fn wrong_secret_fails_cleanly() {
    let (f, _, sealed) = sealed_fixture();
    std::fs::write(f.path("wrong"), "not the secret").unwrap();
    let out = f.path("out");
    let err = fails(
        guardian()
            .args(["open", "--tenant", TENANT, "--secret-file"])
            .arg(f.path("wrong"))
            .arg(&sealed)
            .arg("-o")
            .arg(&out),
    );
    assert!(err.contains("wrong secret"), "{err}");
    assert!(!out.exists());
    // The wrong tenant with the right secret is the same failure.
    let err = fails(
        guardian()
            .args(["open", "--tenant", "other", "--secret-file"])
            .arg(f.path("secret"))
            .arg(&sealed)
            .arg("-o")
            .arg(&out),
    );
    assert!(err.contains("wrong secret"), "{err}");
    assert!(!out.exists());
}

#[test]
fn corrupt_and_truncated_input_fail_cleanly_and_leave_nothing() {
    let (f, _, sealed) = sealed_fixture();
    let bytes = std::fs::read(&sealed).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "flipped",
            {
                let mut b = bytes.clone();
                let i = b.len() / 2;
                b[i] ^= 0x40;
                b
            },
            "corrupt",
        ),
        (
            "truncated",
            bytes[..bytes.len() - 1000].to_vec(),
            "corrupt or truncated",
        ),
        ("header-only", bytes[..40].to_vec(), "not a valid age file"),
        (
            "garbage",
            b"this is not age".to_vec(),
            "not a valid age file",
        ),
    ];
    for (name, content, expect) in cases {
        let input = f.path(name);
        std::fs::write(&input, content).unwrap();
        let out = f.path(&format!("{name}.out"));
        let err = fails(
            f.key_args(guardian().arg("open"))
                .arg(&input)
                .arg("-o")
                .arg(&out),
        );
        assert!(err.contains(expect), "{name}: {err}");
        assert!(!out.exists(), "{name}: output left behind");
    }
    // Nothing temporary left either.
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".guardian-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_arguments_are_one_clear_line() {
    let f = Fixture::new();
    let plain = f.plaintext("p", 10);
    let out = f.path("o");
    let err = fails(
        guardian()
            .args(["seal", "-r", "age1notarecipient"])
            .arg(&plain)
            .arg("-o")
            .arg(&out),
    );
    assert!(err.contains("not an age X25519 recipient"), "{err}");
    assert!(!out.exists());
    let err = fails(guardian().arg("cid").arg(f.path("missing")));
    assert!(err.contains("cannot open"), "{err}");
    std::fs::write(f.path("empty-secret"), "\n").unwrap();
    let err = fails(
        guardian()
            .args(["keys", "init", "--tenant", TENANT, "--secret-file"])
            .arg(f.path("empty-secret")),
    );
    assert!(err.contains("empty"), "{err}");
    // No secret file and no terminal: a clear refusal rather than a hang.
    let err = fails(guardian().args(["keys", "identity", "--tenant", TENANT]));
    assert!(err.contains("--secret-file"), "{err}");
}

/// An edge's manifest over two sealed objects, written as the archive stores them.
fn manifest_fixture() -> (Fixture, SigningKey) {
    let f = Fixture::new();
    let (recipient, key_id) = f.recipient();
    let edge = SigningKey::from_bytes(&[42u8; 32]);
    let mut objects = Vec::new();
    for (kind, len) in [(ObjectKind::Clip, 150_000), (ObjectKind::Snapshot, 20_000)] {
        let plain = f.plaintext(&format!("{kind}.plain"), len);
        let sealed = f.path(kind.file_name());
        let cid = ok(guardian()
            .args(["seal", "-r", &recipient])
            .arg(&plain)
            .arg("-o")
            .arg(&sealed));
        objects.push(ObjectRef {
            cid: cid.trim().parse().unwrap(),
            kind,
            size: std::fs::metadata(&sealed).unwrap().len(),
        });
    }
    let mut m = Manifest {
        camera_id: "front-door".into(),
        edge_id: peer_id_of(&edge.verifying_key()),
        ended_at_ms: 1_790_000_015_000,
        event_id: "ev-1".into(),
        format: FORMAT.into(),
        key_ids: vec![key_id],
        labels: vec![Label {
            category: "person".into(),
            score_milli: 812,
        }],
        objects,
        sealed_at_ms: 1_790_000_016_000,
        signature: None,
        started_at_ms: 1_790_000_000_000,
        tenant_id: TENANT.into(),
        truncated: false,
    };
    m.sign(&edge);
    std::fs::write(f.path("manifest.json"), m.to_json()).unwrap();
    (f, edge)
}

#[test]
fn verify_accepts_the_edge_manifest_and_its_objects() {
    let (f, edge) = manifest_fixture();
    let peer = peer_id_of(&edge.verifying_key());
    let out = ok(guardian()
        .arg("verify")
        .arg(f.path("manifest.json"))
        .args(["--edge-key", &peer])
        .arg(f.path("clip.mp4.age"))
        .arg(f.path("snapshot.jpg.age")));
    assert!(out.starts_with("ok:"), "{out}");
    assert_eq!(out.matches("verified").count(), 2, "{out}");
    // The key as hex, from a file.
    std::fs::write(
        f.path("edge.pub"),
        data_encoding::HEXLOWER.encode(edge.verifying_key().as_bytes()),
    )
    .unwrap();
    ok(guardian()
        .arg("verify")
        .arg(f.path("manifest.json"))
        .arg("--edge-key")
        .arg(f.path("edge.pub")));
}

#[test]
fn verify_names_what_did_not_match() {
    let (f, edge) = manifest_fixture();
    let peer = peer_id_of(&edge.verifying_key());
    let verify = |manifest: &std::path::Path, key: &str, objects: &[std::path::PathBuf]| {
        fails(
            guardian()
                .arg("verify")
                .arg(manifest)
                .args(["--edge-key", key])
                .args(objects),
        )
    };

    // A field changed after signing.
    let json = std::fs::read_to_string(f.path("manifest.json")).unwrap();
    let tampered = f.path("tampered.json");
    std::fs::write(&tampered, json.replace("front-door", "back-door")).unwrap();
    let err = verify(&tampered, &peer, &[]);
    assert!(err.contains("signature does not verify"), "{err}");

    // Another edge's key.
    let other = peer_id_of(&SigningKey::from_bytes(&[43u8; 32]).verifying_key());
    let err = verify(&f.path("manifest.json"), &other, &[]);
    assert!(err.contains("signature does not verify"), "{err}");

    // One flipped byte in the sealed clip.
    let clip = f.path("clip.mp4.age");
    let mut bytes = std::fs::read(&clip).unwrap();
    bytes[1000] ^= 1;
    let bad_clip = f.path("clip-flipped.age");
    std::fs::write(&bad_clip, &bytes).unwrap();
    let err = verify(&f.path("manifest.json"), &peer, &[bad_clip]);
    assert!(err.contains("clip object: CID mismatch"), "{err}");

    // The snapshot given in the clip's place.
    let err = fails(
        guardian()
            .arg("verify")
            .arg(f.path("manifest.json"))
            .args(["--edge-key", &peer])
            .arg(format!("clip={}", f.path("snapshot.jpg.age").display())),
    );
    assert!(err.contains("clip object: CID mismatch"), "{err}");

    // Not a manifest.
    let err = verify(&f.path("secret"), &peer, &[]);
    assert!(err.contains("not a valid manifest"), "{err}");
}
