//! Formats the edge speaks with cameras on its own LAN, pure: requests are built and answers
//! parsed here; the sockets are the edge's (`edge/src/discover/`).
//!
//! - [`onvif`]: SOAP 1.2 requests of the ONVIF device and media services with a WS-Security
//!   UsernameToken digest, and their answers (date and time, capabilities, device
//!   information, profiles, stream and snapshot URIs, faults).
//! - [`wsd`]: WS-Discovery (2005/04, as ONVIF uses it): the probe, and probe matches, hellos
//!   and byes.
//! - [`rtsp`]: RTSP/1.0 requests and responses, SDP, and the width and height in an H.264
//!   sequence parameter set.
//! - [`xml`]: the bounded XML tree the first two read.
//!
//! Every parser bounds its input and answers a typed [`LanError`]: what a camera (or anything
//! else on the LAN) sends is untrusted. Fuzzed in `fuzz/fuzz_targets/lan.rs`.

pub mod onvif;
pub mod rtsp;
pub mod time;
pub mod wsd;
pub mod xml;

/// Why an answer from the LAN was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanError {
    /// Larger than the parser accepts.
    #[error("the answer is too large ({0} bytes)")]
    TooLarge(usize),
    /// Not the format expected.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// A SOAP fault.
    #[error("the camera answered a fault: {reason} ({code}{})", if subcode.is_empty() { String::new() } else { format!(", {subcode}") })]
    Fault {
        /// The fault code's local name (`Sender`, `Receiver`).
        code: String,
        /// The innermost subcode's local name (`NotAuthorized`, `ActionNotSupported`), or
        /// empty.
        subcode: String,
        /// The reason text.
        reason: String,
    },
}

impl LanError {
    /// Whether the camera refused the credentials (or wants some).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, LanError::Fault { subcode, .. }
            if subcode == "NotAuthorized" || subcode == "FailedAuthentication"
                || subcode == "InvalidSecurityToken" || subcode == "FailedCheck")
    }
}
