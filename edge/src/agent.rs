//! `guardian-edge run`: the edge's connection to its vm.
//!
//! The node redials the vm with backoff whenever the connection is gone (QUIC first, then
//! TCP). Each time the vm is reachable the agent enrolls if it has not yet (a refusal is
//! fatal: the agent stops and says why), keeps a relay reservation on the vm, empties the
//! event outbox in batches (a record leaves only on the vm's ack), and sends telemetry at the
//! interval the vm asks for. Everything it must not lose is in SQLite first, so a restart of
//! either side loses nothing and duplicates nothing (the vm stores events by id).
//!
//! It also serves `/guardian/clips/1` ([`crate::playback`]). The gate admits the vm, and
//! peers the vm relays to it (and, for a while, their direct connections, so DCUtR can
//! upgrade): the vm relays only for its edges and for clients it gave a playback token to, and
//! the token is what authorizes a clip; the edge serves no other protocol to such peers.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use guardian_node::{
    AllowList, Inbound, Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle, PeerId, Role,
};
use protocols::messages::enroll::{DeviceConfig, EnrollRefusal, EnrollRequest, EnrollResponse};
use protocols::messages::events::{EventAck, EventBatch, EventRefusal};
use protocols::messages::telemetry::{TelemetryAck, TelemetryReport};
use protocols::package::PackageInfo;

use crate::config::EdgeConfig;
use crate::store::{Store, StoreError};
use crate::telemetry::Sampler;
use crate::{now_ms, paths};

const RETRY: Duration = Duration::from_secs(5);
/// The first wait before an event batch is sent again after a failure or a retryable refusal.
const OUTBOX_RETRY: Duration = Duration::from_secs(1);
/// The longest such wait.
const OUTBOX_RETRY_MAX: Duration = Duration::from_secs(60);
/// Batches sent per outbox pass before other work gets a turn.
const BATCHES_PER_PASS: usize = 16;

/// An installed edge, loaded from its data directory.
pub struct Installed {
    /// The data directory.
    pub data: PathBuf,
    /// `edge.toml`.
    pub config: EdgeConfig,
    /// What the package said.
    pub info: PackageInfo,
    /// The edge's key.
    pub key: ed25519_dalek::SigningKey,
}

impl Installed {
    /// Loads `data`, which `guardian-edge init` made.
    pub fn load(data: &Path) -> Result<Self> {
        let package = data.join(paths::PACKAGE);
        if !package.exists() {
            anyhow::bail!(
                "{} holds no edge: run `guardian-edge init --package FILE --data {}` first",
                data.display(),
                data.display()
            );
        }
        let info: PackageInfo = serde_json::from_slice(&std::fs::read(&package)?)
            .with_context(|| format!("cannot read {}", package.display()))?;
        Ok(Installed {
            data: data.to_path_buf(),
            config: EdgeConfig::load(&data.join(paths::CONFIG))?,
            info,
            key: guardian_node::identity::read_key(&data.join(paths::KEY))?,
        })
    }

    /// The edge's peer id.
    pub fn peer_id(&self) -> String {
        protocols::signed::peer_id_of(&self.key.verifying_key())
    }

    /// Opens the database.
    pub fn store(&self) -> Result<Store, StoreError> {
        Store::open(&self.data.join(paths::DB))
    }
}

/// How long a peer relayed by the vm may also connect directly (DCUtR).
const RELAYED_PEER_DIRECT_FOR: Duration = Duration::from_secs(600);

/// The store, shared with blocking-pool closures.
#[derive(Clone)]
pub(crate) struct Db(Arc<Mutex<Store>>);

impl Db {
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let s = self.0.clone();
        tokio::task::spawn_blocking(move || f(&mut s.lock().expect("not poisoned")))
            .await
            .expect("store closures do not panic")
    }
}

struct Agent {
    installed: Installed,
    handle: NodeHandle,
    db: Db,
    vm: PeerId,
    vm_addresses: Vec<Multiaddr>,
    device: Option<DeviceConfig>,
    retry_enroll_at: Instant,
    telemetry_interval: Duration,
    next_telemetry: Instant,
    sampler: Sampler,
    outbox_blocked_until: Instant,
    /// Waits between event sends that failed or were refused for now: 1 s doubling to 60 s.
    outbox_backoff: guardian_node::backoff::Backoff,
    cameras: crate::video::camera::StatusBoard,
}

/// Runs the edge from `data` until `shutdown` resolves, or until the vm refuses enrollment
/// (an error saying why).
pub async fn run(data: &Path, shutdown: impl Future<Output = ()>) -> Result<()> {
    let installed = Installed::load(data)?;
    let vm = PeerId::from_str(&installed.info.vm_peer_id)
        .context("the package's vm peer id does not parse")?;
    let vm_addresses = installed
        .info
        .vm_addresses
        .iter()
        .map(|a| Multiaddr::from_str(a).with_context(|| format!("bad vm address {a}")))
        .collect::<Result<Vec<_>>>()?;
    anyhow::ensure!(!vm_addresses.is_empty(), "the package names no vm address");
    let store = installed.store()?;
    let device = store.device_config()?;
    let swept = crate::archive::sweep_orphans(&installed.data, &store)?;
    if swept > 0 {
        tracing::warn!(swept, "removed sealed folders left by an interrupted run");
    }

    // Cameras record locally whether or not the vm is reachable.
    let video = crate::video::supervisor::Video::start(
        &installed,
        guardian_node::clock::SystemClock::shared(),
        guardian_node::shutdown::Shutdown::new(),
    )?;
    let cameras = video.status.clone();

    let allow = AllowList::closed();
    allow.allow(vm);
    allow.admit_via_relay(vm, RELAYED_PEER_DIRECT_FOR);
    let mut config = NodeConfig::new(Role::Edge, installed.key.clone());
    config.listen = installed
        .config
        .p2p
        .listen
        .iter()
        .map(|a| Multiaddr::from_str(a).with_context(|| format!("bad listen address {a}")))
        .collect::<Result<_>>()?;
    config.allow = allow;
    let Node {
        handle,
        mut inbound,
        task,
    } = Node::start(config).await?;
    tracing::info!(peer_id = %handle.peer_id(), vm = %vm, "edge started");
    handle.keep_connected(vm, vm_addresses.clone()).await?;

    let telemetry_interval = Duration::from_secs(u64::from(
        device
            .as_ref()
            .map(|d| d.telemetry_interval_secs)
            .unwrap_or(installed.config.telemetry.interval_secs)
            .max(1),
    ));
    let poll = Duration::from_millis(installed.config.outbox.poll_millis.max(50));
    let db = Db(Arc::new(Mutex::new(store)));
    let clips = {
        let server = Arc::new(crate::playback::ClipServer {
            data: installed.data.clone(),
            tenant_id: installed.info.tenant_id.clone(),
            tenant_key: protocols::signed::parse_public_key(&installed.info.tenant_public_key)
                .context("the package's tenant key")?,
            edge_peer_id: installed.peer_id(),
            db: db.clone(),
        });
        let incoming = handle
            .streams()
            .accept(guardian_node::StreamProtocol::new(
                protocols::messages::CLIPS,
            ))
            .map_err(|e| anyhow!("{e}"))?;
        tokio::spawn(crate::playback::serve(server, incoming))
    };
    let mut agent = Agent {
        sampler: Sampler::new(&installed.data),
        installed,
        handle: handle.clone(),
        db,
        vm,
        vm_addresses,
        device,
        retry_enroll_at: Instant::now(),
        telemetry_interval,
        next_telemetry: Instant::now(),
        outbox_blocked_until: Instant::now(),
        outbox_backoff: guardian_node::backoff::Backoff::new(OUTBOX_RETRY, OUTBOX_RETRY_MAX),
        cameras,
    };
    if agent.device.is_some() {
        agent.reserve_relay().await?;
    }

    let mut events = handle.subscribe();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    // `busy`: the last pass stopped with work left (a full pass), so go again at once.
    let mut busy = false;
    let result = loop {
        let wake = tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            _ = std::future::ready(()), if busy => true,
            e = events.recv() => matches!(e, Ok(NodeEvent::Connected { peer, .. }) if peer == vm),
            _ = tick.tick() => true,
            Some(request) = inbound.recv() => {
                refuse_inbound(request);
                false
            }
        };
        if wake {
            match agent.work().await {
                Ok(more) => busy = more,
                Err(e) => break Err(e),
            }
        }
    };
    clips.abort();
    // Cameras first: their open clips are finished and queued before the node goes.
    let _ = tokio::task::spawn_blocking(move || video.stop()).await;
    handle.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    tracing::info!("stopped");
    result
}

/// The wait before retrying an archive send: 1 s doubling to 5 min, with full jitter.
fn archive_backoff(attempts: u32) -> Duration {
    let mut b =
        guardian_node::backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
    for _ in 0..attempts.min(20) {
        b.next_delay(&mut rand::thread_rng());
    }
    b.next_delay(&mut rand::thread_rng())
        .max(Duration::from_millis(200))
}

/// An edge serves no requests on these protocols: answer rather than leave the peer waiting.
fn refuse_inbound(request: Inbound) {
    match request {
        Inbound::Enroll { reply, .. } => reply.send_and_close(EnrollResponse::Refused(
            EnrollRefusal::Other("an edge does not enroll others".into()),
        )),
        Inbound::Events { reply, .. } => reply.send(EventAck::Refused(EventRefusal::Malformed(
            "an edge does not take events".into(),
        ))),
        Inbound::Telemetry { reply, .. } => reply.send(TelemetryAck {
            next_interval_secs: 0,
        }),
    }
}

impl Agent {
    async fn reserve_relay(&self) -> Result<()> {
        self.handle
            .keep_relay_reservation(self.vm, self.vm_addresses[0].clone())
            .await?;
        Ok(())
    }

    /// One pass: enroll if needed, then outbox and telemetry, while the vm is connected.
    /// Returns whether work is left that is due now.
    async fn work(&mut self) -> Result<bool> {
        if self.handle.connection(self.vm).await?.is_none() {
            return Ok(false);
        }
        if self.device.is_none() {
            if Instant::now() < self.retry_enroll_at {
                return Ok(false);
            }
            self.enroll().await?;
            if self.device.is_none() {
                return Ok(false);
            }
        }
        let events_left = self.flush_outbox().await?;
        if Instant::now() >= self.next_telemetry {
            self.send_telemetry().await?;
        }
        let archive_left = self.flush_archive().await?;
        Ok(events_left || archive_left)
    }

    async fn enroll(&mut self) -> Result<()> {
        let token = self.installed.info.token()?;
        let request = EnrollRequest {
            token,
            agent_version: format!("guardian-edge/{}", env!("CARGO_PKG_VERSION")),
        };
        match self.handle.enroll(self.vm, request).await {
            Ok(EnrollResponse::Accepted(config)) => {
                let c = config.clone();
                self.db.call(move |s| s.set_device_config(&c)).await?;
                tracing::info!(device = %config.device_id, tenant = %config.tenant_id, "enrolled with the vm");
                self.telemetry_interval =
                    Duration::from_secs(u64::from(config.telemetry_interval_secs.max(1)));
                self.next_telemetry = Instant::now();
                self.device = Some(config);
                self.reserve_relay().await?;
                Ok(())
            }
            Ok(EnrollResponse::Refused(reason)) => {
                tracing::error!(%reason, "the vm refused enrollment");
                Err(anyhow!("enrollment refused by the vm: {reason}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "enrollment request failed; will retry");
                self.retry_enroll_at = Instant::now() + RETRY;
                Ok(())
            }
        }
    }

    /// Sends event batches; returns whether a full pass left more to send.
    async fn flush_outbox(&mut self) -> Result<bool> {
        if Instant::now() < self.outbox_blocked_until {
            return Ok(false);
        }
        let batch_size = self.installed.config.outbox.batch_size;
        for _ in 0..BATCHES_PER_PASS {
            let events = self.db.call(move |s| s.pending_events(batch_size)).await?;
            if events.is_empty() {
                return Ok(false);
            }
            let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
            match self
                .handle
                .send_events(self.vm, EventBatch { events })
                .await
            {
                Ok(EventAck::Stored { event_ids }) => {
                    let n = self.db.call(move |s| s.remove_events(&event_ids)).await?;
                    self.outbox_backoff.reset();
                    tracing::info!(delivered = n, "events acknowledged by the vm");
                }
                Ok(EventAck::Refused(refusal)) if refusal.is_retryable() => {
                    let wait = self.outbox_backoff.next_delay(&mut rand::thread_rng());
                    tracing::warn!(%refusal, events = ids.len(), wait_ms = wait.as_millis() as u64, "the vm cannot take events for now; will retry");
                    self.db.call(move |s| s.note_attempt(&ids)).await?;
                    self.outbox_blocked_until = Instant::now() + wait;
                    return Ok(false);
                }
                Ok(EventAck::Refused(refusal)) => {
                    tracing::error!(%refusal, events = ids.len(), "the vm refused events; they stay on the edge, parked");
                    let reason = refusal.to_string();
                    self.db.call(move |s| s.mark_refused(&ids, &reason)).await?;
                }
                Err(e) => {
                    let wait = self.outbox_backoff.next_delay(&mut rand::thread_rng());
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "sending events failed; will retry");
                    self.db.call(move |s| s.note_attempt(&ids)).await?;
                    self.outbox_blocked_until = Instant::now() + wait;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Sends due sealed events, oldest first, up to `archive.concurrency` at once (so one
    /// event's transfer overlaps the vm's upload of the previous), until none is due, a send
    /// fails, or a full pass is done; returns whether more is due.
    async fn flush_archive(&mut self) -> Result<bool> {
        use futures::stream::{FuturesUnordered, StreamExt};
        let width = self.installed.config.archive.concurrency.clamp(1, 8);
        let mut in_flight = FuturesUnordered::new();
        let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut done = 0usize;
        let mut stop = false;
        loop {
            while !stop && in_flight.len() < width && done + in_flight.len() < BATCHES_PER_PASS * 4
            {
                let (now, want) = (now_ms(), (width + taken.len()) as u32);
                let due = self.db.call(move |s| s.due_archives(now, want)).await?;
                let Some(item) = due.into_iter().find(|i| !taken.contains(&i.event_id)) else {
                    break;
                };
                taken.insert(item.event_id.clone());
                let (handle, vm, data) =
                    (self.handle.clone(), self.vm, self.installed.data.clone());
                in_flight.push(async move {
                    let outcome = crate::archive::send(&handle, vm, &data, &item).await;
                    (item, outcome)
                });
            }
            let Some((item, outcome)) = in_flight.next().await else {
                break;
            };
            done += 1;
            if !self.archive_outcome(item, outcome).await? {
                stop = true;
            }
        }
        Ok(!stop && done >= BATCHES_PER_PASS * 4)
    }

    /// Applies the outcome of one send; returns false when sending should pause (a failure or
    /// a refusal worth retrying later).
    async fn archive_outcome(
        &mut self,
        item: crate::store::ArchiveItem,
        outcome: Result<crate::archive::SendOutcome>,
    ) -> Result<bool> {
        let id = item.event_id.clone();
        match outcome {
            Ok(crate::archive::SendOutcome::Stored) => {
                self.db.call(move |s| s.remove_archive(&id)).await?;
                let dir = self
                    .installed
                    .data
                    .join(crate::archive::ARCHIVE_DIR)
                    .join(&item.event_id);
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(error = %e, dir = %dir.display(), "cannot remove archived objects; the next start sweeps them");
                }
                tracing::info!(event = %item.event_id, bytes = item.total_bytes, "event archived by the vm");
                Ok(true)
            }
            Ok(crate::archive::SendOutcome::Refused(r)) if r.is_retryable() => {
                let wait = archive_backoff(item.attempts);
                tracing::warn!(event = %item.event_id, reason = %r, ?wait, "archive refused for now; will retry");
                let (reason, at) = (r.to_string(), now_ms() + wait.as_millis() as u64);
                self.db
                    .call(move |s| s.retry_archive_at(&id, at, &reason))
                    .await?;
                Ok(false)
            }
            Ok(crate::archive::SendOutcome::Refused(r)) => {
                tracing::error!(event = %item.event_id, reason = %r, "archive refused; the sealed clip stays on the edge");
                let reason = r.to_string();
                self.db.call(move |s| s.park_archive(&id, &reason)).await?;
                Ok(true)
            }
            Err(e) => {
                let wait = archive_backoff(item.attempts);
                tracing::warn!(event = %item.event_id, error = %e, ?wait, "archive send failed; will retry");
                let (reason, at) = (format!("{e:#}"), now_ms() + wait.as_millis() as u64);
                self.db
                    .call(move |s| s.retry_archive_at(&id, at, &reason))
                    .await?;
                Ok(false)
            }
        }
    }

    async fn send_telemetry(&mut self) -> Result<()> {
        let sample = self.sampler.sample();
        let event_backlog = self.db.call(|s| s.event_backlog()).await?;
        let (archive_objects, archive_bytes) = self.db.call(|s| s.archive_backlog()).await?;
        let report = TelemetryReport {
            edge_id: self.installed.peer_id(),
            at_ms: now_ms(),
            cpu_milli: sample.cpu_milli,
            mem_used_bytes: sample.mem_used_bytes,
            mem_total_bytes: sample.mem_total_bytes,
            disk_used_bytes: sample.disk_used_bytes,
            disk_free_bytes: sample.disk_free_bytes,
            cameras: self
                .cameras
                .lock()
                .map(|b| b.values().cloned().collect())
                .unwrap_or_default(),
            archive_backlog_objects: archive_objects,
            archive_backlog_bytes: archive_bytes,
            event_backlog,
        };
        match self.handle.send_telemetry(self.vm, report).await {
            Ok(ack) => {
                if ack.next_interval_secs > 0 {
                    self.telemetry_interval =
                        Duration::from_secs(u64::from(ack.next_interval_secs));
                }
                self.next_telemetry = Instant::now() + self.telemetry_interval;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sending telemetry failed; will retry");
                self.next_telemetry = Instant::now() + RETRY;
            }
        }
        Ok(())
    }
}
