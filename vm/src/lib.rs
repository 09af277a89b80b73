//! The tenant's private cloud node (`guardian-vm`): it makes install packages, enrolls edges,
//! relays for them, stores their events, keeps their telemetry and health, and serves the
//! owner's HTTP API.
//!
//! - [`config`]: the `vm.toml` file.
//! - [`db`]: the SQLite database.
//! - [`provision`]: `init` (the tenant) and `package edge` (an edge's install package).
//! - [`enroll`]: the enrollment decision.
//! - [`health`]: edge health from telemetry.
//! - [`service`]: `run`: the libp2p node, the request handlers and the HTTP API together.
//! - [`http`]: the HTTP API (warp) and `/metrics`.
//! - [`storage`]: S3 through aws-sdk-s3; the embedded s3s-fs server by default.
//! - [`archive`]: `/guardian/archive/1`, retention and the start-up reconciliation.
//! - [`playback`]: playback tokens, and clips streamed from edges over HTTP.

pub mod archive;
pub mod config;
pub mod db;
pub mod enroll;
pub mod health;
pub mod http;
pub mod iso;
pub mod playback;
pub mod provision;
pub mod service;
pub mod storage;

pub use protocols::now_ms;

/// File names inside a vm's data directory.
pub mod paths {
    /// The configuration.
    pub const CONFIG: &str = "vm.toml";
    /// The tenant's signing key (tokens, packages).
    pub const TENANT_KEY: &str = "tenant.key";
    /// The vm's libp2p identity.
    pub const NODE_KEY: &str = "node.key";
    /// The database.
    pub const DB: &str = "vm.sqlite";
}
