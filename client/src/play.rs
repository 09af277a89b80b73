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

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use guardian_node::{AllowList, Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle, PeerId, Role};
use protocols::messages::clips::{ClipRefusal, ClipRequest, ClipResponse};
use serde::{Deserialize, Serialize};

/// Bytes read from the stream at a time.
const CHUNK: usize = 256 * 1024;

/// How to play.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// The vm's API URL, such as `http://127.0.0.1:8080`.
    pub vm: String,
    /// The owner's API token.
    pub api_token: String,
    /// The event.
    pub event_id: String,
    /// A playback token to use for the first attempt instead of asking the vm for one
    /// (resumes still ask the vm).
    pub play_token: Option<String>,
    /// Resumes allowed after the stream breaks.
    pub retries: u32,
    /// Timeout of the dial and of the edge's first answer, each.
    pub connect_timeout: Duration,
    /// Timeout of one read once streaming.
    pub read_timeout: Duration,
    /// Punch holes (DCUtR) and move the stream to a direct connection when one comes up;
    /// false keeps everything on the relay.
    pub prefer_direct: bool,
    /// Draw a progress bar on stderr (only if it is a terminal).
    pub progress: bool,
}

impl PlayOptions {
    /// Defaults: 5 retries, 15 s connect, 10 s read, prefer direct, progress bar.
    pub fn new(vm: &str, api_token: &str, event_id: &str) -> Self {
        PlayOptions {
            vm: vm.trim_end_matches('/').to_owned(),
            api_token: api_token.to_owned(),
            event_id: event_id.to_owned(),
            play_token: None,
            retries: 5,
            connect_timeout: Duration::from_secs(15),
            // A connection to an edge that died (kill -9, power cut) shows nothing but silence
            // until QUIC's idle timeout (60 s); 10 s without a byte is a dead stream.
            read_timeout: Duration::from_secs(10),
            prefer_direct: true,
            progress: true,
        }
    }
}

/// Where the clip goes.
pub enum Output {
    /// A file, written atomically (temporary file beside it, renamed on success).
    File(PathBuf),
    /// Standard output (to pipe into a player).
    Stdout,
    /// Nowhere: bytes are counted (benchmarks).
    Discard,
}

/// What happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlayReport {
    /// The event.
    pub event_id: String,
    /// Bytes received (the clip's size on success).
    pub bytes: u64,
    /// Milliseconds from the start to the first byte of the clip.
    pub first_byte_ms: u64,
    /// Whether the first stream went through the vm's relay.
    pub relayed: bool,
    /// Milliseconds from the start until a direct connection to the edge came up, if one did.
    pub direct_after_ms: Option<u64>,
    /// Whether the stream moved to a direct connection.
    pub switched_to_direct: bool,
    /// Bytes per second from the first byte to the last.
    pub throughput: f64,
    /// Milliseconds from the start to the end.
    pub total_ms: u64,
    /// Times the stream was reopened after it broke.
    pub resumes: u32,
    /// Bytes that came through the vm's relay.
    pub relayed_bytes: u64,
    /// Milliseconds spent streaming through the relay (from each stream's open).
    pub relayed_ms: u64,
    /// Bytes that came over a direct connection.
    pub direct_bytes: u64,
    /// Milliseconds spent streaming over a direct connection (from each stream's open).
    pub direct_ms: u64,
    /// Where it went: a path, `-` for stdout, or empty.
    pub output: String,
}

/// Why playback failed.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// The edge refused the token (the typed reason).
    #[error("the edge refused playback: {0}")]
    Refused(ClipRefusal),
    /// The vm says the edge is offline.
    #[error("{0}")]
    EdgeOffline(String),
    /// The vm answered with an error.
    #[error("the vm answered {status}: {message}")]
    Vm {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The vm could not be reached.
    #[error("cannot reach the vm at {url}: {reason}")]
    VmUnreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The edge could not be reached or did not answer in time.
    #[error("cannot stream from the edge: {0}")]
    Edge(String),
    /// The stream broke and could not be resumed.
    #[error(
        "the stream broke at byte {offset} and {attempts} attempts to resume failed; last: {last}"
    )]
    GaveUp {
        /// Bytes received.
        offset: u64,
        /// Resume attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The local node failed.
    #[error("the local libp2p node: {0}")]
    Node(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(String),
}

impl PlayError {
    /// Whether a resume may fix it (a refusal, a vm error other than 503, or an output
    /// failure will not go away).
    fn retryable(&self) -> bool {
        matches!(
            self,
            PlayError::EdgeOffline(_)
                | PlayError::VmUnreachable { .. }
                | PlayError::Edge(_)
                | PlayError::Vm { status: 500.., .. }
        )
    }
}

pub use protocols::messages::clips::Ticket;

/// Asks the vm for a playback token (blocking; admits `client` to the vm's relay).
pub fn request_ticket(
    vm: &str,
    api_token: &str,
    event_id: &str,
    client: Option<&PeerId>,
) -> Result<Ticket, PlayError> {
    let url = format!("{vm}/api/v1/events/{event_id}/play");
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build();
    let body = serde_json::json!({ "client_peer_id": client.map(|c| c.to_string()) });
    match agent
        .post(&url)
        .set("Authorization", &format!("Bearer {api_token}"))
        .send_json(body)
    {
        Ok(r) => r.into_json().map_err(|e| PlayError::Vm {
            status: 200,
            message: format!("unreadable ticket: {e}"),
        }),
        Err(ureq::Error::Status(status, r)) => {
            let body: serde_json::Value = r.into_json().unwrap_or_default();
            let message = body["message"].as_str().unwrap_or("no detail").to_owned();
            if body["error"] == "edge_offline" {
                Err(PlayError::EdgeOffline(message))
            } else {
                Err(PlayError::Vm { status, message })
            }
        }
        Err(e) => Err(PlayError::VmUnreachable {
            url,
            reason: e.to_string(),
        }),
    }
}

async fn ticket_async(opts: &PlayOptions, client: PeerId) -> Result<Ticket, PlayError> {
    let (vm, tok, ev) = (
        opts.vm.clone(),
        opts.api_token.clone(),
        opts.event_id.clone(),
    );
    tokio::task::spawn_blocking(move || request_ticket(&vm, &tok, &ev, Some(&client)))
        .await
        .map_err(|e| PlayError::Node(e.to_string()))?
}

enum Sink {
    File(crate::output::AtomicFile, std::io::BufWriter<std::fs::File>),
    Stdout(std::io::Stdout),
    Discard,
}

impl Sink {
    fn open(output: &Output) -> Result<Sink, PlayError> {
        Ok(match output {
            Output::File(p) => {
                let mut f = crate::output::AtomicFile::create(p)
                    .map_err(|e| PlayError::Output(format!("{e:#}")))?;
                let w = f
                    .file()
                    .try_clone()
                    .map_err(|e| PlayError::Output(e.to_string()))?;
                Sink::File(f, std::io::BufWriter::with_capacity(CHUNK, w))
            }
            Output::Stdout => Sink::Stdout(std::io::stdout()),
            Output::Discard => Sink::Discard,
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<(), PlayError> {
        let r = match self {
            Sink::File(_, w) => w.write_all(b),
            Sink::Stdout(s) => s.write_all(b),
            Sink::Discard => Ok(()),
        };
        r.map_err(|e| PlayError::Output(e.to_string()))
    }

    fn finish(self) -> Result<(), PlayError> {
        match self {
            Sink::File(f, mut w) => {
                w.flush().map_err(|e| PlayError::Output(e.to_string()))?;
                drop(w);
                f.commit().map_err(|e| PlayError::Output(format!("{e:#}")))
            }
            Sink::Stdout(mut s) => s.flush().map_err(|e| PlayError::Output(e.to_string())),
            Sink::Discard => Ok(()),
        }
    }
}

/// How one stream attempt ended.
enum Ended {
    /// The whole clip arrived.
    Done,
    /// A direct connection came up: reopen over it.
    SwitchToDirect,
    /// The stream broke (retry from the offset).
    Broke(PlayError),
}

struct Session {
    handle: NodeHandle,
    events: tokio::sync::broadcast::Receiver<NodeEvent>,
    edge: PeerId,
    started: Instant,
    bytes: u64,
    total: Option<u64>,
    first_byte_ms: Option<u64>,
    first_relayed: Option<bool>,
    direct_after_ms: Option<u64>,
    /// The stream now open: when it opened, the offset then, whether it is relayed.
    open_path: Option<(Instant, u64, bool)>,
    /// (bytes, time) through the relay and direct.
    relayed: (u64, Duration),
    direct: (u64, Duration),
    bar: indicatif::ProgressBar,
}

impl Session {
    /// Books the bytes and time of the stream that was open to its path.
    fn close_path(&mut self) {
        if let Some((opened, from, relayed)) = self.open_path.take() {
            let slot = if relayed {
                &mut self.relayed
            } else {
                &mut self.direct
            };
            slot.0 += self.bytes - from;
            slot.1 += opened.elapsed();
        }
    }

    fn note_event(&mut self, e: &NodeEvent) -> bool {
        let direct = match e {
            NodeEvent::Connected { peer, relayed, .. } => *peer == self.edge && !relayed,
            NodeEvent::HolePunch { peer, direct } => *peer == self.edge && *direct,
            _ => false,
        };
        if direct && self.direct_after_ms.is_none() {
            self.direct_after_ms = Some(self.started.elapsed().as_millis() as u64);
        }
        direct
    }

    fn drain_events(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.note_event(&e);
        }
    }

    /// Dials the edge, opens the stream and streams into `sink` from `self.bytes`.
    async fn attempt(
        &mut self,
        opts: &PlayOptions,
        ticket: &Ticket,
        token_text: &str,
        sink: &mut Sink,
    ) -> Ended {
        let broke = |e: PlayError| Ended::Broke(e);
        let token = match protocols::messages::clips::decode_token(token_text) {
            Ok(t) => t,
            Err(e) => return Ended::Broke(PlayError::Edge(e.to_string())),
        };
        let addrs: Vec<Multiaddr> = ticket
            .relay_addrs
            .iter()
            .filter_map(|a| Multiaddr::from_str(a).ok())
            .collect();
        if self
            .handle
            .connection(self.edge)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            match tokio::time::timeout(opts.connect_timeout, self.handle.dial(self.edge, addrs))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return broke(PlayError::Edge(e.to_string())),
                Err(_) => {
                    return broke(PlayError::Edge(format!(
                        "no connection through the vm's relay within {:?}",
                        opts.connect_timeout
                    )));
                }
            }
        }
        let relayed = self
            .handle
            .connection(self.edge)
            .await
            .ok()
            .flatten()
            .unwrap_or(true);
        self.drain_events();
        let request = ClipRequest {
            token,
            offset: self.bytes,
            event_id: Some(opts.event_id.clone()),
        };
        let mut control = self.handle.streams();
        let opened = tokio::time::timeout(
            opts.connect_timeout,
            guardian_node::open_with_request::<_, ClipResponse>(
                &mut control,
                self.edge,
                protocols::messages::CLIPS,
                &request,
            ),
        )
        .await
        .map(|r| r.map_err(|e| PlayError::Edge(e.to_string())));
        let request_sent = Instant::now();
        let (mut stream, total) = match opened {
            Err(_) => {
                return broke(PlayError::Edge(format!(
                    "no answer from the edge within {:?}",
                    opts.connect_timeout
                )));
            }
            Ok(Err(e)) => return broke(e),
            Ok(Ok((_, ClipResponse::Refused(r)))) => return Ended::Broke(PlayError::Refused(r)),
            Ok(Ok((
                s,
                ClipResponse::Streaming {
                    total_size, offset, ..
                },
            ))) => {
                if offset != self.bytes {
                    return broke(PlayError::Edge(format!(
                        "the edge streams from {offset}, not {}",
                        self.bytes
                    )));
                }
                if self.total.is_some_and(|t| t != total_size) {
                    return Ended::Broke(PlayError::Output(format!(
                        "the clip changed size while playing ({} then {total_size} bytes)",
                        self.total.unwrap_or(0)
                    )));
                }
                (s, total_size)
            }
        };
        self.total = Some(total);
        self.open_path = Some((request_sent, self.bytes, relayed));
        self.bar.set_length(total);
        if self.first_relayed.is_none() {
            self.first_relayed = Some(relayed);
        }
        let mut on_relay = relayed;
        let mut buf = vec![0u8; CHUNK];
        while self.bytes < total {
            let want = CHUNK.min((total - self.bytes) as usize);
            tokio::select! {
                r = tokio::time::timeout(opts.read_timeout, stream.read(&mut buf[..want])) => {
                    let n = match r {
                        Err(_) => return broke(PlayError::Edge(format!("no data for {:?}", opts.read_timeout))),
                        Ok(Err(e)) => return broke(PlayError::Edge(format!("the stream broke: {e}"))),
                        Ok(Ok(0)) => return broke(PlayError::Edge("the stream ended early".into())),
                        Ok(Ok(n)) => n,
                    };
                    if self.first_byte_ms.is_none() {
                        self.first_byte_ms = Some(self.started.elapsed().as_millis() as u64);
                    }
                    if let Err(e) = sink.write(&buf[..n]) {
                        return Ended::Broke(e);
                    }
                    self.bytes += n as u64;
                    self.bar.set_position(self.bytes);
                }
                e = self.events.recv() => {
                    if let Ok(e) = e
                        && self.note_event(&e)
                        && on_relay
                    {
                        if opts.prefer_direct {
                            return Ended::SwitchToDirect;
                        }
                        on_relay = false;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.close()).await;
        Ended::Done
    }
}

/// Plays `opts.event_id` into `output`.
pub async fn play(opts: &PlayOptions, output: Output) -> Result<PlayReport, PlayError> {
    let started = Instant::now();
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
    let mut session = Session {
        events: handle.subscribe(),
        handle: handle.clone(),
        edge,
        started,
        bytes: 0,
        total: None,
        first_byte_ms: None,
        first_relayed: None,
        direct_after_ms: None,
        open_path: None,
        relayed: (0, Duration::ZERO),
        direct: (0, Duration::ZERO),
        bar,
    };
    let result = run(opts, &mut session, &mut ticket, &output).await;
    session.bar.finish_and_clear();
    handle.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
    let (resumes, switched) = result?;
    let total_ms = started.elapsed().as_millis() as u64;
    let first_byte_ms = session.first_byte_ms.unwrap_or(total_ms);
    let secs = (total_ms.saturating_sub(first_byte_ms)).max(1) as f64 / 1000.0;
    Ok(PlayReport {
        event_id: opts.event_id.clone(),
        bytes: session.bytes,
        first_byte_ms,
        relayed: session.first_relayed.unwrap_or(true),
        direct_after_ms: session.direct_after_ms,
        switched_to_direct: switched,
        throughput: session.bytes as f64 / secs,
        total_ms,
        resumes,
        relayed_bytes: session.relayed.0,
        relayed_ms: session.relayed.1.as_millis() as u64,
        direct_bytes: session.direct.0,
        direct_ms: session.direct.1.as_millis() as u64,
        output: match output {
            Output::File(p) => p.display().to_string(),
            Output::Stdout => "-".into(),
            Output::Discard => String::new(),
        },
    })
}

/// The attempts: returns (resumes, switched to direct).
async fn run(
    opts: &PlayOptions,
    session: &mut Session,
    ticket: &mut Ticket,
    output: &Output,
) -> Result<(u32, bool), PlayError> {
    let mut sink = Sink::open(output)?;
    let mut token = opts
        .play_token
        .clone()
        .unwrap_or_else(|| ticket.token.clone());
    let (mut resumes, mut switched) = (0u32, false);
    let mut wait = Duration::from_secs(1);
    loop {
        let before = session.bytes;
        let ended = session.attempt(opts, ticket, &token, &mut sink).await;
        session.close_path();
        let error = match ended {
            Ended::Done => {
                sink.finish()?;
                return Ok((resumes, switched));
            }
            Ended::SwitchToDirect => {
                let closed = session
                    .handle
                    .close_relayed(session.edge)
                    .await
                    .unwrap_or(0);
                tracing::info!(
                    at = session.bytes,
                    closed,
                    "moving the stream to the direct connection"
                );
                switched = true;
                None
            }
            Ended::Broke(e) => Some(e),
        };
        if let Some(e) = error {
            if !e.retryable() {
                return Err(e);
            }
            // Whatever connection carried the broken stream may be dead without knowing it:
            // start the next attempt from a fresh dial through the relay.
            let _ = session.handle.disconnect(session.edge).await;
            if session.bytes > before {
                // Progress since the last break: the budget starts again.
                wait = Duration::from_secs(1);
            }
            let mut last = e;
            loop {
                if resumes >= opts.retries {
                    return Err(PlayError::GaveUp {
                        offset: session.bytes,
                        attempts: resumes,
                        last: last.to_string(),
                    });
                }
                resumes += 1;
                tracing::warn!(at = session.bytes, error = %last, ?wait, "stream broke; resuming");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(8));
                match ticket_async(opts, session.handle.peer_id()).await {
                    Ok(t) => {
                        *ticket = t;
                        break;
                    }
                    Err(e) if e.retryable() => last = e,
                    Err(e) => return Err(e),
                }
            }
        } else {
            *ticket = ticket_async(opts, session.handle.peer_id()).await?;
        }
        token = ticket.token.clone();
    }
}
