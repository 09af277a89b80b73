//! Cameras configured from afar (issue 17), with the release binaries: a camera put through
//! the vm's API runs on the edge without anyone touching the box, its live state comes back
//! in `GET /api/v1/cameras`; a password sent in the clear is sealed on arrival and appears
//! nowhere in the vm's directory or log (the edge opens it for the camera it is bound to),
//! and one sealed by the owner's CLI (`guardian cameras set`) reaches the edge the same way;
//! a change made while the edge is offline reaches it on reconnect; cameras added or removed
//! on the box show at the vm and are kept through its pushes; a deleted camera stops on the edge; bad bodies are 400s
//! that name the field.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

/// The camera `id` in `GET /api/v1/cameras`, if listed.
fn camera(vm: &Vm, id: &str) -> Option<serde_json::Value> {
    let (status, body) = vm.get("/api/v1/cameras");
    assert_eq!(status, 200, "{body}");
    body["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
}

/// The cameras of the edge's `edge.toml` (id, name, url).
fn edge_cameras(edge: &Edge) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(edge.dir.join("edge.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v.get("cameras")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .map(|c| {
                    let f = |k: &str| c.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
                    (f("id"), f("name"), f("url"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `guardian-edge camera ARGS --data DIR` on the box: its output.
fn edge_camera(edge: &Edge, args: &[&str]) -> String {
    run_ok(
        Command::new(bin("guardian-edge"))
            .arg("camera")
            .args(args)
            .arg("--data")
            .arg(&edge.dir),
    )
}

/// The camera ids of the edge's `edge.toml`, sorted.
fn ids(edge: &Edge) -> Vec<String> {
    let mut ids: Vec<String> = edge_cameras(edge).into_iter().map(|c| c.0).collect();
    ids.sort();
    ids
}

#[test]
fn cameras_put_at_the_vm_run_on_the_edge_and_their_passwords_stay_sealed() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| c.telemetry.interval_secs = 1);
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    // A camera the owner added on the box before the vm configured any.
    edge_camera(&edge, &["add", "--id", "local", "--url", "test://ball"]);
    edge.start();
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for("the edge to enroll", WAIT, &logs, || {
        vm.devices().first().is_some_and(|d| d["online"] == true)
    });

    // Bad bodies say what is wrong; nothing is stored.
    for (body, field) in [
        (json!({"source": {}}), "source.url"),
        (json!({"source": {"url": "http://x/"}}), "source.url"),
        (
            json!({"source": {"url": "test://ball"}, "detect": {"fps": 90}}),
            "detect.fps",
        ),
        (
            json!({"source": {"url": "test://ball"}, "detect": {"zones": [{"points": [[0, 0], [5, 5]]}]}}),
            "detect.zones",
        ),
        (
            json!({"source": {"url": "test://ball"}, "edge": "shop"}),
            "no edge",
        ),
        (
            json!({"source": {"url": "test://ball"}, "colour": "red"}),
            "colour",
        ),
    ] {
        let (status, answer) = vm.send("PUT", "/api/v1/cameras/porch", Some(&body));
        assert_eq!(status, 400, "{body} → {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(field), "{message} should name {field}");
    }
    let (status, _) = vm.send(
        "PUT",
        "/api/v1/cameras/Bad%20Id",
        Some(&json!({"source": {"url": "test://ball"}})),
    );
    assert_eq!(status, 400);
    assert!(camera(&vm, "porch").is_none());

    // A camera put at the vm streams on the edge.
    let (status, put) = vm.send(
        "PUT",
        "/api/v1/cameras/porch",
        Some(&json!({
            "name": "Porch",
            "source": {"url": "test://ball"},
            "detect": {"fps": 2, "zones": [{"name": "steps", "points": [[0, 500], [1000, 500], [1000, 1000], [0, 1000]]}]},
            "record": {"pre_roll_secs": 3, "post_roll_secs": 4}
        })),
    );
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["edge"], edge.peer_id());
    assert_eq!(put["detect"]["zones"][0]["name"], "steps");
    wait_for(
        "the porch camera streaming on the edge",
        WAIT,
        &logs,
        || {
            camera(&vm, "porch")
                .is_some_and(|c| c["state"] == "streaming" && c["config_state"] == "applied")
        },
    );
    let c = camera(&vm, "porch").unwrap();
    assert!(c["fps"].as_f64().unwrap() > 0.0, "{c}");
    // The camera added on the box was reported to the vm, and kept through its pushes.
    assert_eq!(ids(&edge), ["local", "porch"], "edge.toml after the push");
    wait_for("the box's own camera listed at the vm", WAIT, &logs, || {
        camera(&vm, "local")
            .is_some_and(|c| c["state"] == "streaming" && c["config_state"] == "applied")
    });

    // A password sent in the clear is sealed at once: the vm keeps only the sealed form, the
    // edge opens it for its camera and host.
    const SECRET: &str = "hunter2-correct-horse-battery-staple-with-a-tail-long-enough-to-scan-for";
    let (status, gate) = vm.send(
        "PUT",
        "/api/v1/cameras/gate",
        Some(&json!({
            "source": {"url": "rtsp://127.0.0.1:9/stream1", "username": "admin", "password": SECRET},
            "enabled": false
        })),
    );
    assert_eq!(status, 200, "{gate}");
    assert_eq!(gate["source"]["username"], "admin");
    assert_eq!(gate["source"]["has_password"], true);
    let gate_text = gate.to_string();
    assert!(
        !gate_text.contains(SECRET) && !gate_text.contains("password_sealed"),
        "{gate}"
    );
    wait_for("the gate camera on the edge", WAIT, &logs, || {
        edge_cameras(&edge).iter().any(|c| c.0 == "gate")
    });
    let on_edge = edge_cameras(&edge);
    let gate_url = &on_edge.iter().find(|c| c.0 == "gate").unwrap().2;
    assert_eq!(
        gate_url,
        &format!("rtsp://admin:{SECRET}@127.0.0.1:9/stream1")
    );
    let (_, all) = vm.get("/api/v1/cameras");
    assert!(!all.to_string().contains(SECRET));

    // The owner's CLI seals the password itself: the vm never sees it at all.
    const SEALED_HERE: &str = "another-camera-password-that-only-the-owner-and-the-edge-ever-see";
    let password_file = root.path().join("yard-password");
    std::fs::write(&password_file, format!("{SEALED_HERE}\n")).unwrap();
    let set = run_ok(
        Command::new(bin("guardian"))
            .args(["cameras", "set", "--vm", &vm.http, "--token", &vm.token])
            .args([
                "--id",
                "yard",
                "--url",
                "rtsp://viewer@127.0.0.1:10/live",
                "--password-file",
            ])
            .arg(&password_file),
    );
    assert!(set.contains("yard"), "{set}");
    wait_for(
        "the yard camera's password opened on the edge",
        WAIT,
        &logs,
        || {
            edge_cameras(&edge).iter().any(|c| {
                c.0 == "yard" && c.2 == format!("rtsp://viewer:{SEALED_HERE}@127.0.0.1:10/live")
            })
        },
    );
    assert_eq!(camera(&vm, "yard").unwrap()["source"]["has_password"], true);
    let (status, _) = vm.send("DELETE", "/api/v1/cameras/yard", None);
    assert_eq!(status, 204);

    // A change while the edge is offline reaches it when it comes back.
    assert_eq!(edge.stop(), Some(0));
    let (status, _) = vm.send(
        "PUT",
        "/api/v1/cameras/porch",
        Some(&json!({"name": "Front porch", "source": {"url": "test://ball"}})),
    );
    assert_eq!(status, 200);
    assert_eq!(camera(&vm, "porch").unwrap()["config_state"], "pending");
    edge.start();
    wait_for(
        "the renamed porch camera applied on reconnect",
        WAIT,
        &logs,
        || {
            camera(&vm, "porch").is_some_and(|c| c["config_state"] == "applied")
                && edge_cameras(&edge)
                    .iter()
                    .any(|c| c.0 == "porch" && c.1 == "Front porch")
        },
    );

    // Deleted at the vm: it stops on the edge; the box's own camera stays.
    let (status, _) = vm.send("DELETE", "/api/v1/cameras/porch", None);
    assert_eq!(status, 204);
    let (status, _) = vm.send("DELETE", "/api/v1/cameras/porch", None);
    assert_eq!(status, 404);
    assert!(camera(&vm, "porch").is_none());
    wait_for("the porch camera gone from the edge", WAIT, &logs, || {
        ids(&edge) == ["gate", "local"]
    });
    let listed = edge_camera(&edge, &["list"]);
    assert!(!listed.contains("porch"), "{listed}");
    assert!(listed.contains("local"), "{listed}");

    // Added and removed on the box while it runs: the vm follows, in the same sequence.
    edge_camera(
        &edge,
        &[
            "add",
            "--id",
            "side",
            "--url",
            "test://ball",
            "--name",
            "Side door",
        ],
    );
    edge_camera(&edge, &["remove", "--id", "local"]);
    wait_for("the box's changes at the vm", WAIT, &logs, || {
        camera(&vm, "local").is_none()
            && camera(&vm, "side")
                .is_some_and(|c| c["name"] == "Side door" && c["config_state"] == "applied")
    });
    assert_eq!(ids(&edge), ["gate", "side"]);

    // The password is nowhere in the vm's files or log.
    assert_eq!(vm.stop(), Some(0));
    assert!(
        files_holding(&vm.dir, SECRET.as_bytes()).is_empty(),
        "the vm's directory holds the password"
    );
    assert!(!std::fs::read_to_string(vm.log()).unwrap().contains(SECRET));
    assert!(
        !std::fs::read_to_string(edge.log())
            .unwrap()
            .contains(SECRET)
    );
}

/// The camera stand-in with `args`: (its process, its stdout lines' values by prefix).
fn standin(
    dir: &std::path::Path,
    args: &[&str],
) -> (Proc, std::collections::HashMap<String, String>) {
    let log = dir.join("standin.log");
    let proc = Proc::spawn(
        Command::new("/usr/bin/python3")
            .arg(repo().join("edge/tools/camera-standin.py"))
            .args(["--port", "0", "--no-person", "--start", "launch"])
            .args(args),
        &log,
    );
    let mut lines = std::collections::HashMap::new();
    wait_for("the stand-in to serve", WAIT, &[&log], || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for l in text.lines() {
            if let Some((k, v)) = l.split_once(' ') {
                lines.insert(k.to_owned(), v.trim().to_owned());
            }
        }
        lines.contains_key("READY")
            && (!args.contains(&"--onvif-port") || lines.contains_key("ONVIF"))
    });
    (proc, lines)
}

/// The stand-in's password, and a wrong one: long enough to search the vm's files for.
const RIGHT: &str = "the-door-camera-password-that-only-its-edge-may-ever-read-in-clear";
const WRONG: &str = "not-the-door-camera-password-but-also-one-the-vm-must-never-keep";

#[test]
fn a_wrong_password_fails_unauthorized_an_onvif_camera_streams_and_the_owner_sees_a_sealed_snapshot()
 {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| c.telemetry.interval_secs = 1);
    vm.start();
    let owner = owner(
        root.path(),
        &vm.tenant_id,
        "a long passphrase of the owner of this home",
    );
    let mut edge = Edge::install(
        &vm.package_for("home", &owner.recipient, None),
        &root.path().join("edge"),
    );
    edge.start();
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for("the edge to enroll", WAIT, &logs, || {
        vm.devices().first().is_some_and(|d| d["online"] == true)
    });
    let (_camera, lines) = standin(
        root.path(),
        &[
            "--user",
            "admin",
            "--password",
            RIGHT,
            "--width",
            "960",
            "--height",
            "540",
            "--fps",
            "10",
            "--sub-path",
            "/sub",
            "--onvif-port",
            "0",
        ],
    );
    let url = lines["READY"].clone();

    // The wrong password: the camera refuses it, and the owner is told so.
    let (status, _) = vm.send(
        "PUT",
        "/api/v1/cameras/door",
        Some(&json!({"source": {"url": url, "username": "admin", "password": WRONG}})),
    );
    assert_eq!(status, 200);
    wait_for("the door camera failed, unauthorized", WAIT, &logs, || {
        camera(&vm, "door").is_some_and(|c| c["state"] == "failed" && c["reason"] == "unauthorized")
    });

    // The right one, sealed by the owner's CLI: it streams, and says how.
    let password_file = root.path().join("door-password");
    std::fs::write(&password_file, format!("{RIGHT}\n")).unwrap();
    run_ok(
        Command::new(bin("guardian"))
            .args(["cameras", "set", "--vm", &vm.http, "--token", &vm.token])
            .args([
                "--id",
                "door",
                "--url",
                &url,
                "--username",
                "admin",
                "--password-file",
            ])
            .arg(&password_file),
    );
    wait_for("the door camera streaming", WAIT, &logs, || {
        camera(&vm, "door")
            .is_some_and(|c| c["state"] == "streaming" && c["width"] == 960 && c["height"] == 540)
    });
    let c = camera(&vm, "door").unwrap();
    assert!(c["bitrate_kbps"].as_u64().unwrap() > 0, "{c}");
    let last = c["last_frame_ms"].as_u64().unwrap();
    assert!(protocols::now_ms().abs_diff(last) < 30_000, "{c}");

    // A fresh picture, sealed by the edge to the owner; the vm relays what it cannot open.
    let jpeg_path = root.path().join("door.jpg");
    let out = run_ok(&mut owner_command(
        &vm,
        &owner,
        &[
            "cameras",
            "snapshot",
            "--id",
            "door",
            "-o",
            jpeg_path.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("640x360"), "{out}");
    let jpeg = std::fs::read(&jpeg_path).unwrap();
    assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    let (status, _) = vm.get("/api/v1/cameras/nope/snapshot");
    assert_eq!(status, 404);

    // The same camera through ONVIF: the edge asks the device service for the streams, the
    // substream decoded for detection.
    let xaddr = lines["ONVIF"].clone();
    let (status, put) = vm.send(
        "PUT",
        "/api/v1/cameras/door",
        Some(
            &json!({"source": {"onvif": {"xaddr": xaddr, "username": "admin",
            "password": RIGHT, "profile": "main", "substream_profile": "sub"}}}),
        ),
    );
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["source"]["onvif"]["profile"], "main");
    assert!(put["source"]["url"].is_null());
    wait_for(
        "the door camera streaming through ONVIF",
        WAIT,
        &logs,
        || {
            camera(&vm, "door").is_some_and(|c| {
                c["state"] == "streaming" && c["config_state"] == "applied" && c["width"] == 960
            })
        },
    );
    // Its password in edge.toml is the ONVIF user's, for the camera's own services only.
    let text = std::fs::read_to_string(edge.dir.join("edge.toml")).unwrap();
    assert!(
        text.contains("[cameras.onvif]") && text.contains(RIGHT),
        "edge.toml holds the ONVIF password"
    );

    // Discovery is off on this edge (the default outside installed edges): said so, and a
    // scan request is answered as such.
    wait_for("the edge's discovery report", WAIT, &logs, || {
        let (_, d) = vm.get("/api/v1/cameras/discovered");
        d["edges"][0]["enabled"] == false
    });
    let (status, scan) = vm.send("POST", "/api/v1/cameras/discover", None);
    assert_eq!(status, 202, "{scan}");
    assert_eq!(scan["edges"][0]["outcome"], "disabled");

    assert_eq!(vm.stop(), Some(0));
    for secret in [RIGHT, WRONG] {
        assert!(
            files_holding(&vm.dir, secret.as_bytes()).is_empty(),
            "{secret} at the vm"
        );
        assert!(!std::fs::read_to_string(vm.log()).unwrap().contains(secret));
    }
    assert_eq!(edge.stop(), Some(0));
}
