//! The owner's HTTP API (warp), described by `vm/openapi.yaml`.
//!
//! Everything under `/api/v1` needs `Authorization: Bearer <owner token>` (the clip of an
//! event also takes `?token=` with the owner token or a playback token for it); `/metrics`
//! (Prometheus text format) does not. Every error is a 4xx or 5xx with a JSON body
//! `{"error": "<code>", "message": "<what went wrong>"}`.
//!
//! This file holds the routes, the errors and the owner-token check; the handlers are in
//! `api` (devices, events, thumbnails, health, metrics), `archive` (archive listing, manifests,
//! objects), `clip` (play tickets, the clip path and its `Range` parsing) and `key_slots`
//! (the owner's signed key-slot list and what each edge runs).

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::state::VmState;

mod api;
mod archive;
mod clip;
mod key_slots;

pub use api::EventsQuery;
pub use clip::ClipQuery;

/// The most events one request returns.
pub const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;

#[derive(Debug)]
pub(crate) enum ApiError {
    Unauthorized,
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Unavailable(String),
    EdgeOffline(String),
    Edge(String),
    RangeNotSatisfiable(u64),
    Internal(String),
}

impl warp::reject::Reject for ApiError {}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
}

fn json_error(status: StatusCode, error: &'static str, message: String) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(&ErrorBody { error, message }), status)
        .into_response()
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Rejection {
    warp::reject::custom(ApiError::Internal(e.to_string()))
}

/// Every route, with errors turned into JSON bodies.
pub fn routes(
    state: Arc<VmState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let auth = with_state
        .clone()
        .and(warp::header::optional::<String>("authorization"))
        .and_then(|state: Arc<VmState>, header: Option<String>| async move {
            let token = header
                .as_deref()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim);
            match token {
                Some(t) if state.owner_token_matches(t) => Ok(state),
                _ => Err(warp::reject::custom(ApiError::Unauthorized)),
            }
        });

    let devices = warp::path!("api" / "v1" / "devices")
        .and(warp::get())
        .and(auth.clone())
        .and_then(api::list_devices);
    let events = warp::path!("api" / "v1" / "events")
        .and(warp::get())
        .and(auth.clone())
        .and(warp::query::<EventsQuery>())
        .and_then(api::list_events);
    let health = warp::path!("api" / "v1" / "health")
        .and(warp::get())
        .and(auth.clone())
        .and_then(api::get_health);
    let archive_list = warp::path!("api" / "v1" / "archive")
        .and(warp::get())
        .and(auth.clone())
        .and(warp::query::<EventsQuery>())
        .and_then(archive::list_archive);
    let archive_manifest = warp::path!("api" / "v1" / "archive" / String / "manifest")
        .and(warp::get())
        .and(auth.clone())
        .and_then(archive::get_manifest);
    let archive_object = warp::path!("api" / "v1" / "archive" / String)
        .and(warp::get())
        .and(auth.clone())
        .and(warp::header::optional::<String>("range"))
        .and_then(archive::get_object);
    let play = warp::path!("api" / "v1" / "events" / String / "play")
        .and(warp::post())
        .and(auth.clone())
        .and(clip::small_body())
        .and_then(clip::post_play);
    let clip = warp::path!("api" / "v1" / "events" / String / "clip")
        .and(warp::get())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::query::<ClipQuery>())
        .and(warp::header::optional::<String>("range"))
        .and_then(clip::get_clip);
    let thumbnail = warp::path!("api" / "v1" / "events" / String / "thumbnail")
        .and(warp::get())
        .and(auth.clone())
        .and_then(api::get_thumbnail);
    let key_slots_get = warp::path!("api" / "v1" / "key-slots")
        .and(warp::get())
        .and(auth.clone())
        .and_then(key_slots::get_key_slots);
    let key_slots_put = warp::path!("api" / "v1" / "key-slots")
        .and(warp::put())
        .and(auth.clone())
        .and(warp::body::content_length_limit(key_slots::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(key_slots::put_key_slots);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state)
        .and_then(api::get_metrics);

    devices
        .or(events)
        .unify()
        .or(health)
        .unify()
        .or(archive_list)
        .unify()
        .or(archive_manifest)
        .unify()
        .or(archive_object)
        .unify()
        .or(play)
        .unify()
        .or(clip)
        .unify()
        .or(thumbnail)
        .unify()
        .or(key_slots_get)
        .unify()
        .or(key_slots_put)
        .unify()
        .or(metrics)
        .unify()
        .recover(recover)
        .unify()
}

async fn recover(r: Rejection) -> Result<warp::reply::Response, Infallible> {
    let resp = if let Some(e) = r.find::<ApiError>() {
        match e {
            ApiError::Unauthorized => json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong owner token (Authorization: Bearer <token>)".into(),
            ),
            ApiError::BadRequest(m) => {
                json_error(StatusCode::BAD_REQUEST, "bad_request", m.clone())
            }
            ApiError::NotFound(m) => json_error(StatusCode::NOT_FOUND, "not_found", m.clone()),
            ApiError::Conflict(m) => json_error(StatusCode::CONFLICT, "conflict", m.clone()),
            ApiError::Unavailable(m) => {
                tracing::warn!(error = %m, "archive storage unavailable");
                json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the archive storage is unavailable; try again later".into(),
                )
            }
            ApiError::EdgeOffline(m) => {
                json_error(StatusCode::SERVICE_UNAVAILABLE, "edge_offline", m.clone())
            }
            ApiError::Edge(m) => {
                tracing::warn!(error = %m, "clip from the edge failed");
                json_error(StatusCode::BAD_GATEWAY, "edge_error", m.clone())
            }
            ApiError::RangeNotSatisfiable(total) => {
                let mut r = json_error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("the clip is {total} bytes"),
                );
                r.headers_mut().insert(
                    "content-range",
                    format!("bytes */{total}").parse().expect("valid"),
                );
                r
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "API request failed");
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the request failed on the server; see its log".into(),
                )
            }
        }
    } else if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        json_error(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is too large".into(),
        )
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        json_error(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "the body needs a Content-Length".into(),
        )
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this path does not take that method".into(),
        )
    } else if r.is_not_found() {
        json_error(StatusCode::NOT_FOUND, "not_found", "no such path".into())
    } else {
        json_error(StatusCode::BAD_REQUEST, "bad_request", format!("{r:?}"))
    };
    Ok(resp)
}

/// Refuses a path segment that is not an event id.
pub(crate) fn check_event_id(id: &str) -> Result<(), Rejection> {
    if protocols::messages::valid_id(id) {
        Ok(())
    } else {
        Err(warp::reject::custom(ApiError::BadRequest(format!(
            "{id:?} is not an event id"
        ))))
    }
}
