//! The edge appliance (`guardian-edge`): installs from its package, finds and enrolls with
//! its vm over libp2p, keeps the connection and a relay reservation, and delivers event
//! records (from a durable outbox) and telemetry.
//!
//! - [`config`]: the `edge.toml` file.
//! - [`store`]: the SQLite database: device state and the event outbox.
//! - [`install`]: `init --package`.
//! - [`agent`]: the `run` command.
//! - [`telemetry`]: CPU, memory and disk sampling.
//! - [`archive`]: sealing events and sending them to the vm's archive.
//! - [`playback`]: `/guardian/clips/1`, local clips played to holders of a playback token.
//! - [`video`]: cameras, clips, events, local retention.
//! - [`detect`]: motion gating, the OpenVINO detector, tracking.

pub mod agent;
pub mod archive;
pub mod config;
pub mod detect;
pub mod install;
pub mod playback;
pub mod store;
pub mod telemetry;
pub mod video;

pub use protocols::now_ms;

/// File names inside an edge's data directory.
pub mod paths {
    /// The configuration.
    pub const CONFIG: &str = "edge.toml";
    /// What the install package said (tenant, vm, recipient, token).
    pub const PACKAGE: &str = "package.json";
    /// The edge's key (libp2p identity, manifest signatures).
    pub const KEY: &str = "edge.key";
    /// The database.
    pub const DB: &str = "edge.sqlite";
}
