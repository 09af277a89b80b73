//! The play session: stream attempts from the edge over one client node, resumed with new
//! tokens when the stream breaks, moved to a direct connection when one comes up.
//!
//! One attempt ([`Session::attempt`]): dial the edge through the vm's relay unless connected,
//! open `/guardian/clips/1` with the token and the offset reached, check the edge's answer,
//! and copy the bytes into the sink while watching the node's events for a direct connection.
//! [`run`] loops over attempts: a break resumes (within [`Resumes`]' budget, from a fresh
//! dial and a new ticket), a direct connection closes the relayed one and reopens over it.

use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use guardian_node::{Multiaddr, NodeEvent, NodeHandle, PeerId, SharedClock};
use protocols::messages::clips::{ClipRequest, ClipResponse, Ticket};
use tokio::sync::broadcast;

use super::error::PlayError;
use super::options::PlayOptions;
use super::report::Tally;
use super::resume::Resumes;
use super::sink::{CHUNK, Output, Sink};
use super::ticket::ticket_async;

/// How long closing a finished stream may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How one stream attempt ended.
enum Ended {
    /// The whole clip arrived.
    Done,
    /// A direct connection came up: reopen over it.
    SwitchToDirect,
    /// The stream broke (retry from the offset).
    Broke(PlayError),
}

/// Whether `e` shows a direct connection to `edge`.
fn direct_to(edge: &PeerId, e: &NodeEvent) -> bool {
    match e {
        NodeEvent::Connected { peer, relayed, .. } => peer == edge && !relayed,
        NodeEvent::HolePunch { peer, direct } => peer == edge && *direct,
        _ => false,
    }
}

/// Checks the edge's answer to a request from `offset`: it must stream from there, and a
/// clip whose size is `known_total` already must not have changed.
fn check_streaming(
    offset: u64,
    known_total: Option<u64>,
    answered_offset: u64,
    total_size: u64,
) -> Result<(), PlayError> {
    if answered_offset != offset {
        return Err(PlayError::Edge(format!(
            "the edge streams from {answered_offset}, not {offset}"
        )));
    }
    if let Some(known) = known_total
        && known != total_size
    {
        return Err(PlayError::Output(format!(
            "the clip changed size while playing ({known} then {total_size} bytes)"
        )));
    }
    Ok(())
}

/// One playback from one edge.
pub(crate) struct Session {
    handle: NodeHandle,
    events: broadcast::Receiver<NodeEvent>,
    edge: PeerId,
    clock: SharedClock,
    started: Instant,
    /// The clip's size, once the edge said it.
    total: Option<u64>,
    /// The edge's signed manifest (checked) and the clip's CID, once the edge sent them.
    manifest: Option<(
        protocols::manifest::Manifest,
        protocols::content_id::ContentId,
    )>,
    /// What was received, and over which path.
    pub(crate) tally: Tally,
    bar: indicatif::ProgressBar,
}

impl Session {
    /// A session with `edge` over the node `handle`, started at `started` on `clock`.
    pub(crate) fn new(
        handle: NodeHandle,
        edge: PeerId,
        clock: SharedClock,
        started: Instant,
        bar: indicatif::ProgressBar,
    ) -> Self {
        Session {
            events: handle.subscribe(),
            handle,
            edge,
            clock,
            started,
            total: None,
            manifest: None,
            tally: Tally::default(),
            bar,
        }
    }

    /// Time since the playback started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.clock
            .monotonic()
            .saturating_duration_since(self.started)
    }

    /// Ends the progress bar.
    pub(crate) fn finish_bar(&self) {
        self.bar.finish_and_clear();
    }

    fn note_event(&mut self, e: &NodeEvent) -> bool {
        let direct = direct_to(&self.edge, e);
        if direct {
            let at = self.elapsed();
            self.tally.direct_seen(at);
        }
        direct
    }

    fn drain_events(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.note_event(&e);
        }
    }

    /// Dials the edge, opens the stream and streams into `sink` from the offset reached.
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
            offset: self.tally.bytes,
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
        let request_sent = self.clock.monotonic();
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
                    total_size,
                    offset,
                    manifest_json,
                    ..
                },
            ))) => {
                if let Err(e) = check_streaming(self.tally.bytes, self.total, offset, total_size) {
                    return Ended::Broke(e);
                }
                let checked = super::verify::check_manifest(
                    manifest_json.as_deref(),
                    &self.edge.to_string(),
                    &opts.event_id,
                    ticket.clip_cid.as_deref(),
                    total_size,
                );
                match (checked, &self.manifest) {
                    (Err(e), _) => return Ended::Broke(e),
                    (Ok(m), Some(known)) if known.1 != m.1 => {
                        return Ended::Broke(PlayError::Integrity(
                            "the edge's manifest changed between attempts".into(),
                        ));
                    }
                    (Ok(m), _) => self.manifest = Some(m),
                }
                (s, total_size)
            }
        };
        self.total = Some(total);
        self.tally.opened(request_sent, relayed);
        self.bar.set_length(total);
        let mut on_relay = relayed;
        let mut buf = vec![0u8; CHUNK];
        while self.tally.bytes < total {
            let want = CHUNK.min((total - self.tally.bytes) as usize);
            tokio::select! {
                r = tokio::time::timeout(opts.read_timeout, stream.read(&mut buf[..want])) => {
                    let n = match r {
                        Err(_) => return broke(PlayError::Edge(format!("no data for {:?}", opts.read_timeout))),
                        Ok(Err(e)) => return broke(PlayError::Edge(format!("the stream broke: {e}"))),
                        Ok(Ok(0)) => return broke(PlayError::Edge("the stream ended early".into())),
                        Ok(Ok(n)) => n,
                    };
                    let at = self.elapsed();
                    self.tally.first_byte_at(at);
                    if let Err(e) = sink.write(&buf[..n]) {
                        return Ended::Broke(e);
                    }
                    self.tally.received(n as u64);
                    self.bar.set_position(self.tally.bytes);
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
        let _ = tokio::time::timeout(CLOSE_WAIT, stream.close()).await;
        Ended::Done
    }
}

/// The attempts of one playback into `output`: returns (resumes, switched to direct).
pub(crate) async fn run(
    opts: &PlayOptions,
    session: &mut Session,
    ticket: &mut Ticket,
    output: &Output,
) -> Result<(u32, bool), PlayError> {
    let mut sink = Sink::open(output, opts.identity.as_ref().map(|i| i.0.clone()))?;
    let mut token = opts
        .play_token
        .clone()
        .unwrap_or_else(|| ticket.token.clone());
    let mut resumes = Resumes::new(opts.retries);
    let mut switched = false;
    loop {
        let before = session.tally.bytes;
        let ended = session.attempt(opts, ticket, &token, &mut sink).await;
        session.tally.close_path(session.clock.monotonic());
        let error = match ended {
            Ended::Done => {
                sink.finish(session.manifest.as_ref().map(|m| m.1))?;
                return Ok((resumes.used(), switched));
            }
            Ended::SwitchToDirect => {
                let closed = session
                    .handle
                    .close_relayed(session.edge)
                    .await
                    .unwrap_or(0);
                tracing::info!(
                    at = session.tally.bytes,
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
            if session.tally.bytes > before {
                // Progress since the last break: the waits start again.
                resumes.progressed();
            }
            let mut last = e;
            loop {
                let Some(wait) = resumes.next_wait() else {
                    return Err(PlayError::GaveUp {
                        offset: session.tally.bytes,
                        attempts: resumes.used(),
                        last: last.to_string(),
                    });
                };
                tracing::warn!(at = session.tally.bytes, error = %last, ?wait, "stream broke; resuming");
                opts.clock.sleep(wait).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        PeerId::from_str(&protocols::signed::peer_id_of(&key.verifying_key())).unwrap()
    }

    #[test]
    fn only_a_direct_connection_to_the_edge_counts() {
        let (edge, other) = (peer(), peer());
        let addr: Multiaddr = "/ip4/127.0.0.1/udp/4001/quic-v1".parse().unwrap();
        let connected = |peer, relayed| NodeEvent::Connected {
            peer,
            address: addr.clone(),
            relayed,
            inbound: false,
        };
        assert!(direct_to(&edge, &connected(edge, false)));
        assert!(!direct_to(&edge, &connected(edge, true)));
        assert!(!direct_to(&edge, &connected(other, false)));
        assert!(direct_to(
            &edge,
            &NodeEvent::HolePunch {
                peer: edge,
                direct: true
            }
        ));
        assert!(!direct_to(
            &edge,
            &NodeEvent::HolePunch {
                peer: edge,
                direct: false
            }
        ));
        assert!(!direct_to(&edge, &NodeEvent::RelayReserved { relay: edge }));
    }

    #[test]
    fn the_edge_must_stream_from_the_offset_reached() {
        assert!(check_streaming(0, None, 0, 1000).is_ok());
        assert!(check_streaming(400, Some(1000), 400, 1000).is_ok());
        let e = check_streaming(400, Some(1000), 0, 1000).unwrap_err();
        assert!(matches!(e, PlayError::Edge(_)), "{e:?}");
        assert!(e.retryable());
        assert_eq!(
            e.to_string(),
            "cannot stream from the edge: the edge streams from 0, not 400"
        );
    }

    #[test]
    fn a_clip_that_changed_size_is_final() {
        let e = check_streaming(400, Some(1000), 400, 1200).unwrap_err();
        assert!(!e.retryable());
        assert_eq!(
            e.to_string(),
            "cannot write the output: the clip changed size while playing (1000 then 1200 bytes)"
        );
    }
}
