//! MQTT (rumqttc, MQTT 3.1.1): what Home Assistant and Frigate's users know, under
//! `<prefix>/` (`guardian/` by default):
//!
//! | topic | retained | what |
//! |---|---|---|
//! | `guardian/available` | yes | `online`, or `offline` (the last will) |
//! | `guardian/events` | no | every event revision, Frigate's `{type: new\|update\|end, before, after}` (through the outbox) |
//! | `guardian/alerts` | no | each alert and health notification (through the outbox) |
//! | `guardian/<camera>/<label>` | yes | how many objects of the label are in view now (`person`, `car`, ..., and `vehicle` for all of them) |
//! | `guardian/<camera>/status` | yes | the camera's state (`streaming`, `failed`, ...) |
//! | `guardian/edges/<edge>/status` | yes | `online` or `offline` |
//! | `guardian/mode`, `guardian/mode/set` | yes, - | the arming mode; set it by publishing `home`, `away` or `off` |
//!
//! and Home Assistant discovery: retained `homeassistant/<component>/guardian_<tenant>/<object>/config`
//! messages for each camera's person and vehicle occupancy sensors, each edge's connectivity
//! and the mode select, so they appear with no custom integration ([`discovery_messages`],
//! pure). Outbox rows are published with QoS 1 and count as delivered on the broker's
//! PUBACK; a lost connection fails the waiting rows, which the outbox retries.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use guardian_node::Shutdown;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS};
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};

use super::deliver::Sender;
use super::rules::Mode;
use crate::config::MqttConfig;
use crate::db::{self, NotificationRow};
use crate::state::VmState;

/// How often the state topics are refreshed (they are published only when they change).
const STATE_EVERY: Duration = Duration::from_secs(2);
/// How long a publish waits for the broker's PUBACK.
const ACK_WITHIN: Duration = Duration::from_secs(10);

/// `mqtt://host[:port]` → (host, port).
pub fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest = url.strip_prefix("mqtt://").ok_or_else(|| {
        format!("mqtt.url {url:?}: want mqtt://host[:port] (mqtts is not supported yet)")
    })?;
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Ok((
            h.to_owned(),
            p.parse()
                .map_err(|_| format!("mqtt.url {url:?}: bad port"))?,
        )),
        _ if !rest.is_empty() => Ok((rest.to_owned(), 1883)),
        _ => Err(format!("mqtt.url {url:?}: no host")),
    }
}

/// What discovery and the state topics describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Topic prefix.
    pub prefix: String,
    /// Discovery prefix (empty: none).
    pub discovery_prefix: String,
    /// The tenant (node id `guardian_<tenant>`).
    pub tenant: String,
    /// Cameras: (id, name).
    pub cameras: Vec<(String, String)>,
    /// Edges: (peer id, name).
    pub edges: Vec<(String, String)>,
}

fn node_id(tenant: &str) -> String {
    format!(
        "guardian_{}",
        tenant
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    )
}

/// A topic-safe version of a name.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Home Assistant's discovery messages: (topic, retained JSON config).
pub fn discovery_messages(l: &Layout) -> Vec<(String, Value)> {
    if l.discovery_prefix.is_empty() {
        return Vec::new();
    }
    let node = node_id(&l.tenant);
    let p = &l.prefix;
    let hub = json!({
        "identifiers": [node], "name": "Private AI Guardian", "manufacturer": "Private AI Guardian",
        "model": "vm"
    });
    let available = format!("{p}/available");
    let mut out = Vec::new();
    for (id, name) in &l.cameras {
        let device = json!({
            "identifiers": [format!("{node}_{id}")], "name": name, "manufacturer": "Private AI Guardian",
            "model": "camera", "via_device": node
        });
        for (label, title) in [("person", "Person"), ("vehicle", "Vehicle")] {
            out.push((
                format!(
                    "{}/binary_sensor/{node}/{id}_{label}/config",
                    l.discovery_prefix
                ),
                json!({
                    "name": title,
                    "unique_id": format!("{node}_{id}_{label}"),
                    "object_id": format!("{id}_{label}"),
                    "state_topic": format!("{p}/{id}/{label}"),
                    "value_template": "{{ 'ON' if (value | int) > 0 else 'OFF' }}",
                    "device_class": "occupancy",
                    "availability_topic": available,
                    "device": device,
                }),
            ));
        }
    }
    for (peer, name) in &l.edges {
        let short: String = peer
            .chars()
            .rev()
            .take(8)
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        out.push((
            format!(
                "{}/binary_sensor/{node}/edge_{short}/config",
                l.discovery_prefix
            ),
            json!({
                "name": format!("Edge {name}"),
                "unique_id": format!("{node}_edge_{short}"),
                "state_topic": format!("{p}/edges/{}/status", slug(name)),
                "payload_on": "online",
                "payload_off": "offline",
                "device_class": "connectivity",
                "availability_topic": available,
                "device": hub,
            }),
        ));
    }
    out.push((
        format!("{}/select/{node}/mode/config", l.discovery_prefix),
        json!({
            "name": "Mode",
            "unique_id": format!("{node}_mode"),
            "state_topic": format!("{p}/mode"),
            "command_topic": format!("{p}/mode/set"),
            "options": ["home", "away", "off"],
            "availability_topic": available,
            "device": hub,
        }),
    ));
    out
}

/// The state topics and their retained values now: counts per camera and label (`vehicle`
/// sums the vehicle labels), camera and edge status, the mode.
pub fn state_messages(
    l: &Layout,
    counts: &[(String, String, u64)],
    camera_states: &[(String, String)],
    edges_online: &[(String, bool)],
    mode: Mode,
) -> BTreeMap<String, String> {
    let p = &l.prefix;
    let mut out = BTreeMap::new();
    for (id, _) in &l.cameras {
        for label in [
            "person",
            "car",
            "truck",
            "bus",
            "motorcycle",
            "bicycle",
            "vehicle",
        ] {
            out.insert(format!("{p}/{id}/{label}"), "0".to_owned());
        }
    }
    let mut vehicles: HashMap<&str, u64> = HashMap::new();
    for (camera, label, n) in counts {
        out.insert(format!("{p}/{camera}/{label}"), n.to_string());
        let vehicle = matches!(
            label.as_str(),
            "car" | "truck" | "bus" | "motorcycle" | "bicycle"
        );
        if vehicle {
            *vehicles.entry(camera).or_default() += n;
        }
    }
    for (camera, n) in vehicles {
        out.insert(format!("{p}/{camera}/vehicle"), n.to_string());
    }
    for (camera, state) in camera_states {
        out.insert(format!("{p}/{camera}/status"), state.clone());
    }
    for (name, online) in edges_online {
        out.insert(
            format!("{p}/edges/{}/status", slug(name)),
            if *online { "online" } else { "offline" }.to_owned(),
        );
    }
    out.insert(format!("{p}/mode"), mode.as_str().to_owned());
    out
}

type Waiter = Option<oneshot::Sender<Result<(), String>>>;

/// The client's side shared with the outbox's sender: publishes in order, each with its
/// waiter (the event loop sees the publishes in the same order).
pub struct Mqtt {
    client: AsyncClient,
    queue: Mutex<()>,
    waiters: std::sync::Mutex<VecDeque<Waiter>>,
    prefix: String,
}

impl Mqtt {
    async fn publish(
        &self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
        waiter: Waiter,
    ) -> Result<(), String> {
        let _order = self.queue.lock().await;
        self.waiters.lock().expect("not poisoned").push_back(waiter);
        if let Err(e) = self.client.publish(topic, qos, retain, payload).await {
            self.waiters.lock().expect("not poisoned").pop_back();
            return Err(e.to_string());
        }
        Ok(())
    }

    fn fail_all(&self, why: &str) {
        for w in self
            .waiters
            .lock()
            .expect("not poisoned")
            .drain(..)
            .flatten()
        {
            let _ = w.send(Err(why.to_owned()));
        }
    }
}

impl Sender for Mqtt {
    fn send<'a>(
        &'a self,
        row: &'a NotificationRow,
        _now_ms: u64,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let topic = match row.kind.as_str() {
                "mqtt_event" => format!("{}/events", self.prefix),
                _ => format!("{}/alerts", self.prefix),
            };
            let (tx, rx) = oneshot::channel();
            self.publish(
                topic,
                QoS::AtLeastOnce,
                false,
                row.payload_json.clone().into_bytes(),
                Some(tx),
            )
            .await?;
            match tokio::time::timeout(ACK_WITHIN, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err("the MQTT connection was reset".into()),
                Err(_) => Err(format!("no PUBACK from the broker in {ACK_WITHIN:?}")),
            }
        })
    }
}

/// Connects to the broker of `cfg`: the sender for the outbox, and the task that runs the
/// connection (until `shutdown`).
pub fn start(
    state: Arc<VmState>,
    cfg: &MqttConfig,
    shutdown: Shutdown,
) -> anyhow::Result<(Arc<Mqtt>, tokio::task::JoinHandle<()>)> {
    let (host, port) = parse_url(&cfg.url).map_err(anyhow::Error::msg)?;
    let client_id = if cfg.client_id.is_empty() {
        format!("guardian-{}", state.config.tenant_id)
    } else {
        cfg.client_id.clone()
    };
    let prefix = cfg.topic_prefix.trim_end_matches('/').to_owned();
    let mut opts = MqttOptions::new(client_id, host, port);
    opts.set_keep_alive(Duration::from_secs(15));
    opts.set_clean_session(true);
    opts.set_last_will(LastWill::new(
        format!("{prefix}/available"),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let password = if cfg.password_file.is_empty() {
        cfg.password.clone()
    } else {
        std::fs::read_to_string(&cfg.password_file)
            .map_err(|e| anyhow::anyhow!("mqtt.password_file: {e}"))?
            .trim_end_matches('\n')
            .to_owned()
    };
    if !cfg.username.is_empty() {
        opts.set_credentials(cfg.username.clone(), password);
    }
    let (client, eventloop) = AsyncClient::new(opts, 64);
    let mqtt = Arc::new(Mqtt {
        client,
        queue: Mutex::new(()),
        waiters: std::sync::Mutex::new(VecDeque::new()),
        prefix: prefix.clone(),
    });
    let task = tokio::spawn(run(
        state,
        mqtt.clone(),
        eventloop,
        cfg.discovery_prefix.clone(),
        shutdown,
    ));
    Ok((mqtt, task))
}

async fn layout(
    state: &VmState,
    prefix: &str,
    discovery_prefix: &str,
) -> Result<Layout, db::DbError> {
    let (cameras, devices) = state
        .db
        .call(|c| Ok((db::cameras(c)?, db::devices(c)?)))
        .await?;
    Ok(Layout {
        prefix: prefix.to_owned(),
        discovery_prefix: discovery_prefix.to_owned(),
        tenant: state.config.tenant_id.clone(),
        cameras: cameras
            .into_iter()
            .map(|r| (r.config.id, r.config.name))
            .collect(),
        edges: devices.into_iter().map(|d| (d.peer_id, d.name)).collect(),
    })
}

async fn run(
    state: Arc<VmState>,
    mqtt: Arc<Mqtt>,
    mut eventloop: EventLoop,
    discovery_prefix: String,
    shutdown: Shutdown,
) {
    let prefix = mqtt.prefix.clone();
    let mut connected = false;
    let mut published: BTreeMap<String, String> = BTreeMap::new();
    let mut announced: Option<Layout> = None;
    let mut by_pkid: HashMap<u16, oneshot::Sender<Result<(), String>>> = HashMap::new();
    let mut failures = 0u32;
    let mut tick = tokio::time::interval(STATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait() => {
                if connected {
                    let _ = mqtt.client.publish(format!("{prefix}/available"), QoS::AtLeastOnce, true, "offline").await;
                    let _ = tokio::time::timeout(Duration::from_millis(500), async {
                        loop {
                            if eventloop.poll().await.is_err() { break; }
                        }
                    }).await;
                    let _ = mqtt.client.disconnect().await;
                }
                return;
            }
            polled = eventloop.poll() => match polled {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    connected = true;
                    failures = 0;
                    published.clear();
                    announced = None;
                    tracing::info!("connected to the MQTT broker");
                    let _ = mqtt.publish(format!("{prefix}/available"), QoS::AtLeastOnce, true, b"online".to_vec(), None).await;
                    if let Err(e) = mqtt.client.subscribe(format!("{prefix}/mode/set"), QoS::AtLeastOnce).await {
                        tracing::warn!(error = %e, "cannot subscribe to the mode topic");
                    }
                    tick.reset_immediately();
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    let w = mqtt.waiters.lock().expect("not poisoned").pop_front().flatten();
                    if let Some(w) = w {
                        if pkid == 0 {
                            let _ = w.send(Ok(()));
                        } else {
                            by_pkid.insert(pkid, w);
                        }
                    }
                }
                Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                    if let Some(w) = by_pkid.remove(&ack.pkid) {
                        let _ = w.send(Ok(()));
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == format!("{prefix}/mode/set") => {
                    match Mode::parse(&String::from_utf8_lossy(&p.payload)) {
                        Some(m) => {
                            if let Err(e) = crate::http::set_mode(&state, m).await {
                                tracing::warn!(error = %e, "cannot set the mode from MQTT");
                            }
                            tick.reset_immediately();
                        }
                        None => tracing::warn!("a mode from MQTT that is not home, away or off; ignored"),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if connected {
                        tracing::warn!(error = %e, "lost the MQTT broker; reconnecting");
                    } else if failures == 0 {
                        tracing::warn!(error = %e, "cannot reach the MQTT broker; retrying");
                    }
                    connected = false;
                    mqtt.fail_all("the MQTT connection was lost");
                    for (_, w) in by_pkid.drain() {
                        let _ = w.send(Err("the MQTT connection was lost".into()));
                    }
                    failures += 1;
                    let wait = Duration::from_millis(500u64.saturating_mul(1 << failures.min(4)));
                    tokio::select! {
                        _ = shutdown.wait() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            },
            _ = tick.tick(), if connected => {
                if let Err(e) = refresh(&state, &mqtt, &prefix, &discovery_prefix, &mut published, &mut announced).await {
                    tracing::warn!(error = %e, "cannot refresh the MQTT state topics");
                }
            }
            _ = state.mode_changed.notified(), if connected => {
                tick.reset_immediately();
            }
        }
    }
}

/// Publishes discovery when the cameras or edges changed, and every state topic whose value
/// changed.
async fn refresh(
    state: &VmState,
    mqtt: &Mqtt,
    prefix: &str,
    discovery_prefix: &str,
    published: &mut BTreeMap<String, String>,
    announced: &mut Option<Layout>,
) -> anyhow::Result<()> {
    let l = layout(state, prefix, discovery_prefix).await?;
    if announced.as_ref() != Some(&l) {
        for (topic, config) in discovery_messages(&l) {
            mqtt.publish(
                topic,
                QoS::AtLeastOnce,
                true,
                config.to_string().into_bytes(),
                None,
            )
            .await
            .map_err(anyhow::Error::msg)?;
        }
        *announced = Some(l.clone());
    }
    let since = state.clock.wall_ms().saturating_sub(5 * 60 * 1000);
    let (counts, mode, telemetry) = state
        .db
        .call(move |c| {
            let devices = db::devices(c)?;
            let mut statuses = Vec::new();
            for d in &devices {
                if let Some(t) = db::latest_telemetry(c, &d.peer_id)? {
                    for s in t.cameras {
                        statuses.push((
                            s.camera_id.clone(),
                            serde_json::to_value(s.state)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                        ));
                    }
                }
            }
            Ok((
                db::open_event_counts(c, since)?,
                super::engine::mode(c)?,
                statuses,
            ))
        })
        .await?;
    let edges: Vec<(String, bool)> = l
        .edges
        .iter()
        .map(|(p, n)| (n.clone(), state.is_connected(p)))
        .collect();
    for (topic, value) in state_messages(&l, &counts, &telemetry, &edges, mode) {
        if published.get(&topic) != Some(&value) {
            mqtt.publish(
                topic.clone(),
                QoS::AtLeastOnce,
                true,
                value.clone().into_bytes(),
                None,
            )
            .await
            .map_err(anyhow::Error::msg)?;
            published.insert(topic, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            prefix: "guardian".into(),
            discovery_prefix: "homeassistant".into(),
            tenant: "t-abc".into(),
            cameras: vec![("porch".into(), "Front porch".into())],
            edges: vec![("12D3KooWabcdefgh".into(), "home".into())],
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://broker.lan:1884").unwrap(),
            ("broker.lan".into(), 1884)
        );
        assert_eq!(
            parse_url("mqtt://10.0.0.2").unwrap(),
            ("10.0.0.2".into(), 1883)
        );
        assert!(parse_url("mqtts://x").is_err());
        assert!(parse_url("mqtt://").is_err());
    }

    #[test]
    fn discovery_has_what_home_assistant_requires() {
        let m = discovery_messages(&layout());
        assert_eq!(m.len(), 4, "person, vehicle, the edge, the mode");
        let (topic, person) = &m[0];
        assert_eq!(
            topic,
            "homeassistant/binary_sensor/guardian_t_abc/porch_person/config"
        );
        assert_eq!(person["state_topic"], "guardian/porch/person");
        assert_eq!(person["availability_topic"], "guardian/available");
        assert_eq!(person["device"]["name"], "Front porch");
        let (topic, mode) = m.last().unwrap();
        assert_eq!(topic, "homeassistant/select/guardian_t_abc/mode/config");
        assert_eq!(mode["command_topic"], "guardian/mode/set");
        assert_eq!(mode["options"], json!(["home", "away", "off"]));
        let mut no = layout();
        no.discovery_prefix.clear();
        assert!(discovery_messages(&no).is_empty());
    }

    #[test]
    fn state_counts_vehicles_and_status() {
        let s = state_messages(
            &layout(),
            &[
                ("porch".into(), "person".into(), 2),
                ("porch".into(), "car".into(), 1),
                ("porch".into(), "truck".into(), 1),
            ],
            &[("porch".into(), "streaming".into())],
            &[("home".into(), true)],
            Mode::Home,
        );
        assert_eq!(s["guardian/porch/person"], "2");
        assert_eq!(s["guardian/porch/vehicle"], "2");
        assert_eq!(s["guardian/porch/bus"], "0");
        assert_eq!(s["guardian/porch/status"], "streaming");
        assert_eq!(s["guardian/edges/home/status"], "online");
        assert_eq!(s["guardian/mode"], "home");
    }
}
