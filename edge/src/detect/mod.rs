//! Object detection: motion gating, the detector in OpenVINO (NanoDet, CenterNet or MoveNet),
//! and tracking.
//!
//! - [`boxes`]: boxes, IoU, NMS.
//! - [`motion`]: a coarse motion detector that decides when and where to look.
//! - [`nanodet`]: decoding NanoDet's outputs (the light default model).
//! - [`centernet`]: decoding CenterNet's outputs (the stronger model).
//! - [`movenet`]: decoding MoveNet MultiPose's outputs (people only).
//! - [`runtime`]: the OpenVINO runner shared by all cameras.
//! - [`tracker`]: one object across frames, and when it has parked.
//! - [`locate`]: where the model and OpenVINO are when nothing is configured.
//! - [`labels`]: COCO labels and the product's categories.
//! - [`verify`]: the second look at an event's object by the stronger model.

pub mod boxes;
pub mod centernet;
pub mod labels;
pub mod locate;
pub mod motion;
pub mod movenet;
pub mod nanodet;
pub mod runtime;
pub mod tracker;
pub mod verify;
