//! The running vm against `vm/openapi.yaml`: every documented operation answers with a
//! documented status whose body validates against the documented schema (JSON Schema
//! 2020-12, as OpenAPI 3.1 uses), with and without the owner token and with bad parameters;
//! paths and methods the spec does not list get a JSON 404 or 405.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("vm/openapi.yaml");
    serde_yaml_ng::from_str(&text).expect("openapi.yaml parses")
}

/// The schema of a documented response, with `$ref`s resolvable against the spec.
fn response_schema(spec: &Value, path: &str, status: u16) -> Value {
    response_schema_of(spec, "get", path, status)
}

fn response_schema_of(spec: &Value, method: &str, path: &str, status: u16) -> Value {
    let mut response = spec["paths"][path][method]["responses"][status.to_string()].clone();
    assert!(
        response.is_object(),
        "{method} {path} does not document {status}"
    );
    if let Some(r) = response["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        response = spec["components"]["responses"][name].clone();
    }
    let content = response["content"].as_object().expect("content");
    let (_, media) = content.iter().next().expect("one media type");
    let mut schema = media["schema"].clone();
    schema["components"] = spec["components"].clone();
    schema
}

/// POSTs `body` and checks the answer against the spec: (status, body).
fn check_post(
    spec: &Value,
    vm: &Vm,
    path_template: &str,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = ureq::post(&format!("{}{url}", vm.http)).set("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let (status, body) = match req.send_string(body) {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("POST {url}: {e}"),
    };
    let mut schema = response_schema_of(spec, "post", path_template, status);
    if schema.is_null() {
        schema = json!({});
    }
    let validator = jsonschema::validator_for(&schema).expect("the spec's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "POST {url} -> {status} {body}\ndoes not match: {errors:?}"
    );
    (status, body)
}

fn check(spec: &Value, vm: &Vm, path_template: &str, url: &str, token: Option<&str>) -> u16 {
    check_body(spec, vm, path_template, url, token).0
}

fn check_body(
    spec: &Value,
    vm: &Vm,
    path_template: &str,
    url: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let (status, body) = vm.get_with(url, token);
    let schema = response_schema(spec, path_template, status);
    let validator = jsonschema::validator_for(&schema).expect("the spec's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "GET {url} -> {status} {body}\ndoes not match: {errors:?}"
    );
    (status, body)
}

#[test]
fn the_server_matches_its_openapi_document() {
    let spec = spec();
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    // Some data: an enrolled edge with telemetry and events.
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    for _ in 0..3 {
        edge.emit("front-door");
    }
    let clip = root.path().join("clip.mp4");
    std::fs::write(&clip, vec![7u8; 100_000]).unwrap();
    let archived = support::ok(
        std::process::Command::new(bin("guardian-edge"))
            .args(["archive-file", "--camera", "front-door", "--data"])
            .arg(&edge.dir)
            .arg(&clip),
    );
    let cid = archived
        .lines()
        .find_map(|l| l.strip_prefix("clip: "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for(
        "events, an archived clip and telemetry",
        Duration::from_secs(30),
        &[&vm_log, &edge_log],
        || {
            vm.event_ids().len() == 4
                && vm.get(&format!("/api/v1/archive/{cid}/manifest")).0 == 200
                && vm.get("/api/v1/health").1["edges"][0]["disk_used_percent"].is_u64()
        },
    );

    let token = vm.token.clone();
    let documented: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        documented,
        [
            "/",
            "/api/v1/alerts",
            "/api/v1/alerts/rules",
            "/api/v1/archive",
            "/api/v1/archive/{cid}",
            "/api/v1/archive/{cid}/manifest",
            "/api/v1/cameras",
            "/api/v1/cameras/discover",
            "/api/v1/cameras/discovered",
            "/api/v1/cameras/{id}",
            "/api/v1/cameras/{id}/snapshot",
            "/api/v1/devices",
            "/api/v1/devices/{peer_id}/overlay/rotate",
            "/api/v1/devices/{peer_id}/proxy/{path}",
            "/api/v1/devices/{peer_id}/telemetry",
            "/api/v1/events",
            "/api/v1/events/{id}/clip",
            "/api/v1/events/{id}/play",
            "/api/v1/events/{id}/reviewed",
            "/api/v1/events/{id}/thumbnail",
            "/api/v1/health",
            "/api/v1/key-slots",
            "/api/v1/mode",
            "/api/v1/review",
            "/api/v1/review/days",
            "/api/v1/session",
            "/api/v1/tenant",
            "/api/v1/users",
            "/api/v1/users/{name}",
            "/api/v1/wg",
            "/api/v1/wg/devices",
            "/api/v1/wg/devices/{name}",
            "/assets/{file}",
            "/healthz",
            "/metrics"
        ]
    );
    for path in [
        "/api/v1/devices",
        "/api/v1/events",
        "/api/v1/health",
        "/api/v1/archive",
        "/api/v1/key-slots",
        "/api/v1/cameras",
        "/api/v1/cameras/discovered",
        "/api/v1/alerts",
        "/api/v1/alerts/rules",
        "/api/v1/mode",
        "/api/v1/wg",
        "/api/v1/wg/devices",
    ] {
        assert_eq!(check(&spec, &vm, path, path, Some(&token)), 200);
        assert_eq!(check(&spec, &vm, path, path, None), 401);
        assert_eq!(check(&spec, &vm, path, path, Some("gdn_wrong")), 401);
    }
    // Query parameters, good and bad.
    for (url, want) in [
        ("/api/v1/events?camera=front-door&since=0&limit=2", 200),
        ("/api/v1/events?camera=front-door", 200),
        ("/api/v1/events?limit=0", 400),
        ("/api/v1/events?limit=1001", 400),
        ("/api/v1/events?limit=ten", 400),
        // Bounded before any cast: 2^64-1 used to wrap to -1 and list everything.
        ("/api/v1/events?since=18446744073709551615", 400),
        ("/api/v1/events?since=18446744073709551616", 400),
        ("/api/v1/events?since=9223372036854775807", 200),
        ("/api/v1/archive?since=18446744073709551615", 400),
        ("/api/v1/events?since=-1", 400),
        ("/api/v1/events?camera=Front%20Door", 400),
        ("/api/v1/events?unknown=1", 400),
    ] {
        assert_eq!(
            check(&spec, &vm, "/api/v1/events", url, Some(&token)),
            want,
            "{url}"
        );
    }
    // Key slots: a body that is no signed list, and a list before any package names the
    // owner's signing key.
    for (body, want) in [
        (r#"{"nope": 1}"#, 400),
        (r#"{"body": "AA==", "signature": "AA=="}"#, 409),
    ] {
        let answer = ureq::put(&format!("{}/api/v1/key-slots", vm.http))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string(body);
        let (status, json) = match answer {
            Ok(r) => (r.status(), r.into_json::<Value>().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(c, r)) => (c, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(status, want, "{body} -> {json}");
        let schema = response_schema_of(&spec, "put", "/api/v1/key-slots", status);
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(validator.is_valid(&json), "{json}");
    }
    // Cameras: put (good and bad), listed, deleted.
    let camera_path = "/api/v1/cameras/{id}";
    let validate = |method: &str, path: &str, status: u16, body: &Value| {
        let schema = response_schema_of(&spec, method, path, status);
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{method} {path} -> {status} {body}: {errors:?}"
        );
    };
    for (id, body, want) in [
        (
            "porch",
            json!({"source": {"url": "rtsp://192.0.2.7/main", "username": "admin", "password": "pw"},
                   "enabled": false, "detect": {"zones": [{"name": "steps", "points": [[0, 0], [1000, 0], [500, 900]]}]}}),
            200,
        ),
        (
            "door",
            json!({"source": {"onvif": {"xaddr": "http://192.0.2.8/onvif/device_service", "username": "admin",
                   "password": "pw", "profile": "main"}}, "enabled": false,
                   "archive": {"categories": ["person"], "hours": ["22-06"]}}),
            200,
        ),
        (
            "porch",
            json!({"source": {"url": "rtsp://192.0.2.7/main"}, "detect": {"width": 641}}),
            400,
        ),
        (
            "Bad%20Id",
            json!({"source": {"url": "rtsp://192.0.2.7/main"}}),
            400,
        ),
        ("porch", json!({"nope": 1}), 400),
    ] {
        let (status, answer) = vm.send("PUT", &format!("/api/v1/cameras/{id}"), Some(&body));
        assert_eq!(status, want, "{body} -> {answer}");
        validate("put", camera_path, status, &answer);
    }
    let (status, cameras) = check_body(
        &spec,
        &vm,
        "/api/v1/cameras",
        "/api/v1/cameras",
        Some(&token),
    );
    assert_eq!(
        (status, cameras["cameras"].as_array().unwrap().len()),
        (200, 2)
    );
    // The porch camera is disabled: no picture, said so in JSON; an unknown camera is 404.
    for (id, want) in [("porch", 503), ("nope", 404), ("Bad%20Id", 400)] {
        let path = format!("/api/v1/cameras/{id}/snapshot");
        let (status, answer) = vm.get(&path);
        assert_eq!(status, want, "{path} -> {answer}");
        validate("get", "/api/v1/cameras/{id}/snapshot", status, &answer);
    }
    // A scan now: the edge's discovery is off (not an installed edge), and it says so.
    for (body, want) in [
        (None, 202),
        (Some(json!({"edge": "nobody"})), 400),
        (Some(json!({"x": 1})), 400),
    ] {
        let (status, answer) = vm.send("POST", "/api/v1/cameras/discover", body.as_ref());
        assert_eq!(status, want, "{body:?} -> {answer}");
        validate("post", "/api/v1/cameras/discover", status, &answer);
        if status == 202 {
            assert_eq!(answer["edges"][0]["outcome"], "disabled", "{answer}");
        }
    }
    for (id, want) in [
        ("porch", 204),
        ("porch", 404),
        ("door", 204),
        ("Bad%20Id", 400),
    ] {
        let (status, answer) = vm.send("DELETE", &format!("/api/v1/cameras/{id}"), None);
        assert_eq!(status, want, "{id} -> {answer}");
        if status != 204 {
            validate("delete", camera_path, status, &answer);
        }
    }
    // Thumbnails: the emitted events have none; errors are JSON.
    let thumb = "/api/v1/events/{id}/thumbnail";
    let some_event = vm.event_ids().into_iter().next().unwrap();
    for (url, token, want) in [
        (
            format!("/api/v1/events/{some_event}/thumbnail"),
            Some(&token),
            404,
        ),
        (
            "/api/v1/events/Bad%20Id/thumbnail".to_owned(),
            Some(&token),
            400,
        ),
        (format!("/api/v1/events/{some_event}/thumbnail"), None, 401),
    ] {
        assert_eq!(
            check(&spec, &vm, thumb, &url, token.map(|t| t.as_str())),
            want,
            "{url}"
        );
    }
    // Archive: the manifest of an object, errors for unknown or malformed CIDs.
    let manifest_path = "/api/v1/archive/{cid}/manifest";
    let (status, manifest) = check_body(
        &spec,
        &vm,
        manifest_path,
        &format!("/api/v1/archive/{cid}/manifest"),
        Some(&token),
    );
    assert_eq!(status, 200);
    assert_eq!(manifest["objects"][0]["cid"], cid.as_str());
    let unknown = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    assert_eq!(
        check(
            &spec,
            &vm,
            manifest_path,
            &format!("/api/v1/archive/{unknown}/manifest"),
            Some(&token)
        ),
        404
    );
    assert_eq!(
        check(
            &spec,
            &vm,
            manifest_path,
            "/api/v1/archive/nope/manifest",
            Some(&token)
        ),
        400
    );
    assert_eq!(
        check(
            &spec,
            &vm,
            manifest_path,
            &format!("/api/v1/archive/{cid}/manifest"),
            None
        ),
        401
    );
    let object_path = "/api/v1/archive/{cid}";
    for (url, want) in [
        (format!("/api/v1/archive/{unknown}"), 404),
        ("/api/v1/archive/nope".to_owned(), 400),
    ] {
        assert_eq!(
            check(&spec, &vm, object_path, &url, Some(&token)),
            want,
            "{url}"
        );
    }
    // The object itself: bytes, whole and ranged.
    let whole = ureq::get(&format!("{}/api/v1/archive/{cid}", vm.http))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.content_type(), "application/octet-stream");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut whole.into_reader(), &mut bytes).unwrap();
    assert_eq!(protocols::ContentId::of_bytes(&bytes).to_string(), cid);
    let part = ureq::get(&format!("{}/api/v1/archive/{cid}", vm.http))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Range", "bytes=10-19")
        .call()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 10-19/{}", bytes.len()).as_str())
    );
    let mut ten = Vec::new();
    std::io::Read::read_to_end(&mut part.into_reader(), &mut ten).unwrap();
    assert_eq!(ten, bytes[10..20]);
    // One Range parser: malformed ranges are 400, ranges past the end 416 with the size,
    // each a JSON error of the spec, never an S3 error.
    let size = bytes.len();
    for (range, want) in [
        ("bytes=5-1".to_owned(), 400),
        ("abc".to_owned(), 400),
        ("bytes=".to_owned(), 400),
        ("bytes=0-1,5-6".to_owned(), 400),
        (format!("bytes={size}-"), 416),
        ("bytes=-0".to_owned(), 416),
        (format!("bytes={}-", u64::MAX), 416),
    ] {
        let err = ureq::get(&format!("{}/api/v1/archive/{cid}", vm.http))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Range", &range)
            .call()
            .unwrap_err();
        let ureq::Error::Status(status, resp) = err else {
            panic!("{range}: {err:?}")
        };
        assert_eq!(status, want, "{range}");
        if want == 416 {
            assert_eq!(
                resp.header("content-range"),
                Some(format!("bytes */{size}").as_str()),
                "{range}"
            );
        }
        let body: Value = resp.into_json().unwrap();
        let schema = response_schema(&spec, object_path, status);
        assert!(
            jsonschema::validator_for(&schema).unwrap().is_valid(&body),
            "{range}: {body}"
        );
        assert!(
            !body["message"].as_str().unwrap().contains("Error {"),
            "no internal Debug text: {body}"
        );
    }
    let (status, cr, tail) = {
        let r = ureq::get(&format!("{}/api/v1/archive/{cid}", vm.http))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Range", "bytes=-7")
            .call()
            .unwrap();
        let cr = r.header("content-range").map(str::to_owned);
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut b).unwrap();
        (206, cr, b)
    };
    assert_eq!(
        (status, cr.as_deref()),
        (
            206,
            Some(format!("bytes {}-{}/{size}", size - 7, size - 1).as_str())
        )
    );
    assert_eq!(tail, bytes[size - 7..]);

    // Playback: a ticket for an event, refusals.
    let play_path = "/api/v1/events/{id}/play";
    let event = vm.event_ids()[0].clone();
    let play_url = format!("/api/v1/events/{event}/play");
    let (status, ticket) = check_post(&spec, &vm, play_path, &play_url, Some(&token), "");
    assert_eq!(status, 200, "{ticket}");
    let client = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id()
        .to_string();
    let (status, t2) = check_post(
        &spec,
        &vm,
        play_path,
        &play_url,
        Some(&token),
        &json!({ "client_peer_id": client }).to_string(),
    );
    assert_eq!(status, 200);
    assert_ne!(
        ticket["token"], t2["token"],
        "every token has its own nonce"
    );
    let relay = ticket["relay_addrs"][0].as_str().unwrap();
    assert!(
        relay.ends_with(&format!(
            "/p2p/{}/p2p-circuit/p2p/{}",
            ticket["vm_peer_id"].as_str().unwrap(),
            ticket["edge_peer_id"].as_str().unwrap()
        )),
        "{relay}"
    );
    for (url, tok, body, want) in [
        (play_url.as_str(), None, "", 401),
        (play_url.as_str(), Some("gdn_wrong"), "", 401),
        ("/api/v1/events/nope/play", Some(token.as_str()), "", 404),
        (
            "/api/v1/events/Bad%20Id/play",
            Some(token.as_str()),
            "",
            400,
        ),
        (
            play_url.as_str(),
            Some(token.as_str()),
            "{\"client_peer_id\": \"x\"}",
            400,
        ),
        (
            play_url.as_str(),
            Some(token.as_str()),
            "{\"unknown\": 1}",
            400,
        ),
    ] {
        assert_eq!(
            check_post(&spec, &vm, play_path, url, tok, body).0,
            want,
            "{url} {body}"
        );
    }
    // The clip over HTTP: test events have no clip (404); auth and ids checked first.
    let clip_path = "/api/v1/events/{id}/clip";
    let clip_url = format!("/api/v1/events/{event}/clip");
    assert_eq!(check(&spec, &vm, clip_path, &clip_url, Some(&token)), 404);
    assert_eq!(check(&spec, &vm, clip_path, &clip_url, None), 401);
    let play_token = ticket["token"].as_str().unwrap();
    assert_eq!(
        check(
            &spec,
            &vm,
            clip_path,
            &format!("{clip_url}?token={play_token}"),
            None
        ),
        404
    );
    assert_eq!(
        check(
            &spec,
            &vm,
            clip_path,
            "/api/v1/events/nope/clip",
            Some(&token)
        ),
        404
    );

    // The web app's reads: with the token, without (not counted as a failed sign-in), and
    // one wrong token (each counts towards the address's limit of 20 a minute).
    for path in [
        "/api/v1/session",
        "/api/v1/tenant",
        "/api/v1/review",
        "/api/v1/review/days",
        "/api/v1/users",
    ] {
        assert_eq!(check(&spec, &vm, path, path, Some(&token)), 200, "{path}");
        assert_eq!(check(&spec, &vm, path, path, None), 401, "{path}");
    }
    assert_eq!(
        check(
            &spec,
            &vm,
            "/api/v1/tenant",
            "/api/v1/tenant",
            Some("gdn_wrong")
        ),
        401
    );
    let (_, session) = check_body(
        &spec,
        &vm,
        "/api/v1/session",
        "/api/v1/session",
        Some(&token),
    );
    assert_eq!(
        (&session["user"]["name"], &session["user"]["role"]),
        (&json!("owner"), &json!("admin"))
    );
    let (_, tenant) = check_body(&spec, &vm, "/api/v1/tenant", "/api/v1/tenant", Some(&token));
    assert_eq!(tenant["tenant_id"], vm.tenant_id.as_str());
    assert_eq!(tenant["served_by"], "vm");
    assert_eq!(tenant["owner_recipient"], RECIPIENT, "{tenant}");
    let (_, review) = check_body(&spec, &vm, "/api/v1/review", "/api/v1/review", Some(&token));
    assert_eq!(review["events"].as_array().unwrap().len(), 4, "{review}");
    let (_, days) = check_body(
        &spec,
        &vm,
        "/api/v1/review/days",
        "/api/v1/review/days",
        Some(&token),
    );
    let counted: u64 = days["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["events"].as_u64().unwrap())
        .sum();
    assert_eq!((counted, &days["time_zone"]), (4, &json!("UTC")), "{days}");
    for (url, want) in [
        (
            "/api/v1/review?camera=front-door&label=person&reviewed=false&limit=2",
            200,
        ),
        ("/api/v1/review?before=9223372036854775807&after=0", 200),
        ("/api/v1/review?reviewed=yes", 400),
        ("/api/v1/review?label=Person", 400),
        ("/api/v1/review?before=-1", 400),
        ("/api/v1/review?limit=0", 400),
        ("/api/v1/review?since=0", 400),
    ] {
        assert_eq!(
            check(&spec, &vm, "/api/v1/review", url, Some(&token)),
            want,
            "{url}"
        );
    }
    for (url, want) in [
        ("/api/v1/review/days?camera=front-door&reviewed=true", 200),
        ("/api/v1/review/days?reviewed=1", 400),
    ] {
        assert_eq!(
            check(&spec, &vm, "/api/v1/review/days", url, Some(&token)),
            want,
            "{url}"
        );
    }
    // The edge's telemetry history.
    let telemetry = "/api/v1/devices/{peer_id}/telemetry";
    let peer = edge.peer_id();
    let (status, history) = check_body(
        &spec,
        &vm,
        telemetry,
        &format!("/api/v1/devices/{peer}/telemetry?since=0&limit=10"),
        Some(&token),
    );
    assert_eq!(status, 200);
    assert!(
        !history["samples"].as_array().unwrap().is_empty(),
        "{history}"
    );
    for (url, tok, want) in [
        (format!("/api/v1/devices/{peer}/telemetry"), None, 401),
        (
            format!("/api/v1/devices/{peer}/telemetry?limit=0"),
            Some(&token),
            400,
        ),
        (
            "/api/v1/devices/Bad%20Id/telemetry".to_owned(),
            Some(&token),
            400,
        ),
        (
            format!("/api/v1/devices/{}/telemetry", vm.peer_id),
            Some(&token),
            404,
        ),
    ] {
        assert_eq!(
            check(&spec, &vm, telemetry, &url, tok.map(|t| t.as_str())),
            want,
            "{url}"
        );
    }
    // The WireGuard overlay, off here ([wg] enabled = false): its settings with no key, no
    // devices; registering one is 503, the edge has no tunnel to rotate or proxy through.
    let (_, wg) = check_body(&spec, &vm, "/api/v1/wg", "/api/v1/wg", Some(&token));
    assert_eq!(
        (&wg["enabled"], &wg["public_key"], &wg["error"]),
        (&json!(false), &Value::Null, &Value::Null),
        "{wg}"
    );
    assert!(wg["prefix_v6"].as_str().unwrap().ends_with("::/64"), "{wg}");
    let (_, listed) = check_body(
        &spec,
        &vm,
        "/api/v1/wg/devices",
        "/api/v1/wg/devices",
        Some(&token),
    );
    assert_eq!(listed["devices"], json!([]));
    let phone_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    for (tok, body, want) in [
        (
            Some(token.as_str()),
            json!({"name": "phone", "public_key": phone_key}),
            503,
        ),
        (None, json!({"name": "phone", "public_key": phone_key}), 401),
        (Some(token.as_str()), json!({"name": "phone"}), 400),
    ] {
        let (status, answer) = check_post(
            &spec,
            &vm,
            "/api/v1/wg/devices",
            "/api/v1/wg/devices",
            tok,
            &body.to_string(),
        );
        assert_eq!(status, want, "{body} -> {answer}");
    }
    for (name, want) in [("phone", 404), ("Bad%20Name", 400)] {
        let (status, answer) = vm.send("DELETE", &format!("/api/v1/wg/devices/{name}"), None);
        assert_eq!(status, want, "{name} -> {answer}");
        validate("delete", "/api/v1/wg/devices/{name}", status, &answer);
    }
    let rotate = "/api/v1/devices/{peer_id}/overlay/rotate";
    for (who, want) in [(peer.as_str(), 404), ("Bad%20Id", 400)] {
        let (status, answer) = vm.send(
            "POST",
            &format!("/api/v1/devices/{who}/overlay/rotate"),
            None,
        );
        assert_eq!(status, want, "{who} -> {answer}");
        validate("post", rotate, status, &answer);
    }
    let proxy = "/api/v1/devices/{peer_id}/proxy/{path}";
    for (url, tok, want) in [
        (
            format!("/api/v1/devices/{peer}/proxy/api/v1/health"),
            Some(&token),
            503,
        ),
        (
            format!("/api/v1/devices/{}/proxy/api/v1/health", vm.peer_id),
            Some(&token),
            404,
        ),
        (
            "/api/v1/devices/Bad%20Id/proxy/api/v1/health".to_owned(),
            Some(&token),
            400,
        ),
        (
            format!("/api/v1/devices/{peer}/proxy/api/v1/health"),
            None,
            401,
        ),
    ] {
        let bearer = tok.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("Authorization", b.as_str()))
            .collect();
        let a = vm.request("GET", &url, &headers, None);
        assert_eq!(a.status, want, "{url} -> {}", a.text);
        validate("get", proxy, a.status, &a.json);
        if want == 503 {
            assert_eq!(
                a.header("content-security-policy"),
                Some("default-src 'none'")
            );
        }
    }
    // Marking reviewed.
    let reviewed = "/api/v1/events/{id}/reviewed";
    let first = vm.event_ids()[0].clone();
    let validate_put = |url: &str, headers: &[(&str, &str)], body: &Value| {
        let a = vm.request("PUT", url, headers, Some(body));
        let schema = response_schema_of(&spec, "put", reviewed, a.status);
        let errors: Vec<String> = jsonschema::validator_for(&schema)
            .unwrap()
            .iter_errors(&a.json)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "PUT {url} -> {} {}: {errors:?}",
            a.status,
            a.json
        );
        a
    };
    let bearer = format!("Bearer {token}");
    let owner = [("Authorization", bearer.as_str())];
    let url = format!("/api/v1/events/{first}/reviewed");
    let a = validate_put(&url, &owner, &json!({"reviewed": true}));
    assert_eq!(a.status, 200);
    assert!(a.json["reviewed_at_ms"].is_u64(), "{}", a.json);
    let (_, listed) = check_body(
        &spec,
        &vm,
        "/api/v1/review",
        "/api/v1/review?reviewed=true",
        Some(&token),
    );
    assert_eq!(listed["events"][0]["event_id"], first.as_str());
    assert_eq!(
        listed["events"][0]["reviewed_at_ms"],
        a.json["reviewed_at_ms"]
    );
    for (url, headers, body, want) in [
        (url.clone(), &owner[..], json!({"reviewed": false}), 200),
        (url.clone(), &owner[..], json!({"reviewed": "yes"}), 400),
        (
            url.clone(),
            &owner[..],
            json!({"reviewed": true, "x": 1}),
            400,
        ),
        (url.clone(), &[][..], json!({"reviewed": true}), 401),
        (
            "/api/v1/events/nope/reviewed".to_owned(),
            &owner[..],
            json!({"reviewed": true}),
            404,
        ),
        (
            "/api/v1/events/Bad%20Id/reviewed".to_owned(),
            &owner[..],
            json!({"reviewed": true}),
            400,
        ),
    ] {
        assert_eq!(
            validate_put(&url, headers, &body).status,
            want,
            "{url} {body}"
        );
    }
    // Signing in: the owner token, then a user; refusals.
    let session_path = "/api/v1/session";
    let (status, signed) = check_post(
        &spec,
        &vm,
        session_path,
        session_path,
        None,
        &json!({"token": token}).to_string(),
    );
    assert_eq!(status, 200, "{signed}");
    assert!(signed["expires_at_ms"].is_u64());
    for (body, want) in [
        (json!({"token": "gdn_wrong"}), 401),
        (json!({"username": "nobody", "password": "0123456789"}), 401),
        (json!({"token": token, "username": "x"}), 400),
        (json!({"nope": 1}), 400),
    ] {
        assert_eq!(
            check_post(
                &spec,
                &vm,
                session_path,
                session_path,
                None,
                &body.to_string()
            )
            .0,
            want,
            "{body}"
        );
    }
    // Users: made by the owner; a viewer is refused the admin pages with 403.
    let user_path = "/api/v1/users/{name}";
    for (name, body, want) in [
        (
            "ana",
            json!({"password": "correct horse", "role": "viewer", "cameras": ["front-door"]}),
            200,
        ),
        (
            "ana",
            json!({"role": "viewer", "cameras": ["front-door"]}),
            200,
        ),
        ("bob", json!({"role": "viewer"}), 400),
        ("bob", json!({"password": "short", "role": "viewer"}), 400),
        (
            "bob",
            json!({"password": "0123456789", "role": "root"}),
            400,
        ),
        (
            "owner",
            json!({"password": "0123456789", "role": "admin"}),
            400,
        ),
    ] {
        let (status, answer) = vm.send("PUT", &format!("/api/v1/users/{name}"), Some(&body));
        assert_eq!(status, want, "{name} {body} -> {answer}");
        validate("put", user_path, status, &answer);
    }
    let (_, users) = check_body(&spec, &vm, "/api/v1/users", "/api/v1/users", Some(&token));
    assert_eq!(users["users"][0]["name"], "ana");
    let (status, ana) = check_post(
        &spec,
        &vm,
        session_path,
        session_path,
        None,
        &json!({"username": "ana", "password": "correct horse"}).to_string(),
    );
    assert_eq!((status, &ana["user"]["role"]), (200, &json!("viewer")));
    let signed_in = vm.request(
        "POST",
        session_path,
        &[],
        Some(&json!({"username": "ana", "password": "correct horse"})),
    );
    let cookie = signed_in.session_cookie();
    let a = vm.with_cookie("GET", "/api/v1/users", &cookie, None);
    assert_eq!((a.status, &a.json["error"]), (403, &json!("forbidden")));
    validate("get", "/api/v1/users", 403, &a.json);
    let a = vm.with_cookie(
        "PUT",
        "/api/v1/users/ana",
        &cookie,
        Some(&json!({"role": "admin"})),
    );
    validate("put", user_path, a.status, &a.json);
    assert_eq!(a.status, 403);
    let a = vm.with_cookie("GET", session_path, &cookie, None);
    assert_eq!((a.status, &a.json["user"]["name"]), (200, &json!("ana")));
    validate("get", session_path, 200, &a.json);
    let a = vm.with_cookie("DELETE", session_path, &cookie, None);
    assert_eq!(a.status, 204);
    assert_eq!(
        vm.with_cookie("GET", session_path, &cookie, None).status,
        401
    );
    for (name, want) in [("ana", 204), ("ana", 404)] {
        let (status, answer) = vm.send("DELETE", &format!("/api/v1/users/{name}"), None);
        assert_eq!(status, want, "{name} -> {answer}");
        if status != 204 {
            validate("delete", user_path, status, &answer);
        }
    }
    // The web app: the page and its files, with the policy; an unknown file is a JSON 404.
    let page = vm.request("GET", "/", &[], None);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let missing = vm.request("GET", "/assets/nope.js", &[], None);
    assert_eq!(missing.status, 404);
    validate("get", "/assets/{file}", 404, &missing.json);

    // Paging: a full page names where the next starts.
    let (_, page) = vm.get("/api/v1/events?limit=2");
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_since"], page["events"][1]["started_at_ms"]);

    // /metrics: text, behind the owner token.
    assert_eq!(
        ureq::get(&format!("{}/metrics", vm.http))
            .call()
            .unwrap_err()
            .into_response()
            .map(|r| r.status()),
        Some(401)
    );
    let resp = ureq::get(&format!("{}/metrics", vm.http))
        .set("authorization", &format!("Bearer {}", vm.token))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.content_type()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.into_string().unwrap();
    assert!(text.contains("guardian_vm_events_stored_total 4"), "{text}");
    assert!(text.contains("guardian_vm_devices_registered 1"), "{text}");

    // Outside the spec: JSON errors, not HTML or empty bodies.
    let (status, body) = vm.get("/api/v1/nope");
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));
    let resp = ureq::post(&format!("{}/api/v1/devices", vm.http))
        .set("Authorization", &format!("Bearer {token}"))
        .call();
    match resp {
        Err(ureq::Error::Status(code, r)) => {
            let body: Value = r.into_json().unwrap();
            assert_eq!(
                (code, body["error"].as_str()),
                (405, Some("method_not_allowed"))
            );
        }
        other => panic!("POST /api/v1/devices: {other:?}"),
    }
}
