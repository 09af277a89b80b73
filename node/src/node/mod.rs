//! The node: a libp2p swarm in its own task, a [`NodeHandle`] to command it, a bounded queue
//! of [`Inbound`] requests for the application, and a broadcast of [`NodeEvent`]s.
//!
//! # Task and queues
//!
//! One task owns the swarm. Commands reach it through a bounded queue (64); inbound requests
//! leave it through a bounded queue (256): when the application falls that far behind, a new
//! request is dropped, which the peer sees as a failed request and retries. Events are a
//! broadcast (256): a slow subscriber loses old events (and is told so), never blocks the node.
//! Every reply the application owes is awaited at most [`REPLY_TIMEOUT`]. Only the protocols
//! the node's role serves reach the queue (the vm's: enroll, events, telemetry); a request on
//! a protocol the role only sends is refused by libp2p as unsupported.
//!
//! # Staying connected
//!
//! [`NodeHandle::keep_connected`] makes the node redial a peer whenever no connection to it
//! is open, waiting between attempts with exponential backoff and full jitter (1 s doubling
//! to 60 s), addresses tried one at a time in the order given (QUIC first, then TCP).
//! [`NodeHandle::keep_relay_reservation`] keeps a relay reservation on a peer, renewed
//! whenever the connection to it comes back.
//!
//! # Modules
//!
//! Top-down: this module starts the node; `event_loop` is the swarm task; `handle` the
//! application's side; `behaviour` builds the swarm per role from [`crate::protocol_table`];
//! below them the pure state the task keeps (`connections`, `redial`, `pending`), the helpers
//! about addresses (`addresses`), and the types it hands out (`inbound`, `event`). Errors
//! are in [`crate::error`].
//!
//! # Shutdown
//!
//! [`NodeHandle::shutdown`] closes every connection, waits (up to 2 s) for them to close, and
//! ends the task.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::Multiaddr;
use libp2p::swarm::SwarmEvent;
use tokio::sync::{broadcast, mpsc};

use crate::config::NodeConfig;

mod addresses;
mod behaviour;
mod connections;
mod event;
mod event_loop;
mod handle;
mod inbound;
mod liveness;
mod pending;
mod redial;

pub use crate::error::{NodeError, RequestError};
pub use event::NodeEvent;
pub use handle::NodeHandle;
pub use inbound::{Inbound, REPLY_TIMEOUT, Reply};

use event_loop::EventLoop;

const COMMAND_QUEUE: usize = 64;
const INBOUND_QUEUE: usize = 256;
const EVENT_QUEUE: usize = 256;
/// How long [`Node::start`] waits for every listen address.
const LISTEN_WAIT: Duration = Duration::from_secs(10);

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
        let mut swarm = behaviour::build_swarm(&config)?;
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
        let deadline = LISTEN_WAIT;
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
        let task = EventLoop::new(swarm, config.role, listening, events, inbound_tx).spawn(cmd_rx);
        Ok(Node {
            handle,
            inbound: inbound_rx,
            task,
        })
    }
}
