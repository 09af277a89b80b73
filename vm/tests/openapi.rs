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
    let mut response = spec["paths"][path]["get"]["responses"][status.to_string()].clone();
    assert!(response.is_object(), "{path} does not document {status}");
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

fn check(spec: &Value, vm: &Vm, path_template: &str, url: &str, token: Option<&str>) -> u16 {
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
    status
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
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for(
        "events and telemetry",
        Duration::from_secs(30),
        &[&vm_log, &edge_log],
        || {
            vm.event_ids().len() == 3
                && vm.get("/api/v1/health").1["edges"][0]["disk_used_percent"].is_u64()
        },
    );

    let token = vm.token.clone();
    let documented: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        documented,
        [
            "/api/v1/devices",
            "/api/v1/events",
            "/api/v1/health",
            "/metrics"
        ]
    );
    for path in ["/api/v1/devices", "/api/v1/events", "/api/v1/health"] {
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
    // Paging: a full page names where the next starts.
    let (_, page) = vm.get("/api/v1/events?limit=2");
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_since"], page["events"][1]["started_at_ms"]);

    // /metrics: text, no token.
    let resp = ureq::get(&format!("{}/metrics", vm.http)).call().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.content_type()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.into_string().unwrap();
    assert!(text.contains("guardian_vm_events_stored_total 3"), "{text}");
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
