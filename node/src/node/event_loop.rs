//! The swarm task: one task owns the swarm and turns [`Command`]s into swarm calls, swarm
//! events into [`NodeEvent`]s, answers and failures for waiting callers, and [`Inbound`]
//! requests for the application (whose answers it awaits, each at most [`REPLY_TIMEOUT`]).
//! What it keeps up (redials, the relay reservation) is pure state in [`super::redial`],
//! checked on every connection change and every [`MAINTENANCE_TICK`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, dcutr, identify, ping, relay};
use protocols::messages::enroll::EnrollResponse;
use protocols::messages::events::EventAck;
use protocols::messages::telemetry::TelemetryAck;
use rand::SeedableRng;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::addresses;
use super::behaviour::{Behaviour, BehaviourEvent};
use super::connections::Connections;
use super::event::NodeEvent;
use super::handle::{Command, Outbound};
use super::inbound::{Inbound, PendingReply, REPLY_TIMEOUT, Reply, ToPendingReply, await_reply};
use super::liveness::{Liveness, SILENCE_LIMIT};
use super::pending::Pending;
use super::redial::{Redials, RelayReservation};
use crate::config::Role;
use crate::error::NodeError;
use crate::protocol_table::{Enroll, Events, RequestProtocol, Telemetry};

/// How often the task checks what it keeps up.
const MAINTENANCE_TICK: Duration = Duration::from_millis(500);
/// How long shutdown waits for the connections to close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Callers waiting for the answers to outbound requests of one protocol.
type PendingMap<Resp> = Pending<OutboundRequestId, Resp>;

/// The swarm task's state.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    events: broadcast::Sender<NodeEvent>,
    inbound: mpsc::Sender<Inbound>,
    listening: Vec<Multiaddr>,
    connections: Connections,
    dial_waiters: HashMap<PeerId, Vec<oneshot::Sender<Result<(), NodeError>>>>,
    kept: Redials,
    relay: Option<RelayReservation>,
    close_after_response: HashSet<PeerId>,
    pending_enroll: PendingMap<EnrollResponse>,
    pending_events: PendingMap<EventAck>,
    pending_telemetry: PendingMap<TelemetryAck>,
    replies: FuturesUnordered<BoxFuture<'static, PendingReply>>,
    rng: rand::rngs::StdRng,
    role: Role,
    liveness: Liveness,
}

/// The time redials and the relay retry are scheduled by. They pace network I/O on tokio's
/// timer (the maintenance tick), which a manual clock does not drive.
fn now() -> Instant {
    Instant::now()
}

impl EventLoop {
    /// The task's state for a swarm already listening on `listening`.
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        role: Role,
        listening: Vec<Multiaddr>,
        events: broadcast::Sender<NodeEvent>,
        inbound: mpsc::Sender<Inbound>,
    ) -> Self {
        EventLoop {
            swarm,
            events,
            inbound,
            listening,
            connections: Connections::default(),
            liveness: Liveness::default(),
            dial_waiters: HashMap::new(),
            kept: Redials::default(),
            relay: None,
            close_after_response: HashSet::new(),
            pending_enroll: Pending::default(),
            pending_events: Pending::default(),
            pending_telemetry: Pending::default(),
            replies: FuturesUnordered::new(),
            rng: rand::rngs::StdRng::from_entropy(),
            role,
        }
    }

    /// Runs the task until a shutdown command or until every handle is gone.
    pub(crate) fn spawn(
        mut self,
        mut commands: mpsc::Receiver<Command>,
    ) -> tokio::task::JoinHandle<()> {
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
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
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
                self.kept.keep(peer, addresses, now());
                self.maintain();
            }
            Command::KeepRelay { relay, address } => {
                let circuit = addresses::circuit(address, relay);
                self.relay = Some(RelayReservation::new(relay, circuit, now()));
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
                let _ = reply.send(self.connections.state(&peer));
            }
            Command::CloseRelayed { peer, reply } => {
                let ids = self.connections.relayed_besides_direct(&peer);
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
            self.answer_dial_waiters(peer, Err(e.to_string()));
            self.dial_failed(peer);
        }
    }

    /// Tells whoever waits on a dial of `peer` how it ended.
    fn answer_dial_waiters(&mut self, peer: PeerId, result: Result<(), String>) {
        if let Some(waiters) = self.dial_waiters.remove(&peer) {
            for w in waiters {
                let _ = w.send(
                    result
                        .clone()
                        .map_err(|reason| NodeError::Dial { peer, reason }),
                );
            }
        }
    }

    fn dial_failed(&mut self, peer: PeerId) {
        if let Some((attempt, wait)) = self.kept.failed(&peer, now(), &mut self.rng) {
            tracing::info!(%peer, attempt, ?wait, "will redial");
        }
    }

    /// Redials kept peers and renews the relay reservation when due.
    fn maintain(&mut self) {
        let now = now();
        for (peer, id) in self.liveness.take_silent(now) {
            tracing::warn!(%peer, silent_secs = SILENCE_LIMIT.as_secs(), "no ping answered; closing the connection");
            self.swarm.close_connection(id);
        }
        let connections = &self.connections;
        let due = self.kept.due(now, |peer| connections.is_connected(peer));
        for (peer, addresses) in due {
            tracing::debug!(%peer, "dialing kept peer");
            self.dial(peer, addresses);
        }
        if let Some(r) = &mut self.relay
            && let Some(circuit) = r.due(now, self.connections.has_direct(&r.relay()))
        {
            match self.swarm.listen_on(circuit) {
                Ok(id) => r.listening(id),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen through the relay");
                    r.listen_failed(now);
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
                    && r.listener_closed(listener_id, now())
                {
                    tracing::info!(?reason, "relay reservation ended");
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let address = endpoint.get_remote_address().clone();
                let relayed = addresses::is_relayed(&endpoint);
                let inbound = addresses::is_inbound(&endpoint);
                tracing::info!(peer = %peer_id, %address, relayed, inbound, "connected");
                if self.role == Role::Vm && inbound && !relayed {
                    // A peer that connects again has lost its old connections (an edge
                    // restarted after a crash leaves a QUIC connection that only idles out
                    // after a minute); close them, so the relay does not route circuits into
                    // a dead connection.
                    for id in self.connections.ids(&peer_id) {
                        tracing::info!(peer = %peer_id, "closing an older connection of a peer that reconnected");
                        self.swarm.close_connection(id);
                    }
                }
                self.connections.opened(peer_id, connection_id, relayed);
                self.liveness.opened(peer_id, connection_id, now());
                self.kept.connected(&peer_id);
                self.answer_dial_waiters(peer_id, Ok(()));
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
                self.liveness.forget(connection_id);
                if self.connections.closed(&peer_id, connection_id) {
                    self.close_after_response.remove(&peer_id);
                    self.kept.dropped(&peer_id, now(), &mut self.rng);
                }
                self.emit(NodeEvent::Disconnected {
                    peer: peer_id,
                    remaining: num_established,
                });
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::info!(peer = ?peer_id, %error, "dial failed");
                if let Some(peer) = peer_id {
                    self.answer_dial_waiters(peer, Err(error.to_string()));
                    if !self.connections.is_connected(&peer) {
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

    /// One request-response event of any of the protocols: inbound requests go to the
    /// application (its answer awaited in `replies`), answers and failures to the waiting
    /// caller in `pending`.
    fn on_rr_event<P: RequestProtocol>(
        &mut self,
        event: request_response::Event<P::Request, P::Response>,
        pending: fn(&mut Self) -> &mut PendingMap<P::Response>,
        inbound: fn(PeerId, P::Request, Reply<P::Response>) -> Inbound,
        pending_reply: ToPendingReply<P::Response>,
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
                let (reply, rx) = Reply::channel();
                self.replies.push(Box::pin(async move {
                    pending_reply(channel, peer, await_reply(rx, REPLY_TIMEOUT).await)
                }));
                self.forward(inbound(peer, request, reply));
            }
            E::Message {
                message:
                    M::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                pending(self).resolve(&request_id, Ok(response));
            }
            E::OutboundFailure {
                request_id, error, ..
            } => {
                pending(self).resolve(&request_id, Err(error.into()));
            }
            E::InboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, %error, protocol = P::SPEC.name, "inbound request failed");
                self.on_response_sent(peer);
            }
            E::ResponseSent { peer, .. } => self.on_response_sent(peer),
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Enroll(e) => self.on_rr_event::<Enroll>(
                e,
                |s| &mut s.pending_enroll,
                |peer, request, reply| Inbound::Enroll {
                    peer,
                    request,
                    reply,
                },
                PendingReply::Enroll,
            ),
            BehaviourEvent::Events(e) => self.on_rr_event::<Events>(
                e,
                |s| &mut s.pending_events,
                |peer, batch, reply| Inbound::Events { peer, batch, reply },
                PendingReply::Events,
            ),
            BehaviourEvent::Telemetry(e) => self.on_rr_event::<Telemetry>(
                e,
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
            BehaviourEvent::Ping(ping::Event {
                connection,
                result: Ok(_),
                ..
            }) => self.liveness.answered(connection, now()),
            BehaviourEvent::Ping(ping::Event {
                connection,
                result: Err(ping::Failure::Unsupported),
                ..
            }) => self.liveness.forget(connection),
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            }) => {
                // libp2p's ping reports a failure and leaves the connection open: a peer
                // that stopped answering (killed, its network gone) is closed here, so the
                // redial starts in seconds rather than after the transport's own timeout.
                tracing::warn!(%peer, %error, "ping failed; closing the connection");
                self.swarm.close_connection(connection);
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                tracing::debug!(peer = %peer_id, agent = %info.agent_version, "identified");
            }
            _ => {}
        }
    }
}
