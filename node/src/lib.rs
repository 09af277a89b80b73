//! The shared libp2p node of Private AI Guardian: one builder for the edge, the vm and the
//! owner's client.
//!
//! - [`config`]: what a node listens on, announces and allows; relay limits sized for clips.
//! - [`identity`]: the ed25519 key files a node is started from.
//! - [`error`]: what can go wrong starting or commanding a node, or with one request.
//! - [`codec`]: request-response over the length-prefixed CBOR frames of `protocols`.
//! - [`protocol_table`]: the request-response protocols, declared once: ids, types, and
//!   which roles serve and send each.
//! - [`gate`]: connection gating by an allow-list, before any protocol runs.
//! - [`backoff`]: exponential backoff with full jitter, for redials and every retry loop.
//! - [`clock`]: wall and monotonic time and sleeps through one handle; a manual twin for tests.
//! - [`shutdown`]: the one stop signal of a process, with children.
//! - [`process`]: what every node binary does at start: logging, and its stop signal.
//! - [`serve`]: serving a stream protocol, a bounded number of streams at once.
//! - [`node`]: the node: its swarm task, its handle (requests, dials, shutdown), inbound
//!   requests and events.
//!
//! Layers, bottom up (a module imports only from the layers below it): `error`, `identity`,
//! `backoff`, `shutdown`; `clock` (on `shutdown`), `gate`, `codec` (on `error`); `config` (on
//! `gate`); `protocol_table` (on `codec`, `config`); `node`; `process`, `serve` (on `shutdown`).
//!
//! Transports: QUIC (quinn) and TCP + Noise + Yamux, both listening, plus DNS for `/dns4`
//! addresses. Behaviours: identify, ping, request-response for enroll, events and telemetry
//! (served by the vm, sent by edges and clients), `libp2p-stream` for bulk transfers, the
//! relay server (vm) or relay client + DCUtR + AutoNAT v2 (edge, client).

pub mod backoff;
pub mod clock;
pub mod codec;
pub mod config;
pub mod error;
pub mod files;
pub mod gate;
pub mod identity;
pub mod node;
pub mod process;
pub mod protocol_table;
pub mod serve;
pub mod shutdown;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use codec::open_with_request;
pub use config::{NodeConfig, RelayLimits, Role};
pub use error::{NodeError, RequestError};
pub use gate::AllowList;
pub use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
pub use libp2p_stream::IncomingStreams;
pub use node::{Inbound, Node, NodeEvent, NodeHandle};
pub use serve::{serve_streams, serve_streams_within};
pub use shutdown::Shutdown;
