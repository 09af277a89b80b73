//! `make bench-alerts`: from the detector's hit to the owner's webhook and MQTT message, with
//! the real binaries in a lab: an edge behind a NAT (+10 ms each way on its uplink: 20 ms
//! round trip to the vm) watching stand-in cameras where a person walks through again and
//! again; on the vm's host, the vm, a webhook receiver (`test-support/tools/notify_receiver.py`)
//! and Debian's mosquitto with a subscriber.
//!
//! Per event, on one clock (the lab's namespaces share the kernel's): `confirmed_at_ms` (the
//! edge's detector confirmed the person and the event opened) to the vm's `received_at_ms`
//! (the event's own delivery), to the webhook's and the MQTT message's arrival. Two rules fire
//! for every event: `at-once` (no wait for the second look) and `verified` (the default's
//! wait for the edge's second look, CenterNet). Printed: p50 and p99 of each, and what the
//! alert adds to the event's delivery.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::guardian::{Edge, Vm, repo_dir, wait_for};
use crate::impair::Impairment;
use crate::lab::Lab;
use crate::nat::NatProfile;
use crate::playback::StandIn;
use crate::process::Proc;
use crate::scenario::{DELIVERY_TIMEOUT, wait_enrolled};

const SECRET: &str = "bench-alerts-webhook-secret";
const WEBHOOK_PORT: u16 = 8790;
const MQTT_PORT: u16 = 1883;

/// One event's times, Unix ms.
#[derive(Debug, Clone, Default)]
pub struct EventTimes {
    /// The event.
    pub event_id: String,
    /// The edge confirmed the person (the event opened).
    pub confirmed_ms: u64,
    /// The vm stored its first revision.
    pub received_ms: u64,
    /// The `at-once` rule's webhook arrived.
    pub webhook_ms: Option<u64>,
    /// The `verified` rule's webhook arrived.
    pub verified_ms: Option<u64>,
    /// The MQTT `new` message arrived.
    pub mqtt_ms: Option<u64>,
    /// The second look's verdict, when one came.
    pub verdict: Option<String>,
}

/// The benchmark's result.
#[derive(Debug, Clone)]
pub struct AlertsBench {
    /// Every event seen.
    pub events: Vec<EventTimes>,
}

/// The `p`th percentile (0-100) of `v`, nearest rank; 0 for none.
pub fn percentile(v: &[u64], p: f64) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

impl AlertsBench {
    fn spans(&self, f: impl Fn(&EventTimes) -> Option<u64>) -> Vec<u64> {
        self.events.iter().filter_map(f).collect()
    }

    /// The table: p50 and p99 of each span, ms, and the goals.
    pub fn table(&self) -> String {
        let delivery = self.spans(|e| Some(e.received_ms.saturating_sub(e.confirmed_ms)));
        let webhook = self.spans(|e| e.webhook_ms.map(|t| t.saturating_sub(e.confirmed_ms)));
        let mqtt = self.spans(|e| e.mqtt_ms.map(|t| t.saturating_sub(e.confirmed_ms)));
        let verified = self.spans(|e| e.verified_ms.map(|t| t.saturating_sub(e.confirmed_ms)));
        let added = self.spans(|e| e.webhook_ms.map(|t| t.saturating_sub(e.received_ms)));
        let added_mqtt = self.spans(|e| e.mqtt_ms.map(|t| t.saturating_sub(e.received_ms)));
        let row = |name: &str, v: &[u64]| {
            format!(
                "{name:<52} {:>5} {:>7} {:>7}\n",
                v.len(),
                percentile(v, 50.0),
                percentile(v, 99.0)
            )
        };
        let confirmed = self
            .events
            .iter()
            .filter(|e| e.verdict.as_deref() == Some("confirmed"))
            .count();
        let mut t = format!(
            "{:<52} {:>5} {:>7} {:>7}\n",
            "from the detector's hit (confirmed_at) to", "n", "p50 ms", "p99 ms"
        );
        t += &row("  the event stored at the vm (its own delivery)", &delivery);
        t += &row("  the webhook (rule at-once)", &webhook);
        t += &row("  the MQTT guardian/events message", &mqtt);
        t += &row(
            "  the webhook after the second look (rule verified)",
            &verified,
        );
        t += &row(
            "what the alert adds to the event's delivery: webhook",
            &added,
        );
        t += &row(
            "                                            MQTT",
            &added_mqtt,
        );
        let slowest = self
            .events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.verified_ms
                    .map(|t| (t.saturating_sub(e.confirmed_ms), i + 1))
            })
            .max();
        t += &format!(
            "second look: confirmed {confirmed} of {} events; the slowest verified alert: {} ms (event {} of the run)\n",
            self.events.len(),
            slowest.map_or(0, |s| s.0),
            slowest.map_or(0, |s| s.1),
        );
        let p99 = percentile(&webhook, 99.0).max(percentile(&mqtt, 99.0));
        let p99_verified = percentile(&verified, 99.0);
        let adds = percentile(&added, 50.0).max(percentile(&added_mqtt, 50.0));
        let met = |ok: bool| if ok { "met" } else { "NOT met" };
        t += &format!(
            "goals: p99 end to end < 500 ms: {} ({p99} ms), with the second look: {} ({p99_verified} ms); the alert adds < 50 ms (p50): {} ({adds} ms)",
            met(p99 < 500),
            met(p99_verified < 500),
            met(adds < 50),
        );
        t
    }
}

/// Runs it: `events` person events over `cameras` stand-in cameras.
pub fn bench_alerts(events: usize, cameras: usize) -> Result<AlertsBench> {
    let lab = Lab::new()?;
    let vm_host = lab.public_host("vm")?;
    let mut vm = Vm::init(&lab, vm_host.clone())?;
    configure_vm(&vm)?;
    // The receivers beside the vm.
    let hooks = lab.path("webhooks.jsonl");
    let mut receiver = Command::new("/usr/bin/python3");
    receiver
        .arg(repo_dir().join("test-support/tools/notify_receiver.py"))
        .args([
            "--port",
            &WEBHOOK_PORT.to_string(),
            "--secret",
            SECRET,
            "--log",
        ])
        .arg(&hooks);
    let receiver = lab.spawn(&vm_host, "receiver", receiver)?;
    let mut broker = Command::new("mosquitto");
    broker.args(["-p", &MQTT_PORT.to_string()]);
    let _broker = lab.spawn(&vm_host, "mosquitto", broker)?;
    wait_for("the receivers", Duration::from_secs(30), || {
        receiver.stdout().contains("READY")
    })?;
    std::thread::sleep(Duration::from_millis(300));
    let mut sub = Command::new("mosquitto_sub");
    sub.args(["-h", "127.0.0.1", "-p", &MQTT_PORT.to_string(), "-q", "1"])
        .args(["-t", "guardian/events", "-F", "%U %p"]);
    let sub = lab.spawn(&vm_host, "mqtt-sub", sub)?;
    vm.start(&lab)?;

    // The edge behind a NAT, 20 ms round trip to the vm.
    let host = lab.host_behind("edge", NatProfile::PortRestrictedCone)?;
    lab.impair(
        &host.link,
        Impairment {
            delay: Duration::from_millis(10),
            ..Default::default()
        },
    )?;
    let pkg = vm.package("edge")?;
    let mut edge = Edge::install(&lab, host.clone(), &pkg)?;
    edge.with_detector()?;
    edge.start(&lab)?;
    wait_enrolled(&lab, &vm, &edge, DELIVERY_TIMEOUT)?;

    // A person walks through every 7 s at each camera (one stand-in serving `cameras` paths).
    let count = cameras.to_string();
    let standin = StandIn::start_with(
        &lab,
        &host,
        &[
            "--port",
            "0",
            "--path",
            "/cam",
            "--count",
            &count,
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "10",
            "--loop",
            "--schedule",
            "empty:3,person:2,empty:2",
        ],
    )?;
    let urls = &standin.urls;
    for (i, url) in urls.iter().take(cameras).enumerate() {
        let body = serde_json::json!({
            "source": {"url": url},
            "record": {"pre_roll_secs": 1, "post_roll_secs": 1},
        });
        let (status, answer) =
            vm.send(&lab, "PUT", &format!("/api/v1/cameras/cam{i}"), Some(body))?;
        if status != 200 {
            return Err(Error::Invalid(format!("PUT camera: {status} {answer}")));
        }
    }
    let t = Instant::now();
    let mut times = Vec::new();
    let limit = Duration::from_secs(60 + 10 * events as u64 / cameras.max(1) as u64);
    let r = wait_for("the events and their alerts", limit, || {
        times = collect(&lab, &vm, &hooks, &sub).unwrap_or_default();
        times
            .iter()
            .filter(|e| e.webhook_ms.is_some() && e.mqtt_ms.is_some() && e.verified_ms.is_some())
            .count()
            >= events
    });
    if let Err(e) = r {
        return Err(Error::Invalid(format!(
            "{e} ({} events in {:.0} s)\n{}",
            times.len(),
            t.elapsed().as_secs_f64(),
            edge.log_tail(20)
        )));
    }
    let _ = edge.stop();
    let _ = vm.stop();
    times.retain(|e| e.webhook_ms.is_some() && e.mqtt_ms.is_some() && e.verified_ms.is_some());
    times.sort_by_key(|e| e.confirmed_ms);
    times.truncate(events);
    Ok(AlertsBench { events: times })
}

/// The vm's alert settings for the bench: a webhook, the broker, and two rules with no
/// cooldown in every mode (one waits for the second look, one does not).
fn configure_vm(vm: &Vm) -> Result<()> {
    let path = vm.dir.join("vm.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading vm.toml", e))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| Error::Invalid(format!("vm.toml: {e}")))?;
    let rule = |name: &str, verify: bool| {
        toml::Value::Table(toml::toml! {
            name = name
            categories = ["person", "vehicle"]
            modes = ["home", "away", "off"]
            cooldown_secs = 0
            require_verification = verify
        })
    };
    let edits = [
        (
            "notify.webhooks",
            toml::Value::Array(vec![toml::Value::Table(toml::toml! {
                name = "bench"
                url = (format!("http://127.0.0.1:{WEBHOOK_PORT}/webhook"))
                secret = SECRET
            })]),
        ),
        (
            "mqtt.url",
            toml::Value::String(format!("mqtt://127.0.0.1:{MQTT_PORT}")),
        ),
        (
            "alerts.rules",
            toml::Value::Array(vec![rule("at-once", false), rule("verified", true)]),
        ),
    ];
    guardian_test_support::set_toml_keys(&mut table, &edits)
        .map_err(|e| Error::Invalid(format!("vm.toml: {e}")))?;
    std::fs::write(
        &path,
        toml::to_string_pretty(&table).map_err(|e| Error::Invalid(e.to_string()))?,
    )
    .map_err(|e| Error::io("writing vm.toml", e))
}

/// Every event the vm holds, with the arrival times of its alerts.
fn collect(lab: &Lab, vm: &Vm, hooks: &std::path::Path, sub: &Proc) -> Result<Vec<EventTimes>> {
    let (status, body) = vm.get(lab, "/api/v1/events?limit=1000")?;
    if status != 200 {
        return Err(Error::Invalid(format!("GET events: {status}")));
    }
    let mut out: Vec<EventTimes> = body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["confirmed_at_ms"].as_u64().unwrap_or(0) > 0)
        .map(|e| EventTimes {
            event_id: e["event_id"].as_str().unwrap_or("").to_owned(),
            confirmed_ms: e["confirmed_at_ms"].as_u64().unwrap_or(0),
            received_ms: e["received_at_ms"].as_u64().unwrap_or(0),
            verdict: e["verification"]["verdict"].as_str().map(str::to_owned),
            ..Default::default()
        })
        .collect();
    let text = std::fs::read_to_string(hooks).unwrap_or_default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["kind"] != "webhook" || v["status"] != 200 || v["signature_ok"] != true {
            continue;
        }
        let at = v["received_ms"].as_u64();
        let id = v["body"]["event_id"].as_str().unwrap_or("");
        if let Some(e) = out.iter_mut().find(|e| e.event_id == id) {
            match v["body"]["rule"].as_str() {
                Some("at-once") => e.webhook_ms = e.webhook_ms.or(at),
                Some("verified") => e.verified_ms = e.verified_ms.or(at),
                _ => {}
            }
        }
    }
    for line in sub.stdout().lines() {
        let Some((stamp, payload)) = line.split_once(' ') else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
            continue;
        };
        let at = stamp.parse::<f64>().ok().map(|s| (s * 1000.0) as u64);
        let id = v["after"]["id"]
            .as_str()
            .or(v["after"]["event_id"].as_str())
            .unwrap_or("");
        if let Some(e) = out.iter_mut().find(|e| e.event_id == id) {
            e.mqtt_ms = e.mqtt_ms.or(at);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[30, 10, 20], 50.0), 20);
    }
}
