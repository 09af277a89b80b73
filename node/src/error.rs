//! What can go wrong with a node: [`NodeError`] (starting it, commanding it) and
//! [`RequestError`] (one outbound request or stream), with their conversions from libp2p's
//! failures. At the bottom of the crate: every other module may import it, it imports none.

use std::time::Duration;

use libp2p::request_response::OutboundFailure;
use libp2p::{Multiaddr, PeerId};

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
    /// A stream protocol is served twice.
    #[error("{0} is served already")]
    AlreadyServed(&'static str),
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

impl From<OutboundFailure> for RequestError {
    fn from(e: OutboundFailure) -> Self {
        use OutboundFailure as F;
        match e {
            F::Timeout => RequestError::Timeout,
            F::DialFailure => RequestError::DialFailure,
            F::ConnectionClosed => RequestError::ConnectionClosed,
            F::UnsupportedProtocols => RequestError::UnsupportedProtocol,
            F::Io(e) => RequestError::Io(e.to_string()),
        }
    }
}

impl From<libp2p_stream::OpenStreamError> for RequestError {
    fn from(e: libp2p_stream::OpenStreamError) -> Self {
        match e {
            libp2p_stream::OpenStreamError::UnsupportedProtocol(_) => {
                RequestError::UnsupportedProtocol
            }
            other => RequestError::Io(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_failures_map_one_to_one() {
        use OutboundFailure as F;
        assert_eq!(RequestError::from(F::Timeout), RequestError::Timeout);
        assert_eq!(
            RequestError::from(F::DialFailure),
            RequestError::DialFailure
        );
        assert_eq!(
            RequestError::from(F::ConnectionClosed),
            RequestError::ConnectionClosed
        );
        assert_eq!(
            RequestError::from(F::UnsupportedProtocols),
            RequestError::UnsupportedProtocol
        );
        let io = RequestError::from(F::Io(std::io::Error::other("reset by peer")));
        assert_eq!(io, RequestError::Io("reset by peer".into()));
    }

    #[test]
    fn stream_open_failures_keep_unsupported_apart() {
        let p = libp2p::StreamProtocol::new("/guardian/clips/1");
        assert_eq!(
            RequestError::from(libp2p_stream::OpenStreamError::UnsupportedProtocol(p)),
            RequestError::UnsupportedProtocol
        );
        let io = RequestError::from(libp2p_stream::OpenStreamError::Io(std::io::Error::other(
            "gone",
        )));
        assert!(
            matches!(io, RequestError::Io(ref s) if s.contains("gone")),
            "{io:?}"
        );
    }
}
