//! `GET /api/v1/cameras/discovered`, `POST /api/v1/cameras/discover` and
//! `GET /api/v1/cameras/{id}/snapshot`: what the edges found on their LANs, a scan now, and a
//! camera's current picture sealed by its edge (the vm relays the age file; only the owner
//! and the key slots that include the camera open it).

use std::sync::Arc;

use protocols::messages::discovery::{Finding, ScanAnswer, SnapshotAnswer, SnapshotRefusal};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::{ApiError, internal};
use crate::camera_ops::{self, OpError};
use crate::db::{self, CameraRow, DeviceRow};
use crate::state::VmState;

/// The largest scan body accepted.
pub(super) const MAX_BODY: u64 = 4 * 1024;

#[derive(Serialize)]
struct EdgeScan<'a> {
    edge: &'a str,
    edge_name: &'a str,
    edge_online: bool,
    /// `[discovery] enabled` on that edge.
    enabled: bool,
    scan_started_at_ms: u64,
    scan_finished_at_ms: u64,
    received_at_ms: u64,
    scanned: &'a [String],
    errors: &'a [String],
}

#[derive(Serialize)]
struct Discovered<'a> {
    edge: &'a str,
    edge_name: &'a str,
    #[serde(flatten)]
    finding: &'a Finding,
    /// Cameras configured at this address on this edge.
    configured_as: Vec<&'a str>,
}

/// The ids of `edge`'s cameras whose source is at `address` (its URL's or xaddr's host, or a
/// V4L2 device path).
pub fn configured_as<'a>(cameras: &'a [CameraRow], edge: &str, address: &str) -> Vec<&'a str> {
    cameras
        .iter()
        .filter(|r| r.peer_id == edge)
        .filter(|r| {
            let c = &r.config;
            let source = c
                .onvif
                .as_ref()
                .map_or(c.url.as_str(), |o| o.xaddr.as_str());
            protocols::credential::host(source).as_deref() == Some(address)
                || source.strip_prefix("v4l2://") == Some(address)
        })
        .map(|r| r.config.id.as_str())
        .collect()
}

/// `GET /api/v1/cameras/discovered`.
pub(super) async fn list(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let (reports, devices, cameras) = state
        .db
        .call(|c| Ok((db::discovery_reports(c)?, db::devices(c)?, db::cameras(c)?)))
        .await
        .map_err(internal)?;
    let name = |peer: &str| {
        devices
            .iter()
            .find(|d| d.peer_id == peer)
            .map_or("", |d| d.name.as_str())
    };
    let edges: Vec<EdgeScan<'_>> = reports
        .iter()
        .map(|r| EdgeScan {
            edge: &r.peer_id,
            edge_name: name(&r.peer_id),
            edge_online: state.is_connected(&r.peer_id),
            enabled: r.report.enabled,
            scan_started_at_ms: r.report.started_at_ms,
            scan_finished_at_ms: r.report.finished_at_ms,
            received_at_ms: r.received_at_ms,
            scanned: &r.report.scanned,
            errors: &r.report.errors,
        })
        .collect();
    let found: Vec<Discovered<'_>> = reports
        .iter()
        .flat_map(|r| {
            r.report.findings.iter().map(|f| Discovered {
                edge: &r.peer_id,
                edge_name: name(&r.peer_id),
                finding: f,
                configured_as: configured_as(&cameras, &r.peer_id, &f.address),
            })
        })
        .collect();
    Ok(warp::reply::json(&serde_json::json!({ "edges": edges, "cameras": found })).into_response())
}

/// A scan body: which edge (all by default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    edge: Option<String>,
}

#[derive(Serialize)]
struct ScanOutcome {
    edge: String,
    edge_name: String,
    /// started | already_running | disabled | offline | no_answer
    outcome: &'static str,
}

/// `POST /api/v1/cameras/discover`: each edge (or the one named) scans now; the findings
/// arrive when its scan ends (`GET /api/v1/cameras/discovered`).
pub(super) async fn discover(
    state: Arc<VmState>,
    raw: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    let bad = |m: String| warp::reject::custom(ApiError::BadRequest(m));
    let body: ScanBody = if raw.iter().all(u8::is_ascii_whitespace) {
        ScanBody::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| bad(format!("{e}")))?
    };
    let devices = state.db.call(|c| db::devices(c)).await.map_err(internal)?;
    let chosen: Vec<DeviceRow> = match &body.edge {
        Some(e) => vec![
            super::cameras::pick_edge(&devices, Some(e))
                .map_err(bad)?
                .clone(),
        ],
        None => devices,
    };
    let mut out = Vec::new();
    for d in chosen {
        let outcome = match camera_ops::scan(&state, &d.peer_id).await {
            Ok(ScanAnswer::Started) => "started",
            Ok(ScanAnswer::AlreadyRunning) => "already_running",
            Ok(ScanAnswer::Disabled) => "disabled",
            Err(OpError::Offline) => "offline",
            Err(OpError::NoAnswer(e)) => {
                tracing::warn!(edge = %d.peer_id, error = %e, "scan request failed");
                "no_answer"
            }
        };
        tracing::info!(edge = %d.peer_id, outcome, "the owner asked for a camera scan");
        out.push(ScanOutcome {
            edge: d.peer_id,
            edge_name: d.name,
            outcome,
        });
    }
    Ok(warp::reply::with_status(
        warp::reply::json(&serde_json::json!({ "edges": out })),
        StatusCode::ACCEPTED,
    )
    .into_response())
}

/// `GET /api/v1/cameras/{id}/snapshot`: the age file of a JPEG of the camera's current
/// picture, with its time and size in headers.
pub(super) async fn snapshot(
    id: String,
    state: Arc<VmState>,
) -> Result<warp::reply::Response, Rejection> {
    super::cameras::check_camera_id(&id)?;
    let i = id.clone();
    let row = state
        .db
        .call(move |c| db::camera(c, &i))
        .await
        .map_err(internal)?
        .ok_or_else(|| warp::reject::custom(ApiError::NotFound(format!("no camera {id}"))))?;
    let answer = camera_ops::snapshot(&state, &row.peer_id, &id)
        .await
        .map_err(|e| match e {
            OpError::Offline => warp::reject::custom(ApiError::EdgeOffline(format!(
                "the edge of camera {id} is offline"
            ))),
            OpError::NoAnswer(m) => warp::reject::custom(ApiError::Edge(m)),
        })?;
    match answer {
        SnapshotAnswer::Sealed {
            taken_at_ms,
            width,
            height,
            key_ids,
            sealed,
        } => {
            let mut r = warp::reply::Response::new(sealed.into());
            let h = r.headers_mut();
            let v = |s: String| s.parse().expect("a header value of digits and ids");
            h.insert("content-type", v("application/octet-stream".into()));
            h.insert("x-guardian-taken-at-ms", v(taken_at_ms.to_string()));
            h.insert("x-guardian-width", v(width.to_string()));
            h.insert("x-guardian-height", v(height.to_string()));
            h.insert("x-guardian-key-ids", v(key_ids.join(",")));
            Ok(r)
        }
        SnapshotAnswer::Refused(SnapshotRefusal::NoSuchCamera(_)) => {
            Err(warp::reject::custom(ApiError::NotStreaming(format!(
                "the edge does not run camera {id} yet (its configuration is pending, or it is disabled)"
            ))))
        }
        SnapshotAnswer::Refused(r) => {
            Err(warp::reject::custom(ApiError::NotStreaming(r.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::cameras::tests::cfg;
    use protocols::messages::config::OnvifSource;

    #[test]
    fn configured_cameras_are_matched_by_their_host_on_their_edge() {
        let row = |id: &str, peer: &str, url: &str| {
            let mut config = cfg(id);
            config.url = url.into();
            CameraRow {
                config,
                peer_id: peer.into(),
                changed_revision: 1,
                updated_at_ms: 0,
            }
        };
        let mut onvif = row("door", "a", "");
        onvif.config.onvif = Some(OnvifSource {
            xaddr: "http://10.0.0.3:8080/onvif/device_service".into(),
            profile: None,
            substream_profile: None,
        });
        let rows = vec![
            row("porch", "a", "rtsp://10.0.0.3:8554/cam"),
            onvif,
            row("yard", "b", "rtsp://10.0.0.3/cam"),
            row("usb", "a", "v4l2:///dev/video0"),
        ];
        assert_eq!(configured_as(&rows, "a", "10.0.0.3"), ["porch", "door"]);
        assert_eq!(configured_as(&rows, "a", "/dev/video0"), ["usb"]);
        assert!(configured_as(&rows, "a", "10.0.0.4").is_empty());
    }
}
