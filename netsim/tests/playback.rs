//! Remote playback through NATs with the real binaries: the owner's `guardian play` on a host
//! behind one NAT, the clip on an edge behind another, the vm public.
//!
//! - a camera clip (the stand-in, the real detector) plays byte-identical, relayed first;
//! - a larger clip on a 20 Mbit/s uplink moves from the relay to a direct connection (DCUtR)
//!   mid-stream, and a 15 s cut of the edge's uplink mid-stream is resumed byte-identically;
//! - between two symmetric NATs (no hole punching) the relay carries everything, and the
//!   vm's HTTP clip path (for clients without libp2p) serves whole files and ranges;
//! - expired, forged, replayed and other-event tokens are refused with their reason, and an
//!   offline edge is a quick, clear error.

use std::time::{Duration, Instant};

use guardian_netsim::guardian::wait_for;
use guardian_netsim::playback::{Client, PlaybackLab, StandIn};
use guardian_netsim::scenario::pseudo_random;
use guardian_netsim::{Impairment, NatProfile};
use protocols::messages::clips::{decode_token, encode_token};
use protocols::signed::Signed;

/// A home uplink: `mbit` Mbit/s, 20 ms each way.
fn uplink(mbit: u32) -> Impairment {
    Impairment {
        delay: Duration::from_millis(20),
        rate_kbit: Some(mbit * 1000),
        ..Default::default()
    }
}

#[test]
fn an_owner_behind_one_nat_plays_a_camera_clip_from_an_edge_behind_another() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let t = Instant::now();
    let mut pl = PlaybackLab::new(
        NatProfile::PortRestrictedCone,
        NatProfile::PortRestrictedCone,
        Some(uplink(10)),
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let camera = StandIn::start(&pl.lab, &pl.edge.host, "empty:6,person:4,empty:60")
        .unwrap_or_else(|e| panic!("{e}"));
    pl.edge.add_camera("porch", &camera.url).unwrap();
    let mut events = Vec::new();
    wait_for(
        "a person event of the porch camera at the vm",
        Duration::from_secs(120),
        || {
            events = pl.camera_events("porch").unwrap_or_default();
            !events.is_empty()
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", pl.edge.log_tail(40)));
    let event = events[0].clone();

    let run = pl.play(&event, &[], "porch.mp4").unwrap();
    let report = run.ok().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("camera clip: {report:?}");
    let played = std::fs::read(pl.lab.path("porch.mp4")).unwrap();
    let recorded = guardian_netsim::guardian::open_sealed(
        &std::fs::read(pl.edge_clip("porch", &event)).unwrap(),
    );
    assert!(
        recorded.len() > 100_000,
        "a real clip: {} bytes",
        recorded.len()
    );
    assert!(
        played == recorded,
        "the played clip differs from the edge's"
    );
    assert_eq!(&played[4..8], b"ftyp", "an MP4");
    assert!(
        report.relayed,
        "the first stream goes through the vm's relay"
    );
    // The stream carries the sealed clip: its bytes are counted.
    let sealed_len = std::fs::metadata(pl.edge_clip("porch", &event))
        .unwrap()
        .len();
    assert_eq!(report.relayed_bytes + report.direct_bytes, sealed_len);
    assert!(
        report.first_byte_ms < 3000,
        "first byte after {} ms",
        report.first_byte_ms
    );
    assert_eq!(report.resumes, 0);
    eprintln!("camera playback: {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn the_stream_moves_to_direct_and_a_cut_mid_stream_resumes_byte_identical() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let t = Instant::now();
    let mut pl = PlaybackLab::new(
        NatProfile::PortRestrictedCone,
        NatProfile::RestrictedCone,
        Some(uplink(20)),
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let clip = pseudo_random(16 << 20, 3);
    let (event, _) = pl.import("yard", &clip).unwrap();

    // Relayed first, then direct once DCUtR punched through both NATs.
    let report = pl
        .play(&event, &[], "first.bin")
        .unwrap()
        .ok()
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("relayed then direct: {report:?}");
    assert!(std::fs::read(pl.lab.path("first.bin")).unwrap() == clip);
    assert!(report.relayed, "{report:?}");
    assert!(report.switched_to_direct, "{report:?}");
    assert!(
        report.direct_bytes > report.relayed_bytes,
        "most of 16 MiB at 20 Mbit/s goes direct: {report:?}"
    );
    let sealed_len = std::fs::metadata(pl.edge_clip("yard", &event))
        .unwrap()
        .len();
    assert_eq!(report.relayed_bytes + report.direct_bytes, sealed_len);

    // The edge's uplink goes dead for 15 s mid-stream (longer than the client's 10 s read
    // timeout): the client resumes from its offset with a new token.
    let out_dir = pl.lab.path("cut");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("cut.bin");
    let started = Instant::now();
    let mut p = pl
        .client
        .spawn_play(&pl.lab, &pl.vm, &event, &[], &out)
        .unwrap();
    let part_len = || {
        std::fs::read_dir(&out_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0)
    };
    wait_for("4 MiB played", Duration::from_secs(30), || {
        part_len() >= 4 << 20
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", p.log_tail(20)));
    pl.lab.cut(&pl.edge.host.link).unwrap();
    let at_cut = part_len();
    std::thread::sleep(Duration::from_secs(15));
    pl.lab.restore(&pl.edge.host.link).unwrap();
    let run = Client::finish(&mut p, started, Duration::from_secs(120)).unwrap();
    let report = run.ok().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("cut at {at_cut} bytes: {report:?}");
    assert!(at_cut < clip.len() as u64, "cut mid-stream");
    assert!(report.resumes >= 1, "{report:?}");
    assert!(
        std::fs::read(&out).unwrap() == clip,
        "the resumed clip differs"
    );
    eprintln!("direct and cut: {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn between_symmetric_nats_the_relay_carries_it_and_http_serves_ranges() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let mut pl = PlaybackLab::new(NatProfile::Symmetric, NatProfile::Symmetric, None, false)
        .unwrap_or_else(|e| panic!("{e}"));
    let clip = pseudo_random(4 << 20, 5);
    let (event, _) = pl.import("garage", &clip).unwrap();
    let report = pl
        .play(&event, &[], "sym.bin")
        .unwrap()
        .ok()
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("symmetric: {report:?}");
    assert!(std::fs::read(pl.lab.path("sym.bin")).unwrap() == clip);
    assert!(report.relayed && !report.switched_to_direct, "{report:?}");
    let sealed_len = std::fs::metadata(pl.edge_clip("garage", &event))
        .unwrap()
        .len();
    assert_eq!(report.relayed_bytes, sealed_len);
    assert_eq!(report.direct_bytes, 0);

    // The same clip over plain HTTP from the client's host: whole, then a range.
    let url = format!("{}/api/v1/events/{event}/clip", pl.vm.url());
    let auth = format!("Bearer {}", pl.vm.token);
    let (whole, range) = pl
        .lab
        .run_in(&pl.client.host, move || {
            let get = |range: Option<&str>| {
                let mut r = ureq::get(&url)
                    .set("Authorization", &auth)
                    .timeout(Duration::from_secs(60));
                if let Some(range) = range {
                    r = r.set("Range", range);
                }
                let r = r.call().expect("the vm serves the clip");
                let status = r.status();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
                (status, body)
            };
            (get(None), get(Some("bytes=1000000-1000999")))
        })
        .unwrap();
    // The vm relays the sealed object only: the edge's age file, which the owner opens.
    assert_eq!(whole.0, 200);
    let sealed = std::fs::read(pl.edge_clip("garage", &event)).unwrap();
    assert!(
        whole.1 == sealed,
        "HTTP body differs ({} bytes)",
        whole.1.len()
    );
    assert!(guardian_netsim::guardian::open_sealed(&whole.1) == clip);
    assert_eq!(range.0, 206);
    assert_eq!(range.1, sealed[1_000_000..1_001_000]);
}

#[test]
fn bad_tokens_are_refused_with_their_reason_and_an_offline_edge_is_a_clear_error() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let mut pl = PlaybackLab::new(
        NatProfile::PortRestrictedCone,
        NatProfile::FullCone,
        None,
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let clip = pseudo_random(256 << 10, 9);
    let (a, _) = pl.import("hall", &clip).unwrap();
    let (b, _) = pl.import("hall", &clip).unwrap();
    let tenant_key = guardian_node::identity::read_key(&pl.vm.dir.join("tenant.key")).unwrap();
    let minted = pl.vm.mint_play_token(&pl.lab, &a).unwrap();
    let template = decode_token(&minted).unwrap().peek().unwrap();
    let craft = |key: &ed25519_dalek::SigningKey, expires_at_ms: u64, nonce: &str| {
        let mut t = template.clone();
        t.expires_at_ms = expires_at_ms;
        t.nonce = nonce.into();
        encode_token(&Signed::sign(&t, key))
    };
    let now = protocols::now_ms();
    let forger = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let cases = [
        (
            "forged",
            a.clone(),
            craft(&forger, now + 60_000, "forged-1"),
            "not signed by this tenant".to_owned(),
        ),
        (
            "expired",
            a.clone(),
            craft(&tenant_key, now - 1_000, "expired-1"),
            "expired".to_owned(),
        ),
        (
            "other event",
            b.clone(),
            pl.vm.mint_play_token(&pl.lab, &a).unwrap(),
            format!("is for event {a}, not {b}"),
        ),
    ];
    for (name, event, token, reason) in &cases {
        let run = pl
            .play(
                event,
                &["--play-token", token],
                &format!("{}.bin", name.replace(' ', "-")),
            )
            .unwrap();
        eprintln!("{name}: exit {} in {:?}", run.code, run.elapsed);
        assert_ne!(run.code, 0, "{name} token played");
        assert!(
            run.stderr.contains("the edge refused playback")
                && run.stderr.contains(reason.as_str()),
            "{name}: {}",
            run.stderr
        );
        assert!(
            !pl.lab
                .path(&format!("{}.bin", name.replace(' ', "-")))
                .exists()
        );
    }

    // A token plays once; the same token again is a replay.
    let report = pl
        .play(&a, &["--play-token", &minted], "once.bin")
        .unwrap()
        .ok()
        .unwrap_or_else(|e| panic!("{e}"));
    // (The stream carries the sealed clip: its bytes are counted.)
    let sealed = std::fs::metadata(pl.edge_clip("hall", &a)).unwrap().len();
    assert_eq!(report.bytes, sealed);
    assert!(std::fs::read(pl.lab.path("once.bin")).unwrap() == clip);
    let run = pl
        .play(&a, &["--play-token", &minted], "twice.bin")
        .unwrap();
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("already used"), "{}", run.stderr);

    // The edge goes offline: the vm says so, at once.
    pl.edge.stop();
    let name = pl.edge.host.name.clone();
    wait_for(
        "the vm to see the edge offline",
        Duration::from_secs(30),
        || {
            pl.vm.devices(&pl.lab).is_ok_and(|d| {
                d.iter()
                    .any(|d| d["name"] == name.as_str() && d["online"] == false)
            })
        },
    )
    .unwrap();
    let run = pl.play(&a, &[], "offline.bin").unwrap();
    eprintln!(
        "offline: exit {} in {:?}: {}",
        run.code,
        run.elapsed,
        run.stderr.trim()
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("offline"), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}
