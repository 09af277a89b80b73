//! `guardian-edge run`: the edge's connection to its vm.
//!
//! The node redials the vm with backoff whenever the connection is gone (QUIC first, then
//! TCP). Each time the vm is reachable the agent enrolls if it has not yet (a refusal is
//! fatal: the agent stops and says why), keeps a relay reservation on the vm, empties the
//! event outbox in batches (a record leaves only on the vm's ack), and sends telemetry at the
//! interval the vm asks for. Everything it must not lose is in SQLite first, so a restart of
//! either side loses nothing and duplicates nothing (the vm stores events by id). When the
//! outbox sends, parks or backs off is decided by [`crate::delivery`]; every deadline, retry
//! time and reported time is read from the [`SharedClock`] it is given.
//!
//! It runs until its [`Shutdown`] is triggered (SIGTERM or SIGINT in `main`): a pass of work
//! in progress is dropped (its rows stay for the next run), the cameras stop first so their
//! open clips are finished and queued, then the clip server and the node, within 5 s in all.
//!
//! It also serves `/guardian/clips/1` ([`crate::playback`]). The gate admits the vm, and
//! peers the vm relays to it (and, for a while, their direct connections, so DCUtR can
//! upgrade): the vm relays only for its edges and for clients it gave a playback token to, and
//! the token is what authorizes a clip; the edge serves no other protocol to such peers.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use guardian_node::clock::SharedClock;
use guardian_node::shutdown::Shutdown;
use guardian_node::{AllowList, Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle, PeerId, Role};
use protocols::messages::enroll::{DeviceConfig, EnrollRequest, EnrollResponse};
use protocols::messages::events::{EventAck, EventBatch};
use protocols::messages::telemetry::TelemetryReport;

use crate::data_dir::Installed;
use crate::delivery::{Action, EventPacer, archive_retry_at};
use crate::store::{ArchiveItem, Db};
use crate::telemetry::Sampler;

const RETRY: Duration = Duration::from_secs(5);
/// Batches sent per outbox pass before other work gets a turn.
const BATCHES_PER_PASS: usize = 16;
/// How long a stop may take in all: cameras (finishing their clips) first, then the node.
const STOP_WITHIN: Duration = Duration::from_secs(5);
/// The part of [`STOP_WITHIN`] the cameras get.
const VIDEO_STOP_WITHIN: Duration = Duration::from_secs(4);

/// How long a peer relayed by the vm may also connect directly (DCUtR).
const RELAYED_PEER_DIRECT_FOR: Duration = Duration::from_secs(600);

struct Agent {
    installed: Installed,
    handle: NodeHandle,
    db: Db,
    clock: SharedClock,
    vm: PeerId,
    vm_addresses: Vec<Multiaddr>,
    device: Option<DeviceConfig>,
    retry_enroll_at: Instant,
    telemetry_interval: Duration,
    next_telemetry: Instant,
    sampler: Sampler,
    /// When event batches go, and the backoff after failed or refused-for-now sends.
    pacer: EventPacer,
    cameras: crate::video::camera::StatusBoard,
}

/// Runs the edge from `data` until `shutdown` is triggered, or until the vm refuses
/// enrollment (an error saying why). Time (deadlines, retries, stored and sent times) comes
/// from `clock`.
///
/// On stop the cameras go first (their open clips finished and queued), then the clip server
/// and the node, within [`STOP_WITHIN`] in all.
pub async fn run(data: &Path, shutdown: Shutdown, clock: SharedClock) -> Result<()> {
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

    // Cameras record locally whether or not the vm is reachable.
    let video =
        crate::video::supervisor::Video::start(&installed, clock.clone(), shutdown.child())?;
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
        // The edge serves no request-response protocol (the node's protocol table makes it
        // outbound-only), so nothing arrives here; the receiver is kept for the node's sake.
        inbound: _inbound,
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
    let db = Db::new(store);
    let clips_stop = shutdown.child();
    let clips = {
        let server = Arc::new(crate::playback::ClipServer {
            data: installed.data.clone(),
            tenant_id: installed.info.tenant_id.clone(),
            tenant_key: protocols::signed::parse_public_key(&installed.info.tenant_public_key)
                .context("the package's tenant key")?,
            edge_peer_id: installed.peer_id(),
            db: db.clone(),
            clock: clock.clone(),
        });
        let incoming = handle
            .streams()
            .accept(guardian_node::StreamProtocol::new(
                protocols::messages::CLIPS,
            ))
            .map_err(|e| anyhow!("{e}"))?;
        tokio::spawn(crate::playback::serve(server, incoming, clips_stop.clone()))
    };
    let now = clock.monotonic();
    let mut agent = Agent {
        sampler: Sampler::new(&installed.data),
        installed,
        handle: handle.clone(),
        db,
        clock,
        vm,
        vm_addresses,
        device,
        retry_enroll_at: now,
        telemetry_interval,
        next_telemetry: now,
        pacer: EventPacer::new(),
        cameras,
    };
    let result = agent.serve(&shutdown, poll).await;

    // Cameras first: their open clips are finished and queued before the node goes. The
    // bounds are real time: they bound how long the process takes to exit.
    let stopped = tokio::time::timeout(STOP_WITHIN, async {
        let video_stopped = tokio::task::spawn_blocking(move || video.stop());
        if tokio::time::timeout(VIDEO_STOP_WITHIN, video_stopped)
            .await
            .is_err()
        {
            tracing::error!(
                within_ms = VIDEO_STOP_WITHIN.as_millis() as u64,
                "the cameras did not stop in time"
            );
        }
        clips_stop.trigger();
        let _ = clips.await;
        handle.shutdown().await;
        let _ = task.await;
    })
    .await;
    if stopped.is_err() {
        tracing::error!(
            within_ms = STOP_WITHIN.as_millis() as u64,
            "the node did not stop in time"
        );
    }
    tracing::info!("stopped");
    result
}

impl Agent {
    /// The loop: a pass of work whenever the vm (re)connects, every `poll`, and at once
    /// after a pass that left work due. Ends on `shutdown` or
    /// on an error (a refused enrollment).
    async fn serve(&mut self, shutdown: &Shutdown, poll: Duration) -> Result<()> {
        if self.device.is_some() {
            self.reserve_relay().await?;
        }
        let mut events = self.handle.subscribe();
        let mut tick = self.clock.sleep(Duration::ZERO);
        // `busy`: the last pass stopped with work left (a full pass), so go again at once.
        let mut busy = false;
        loop {
            let wake = tokio::select! {
                biased;
                _ = shutdown.wait() => return Ok(()),
                _ = std::future::ready(()), if busy => true,
                e = events.recv() => matches!(e, Ok(NodeEvent::Connected { peer, .. }) if peer == self.vm),
                _ = &mut tick => {
                    tick = self.clock.sleep(poll);
                    true
                }
            };
            if wake {
                // A stop cancels a pass: what it had not finished stays in the outboxes (a
                // row leaves only after the vm's answer) and goes on the next run; the vm
                // stores events and archives by id, so a resend is no duplicate.
                tokio::select! {
                    biased;
                    _ = shutdown.wait() => return Ok(()),
                    more = self.work() => busy = more?,
                }
            }
        }
    }

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
            if self.clock.monotonic() < self.retry_enroll_at {
                return Ok(false);
            }
            self.enroll().await?;
            if self.device.is_none() {
                return Ok(false);
            }
        }
        let events_left = self.flush_outbox().await?;
        if self.clock.monotonic() >= self.next_telemetry {
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
                self.next_telemetry = self.clock.monotonic();
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
                self.retry_enroll_at = self.clock.monotonic() + RETRY;
                Ok(())
            }
        }
    }

    /// Sends event batches; returns whether a full pass left more to send.
    async fn flush_outbox(&mut self) -> Result<bool> {
        if !self.pacer.is_due(self.clock.monotonic()) {
            return Ok(false);
        }
        let batch_size = self.installed.config.outbox.batch_size;
        for _ in 0..BATCHES_PER_PASS {
            let events = self.db.call(move |s| s.pending_events(batch_size)).await?;
            if events.is_empty() {
                return Ok(false);
            }
            let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
            let reply = self
                .handle
                .send_events(self.vm, EventBatch { events })
                .await;
            let action =
                self.pacer
                    .on_reply(ids, &reply, self.clock.monotonic(), &mut rand::thread_rng());
            match action {
                Action::Delete(event_ids) => {
                    let n = self.db.call(move |s| s.remove_events(&event_ids)).await?;
                    tracing::info!(delivered = n, "events acknowledged by the vm");
                }
                Action::Park { ids, reason } => {
                    tracing::error!(refusal = %reason, events = ids.len(), "the vm refused events; they stay on the edge, parked");
                    self.db.call(move |s| s.mark_refused(&ids, &reason)).await?;
                }
                Action::Retry { ids, wait } => {
                    let wait_ms = wait.as_millis() as u64;
                    match &reply {
                        Ok(EventAck::Refused(refusal)) => {
                            tracing::warn!(%refusal, events = ids.len(), wait_ms, "the vm cannot take events for now; will retry");
                        }
                        Ok(EventAck::Stored { .. }) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, events = ids.len(), wait_ms, "sending events failed; will retry");
                        }
                    }
                    self.db.call(move |s| s.note_attempt(&ids)).await?;
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
                let (now, want) = (self.clock.wall_ms(), (width + taken.len()) as u32);
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
        item: ArchiveItem,
        outcome: Result<crate::archive::SendOutcome>,
    ) -> Result<bool> {
        let id = item.event_id.clone();
        match outcome {
            Ok(crate::archive::SendOutcome::Stored) => {
                // The sealed objects stay: they are the edge's copy, which playback streams
                // and local retention deletes.
                self.db.call(move |s| s.remove_archive(&id)).await?;
                tracing::info!(event = %item.event_id, bytes = item.total_bytes, "event archived by the vm");
                Ok(true)
            }
            Ok(crate::archive::SendOutcome::Refused(r)) if r.is_retryable() => {
                let now = self.clock.wall_ms();
                let at = archive_retry_at(item.attempts, now, &mut rand::thread_rng());
                let wait_ms = at - now;
                tracing::warn!(event = %item.event_id, reason = %r, wait_ms, "archive refused for now; will retry");
                let reason = r.to_string();
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
                let now = self.clock.wall_ms();
                let at = archive_retry_at(item.attempts, now, &mut rand::thread_rng());
                let wait_ms = at - now;
                tracing::warn!(event = %item.event_id, error = %e, wait_ms, "archive send failed; will retry");
                let reason = format!("{e:#}");
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
            at_ms: self.clock.wall_ms(),
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
                self.next_telemetry = self.clock.monotonic() + self.telemetry_interval;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sending telemetry failed; will retry");
                self.next_telemetry = self.clock.monotonic() + RETRY;
            }
        }
        Ok(())
    }
}
