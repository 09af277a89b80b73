//! Users, sessions and roles of the web app against the real vm and an enrolled edge: the
//! owner signs in with the token and makes an admin and a viewer limited to one camera; the
//! API (not only the UI) keeps the viewer to that camera and away from every admin write;
//! failed passwords slow a user down without locking the owner out; a new password, the
//! user's deletion and signing out end sessions, a vm restart does not. Also the page itself
//! (its Content-Security-Policy), the review timeline and calendar, and the telemetry history.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// The ids of an events array (`events` of `/api/v1/events` or `/api/v1/review`).
fn ids(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {body}"))
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The camera ids of an events array.
fn cameras_of(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["camera_id"].as_str().unwrap().to_owned())
        .collect()
}

fn sign_in(vm: &Vm, headers: &[(&str, &str)], body: Value) -> Answer {
    vm.request("POST", "/api/v1/session", headers, Some(&body))
}

fn password(vm: &Vm, name: &str, password: &str) -> Answer {
    sign_in(vm, &[], json!({"username": name, "password": password}))
}

/// GET with a session cookie, which must answer 200: the JSON body.
fn get(vm: &Vm, cookie: &str, path: &str) -> Value {
    let a = vm.with_cookie("GET", path, cookie, None);
    assert_eq!(a.status, 200, "GET {path}: {}", a.text);
    a.json
}

/// Sums `field` over the calendar's days.
fn day_sum(days: &Value, field: &str) -> u64 {
    days["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[field].as_u64().unwrap())
        .sum()
}

#[test]
fn users_sessions_and_roles_are_enforced_by_the_api() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    // Sign-ins come "through a proxy" on loopback, so X-Forwarded-For names the client.
    vm.edit_config(|c| c.http.trusted_proxies = vec!["127.0.0.1".into()]);
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    let logs = [vm_log.as_path(), edge_log.as_path()];
    wait_for("the edge to enroll", WAIT, &logs, || {
        vm.devices().first().is_some_and(|d| d["online"] == true)
    });
    // Two events on each of two cameras, oldest first.
    let mut made = Vec::new();
    for camera in ["porch", "garage", "porch", "garage"] {
        made.push((camera, edge.emit(camera)));
    }
    wait_for("the four events", WAIT, &logs, || vm.event_ids().len() == 4);
    let porch: Vec<String> = made
        .iter()
        .filter(|(c, _)| *c == "porch")
        .map(|(_, id)| id.clone())
        .collect();
    let garage: Vec<String> = made
        .iter()
        .filter(|(c, _)| *c == "garage")
        .map(|(_, id)| id.clone())
        .collect();
    for id in ["porch", "garage"] {
        let body = json!({"source": {"url": "rtsp://192.0.2.7/main"}, "enabled": false});
        let (status, answer) = vm.send("PUT", &format!("/api/v1/cameras/{id}"), Some(&body));
        assert_eq!(status, 200, "{answer}");
    }

    // The page: HTML with a policy that allows no inline script.
    let page = vm.request("GET", "/", &[], None);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    let csp = page
        .header("content-security-policy")
        .expect("a Content-Security-Policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));

    // The owner signs in with the token: an HttpOnly, SameSite=Strict cookie.
    let signed = sign_in(&vm, &[], json!({"token": vm.token}));
    assert_eq!(signed.status, 200, "{}", signed.text);
    assert_eq!(
        signed.json["user"],
        json!({"name": "owner", "role": "admin", "cameras": null})
    );
    assert!(signed.json["expires_at_ms"].as_u64().unwrap() > 0);
    let set = signed.header("set-cookie").unwrap().to_owned();
    for attribute in ["guardian_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "not over plain http: {set}");
    let cookie = signed.session_cookie();
    let me = vm.with_cookie("GET", "/api/v1/session", &cookie, None);
    assert_eq!(
        (me.status, &me.json["user"]["name"]),
        (200, &json!("owner"))
    );
    let events = vm.with_cookie("GET", "/api/v1/events", &cookie, None);
    assert_eq!(events.status, 200);
    assert_eq!(ids(&events.json).len(), 4);
    // Signing out ends the session and clears the cookie.
    let out = vm.with_cookie("DELETE", "/api/v1/session", &cookie, None);
    assert_eq!(out.status, 204);
    assert!(
        out.header("set-cookie").unwrap().contains("Max-Age=0"),
        "{:?}",
        out.headers
    );
    for path in ["/api/v1/session", "/api/v1/events"] {
        let a = vm.with_cookie("GET", path, &cookie, None);
        assert_eq!(
            (a.status, &a.json["error"]),
            (401, &json!("unauthorized")),
            "{path}"
        );
    }
    let owner_cookie = sign_in(&vm, &[], json!({"token": vm.token})).session_cookie();

    // The owner (by its session) makes an admin and a viewer of the porch only.
    let put_user = |name: &str, body: Value| {
        vm.with_cookie(
            "PUT",
            &format!("/api/v1/users/{name}"),
            &owner_cookie,
            Some(&body),
        )
    };
    let a = put_user("kid", json!({"role": "viewer", "cameras": ["porch"]}));
    assert_eq!(a.status, 400, "a new user needs a password: {}", a.text);
    let a = put_user("kid", json!({"password": "short", "role": "viewer"}));
    assert_eq!(a.status, 400, "{}", a.text);
    let a = put_user(
        "kid",
        json!({"password": "kid password 1", "role": "viewer", "cameras": ["porch"]}),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        (&a.json["name"], &a.json["role"], &a.json["cameras"]),
        (&json!("kid"), &json!("viewer"), &json!(["porch"]))
    );
    assert!(a.json["last_sign_in_ms"].is_null());
    let a = put_user(
        "ada",
        json!({"password": "ada password 1", "role": "admin"}),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let (status, users) = vm.get("/api/v1/users");
    assert_eq!(status, 200);
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "kid"]);
    assert!(
        !users.to_string().contains("argon2"),
        "never a hash: {users}"
    );

    // The viewer signs in with its password; a wrong one is 401.
    let wrong = password(&vm, "kid", "not the password");
    assert_eq!(
        (wrong.status, &wrong.json["error"]),
        (401, &json!("unauthorized"))
    );
    assert!(wrong.header("set-cookie").is_none());
    let kid = password(&vm, "kid", "kid password 1");
    assert_eq!(kid.status, 200, "{}", kid.text);
    assert_eq!(
        kid.json["user"],
        json!({"name": "kid", "role": "viewer", "cameras": ["porch"]})
    );
    let kid = kid.session_cookie();
    // It sees only the porch: events, the timeline, cameras.
    let seen = get(&vm, &kid, "/api/v1/events");
    assert_eq!(cameras_of(&seen), ["porch", "porch"]);
    assert_eq!(ids(&seen), porch);
    let seen = get(&vm, &kid, "/api/v1/review");
    assert_eq!(cameras_of(&seen), ["porch", "porch"]);
    let seen = get(&vm, &kid, "/api/v1/review?camera=garage");
    assert!(ids(&seen).is_empty(), "asking for it does not help: {seen}");
    let cams = get(&vm, &kid, "/api/v1/cameras");
    let cam_ids: Vec<&str> = cams["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(cam_ids, ["porch"]);
    let (_, all_cams) = vm.get("/api/v1/cameras");
    assert_eq!(all_cams["cameras"].as_array().unwrap().len(), 2);
    // The garage's event does not exist for it: thumbnail, clip, reviewed, play.
    let other = &garage[0];
    for (method, path, body) in [
        ("GET", format!("/api/v1/events/{other}/thumbnail"), None),
        ("GET", format!("/api/v1/events/{other}/clip"), None),
        (
            "PUT",
            format!("/api/v1/events/{other}/reviewed"),
            Some(json!({"reviewed": true})),
        ),
        (
            "POST",
            format!("/api/v1/events/{other}/play"),
            Some(json!({})),
        ),
        ("GET", "/api/v1/cameras/garage/snapshot".to_owned(), None),
    ] {
        let a = vm.with_cookie(method, &path, &kid, body.as_ref());
        assert_eq!(
            (a.status, &a.json["error"]),
            (404, &json!("not_found")),
            "{method} {path}: {}",
            a.text
        );
    }
    // Its own camera's event passes the check (the test event just has no thumbnail).
    let a = vm.with_cookie(
        "GET",
        &format!("/api/v1/events/{}/thumbnail", porch[0]),
        &kid,
        None,
    );
    assert_eq!(a.status, 404);
    assert!(
        a.json["message"].as_str().unwrap().contains("no thumbnail"),
        "{}",
        a.text
    );
    // Every admin write, and the users, are 403.
    for (method, path, body) in [
        (
            "PUT",
            "/api/v1/cameras/x",
            Some(json!({"source": {"url": "rtsp://192.0.2.9/main"}})),
        ),
        ("DELETE", "/api/v1/cameras/porch", None),
        (
            "PUT",
            "/api/v1/users/x",
            Some(json!({"password": "0123456789", "role": "admin"})),
        ),
        ("PUT", "/api/v1/alerts/rules", Some(json!({"rules": []}))),
        ("PUT", "/api/v1/mode", Some(json!({"mode": "off"}))),
        (
            "PUT",
            "/api/v1/key-slots",
            Some(json!({"body": "AA==", "signature": "AA=="})),
        ),
        ("GET", "/api/v1/users", None),
        ("DELETE", "/api/v1/users/ada", None),
        ("GET", "/api/v1/alerts", None),
    ] {
        let a = vm.with_cookie(method, path, &kid, body.as_ref());
        assert_eq!(
            (a.status, &a.json["error"]),
            (403, &json!("forbidden")),
            "{method} {path}: {}",
            a.text
        );
    }
    let (_, users) = vm.get("/api/v1/users");
    assert_eq!(
        users["users"].as_array().unwrap().len(),
        2,
        "nothing changed"
    );
    // The admin user may.
    let ada = password(&vm, "ada", "ada password 1").session_cookie();
    assert_eq!(
        get(&vm, &ada, "/api/v1/users")["users"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(ids(&get(&vm, &ada, "/api/v1/events")).len(), 4);

    // The viewer marks its event reviewed (the one write it may make).
    let a = vm.with_cookie(
        "PUT",
        &format!("/api/v1/events/{}/reviewed", porch[0]),
        &kid,
        Some(&json!({"reviewed": true})),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["event_id"], porch[0].as_str());
    assert!(a.json["reviewed_at_ms"].is_u64());

    // The timeline: newest first, in pages.
    let (status, page1) = vm.get("/api/v1/review?limit=3");
    assert_eq!(status, 200, "{page1}");
    let newest_first: Vec<String> = made.iter().rev().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids(&page1), newest_first[..3]);
    let starts: Vec<u64> = page1["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["started_at_ms"].as_u64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");
    let before = page1["next_before"].as_u64().expect("a full page goes on");
    assert_eq!(before, starts[2]);
    let (_, page2) = vm.get(&format!("/api/v1/review?limit=3&before={before}"));
    assert_eq!(ids(&page2), newest_first[3..]);
    assert!(page2["next_before"].is_null(), "{page2}");
    // The reviewed filter, after the owner marks a garage event too.
    let (status, marked) = vm.send(
        "PUT",
        &format!("/api/v1/events/{}/reviewed", garage[1]),
        Some(&json!({"reviewed": true})),
    );
    assert_eq!(status, 200, "{marked}");
    let mut want_reviewed = vec![garage[1].clone(), porch[0].clone()];
    let (_, reviewed) = vm.get("/api/v1/review?reviewed=true");
    let mut got = ids(&reviewed);
    got.sort();
    want_reviewed.sort();
    assert_eq!(got, want_reviewed);
    assert!(
        reviewed["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["reviewed_at_ms"].is_u64())
    );
    let (_, unreviewed) = vm.get("/api/v1/review?reviewed=false");
    assert_eq!(ids(&unreviewed), [porch[1].clone(), garage[0].clone()]);
    assert!(
        unreviewed["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["reviewed_at_ms"].is_null())
    );
    let (_, listed) = vm.get("/api/v1/events");
    let marked_row = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == garage[1].as_str())
        .unwrap()
        .clone();
    assert_eq!(marked_row["reviewed_at_ms"], marked["reviewed_at_ms"]);
    let seen = get(&vm, &kid, "/api/v1/review?reviewed=true");
    assert_eq!(ids(&seen), [porch[0].clone()]);
    // The calendar counts what each may see.
    let (status, days) = vm.get("/api/v1/review/days");
    assert_eq!(status, 200, "{days}");
    assert_eq!(days["time_zone"], "UTC");
    assert_eq!(
        (day_sum(&days, "events"), day_sum(&days, "unreviewed")),
        (4, 2)
    );
    let kid_days = get(&vm, &kid, "/api/v1/review/days");
    assert_eq!(
        (
            day_sum(&kid_days, "events"),
            day_sum(&kid_days, "unreviewed")
        ),
        (2, 1)
    );
    let (_, unmarked) = vm.send(
        "PUT",
        &format!("/api/v1/events/{}/reviewed", garage[1]),
        Some(&json!({"reviewed": false})),
    );
    assert!(unmarked["reviewed_at_ms"].is_null(), "{unmarked}");
    let (_, days) = vm.get("/api/v1/review/days");
    assert_eq!(day_sum(&days, "unreviewed"), 3);

    // The edge's telemetry history has its reports; the viewer sees only its cameras there.
    let peer = edge.peer_id();
    let history_path = format!("/api/v1/devices/{peer}/telemetry");
    wait_for("a telemetry report", WAIT, &logs, || {
        vm.get(&history_path).1["samples"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    });
    let (status, history) = vm.get(&history_path);
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["peer_id"], peer.as_str());
    assert_eq!(history["interval_secs"], 30);
    let sample = &history["samples"][0];
    assert!(sample["at_ms"].as_u64().unwrap() > 0, "{sample}");
    assert!(sample["mem_total_bytes"].as_u64().unwrap() > 0, "{sample}");
    assert!(
        history["offline"].as_array().unwrap().is_empty(),
        "{history}"
    );
    let kid_history = get(&vm, &kid, &history_path);
    for s in kid_history["samples"].as_array().unwrap() {
        for c in s["cameras"].as_array().unwrap() {
            assert_eq!(c["camera_id"], "porch", "{kid_history}");
        }
    }
    let (status, _) = vm.get(&format!("/api/v1/devices/{}/telemetry", vm.peer_id));
    assert_eq!(status, 404, "not an edge");

    // Ten wrong passwords for one user, from ten addresses: that user is refused for now
    // (429), whatever address it comes from; the owner token and other users still sign in.
    let a = put_user(
        "bob",
        json!({"password": "bob password 1", "role": "viewer"}),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    for i in 1..=10 {
        let from = format!("192.0.2.{i}");
        let a = sign_in(
            &vm,
            &[("X-Forwarded-For", &from)],
            json!({"username": "bob", "password": format!("guess {i} wrong")}),
        );
        assert_eq!(a.status, 401, "guess {i}: {}", a.text);
    }
    let a = sign_in(
        &vm,
        &[("X-Forwarded-For", "198.51.100.1")],
        json!({"username": "bob", "password": "bob password 1"}),
    );
    assert_eq!(
        (a.status, &a.json["error"]),
        (429, &json!("too_many_attempts")),
        "{}",
        a.text
    );
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let a = sign_in(
        &vm,
        &[("X-Forwarded-For", "198.51.100.2")],
        json!({"token": vm.token}),
    );
    assert_eq!(a.status, 200, "the owner is not locked out: {}", a.text);
    assert_eq!(sign_in(&vm, &[], json!({"token": vm.token})).status, 200);
    let a = sign_in(
        &vm,
        &[("X-Forwarded-For", "198.51.100.3")],
        json!({"username": "ada", "password": "ada password 1"}),
    );
    assert_eq!(a.status, 200, "another user is not: {}", a.text);

    // A new password ends the user's sessions (a role or camera change does not, and applies
    // at once).
    let a = put_user(
        "kid",
        json!({"role": "viewer", "cameras": ["porch", "garage"]}),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(ids(&get(&vm, &kid, "/api/v1/events")).len(), 4);
    let a = put_user(
        "kid",
        json!({"password": "kid password 2", "role": "viewer", "cameras": ["porch"]}),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let a = vm.with_cookie("GET", "/api/v1/session", &kid, None);
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(password(&vm, "kid", "kid password 1").status, 401);
    let kid = password(&vm, "kid", "kid password 2");
    assert_eq!(kid.status, 200, "{}", kid.text);
    let kid = kid.session_cookie();
    let (_, users) = vm.get("/api/v1/users");
    let kid_row = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "kid")
        .unwrap()
        .clone();
    assert!(kid_row["last_sign_in_ms"].is_u64(), "{kid_row}");

    // Sessions are kept in the database: a restart keeps everyone signed in.
    vm.stop();
    vm.start();
    let me = get(&vm, &kid, "/api/v1/session");
    assert_eq!(me["user"]["name"], "kid");
    assert_eq!(
        cameras_of(&get(&vm, &kid, "/api/v1/events")),
        ["porch", "porch"]
    );
    assert_eq!(
        get(&vm, &owner_cookie, "/api/v1/session")["user"]["name"],
        "owner"
    );

    // Deleting the user ends its sessions.
    let a = vm.with_cookie("DELETE", "/api/v1/users/kid", &owner_cookie, None);
    assert_eq!(a.status, 204, "{}", a.text);
    assert_eq!(
        vm.with_cookie("GET", "/api/v1/events", &kid, None).status,
        401
    );
    assert_eq!(password(&vm, "kid", "kid password 2").status, 401);
    let a = vm.with_cookie("DELETE", "/api/v1/users/kid", &owner_cookie, None);
    assert_eq!(a.status, 404, "{}", a.text);
}
