//! The tenant's private cloud node (`guardian-vm`): it makes install packages, enrolls edges,
//! relays for them, stores their events, keeps their telemetry and health, archives their
//! sealed clips in S3, and serves the owner's HTTP API.
//!
//! Modules form layers; a module imports only modules of the layers below it:
//!
//! 1. bottom: [`config`] (`vm.toml`), [`db`] (SQLite, one file per table group),
//!    [`storage`] (S3), [`data_dir`] (the data directory: config, keys, database);
//! 2. pure decisions: [`enroll`], [`health`], [`batch`] (event batch checks),
//!    [`archive::policy`] (archive policy and quota), [`playback::token`] (token minting
//!    and checks);
//! 3. [`state`]: `VmState` and the metrics, built from config, db, storage and a clock;
//! 4. protocol handlers and tasks: [`handlers`] (enroll, events, telemetry), [`archive`]
//!    (`/guardian/archive/1`, retention, reconciliation), [`playback`] (tickets and clip
//!    streams from edges), [`allow`] (the allow-list refresher), [`presence`] (who is
//!    connected), [`configure`] (configuration pushed to edges), [`camera_changes`]
//!    (cameras changed on an edge's box), [`discovery`] (cameras edges found) and
//!    [`camera_ops`] (scans and snapshots asked of an edge), and [`overlay`] (the WireGuard
//!    overlay: the device, key negotiation, the relay streams, the owner's devices; its
//!    [`overlay::handle`], the running device the HTTP API reads, is shared through the
//!    state and imports nothing above the bottom layer);
//! 5. [`http`]: the owner's HTTP API and `/metrics`;
//! 6. [`service`]: `run`, on top.
//!
//! [`provision`] (`init`, `package edge`) and [`iso`] are the CLI side; they use the bottom
//! layer only.

pub mod access;
pub mod alerts;
pub mod allow;
pub mod archive;
pub mod batch;
pub mod camera_changes;
pub mod camera_ops;
pub mod config;
pub mod configure;
pub mod data_dir;
pub mod db;
pub mod discovery;
pub mod enroll;
pub mod handlers;
pub mod health;
pub mod history;
pub mod http;
pub mod iso;
pub mod overlay;
pub mod playback;
pub mod presence;
pub mod provision;
pub mod service;
pub mod state;
pub mod storage;
pub mod thumbnails;

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
    /// The vm's WireGuard private key (base64, made on the first start with the overlay on).
    pub const WG_KEY: &str = "wg.key";
}
