//! Cameras the edge finds on its LAN, and the owner's requests that reach an edge's cameras
//! through the vm.
//!
//! ```text
//! edge → vm  /guardian/discovery/1  DiscoveryReport (after every scan)  → DiscoveryAck
//! vm → edge  /guardian/scan/1       ScanRequest (scan now)              → ScanAnswer
//! vm → edge  /guardian/snapshot/1   SnapshotRequest (a camera)          → SnapshotAnswer
//! ```
//!
//! A report replaces the edge's previous one at the vm. Nothing in it is secret: addresses,
//! makers and models, stream URLs without user information, and whether credentials are
//! needed. A snapshot travels sealed to the owner's key slots for that camera; the vm relays
//! the age file and cannot open it.

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;

/// How a camera was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// It answered an ONVIF WS-Discovery probe (or said hello).
    Onvif,
    /// It answered RTSP on a probed port.
    Rtsp,
    /// A V4L2 device (`/dev/video*`) of the edge.
    V4l2,
}

/// What a stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamRole {
    /// The camera's largest stream: recorded.
    Main,
    /// A smaller stream: for detection.
    Sub,
    /// Another.
    Other,
}

/// One stream a camera offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamProfile {
    /// The ONVIF profile token, the RTSP path, or the V4L2 pixel format.
    pub token: String,
    /// Its name, as the camera gives it.
    pub name: String,
    /// Main, sub or other (by size: the largest is main, the next sub).
    pub role: StreamRole,
    /// Its URL without user information (`rtsp://...`, `v4l2:///dev/video0`), if known.
    pub url: Option<String>,
    /// Codec (`H264`, `H265`, `JPEG`, `MJPG`, `YUYV`, ...), if known.
    pub codec: Option<String>,
    /// Width, pixels.
    pub width: Option<u32>,
    /// Height, pixels.
    pub height: Option<u32>,
    /// Frames per second, thousandths.
    pub fps_milli: Option<u32>,
}

/// A camera found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// How it was found (ONVIF wins over RTSP for the same host).
    pub kind: FindingKind,
    /// Its IP address, or the device path.
    pub address: String,
    /// RTSP ports that answered.
    pub rtsp_ports: Vec<u16>,
    /// The ONVIF device service URL.
    pub xaddr: Option<String>,
    /// The ONVIF endpoint reference (stable across the camera's address changes).
    pub endpoint: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// The name it gives itself.
    pub name: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Whether it wants credentials (for its ONVIF services or its streams).
    pub needs_credentials: bool,
    /// Whether the credentials of a camera configured at this address were accepted
    /// (`None`: none tried).
    pub credentials_accepted: Option<bool>,
    /// Its streams, main first.
    pub profiles: Vec<StreamProfile>,
    /// When it last answered, Unix ms.
    pub seen_at_ms: u64,
    /// What went wrong asking it more, if anything (for the owner).
    pub note: Option<String>,
}

/// The edge's findings after a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryReport {
    /// Whether discovery is on (`[discovery] enabled`); off, the findings are empty.
    pub enabled: bool,
    /// When the scan started, Unix ms.
    pub started_at_ms: u64,
    /// When it ended, Unix ms.
    pub finished_at_ms: u64,
    /// What was scanned (subnets, `onvif`, `v4l2`), for the owner.
    pub scanned: Vec<String>,
    /// What was found.
    pub findings: Vec<Finding>,
    /// Parts of the scan that failed, and why.
    pub errors: Vec<String>,
}

impl WireMessage for DiscoveryReport {
    const NAME: &'static str = "DiscoveryReport";
    const MAX_SIZE: usize = 512 * 1024;
}

/// The vm's answer to a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscoveryAck {
    /// Stored.
    Stored,
    /// Not stored, and why.
    Refused(String),
}

impl WireMessage for DiscoveryAck {
    const NAME: &'static str = "DiscoveryAck";
    const MAX_SIZE: usize = 4 * 1024;
}

/// The owner asks for a scan now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {}

impl WireMessage for ScanRequest {
    const NAME: &'static str = "ScanRequest";
    const MAX_SIZE: usize = 1024;
}

/// The edge's answer: the report follows on `/guardian/discovery/1` when the scan ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanAnswer {
    /// A scan started.
    Started,
    /// A scan is running; another follows it for this request.
    AlreadyRunning,
    /// Discovery is off on this edge (`[discovery] enabled = false`).
    Disabled,
}

impl WireMessage for ScanAnswer {
    const NAME: &'static str = "ScanAnswer";
    const MAX_SIZE: usize = 1024;
}

/// The owner asks for a camera's current picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    /// The camera.
    pub camera_id: String,
}

impl WireMessage for SnapshotRequest {
    const NAME: &'static str = "SnapshotRequest";
    const MAX_SIZE: usize = 1024;
}

/// The edge's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotAnswer {
    /// A JPEG sealed with age to the owner and the key slots that include the camera.
    Sealed {
        /// When the frame was decoded, Unix ms.
        taken_at_ms: u64,
        /// Its width, pixels.
        width: u32,
        /// Its height, pixels.
        height: u32,
        /// The key ids it is sealed to.
        key_ids: Vec<String>,
        /// The age file.
        #[serde(with = "serde_bytes")]
        sealed: Vec<u8>,
    },
    /// No picture, and why.
    Refused(SnapshotRefusal),
}

/// Why there is no snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SnapshotRefusal {
    /// The edge has no such camera.
    #[error("the edge has no camera {0}")]
    NoSuchCamera(String),
    /// The camera is not streaming (no frame in the last seconds).
    #[error("camera {0} is not streaming")]
    NotStreaming(String),
    /// Sealing failed on the edge.
    #[error("the edge could not seal the picture: {0}")]
    Failed(String),
}

impl SnapshotRefusal {
    /// Whether asking again later may work.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SnapshotRefusal::NoSuchCamera(_))
    }
}

impl WireMessage for SnapshotAnswer {
    const NAME: &'static str = "SnapshotAnswer";
    const MAX_SIZE: usize = 4 * 1024 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    #[test]
    fn messages() {
        conformance::check(&DiscoveryReport {
            enabled: true,
            started_at_ms: 1,
            finished_at_ms: 2,
            scanned: vec!["10.0.0.0/24".into(), "onvif".into()],
            findings: vec![Finding {
                kind: FindingKind::Onvif,
                address: "10.0.0.3".into(),
                rtsp_ports: vec![554],
                xaddr: Some("http://10.0.0.3/onvif/device_service".into()),
                endpoint: Some("urn:uuid:1".into()),
                manufacturer: Some("Acme".into()),
                model: Some("Door 2".into()),
                name: None,
                firmware: None,
                needs_credentials: true,
                credentials_accepted: Some(true),
                profiles: vec![StreamProfile {
                    token: "main".into(),
                    name: "MainStream".into(),
                    role: StreamRole::Main,
                    url: Some("rtsp://10.0.0.3/main".into()),
                    codec: Some("H264".into()),
                    width: Some(1920),
                    height: Some(1080),
                    fps_milli: Some(15_000),
                }],
                seen_at_ms: 2,
                note: None,
            }],
            errors: vec![],
        });
        conformance::check(&DiscoveryAck::Refused("no".into()));
        conformance::check(&ScanRequest {});
        conformance::check(&ScanAnswer::Disabled);
        conformance::check(&SnapshotRequest {
            camera_id: "porch".into(),
        });
        conformance::check(&SnapshotAnswer::Sealed {
            taken_at_ms: 5,
            width: 640,
            height: 360,
            key_ids: vec!["kabc".into()],
            sealed: vec![1, 2, 3],
        });
        conformance::check(&SnapshotAnswer::Refused(SnapshotRefusal::NotStreaming(
            "porch".into(),
        )));
        assert!(!SnapshotRefusal::NoSuchCamera("x".into()).is_retryable());
        assert_eq!(
            serde_json::to_value(FindingKind::V4l2).unwrap(),
            "v4l2",
            "the API's spelling"
        );
    }
}
