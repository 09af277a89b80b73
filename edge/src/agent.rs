//! `guardian-edge run`: the edge's connection to its vm.
//!
//! Not enrolled yet, the agent first runs a node as the package's *enrollment identity*
//! (derived from the token's secret: the one peer id the vm's gate admits for the package),
//! keeps the vm connected, and sends the token with the edge's own public keys and its proof
//! ([`protocols::messages::enroll`]); a refusal is fatal (the agent stops and says why), a
//! failed request is sent again after [`RETRY`]. Once accepted it stores the vm's
//! configuration, stops that node and starts its own, with its own key, which the vm admitted
//! when it registered the edge (or, at the latest, at its next allow-list refresh: the agent
//! redials every [`SWITCH_RETRY`] for up to [`SWITCH_WITHIN`] before leaving it to the node's
//! backoff).
//!
//! The node redials the vm with backoff whenever the connection is gone (QUIC first, then
//! TCP). Each time the vm is reachable the agent keeps a relay reservation on the vm, sends
//! each event's sealed thumbnail ([`crate::thumbnails`]), the sealed events for the archive,
//! and telemetry at the
//! interval the vm asks for; the event outbox has a task of its own
//! ([`crate::event_sender`]), woken the moment a camera queues a record. Everything it must
//! not lose is in SQLite first, so a restart of
//! either side loses nothing and duplicates nothing (the vm stores events by id). When the
//! outbox sends, parks or backs off is decided by [`crate::delivery`]; every deadline, retry
//! time and reported time is read from the [`SharedClock`] it is given.
//!
//! It runs until its [`Shutdown`] is triggered (SIGTERM or SIGINT in `main`): a pass of work
//! in progress is dropped (its rows stay for the next run), the cameras stop first so their
//! open clips are finished and queued, then the clip server and the node, within 5 s in all.
//!
//! With `[http] listen` set it serves the web app and the local API on the LAN
//! ([`crate::lan`]) from the start, whether or not the vm is reachable; it stops with the rest.
//!
//! It also serves `/guardian/clips/1` ([`crate::playback`]) and, to the vm alone,
//! `/guardian/config/1` ([`crate::configure`]: the key slots the owner signed, the cameras),
//! `/guardian/snapshot/1` ([`crate::snapshot`]: a camera's current picture, sealed) and
//! `/guardian/scan/1` ([`crate::discovery`], which also scans the LAN for cameras and
//! reports them). The gate admits the vm, and
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
use protocols::messages::telemetry::TelemetryReport;

use crate::data_dir::Installed;
use crate::delivery::{EventPacer, archive_retry_at};
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

/// How long after enrolling the agent redials the vm with its own key at a short interval.
const SWITCH_WITHIN: Duration = Duration::from_secs(30);
/// The interval of those redials.
const SWITCH_RETRY: Duration = Duration::from_millis(500);

struct Agent<'a> {
    installed: &'a Installed,
    handle: NodeHandle,
    db: Db,
    clock: SharedClock,
    vm: PeerId,
    vm_addresses: Vec<Multiaddr>,
    telemetry_interval: Duration,
    next_telemetry: Instant,
    sampler: Sampler,
    cameras: crate::video::camera::StatusBoard,
    /// Cameras changed on the box, reported to the vm.
    camera_report: crate::camera_report::Reporter,
    /// The WireGuard overlay's path to the vm (`None`: no tunnel).
    overlay_path: tokio::sync::watch::Receiver<Option<guardian_overlay::path::Path>>,
}

/// A running node and the task that owns its swarm.
struct Running {
    handle: NodeHandle,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.handle.shutdown().await;
        let _ = self.task.await;
    }
}

/// Starts a node with `key` that admits the vm (and, with `serve`, peers the vm relays).
async fn start_node(
    installed: &Installed,
    key: ed25519_dalek::SigningKey,
    vm: PeerId,
    serve: bool,
) -> Result<Running> {
    let allow = AllowList::closed();
    allow.allow(vm);
    if serve {
        allow.admit_via_relay(vm, RELAYED_PEER_DIRECT_FOR);
    }
    let mut config = NodeConfig::new(Role::Edge, key);
    config.listen = installed
        .config
        .p2p
        .listen
        .iter()
        .map(|a| Multiaddr::from_str(a).with_context(|| format!("bad listen address {a}")))
        .collect::<Result<_>>()?;
    config.allow = allow;
    // The enrollment identity only talks to the vm: no hole punching.
    config.hole_punch = serve;
    let Node {
        handle,
        // The edge serves no request-response protocol (the node's protocol table makes it
        // outbound-only), so nothing arrives here.
        inbound: _,
        task,
    } = Node::start(config).await?;
    Ok(Running { handle, task })
}

/// Runs the edge from `data` until `shutdown` is triggered, or until the vm refuses
/// enrollment (an error saying why). Time (deadlines, retries, stored and sent times) comes
/// from `clock`.
///
/// On stop the cameras go first (their open clips finished and queued), then the clip server
/// and the node, within [`STOP_WITHIN`] in all.
pub async fn run(data: &Path, shutdown: Shutdown, clock: SharedClock) -> Result<()> {
    let installed = Installed::load(data)?;
    // What an older version left readable by others is closed before anything runs.
    guardian_node::files::tighten_data_dir(data)
        .with_context(|| format!("cannot restrict the modes of {}", data.display()))?;
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
    let db = Db::new(store);

    // Cameras record locally whether or not the vm is reachable, enrolled or not.
    let video =
        crate::video::supervisor::Video::start(&installed, clock.clone(), shutdown.child())?;
    let cameras = video.status.clone();
    let frames = video.frames.clone();
    let events_queued = video.events_queued.clone();

    // The web app and the local API on the LAN, enrolled or not, vm reachable or not.
    let lan_stop = shutdown.child();
    // (The same API is served on the WireGuard overlay's addresses once it is up.)
    let lan = crate::lan::Lan::new(
        &installed,
        db.clone(),
        cameras.clone(),
        video.live.clone(),
        clock.clone(),
    );
    let lan_task = if installed.config.http.listen.is_empty() {
        None
    } else {
        let http = &installed.config.http;
        match crate::lan::start(lan.clone(), &http.listen, &http.allow, lan_stop.clone()).await {
            Ok((addr, task)) => {
                tracing::info!(%addr, "LAN web app listening");
                if !crate::local_token::exists(&installed.data) {
                    tracing::warn!(
                        "no local admin token: `guardian-edge local-token --rotate` makes one"
                    );
                }
                Some(task)
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "the LAN web app is off");
                None
            }
        }
    };

    let mut node = None;
    // The stream servers (clips, configuration): their stop signals and tasks.
    let mut servers = Vec::new();
    // The WireGuard overlay's path, for telemetry.
    let (overlay_path, overlay_path_rx) = tokio::sync::watch::channel(None);
    let result = async {
        let device = match device {
            Some(d) => d,
            None => {
                match enroll_with_package(
                    &installed,
                    vm,
                    &vm_addresses,
                    &db,
                    &clock,
                    &shutdown,
                    &mut node,
                )
                .await?
                {
                    Some(d) => d,
                    None => return Ok(()),
                }
            }
        };
        let own = start_node(&installed, installed.key.clone(), vm, true).await?;
        let handle = own.handle.clone();
        node = Some(own);
        tracing::info!(peer_id = %handle.peer_id(), vm = %vm, "edge started");
        let mut events = handle.subscribe();
        let link_stop = shutdown.child();
        servers.push((
            link_stop.clone(),
            tokio::spawn(crate::link::watch(
                installed.data.clone(),
                vm,
                handle.subscribe(),
                clock.clone(),
                link_stop,
            )),
        ));
        handle.keep_connected(vm, vm_addresses.clone()).await?;
        let clips_stop = shutdown.child();
        let server = Arc::new(crate::playback::ClipServer {
            data: installed.data.clone(),
            tenant_id: installed.info.tenant_id.clone(),
            tenant_key: protocols::signed::parse_public_key(&installed.info.tenant_public_key)
                .context("the package's tenant key")?,
            edge_peer_id: installed.peer_id(),
            db: db.clone(),
            clock: clock.clone(),
        });
        let incoming = handle.accept(protocols::messages::CLIPS)?;
        servers.push((
            clips_stop.clone(),
            tokio::spawn(crate::playback::serve(server, incoming, clips_stop)),
        ));
        let config_stop = shutdown.child();
        let incoming = handle.accept(protocols::messages::CONFIG)?;
        servers.push((
            config_stop.clone(),
            tokio::spawn(crate::configure::serve(
                crate::configure::Context {
                    slots: installed.key_slots.clone(),
                    data: installed.data.clone(),
                    identity: installed.age.clone(),
                },
                vm,
                incoming,
                config_stop,
            )),
        ));
        let snapshot_stop = shutdown.child();
        let incoming = handle.accept(protocols::messages::SNAPSHOT)?;
        servers.push((
            snapshot_stop.clone(),
            tokio::spawn(crate::snapshot::serve(
                Arc::new(crate::snapshot::Snapshots {
                    frames: frames.clone(),
                    status: cameras.clone(),
                    slots: installed.key_slots.clone(),
                    clock: clock.clone(),
                }),
                vm,
                incoming,
                snapshot_stop,
            )),
        ));
        let (discovery, scanner) = crate::discovery::Discovery::new(
            installed.data.clone(),
            handle.clone(),
            vm,
            clock.clone(),
        );
        let discovery_stop = shutdown.child();
        servers.push((
            discovery_stop.clone(),
            tokio::spawn(discovery.run(discovery_stop)),
        ));
        let scan_stop = shutdown.child();
        let incoming = handle.accept(protocols::messages::SCAN)?;
        servers.push((
            scan_stop.clone(),
            tokio::spawn(crate::discovery::serve_scan(
                scanner, vm, incoming, scan_stop,
            )),
        ));
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = connect_own_key(&handle, vm, &vm_addresses, &mut events, &clock) => {}
        }
        // Events go on their own task, woken when a camera queues one: an alert must not wait
        // for an archive upload in the agent's pass.
        let sender_stop = shutdown.child();
        let sender = crate::event_sender::EventSender {
            handle: handle.clone(),
            vm,
            db: db.clone(),
            clock: clock.clone(),
            batch_size: installed.config.outbox.batch_size,
            pacer: EventPacer::new(),
        };
        servers.push((
            sender_stop.clone(),
            tokio::spawn(sender.run(
                events_queued.clone(),
                Duration::from_millis(installed.config.outbox.poll_millis.max(50)),
                sender_stop,
            )),
        ));

        // The WireGuard overlay to the vm, once enrolled and connected.
        let overlay_stop = shutdown.child();
        servers.push((
            overlay_stop.clone(),
            tokio::spawn(crate::overlay::run(
                crate::overlay::Context {
                    data: installed.data.clone(),
                    config: installed.config.wg.clone(),
                    handle: handle.clone(),
                    vm,
                    clock: clock.clone(),
                    lan: Some((lan.clone(), installed.config.http.allow.clone())),
                    path: overlay_path.clone(),
                },
                overlay_stop,
            )),
        ));

        let telemetry_interval =
            Duration::from_secs(u64::from(device.telemetry_interval_secs.max(1)));
        let poll = Duration::from_millis(installed.config.outbox.poll_millis.max(50));
        let now = clock.monotonic();
        let mut agent = Agent {
            sampler: Sampler::new(&installed.data),
            installed: &installed,
            handle,
            db: db.clone(),
            clock: clock.clone(),
            vm,
            vm_addresses: vm_addresses.clone(),
            telemetry_interval,
            next_telemetry: now,
            camera_report: crate::camera_report::Reporter::new(now),
            overlay_path: overlay_path_rx.clone(),
            cameras,
        };
        agent.serve(&shutdown, poll).await
    }
    .await;

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
        for (stop, task) in servers {
            stop.trigger();
            let _ = task.await;
        }
        lan_stop.trigger();
        if let Some(task) = lan_task {
            let _ = task.await;
        }
        if let Some(node) = node {
            node.stop().await;
        }
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

/// Enrolls as the package's enrollment identity: the vm's configuration (stored), or `None`
/// when `shutdown` came first. The enrollment node is in `node` while it runs (for the
/// caller to stop on shutdown or error) and is stopped here once enrolled.
async fn enroll_with_package(
    installed: &Installed,
    vm: PeerId,
    vm_addresses: &[Multiaddr],
    db: &Db,
    clock: &SharedClock,
    shutdown: &Shutdown,
    node: &mut Option<Running>,
) -> Result<Option<DeviceConfig>> {
    let request = EnrollRequest::new(
        installed.info.token()?,
        &installed.key,
        &installed.age_recipient(),
        &format!("guardian-edge/{}", env!("CARGO_PKG_VERSION")),
    )?;
    let enrolling = start_node(installed, installed.info.enrollment_key()?, vm, false).await?;
    let handle = enrolling.handle.clone();
    *node = Some(enrolling);
    tracing::info!(enrollment_peer = %handle.peer_id(), edge = %installed.peer_id(), vm = %vm, "not enrolled yet: connecting as the package's enrollment identity");
    let mut events = handle.subscribe();
    handle.keep_connected(vm, vm_addresses.to_vec()).await?;
    let poll = Duration::from_millis(installed.config.outbox.poll_millis.max(50));
    loop {
        // Wait for the vm: its connection, or the next look.
        if handle.connection(vm).await?.is_none() {
            tokio::select! {
                biased;
                _ = shutdown.wait() => return Ok(None),
                _ = events.recv() => {}
                _ = clock.sleep(poll) => {}
            }
            continue;
        }
        let answer = tokio::select! {
            biased;
            _ = shutdown.wait() => return Ok(None),
            a = handle.enroll(vm, request.clone()) => a,
        };
        match answer {
            Ok(EnrollResponse::Accepted(config)) => {
                let c = config.clone();
                db.call(move |s| s.set_device_config(&c)).await?;
                tracing::info!(device = %config.device_id, tenant = %config.tenant_id, "enrolled with the vm");
                if let Some(n) = node.take() {
                    n.stop().await;
                }
                return Ok(Some(config));
            }
            Ok(EnrollResponse::Refused(reason)) => {
                tracing::error!(%reason, "the vm refused enrollment");
                return Err(anyhow!("enrollment refused by the vm: {reason}"));
            }
            Err(e) => {
                tracing::warn!(error = %e, "enrollment request failed; will retry");
                tokio::select! {
                    biased;
                    _ = shutdown.wait() => return Ok(None),
                    _ = clock.sleep(RETRY) => {}
                }
            }
        }
    }
}

/// Right after the switch from the enrollment identity: dials the vm every [`SWITCH_RETRY`]
/// until a connection with the edge's own key is open, for up to [`SWITCH_WITHIN`] (the vm
/// admits the key when it registers the edge, and its allow-list refresh does within 2 s).
/// After that the node's own redial backoff goes on.
async fn connect_own_key(
    handle: &NodeHandle,
    vm: PeerId,
    vm_addresses: &[Multiaddr],
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    clock: &SharedClock,
) {
    let deadline = clock.monotonic() + SWITCH_WITHIN;
    loop {
        match handle.connection(vm).await {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(_) => return,
        }
        if clock.monotonic() >= deadline {
            tracing::warn!(
                within_ms = SWITCH_WITHIN.as_millis() as u64,
                "the vm has not admitted the edge's own key yet; redialing with backoff"
            );
            return;
        }
        // A refused dial is an error or a connection closed at once; either way, look again.
        let _ =
            tokio::time::timeout(SWITCH_RETRY * 4, handle.dial(vm, vm_addresses.to_vec())).await;
        tokio::select! {
            _ = events.recv() => {}
            _ = clock.sleep(SWITCH_RETRY) => {}
        }
    }
}

impl Agent<'_> {
    /// The loop: a pass of work whenever the vm (re)connects, every `poll`, and at once
    /// after a pass that left work due. Ends on `shutdown` or on an error.
    async fn serve(&mut self, shutdown: &Shutdown, poll: Duration) -> Result<()> {
        self.reserve_relay().await?;
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

    /// One pass: outbox and telemetry, while the vm is connected. Returns whether work is
    /// left that is due now.
    async fn work(&mut self) -> Result<bool> {
        if self.handle.connection(self.vm).await?.is_none() {
            return Ok(false);
        }
        let thumbnails_left = self.flush_thumbnails().await?;
        if self.clock.monotonic() >= self.next_telemetry {
            self.send_telemetry().await?;
        }
        let archive_left = self.flush_archive().await?;
        let now = self.clock.monotonic();
        if let Err(e) = self
            .camera_report
            .tick(&self.handle, self.vm, self.installed, now)
            .await
        {
            tracing::warn!(error = %e, "cannot report the cameras changed on this box; will retry");
        }
        Ok(thumbnails_left || archive_left)
    }

    /// Sends due thumbnails, oldest first, one at a time (each is tens of KB), until none is
    /// due, a send fails, or a full pass is done; returns whether more is due.
    async fn flush_thumbnails(&mut self) -> Result<bool> {
        for _ in 0..BATCHES_PER_PASS {
            let now = self.clock.wall_ms();
            let Some(item) = self
                .db
                .call(move |s| s.due_thumbnails(now, 1))
                .await?
                .into_iter()
                .next()
            else {
                return Ok(false);
            };
            let outcome =
                crate::thumbnails::send(&self.handle, self.vm, &self.installed.data, &item).await;
            let id = item.event_id.clone();
            let retry = |reason: String| {
                let now = self.clock.wall_ms();
                let at = archive_retry_at(item.attempts, now, &mut rand::thread_rng());
                (at, reason)
            };
            match outcome {
                Ok(crate::thumbnails::SendOutcome::Stored) => {
                    self.db.call(move |s| s.remove_thumbnail(&id)).await?;
                    tracing::debug!(event = %item.event_id, "thumbnail stored by the vm");
                }
                Ok(crate::thumbnails::SendOutcome::Gone) => {
                    self.db.call(move |s| s.remove_thumbnail(&id)).await?;
                    tracing::info!(event = %item.event_id, "thumbnail gone before it was sent (event removed)");
                }
                Ok(crate::thumbnails::SendOutcome::Refused(r)) if !r.is_retryable() => {
                    tracing::error!(event = %item.event_id, reason = %r, "the vm refused a thumbnail; it is parked");
                    let reason = r.to_string();
                    self.db
                        .call(move |s| s.park_thumbnail(&id, &reason))
                        .await?;
                }
                Ok(crate::thumbnails::SendOutcome::Refused(r)) => {
                    let (at, reason) = retry(r.to_string());
                    tracing::warn!(event = %item.event_id, %reason, "thumbnail refused for now; will retry");
                    self.db
                        .call(move |s| s.retry_thumbnail_at(&id, at, &reason))
                        .await?;
                    return Ok(false);
                }
                Err(e) => {
                    let (at, reason) = retry(format!("{e:#}"));
                    tracing::warn!(event = %item.event_id, %reason, "sending a thumbnail failed; will retry");
                    self.db
                        .call(move |s| s.retry_thumbnail_at(&id, at, &reason))
                        .await?;
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
        let (events_parked, archive_parked, thumbnails_parked) =
            self.db.call(|s| s.parked()).await?;
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
            events_parked,
            archive_parked,
            thumbnails_parked,
            overlay_path: (*self.overlay_path.borrow())
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
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
