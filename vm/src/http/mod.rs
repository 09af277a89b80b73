//! The owner's HTTP API (warp), described by `vm/openapi.yaml`.
//!
//! Everything under `/api/v1` needs `Authorization: Bearer <owner token>`; the owner token is
//! never taken from a query string. The clip of an event also takes `?token=` with a
//! playback token for that event (short-lived, like a presigned URL). `/metrics`
//! (Prometheus text format) needs the owner token too, unless `[http] metrics_listen` gives
//! it a listener of its own (loopback, no token), and then it is only there. Failed sign-ins
//! are logged and limited per address (`auth`). Every answer carries `Cache-Control:
//! no-store` (but a sealed thumbnail, which is immutable ciphertext named by its CID),
//! `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and `Referrer-Policy:
//! no-referrer`. Every error is a 4xx or 5xx with a JSON body `{"error": "<code>",
//! "message": "<what went wrong>"}` that never holds internal error text (that goes to the
//! log).
//!
//! This file holds the routes and the errors; `server` the accept loop (timeouts and
//! connection caps), `auth` the client address, the owner-token check and the sign-in
//! limit (inputs are parsed by `protocols::http`: one `Range` parser, one query parser);
//! the handlers are in `api` (devices, events,
//! thumbnails, health, metrics), `archive` (archive listing, manifests, objects), `clip`
//! (play tickets, the clip path), `key_slots` (the owner's signed key-slot list and what
//! each edge runs), `cameras` (camera configuration owned by the vm, with live state) and
//! `discovery` (cameras the edges found, a scan now, a camera's sealed current picture),
//! `alerts` (rules, the mode, the notifications), `wg` (the WireGuard overlay and the owner's
//! devices on it) and `proxy` (an edge's JSON API through the overlay).

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::access::Principal;
use crate::state::VmState;

mod alerts;
mod api;

pub use alerts::set_mode;
mod archive;
pub mod auth;
mod cameras;
mod clip;
mod discovery;
mod key_slots;
mod proxy;
mod review;
pub mod server;
mod users;
mod wg;

pub use protocols::http::query::MAX_LIMIT;
use protocols::http::query::{self, Listing};

/// The raw query string ("" when there is none).
fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// A listing's query (`camera`, `since`, `limit`), parsed and bounded once; 400 otherwise.
fn listing_query() -> impl Filter<Extract = (Listing,), Error = Rejection> + Clone {
    raw_query().and_then(|raw: String| async move {
        query::listing(&raw).map_err(|e| warp::reject::custom(ApiError::BadRequest(e.to_string())))
    })
}

/// The review timeline's query, parsed and bounded once; 400 otherwise.
fn review_query()
-> impl Filter<Extract = (protocols::http::query::Review,), Error = Rejection> + Clone {
    raw_query().and_then(|raw: String| async move {
        query::review(&raw).map_err(|e| warp::reject::custom(ApiError::BadRequest(e.to_string())))
    })
}

/// The clip path's `?token=`; 400 for anything else.
fn token_query() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    raw_query().and_then(|raw: String| async move {
        query::token(&raw).map_err(|e| warp::reject::custom(ApiError::BadRequest(e.to_string())))
    })
}

#[derive(Debug)]
pub(crate) enum ApiError {
    Unauthorized,
    /// Signed in, but the role or camera list does not allow it.
    Forbidden(String),
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Unavailable(String),
    EdgeOffline(String),
    Edge(String),
    /// The camera gives no picture now (not running, not streaming).
    NotStreaming(String),
    RangeNotSatisfiable(u64),
    /// The WireGuard overlay does not run at this vm.
    OverlayOff(String),
    /// Too many failed sign-ins from the address: retry after this many seconds.
    TooManyAttempts(u64),
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

/// Every route of the API listener, with errors turned into JSON bodies and the headers
/// every answer carries. `/metrics` is among them (behind the owner token) unless
/// `[http] metrics_listen` names its own listener.
pub fn routes(
    state: Arc<VmState>,
    sign_in: Arc<auth::SignIn>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    // `auth`: an admin; `member`: anyone signed in, with who they are (answers are scoped to
    // their cameras); `anyone`: anyone signed in.
    let auth = auth::owner(state.clone(), sign_in.clone());
    let member = auth::principal(state.clone(), sign_in.clone());
    let anyone = auth::signed_in(state.clone(), sign_in.clone());
    let metrics_here = state.config.http.metrics_listen.is_empty();

    let devices = warp::path!("api" / "v1" / "devices")
        .and(warp::get())
        .and(anyone.clone())
        .and_then(api::list_devices);
    let events = warp::path!("api" / "v1" / "events")
        .and(warp::get())
        .and(member.clone())
        .and(listing_query())
        .and_then(api::list_events);
    let health = warp::path!("api" / "v1" / "health")
        .and(warp::get())
        .and(anyone.clone())
        .and_then(api::get_health);
    let archive_list = warp::path!("api" / "v1" / "archive")
        .and(warp::get())
        .and(member.clone())
        .and(listing_query())
        .and_then(archive::list_archive);
    let archive_manifest = warp::path!("api" / "v1" / "archive" / String / "manifest")
        .and(warp::get())
        .and(member.clone())
        .and_then(archive::get_manifest);
    let archive_object = warp::path!("api" / "v1" / "archive" / String)
        .and(warp::get())
        .and(member.clone())
        .and(warp::header::optional::<String>("range"))
        .and_then(archive::get_object);
    let play = warp::path!("api" / "v1" / "events" / String / "play")
        .and(warp::post())
        .and(member.clone())
        .and(clip::small_body())
        .and_then(
            |id: String, state: Arc<VmState>, p: Principal, body: bytes::Bytes| async move {
                review::visible_event(&state, &p, &id).await?;
                clip::post_play(id, state, body).await
            },
        );
    let clip = warp::path!("api" / "v1" / "events" / String / "clip")
        .and(warp::get())
        .and(with_state.clone())
        .and(auth::client(sign_in.clone()))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("cookie"))
        .and(token_query())
        .and(warp::header::optional::<String>("range"))
        .and_then(clip::get_clip);
    let thumbnail = warp::path!("api" / "v1" / "events" / String / "thumbnail")
        .and(warp::get())
        .and(member.clone())
        .and_then(|id: String, state: Arc<VmState>, p: Principal| async move {
            review::visible_event(&state, &p, &id).await?;
            api::get_thumbnail(id, state).await
        });
    let key_slots_get = warp::path!("api" / "v1" / "key-slots")
        .and(warp::get())
        .and(anyone.clone())
        .and_then(key_slots::get_key_slots);
    let key_slots_put = warp::path!("api" / "v1" / "key-slots")
        .and(warp::put())
        .and(auth.clone())
        .and(warp::body::content_length_limit(key_slots::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(key_slots::put_key_slots);
    let cameras_get = warp::path!("api" / "v1" / "cameras")
        .and(warp::get())
        .and(member.clone())
        .and_then(cameras::list);
    let camera_put = warp::path!("api" / "v1" / "cameras" / String)
        .and(warp::put())
        .and(auth.clone())
        .and(warp::body::content_length_limit(cameras::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(cameras::put);
    let camera_delete = warp::path!("api" / "v1" / "cameras" / String)
        .and(warp::delete())
        .and(auth.clone())
        .and_then(cameras::delete);
    let discovered = warp::path!("api" / "v1" / "cameras" / "discovered")
        .and(warp::get())
        .and(auth.clone())
        .and_then(discovery::list);
    // The body is optional (`{"edge": ...}`): a POST without one scans on every edge.
    let discover = warp::path!("api" / "v1" / "cameras" / "discover")
        .and(warp::post())
        .and(auth.clone())
        .and(
            warp::body::content_length_limit(discovery::MAX_BODY)
                .and(warp::body::bytes())
                .or(warp::header::optional::<String>("content-length").and_then(
                    |l: Option<String>| async move {
                        match l {
                            None => Ok(bytes::Bytes::new()),
                            Some(_) => Err(warp::reject::custom(ApiError::BadRequest(
                                "the body is too large".into(),
                            ))),
                        }
                    },
                ))
                .unify(),
        )
        .and_then(discovery::discover);
    let snapshot = warp::path!("api" / "v1" / "cameras" / String / "snapshot")
        .and(warp::get())
        .and(member.clone())
        .and_then(|id: String, state: Arc<VmState>, p: Principal| async move {
            if !p.may_see(&id) {
                return Err(warp::reject::custom(ApiError::NotFound(format!(
                    "no camera {id}"
                ))));
            }
            discovery::snapshot(id, state).await
        });
    let rules_get = warp::path!("api" / "v1" / "alerts" / "rules")
        .and(warp::get())
        .and(anyone.clone())
        .and_then(alerts::get_rules);
    let rules_put = warp::path!("api" / "v1" / "alerts" / "rules")
        .and(warp::put())
        .and(auth.clone())
        .and(warp::body::content_length_limit(alerts::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(alerts::put_rules);
    let mode_get = warp::path!("api" / "v1" / "mode")
        .and(warp::get())
        .and(anyone.clone())
        .and_then(alerts::get_mode);
    let mode_put = warp::path!("api" / "v1" / "mode")
        .and(warp::put())
        .and(auth.clone())
        .and(warp::body::content_length_limit(alerts::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(alerts::put_mode);
    let alerts_list = warp::path!("api" / "v1" / "alerts")
        .and(warp::get())
        .and(auth.clone())
        .and_then(alerts::list);
    let alert_routes = rules_get
        .or(rules_put)
        .unify()
        .or(mode_get)
        .unify()
        .or(mode_put)
        .unify()
        .or(alerts_list)
        .unify()
        .boxed();
    // Boxed: warp's nested types of every route together grow past the compiler's limits.
    let camera_routes = discovered
        .or(discover)
        .unify()
        .or(snapshot)
        .unify()
        .or(cameras_get)
        .unify()
        .or(camera_put)
        .unify()
        .or(camera_delete)
        .unify()
        .boxed();
    let session_post = warp::path!("api" / "v1" / "session")
        .and(warp::post())
        .and(with_state.clone())
        .and(auth::client(sign_in.clone()))
        .and(warp::body::content_length_limit(users::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(users::sign_in);
    let session_get = warp::path!("api" / "v1" / "session")
        .and(warp::get())
        .and(member.clone())
        .and_then(users::whoami);
    let session_delete = warp::path!("api" / "v1" / "session")
        .and(warp::delete())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("cookie"))
        .and_then(users::sign_out);
    let users_get = warp::path!("api" / "v1" / "users")
        .and(warp::get())
        .and(auth.clone())
        .and_then(users::list);
    let user_put = warp::path!("api" / "v1" / "users" / String)
        .and(warp::put())
        .and(auth.clone())
        .and(auth::client(sign_in.clone()))
        .and(warp::body::content_length_limit(users::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(users::put);
    let user_delete = warp::path!("api" / "v1" / "users" / String)
        .and(warp::delete())
        .and(auth.clone())
        .and_then(users::delete);
    let tenant = warp::path!("api" / "v1" / "tenant")
        .and(warp::get())
        .and(anyone.clone())
        .and_then(review::tenant);
    let review_list = warp::path!("api" / "v1" / "review")
        .and(warp::get())
        .and(member.clone())
        .and(review_query())
        .and_then(review::list);
    let review_days = warp::path!("api" / "v1" / "review" / "days")
        .and(warp::get())
        .and(member.clone())
        .and(review_query())
        .and_then(review::days);
    let reviewed = warp::path!("api" / "v1" / "events" / String / "reviewed")
        .and(warp::put())
        .and(member.clone())
        .and(warp::body::content_length_limit(users::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(review::set_reviewed);
    let event_get = warp::path!("api" / "v1" / "events" / String)
        .and(warp::get())
        .and(member.clone())
        .and_then(|id: String, state: Arc<VmState>, p: Principal| async move {
            let row = review::visible_event(&state, &p, &id).await?;
            Ok::<_, Rejection>(warp::reply::json(&row).into_response())
        });
    let telemetry = warp::path!("api" / "v1" / "devices" / String / "telemetry")
        .and(warp::get())
        .and(member.clone())
        .and(listing_query())
        .and_then(review::telemetry);
    let wg_get = warp::path!("api" / "v1" / "wg")
        .and(warp::get())
        .and(auth.clone())
        .and_then(wg::get);
    let wg_devices_get = warp::path!("api" / "v1" / "wg" / "devices")
        .and(warp::get())
        .and(auth.clone())
        .and_then(wg::list);
    let wg_devices_post = warp::path!("api" / "v1" / "wg" / "devices")
        .and(warp::post())
        .and(auth.clone())
        .and(warp::body::content_length_limit(wg::MAX_BODY))
        .and(warp::body::bytes())
        .and_then(wg::add);
    let wg_device_delete = warp::path!("api" / "v1" / "wg" / "devices" / String)
        .and(warp::delete())
        .and(auth.clone())
        .and_then(wg::delete);
    let rotate = warp::path!("api" / "v1" / "devices" / String / "overlay" / "rotate")
        .and(warp::post())
        .and(auth.clone())
        .and_then(|peer: String, state: Arc<VmState>| async move {
            check_peer_id(&peer)?;
            wg::rotate(peer, state).await
        });
    let proxy = warp::path!("api" / "v1" / "devices" / String / "proxy" / ..)
        .and(warp::path::tail())
        .and(warp::get())
        .and(auth.clone())
        .and(raw_query())
        .and(warp::header::optional::<String>("x-edge-authorization"))
        .and_then(
            |peer: String,
             tail: warp::path::Tail,
             state: Arc<VmState>,
             query: String,
             edge_auth: Option<String>| async move {
                check_peer_id(&peer)?;
                proxy::get(peer, tail, state, query, edge_auth).await
            },
        );
    let overlay_routes = wg_get
        .or(wg_devices_get)
        .unify()
        .or(wg_devices_post)
        .unify()
        .or(wg_device_delete)
        .unify()
        .or(rotate)
        .unify()
        .or(proxy)
        .unify()
        .boxed();
    let app_routes = session_post
        .or(session_get)
        .unify()
        .or(session_delete)
        .unify()
        .or(users_get)
        .unify()
        .or(user_put)
        .unify()
        .or(user_delete)
        .unify()
        .or(tenant)
        .unify()
        .or(review_list)
        .unify()
        .or(review_days)
        .unify()
        .or(reviewed)
        .unify()
        .or(telemetry)
        .unify()
        .or(event_get)
        .unify()
        .boxed();
    // Liveness for container health checks and load balancers: no token, and it says
    // nothing but that the process answers.
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and_then(move || async move {
            if metrics_here {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(auth.clone())
        .and_then(api::get_metrics);

    let core_routes = devices
        .or(events)
        .unify()
        .or(health)
        .unify()
        .or(archive_list)
        .unify()
        .or(archive_manifest)
        .unify()
        .boxed();
    let event_routes = archive_object
        .or(play)
        .unify()
        .or(clip)
        .unify()
        .or(thumbnail)
        .unify()
        .boxed();
    core_routes
        .or(event_routes)
        .unify()
        .or(key_slots_get.or(key_slots_put).unify())
        .unify()
        .or(camera_routes)
        .unify()
        .or(alert_routes)
        .unify()
        .or(app_routes)
        .unify()
        .or(overlay_routes)
        .unify()
        .or(metrics)
        .unify()
        .or(healthz)
        .unify()
        .or(guardian_web::routes().boxed())
        .unify()
        .recover(recover)
        .unify()
        .map(harden)
}

/// `/metrics` alone, without a token: for its own loopback listener (`[http] metrics_listen`).
pub fn metrics_routes(
    state: Arc<VmState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(warp::any().map(move || state.clone()))
        .and_then(api::get_metrics)
        .recover(recover)
        .unify()
        .map(harden)
}

/// The headers every answer carries: not stored by caches (unless the handler said how,
/// as the immutable sealed thumbnail does), not sniffed, not framed, no referrer.
fn harden(mut r: warp::reply::Response) -> warp::reply::Response {
    use warp::http::HeaderValue;
    use warp::http::header;
    let h = r.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

async fn recover(r: Rejection) -> Result<warp::reply::Response, Infallible> {
    let resp = if let Some(e) = r.find::<ApiError>() {
        match e {
            ApiError::Unauthorized => json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "sign in first: a session cookie, or the owner token as Authorization: Bearer <token>"
                    .into(),
            ),
            ApiError::Forbidden(m) => json_error(StatusCode::FORBIDDEN, "forbidden", m.clone()),
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
                tracing::warn!(error = %m, "request to the edge failed");
                json_error(StatusCode::BAD_GATEWAY, "edge_error", m.clone())
            }
            ApiError::OverlayOff(m) => {
                json_error(StatusCode::SERVICE_UNAVAILABLE, "overlay_off", m.clone())
            }
            ApiError::NotStreaming(m) => {
                json_error(StatusCode::SERVICE_UNAVAILABLE, "not_streaming", m.clone())
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
            ApiError::TooManyAttempts(secs) => {
                let mut r = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    format!("too many failed sign-ins from your address; try again in {secs} s"),
                );
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().expect("valid"));
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
    } else if r.find::<warp::reject::InvalidQuery>().is_some() {
        json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the query string is not valid for this path (unknown key, or a value out of range)"
                .into(),
        )
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
        // A rejection warp made (a missing or malformed header, say): its Debug text is
        // internal, so it goes to the debug log only.
        tracing::debug!(rejection = ?r, "request rejected");
        json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request is not valid for this path".into(),
        )
    };
    Ok(resp)
}

/// Refuses a path segment that is not a libp2p peer id.
pub(crate) fn check_peer_id(peer: &str) -> Result<(), Rejection> {
    match peer.parse::<libp2p::PeerId>() {
        Ok(_) => Ok(()),
        Err(_) => Err(warp::reject::custom(ApiError::BadRequest(format!(
            "{peer:?} is not a peer id"
        )))),
    }
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
