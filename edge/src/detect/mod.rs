//! Object detection: motion gating, the NanoDet detector in OpenVINO, and tracking.
//!
//! - [`boxes`]: boxes, IoU, NMS.
//! - [`motion`]: a coarse motion detector that decides when and where to look.
//! - [`nanodet`]: decoding the model's outputs.
//! - [`runtime`]: the OpenVINO runner shared by all cameras.
//! - [`tracker`]: one object across frames, and when it has parked.
//! - [`locate`]: where the model and OpenVINO are when nothing is configured.
//! - [`labels`]: COCO labels and the product's categories.

pub mod boxes;
pub mod labels;
pub mod locate;
pub mod motion;
pub mod nanodet;
pub mod runtime;
pub mod tracker;
