//! Cameras: GStreamer pipelines, the pre-roll ring, clips, events and local retention.
//!
//! - [`pipeline`]: one camera's pipeline (decode branch for detection, encoded branch).
//! - [`gop_ring`]: the pre-roll ring of whole GOPs.
//! - [`recorder`]: an event's MP4, written without re-encoding.
//! - [`event`]: when events open and close.
//! - [`camera`]: one camera's thread, from frames to recorded events.
//! - [`supervisor`]: the cameras of `edge.toml`, live reload, statuses, retention.
//! - [`retention`]: local retention.

pub mod camera;
pub mod event;
pub mod gop_ring;
pub mod pipeline;
pub mod recorder;
pub mod retention;
pub mod supervisor;
