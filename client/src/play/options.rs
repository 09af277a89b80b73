//! [`PlayOptions`]: what to play from which vm, and how patiently.

use std::time::Duration;

use guardian_node::{SharedClock, SystemClock};

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
    /// Where time comes from: the report's timings and the waits between resumes.
    pub clock: SharedClock,
    /// The owner's (or a member's) identity: the clip is decrypted while it streams. Without
    /// it the sealed age file is written as served (still checked against its CID).
    pub identity: Option<Identity>,
}

/// An age identity that opens clips (its `Debug` shows nothing of it).
#[derive(Clone)]
pub struct Identity(pub age::x25519::Identity);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(..)")
    }
}

impl PlayOptions {
    /// Defaults: 5 retries, 15 s connect, 10 s read, prefer direct, progress bar, the system
    /// clock.
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
            clock: SystemClock::shared(),
            identity: None,
        }
    }
}
