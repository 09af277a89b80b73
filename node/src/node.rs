//! The node: a libp2p swarm in its own task, a [`NodeHandle`] to command it, a bounded queue
//! of [`Inbound`] requests for the application, and a broadcast of [`NodeEvent`]s.
//!
//! # Task and queues
//!
//! One task owns the swarm. Commands reach it through a bounded queue (64); inbound requests
//! leave it through a bounded queue (256): when the application falls that far behind, a new
//! request is dropped, which the peer sees as a failed request and retries. Events are a
//! broadcast (256): a slow subscriber loses old events (and is told so), never blocks the node.
//! Every reply the application owes is awaited at most [`REPLY_TIMEOUT`].
//!
//! # Staying connected
//!
//! [`NodeHandle::keep_connected`] makes the node redial a peer whenever no connection to it
//! is open, waiting between attempts with exponential backoff and full jitter (1 s doubling
//! to 60 s), addresses tried one at a time in the order given (QUIC first, then TCP).
//! [`NodeHandle::keep_relay_reservation`] keeps a relay reservation on a peer, renewed
//! whenever the connection to it comes back.
//!
//! # Shutdown
//!
//! [`NodeHandle::shutdown`] closes every connection, waits (up to 2 s) for them to close, and
//! ends the task.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, autonat, dcutr, identify, noise, ping, relay, tcp,
    yamux,
};
use protocols::messages::enroll::{EnrollRequest, EnrollResponse};
use protocols::messages::events::{EventAck, EventBatch};
use protocols::messages::telemetry::{TelemetryAck, TelemetryReport};
use rand::SeedableRng;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::backoff::Backoff;
use crate::codec::FrameCodec;
use crate::config::{NodeConfig, Role};
use crate::gate::Gate;

/// How long the application may take to answer an inbound request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
const COMMAND_QUEUE: usize = 64;
const INBOUND_QUEUE: usize = 256;
const EVENT_QUEUE: usize = 256;
const MAINTENANCE_TICK: Duration = Duration::from_millis(500);
const RELAY_RETRY: Duration = Duration::from_secs(5);

type Rr<Req, Resp> = request_response::Behaviour<FrameCodec<Req, Resp>>;

#[derive(NetworkBehaviour)]
struct Behaviour {
    gate: Gate,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    relay: Toggle<relay::Behaviour>,
    relay_client: relay::client::Behaviour,
    dcutr: Toggle<dcutr::Behaviour>,
    autonat: Toggle<autonat::v2::client::Behaviour>,
    enroll: Rr<EnrollRequest, EnrollResponse>,
    events: Rr<EventBatch, EventAck>,
    telemetry: Rr<TelemetryReport, TelemetryAck>,
    stream: libp2p_stream::Behaviour,
}

/// Why the node could not start or carry out a command.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The transport could not be set up.
    #[error("cannot build the libp2p transport: {0}")]
    Transport(String),
    /// An address could not be listened on.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        reason: String,
    },
    /// Listening did not start in time.
    #[error("no listen address came up within {0:?}")]
    ListenTimeout(Duration),
    /// A dial failed.
    #[error("cannot reach {peer}: {reason}")]
    Dial {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why an outbound request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No answer in time.
    #[error("the request timed out")]
    Timeout,
    /// The peer could not be reached.
    #[error("the peer could not be reached")]
    DialFailure,
    /// The connection closed before the answer.
    #[error("the connection closed before the answer")]
    ConnectionClosed,
    /// The peer does not speak the protocol (or refused the stream).
    #[error("the peer does not serve this protocol")]
    UnsupportedProtocol,
    /// Anything else on the stream (a malformed answer among them).
    #[error("request failed: {0}")]
    Io(String),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

impl From<request_response::OutboundFailure> for RequestError {
    fn from(e: request_response::OutboundFailure) -> Self {
        use request_response::OutboundFailure as F;
        match e {
            F::Timeout => RequestError::Timeout,
            F::DialFailure => RequestError::DialFailure,
            F::ConnectionClosed => RequestError::ConnectionClosed,
            F::UnsupportedProtocols => RequestError::UnsupportedProtocol,
            F::Io(e) => RequestError::Io(e.to_string()),
        }
    }
}

/// Something that happened on the node, for whoever listens.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A listen address is up.
    Listening {
        /// The address.
        address: Multiaddr,
    },
    /// A connection opened.
    Connected {
        /// The peer.
        peer: PeerId,
        /// The remote address.
        address: Multiaddr,
        /// Through a relay circuit rather than direct.
        relayed: bool,
        /// Opened by the peer.
        inbound: bool,
    },
    /// A connection closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Connections to the peer still open.
        remaining: u32,
    },
    /// A dial failed.
    DialFailed {
        /// The peer, if known.
        peer: Option<PeerId>,
        /// Why.
        error: String,
    },
    /// An inbound connection failed before it was established (refused by the gate, or a
    /// failed handshake).
    IncomingFailed {
        /// The remote address.
        address: Multiaddr,
        /// Why.
        error: String,
    },
    /// A relay accepted our reservation: peers can now reach us through it.
    RelayReserved {
        /// The relay.
        relay: PeerId,
    },
    /// A hole punch with a peer finished.
    HolePunch {
        /// The peer.
        peer: PeerId,
        /// Whether a direct connection came of it.
        direct: bool,
    },
}

/// A reply the application owes for an inbound request.
pub struct Reply<T> {
    tx: oneshot::Sender<(T, bool)>,
}

impl<T> Reply<T> {
    /// Sends the answer.
    pub fn send(self, response: T) {
        let _ = self.tx.send((response, false));
    }

    /// Sends the answer, then closes every connection to the peer (a refusal).
    pub fn send_and_close(self, response: T) {
        let _ = self.tx.send((response, true));
    }
}

/// An inbound request for the application to answer.
pub enum Inbound {
    /// `/guardian/enroll/1`.
    Enroll {
        /// The authenticated peer.
        peer: PeerId,
        /// The request.
        request: EnrollRequest,
        /// Where the answer goes.
        reply: Reply<EnrollResponse>,
    },
    /// `/guardian/events/1`.
    Events {
        /// The authenticated peer.
        peer: PeerId,
        /// The batch.
        batch: EventBatch,
        /// Where the answer goes.
        reply: Reply<EventAck>,
    },
    /// `/guardian/telemetry/1`.
    Telemetry {
        /// The authenticated peer.
        peer: PeerId,
        /// The report.
        report: TelemetryReport,
        /// Where the answer goes.
        reply: Reply<TelemetryAck>,
    },
}

enum Outbound {
    Enroll(
        EnrollRequest,
        oneshot::Sender<Result<EnrollResponse, RequestError>>,
    ),
    Events(EventBatch, oneshot::Sender<Result<EventAck, RequestError>>),
    Telemetry(
        TelemetryReport,
        oneshot::Sender<Result<TelemetryAck, RequestError>>,
    ),
}

enum Command {
    Dial {
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    KeepConnected {
        peer: PeerId,
        addresses: Vec<Multiaddr>,
    },
    KeepRelay {
        relay: PeerId,
        address: Multiaddr,
    },
    Request {
        peer: PeerId,
        request: Outbound,
    },
    Disconnect {
        peer: PeerId,
    },
    IsConnected {
        peer: PeerId,
        reply: oneshot::Sender<Option<bool>>,
    },
    CloseRelayed {
        peer: PeerId,
        reply: oneshot::Sender<usize>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A handle to a running node; cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    streams: libp2p_stream::Control,
}

/// A started node: its handle and the queue of inbound requests.
pub struct Node {
    /// Commands the node.
    pub handle: NodeHandle,
    /// Inbound requests to answer.
    pub inbound: mpsc::Receiver<Inbound>,
    /// The node's task; ends after shutdown.
    pub task: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Builds the swarm, starts listening, and waits (up to 10 s) until every listen address
    /// is up before returning.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let mut swarm = build_swarm(&config)?;
        for address in &config.external {
            swarm.add_external_address(address.clone());
        }
        let mut pending_listeners = HashSet::new();
        for address in &config.listen {
            let id = swarm
                .listen_on(address.clone())
                .map_err(|e| NodeError::Listen {
                    address: address.clone(),
                    reason: e.to_string(),
                })?;
            pending_listeners.insert(id);
        }
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let mut listening = Vec::new();
        let deadline = Duration::from_secs(10);
        tokio::time::timeout(deadline, async {
            while !pending_listeners.is_empty() {
                match swarm.select_next_some().await {
                    SwarmEvent::NewListenAddr {
                        listener_id,
                        address,
                    } => {
                        pending_listeners.remove(&listener_id);
                        tracing::info!(%address, "listening");
                        listening.push(address);
                    }
                    SwarmEvent::ListenerClosed {
                        addresses, reason, ..
                    } => {
                        return Err(NodeError::Listen {
                            address: addresses.first().cloned().unwrap_or(Multiaddr::empty()),
                            reason: format!("{reason:?}"),
                        });
                    }
                    SwarmEvent::ListenerError { error, .. } => {
                        return Err(NodeError::Listen {
                            address: Multiaddr::empty(),
                            reason: error.to_string(),
                        });
                    }
                    _ => {}
                }
            }
            Ok(())
        })
        .await
        .map_err(|_| NodeError::ListenTimeout(deadline))??;

        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let streams = swarm.behaviour().stream.new_control();
        let handle = NodeHandle {
            peer_id: *swarm.local_peer_id(),
            commands: cmd_tx,
            events: events.clone(),
            streams,
        };
        let task = EventLoop {
            swarm,
            events,
            inbound: inbound_tx,
            listening,
            connections: HashMap::new(),
            dial_waiters: HashMap::new(),
            kept: HashMap::new(),
            relay: None,
            close_after_response: HashSet::new(),
            pending_enroll: HashMap::new(),
            pending_events: HashMap::new(),
            pending_telemetry: HashMap::new(),
            replies: FuturesUnordered::new(),
            rng: rand::rngs::StdRng::from_entropy(),
            role: config.role,
        }
        .spawn(cmd_rx);
        Ok(Node {
            handle,
            inbound: inbound_rx,
            task,
        })
    }
}

fn build_swarm(config: &NodeConfig) -> Result<Swarm<Behaviour>, NodeError> {
    let keypair = crate::identity::keypair(&config.key);
    let transport_err = |e: &dyn std::fmt::Display| NodeError::Transport(e.to_string());
    let role = config.role;
    let relay_limits = config.relay_limits;
    let hole_punch = config.hole_punch;
    let allow = config.allow.clone();
    let agent = config.agent_version.clone();
    let rr_config =
        request_response::Config::default().with_request_timeout(config.request_timeout);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport_err(&e))?
        .with_quic_config(|mut c| {
            // Keep QUIC connections alive through home NATs; the defaults idle out in 10 s.
            c.max_idle_timeout = 60_000;
            c.keep_alive_interval = Duration::from_secs(10);
            c
        })
        .with_dns()
        .map_err(|e| transport_err(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| transport_err(&e))?
        .with_behaviour(|key, relay_client| {
            let peer_id = key.public().to_peer_id();
            let rr = |p: &'static str| [(StreamProtocol::new(p), ProtocolSupport::Full)];
            Behaviour {
                gate: Gate::new(allow),
                identify: identify::Behaviour::new(
                    identify::Config::new("/guardian/1.0.0".into(), key.public())
                        .with_agent_version(agent),
                ),
                ping: ping::Behaviour::default(),
                relay: Toggle::from(
                    (role == Role::Vm)
                        .then(|| relay::Behaviour::new(peer_id, relay_limits.to_config())),
                ),
                relay_client,
                dcutr: Toggle::from(hole_punch.then(|| dcutr::Behaviour::new(peer_id))),
                autonat: Toggle::from(
                    (role != Role::Vm).then(autonat::v2::client::Behaviour::default),
                ),
                enroll: Rr::new(rr(protocols::messages::ENROLL), rr_config.clone()),
                events: Rr::new(rr(protocols::messages::EVENTS), rr_config.clone()),
                telemetry: Rr::new(rr(protocols::messages::TELEMETRY), rr_config.clone()),
                stream: libp2p_stream::Behaviour::new(),
            }
        })
        .map_err(|e| transport_err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    Ok(swarm)
}

impl NodeHandle {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The bulk-stream control (`libp2p-stream`): open and accept raw streams.
    pub fn streams(&self) -> libp2p_stream::Control {
        self.streams.clone()
    }

    async fn command(&self, c: Command) -> Result<(), NodeError> {
        self.commands.send(c).await.map_err(|_| NodeError::Stopped)
    }

    /// Dials `peer` at `addresses` (one at a time, in order) and waits until connected or
    /// failed. Returns at once if already connected.
    pub async fn dial(&self, peer: PeerId, addresses: Vec<Multiaddr>) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Dial {
            peer,
            addresses,
            reply,
        })
        .await?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// Keeps a connection to `peer` open: redials with backoff whenever none is.
    pub async fn keep_connected(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
    ) -> Result<(), NodeError> {
        self.command(Command::KeepConnected { peer, addresses })
            .await
    }

    /// Keeps a reservation on the relay `relay` at `address` (its direct address), so peers
    /// can reach this node through `address/p2p/<relay>/p2p-circuit/p2p/<us>`.
    pub async fn keep_relay_reservation(
        &self,
        relay: PeerId,
        address: Multiaddr,
    ) -> Result<(), NodeError> {
        self.command(Command::KeepRelay { relay, address }).await
    }

    /// Whether a connection to `peer` is open: `Some(relayed)` if so.
    pub async fn connection(&self, peer: PeerId) -> Result<Option<bool>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::IsConnected { peer, reply }).await?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Closes the relayed connections to `peer` when a direct one is open (after DCUtR), so
    /// new streams take the direct path; returns how many were closed.
    pub async fn close_relayed(&self, peer: PeerId) -> Result<usize, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::CloseRelayed { peer, reply }).await?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// The addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::ListenAddrs { reply }).await?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Closes every connection to `peer`.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), NodeError> {
        self.command(Command::Disconnect { peer }).await
    }

    /// `/guardian/enroll/1`.
    pub async fn enroll(
        &self,
        peer: PeerId,
        request: EnrollRequest,
    ) -> Result<EnrollResponse, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.request(peer, Outbound::Enroll(request, tx), rx).await
    }

    /// `/guardian/events/1`.
    pub async fn send_events(
        &self,
        peer: PeerId,
        batch: EventBatch,
    ) -> Result<EventAck, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.request(peer, Outbound::Events(batch, tx), rx).await
    }

    /// `/guardian/telemetry/1`.
    pub async fn send_telemetry(
        &self,
        peer: PeerId,
        report: TelemetryReport,
    ) -> Result<TelemetryAck, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.request(peer, Outbound::Telemetry(report, tx), rx)
            .await
    }

    async fn request<T>(
        &self,
        peer: PeerId,
        request: Outbound,
        rx: oneshot::Receiver<Result<T, RequestError>>,
    ) -> Result<T, RequestError> {
        self.commands
            .send(Command::Request { peer, request })
            .await
            .map_err(|_| RequestError::Stopped)?;
        rx.await.map_err(|_| RequestError::Stopped)?
    }

    /// Closes every connection and stops the node; waits at most 3 s.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.command(Command::Shutdown { reply }).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(3), rx).await;
        }
    }
}

struct Kept {
    addresses: Vec<Multiaddr>,
    backoff: Backoff,
    next_attempt: Instant,
    dialing: bool,
}

struct RelayWanted {
    relay: PeerId,
    circuit: Multiaddr,
    listener: Option<libp2p::core::transport::ListenerId>,
    next_attempt: Instant,
}

enum PendingReply {
    Enroll(
        ResponseChannel<EnrollResponse>,
        PeerId,
        Option<(EnrollResponse, bool)>,
    ),
    Events(ResponseChannel<EventAck>, PeerId, Option<(EventAck, bool)>),
    Telemetry(
        ResponseChannel<TelemetryAck>,
        PeerId,
        Option<(TelemetryAck, bool)>,
    ),
}

/// Wraps an inbound request's channel and the application's answer for `on_reply`.
type ToPendingReply<Resp> = fn(ResponseChannel<Resp>, PeerId, Option<(Resp, bool)>) -> PendingReply;

/// Callers waiting for the answer to an outbound request.
type PendingMap<Resp> = HashMap<OutboundRequestId, oneshot::Sender<Result<Resp, RequestError>>>;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    events: broadcast::Sender<NodeEvent>,
    inbound: mpsc::Sender<Inbound>,
    listening: Vec<Multiaddr>,
    connections: HashMap<PeerId, HashMap<ConnectionId, bool>>,
    dial_waiters: HashMap<PeerId, Vec<oneshot::Sender<Result<(), NodeError>>>>,
    kept: HashMap<PeerId, Kept>,
    relay: Option<RelayWanted>,
    close_after_response: HashSet<PeerId>,
    pending_enroll: PendingMap<EnrollResponse>,
    pending_events: PendingMap<EventAck>,
    pending_telemetry: PendingMap<TelemetryAck>,
    replies: FuturesUnordered<BoxFuture<'static, PendingReply>>,
    rng: rand::rngs::StdRng,
    role: Role,
}

/// Awaits the application's answer (bounded by [`REPLY_TIMEOUT`]).
async fn await_reply<T: Send + 'static>(rx: oneshot::Receiver<(T, bool)>) -> Option<(T, bool)> {
    tokio::time::timeout(REPLY_TIMEOUT, rx)
        .await
        .ok()
        .and_then(|r| r.ok())
}

impl EventLoop {
    fn spawn(mut self, mut commands: mpsc::Receiver<Command>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MAINTENANCE_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(Command::Shutdown { reply }) => {
                            self.close_all().await;
                            let _ = reply.send(());
                            break;
                        }
                        Some(c) => self.on_command(c),
                        None => {
                            self.close_all().await;
                            break;
                        }
                    },
                    event = self.swarm.select_next_some() => self.on_swarm_event(event),
                    Some(reply) = self.replies.next(), if !self.replies.is_empty() => {
                        self.on_reply(reply)
                    }
                    _ = tick.tick() => self.maintain(),
                }
            }
            tracing::debug!("node stopped");
        })
    }

    fn emit(&self, e: NodeEvent) {
        let _ = self.events.send(e);
    }

    async fn close_all(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for p in peers {
            let _ = self.swarm.disconnect_peer_id(p);
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.swarm.connected_peers().next().is_some() {
                let e = self.swarm.select_next_some().await;
                self.on_swarm_event(e);
            }
        })
        .await;
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial {
                peer,
                addresses,
                reply,
            } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let already_dialing = self.dial_waiters.contains_key(&peer);
                self.dial_waiters.entry(peer).or_default().push(reply);
                if !already_dialing {
                    self.dial(peer, addresses);
                }
            }
            Command::KeepConnected { peer, addresses } => {
                self.kept.insert(
                    peer,
                    Kept {
                        addresses,
                        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
                        next_attempt: Instant::now(),
                        dialing: false,
                    },
                );
                self.maintain();
            }
            Command::KeepRelay { relay, address } => {
                let circuit = address
                    .with(Protocol::P2p(relay))
                    .with(Protocol::P2pCircuit);
                self.relay = Some(RelayWanted {
                    relay,
                    circuit,
                    listener: None,
                    next_attempt: Instant::now(),
                });
                self.maintain();
            }
            Command::Request { peer, request } => {
                let b = self.swarm.behaviour_mut();
                match request {
                    Outbound::Enroll(r, tx) => {
                        let id = b.enroll.send_request(&peer, r);
                        self.pending_enroll.insert(id, tx);
                    }
                    Outbound::Events(r, tx) => {
                        let id = b.events.send_request(&peer, r);
                        self.pending_events.insert(id, tx);
                    }
                    Outbound::Telemetry(r, tx) => {
                        let id = b.telemetry.send_request(&peer, r);
                        self.pending_telemetry.insert(id, tx);
                    }
                }
            }
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::IsConnected { peer, reply } => {
                let state = self
                    .connections
                    .get(&peer)
                    .filter(|c| !c.is_empty())
                    .map(|c| c.values().all(|relayed| *relayed));
                let _ = reply.send(state);
            }
            Command::CloseRelayed { peer, reply } => {
                let ids: Vec<ConnectionId> = match self.connections.get(&peer) {
                    Some(c) if c.values().any(|relayed| !relayed) => c
                        .iter()
                        .filter(|(_, relayed)| **relayed)
                        .map(|(id, _)| *id)
                        .collect(),
                    _ => Vec::new(),
                };
                for id in &ids {
                    self.swarm.close_connection(*id);
                }
                let _ = reply.send(ids.len());
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listening.clone());
            }
            Command::Shutdown { .. } => unreachable!("handled by the loop"),
        }
    }

    fn dial(&mut self, peer: PeerId, addresses: Vec<Multiaddr>) {
        let opts = DialOpts::peer_id(peer)
            .addresses(addresses)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .override_dial_concurrency_factor(std::num::NonZeroU8::new(1).expect("1 > 0"))
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "dial not started");
            if let Some(waiters) = self.dial_waiters.remove(&peer) {
                for w in waiters {
                    let _ = w.send(Err(NodeError::Dial {
                        peer,
                        reason: e.to_string(),
                    }));
                }
            }
            self.dial_failed(peer);
        }
    }

    fn dial_failed(&mut self, peer: PeerId) {
        if let Some(k) = self.kept.get_mut(&peer) {
            k.dialing = false;
            let wait = k.backoff.next_delay(&mut self.rng);
            k.next_attempt = Instant::now() + wait;
            tracing::info!(%peer, attempt = k.backoff.attempts(), ?wait, "will redial");
        }
    }

    /// Redials kept peers and renews the relay reservation when due.
    fn maintain(&mut self) {
        let now = Instant::now();
        let due: Vec<(PeerId, Vec<Multiaddr>)> = self
            .kept
            .iter_mut()
            .filter(|(peer, k)| {
                !k.dialing && k.next_attempt <= now && !self.connections.contains_key(peer)
            })
            .map(|(peer, k)| {
                k.dialing = true;
                (*peer, k.addresses.clone())
            })
            .collect();
        for (peer, addresses) in due {
            tracing::debug!(%peer, "dialing kept peer");
            self.dial(peer, addresses);
        }
        if let Some(r) = &mut self.relay
            && r.listener.is_none()
            && r.next_attempt <= now
            && self
                .connections
                .get(&r.relay)
                .is_some_and(|c| c.values().any(|relayed| !relayed))
        {
            match self.swarm.listen_on(r.circuit.clone()) {
                Ok(id) => r.listener = Some(id),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen through the relay");
                    r.next_attempt = now + RELAY_RETRY;
                }
            }
        }
    }

    fn on_reply(&mut self, reply: PendingReply) {
        let b = self.swarm.behaviour_mut();
        let (peer, close, sent) = match reply {
            PendingReply::Enroll(ch, peer, Some((r, close))) => {
                (peer, close, b.enroll.send_response(ch, r).is_ok())
            }
            PendingReply::Events(ch, peer, Some((r, close))) => {
                (peer, close, b.events.send_response(ch, r).is_ok())
            }
            PendingReply::Telemetry(ch, peer, Some((r, close))) => {
                (peer, close, b.telemetry.send_response(ch, r).is_ok())
            }
            PendingReply::Enroll(_, peer, None)
            | PendingReply::Events(_, peer, None)
            | PendingReply::Telemetry(_, peer, None) => {
                tracing::warn!(%peer, "no answer to an inbound request; dropping it");
                return;
            }
        };
        if close {
            if sent {
                self.close_after_response.insert(peer);
            } else {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }

    fn forward(&mut self, inbound: Inbound) {
        if let Err(e) = self.inbound.try_send(inbound) {
            // The channel of the dropped request closes; the peer sees a failure and retries.
            tracing::warn!(error = %e, "inbound request queue full or closed; request dropped");
        }
    }

    fn on_response_sent(&mut self, peer: PeerId) {
        if self.close_after_response.remove(&peer) {
            tracing::info!(%peer, "closing the connection after a refusal");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.listening.push(address.clone());
                self.emit(NodeEvent::Listening { address });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listening.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(r) = &mut self.relay
                    && r.listener == Some(listener_id)
                {
                    tracing::info!(?reason, "relay reservation ended");
                    r.listener = None;
                    r.next_attempt = Instant::now() + RELAY_RETRY;
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let address = endpoint.get_remote_address().clone();
                // An inbound relayed connection's remote address is a bare `/p2p/<peer>`: the
                // circuit shows in the local address it arrived on.
                let relayed = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => {
                        address.iter().any(|p| p == Protocol::P2pCircuit)
                    }
                    ConnectedPoint::Listener { local_addr, .. } => {
                        local_addr.iter().any(|p| p == Protocol::P2pCircuit)
                    }
                };
                let inbound = matches!(endpoint, ConnectedPoint::Listener { .. });
                tracing::info!(peer = %peer_id, %address, relayed, inbound, "connected");
                if self.role == Role::Vm && inbound && !relayed {
                    // A peer that connects again has lost its old connections (an edge
                    // restarted after a crash leaves a QUIC connection that only idles out
                    // after a minute); close them, so the relay does not route circuits into
                    // a dead connection.
                    let stale: Vec<ConnectionId> = self
                        .connections
                        .get(&peer_id)
                        .map(|c| c.keys().copied().collect())
                        .unwrap_or_default();
                    for id in stale {
                        tracing::info!(peer = %peer_id, "closing an older connection of a peer that reconnected");
                        self.swarm.close_connection(id);
                    }
                }
                self.connections
                    .entry(peer_id)
                    .or_default()
                    .insert(connection_id, relayed);
                if let Some(k) = self.kept.get_mut(&peer_id) {
                    k.dialing = false;
                    k.backoff.reset();
                }
                if let Some(waiters) = self.dial_waiters.remove(&peer_id) {
                    for w in waiters {
                        let _ = w.send(Ok(()));
                    }
                }
                self.emit(NodeEvent::Connected {
                    peer: peer_id,
                    address,
                    relayed,
                    inbound,
                });
                self.maintain();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                tracing::info!(peer = %peer_id, ?cause, remaining = num_established, "disconnected");
                if let Some(c) = self.connections.get_mut(&peer_id) {
                    c.remove(&connection_id);
                    if c.is_empty() {
                        self.connections.remove(&peer_id);
                        self.close_after_response.remove(&peer_id);
                        if let Some(k) = self.kept.get_mut(&peer_id) {
                            // Come back soon after a drop, then back off if it keeps failing.
                            let wait = k.backoff.next_delay(&mut self.rng);
                            k.next_attempt = Instant::now() + wait;
                        }
                    }
                }
                self.emit(NodeEvent::Disconnected {
                    peer: peer_id,
                    remaining: num_established,
                });
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::info!(peer = ?peer_id, %error, "dial failed");
                if let Some(peer) = peer_id {
                    if let Some(waiters) = self.dial_waiters.remove(&peer) {
                        for w in waiters {
                            let _ = w.send(Err(NodeError::Dial {
                                peer,
                                reason: error.to_string(),
                            }));
                        }
                    }
                    if !self.connections.contains_key(&peer) {
                        self.dial_failed(peer);
                    }
                }
                self.emit(NodeEvent::DialFailed {
                    peer: peer_id,
                    error: error.to_string(),
                });
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::info!(address = %send_back_addr, %error, "incoming connection failed");
                self.emit(NodeEvent::IncomingFailed {
                    address: send_back_addr,
                    error: error.to_string(),
                });
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    /// One request-response event of any of the three protocols: inbound requests go to the
    /// application (its answer awaited in `replies`), answers and failures to the waiting
    /// caller in `pending`.
    fn on_rr_event<Req: Send + 'static, Resp: Send + 'static>(
        &mut self,
        event: request_response::Event<Req, Resp>,
        name: &'static str,
        pending: fn(&mut Self) -> &mut PendingMap<Resp>,
        inbound: fn(PeerId, Req, Reply<Resp>) -> Inbound,
        pending_reply: ToPendingReply<Resp>,
    ) {
        use request_response::{Event as E, Message as M};
        match event {
            E::Message {
                peer,
                message: M::Request {
                    request, channel, ..
                },
                ..
            } => {
                let (tx, rx) = oneshot::channel();
                self.replies.push(Box::pin(async move {
                    pending_reply(channel, peer, await_reply(rx).await)
                }));
                self.forward(inbound(peer, request, Reply { tx }));
            }
            E::Message {
                message:
                    M::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(tx) = pending(self).remove(&request_id) {
                    let _ = tx.send(Ok(response));
                }
            }
            E::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(tx) = pending(self).remove(&request_id) {
                    let _ = tx.send(Err(error.into()));
                }
            }
            E::InboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, %error, protocol = name, "inbound request failed");
                self.on_response_sent(peer);
            }
            E::ResponseSent { peer, .. } => self.on_response_sent(peer),
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Enroll(e) => self.on_rr_event(
                e,
                "enroll",
                |s| &mut s.pending_enroll,
                |peer, request, reply| Inbound::Enroll {
                    peer,
                    request,
                    reply,
                },
                PendingReply::Enroll,
            ),
            BehaviourEvent::Events(e) => self.on_rr_event(
                e,
                "events",
                |s| &mut s.pending_events,
                |peer, batch, reply| Inbound::Events { peer, batch, reply },
                PendingReply::Events,
            ),
            BehaviourEvent::Telemetry(e) => self.on_rr_event(
                e,
                "telemetry",
                |s| &mut s.pending_telemetry,
                |peer, report, reply| Inbound::Telemetry {
                    peer,
                    report,
                    reply,
                },
                PendingReply::Telemetry,
            ),
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            }) => {
                tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
                self.emit(NodeEvent::RelayReserved {
                    relay: relay_peer_id,
                });
            }
            BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            }) => {
                tracing::info!(peer = %remote_peer_id, ok = result.is_ok(), "hole punch finished");
                self.emit(NodeEvent::HolePunch {
                    peer: remote_peer_id,
                    direct: result.is_ok(),
                });
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                tracing::debug!(peer = %peer_id, agent = %info.agent_version, "identified");
            }
            _ => {}
        }
    }
}
