//! `guardian-vm run`: starts the archive storage, the state, the libp2p node, the tasks and
//! the HTTP server, and stops them all on one [`Shutdown`].
//!
//! Tasks (each ends on a child of the shutdown): the inbound request handler
//! ([`crate::handlers`]); the node event watcher ([`crate::presence`]); the allow-list
//! refresher ([`crate::allow`]); the archive stream handler ([`crate::archive`]); the
//! thumbnail stream handler ([`crate::thumbnails`]); the configuration pusher
//! ([`crate::configure`]); the camera change handler ([`crate::camera_changes`]); the camera
//! discovery handler ([`crate::discovery`]); the WireGuard negotiation, relay streams and
//! reconciliation ([`crate::overlay`], which takes the device down on the way out); the
//! retention sweep and the archive reconciliation ([`crate::archive::retention`]); the HTTP server ([`crate::http`], graceful
//! shutdown). Periodic tasks sleep on the vm's clock.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use guardian_node::{
    AllowList, Node, NodeConfig, PeerId, Role, SharedClock, Shutdown, SystemClock,
};

use crate::data_dir::{DataDir, external_addresses};
use crate::db;
use crate::state::Parts;
use crate::storage::Storage;

/// Where `VmState` was before the `state` module (kept for callers of that path).
pub use crate::state::VmState;

/// How long the parts together may take to stop once the shutdown is triggered.
const STOP_WITHIN: Duration = Duration::from_secs(4);

/// Triggers its signal when dropped.
struct StopOnDrop(Shutdown);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

/// Runs the vm from `data` on the system clock until `shutdown` is triggered.
pub async fn run(data: &Path, shutdown: Shutdown) -> Result<()> {
    run_with_clock(data, shutdown, SystemClock::shared()).await
}

/// Runs the vm from `data` with `clock` until `shutdown` is triggered.
pub async fn run_with_clock(data: &Path, shutdown: Shutdown, clock: SharedClock) -> Result<()> {
    let dir = DataDir::open(data)?;
    let owner_token_sha256 = dir.db.with(|c| db::owner_token_hash(c))?;
    let s3 = dir
        .config
        .s3
        .clone()
        .resolved()
        .context("the S3 settings")?;
    let storage = Arc::new(
        Storage::start(&s3, data)
            .await
            .context("cannot start the archive storage")?,
    );
    tracing::info!(endpoint = %storage.endpoint(), "archive storage ready");
    // Multipart upload ids go into the database while open, so that a crash's are aborted
    // at the next start (by the reconciliation, which runs at once).
    storage.set_journal(Arc::new(crate::archive::uploads::DbJournal {
        db: dir.db.clone(),
        clock: clock.clone(),
    }));
    let allow = AllowList::closed();
    let vm_peer = PeerId::from_str(&protocols::signed::peer_id_of(
        &dir.node_key.verifying_key(),
    ))
    .context("the node key's peer id")?;
    let external = external_addresses(&dir.config.fqdn, &dir.config.p2p)?;
    let relay_base = external
        .iter()
        .cloned()
        .map(|a| a.with(libp2p::multiaddr::Protocol::P2p(vm_peer)))
        .collect();
    let state = Arc::new(VmState::new(Parts {
        config: dir.config.clone(),
        db: dir.db.clone(),
        tenant_key: dir.tenant_key.clone(),
        owner_token_sha256,
        relay_base,
        storage: storage.clone(),
        allow: allow.clone(),
        clock: clock.clone(),
    }));
    crate::allow::refresh(&state).await?;
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
    node_config.external = external;
    node_config.allow = allow;
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

    let tasks = shutdown.child();
    // The tasks also stop if `run` returns early with an error (the HTTP port is taken).
    let _stop_tasks = StopOnDrop(tasks.clone());
    let archive = {
        let incoming = handle.accept(protocols::messages::ARCHIVE)?;
        tokio::spawn(crate::archive::serve(
            state.clone(),
            storage.clone(),
            incoming,
            tasks.child(),
        ))
    };
    let thumbnails = {
        let incoming = handle.accept(protocols::messages::THUMBNAILS)?;
        tokio::spawn(crate::thumbnails::serve(
            state.clone(),
            incoming,
            tasks.child(),
        ))
    };
    let camera_changes = {
        let incoming = handle.accept(protocols::messages::CONFIG_CHANGE)?;
        tokio::spawn(crate::camera_changes::serve(
            state.clone(),
            incoming,
            tasks.child(),
        ))
    };
    let discovery = {
        let incoming = handle.accept(protocols::messages::DISCOVERY)?;
        tokio::spawn(crate::discovery::serve(
            state.clone(),
            incoming,
            tasks.child(),
        ))
    };
    // Before the HTTP server, so that `GET /api/v1/wg` says from the start whether it runs.
    let overlay = crate::overlay::start(&state, data, &handle, &tasks).await?;
    let reconciler = tokio::spawn(crate::archive::retention::reconcile_periodically(
        state.db.clone(),
        storage.clone(),
        crate::archive::reindex::Context {
            tenant_id: state.config.tenant_id.clone(),
            retention_days: state.config.archive.retention_days,
        },
        clock.clone(),
        Duration::from_secs(state.config.archive.reconcile_secs.max(1)),
        tasks.child(),
    ));
    let retention = tokio::spawn(crate::archive::retention::sweep_periodically(
        state.db.clone(),
        storage.clone(),
        clock.clone(),
        Duration::from_secs(state.config.archive.retention_sweep_secs.max(1)),
        tasks.child(),
    ));
    let http_config = &dir.config.http;
    let sign_in = Arc::new(crate::http::auth::SignIn::new(
        http_config.trusted_proxies()?,
        http_config.sign_in_failures_per_minute,
        clock.clone(),
    ));
    let http_listener = tokio::net::TcpListener::bind(&http_config.listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", http_config.listen))?;
    tracing::info!(address = %http_listener.local_addr()?, "HTTP API listening");
    let http = tokio::spawn(crate::http::server::serve(
        http_listener,
        crate::http::routes(state.clone(), sign_in),
        http_config.limits(),
        tasks.child(),
    ));
    let metrics_http = if http_config.metrics_listen.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&http_config.metrics_listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen for metrics on {}",
                    http_config.metrics_listen
                )
            })?;
        tracing::info!(address = %listener.local_addr()?, "metrics listening (no token)");
        Some(tokio::spawn(crate::http::server::serve(
            listener,
            crate::http::metrics_routes(state.clone()),
            http_config.limits(),
            tasks.child(),
        )))
    };
    let watcher = tokio::spawn(crate::presence::watch(
        state.clone(),
        handle.subscribe(),
        tasks.child(),
    ));
    let pusher = tokio::spawn(crate::configure::run(
        state.clone(),
        handle.subscribe(),
        tasks.child(),
    ));
    let mut others: Vec<(String, Arc<dyn crate::alerts::deliver::Sender>)> = Vec::new();
    let mqtt = if state.config.mqtt.url.is_empty() {
        None
    } else {
        let (sender, task) =
            crate::alerts::mqtt::start(state.clone(), &state.config.mqtt, tasks.child())?;
        others.push(("mqtt".into(), sender));
        Some(task)
    };
    if let Some(smtp) = &state.config.notify.smtp {
        others.push((
            "smtp".into(),
            Arc::new(crate::alerts::smtp::SmtpSender::new(smtp)?),
        ));
    }
    let senders = Arc::new(crate::alerts::deliver::Senders::new(
        &state.config.notify,
        others,
    ));
    let health_watch = tokio::spawn(crate::alerts::health::watch(state.clone(), tasks.child()));
    let notifier = tokio::spawn(crate::alerts::deliver::run(
        state.clone(),
        senders,
        tasks.child(),
    ));
    let refresher = tokio::spawn(crate::allow::refresh_periodically(
        state.clone(),
        tasks.child(),
    ));
    let handler = {
        let state = state.clone();
        let stop = tasks.child();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait() => break,
                    request = inbound.recv() => match request {
                        Some(r) => crate::handlers::handle(&state, r).await,
                        None => break,
                    }
                }
            }
        })
    };

    shutdown.wait().await;
    tracing::info!("shutting down");
    tasks.trigger();
    // One deadline for everything, so SIGTERM ends the process within 5 s.
    let deadline = tokio::time::Instant::now() + STOP_WITHIN;
    if tokio::time::timeout_at(deadline, handle.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the node did not stop in time");
    }
    for (name, t) in [
        ("request handler", handler),
        ("allow-list refresher", refresher),
        ("node event watcher", watcher),
        ("configuration pusher", pusher),
        ("notification delivery", notifier),
        ("health watcher", health_watch),
        ("archive handler", archive),
        ("thumbnail handler", thumbnails),
        ("camera change handler", camera_changes),
        ("camera discovery handler", discovery),
        ("retention sweep", retention),
        ("archive reconciliation", reconciler),
        ("HTTP server", http),
        ("node", task),
    ]
    .into_iter()
    .chain(overlay)
    .chain(metrics_http.map(|t| ("metrics server", t)))
    .chain(mqtt.map(|t| ("MQTT client", t)))
    {
        if tokio::time::timeout_at(deadline, t).await.is_err() {
            tracing::warn!(task = name, "did not stop in time");
        }
    }
    tracing::info!("stopped");
    Ok(())
}
