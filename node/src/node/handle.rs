//! [`NodeHandle`]: the application's side of the node. Each method is a [`Command`] on the
//! swarm task's bounded queue, most with a one-shot channel for the answer.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use protocols::messages::enroll::{EnrollRequest, EnrollResponse};
use protocols::messages::events::{EventAck, EventBatch};
use protocols::messages::telemetry::{TelemetryAck, TelemetryReport};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::event::NodeEvent;
use super::pending::Answer;
use crate::error::{NodeError, RequestError};

/// An outbound request and where its answer goes.
pub(crate) enum Outbound {
    Enroll(EnrollRequest, Answer<EnrollResponse>),
    Events(EventBatch, Answer<EventAck>),
    Telemetry(TelemetryReport, Answer<TelemetryAck>),
}

/// What the application asks of the swarm task.
pub(crate) enum Command {
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
    pub(crate) peer_id: PeerId,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) streams: libp2p_stream::Control,
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

    /// The incoming streams of `protocol` (one taker per protocol).
    pub fn accept(
        &self,
        protocol: &'static str,
    ) -> Result<libp2p_stream::IncomingStreams, NodeError> {
        self.streams
            .clone()
            .accept(libp2p::StreamProtocol::new(protocol))
            .map_err(|_| NodeError::AlreadyServed(protocol))
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
