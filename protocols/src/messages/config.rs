//! `/guardian/config/1`: camera configuration pushed from the vm to the edge, which applies
//! it without a restart and acknowledges the revision it runs.

use serde::{Deserialize, Serialize};

use super::Category;
use crate::codec::WireMessage;

/// One camera's configuration (the same fields as a camera in `edge.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraConfig {
    /// Id, see [`super::valid_id`].
    pub id: String,
    /// Human name.
    pub name: String,
    /// Main stream (recorded): `rtsp://`, `file://`, `v4l2:///dev/videoN` or `test://`.
    pub url: String,
    /// Optional substream used for detection while the main stream is recorded.
    pub substream_url: Option<String>,
    /// Detection frames per second.
    pub detect_fps: u8,
    /// Detection frame width, pixels.
    pub detect_width: u16,
    /// Detection frame height, pixels.
    pub detect_height: u16,
    /// Zones where detections count, polygons in normalised coordinates (0..=1000).
    pub zones: Vec<Polygon>,
    /// Areas ignored entirely, same coordinates.
    pub masks: Vec<Polygon>,
    /// Categories that open an event.
    pub categories: Vec<Category>,
    /// Minimum score, thousandths.
    pub min_score_milli: u16,
    /// Seconds recorded before the first detection.
    pub pre_roll_secs: u16,
    /// Seconds recorded after the last detection.
    pub post_roll_secs: u16,
    /// Whether the camera runs.
    pub enabled: bool,
}

/// A polygon, points in thousandths of the frame's width and height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Polygon {
    /// Vertices in order.
    pub points: Vec<(u16, u16)>,
}

/// The whole camera configuration at a revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigPush {
    /// Increases with each change; the edge ignores older revisions.
    pub revision: u64,
    /// Every camera (cameras not listed are removed).
    pub cameras: Vec<CameraConfig>,
}

impl WireMessage for ConfigPush {
    const NAME: &'static str = "ConfigPush";
    const MAX_SIZE: usize = 256 * 1024;
}

/// The edge's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigAck {
    /// Applied; the edge runs this revision.
    Applied {
        /// The revision.
        revision: u64,
    },
    /// Not applied (invalid); the edge keeps running its current revision.
    Rejected {
        /// The revision refused.
        revision: u64,
        /// Why.
        reason: String,
    },
}

impl WireMessage for ConfigAck {
    const NAME: &'static str = "ConfigAck";
    const MAX_SIZE: usize = 4 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    fn camera(i: usize) -> CameraConfig {
        CameraConfig {
            id: format!("cam-{i}"),
            name: "Front door".into(),
            url: "rtsp://192.0.2.10:554/main".into(),
            substream_url: Some("rtsp://192.0.2.10:554/sub".into()),
            detect_fps: 5,
            detect_width: 416,
            detect_height: 416,
            zones: vec![Polygon {
                points: vec![(0, 0), (1000, 0), (1000, 1000)],
            }],
            masks: vec![],
            categories: vec![Category::Person, Category::Car],
            min_score_milli: 500,
            pre_roll_secs: 5,
            post_roll_secs: 5,
            enabled: true,
        }
    }

    #[test]
    fn config_push() {
        conformance::check(&ConfigPush {
            revision: 7,
            cameras: (0..4).map(camera).collect(),
        });
        conformance::check_encoder_limit(&ConfigPush {
            revision: 7,
            cameras: (0..2000).map(camera).collect(),
        });
    }

    #[test]
    fn config_ack() {
        conformance::check(&ConfigAck::Applied { revision: 7 });
        conformance::check(&ConfigAck::Rejected {
            revision: 8,
            reason: "camera id Front is invalid".into(),
        });
    }
}
