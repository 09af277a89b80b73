//! [`PlayError`]: why playback failed, and whether a resume may fix it.

use protocols::messages::clips::ClipRefusal;

use crate::api::ApiError;

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
    /// What arrived is not what the edge sealed and signed (a changed byte, another clip, a
    /// manifest not signed by the edge), or the key cannot open it; nothing was written.
    #[error("the clip did not verify: {0}")]
    Integrity(String),
}

impl PlayError {
    /// Whether a resume may fix it (a refusal, a vm error other than 5xx, or an output
    /// failure will not go away).
    pub(crate) fn retryable(&self) -> bool {
        matches!(
            self,
            PlayError::EdgeOffline(_)
                | PlayError::VmUnreachable { .. }
                | PlayError::Edge(_)
                | PlayError::Vm { status: 500.., .. }
        )
    }
}

impl From<ApiError> for PlayError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Status { code, message, .. } if code.as_deref() == Some("edge_offline") => {
                PlayError::EdgeOffline(message)
            }
            ApiError::Status {
                status, message, ..
            } => PlayError::Vm { status, message },
            ApiError::Unreachable { url, reason } => PlayError::VmUnreachable { url, reason },
            ApiError::Unreadable { what, reason, .. } => PlayError::Vm {
                status: 200,
                message: format!("unreadable {what}: {reason}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>) -> ApiError {
        ApiError::Status {
            url: "http://vm/api/v1/events/e/play".into(),
            status,
            code: code.map(str::to_owned),
            message: "why".into(),
        }
    }

    #[test]
    fn the_vms_answers_map_to_play_errors() {
        assert!(matches!(
            PlayError::from(status(503, Some("edge_offline"))),
            PlayError::EdgeOffline(m) if m == "why"
        ));
        assert!(matches!(
            PlayError::from(status(404, Some("not_found"))),
            PlayError::Vm { status: 404, message } if message == "why"
        ));
        let e = PlayError::from(ApiError::Unreachable {
            url: "http://vm/x".into(),
            reason: "refused".into(),
        });
        assert_eq!(e.to_string(), "cannot reach the vm at http://vm/x: refused");
        let e = PlayError::from(ApiError::Unreadable {
            what: "ticket",
            url: "http://vm/x".into(),
            reason: "expected value".into(),
        });
        assert_eq!(
            e.to_string(),
            "the vm answered 200: unreadable ticket: expected value"
        );
    }

    #[test]
    fn only_passing_failures_are_retried() {
        assert!(PlayError::from(status(503, Some("edge_offline"))).retryable());
        assert!(PlayError::from(status(500, None)).retryable());
        assert!(PlayError::from(status(502, None)).retryable());
        assert!(!PlayError::from(status(404, None)).retryable());
        assert!(!PlayError::from(status(401, None)).retryable());
        assert!(PlayError::Edge("no data".into()).retryable());
        assert!(
            PlayError::VmUnreachable {
                url: String::new(),
                reason: String::new()
            }
            .retryable()
        );
        assert!(!PlayError::Output("disk full".into()).retryable());
        assert!(!PlayError::Node("x".into()).retryable());
        assert!(!PlayError::Refused(ClipRefusal::Expired).retryable());
    }
}
