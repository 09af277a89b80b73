//! Remote playback on loopback with real processes: a vm, an edge holding a clip, and
//! `guardian play` (its own libp2p node, through the vm's relay or direct), plus the vm's HTTP
//! clip path. Byte-identical playback to a file and to stdout; expired, forged, replayed and
//! other-event tokens refused with their typed reason; an offline edge is a quick, clear
//! error; a kill -9 of the edge mid-stream is resumed byte-identically; HTTP ranges.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocols::messages::clips::{PlaybackToken, encode_token};
use protocols::signed::Signed;
use support::*;

/// A vm and an enrolled, connected edge.
struct Setup {
    _root: tempfile::TempDir,
    root: PathBuf,
    vm: Vm,
    edge: Edge,
    edge_peer_id: String,
    /// A small clip on the edge, played over the relay to know the edge is reachable.
    probe: (String, Vec<u8>),
}

/// A vm (with `token_secs` if given) and an installed edge holding the probe clip, not
/// started.
fn setup(token_secs: Option<u64>) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    if let Some(secs) = token_secs {
        vm.edit_config(|c| {
            assert_eq!(c.playback.token_secs, 300, "the default");
            c.playback.token_secs = secs;
        });
    }
    vm.start();
    let edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    let edge_peer_id = edge.peer_id();
    let mut s = Setup {
        root: root.path().to_path_buf(),
        _root: root,
        vm,
        edge,
        edge_peer_id,
        probe: (String::new(), Vec::new()),
    };
    let probe = pseudo_random(1000, 0x9e0be);
    s.probe = (s.add_event("probe", &probe), probe);
    s
}

impl Setup {
    /// Records an event on the edge whose clip holds `bytes` (`guardian-edge import-clip`);
    /// its id.
    fn add_event(&self, name: &str, bytes: &[u8]) -> String {
        let file = self.root.join(format!("{name}.src"));
        std::fs::write(&file, bytes).unwrap();
        let id = self.edge.import_clip("front-door", &file, false);
        std::fs::remove_file(&file).unwrap();
        id
    }

    /// Starts the edge and waits until the vm has `events` and the probe clip plays through
    /// the vm's relay (the edge holds its reservation).
    fn start_edge(&mut self, events: &[&str]) {
        self.edge.start();
        let (vm_log, edge_log) = (self.vm.log(), self.edge.log());
        let probe = self.probe.0.clone();
        wait_for(
            "the events on the vm and the probe clip played through the relay",
            Duration::from_secs(30),
            &[&vm_log, &edge_log],
            || {
                let ids = self.vm.event_ids();
                if !events
                    .iter()
                    .chain([&probe.as_str()])
                    .all(|e| ids.iter().any(|i| i == e))
                {
                    return false;
                }
                let o = self.play(
                    &probe,
                    &[
                        "-o",
                        "-",
                        "--relay-only",
                        "--retries",
                        "0",
                        "--connect-timeout",
                        "5",
                    ],
                );
                o.status.success() && o.stdout == self.probe.1
            },
        );
    }

    /// `guardian play` of `event`, decrypting with the owner's identity unless `--sealed` is
    /// among `args`.
    fn play(&self, event: &str, args: &[&str]) -> std::process::Output {
        let identity = self.root.join("identity.txt");
        if !identity.exists() {
            std::fs::write(&identity, format!("{IDENTITY}\n")).unwrap();
        }
        let mut cmd = Command::new(bin("guardian"));
        cmd.args(["play", "--vm", &self.vm.http, "--token", &self.vm.token]);
        if !args.contains(&"--sealed") {
            cmd.arg("--identity-file").arg(&identity);
        }
        cmd.args(args)
            .arg(event)
            .env("GUARDIAN_LOG", "warn,libp2p=error")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A token for `event` minted by the vm (`POST /play`).
    fn mint(&self, event: &str) -> String {
        let r = ureq::post(&format!("{}/api/v1/events/{event}/play", self.vm.http))
            .set("Authorization", &format!("Bearer {}", self.vm.token))
            .call()
            .unwrap();
        let v: serde_json::Value = r.into_json().unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    /// A token signed by `key` (the tenant's own key unless a forgery is wanted).
    fn craft(&self, key: &ed25519_dalek::SigningKey, event: &str, expires_at_ms: u64) -> String {
        encode_token(&Signed::sign(
            &PlaybackToken {
                tenant_id: self.vm.tenant_id.clone(),
                event_id: event.into(),
                owner: "test".into(),
                edge_peer_id: self.edge_peer_id.clone(),
                nonce: format!("n-{}", rand_u64()),
                issued_at_ms: protocols::now_ms(),
                expires_at_ms,
            },
            key,
        ))
    }

    fn tenant_key(&self) -> ed25519_dalek::SigningKey {
        guardian_node::identity::read_key(&self.vm.dir.join("tenant.key")).unwrap()
    }

    fn edge_log_text(&self) -> String {
        std::fs::read_to_string(self.edge.log()).unwrap_or_default()
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    u64::from_le_bytes(b)
}

/// A real H.264 MP4 (5 s at 15 fps), made with GStreamer.
fn mp4(dir: &Path) -> Vec<u8> {
    h264_mp4(&dir.join("test.mp4"), 75, "smpte")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn plays_byte_identical_to_a_file_and_stdout_and_over_http() {
    let mut s = setup(None);
    let clip = mp4(&s.root);
    let big = pseudo_random(24 << 20, 7);
    let ev_mp4 = s.add_event("mp4", &clip);
    let ev_big = s.add_event("big", &big);
    s.start_edge(&[&ev_mp4, &ev_big]);

    // To a file, with the JSON report.
    let out = s.root.join("out.mp4");
    let o = s.play(&ev_mp4, &["-o", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), clip);
    // The stream carried the sealed clip: the report counts its bytes.
    assert_eq!(report["bytes"], s.edge.sealed_clip(&ev_mp4).len() as u64);
    assert!(report["first_byte_ms"].as_u64().unwrap() < 5000, "{report}");
    assert!(report["relayed"].is_boolean() && report["throughput"].as_f64().unwrap() > 0.0);
    eprintln!("mp4 report: {report}");

    // A larger clip to stdout (the report goes to stderr).
    let o = s.play(&ev_big, &["-o", "-", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == big, "stdout differs ({} bytes)", o.stdout.len());
    let report: serde_json::Value =
        serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    eprintln!("big report: {report}");

    // Relay only: the report says relayed and the stream never moved.
    let o = s.play(&ev_big, &["-o", "-", "--json", "--relay-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == big);
    let report: serde_json::Value =
        serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    assert_eq!(report["relayed"], true, "{report}");
    assert_eq!(report["switched_to_direct"], false, "{report}");
    assert_eq!(
        report["direct_after_ms"],
        serde_json::Value::Null,
        "{report}"
    );
    eprintln!("relay-only report: {report}");

    // HTTP: whole, ranges, a play token in the query, errors.
    let url = format!("{}/api/v1/events/{ev_mp4}/clip", s.vm.http);
    let auth = format!("Bearer {}", s.vm.token);
    let get = |range: Option<&str>, query: &str, auth: Option<&str>| {
        let mut r = ureq::get(&format!("{url}{query}"));
        if let Some(a) = auth {
            r = r.set("Authorization", a);
        }
        if let Some(range) = range {
            r = r.set("Range", range);
        }
        match r.call() {
            Ok(r) => {
                let (status, cr, ct) = (
                    r.status(),
                    r.header("content-range").map(str::to_owned),
                    r.content_type().to_owned(),
                );
                let mut b = Vec::new();
                r.into_reader().read_to_end(&mut b).unwrap();
                (status, cr, ct, b)
            }
            Err(ureq::Error::Status(code, r)) => (
                code,
                r.header("content-range").map(str::to_owned),
                String::new(),
                r.into_string().unwrap_or_default().into_bytes(),
            ),
            Err(e) => panic!("{e}"),
        }
    };
    // The vm serves the sealed object, never plaintext: the age file the edge keeps, whose
    // CID is the event's clip_cid, which stock `age` opens to the MP4.
    let sealed = s.edge.sealed_clip(&ev_mp4);
    let (status, _, ct, body) = get(None, "", Some(&auth));
    assert_eq!((status, ct.as_str()), (200, "application/octet-stream"));
    assert!(body.starts_with(b"age-encryption.org/v1\n"));
    assert!(body == sealed);
    let event: serde_json::Value = s.vm.get("/api/v1/events?since=0&limit=1000").1["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == ev_mp4.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        event["clip_cid"],
        protocols::ContentId::of_bytes(&sealed).to_string().as_str()
    );
    let as_file = s.root.join("served.age");
    std::fs::write(&as_file, &body).unwrap();
    assert!(age_open(&as_file) == clip);
    let plain_clip = clip;
    let clip = sealed;
    let n = clip.len();
    let (status, cr, _, body) = get(Some("bytes=1000-"), "", Some(&auth));
    assert_eq!(status, 206);
    assert_eq!(cr.unwrap(), format!("bytes 1000-{}/{n}", n - 1));
    assert!(body == clip[1000..]);
    let (status, cr, _, body) = get(Some("bytes=10-19"), "", Some(&auth));
    assert_eq!((status, cr.unwrap()), (206, format!("bytes 10-19/{n}")));
    assert_eq!(body, clip[10..20]);
    let (status, cr, _, _) = get(Some(&format!("bytes={n}-")), "", Some(&auth));
    assert_eq!((status, cr.unwrap()), (416, format!("bytes */{n}")));
    // The last 500 bytes; a suffix longer than the clip is the whole clip.
    let (status, cr, _, body) = get(Some("bytes=-500"), "", Some(&auth));
    assert_eq!(
        (status, cr.unwrap()),
        (206, format!("bytes {}-{}/{n}", n - 500, n - 1))
    );
    assert_eq!(body, clip[n - 500..]);
    let (status, cr, _, body) = get(Some(&format!("bytes=-{}", n + 10)), "", Some(&auth));
    assert_eq!(
        (status, cr.unwrap()),
        (206, format!("bytes 0-{}/{n}", n - 1))
    );
    assert!(body == clip);
    let (status, cr, _, _) = get(Some("bytes=-0"), "", Some(&auth));
    assert_eq!((status, cr.unwrap()), (416, format!("bytes */{n}")));
    // A play token works in the query, for this event only, several times (a player's
    // range requests) until it expires.
    let t = s.mint(&ev_mp4);
    for _ in 0..2 {
        let (status, _, _, body) = get(Some("bytes=0-"), &format!("?token={t}"), None);
        assert_eq!(status, 206);
        assert!(body == clip);
    }
    let other = s.mint(&ev_big);
    assert_eq!(get(None, &format!("?token={other}"), None).0, 401);
    assert_eq!(get(None, "", None).0, 401);
    // The owner token never in a URL (proxy logs, browser history).
    assert_eq!(get(None, &format!("?token={}", s.vm.token), None).0, 400);
    let (status, _, _, _) = {
        let r = ureq::get(&format!("{}/api/v1/events/nope/clip", s.vm.http))
            .set("Authorization", &auth)
            .call();
        match r {
            Err(ureq::Error::Status(c, _)) => (c, None::<String>, String::new(), Vec::<u8>::new()),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(status, 404);
    // Nothing the vm holds, on disk, has a run of the clip's plaintext.
    let middle = &plain_clip[plain_clip.len() / 2..plain_clip.len() / 2 + 4096];
    assert_eq!(files_holding(&s.vm.dir, middle), Vec::<PathBuf>::new());
}

#[test]
fn tokens_expired_forged_replayed_or_for_another_event_are_refused() {
    let mut s = setup(None);
    let clip = pseudo_random(300_000, 3);
    let ev_a = s.add_event("a", &clip);
    let ev_b = s.add_event("b", &clip[..1000]);
    s.start_edge(&[&ev_a, &ev_b]);
    let tenant = s.tenant_key();
    let now = protocols::now_ms();
    let out = s.root.join("out.bin");
    let out_s = out.to_str().unwrap().to_owned();

    fn refused(s: &Setup, token: &str, event: &str, reason: &str) {
        let out = s.root.join("out.bin");
        let start = Instant::now();
        let o = s.play(
            event,
            &[
                "-o",
                out.to_str().unwrap(),
                "--play-token",
                token,
                "--retries",
                "0",
            ],
        );
        let err = stderr(&o);
        assert!(!o.status.success(), "accepted: {err}");
        assert!(
            err.contains(&format!("the edge refused playback: {reason}")),
            "want {reason:?}, got {err}"
        );
        assert!(start.elapsed() < Duration::from_secs(20));
        assert!(!out.exists(), "a refused playback left an output file");
    }
    refused(
        &s,
        &s.craft(&tenant, &ev_a, now - 1),
        &ev_a,
        "the playback token expired",
    );
    let forger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    refused(
        &s,
        &s.craft(&forger, &ev_a, now + 60_000),
        &ev_a,
        "the playback token is not signed by this tenant",
    );
    refused(
        &s,
        &s.mint(&ev_b),
        &ev_a,
        &format!("the playback token is for event {ev_b}, not {ev_a}"),
    );
    // A good token plays once; the second time it is a replay.
    let t = s.mint(&ev_a);
    let o = s.play(&ev_a, &["-o", &out_s, "--play-token", &t]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&out).unwrap() == clip);
    std::fs::remove_file(&out).unwrap();
    refused(&s, &t, &ev_a, "the playback token was already used");
    // Across a restart of the edge too (nonces are in SQLite).
    s.edge.stop();
    s.start_edge(&[&ev_a]);
    refused(&s, &t, &ev_a, "the playback token was already used");
    // Each refusal is logged by the edge with its reason.
    let log = s.edge_log_text();
    for reason in [
        "the playback token expired".to_owned(),
        "not signed by this tenant".to_owned(),
        format!("is for event {ev_b}"),
        "already used".to_owned(),
    ] {
        assert!(
            log.contains("clip playback refused") && log.contains(&reason),
            "{reason} not logged"
        );
    }
    // The vm's POST: unknown event 404, no token 401.
    let r = ureq::post(&format!("{}/api/v1/events/nope/play", s.vm.http))
        .set("Authorization", &format!("Bearer {}", s.vm.token))
        .call();
    assert!(matches!(r, Err(ureq::Error::Status(404, _))), "{r:?}");
    let r = ureq::post(&format!("{}/api/v1/events/{ev_a}/play", s.vm.http)).call();
    assert!(matches!(r, Err(ureq::Error::Status(401, _))), "{r:?}");
}

#[test]
fn tokens_expire_after_the_configured_time() {
    let mut s = setup(Some(1));
    let ev_a = s.add_event("a", b"hello");
    s.start_edge(&[&ev_a]);
    let t = s.mint(&ev_a);
    // The vm minted it for the configured 1 s: wait (on the wall clock, which the edge checks)
    // until it has run out.
    let token = protocols::messages::clips::decode_token(&t)
        .unwrap()
        .verify(&s.tenant_key().verifying_key())
        .unwrap();
    assert!(
        token.expires_at_ms - token.issued_at_ms <= 1000,
        "{token:?}"
    );
    wait_for("the token's expiry", Duration::from_secs(5), &[], || {
        protocols::now_ms() > token.expires_at_ms
    });
    let o = s.play(&ev_a, &["-o", "-", "--play-token", &t, "--retries", "0"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the edge refused playback: the playback token expired"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_offline_edge_is_a_clear_error() {
    let mut s = setup(None);
    let ev_a = s.add_event("a", b"hello");
    s.start_edge(&[&ev_a]);
    s.edge.stop();
    let vm = &s.vm;
    wait_for(
        "the vm to see the edge offline",
        Duration::from_secs(20),
        &[&vm.log()],
        || vm.devices()[0]["online"] == false,
    );
    let start = Instant::now();
    let o = s.play(&ev_a, &["-o", "-"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is offline"), "{}", stderr(&o));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // The HTTP path says so too.
    let r = ureq::get(&format!("{}/api/v1/events/{ev_a}/clip", s.vm.http))
        .set("Authorization", &format!("Bearer {}", s.vm.token))
        .call();
    match r {
        Err(ureq::Error::Status(503, r)) => {
            let v: serde_json::Value = r.into_json().unwrap();
            assert_eq!(v["error"], "edge_offline");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_kill_of_the_edge_mid_stream_is_resumed_byte_identically() {
    let mut s = setup(None);
    let big = pseudo_random(64 << 20, 11);
    let ev_big = s.add_event("big", &big);
    s.start_edge(&[&ev_big]);
    let mut child = Command::new(bin("guardian"))
        .args(["play", "--vm", &s.vm.http, "--token", &s.vm.token])
        // (Written by `start_edge`'s probe play.)
        .arg("--identity-file")
        .arg(s.root.join("identity.txt"))
        .args(["-o", "-", "--json", "--retries", "8", &ev_big])
        .env("GUARDIAN_LOG", "warn,libp2p=error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = vec![0u8; 8 << 20];
    stdout.read_exact(&mut got).unwrap();
    // The pipe is full and the edge waits on flow control: kill it mid-stream.
    let killed_at = Instant::now();
    s.edge.kill9();
    s.edge.start();
    stdout.read_to_end(&mut got).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        got.len() == big.len(),
        "{} of {} bytes",
        got.len(),
        big.len()
    );
    assert!(got == big, "the resumed clip differs");
    let report: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert!(report["resumes"].as_u64().unwrap() >= 1, "{report}");
    eprintln!(
        "resumed after the kill in {:?} total: {report}",
        killed_at.elapsed()
    );
}
