//! Interoperability with stock `age` (Debian's package): everything `guardian` seals opens
//! with `age -d -i`, everything `age -r` seals opens with `guardian open`, and the derived
//! identity is one `age-keygen -y` agrees with.

mod common;
use common::*;

#[test]
fn derived_identity_matches_age_keygen() {
    let f = Fixture::new();
    let (recipient, key_id) = f.recipient();
    assert!(recipient.starts_with("age1"), "{recipient}");
    assert!(key_id.starts_with('k'), "{key_id}");
    let id = f.identity_file();
    let from_age = ok(tool("age-keygen").arg("-y").arg(&id));
    assert_eq!(from_age.trim(), recipient);
}

#[test]
fn guardian_seals_age_opens() {
    let f = Fixture::new();
    let (recipient, _) = f.recipient();
    let id = f.identity_file();
    for (name, len) in [
        ("empty", 0),
        ("small", 1000),
        ("chunks", 64 * 1024 * 3 + 17),
    ] {
        let plain = f.plaintext(name, len);
        let sealed = f.path(&format!("{name}.age"));
        let cid = ok(guardian()
            .args(["seal", "--recipient", &recipient])
            .arg(&plain)
            .arg("-o")
            .arg(&sealed));
        assert!(cid.trim().starts_with("bafkrei"), "{cid}");
        // To stdout: stock age creates no output file for an empty plaintext.
        let out = run(tool("age").arg("-d").arg("-i").arg(&id).arg(&sealed));
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, std::fs::read(&plain).unwrap(), "{name}");
    }
}

#[test]
fn age_seals_guardian_opens() {
    let f = Fixture::new();
    let (recipient, _) = f.recipient();
    let plain = f.plaintext("clip.mp4", 300_000);
    let sealed = f.path("clip.mp4.age");
    ok(tool("age")
        .args(["-r", &recipient, "-o"])
        .arg(&sealed)
        .arg(&plain));
    let opened = f.path("clip.out");
    ok(f.key_args(guardian().arg("open"))
        .arg(&sealed)
        .arg("-o")
        .arg(&opened));
    assert!(same_file(&plain, &opened));
}

#[test]
fn several_recipients_including_a_stock_age_key() {
    let f = Fixture::new();
    let (owner, _) = f.recipient();
    let other_id = f.path("other.txt");
    ok(tool("age-keygen").arg("-o").arg(&other_id));
    let other = ok(tool("age-keygen").arg("-y").arg(&other_id));
    let plain = f.plaintext("p", 5000);
    let sealed = f.path("p.age");
    ok(guardian()
        .args(["seal", "-r", &owner, "-r", other.trim()])
        .arg(&plain)
        .arg("-o")
        .arg(&sealed));
    let by_other = f.path("by-other");
    ok(tool("age")
        .arg("-d")
        .arg("-i")
        .arg(&other_id)
        .arg("-o")
        .arg(&by_other)
        .arg(&sealed));
    assert!(same_file(&plain, &by_other));
    let by_owner = f.path("by-owner");
    ok(f.key_args(guardian().arg("open"))
        .arg(&sealed)
        .arg("-o")
        .arg(&by_owner));
    assert!(same_file(&plain, &by_owner));
}
