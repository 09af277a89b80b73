//! `/api/v1/devices`, `/api/v1/events`, `/api/v1/events/{id}/thumbnail`, `/api/v1/health`
//! and `/metrics`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::{Rejection, Reply};

use super::{ApiError, DEFAULT_LIMIT, MAX_LIMIT, internal};
use crate::db;
use crate::health::EdgeHealth;
use crate::state::VmState;

#[derive(Serialize)]
struct DeviceView {
    #[serde(flatten)]
    device: db::DeviceRow,
    online: bool,
}

#[derive(Serialize)]
struct DevicesBody {
    devices: Vec<DeviceView>,
}

pub(super) async fn list_devices(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let devices = state.db.call(|c| db::devices(c)).await.map_err(internal)?;
    let devices = devices
        .into_iter()
        .map(|d| DeviceView {
            online: state.is_connected(&d.peer_id),
            device: d,
        })
        .collect();
    Ok(warp::reply::json(&DevicesBody { devices }).into_response())
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub(super) camera: Option<String>,
    pub(super) since: Option<u64>,
    pub(super) limit: Option<u32>,
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

pub(super) fn check_query(q: &EventsQuery) -> Result<u32, Rejection> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(warp::reject::custom(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        ))));
    }
    if let Some(c) = &q.camera
        && !protocols::messages::valid_id(c)
    {
        return Err(warp::reject::custom(ApiError::BadRequest(format!(
            "camera {c:?} is not a camera id (a-z, 0-9, -)"
        ))));
    }
    Ok(limit)
}

pub(super) async fn list_events(
    state: Arc<VmState>,
    q: EventsQuery,
) -> Result<warp::reply::Response, Rejection> {
    let limit = check_query(&q)?;
    let since = q.since.unwrap_or(0);
    let camera = q.camera.clone();
    let events = state
        .db
        .call(move |c| db::events(c, camera.as_deref(), since, limit))
        .await
        .map_err(internal)?;
    let next_since = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.started_at_ms))
        .flatten();
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
}

pub(super) async fn get_health(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let edges = state.edge_health().await.map_err(internal)?;
    let quarantined = state
        .db
        .call(|c| db::quarantined_objects(c))
        .await
        .map_err(internal)?;
    let status = if edges.iter().all(|e| e.1.issues.is_empty()) && quarantined.is_empty() {
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
