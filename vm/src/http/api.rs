//! `/api/v1/devices`, `/api/v1/events`, `/api/v1/events/{id}/thumbnail`, `/api/v1/health`
//! and `/metrics`.

use std::sync::Arc;

use serde::Serialize;
use warp::{Rejection, Reply};

use super::{ApiError, internal};
use crate::db;
use crate::health::EdgeHealth;
use crate::state::VmState;
use protocols::http::query::Listing;

#[derive(Serialize)]
struct DeviceView {
    #[serde(flatten)]
    device: db::DeviceRow,
    online: bool,
    /// Its WireGuard overlay as the vm's device sees it (all null without a tunnel).
    #[serde(flatten)]
    overlay: crate::overlay::status::EdgeOverlay,
    /// The overlay path the edge reported in its last telemetry (`udp`, `stream`), if any.
    overlay_path_reported: Option<String>,
}

#[derive(Serialize)]
struct DevicesBody {
    devices: Vec<DeviceView>,
}

pub(super) async fn list_devices(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let devices = state
        .db
        .call(|c| {
            db::devices(c)?
                .into_iter()
                .map(|d| {
                    let reported = db::latest_telemetry(c, &d.peer_id)?
                        .map(|t| t.overlay_path)
                        .filter(|p| !p.is_empty());
                    Ok((d, reported))
                })
                .collect::<Result<Vec<_>, db::DbError>>()
        })
        .await
        .map_err(internal)?;
    let mut overlay = crate::overlay::status::edges(&state)
        .await
        .map_err(internal)?;
    let devices = devices
        .into_iter()
        .map(|(d, reported)| DeviceView {
            online: state.is_connected(&d.peer_id),
            overlay: overlay.remove(&d.peer_id).unwrap_or_default(),
            overlay_path_reported: reported,
            device: d,
        })
        .collect();
    Ok(warp::reply::json(&DevicesBody { devices }).into_response())
}

#[derive(Serialize)]
struct EventsBody {
    events: Vec<db::EventRow>,
    next_since: Option<u64>,
}

/// `GET /api/v1/events/{id}/thumbnail`: the sealed thumbnail as the edge sent it (an age
/// file the owner's key opens), named by its CID in `ETag`; it never changes.
pub(super) async fn get_thumbnail(
    event_id: String,
    state: Arc<VmState>,
) -> Result<warp::reply::Response, Rejection> {
    super::check_event_id(&event_id)?;
    let id = event_id.clone();
    let row = state
        .db
        .call(move |c| db::thumbnail(c, &id))
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            warp::reject::custom(ApiError::NotFound(format!(
                "event {event_id} has no thumbnail at the vm"
            )))
        })?;
    let mut r = warp::reply::Response::new(row.sealed.into());
    let h = r.headers_mut();
    h.insert(
        "content-type",
        warp::http::HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = warp::http::HeaderValue::from_str(&format!("\"{}\"", row.cid)) {
        h.insert("etag", v);
    }
    h.insert(
        "cache-control",
        warp::http::HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    Ok(r)
}

pub(super) async fn list_events(
    state: Arc<VmState>,
    p: crate::access::Principal,
    q: Listing,
) -> Result<warp::reply::Response, Rejection> {
    let Listing {
        camera,
        since,
        limit,
    } = q;
    let events = state
        .db
        .call(move |c| db::events(c, camera.as_deref(), since, limit))
        .await
        .map_err(internal)?;
    let next_since = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.started_at_ms))
        .flatten();
    // A viewer's page may hold fewer rows than `limit`; `next_since` still pages on.
    let mut events = events;
    events.retain(|e| p.may_see(&e.camera_id));
    Ok(warp::reply::json(&EventsBody { events, next_since }).into_response())
}

#[derive(Serialize)]
struct EdgeHealthView {
    peer_id: String,
    name: String,
    #[serde(flatten)]
    health: EdgeHealth,
}

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    tenant_id: String,
    uptime_secs: u64,
    edges: Vec<EdgeHealthView>,
    /// Archived objects S3 did not show at the last check (kept, checked again).
    archive_quarantined: Vec<db::Quarantined>,
    /// Multipart uploads left open that could not be aborted, and parts on the embedded
    /// server's disk that no upload writes.
    archive_stray_uploads: StrayUploads,
    /// Cameras whose last archive did not fit their quota.
    archive_over_quota: Vec<db::OverQuota>,
    /// Events S3 holds without index rows that could not be re-indexed (last check).
    archive_unindexed: Vec<db::Unindexed>,
}

#[derive(Serialize)]
struct StrayUploads {
    /// Journaled uploads whose abort failed (tried again at every reconciliation).
    unaborted: Vec<db::JournaledUpload>,
    /// Parts on the embedded server's disk.
    parts: crate::storage::StrayParts,
}

pub(super) async fn get_health(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let edges = state.edge_health().await.map_err(internal)?;
    let (quarantined, unaborted, over_quota, unindexed) = state
        .db
        .call(|c| {
            Ok((
                db::quarantined_objects(c)?,
                db::journaled_uploads(c)?
                    .into_iter()
                    .filter(|u| u.abort_error.is_some())
                    .collect::<Vec<_>>(),
                db::over_quota(c)?,
                db::unindexed(c)?,
            ))
        })
        .await
        .map_err(internal)?;
    let parts = state.storage.embedded_stray_parts();
    let status = if edges.iter().all(|e| e.1.issues.is_empty())
        && quarantined.is_empty()
        && unaborted.is_empty()
        && parts.uploads == 0
        && over_quota.is_empty()
        && unindexed.is_empty()
    {
        "ok"
    } else {
        "degraded"
    };
    let body = HealthBody {
        status,
        tenant_id: state.config.tenant_id.clone(),
        uptime_secs: state.uptime_secs(),
        edges: edges
            .into_iter()
            .map(|(d, health)| EdgeHealthView {
                peer_id: d.peer_id,
                name: d.name,
                health,
            })
            .collect(),
        archive_quarantined: quarantined,
        archive_stray_uploads: StrayUploads { unaborted, parts },
        archive_over_quota: over_quota,
        archive_unindexed: unindexed,
    };
    Ok(warp::reply::json(&body).into_response())
}

pub(super) async fn get_metrics(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let text = state.metrics_text().await.map_err(internal)?;
    Ok(warp::reply::with_header(
        text,
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    .into_response())
}
