//! `guardian-vm run`: starts the archive storage, the state, the libp2p node, the tasks and
//! the HTTP server, and stops them all on one [`Shutdown`].
//!
//! Tasks (each ends on a child of the shutdown): the inbound request handler
//! ([`crate::handlers`]); the node event watcher ([`crate::presence`]); the allow-list
//! refresher ([`crate::allow`]); the archive stream handler ([`crate::archive`]); the
//! thumbnail stream handler ([`crate::thumbnails`]); the configuration pusher
//! ([`crate::configure`]); the
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
    let s3 = dir.config.s3.clone().with_env();
    let storage = Arc::new(
        Storage::start(&s3, data)
            .await
            .context("cannot start the archive storage")?,
    );
    tracing::info!(endpoint = %storage.endpoint(), "archive storage ready");
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
        let incoming = handle
            .streams()
            .accept(guardian_node::StreamProtocol::new(
                protocols::messages::ARCHIVE,
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tokio::spawn(crate::archive::serve(
            state.clone(),
            storage.clone(),
            incoming,
            tasks.child(),
        ))
    };
    let thumbnails = {
        let incoming = handle
            .streams()
            .accept(guardian_node::StreamProtocol::new(
                protocols::messages::THUMBNAILS,
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tokio::spawn(crate::thumbnails::serve(
            state.clone(),
            incoming,
            tasks.child(),
        ))
    };
    let reconciler = tokio::spawn(crate::archive::retention::reconcile_periodically(
        state.db.clone(),
        storage.clone(),
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
    let http_listener = tokio::net::TcpListener::bind(&dir.config.http.listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", dir.config.http.listen))?;
    tracing::info!(address = %http_listener.local_addr()?, "HTTP API listening");
    let http = {
        let stop = tasks.child();
        let server = warp::serve(crate::http::routes(state.clone()))
            .incoming(http_listener)
            .graceful(async move { stop.wait().await });
        tokio::spawn(server.run())
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
        ("archive handler", archive),
        ("thumbnail handler", thumbnails),
        ("retention sweep", retention),
        ("archive reconciliation", reconciler),
        ("HTTP server", http),
        ("node", task),
    ] {
        if tokio::time::timeout_at(deadline, t).await.is_err() {
            tracing::warn!(task = name, "did not stop in time");
        }
    }
    tracing::info!("stopped");
    Ok(())
}
