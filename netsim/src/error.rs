//! The one error type of the harness: a failed system command, a timeout, or a set-up that
//! does not behave as asked.

use std::time::Duration;

/// What went wrong while building, changing or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system command (`ip`, `nft`, `tc`, `iptables-nft`) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A command or a wait took longer than allowed.
    #[error("timed out after {after:?}: {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// Not root (namespaces, NAT and queues need CAP_NET_ADMIN and CAP_SYS_ADMIN).
    #[error("netsim needs root (network namespaces, nftables, NFQUEUE)")]
    NotRoot,
    /// A tool the harness uses is not installed.
    #[error("`{0}` is not installed (run scripts/setup.sh: scripts/packages/netsim.txt)")]
    MissingTool(&'static str),
    /// An I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A request that makes no sense for this lab (an unknown host, a bad parameter).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Results of the harness.
pub type Result<T> = std::result::Result<T, Error>;
