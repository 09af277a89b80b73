//! Inbound requests for the application ([`Inbound`]) and the [`Reply`] it owes each one,
//! awaited by the swarm task at most [`REPLY_TIMEOUT`] ([`PendingReply`] carries the answer,
//! or its absence, back to the protocol it came in on). Only a role that serves a protocol
//! (see [`crate::protocol_table`]) ever receives these.

use std::time::Duration;

use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use protocols::messages::enroll::{EnrollRequest, EnrollResponse};
use protocols::messages::events::{EventAck, EventBatch};
use protocols::messages::telemetry::{TelemetryAck, TelemetryReport};
use tokio::sync::oneshot;

/// How long the application may take to answer an inbound request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A reply the application owes for an inbound request.
pub struct Reply<T> {
    tx: oneshot::Sender<(T, bool)>,
}

impl<T> Reply<T> {
    /// A reply and where its answer arrives: the answer, and whether to close the
    /// connection after it.
    pub(crate) fn channel() -> (Reply<T>, oneshot::Receiver<(T, bool)>) {
        let (tx, rx) = oneshot::channel();
        (Reply { tx }, rx)
    }

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

/// The application's answer to an inbound request (`None`: none in time), with the channel
/// it goes back on and whether to close the connection after it.
pub(crate) enum PendingReply {
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

/// Wraps an inbound request's channel and the application's answer as a [`PendingReply`].
pub(crate) type ToPendingReply<Resp> =
    fn(ResponseChannel<Resp>, PeerId, Option<(Resp, bool)>) -> PendingReply;

/// Awaits the application's answer, at most `timeout`; `None` when it gave none in time or
/// dropped the [`Reply`].
pub(crate) async fn await_reply<T: Send + 'static>(
    rx: oneshot::Receiver<(T, bool)>,
    timeout: Duration,
) -> Option<(T, bool)> {
    tokio::time::timeout(timeout, rx)
        .await
        .ok()
        .and_then(|r| r.ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_carries_the_answer_and_whether_to_close() {
        let (reply, rx) = Reply::channel();
        reply.send(7u8);
        assert_eq!(await_reply(rx, REPLY_TIMEOUT).await, Some((7, false)));
        let (reply, rx) = Reply::channel();
        reply.send_and_close(8u8);
        assert_eq!(await_reply(rx, REPLY_TIMEOUT).await, Some((8, true)));
    }

    #[tokio::test]
    async fn a_dropped_reply_is_no_answer() {
        let (reply, rx) = Reply::<u8>::channel();
        drop(reply);
        assert_eq!(await_reply(rx, REPLY_TIMEOUT).await, None);
    }

    #[tokio::test]
    async fn a_late_reply_is_no_answer() {
        let (reply, rx) = Reply::<u8>::channel();
        assert_eq!(await_reply(rx, Duration::from_millis(20)).await, None);
        drop(reply);
    }
}
