//! What the web app reads beside the older endpoints: `GET /api/v1/review` (the timeline,
//! newest first), `GET /api/v1/review/days` (the calendar), `PUT /api/v1/events/{id}/reviewed`,
//! `GET /api/v1/tenant` (what the page needs to derive keys) and
//! `GET /api/v1/devices/{peer_id}/telemetry` (the plots). Every answer is scoped to the
//! cameras the asker may see.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::{Rejection, Reply};

use super::{ApiError, check_event_id, internal};
use crate::access::Principal;
use crate::db;
use crate::history;
use crate::state::VmState;
use protocols::http::query::Review;

#[derive(Serialize)]
struct ReviewBody {
    events: Vec<db::EventRow>,
    next_before: Option<u64>,
}

fn filter(q: &Review, p: &Principal) -> db::ReviewFilter {
    db::ReviewFilter {
        camera: q.camera.clone(),
        label: q.label.clone(),
        reviewed: q.reviewed,
        before: q.before,
        after: q.after,
        allowed: p.cameras.clone(),
    }
}

/// `GET /api/v1/review`.
pub(super) async fn list(
    state: Arc<VmState>,
    p: Principal,
    q: Review,
) -> Result<warp::reply::Response, Rejection> {
    let f = filter(&q, &p);
    let limit = q.limit;
    let events = state
        .db
        .call(move |c| db::review(c, &f, limit))
        .await
        .map_err(internal)?;
    let next_before = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.started_at_ms))
        .flatten();
    Ok(warp::reply::json(&ReviewBody {
        events,
        next_before,
    })
    .into_response())
}

/// The most events the calendar counts.
const CALENDAR_CAP: u32 = 100_000;

#[derive(Serialize)]
struct DaysBody {
    time_zone: String,
    days: Vec<history::Day>,
}

/// `GET /api/v1/review/days` (takes the timeline's filters but its time bounds).
pub(super) async fn days(
    state: Arc<VmState>,
    p: Principal,
    q: Review,
) -> Result<warp::reply::Response, Rejection> {
    let f = db::ReviewFilter {
        before: None,
        after: None,
        ..filter(&q, &p)
    };
    let times = state
        .db
        .call(move |c| db::review_times(c, &f, CALENDAR_CAP))
        .await
        .map_err(internal)?;
    let tz = state.config.alerts.tz().map_err(internal)?;
    Ok(warp::reply::json(&DaysBody {
        time_zone: state.config.alerts.time_zone.clone(),
        days: history::days(&times, &tz),
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewedBody {
    reviewed: bool,
}

/// The event's camera, or 404 (also when the asker may not see it: its existence is not
/// told).
pub(super) async fn visible_event(
    state: &VmState,
    p: &Principal,
    event_id: &str,
) -> Result<db::EventRow, Rejection> {
    check_event_id(event_id)?;
    let id = event_id.to_owned();
    state
        .db
        .call(move |c| db::event(c, &id))
        .await
        .map_err(internal)?
        .filter(|e| p.may_see(&e.camera_id))
        .ok_or_else(|| warp::reject::custom(ApiError::NotFound(format!("no event {event_id}"))))
}

/// `PUT /api/v1/events/{id}/reviewed`.
pub(super) async fn set_reviewed(
    event_id: String,
    state: Arc<VmState>,
    p: Principal,
    body: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    let b: ReviewedBody = serde_json::from_slice(&body).map_err(|_| {
        warp::reject::custom(ApiError::BadRequest(
            "expected {\"reviewed\": true|false}".into(),
        ))
    })?;
    visible_event(&state, &p, &event_id).await?;
    let at = b.reviewed.then(|| state.clock.wall_ms());
    let id = event_id.clone();
    state
        .db
        .call(move |c| db::set_reviewed(c, &id, at))
        .await
        .map_err(internal)?;
    Ok(warp::reply::json(&serde_json::json!({
        "event_id": event_id,
        "reviewed_at_ms": at,
    }))
    .into_response())
}

#[derive(Serialize)]
struct TenantBody {
    tenant_id: String,
    kdf: protocols::owner_key::KdfParams,
    /// The owner's recipient the edges seal to (the latest install package's).
    owner_recipient: Option<String>,
    owner_key_id: Option<String>,
    owner_signing_key: Option<String>,
    owner_signing_fingerprint: Option<String>,
    served_by: &'static str,
    bundle_sha256: String,
    time_zone: String,
}

/// `GET /api/v1/tenant`.
pub(super) async fn tenant(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let (kdf, recipient, signing) = state
        .db
        .call(|c| {
            Ok((
                db::tenant_kdf_json(c)?,
                db::latest_owner_recipient(c)?,
                db::owner_signing_key(c)?,
            ))
        })
        .await
        .map_err(internal)?;
    let kdf: protocols::owner_key::KdfParams = serde_json::from_str(&kdf).map_err(internal)?;
    let signing_key = signing
        .as_deref()
        .and_then(|s| protocols::signed::parse_public_key(s).ok());
    Ok(warp::reply::json(&TenantBody {
        tenant_id: state.config.tenant_id.clone(),
        kdf,
        owner_key_id: recipient.as_deref().map(protocols::owner_key::key_id),
        owner_recipient: recipient,
        owner_signing_key: signing_key.map(|k| data_encoding::HEXLOWER.encode(k.as_bytes())),
        owner_signing_fingerprint: signing_key
            .map(|k| protocols::signed::fingerprint(k.as_bytes())),
        served_by: "vm",
        bundle_sha256: guardian_web::bundle_sha256(),
        time_zone: state.config.alerts.time_zone.clone(),
    })
    .into_response())
}

#[derive(Serialize)]
struct CameraSample {
    camera_id: String,
    state: protocols::messages::telemetry::CameraState,
    fps_milli: u32,
}

#[derive(Serialize)]
struct Sample {
    at_ms: u64,
    cpu_milli: u16,
    mem_used_bytes: u64,
    mem_total_bytes: u64,
    disk_used_bytes: u64,
    disk_free_bytes: u64,
    archive_backlog_objects: u64,
    archive_backlog_bytes: u64,
    event_backlog: u64,
    /// The slowest camera's smoothed detector time (`None`: no look reported).
    detector_ms: Option<u32>,
    cameras: Vec<CameraSample>,
}

#[derive(Serialize)]
struct TelemetryBody {
    peer_id: String,
    interval_secs: u32,
    samples: Vec<Sample>,
    offline: Vec<history::Offline>,
}

/// `GET /api/v1/devices/{peer_id}/telemetry?since=&limit=`: the edge's reports, oldest
/// first, and the periods it was offline (gaps over the offline limit). A viewer sees only its
/// cameras in them.
pub(super) async fn telemetry(
    peer_id: String,
    state: Arc<VmState>,
    p: Principal,
    q: protocols::http::query::Listing,
) -> Result<warp::reply::Response, Rejection> {
    if peer_id.len() > 128 || !peer_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(warp::reject::custom(ApiError::BadRequest(
            "not a peer id".into(),
        )));
    }
    let (peer, since, limit) = (peer_id.clone(), q.since, q.limit);
    let (known, rows) = state
        .db
        .call(move |c| {
            let known = db::devices(c)?.iter().any(|d| d.peer_id == peer);
            Ok((known, db::telemetry_history(c, &peer, since, limit)?))
        })
        .await
        .map_err(internal)?;
    if !known {
        return Err(warp::reject::custom(ApiError::NotFound(format!(
            "no edge {peer_id}"
        ))));
    }
    let cfg = &state.config.telemetry;
    // Reports are stamped by the edge; offline periods come from when the vm received them.
    let received: Vec<u64> = rows.iter().map(|(r, _)| *r).collect();
    let offline = history::offline(
        &received,
        cfg.offline_after_secs * 1000,
        state.clock.wall_ms(),
    );
    let samples = rows
        .into_iter()
        .map(|(_, r)| Sample {
            at_ms: r.at_ms,
            cpu_milli: r.cpu_milli,
            mem_used_bytes: r.mem_used_bytes,
            mem_total_bytes: r.mem_total_bytes,
            disk_used_bytes: r.disk_used_bytes,
            disk_free_bytes: r.disk_free_bytes,
            archive_backlog_objects: r.archive_backlog_objects,
            archive_backlog_bytes: r.archive_backlog_bytes,
            event_backlog: r.event_backlog,
            detector_ms: r
                .cameras
                .iter()
                .map(|c| c.detect_ms)
                .filter(|ms| *ms > 0)
                .max(),
            cameras: r
                .cameras
                .into_iter()
                .filter(|c| p.may_see(&c.camera_id))
                .map(|c| CameraSample {
                    camera_id: c.camera_id,
                    state: c.state,
                    fps_milli: c.fps_milli,
                })
                .collect(),
        })
        .collect();
    Ok(warp::reply::json(&TelemetryBody {
        peer_id,
        interval_secs: cfg.interval_secs,
        samples,
        offline,
    })
    .into_response())
}
