//! Cameras: GStreamer pipelines, the pre-roll ring, clips, events and local retention.
//!
//! Layers, lowest first (a module imports only modules above it in this list):
//!
//! - [`pipeline`]: one camera's pipeline (decode branch for detection, encoded branch).
//! - [`gop_ring`]: the pre-roll ring of whole GOPs.
//! - [`recorder`]: an event's MP4, written without re-encoding.
//! - [`event`]: when events open and close (pure).
//! - [`analysis`]: frame analysis: motion, detector (behind a trait), filters, tracker, the
//!   event machine (pure but for the detector).
//! - [`second_look`]: the stronger model's look at an event's object, and its verdict.
//! - [`retention`]: local retention (planning pure; the sweep on the clock's time).
//! - [`finish`]: clip finishing: snapshot, fsync, rows, sealing by the archive policy.
//! - [`camera`]: one camera's thread: pipeline, watchdog, reconnect backoff, status.
//! - [`supervisor`]: the cameras of `edge.toml`, live reload, statuses, retention.
//!
//! Time comes from a `guardian_node::clock::SharedClock` and every wait ends on the
//! `guardian_node::shutdown::Shutdown` given to [`supervisor::Video::start`]; each camera
//! thread has a child of it.

pub mod analysis;
pub mod camera;
pub mod event;
pub mod finish;
pub mod gop_ring;
pub mod pipeline;
pub mod recorder;
pub mod recovery;
pub mod retention;
pub mod second_look;
pub mod supervisor;
pub mod workfile;
