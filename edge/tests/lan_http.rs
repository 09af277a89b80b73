//! The edge's web app and local API on the LAN (`[http] listen`), driving the release
//! `guardian-edge` with no vm running (the home's internet is down): sign-in with the token
//! `init` printed (the cookie, then logout), the page with its CSP, the tenant served by the
//! edge, events recorded on the edge in the review list, their sealed clip served whole and
//! by range and opened with the owner's key by stock `age -d`, the sealed thumbnail, cameras
//! and health, and last the limit on failed sign-ins (401, then 429 with Retry-After).
//!
//! Synced users (viewers limited to their cameras) come from the vm's users section; without
//! a vm here, that part is covered by the unit tests of `configure` (the section applied
//! through the real apply function) and `lan::auth`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// An answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
}

fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let mut r = ureq::request(method, url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        r = r.set(k, v);
    }
    let resp = match body {
        Some(b) => r.set("content-type", "application/json").send_string(b),
        None => r.call(),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .flat_map(|n| {
            resp.all(&n)
                .into_iter()
                .map(|v| (n.to_ascii_lowercase(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// Installs an edge from a fresh vm's package (the vm never runs); `init`'s output.
fn install(root: &Path) -> (std::path::PathBuf, String) {
    let vm = root.join("vm");
    ok(Command::new(bin("guardian-vm"))
        .args(["init", "--fqdn", "127.0.0.1", "--data"])
        .arg(&vm));
    let pkg = root.join("edge.tar");
    ok(Command::new(bin("guardian-vm"))
        .args([
            "package",
            "edge",
            "--name",
            "home",
            "--recipient",
            RECIPIENT,
            "--data",
        ])
        .arg(&vm)
        .arg("--out")
        .arg(&pkg));
    let data = root.join("edge");
    let out = ok(Command::new(bin("guardian-edge"))
        .args(["init", "--package"])
        .arg(&pkg)
        .arg("--data")
        .arg(&data));
    (data, out)
}

#[test]
fn the_lan_web_app_works_without_the_vm() {
    let root = tempfile::tempdir().unwrap();
    let (data, out) = install(root.path());
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("local admin token for the LAN web app: "))
        .unwrap_or_else(|| panic!("init printed no token: {out}"))
        .trim()
        .to_owned();
    assert_eq!(token.len(), 64, "{out}");
    let stored = std::fs::read_to_string(data.join("local-token.sha256")).unwrap();
    assert!(!stored.contains(&token), "only the hash is kept");
    // Again on the same package: the token is kept, not shown.
    let again = ok(Command::new(bin("guardian-edge"))
        .args(["init", "--package"])
        .arg(root.path().join("edge.tar"))
        .arg("--data")
        .arg(&data));
    assert!(!again.contains(&token) && again.contains("kept"), "{again}");

    // Events recorded on the edge: a clip of camera porch, and one of yard with a snapshot
    // (so it has a thumbnail).
    let mp4 = root.path().join("clip.mp4");
    let plain = h264_mp4(&mp4, 45, "ball");
    let porch_event = ok(Command::new(bin("guardian-edge"))
        .args(["import-clip", "--camera", "porch", "--data"])
        .arg(&data)
        .arg(&mp4))
    .trim()
    .to_owned();
    std::thread::sleep(Duration::from_millis(20));
    let yard = ok(Command::new(bin("guardian-edge"))
        .args(["archive-file", "--camera", "yard", "--snapshot"])
        .arg(photos().join("bus.jpg"))
        .arg("--data")
        .arg(&data)
        .arg(&mp4));
    let yard_event = yard
        .lines()
        .find_map(|l| l.strip_prefix("event: "))
        .unwrap_or_else(|| panic!("{yard}"))
        .to_owned();
    // A camera whose stream does not exist: its failure shows in its live state.
    add_camera(&data, "porch", "file:///nonexistent/porch.mp4");

    let port = guardian_test_support::free_port();
    edit_toml(
        &data.join("edge.toml"),
        &[(
            "http.listen",
            toml::Value::String(format!("127.0.0.1:{port}")),
        )],
    );
    let mut edge = run_edge(&data);
    let base = format!("http://127.0.0.1:{port}");
    wait_for(
        "the LAN listener",
        Duration::from_secs(30),
        &[&edge.log],
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );

    // The page, with its headers, to anyone on the LAN.
    let page = call("GET", &format!("{base}/"), &[], None);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        String::from_utf8_lossy(&page.body).contains("<html") || page.body.starts_with(b"<!"),
        "an HTML page"
    );

    // The API wants a sign-in.
    let anon = call("GET", &format!("{base}/api/v1/tenant"), &[], None);
    assert_eq!(anon.status, 401);
    assert_eq!(anon.json()["error"], "unauthorized");
    assert_eq!(anon.header("cache-control"), Some("no-store"));

    // Sign in with the printed token: the session cookie.
    let signed = call(
        "POST",
        &format!("{base}/api/v1/session"),
        &[],
        Some(&serde_json::json!({ "token": token }).to_string()),
    );
    assert_eq!(
        signed.status,
        200,
        "{}",
        String::from_utf8_lossy(&signed.body)
    );
    let set_cookie = signed.header("set-cookie").unwrap().to_owned();
    for part in ["guardian_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert_eq!(signed.json()["user"]["role"], "admin");
    assert!(signed.json()["expires_at_ms"].as_u64().unwrap() > 0);
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let with_cookie = [("cookie", cookie.as_str())];
    let session = call("GET", &format!("{base}/api/v1/session"), &with_cookie, None);
    assert_eq!(session.status, 200);
    assert_eq!(session.json()["user"]["cameras"], serde_json::Value::Null);

    // The tenant, served by the edge.
    let tenant = call("GET", &format!("{base}/api/v1/tenant"), &with_cookie, None).json();
    assert_eq!(tenant["served_by"], "edge");
    assert_eq!(tenant["owner_recipient"], RECIPIENT);
    assert_eq!(tenant["kdf"]["algorithm"], "argon2id");
    assert_eq!(tenant["bundle_sha256"].as_str().unwrap().len(), 64);

    // The review list: both events, newest first, filtered by camera.
    let review = call("GET", &format!("{base}/api/v1/review"), &with_cookie, None).json();
    let ids: Vec<&str> = review["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [yard_event.as_str(), porch_event.as_str()], "{review}");
    let first = &review["events"][0];
    assert_eq!(first["camera_id"], "yard");
    assert_eq!(first["state"], "closed");
    assert!(first["clip_cid"].as_str().unwrap().starts_with("bafkrei"));
    let porch = call(
        "GET",
        &format!("{base}/api/v1/review?camera=porch&limit=5"),
        &with_cookie,
        None,
    )
    .json();
    assert_eq!(porch["events"].as_array().unwrap().len(), 1);
    let bad = call(
        "GET",
        &format!("{base}/api/v1/review?limit=0"),
        &with_cookie,
        None,
    );
    assert_eq!(bad.status, 400);

    // The sealed clip, whole (the bearer token works too) and by range; the owner's key
    // opens it with stock age.
    let bearer = format!("Bearer {token}");
    let clip_url = format!("{base}/api/v1/events/{porch_event}/clip");
    let whole = call("GET", &clip_url, &[("authorization", &bearer)], None);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let sealed = root.path().join("clip.age");
    std::fs::write(&sealed, &whole.body).unwrap();
    assert_eq!(
        age_open(&sealed),
        plain,
        "the clip opens with the owner's key"
    );
    let total = whole.body.len();
    let part = call(
        "GET",
        &clip_url,
        &[("authorization", &bearer), ("range", "bytes=100-199")],
        None,
    );
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{total}").as_str())
    );
    assert_eq!(part.body, whole.body[100..200]);
    let tail = call(
        "GET",
        &clip_url,
        &with_cookie
            .iter()
            .copied()
            .chain([("range", "bytes=-10")])
            .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, whole.body[total - 10..]);
    let past = call(
        "GET",
        &clip_url,
        &[
            ("authorization", &bearer),
            ("range", &format!("bytes={total}-")),
        ],
        None,
    );
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{total}").as_str())
    );
    let missing = call(
        "GET",
        &format!("{base}/api/v1/events/ev-nope/clip"),
        &with_cookie,
        None,
    );
    assert_eq!(missing.status, 404);

    // The sealed thumbnail of the event with a snapshot; none for the other.
    let thumb = call(
        "GET",
        &format!("{base}/api/v1/events/{yard_event}/thumbnail"),
        &with_cookie,
        None,
    );
    assert_eq!(thumb.status, 200);
    let sealed_thumb = root.path().join("thumb.age");
    std::fs::write(&sealed_thumb, &thumb.body).unwrap();
    assert!(age_open(&sealed_thumb).starts_with(&[0xff, 0xd8]), "a JPEG");
    let no_thumb = call(
        "GET",
        &format!("{base}/api/v1/events/{porch_event}/thumbnail"),
        &with_cookie,
        None,
    );
    assert_eq!(no_thumb.status, 404);

    // Cameras with their live state, and the edge's health.
    wait_for(
        "the camera's failure in its state",
        Duration::from_secs(30),
        &[&edge.log],
        || {
            let c = call("GET", &format!("{base}/api/v1/cameras"), &with_cookie, None).json();
            c["cameras"][0]["id"] == "porch" && c["cameras"][0]["last_error"].is_string()
        },
    );
    let health = call("GET", &format!("{base}/api/v1/health"), &with_cookie, None);
    assert_eq!(health.status, 200);
    let health = health.json();
    assert_eq!(health["served_by"], "edge");
    assert_eq!(health["enrolled"], false);
    assert!(health["disk_free_bytes"].as_u64().unwrap() > 0, "{health}");
    assert!(health["event_backlog"].as_u64().unwrap() >= 2, "{health}");

    // Logout ends the session.
    let out = call(
        "DELETE",
        &format!("{base}/api/v1/session"),
        &with_cookie,
        None,
    );
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = call("GET", &format!("{base}/api/v1/session"), &with_cookie, None);
    assert_eq!(after.status, 401);

    // Wrong tokens: 401, then 429 with Retry-After once the address failed 5 times, even
    // for the right token.
    for i in 0..5 {
        let wrong = call(
            "POST",
            &format!("{base}/api/v1/session"),
            &[],
            Some(r#"{"token": "not-the-token"}"#),
        );
        assert_eq!(wrong.status, 401, "attempt {i}");
    }
    let limited = call(
        "POST",
        &format!("{base}/api/v1/session"),
        &[],
        Some(&serde_json::json!({ "token": token }).to_string()),
    );
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1,
        "Retry-After"
    );
    assert!(
        !edge.log_text().contains(&token),
        "the token is never logged"
    );

    // Stopped with the rest.
    assert_eq!(edge.stop_within(Duration::from_secs(10)), Some(0));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
