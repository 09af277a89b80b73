//! `/guardian/config/1`: configuration owned by the vm, pushed to an edge as versioned
//! sections.
//!
//! ```text
//! vm → edge  ConfigPush   the sections, each at its revision
//! edge → vm  ConfigAck    per section: Applied(revision) | Refused(revision, reason, applied)
//! ```
//!
//! The vm pushes when an edge connects, when a section changes, and again later while an
//! edge has not acknowledged the latest revision. Each section has its own revision and ack,
//! so an edge that refuses one keeps running the others. The key-slot section's revision is
//! its list's version, and its payload is the list as the owner signed it: the edge checks
//! the signature itself ([`crate::key_slots::accept`]); the vm cannot make one.
//! (The camera section, [`CameraConfig`], comes with remote camera configuration.)

use serde::{Deserialize, Serialize};

use super::Category;
use crate::codec::WireMessage;
use crate::key_slots::KeySlotList;
use crate::signed::Signed;

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

/// One section of configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Section {
    /// The household's key slots, as the owner signed them.
    KeySlots(Signed<KeySlotList>),
}

/// A section's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionName {
    /// [`Section::KeySlots`].
    KeySlots,
}

impl SectionName {
    /// The name as stored and shown (`key_slots`).
    pub fn as_str(self) -> &'static str {
        match self {
            SectionName::KeySlots => "key_slots",
        }
    }
}

impl Section {
    /// Its name.
    pub fn name(&self) -> SectionName {
        match self {
            Section::KeySlots(_) => SectionName::KeySlots,
        }
    }

    /// Its revision, as the payload states it (unchecked: for routing and acks). `None`
    /// when the payload does not decode.
    pub fn revision(&self) -> Option<u64> {
        match self {
            Section::KeySlots(list) => list.peek().ok().map(|l| l.version),
        }
    }
}

/// What the vm pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigPush {
    /// The sections, each at most once.
    pub sections: Vec<Section>,
}

impl WireMessage for ConfigPush {
    const NAME: &'static str = "ConfigPush";
    const MAX_SIZE: usize = 256 * 1024;
}

/// The edge's answer, one entry per section pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigAck {
    /// The outcomes.
    pub sections: Vec<SectionAck>,
}

/// What the edge did with one section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionAck {
    /// The section.
    pub section: SectionName,
    /// Its outcome.
    pub outcome: SectionOutcome,
}

/// Applied, or refused with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SectionOutcome {
    /// The edge runs this revision.
    Applied {
        /// The revision.
        revision: u64,
    },
    /// Not applied; the edge keeps running `applied`.
    Refused {
        /// The revision offered (0 when it did not decode).
        revision: u64,
        /// Why, for the owner.
        reason: String,
        /// The revision the edge runs, if any.
        applied: Option<u64>,
    },
}

impl WireMessage for ConfigAck {
    const NAME: &'static str = "ConfigAck";
    const MAX_SIZE: usize = 16 * 1024;
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
    fn camera_config() {
        let c = camera(1);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<CameraConfig>(&json).unwrap(), c);
    }

    fn slots(version: u64) -> Signed<KeySlotList> {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        Signed::sign(
            &KeySlotList {
                tenant_id: "t".into(),
                version,
                slots: vec![],
                signed_at_ms: 1,
            },
            &key,
        )
    }

    #[test]
    fn config_push() {
        let push = ConfigPush {
            sections: vec![Section::KeySlots(slots(4))],
        };
        conformance::check(&push);
        assert_eq!(push.sections[0].name(), SectionName::KeySlots);
        assert_eq!(push.sections[0].revision(), Some(4));
        assert_eq!(SectionName::KeySlots.as_str(), "key_slots");
        assert_eq!(
            serde_json::to_value(SectionName::KeySlots).unwrap(),
            "key_slots"
        );
    }

    #[test]
    fn config_ack() {
        conformance::check(&ConfigAck {
            sections: vec![
                SectionAck {
                    section: SectionName::KeySlots,
                    outcome: SectionOutcome::Applied { revision: 7 },
                },
                SectionAck {
                    section: SectionName::KeySlots,
                    outcome: SectionOutcome::Refused {
                        revision: 8,
                        reason: "not signed by the owner's signing key".into(),
                        applied: Some(7),
                    },
                },
            ],
        });
    }
}
