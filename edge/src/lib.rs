//! The edge appliance (`guardian-edge`): installs from its package, finds and enrolls with
//! its vm over libp2p, keeps the connection and a relay reservation, and delivers event
//! records (from a durable outbox) and telemetry.
//!
//! Layers, lowest first (a module imports only from the layers below it):
//!
//! 1. [`config`] (the `edge.toml` file), [`store`] (the SQLite database and its async
//!    wrapper), [`telemetry`] (CPU, memory and disk sampling), [`detect`] (motion gating,
//!    the OpenVINO detector, tracking).
//! 2. [`data_dir`]: the data directory's paths and the installed edge ([`data_dir::Installed`]);
//!    [`keys`]: the edge's own ed25519 key and age identity, made at `init`.
//! 3. [`install`] (`init --package`), [`archive`] (sealing events and sending them to the
//!    vm's archive), [`delivery`] (when the event outbox sends, retries or parks: pure),
//!    [`playback`] (`/guardian/clips/1`, local clips played to holders of a playback token),
//!    [`video`] (cameras, clips, events, local retention), [`camera_config`] (the vm's
//!    cameras written to `edge.toml`, merged with changes made on the box), [`camera_report`]
//!    (the box's own changes reported to the vm).
//!    [`users`] (the household's users the vm syncs, for the LAN sign-in), [`local_token`]
//!    (the LAN web app's local admin token, kept as its hash).
//! 4. [`lan`]: the web app and a local API on the LAN (`[http]`), over the store, the
//!    cameras' statuses, the live events and the sealed files.
//!    [`overlay`]: the WireGuard overlay to the vm (key, negotiation, device, UDP or the
//!    relay stream), which serves [`lan`]'s API on its overlay addresses.
//! 5. [`agent`]: the `run` command, which ties them together; only `main` imports it.

pub mod agent;
pub mod archive;
pub mod camera_config;
pub mod camera_report;
pub mod config;
pub mod configure;
pub mod data_dir;
pub mod delivery;
pub mod detect;
pub mod discover;
pub mod discovery;
pub mod event_sender;
pub mod install;
pub mod key_slots;
pub mod keys;
pub mod lan;
pub mod link;
pub mod local_token;
pub mod overlay;
pub mod playback;
pub mod sealed;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod thumbnails;
pub mod users;
pub mod video;

pub use data_dir::paths;
