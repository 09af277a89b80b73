//! Alerts (issue 18) with the release binaries and real receivers: a signed webhook and an
//! ntfy-format topic (`test-support/tools/notify_receiver.py`, written apart from the vm from
//! the documented scheme), fed by events an enrolled edge sends. The default rule fires for a
//! person when the household is away; the webhook's signature checks and a replay is refused;
//! a second person within the cooldown sends nothing; mode `off` sends nothing; a receiver
//! down (and the vm restarted meanwhile) gets the alert once it is back, once.

mod support;

use std::process::Command;
use std::time::Duration;

use guardian_vm::alerts::channels::{Ntfy, Webhook};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(60);
const SECRET: &str = "the-webhook-secret-shared-with-the-receiver";

/// The notification receiver: its process, URL and log.
struct Receiver {
    _proc: Proc,
    url: String,
    log: std::path::PathBuf,
    down: std::path::PathBuf,
}

impl Receiver {
    fn start(dir: &std::path::Path) -> Receiver {
        let log = dir.join("received.jsonl");
        let down = dir.join("receiver-down");
        let out = dir.join("receiver.out");
        let proc = Proc::spawn(
            Command::new("/usr/bin/python3")
                .arg(repo().join("test-support/tools/notify_receiver.py"))
                .args(["--port", "0", "--secret", SECRET, "--log"])
                .arg(&log)
                .arg("--down-file")
                .arg(&down),
            &out,
        );
        let mut url = String::new();
        wait_for("the receiver", WAIT, &[&out], || {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            match text.lines().find_map(|l| l.strip_prefix("READY ")) {
                Some(u) => {
                    url = u.trim().to_owned();
                    true
                }
                None => false,
            }
        });
        Receiver {
            _proc: proc,
            url,
            log,
            down,
        }
    }

    /// Adds its webhook (`home-automation`) and ntfy topic (`phones`, `front-door`, with
    /// `token`) to the vm's channels, as an owner writes them in vm.toml.
    fn configure(&self, c: &mut guardian_vm::config::VmConfig, token: &str) {
        c.notify.webhooks.push(Webhook {
            name: "home-automation".into(),
            url: format!("{}/webhook", self.url),
            secret: SECRET.into(),
        });
        c.notify.ntfy.push(Ntfy {
            name: "phones".into(),
            url: format!("{}/ntfy", self.url),
            topic: "front-door".into(),
            token: token.into(),
        });
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn of(&self, kind: &str) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|r| r["kind"] == kind)
            .collect()
    }
}

fn emit(edge: &Edge, camera: &str) -> String {
    emit_with(edge, camera, &[])
}

fn emit_with(edge: &Edge, camera: &str, more: &[&str]) -> String {
    run_ok(
        Command::new(bin("guardian-edge"))
            .args([
                "emit-test-event",
                "--camera",
                camera,
                "--category",
                "person",
            ])
            .args(more)
            .arg("--data")
            .arg(&edge.dir),
    )
    .trim()
    .to_owned()
}

/// Every webhook body `r` received validates against `WebhookPayload` in `vm/openapi.yaml`.
fn assert_webhooks_match_the_spec(r: &Receiver) {
    let text = std::fs::read_to_string(repo().join("vm/openapi.yaml")).unwrap();
    let spec: Value = serde_yaml_ng::from_str(&text).unwrap();
    let schema = json!({
        "$ref": "#/components/schemas/WebhookPayload",
        "components": spec["components"],
    });
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let hooks = r.of("webhook");
    assert!(!hooks.is_empty());
    for hook in hooks {
        let errors: Vec<String> = validator
            .iter_errors(&hook["body"])
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", hook["body"]);
    }
}

fn webhooks_for(r: &Receiver, event: &str) -> Vec<Value> {
    r.of("webhook")
        .into_iter()
        .filter(|w| w["body"]["event_id"] == event && w["status"] == 200)
        .collect()
}

#[test]
fn a_person_reaches_a_signed_webhook_and_ntfy_once_with_cooldown_mode_and_outage() {
    let root = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(root.path());
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| receiver.configure(c, "tk_test"));
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for("the edge to enroll", WAIT, &logs, || {
        vm.devices().first().is_some_and(|d| d["online"] == true)
    });
    let (status, rules) = vm.get("/api/v1/alerts/rules");
    assert_eq!(status, 200);
    assert_eq!(rules["source"], "config");
    assert_eq!(rules["rules"][0]["modes"], json!(["away"]));
    assert_eq!(vm.get("/api/v1/mode").1["mode"], "away", "armed by default");

    // A person at the door, the event still open (as the camera sends it when the person is
    // confirmed): a signed webhook and an ntfy post.
    let first = emit_with(&edge, "porch", &["--open"]);
    wait_for("the webhook and the ntfy post", WAIT, &logs, || {
        !webhooks_for(&receiver, &first).is_empty() && !receiver.of("ntfy").is_empty()
    });
    let hook = &webhooks_for(&receiver, &first)[0];
    assert_eq!(hook["signature_ok"], true, "{hook}");
    assert_eq!(hook["fresh"], true);
    let body = &hook["body"];
    assert_eq!(
        (
            body["type"].as_str(),
            body["camera_id"].as_str(),
            body["label"].as_str()
        ),
        (Some("event"), Some("porch"), Some("person"))
    );
    assert_eq!(body["rule"], "people-and-vehicles");
    assert!(
        body["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/#/events/{first}")),
        "{body}"
    );
    assert_eq!(body["delivery"], hook["delivery"]);
    assert!(
        body.get("image").is_none() && !body.to_string().contains("jpeg"),
        "metadata only"
    );
    let post = &receiver.of("ntfy")[0];
    assert_eq!(post["topic"], "front-door");
    assert_eq!(post["title"], "A person at porch");
    assert_eq!(post["priority"], "4");
    assert_eq!(post["tags"], "rotating_light,person");
    assert_eq!(post["authorization"], "Bearer tk_test");
    assert!(post["click"].as_str().unwrap().contains(&first));
    // Its clip is not written yet: playback says so, to retry when it closes.
    let (status, refused) = vm.send("POST", &format!("/api/v1/events/{first}/play"), None);
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("still recording"),
        "{refused}"
    );

    // A replayed request is refused by the documented window; the same request again is a
    // duplicate by its delivery id.
    let replay = |timestamp: &str, signature_of: &str| {
        let raw = serde_json::to_vec(&hook["body"]).unwrap();
        let sig = run_ok(Command::new("/usr/bin/python3").args([
            "-c",
            "import hmac,hashlib,sys; print('sha256='+hmac.new(sys.argv[1].encode(), sys.argv[2].encode()+b'.'+sys.argv[3].encode(), hashlib.sha256).hexdigest())",
            SECRET,
            signature_of,
            std::str::from_utf8(&raw).unwrap(),
        ]));
        match ureq::post(&format!("{}/webhook", receiver.url))
            .set("X-Guardian-Timestamp", timestamp)
            .set("X-Guardian-Delivery", hook["delivery"].as_str().unwrap())
            .set("X-Guardian-Signature", sig.trim())
            .send_bytes(&raw)
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    let stale = (protocols::now_ms() / 1000 - 3600).to_string();
    assert_eq!(replay(&stale, &stale), 401, "a replay an hour later");
    let now = (protocols::now_ms() / 1000).to_string();
    assert_eq!(replay(&now, &stale), 401, "a timestamp changed");
    assert_eq!(replay(&now, &now), 200);
    assert_eq!(receiver.of("webhook").last().unwrap()["duplicate"], true);

    // Another person at the same camera within the rule's cooldown (60 s): nothing.
    let second = emit(&edge, "porch");
    wait_for("the second event at the vm", WAIT, &logs, || {
        vm.event_ids().contains(&second)
    });
    // Mode off: nothing for another camera either.
    let (status, _) = vm.send("PUT", "/api/v1/mode", Some(&json!({"mode": "off"})));
    assert_eq!(status, 200);
    let third = emit(&edge, "yard");
    wait_for("the third event at the vm", WAIT, &logs, || {
        vm.event_ids().contains(&third)
    });
    // The decisions are made when the events are stored: by now the outbox says all.
    let (_, alerts) = vm.get("/api/v1/alerts");
    let of_event = |e: &str| {
        alerts["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["event_id"] == e)
            .count()
    };
    assert_eq!(
        (of_event(&first), of_event(&second), of_event(&third)),
        (2, 0, 0),
        "{alerts}"
    );
    assert!(
        webhooks_for(&receiver, &second).is_empty() && webhooks_for(&receiver, &third).is_empty()
    );

    // The receiver goes down; an alert waits, failing with the reason, through a vm restart;
    // the receiver comes back and gets it, once.
    let (status, _) = vm.send("PUT", "/api/v1/mode", Some(&json!({"mode": "away"})));
    assert_eq!(status, 200);
    std::fs::write(&receiver.down, b"").unwrap();
    let fourth = emit(&edge, "garage");
    wait_for(
        "the alert failing while the receiver is down",
        WAIT,
        &logs,
        || {
            let (_, a) = vm.get("/api/v1/alerts");
            a["notifications"].as_array().unwrap().iter().any(|n| {
                n["event_id"] == fourth.as_str()
                    && n["channel"] == "webhook:home-automation"
                    && n["status"] == "failing"
                    && n["last_error"] == "HTTP 503"
            })
        },
    );
    assert_eq!(vm.stop(), Some(0));
    vm.start();
    std::fs::remove_file(&receiver.down).unwrap();
    wait_for(
        "the alert delivered after the outage",
        Duration::from_secs(120),
        &logs,
        || !webhooks_for(&receiver, &fourth).is_empty(),
    );
    let delivered = webhooks_for(&receiver, &fourth);
    assert_eq!(delivered.len(), 1, "once: {delivered:?}");
    assert_eq!(delivered[0]["duplicate"], false);
    wait_for("both channels sent", WAIT, &logs, || {
        let (_, a) = vm.get("/api/v1/alerts");
        a["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["event_id"] == fourth.as_str())
            .all(|n| n["status"] == "sent")
    });
    // Rules set through the API win and persist.
    let (status, set) = vm.send(
        "PUT",
        "/api/v1/alerts/rules",
        Some(&json!({"rules": [{"name": "garage-at-night", "cameras": ["garage"], "categories": ["vehicle"], "hours": ["22-06"], "modes": ["home", "away"]}]})),
    );
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["source"], "api");
    let (status, bad) = vm.send(
        "PUT",
        "/api/v1/alerts/rules",
        Some(&json!({"rules": [{"name": "x", "hours": ["25-1"]}]})),
    );
    assert_eq!(status, 400, "{bad}");
    assert!(bad["message"].as_str().unwrap().contains("hours"));
    assert_eq!(vm.stop(), Some(0));
    vm.start();
    assert_eq!(
        vm.get("/api/v1/alerts/rules").1["rules"][0]["name"],
        "garage-at-night"
    );
    assert_webhooks_match_the_spec(&receiver);
    assert_eq!(edge.stop(), Some(0));
}

/// Debian's mosquitto on a free loopback port, and a subscriber printing `TOPIC PAYLOAD`
/// lines of `topics` (retained ones first) into `<dir>/<name>.txt`.
fn broker(dir: &std::path::Path) -> (Proc, u16) {
    let port = free_port();
    let proc = Proc::spawn(
        Command::new("mosquitto").args(["-p", &port.to_string()]),
        &dir.join("mosquitto.log"),
    );
    wait_for("mosquitto", WAIT, &[&dir.join("mosquitto.log")], || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proc, port)
}

fn subscribe(
    dir: &std::path::Path,
    port: u16,
    name: &str,
    topics: &[&str],
) -> (Proc, std::path::PathBuf) {
    let out = dir.join(format!("{name}.txt"));
    let mut c = Command::new("mosquitto_sub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-v", "-q", "1"]);
    for t in topics {
        c.args(["-t", t]);
    }
    (Proc::spawn(&mut c, &out), out)
}

fn lines(p: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(t, v)| (t.to_owned(), v.to_owned())))
        .collect()
}

/// The last value seen on `topic`.
fn last(p: &std::path::Path, topic: &str) -> Option<String> {
    lines(p)
        .into_iter()
        .rev()
        .find(|(t, _)| t == topic)
        .map(|(_, v)| v)
}

/// A person walking past the camera stand-in (the real detector, and the second look by
/// CenterNet) reaches every channel a new user configures: MQTT (with Home Assistant's
/// discovery checked apart from our code), a signed webhook, ntfy and an e-mail.
#[test]
fn a_person_at_the_stand_in_reaches_mqtt_with_discovery_a_webhook_ntfy_and_e_mail() {
    let root = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(root.path());
    let (_broker, port) = broker(root.path());
    let (_watch, seen) = subscribe(
        root.path(),
        port,
        "seen",
        &["guardian/#", "homeassistant/#"],
    );
    let smtp_port = free_port();
    let maildir = root.path().join("mail");
    let _sink = Proc::spawn(
        Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{smtp_port}"),
            ])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir),
        &root.path().join("smtp.log"),
    );
    wait_for(
        "the SMTP sink",
        WAIT,
        &[&root.path().join("smtp.log")],
        || std::net::TcpStream::connect(("127.0.0.1", smtp_port)).is_ok(),
    );
    let mut vm = Vm::init(root.path(), "vm");
    vm.edit_config(|c| {
        receiver.configure(c, "");
        c.mqtt.url = format!("mqtt://127.0.0.1:{port}");
        c.notify.smtp = Some(guardian_vm::alerts::channels::Smtp {
            host: "127.0.0.1".into(),
            port: smtp_port,
            security: guardian_vm::alerts::channels::SmtpSecurity::None,
            from: "guardian@home.example".into(),
            to: vec!["owner@home.example".into()],
            ..Default::default()
        });
    });
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for("the edge to enroll and MQTT to say so", WAIT, &logs, || {
        vm.devices().first().is_some_and(|d| d["online"] == true)
            && last(&seen, "guardian/edges/home/status").as_deref() == Some("online")
    });
    assert_eq!(last(&seen, "guardian/available").as_deref(), Some("online"));
    assert_eq!(last(&seen, "guardian/mode").as_deref(), Some("away"));
    // The porch camera (the stand-in; a person walks past 4 s after the edge connects),
    // configured at the vm: its sensors are announced to Home Assistant.
    let standin_log = root.path().join("standin.log");
    let _camera = Proc::spawn(
        Command::new("/usr/bin/python3")
            .arg(repo().join("edge/tools/camera-standin.py"))
            .args([
                "--port", "0", "--path", "/porch", "--width", "640", "--height", "360",
            ])
            .args(["--fps", "10", "--schedule", "empty:4,person:4,empty:600"]),
        &standin_log,
    );
    let mut camera_url = String::new();
    wait_for("the camera stand-in", WAIT, &[&standin_log], || {
        let text = std::fs::read_to_string(&standin_log).unwrap_or_default();
        match text.lines().find_map(|l| l.strip_prefix("READY ")) {
            Some(u) => {
                camera_url = u.split_whitespace().next().unwrap().to_owned();
                true
            }
            None => false,
        }
    });
    let (status, _) = vm.send(
        "PUT",
        "/api/v1/cameras/porch",
        Some(&json!({"name": "Front porch", "source": {"url": camera_url}})),
    );
    assert_eq!(status, 200);
    wait_for(
        "the porch camera's discovery and state",
        WAIT,
        &logs,
        || {
            last(
                &seen,
                "homeassistant/binary_sensor/guardian_{}/porch_person/config"
                    .replace("{}", &vm.tenant_id.replace('-', "_"))
                    .as_str(),
            )
            .is_some()
                && last(&seen, "guardian/porch/person").is_some()
        },
    );
    // Home Assistant's rules, checked apart from our code, on what the broker retains.
    let retained = root.path().join("retained.txt");
    // (-W: it stops after 2 s and says so with a non-zero status; what it printed is all.)
    let dump = String::from_utf8(
        Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-v",
                "-t",
                "homeassistant/#",
            ])
            .args(["--retained-only", "-W", "2"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(&retained, &dump).unwrap();
    let check = Command::new("/usr/bin/python3")
        .arg(repo().join("test-support/tools/ha_discovery_check.py"))
        .arg(&retained)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}\n{dump}");
    assert!(
        report.contains("OK 4 configs: binary_sensor, select"),
        "{report}"
    );

    // The person: the Frigate-style event as it opens and ends, the alert on MQTT, a signed
    // webhook, an ntfy post and an e-mail.
    let mut event = String::new();
    wait_for(
        "the person's event at the vm",
        Duration::from_secs(120),
        &logs,
        || {
            let (_, body) = vm.get("/api/v1/events?camera=porch");
            match body["events"].as_array().and_then(|e| e.first()) {
                Some(e) => {
                    event = e["event_id"].as_str().unwrap().to_owned();
                    true
                }
                None => false,
            }
        },
    );
    wait_for(
        "the event and the alert on MQTT, the webhook, ntfy and the e-mail",
        WAIT,
        &logs,
        || {
            let l = lines(&seen);
            l.iter()
                .any(|(t, v)| t == "guardian/events" && v.contains(&event) && v.contains("\"end\""))
                && l.iter()
                    .any(|(t, v)| t == "guardian/alerts" && v.contains(&event))
                && mails_about(&maildir, &event).len() == 1
                && !webhooks_for(&receiver, &event).is_empty()
                && receiver
                    .of("ntfy")
                    .iter()
                    .any(|n| n["click"].as_str().is_some_and(|c| c.contains(&event)))
        },
    );
    let of_event: Vec<Value> = lines(&seen)
        .into_iter()
        .filter(|(t, v)| t == "guardian/events" && v.contains(&event))
        .map(|(_, v)| serde_json::from_str(&v).unwrap())
        .collect();
    let ev = &of_event[0];
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["after"]["camera"].as_str(),
            ev["after"]["label"].as_str()
        ),
        (Some("new"), Some("porch"), Some("person")),
        "the event goes out as it opens: {of_event:?}"
    );
    assert_eq!(of_event.last().unwrap()["type"], "end");
    assert!(
        lines(&seen)
            .iter()
            .any(|(t, v)| t == "guardian/porch/person" && v == "1"),
        "the person sensor went on"
    );
    let hook = &webhooks_for(&receiver, &event)[0];
    assert_eq!(hook["signature_ok"], true, "{hook}");
    assert_eq!(
        hook["body"]["verification"]["verdict"], "confirmed",
        "the default rule waited for the edge's second look: {hook}"
    );
    assert_eq!(hook["body"]["verification"]["model"], "centernet");
    assert_webhooks_match_the_spec(&receiver);
    // (Only the event's mail: a health notice, such as a nearly full disk on the machine
    // running the test, may go out to the same mailbox.)
    let mail = mails_about(&maildir, &event).remove(0);
    assert!(
        mail.contains("Subject: [Guardian] A person at porch"),
        "{mail}"
    );
    assert!(mail.contains(&format!("/#/events/{event}")), "{mail}");
    assert!(mail.contains("To: owner@home.example"));

    // The mode from Home Assistant.
    run_ok(Command::new("mosquitto_pub").args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        "guardian/mode/set",
        "-m",
        "home",
    ]));
    wait_for("the mode set from MQTT", WAIT, &logs, || {
        vm.get("/api/v1/mode").1["mode"] == "home"
            && last(&seen, "guardian/mode").as_deref() == Some("home")
    });

    // Availability: the edge restarting, then the vm.
    assert_eq!(edge.stop(), Some(0));
    wait_for("the edge offline on MQTT", WAIT, &logs, || {
        last(&seen, "guardian/edges/home/status").as_deref() == Some("offline")
    });
    edge.start();
    wait_for("the edge back on MQTT", WAIT, &logs, || {
        last(&seen, "guardian/edges/home/status").as_deref() == Some("online")
    });
    assert_eq!(vm.stop(), Some(0));
    wait_for("the vm offline on MQTT", WAIT, &logs, || {
        last(&seen, "guardian/available").as_deref() == Some("offline")
    });
    vm.start();
    wait_for("the vm back on MQTT", WAIT, &logs, || {
        last(&seen, "guardian/available").as_deref() == Some("online")
    });
    let (_, alerts) = vm.get("/api/v1/alerts");
    let sent: Vec<&str> = alerts["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "sent")
        .filter_map(|n| n["channel"].as_str())
        .collect();
    assert!(sent.contains(&"smtp") && sent.contains(&"mqtt"), "{alerts}");
    assert_eq!(edge.stop(), Some(0));
}

#[test]
fn health_alerts_are_raised_and_recovered() {
    let root = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(root.path());
    let mut vm = Vm::init(root.path(), "vm");
    let url = receiver.url.clone();
    vm.edit_config(|c| {
        c.telemetry.interval_secs = 1;
        c.telemetry.offline_after_secs = 2;
        c.alerts.health_check_secs = 1;
        c.alerts.camera_silent_secs = 2;
        c.notify.webhooks.push(Webhook {
            url: format!("{url}/webhook"),
            secret: SECRET.into(),
            ..Default::default()
        });
    });
    vm.start();
    let package = vm.package("home", None);
    let mut edge = Edge::install(&package, &root.path().join("edge"));
    edge.start();
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for("the edge to enroll", WAIT, &logs, || {
        vm.devices().first().is_some_and(|d| d["online"] == true)
    });
    let health = |condition: &str, change: &str| -> Vec<Value> {
        receiver
            .of("webhook")
            .into_iter()
            .map(|w| w["body"].clone())
            .filter(|b| {
                b["type"] == "health" && b["condition"] == condition && b["change"] == change
            })
            .collect()
    };
    // A camera that cannot be reached: down after 2 s, said once.
    let (status, _) = vm.send(
        "PUT",
        "/api/v1/cameras/gate",
        Some(&json!({"source": {"url": "rtsp://127.0.0.1:9/stream"}})),
    );
    assert_eq!(status, 200);
    wait_for("camera_down raised", WAIT, &logs, || {
        !health("camera_down", "raised").is_empty()
    });
    let down = &health("camera_down", "raised")[0];
    assert_eq!(
        (down["camera_id"].as_str(), down["edge_name"].as_str()),
        (Some("gate"), Some("home"))
    );
    assert!(down["link"].as_str().unwrap().ends_with("/#/system"));
    // Removed: the condition is over.
    let (status, _) = vm.send("DELETE", "/api/v1/cameras/gate", None);
    assert_eq!(status, 204);
    wait_for("camera_down recovered", WAIT, &logs, || {
        !health("camera_down", "recovered").is_empty()
    });
    assert_eq!(health("camera_down", "raised").len(), 1, "raised once");
    // The edge killed: offline; back: online again.
    edge.kill9();
    wait_for("edge_offline raised", WAIT, &logs, || {
        !health("edge_offline", "raised").is_empty()
    });
    assert_eq!(
        health("edge_offline", "raised")[0]["title"],
        "Edge home is offline"
    );
    edge.start();
    wait_for("edge_offline recovered", WAIT, &logs, || {
        !health("edge_offline", "recovered").is_empty()
    });
    assert_eq!(
        health("edge_offline", "recovered")[0]["title"],
        "Edge home is back online"
    );
    // A copy of the spent package, on another box: refused, and the owner is told.
    let mut intruder = Edge::install(&package, &root.path().join("intruder"));
    intruder.start();
    wait_for("enrollment_refused sent", WAIT, &logs, || {
        !health("enrollment_refused", "raised").is_empty()
    });
    assert!(
        health("enrollment_refused", "raised")[0]["title"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
    assert_webhooks_match_the_spec(&receiver);
    let _ = intruder.stop();
    assert_eq!(edge.stop(), Some(0));
}

/// The mails in the maildir sink that name `event`.
fn mails_about(maildir: &std::path::Path, event: &str) -> Vec<String> {
    std::fs::read_dir(maildir.join("new"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter(|m| m.contains(event))
                .collect()
        })
        .unwrap_or_default()
}
