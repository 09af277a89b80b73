//! `/guardian/telemetry/1`: the edge's periodic health report, from which the vm derives
//! health (offline, disk nearly full, archive backlog high, work parked after a refusal).

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;

/// One report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryReport {
    /// The edge's peer id.
    pub edge_id: String,
    /// When measured, Unix ms.
    pub at_ms: u64,
    /// CPU use over the last interval, in thousandths of all cores.
    pub cpu_milli: u16,
    /// Memory used, bytes.
    pub mem_used_bytes: u64,
    /// Memory total, bytes.
    pub mem_total_bytes: u64,
    /// Disk used on the data volume, bytes.
    pub disk_used_bytes: u64,
    /// Disk free on the data volume, bytes.
    pub disk_free_bytes: u64,
    /// Each camera's status.
    pub cameras: Vec<CameraStatus>,
    /// Sealed objects waiting in the archive outbox.
    pub archive_backlog_objects: u64,
    /// Their total size, bytes.
    pub archive_backlog_bytes: u64,
    /// Event records waiting for the vm's ack.
    pub event_backlog: u64,
    /// Event records the vm refused for good, kept on the edge and no longer sent (absent
    /// from older edges: 0).
    #[serde(default)]
    pub events_parked: u64,
    /// Sealed events the vm's archive refused for good, kept on the edge.
    #[serde(default)]
    pub archive_parked: u64,
    /// Sealed thumbnails the vm refused for good, kept on the edge.
    #[serde(default)]
    pub thumbnails_parked: u64,
    /// The WireGuard overlay's path to the vm: `udp`, `stream`, or empty when the tunnel is
    /// not up (absent from older edges).
    #[serde(default)]
    pub overlay_path: String,
}

/// A camera's state as the edge sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraStatus {
    /// The camera.
    pub camera_id: String,
    /// Its state.
    pub state: CameraState,
    /// Frames per second received over the last interval, in thousandths.
    pub fps_milli: u32,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Width of the recorded stream, pixels (0 before the first frame; absent from older
    /// edges).
    #[serde(default)]
    pub width: u32,
    /// Its height, pixels.
    #[serde(default)]
    pub height: u32,
    /// Its bitrate over the last interval, kbit/s.
    #[serde(default)]
    pub bitrate_kbps: u32,
    /// When its last frame arrived, Unix ms (0: none yet).
    #[serde(default)]
    pub last_frame_ms: u64,
    /// The detector's time per look at this camera's frames, smoothed, ms (0: no look yet;
    /// absent from older edges).
    #[serde(default)]
    pub detect_ms: u32,
}

/// Camera states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    /// Frames are arriving.
    Streaming,
    /// Connecting or reconnecting.
    Connecting,
    /// No frames for longer than the watchdog allows; retrying with backoff.
    Stalled,
    /// Configuration or stream is unusable (wrong codec, bad URL).
    Failed,
    /// Turned off in configuration.
    Disabled,
}

impl WireMessage for TelemetryReport {
    const NAME: &'static str = "TelemetryReport";
    const MAX_SIZE: usize = 64 * 1024;
}

/// The vm's answer: received, and the interval it wants next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryAck {
    /// Seconds until the next report.
    pub next_interval_secs: u32,
}

impl WireMessage for TelemetryAck {
    const NAME: &'static str = "TelemetryAck";
    const MAX_SIZE: usize = 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    fn report(cameras: usize) -> TelemetryReport {
        TelemetryReport {
            edge_id: "12D3KooWexample".into(),
            at_ms: 1_790_000_000_000,
            cpu_milli: 420,
            mem_used_bytes: 1 << 30,
            mem_total_bytes: 8 << 30,
            disk_used_bytes: 100 << 30,
            disk_free_bytes: 400 << 30,
            cameras: (0..cameras)
                .map(|i| CameraStatus {
                    camera_id: format!("cam-{i}"),
                    state: if i == 0 {
                        CameraState::Streaming
                    } else {
                        CameraState::Stalled
                    },
                    fps_milli: 15_000,
                    last_error: (i == 1).then(|| "no buffer for 10 s".into()),
                    width: 1920,
                    height: 1080,
                    bitrate_kbps: 4_000,
                    last_frame_ms: 1_790_000_000_000,
                    detect_ms: 0,
                })
                .collect(),
            archive_backlog_objects: 3,
            archive_backlog_bytes: 24 << 20,
            event_backlog: 0,
            events_parked: 0,
            archive_parked: 0,
            thumbnails_parked: 0,
            overlay_path: String::new(),
        }
    }

    #[test]
    fn telemetry_report() {
        conformance::check(&report(4));
        conformance::check_encoder_limit(&report(2000));
    }

    #[test]
    fn telemetry_ack() {
        conformance::check(&TelemetryAck {
            next_interval_secs: 30,
        });
    }
}
