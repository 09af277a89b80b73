//! `guardian-vm run`: the libp2p node, the handlers of enroll, events and telemetry, and the
//! HTTP API, until a shutdown signal.
//!
//! Tasks (each ends on shutdown): the inbound request handler; the node event watcher (who is
//! connected, last seen); the allow-list refresher (every 2 s from the database, so packages
//! made by `guardian-vm package` while the vm runs are admitted); the HTTP server.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ed25519_dalek::VerifyingKey;
use guardian_node::node::Reply;
use guardian_node::{AllowList, Inbound, Node, NodeConfig, NodeEvent, PeerId, Role};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use protocols::messages::enroll::{DeviceConfig, EnrollRefusal, EnrollRequest, EnrollResponse};
use protocols::messages::events::{EventAck, EventBatch, EventRefusal};
use protocols::messages::telemetry::{TelemetryAck, TelemetryReport};
use protocols::messages::valid_id;
use tokio::sync::watch;

use crate::config::VmConfig;
use crate::db::{self, Db, DeviceRow};
use crate::enroll::{Decision, decide};
use crate::health::{self, EdgeHealth};
use crate::now_ms;
use crate::provision::{DataDir, external_addresses, token_hash};

const ALLOW_REFRESH: Duration = Duration::from_secs(2);

/// Counters exported at `/metrics`.
#[derive(Default)]
struct Metrics {
    events_received: Counter,
    events_stored: Counter,
    telemetry_reports: Counter,
    enrollments: Family<Vec<(String, String)>, Counter>,
    devices_registered: Gauge,
    devices_connected: Gauge,
    events_cached: Gauge,
}

/// What the handlers and the API share.
pub struct VmState {
    /// `vm.toml`.
    pub config: VmConfig,
    /// The database.
    pub db: Db,
    tenant_key: VerifyingKey,
    /// Signs playback tokens.
    pub(crate) tenant_signing: ed25519_dalek::SigningKey,
    /// The node, once started (the HTTP clip path opens streams on it).
    pub(crate) node: std::sync::OnceLock<guardian_node::NodeHandle>,
    /// Who may connect: playback clients are admitted for their token's lifetime.
    pub(crate) allow: AllowList,
    /// The vm's own addresses, ending in `/p2p/<vm>`, the bases of relay addresses.
    pub(crate) relay_base: Vec<guardian_node::Multiaddr>,
    owner_token_sha256: String,
    connected: Mutex<HashSet<String>>,
    metrics: Metrics,
    registry: Registry,
    /// When the vm started.
    pub started: Instant,
    /// The archive's S3 storage.
    pub storage: Arc<crate::storage::Storage>,
}

impl VmState {
    /// Whether `token` is the owner's API token (compared as hashes, in constant time).
    pub fn owner_token_matches(&self, token: &str) -> bool {
        let given = token_hash(token);
        let (a, b) = (given.as_bytes(), self.owner_token_sha256.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The tenant's public key.
    pub fn tenant_key(&self) -> &VerifyingKey {
        &self.tenant_key
    }

    /// Whether an edge is connected now.
    pub fn is_connected(&self, peer: &str) -> bool {
        self.connected.lock().expect("not poisoned").contains(peer)
    }

    /// Every registered device and its health.
    pub async fn edge_health(&self) -> Result<Vec<(DeviceRow, EdgeHealth)>, db::DbError> {
        let rows = self
            .db
            .call(|c| {
                db::devices(c)?
                    .into_iter()
                    .map(|d| {
                        let t = db::latest_telemetry(c, &d.peer_id)?;
                        Ok((d, t))
                    })
                    .collect::<Result<Vec<_>, db::DbError>>()
            })
            .await?;
        let now = now_ms();
        Ok(rows
            .into_iter()
            .map(|(d, t)| {
                let h = health::derive(
                    &self.config.telemetry,
                    now,
                    self.is_connected(&d.peer_id),
                    d.last_seen_ms,
                    t.as_ref(),
                );
                (d, h)
            })
            .collect())
    }

    /// The Prometheus text of every metric.
    pub async fn metrics_text(&self) -> Result<String, db::DbError> {
        let (devices, events) = self
            .db
            .call(|c| Ok((db::devices(c)?.len() as i64, db::event_count(c)? as i64)))
            .await?;
        self.metrics.devices_registered.set(devices);
        self.metrics
            .devices_connected
            .set(self.connected.lock().expect("not poisoned").len() as i64);
        self.metrics.events_cached.set(events);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a string");
        Ok(out)
    }

    fn count_enrollment(&self, result: &str) {
        self.metrics
            .enrollments
            .get_or_create(&vec![("result".to_owned(), result.to_owned())])
            .inc();
    }
}

fn registry(m: &Metrics) -> Registry {
    let mut r = Registry::with_prefix("guardian_vm");
    r.register(
        "events_received",
        "Event records received from edges",
        m.events_received.clone(),
    );
    r.register(
        "events_stored",
        "Event records stored for the first time",
        m.events_stored.clone(),
    );
    r.register(
        "telemetry_reports",
        "Telemetry reports received",
        m.telemetry_reports.clone(),
    );
    r.register(
        "enrollments",
        "Enrollment requests by result",
        m.enrollments.clone(),
    );
    r.register(
        "devices_registered",
        "Registered edges",
        m.devices_registered.clone(),
    );
    r.register(
        "devices_connected",
        "Edges connected now",
        m.devices_connected.clone(),
    );
    r.register(
        "events_cached",
        "Event records in the cache",
        m.events_cached.clone(),
    );
    r
}

/// Runs the vm from `data` until `shutdown` resolves.
pub async fn run(data: &Path, shutdown: impl Future<Output = ()>) -> Result<()> {
    let dir = DataDir::open(data)?;
    let owner_token_sha256 = dir.db.with(|c| db::owner_token_hash(c))?;
    let s3 = dir.config.s3.clone().with_env();
    let storage = Arc::new(
        crate::storage::Storage::start(&s3, data)
            .await
            .context("cannot start the archive storage")?,
    );
    tracing::info!(endpoint = %storage.endpoint(), "archive storage ready");
    let metrics = Metrics::default();
    let allow = AllowList::closed();
    let node_key = dir.node_key.clone();
    let vm_peer = PeerId::from_str(&protocols::signed::peer_id_of(&node_key.verifying_key()))
        .context("the node key's peer id")?;
    let relay_base = external_addresses(&dir.config.fqdn, &dir.config.p2p)?
        .into_iter()
        .map(|a| a.with(libp2p::multiaddr::Protocol::P2p(vm_peer)))
        .collect();
    let state = Arc::new(VmState {
        registry: registry(&metrics),
        metrics,
        tenant_key: dir.tenant_key.verifying_key(),
        tenant_signing: dir.tenant_key.clone(),
        node: std::sync::OnceLock::new(),
        allow: allow.clone(),
        relay_base,
        owner_token_sha256,
        connected: Mutex::new(HashSet::new()),
        db: dir.db.clone(),
        config: dir.config.clone(),
        started: Instant::now(),
        storage: storage.clone(),
    });
    match crate::archive::reconcile(&state, &storage).await {
        Ok((missing, unindexed)) => {
            tracing::info!(missing, unindexed, "archive index reconciled with S3")
        }
        Err(e) => tracing::warn!(error = %e, "cannot reconcile the archive index with S3 now"),
    }

    refresh_allow_list(&state, &allow).await?;
    let mut node_config = NodeConfig::new(Role::Vm, dir.node_key.clone());
    node_config.listen = dir
        .config
        .p2p
        .listen
        .iter()
        .map(|a| {
            guardian_node::Multiaddr::from_str(a).with_context(|| format!("bad listen address {a}"))
        })
        .collect::<Result<_>>()?;
    node_config.external = external_addresses(&dir.config.fqdn, &dir.config.p2p)?;
    node_config.allow = allow.clone();
    node_config.relay_limits = dir.config.relay;
    let Node {
        handle,
        mut inbound,
        task,
    } = Node::start(node_config).await?;
    tracing::info!(
        peer_id = %handle.peer_id(),
        tenant = %dir.config.tenant_id,
        "vm started"
    );
    let _ = state.node.set(handle.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let archive = {
        let incoming = handle
            .streams()
            .accept(guardian_node::StreamProtocol::new(
                protocols::messages::ARCHIVE,
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (state, storage) = (state.clone(), storage.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stopped(&mut stop) => {}
                _ = crate::archive::serve(state, storage, incoming) => {}
            }
        })
    };
    let retention = {
        let (state, storage) = (state.clone(), storage.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(
                state.config.archive.retention_sweep_secs.max(1),
            ));
            loop {
                tokio::select! {
                    _ = stopped(&mut stop) => break,
                    _ = tick.tick() => {
                        if let Err(e) = crate::archive::sweep_retention(&state, &storage).await {
                            tracing::warn!(error = %e, "retention sweep failed; will retry");
                        }
                    }
                }
            }
        })
    };
    let http_listener = tokio::net::TcpListener::bind(&dir.config.http.listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", dir.config.http.listen))?;
    tracing::info!(address = %http_listener.local_addr()?, "HTTP API listening");
    let http = {
        let mut stop = stop_rx.clone();
        let server = warp::serve(crate::http::routes(state.clone()))
            .incoming(http_listener)
            .graceful(async move { stopped(&mut stop).await });
        tokio::spawn(server.run())
    };

    let watcher = {
        let state = state.clone();
        let mut events = handle.subscribe();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped(&mut stop) => break,
                    e = events.recv() => match e {
                        Ok(NodeEvent::Connected { peer, .. }) => {
                            let peer = peer.to_string();
                            state.connected.lock().expect("not poisoned").insert(peer.clone());
                            let now = now_ms();
                            let _ = state.db.call(move |c| db::touch_device(c, &peer, now)).await;
                        }
                        Ok(NodeEvent::Disconnected { peer, remaining: 0 }) => {
                            let peer = peer.to_string();
                            state.connected.lock().expect("not poisoned").remove(&peer);
                            let now = now_ms();
                            let _ = state.db.call(move |c| db::touch_device(c, &peer, now)).await;
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "node events lagged");
                        }
                        Err(_) => break,
                    }
                }
            }
        })
    };

    let refresher = {
        let state = state.clone();
        let allow = allow.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ALLOW_REFRESH);
            loop {
                tokio::select! {
                    _ = stopped(&mut stop) => break,
                    _ = tick.tick() => {
                        if let Err(e) = refresh_allow_list(&state, &allow).await {
                            tracing::error!(error = %e, "cannot refresh the allow-list");
                        }
                    }
                }
            }
        })
    };

    let handler = {
        let state = state.clone();
        let allow = allow.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped(&mut stop) => break,
                    request = inbound.recv() => match request {
                        Some(r) => handle_inbound(&state, &allow, r).await,
                        None => break,
                    }
                }
            }
        })
    };

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    handle.shutdown().await;
    for t in [handler, refresher, watcher, archive, retention] {
        let _ = t.await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn refresh_allow_list(state: &VmState, allow: &AllowList) -> Result<()> {
    let now = now_ms();
    let peers = state.db.call(move |c| db::allowed_peers(c, now)).await?;
    for p in peers {
        match PeerId::from_str(&p) {
            Ok(peer) => allow.allow(peer),
            Err(_) => tracing::error!(peer = %p, "a stored peer id does not parse"),
        }
    }
    Ok(())
}

async fn handle_inbound(state: &Arc<VmState>, allow: &AllowList, request: Inbound) {
    match request {
        Inbound::Enroll {
            peer,
            request,
            reply,
        } => enroll(state, allow, peer, request, reply).await,
        Inbound::Events { peer, batch, reply } => {
            let ack = events(state, peer, batch).await;
            reply.send(ack);
        }
        Inbound::Telemetry {
            peer,
            report,
            reply,
        } => {
            let ack = telemetry(state, peer, report).await;
            reply.send(ack);
        }
    }
}

async fn enroll(
    state: &Arc<VmState>,
    allow: &AllowList,
    peer: PeerId,
    request: EnrollRequest,
    reply: Reply<EnrollResponse>,
) {
    let peer_s = peer.to_string();
    let token_id = request.token.peek().map(|t| t.token_id).unwrap_or_default();
    let lookup = {
        let (peer_s, token_id) = (peer_s.clone(), token_id.clone());
        state
            .db
            .call(move |c| Ok((db::package(c, &token_id)?, db::device(c, &peer_s)?)))
            .await
    };
    let (package, device) = match lookup {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "enrollment lookup failed");
            reply.send(EnrollResponse::Refused(EnrollRefusal::Other(
                "the vm could not read its database; try again".into(),
            )));
            return;
        }
    };
    let decision = decide(
        &request.token,
        &peer_s,
        &state.config.tenant_id,
        &state.tenant_key,
        now_ms(),
        package.as_ref(),
        device.as_ref(),
    );
    let recipient = match decision {
        Ok(Decision::AlreadyRegistered) => {
            tracing::info!(peer = %peer_s, "registered edge enrolled again");
            device.map(|d| d.recipient).unwrap_or_default()
        }
        Ok(Decision::Register(token)) => {
            let package = package.expect("decide checked the package");
            let row = DeviceRow {
                peer_id: peer_s.clone(),
                name: token.edge_name.clone(),
                token_id: token.token_id.clone(),
                recipient: package.recipient.clone(),
                enrolled_at_ms: now_ms(),
                agent_version: request.agent_version.clone(),
                last_seen_ms: now_ms(),
            };
            if let Err(e) = state.db.call(move |c| db::enroll_device(c, &row)).await {
                tracing::error!(error = %e, "cannot register the edge");
                reply.send(EnrollResponse::Refused(EnrollRefusal::Other(
                    "the vm could not record the enrollment; try again".into(),
                )));
                return;
            }
            allow.allow(peer);
            tracing::info!(peer = %peer_s, name = %token.edge_name, "edge enrolled");
            package.recipient
        }
        Err(refusal) => {
            tracing::warn!(peer = %peer_s, token = %token_id, reason = %refusal, "enrollment refused; closing the connection");
            state.count_enrollment("refused");
            reply.send_and_close(EnrollResponse::Refused(refusal));
            return;
        }
    };
    state.count_enrollment("accepted");
    reply.send(EnrollResponse::Accepted(DeviceConfig {
        tenant_id: state.config.tenant_id.clone(),
        device_id: peer_s,
        telemetry_interval_secs: state.config.telemetry.interval_secs,
        archive_key_id: protocols::owner_key::key_id(&recipient),
        archive_recipient: recipient,
    }))
}

/// Whether `peer` is a registered device (events and telemetry are refused otherwise).
async fn registered(state: &VmState, peer: &str) -> Result<bool, db::DbError> {
    let peer = peer.to_owned();
    state
        .db
        .call(move |c| Ok(db::device(c, &peer)?.is_some()))
        .await
}

fn check_batch(state: &VmState, peer: &str, batch: &EventBatch) -> Result<(), EventRefusal> {
    if batch.events.len() > EventBatch::MAX_EVENTS {
        return Err(EventRefusal::Malformed(format!(
            "more than {} events in one batch",
            EventBatch::MAX_EVENTS
        )));
    }
    for e in &batch.events {
        if e.tenant_id != state.config.tenant_id {
            return Err(EventRefusal::WrongTenant {
                event_id: e.event_id.clone(),
            });
        }
        if e.edge_id != peer {
            return Err(EventRefusal::WrongTenant {
                event_id: e.event_id.clone(),
            });
        }
        if !valid_id(&e.event_id) || !valid_id(&e.camera_id) {
            return Err(EventRefusal::Malformed(format!(
                "event {} has an invalid event or camera id",
                e.event_id
            )));
        }
        if e.ended_at_ms < e.started_at_ms || e.score_milli > 1000 {
            return Err(EventRefusal::Malformed(format!(
                "event {} has an end before its start or a score over 1000",
                e.event_id
            )));
        }
    }
    Ok(())
}

async fn events(state: &Arc<VmState>, peer: PeerId, batch: EventBatch) -> EventAck {
    let peer = peer.to_string();
    match registered(state, &peer).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(%peer, "events from an edge that is not enrolled refused");
            return EventAck::Refused(EventRefusal::NotEnrolled);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check the device");
            return EventAck::Refused(EventRefusal::StorageUnavailable(
                "the vm could not read its database".into(),
            ));
        }
    }
    if let Err(reason) = check_batch(state, &peer, &batch) {
        tracing::warn!(%peer, %reason, "event batch refused");
        return EventAck::Refused(reason);
    }
    let n = batch.events.len();
    state.metrics.events_received.inc_by(n as u64);
    let ids: Vec<String> = batch.events.iter().map(|e| e.event_id.clone()).collect();
    let peer2 = peer.clone();
    match state
        .db
        .call(move |c| db::insert_events(c, &peer2, &batch.events, now_ms()))
        .await
    {
        Ok(new) => {
            state.metrics.events_stored.inc_by(new as u64);
            tracing::info!(%peer, received = n, new, "events stored");
            EventAck::Stored { event_ids: ids }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store events");
            EventAck::Refused(EventRefusal::StorageUnavailable(
                "the vm could not store the events".into(),
            ))
        }
    }
}

async fn telemetry(state: &Arc<VmState>, peer: PeerId, report: TelemetryReport) -> TelemetryAck {
    let next = TelemetryAck {
        next_interval_secs: state.config.telemetry.interval_secs,
    };
    let peer = peer.to_string();
    if !matches!(registered(state, &peer).await, Ok(true)) || report.edge_id != peer {
        tracing::warn!(%peer, "telemetry from an edge that is not enrolled (or names another) ignored");
        return next;
    }
    state.metrics.telemetry_reports.inc();
    let keep = state.config.telemetry.history_per_edge;
    if let Err(e) = state
        .db
        .call(move |c| db::insert_telemetry(c, &peer, &report, now_ms(), keep))
        .await
    {
        tracing::error!(error = %e, "cannot store telemetry");
    }
    next
}
