//! The event outbox's sender: event batches to the vm, oldest first, a record leaving only on
//! the vm's ack of the revision it held ([`crate::delivery::EventPacer`] decides what to do
//! with each answer). Its own task, woken the moment a camera queues a record (and on every
//! connection to the vm, and every `outbox.poll_millis`), so an open event reaches the vm
//! while the agent's pass may be busy with an archive upload.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use guardian_node::clock::SharedClock;
use guardian_node::{NodeEvent, NodeHandle, PeerId, Shutdown};
use protocols::messages::events::{EventAck, EventBatch};

use crate::delivery::{Action, EventPacer};
use crate::store::Db;

/// Batches sent per pass before the sender looks at its wake-ups again.
const BATCHES_PER_PASS: usize = 16;

/// What the sender needs.
pub struct EventSender {
    /// The node.
    pub handle: NodeHandle,
    /// The vm.
    pub vm: PeerId,
    /// The edge's store.
    pub db: Db,
    /// Time.
    pub clock: SharedClock,
    /// Events per batch.
    pub batch_size: u32,
    /// When batches go, and the backoff after failed or refused-for-now sends.
    pub pacer: EventPacer,
}

impl EventSender {
    /// Sends until `shutdown`: at once when `queued` is woken, on each connection to the vm,
    /// and every `poll`.
    pub async fn run(
        mut self,
        queued: Arc<tokio::sync::Notify>,
        poll: Duration,
        shutdown: Shutdown,
    ) {
        let mut events = self.handle.subscribe();
        // A first pass at once: what waited while the edge was down goes without waiting
        // for a wake-up (the connection may be up before this task subscribes).
        let mut busy = true;
        loop {
            if !busy {
                tokio::select! {
                    biased;
                    _ = shutdown.wait() => return,
                    _ = queued.notified() => {}
                    e = events.recv() => {
                        if !matches!(e, Ok(NodeEvent::Connected { peer, .. }) if peer == self.vm) {
                            continue;
                        }
                    }
                    _ = self.clock.sleep(poll) => {}
                }
            }
            let connected = matches!(self.handle.connection(self.vm).await, Ok(Some(_)));
            busy = false;
            if !connected {
                continue;
            }
            tokio::select! {
                biased;
                _ = shutdown.wait() => return,
                more = self.flush_outbox() => match more {
                    Ok(more) => busy = more,
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "the event outbox failed; will retry"),
                },
            }
        }
    }

    /// Sends event batches; returns whether a full pass left more to send.
    async fn flush_outbox(&mut self) -> Result<bool> {
        if !self.pacer.is_due(self.clock.monotonic()) {
            return Ok(false);
        }
        let batch_size = self.batch_size;
        for _ in 0..BATCHES_PER_PASS {
            let events = self.db.call(move |s| s.pending_events(batch_size)).await?;
            if events.is_empty() {
                return Ok(false);
            }
            let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
            let sent: std::collections::HashMap<String, u32> = events
                .iter()
                .map(|e| (e.event_id.clone(), e.revision))
                .collect();
            let reply = self
                .handle
                .send_events(self.vm, EventBatch { events })
                .await;
            let action =
                self.pacer
                    .on_reply(ids, &reply, self.clock.monotonic(), &mut rand::thread_rng());
            match action {
                Action::Delete(event_ids) => {
                    let acked: Vec<(String, u32)> = event_ids
                        .into_iter()
                        .filter_map(|id| sent.get(&id).map(|r| (id, *r)))
                        .collect();
                    let n = self.db.call(move |s| s.remove_events(&acked)).await?;
                    tracing::info!(delivered = n, "events acknowledged by the vm");
                }
                Action::Park { ids, reason } => {
                    tracing::error!(refusal = %reason, events = ids.len(), "the vm refused events; they stay on the edge, parked");
                    self.db.call(move |s| s.mark_refused(&ids, &reason)).await?;
                }
                Action::Retry { ids, wait } => {
                    let wait_ms = wait.as_millis() as u64;
                    match &reply {
                        Ok(EventAck::Refused(refusal)) => {
                            tracing::warn!(%refusal, events = ids.len(), wait_ms, "the vm cannot take events for now; will retry");
                        }
                        Ok(EventAck::Stored { .. }) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, events = ids.len(), wait_ms, "sending events failed; will retry");
                        }
                    }
                    self.db.call(move |s| s.note_attempt(&ids)).await?;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}
