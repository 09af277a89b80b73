//! `guardian play`: an event's clip streamed from the edge that recorded it, through the vm's
//! relay (upgraded to a direct connection when DCUtR succeeds), to a file or stdout.
//!
//! Steps: `POST /api/v1/events/{id}/play` on the vm with this run's ephemeral peer id (the vm
//! admits it to its relay until the token expires) gives a playback token, the edge's peer id
//! and relay addresses; a client node (ephemeral key) dials the edge through the relay, opens
//! `/guardian/clips/1`, sends the token and the offset, and writes what follows.
//!
//! - Resume: when the stream breaks (the edge restarted, the network dropped), a new token is
//!   asked for and the stream reopened at the offset reached, at most `retries` times, waiting
//!   1 s doubling to 8 s between attempts. A refusal by the edge is final (its typed reason).
//! - Direct: when a direct connection to the edge comes up while streaming over the relay, the
//!   relayed connection is closed and the stream reopened over the direct one at the offset
//!   reached (with a new token; not counted as a retry).
//! - Every wait has a timeout: the vm's API, the dial, the edge's first answer, each read.
//!
//! [`play`] is the library entry point (netsim scenarios and benchmarks call it); the command
//! prints its [`PlayReport`] as text or, with `--json`, as JSON.
//!
//! Modules, top-down: this one starts the client node and the session; `session` runs the
//! attempts (resume, direct); `ticket` asks the vm through [`crate::api`]; below them the
//! pure parts: `resume` (when to retry), `report` (what is counted), `verify` (the edge's
//! signed manifest), `sink` (hashing, decrypting, where bytes go), `options`, `error`.
//!
//! The clip arrives sealed (the age file the edge keeps; the vm relays ciphertext only): with
//! an identity it is decrypted while it streams, else written as served.

use std::str::FromStr;
use std::time::Duration;

use guardian_node::{AllowList, Node, NodeConfig, PeerId, Role};

mod error;
mod options;
mod report;
mod resume;
mod session;
mod sink;
mod ticket;
mod verify;

pub use error::PlayError;
pub use options::{Identity, PlayOptions};
pub use protocols::messages::clips::Ticket;
pub use report::PlayReport;
pub use sink::Output;
pub use ticket::request_ticket;

use session::Session;
use ticket::ticket_async;

/// How long the client node may take to stop.
const NODE_STOP_WAIT: Duration = Duration::from_secs(3);

/// Plays `opts.event_id` into `output`.
pub async fn play(opts: &PlayOptions, output: Output) -> Result<PlayReport, PlayError> {
    let started = opts.clock.monotonic();
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let me = PeerId::from_str(&protocols::signed::peer_id_of(&key.verifying_key()))
        .map_err(|e| PlayError::Node(e.to_string()))?;
    let mut ticket = ticket_async(opts, me).await?;
    let edge = PeerId::from_str(&ticket.edge_peer_id)
        .map_err(|_| PlayError::Edge("the vm named an edge id that does not parse".into()))?;
    let vm = PeerId::from_str(&ticket.vm_peer_id)
        .map_err(|_| PlayError::Edge("the vm named a peer id that does not parse".into()))?;
    let allow = AllowList::closed();
    allow.allow(vm);
    allow.allow(edge);
    let mut config = NodeConfig::new(Role::Client, key);
    config.allow = allow;
    // Relay only: no hole punching at all, so no direct connection can carry the stream.
    config.hole_punch = opts.prefer_direct;
    let Node { handle, task, .. } = Node::start(config)
        .await
        .map_err(|e| PlayError::Node(e.to_string()))?;
    let bar = if opts.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("a valid template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut session = Session::new(handle.clone(), edge, opts.clock.clone(), started, bar);
    let result = session::run(opts, &mut session, &mut ticket, &output).await;
    session.finish_bar();
    handle.shutdown().await;
    let _ = tokio::time::timeout(NODE_STOP_WAIT, task).await;
    let (resumes, switched) = result?;
    let output = match output {
        Output::File(p) => p.display().to_string(),
        Output::Stdout => "-".into(),
        Output::Discard => String::new(),
    };
    Ok(session
        .tally
        .report(&opts.event_id, session.elapsed(), resumes, switched, output))
}
