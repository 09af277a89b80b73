//! The HTTP API on a bad day, with the release binary on loopback, bounded in count and
//! time: slow clients are cut at the header and body timeouts, a greedy address is capped
//! (503 before any request is read) while others are served, failed sign-ins are limited
//! per (forwarded) address and logged, answers carry the safety headers, `/metrics` needs the
//! token or lives on its own listener, and files are private.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

/// Sends `request` raw and reads the answer until the server closes or 10 s pass.
fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn get(vm: &Vm, path: &str, token: Option<&str>, forwarded: &str) -> (u16, ureq::Response) {
    let mut r = ureq::get(&format!("{}{path}", vm.http)).set("x-forwarded-for", forwarded);
    if let Some(t) = token {
        r = r.set("authorization", &format!("Bearer {t}"));
    }
    match r.call() {
        Ok(resp) => (resp.status(), resp),
        Err(ureq::Error::Status(code, resp)) => (code, resp),
        Err(e) => panic!("{path}: {e}"),
    }
}

#[test]
fn slow_greedy_and_guessing_clients_are_held_off() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| {
        c.http.max_connections_per_address = 8;
        c.http.header_read_timeout_secs = 2;
        c.http.body_timeout_secs = 2;
        c.http.sign_in_failures_per_minute = 5;
        // The test client is the proxy: its X-Forwarded-For names the client.
        c.http.trusted_proxies = vec!["127.0.0.1".into()];
    });
    vm.start();
    let addr = vm.http.trim_start_matches("http://").to_owned();
    let token = vm.token.clone();
    let log = vm.log();

    // Every answer carries the safety headers; an error says nothing internal.
    let (status, resp) = get(&vm, "/api/v1/events", Some(&token), "198.51.100.1");
    assert_eq!(status, 200);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(resp.header("x-frame-options"), Some("DENY"));
    let (status, resp) = get(
        &vm,
        "/api/v1/events?since=18446744073709551615",
        Some(&token),
        "198.51.100.1",
    );
    assert_eq!(status, 400);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body: serde_json::Value = resp.into_json().unwrap();
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("since must be"),
        "{body}"
    );

    // /metrics: the owner token, not anyone.
    assert_eq!(get(&vm, "/metrics", None, "198.51.100.1").0, 401);
    assert_eq!(get(&vm, "/metrics", Some(&token), "198.51.100.1").0, 200);
    assert_eq!(get(&vm, "/healthz", None, "198.51.100.1").0, 200);

    // Failed sign-ins: five wrong tokens from one address, then that address is refused
    // (even with the right token) while another is served.
    let guesser = "203.0.113.9";
    for i in 0..5 {
        assert_eq!(
            get(
                &vm,
                "/api/v1/devices",
                Some(&format!("gdn_guess{i}")),
                guesser
            )
            .0,
            401
        );
    }
    let (status, resp) = get(&vm, "/api/v1/devices", Some(&token), guesser);
    assert_eq!(status, 429);
    let retry: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        get(&vm, "/api/v1/devices", Some(&token), "203.0.113.10").0,
        200
    );
    // A forged first entry does not help: the proxy's appended address counts.
    assert_eq!(
        get(
            &vm,
            "/api/v1/devices",
            Some(&token),
            &format!("10.9.9.9, {guesser}")
        )
        .0,
        429
    );
    // The owner token is not taken from a URL.
    let event_clip = "/api/v1/events/ev-1/clip";
    assert_eq!(
        get(
            &vm,
            &format!("{event_clip}?token={token}"),
            None,
            "198.51.100.1"
        )
        .0,
        400
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("failed sign-in") && text.contains(guesser),
        "the failures are logged with the address"
    );
    assert!(!text.contains("gdn_guess"), "no guessed token in the log");
    assert!(!text.contains(&token), "no owner token in the log");

    // Slow clients: eight connections (the per-address cap) that never finish their
    // headers. A ninth is answered 503 at once, before its request is read.
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let mut refused = String::new();
    wait_for(
        "the ninth connection refused",
        Duration::from_secs(10),
        &[&log],
        || {
            refused = raw(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            status_of(&refused) == 503
        },
    );
    assert!(refused.contains("retry-after: 1"), "{refused}");
    // The header timeout cuts them: each read ends (a 408 or the close) within it.
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    }
    let cut = started.elapsed();
    assert!(
        cut < Duration::from_secs(8),
        "slow clients held for {cut:?}"
    );
    // Served again once they are gone.
    wait_for("the slots freed", Duration::from_secs(5), &[&log], || {
        status_of(&raw(
            &addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )) == 200
    });

    // A slow body: the headers announce 1000 bytes, ten arrive; cut at the body timeout.
    let started = Instant::now();
    let answer = raw(
        &addr,
        format!(
            "PUT /api/v1/key-slots HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"body\": \"A"
        )
        .as_bytes(),
    );
    let cut = started.elapsed();
    assert!(
        cut < Duration::from_secs(8),
        "a slow body held for {cut:?}: {answer}"
    );
    assert!(status_of(&answer) >= 400 || answer.is_empty(), "{answer}");

    // /metrics on its own loopback listener: there without a token, gone from the API.
    vm.stop();
    let metrics_port = free_port();
    vm.edit_config(|c| c.http.metrics_listen = format!("127.0.0.1:{metrics_port}"));
    vm.start();
    let own = ureq::get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .call()
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(
        own.into_string()
            .unwrap()
            .contains("guardian_vm_devices_registered")
    );
    assert_eq!(get(&vm, "/metrics", Some(&token), "198.51.100.1").0, 404);
    vm.stop();

    // Every file the vm wrote is its own alone (keys, database, configuration, objects).
    let mut open_to_others = Vec::new();
    let mut stack = vec![vm.dir.clone()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            open_to_others.push(p.clone());
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(
        open_to_others.is_empty(),
        "readable by others: {open_to_others:?}"
    );
}
