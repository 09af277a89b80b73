//! The owner's web app and a local API on the LAN (`[http] listen` in edge.toml), so the home
//! still works when its internet is down. Off unless `listen` is set.
//!
//! - `/` and `/assets/...`: the web app (`guardian_web::routes()`, its CSP and headers).
//! - `/api/v1/...`: the paths and JSON shapes of the vm's API (`docs/web.md`) where the edge
//!   has the data: `session` (sign-in with the local admin token or a synced user's
//!   password; the `guardian_session` cookie, HttpOnly and SameSite=Strict), `tenant`
//!   (`served_by: "edge"`), `review` (this edge's events, newest first), an event's sealed
//!   `thumbnail` and `clip` (from disk, one `Range`; 409 while it is being recorded),
//!   `cameras` (configured, with live state) and `health` (the vm link, disk, backlogs).
//!   Every endpoint takes the cookie or `Authorization: Bearer <local admin token>`; a viewer
//!   sees only its cameras.
//!
//! Only addresses in `[http] allow` connect ([`allow`]); connections are capped and every
//! read has a deadline ([`server`]); failed sign-ins are limited per address and per user,
//! answered 429 with `Retry-After` ([`auth`]). Every answer carries `Cache-Control: no-store`
//! (unless it said otherwise), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and
//! `Referrer-Policy: no-referrer`; every error is JSON `{"error", "message"}`. Nothing here
//! decrypts: thumbnails and clips leave as the sealed files the owner's key opens.
//!
//! Layers: `mod` (state, routes, errors) → `api` (handlers) → `auth`, `server`, `allow`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use guardian_node::clock::SharedClock;
use guardian_node::shutdown::Shutdown;
use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::data_dir::Installed;
use crate::store::Db;
use crate::video::camera::StatusBoard;
use crate::video::finish::LiveEvents;

pub mod allow;
mod api;
pub mod auth;
pub mod server;

use auth::{Failures, Holder, Principal, Sessions};

/// Failed sign-ins an address may make per minute.
pub const FAILURES_PER_ADDRESS: u32 = 5;
/// Failed sign-ins a user name may take per minute (from any address).
pub const FAILURES_PER_USER: u32 = 10;
/// The caps and timeouts of the listener.
pub const LIMITS: server::Limits = server::Limits {
    max_connections: 64,
    max_per_address: 16,
    header_read_timeout: Duration::from_secs(10),
    body_timeout: Duration::from_secs(10),
};

/// What the LAN API serves from.
pub struct Lan {
    data: PathBuf,
    info: protocols::package::PackageInfo,
    edge_peer_id: String,
    db: Db,
    status: StatusBoard,
    live: LiveEvents,
    clock: SharedClock,
    session_ttl: Duration,
    sessions: Mutex<Sessions>,
    address_failures: Mutex<Failures<IpAddr>>,
    user_failures: Mutex<Failures<String>>,
    verify: tokio::sync::Semaphore,
    sampler: Mutex<crate::telemetry::Sampler>,
    started: std::time::Instant,
}

impl Lan {
    /// The LAN API of `installed`, over its database, the cameras' statuses and the events
    /// being recorded.
    pub fn new(
        installed: &Installed,
        db: Db,
        status: StatusBoard,
        live: LiveEvents,
        clock: SharedClock,
    ) -> Arc<Lan> {
        Lan::with(
            installed.data.clone(),
            installed.info.clone(),
            installed.peer_id(),
            installed.config.http.session_hours,
            db,
            status,
            live,
            clock,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn with(
        data: PathBuf,
        info: protocols::package::PackageInfo,
        edge_peer_id: String,
        session_hours: u32,
        db: Db,
        status: StatusBoard,
        live: LiveEvents,
        clock: SharedClock,
    ) -> Arc<Lan> {
        let minute = Duration::from_secs(60);
        let session_ttl = Duration::from_secs(u64::from(session_hours) * 3600);
        Arc::new(Lan {
            sampler: Mutex::new(crate::telemetry::Sampler::new(&data)),
            data,
            info,
            edge_peer_id,
            db,
            status,
            live,
            session_ttl,
            sessions: Mutex::new(Sessions::new(session_ttl)),
            address_failures: Mutex::new(Failures::new(FAILURES_PER_ADDRESS, minute)),
            user_failures: Mutex::new(Failures::new(FAILURES_PER_USER, minute)),
            verify: tokio::sync::Semaphore::new(auth::VERIFY_AT_ONCE),
            started: clock.monotonic(),
            clock,
        })
    }

    fn blocked(&self, ip: IpAddr) -> Result<(), Rejection> {
        let now = self.clock.monotonic();
        match self
            .address_failures
            .lock()
            .expect("failures")
            .blocked(&ip, now)
        {
            Some(wait) => Err(warp::reject::custom(ApiError::TooManyAttempts(
                wait.as_secs().max(1),
            ))),
            None => Ok(()),
        }
    }

    /// Counts a failed sign-in from `ip` (and against `user`, when named) and gives the 401.
    fn refuse(&self, ip: IpAddr, user: Option<&str>, what: &'static str) -> Rejection {
        let now = self.clock.monotonic();
        let limited = self
            .address_failures
            .lock()
            .expect("failures")
            .failed(&ip, now);
        let user_limited = user.is_some_and(|u| {
            self.user_failures
                .lock()
                .expect("failures")
                .failed(&u.to_owned(), now)
        });
        if limited {
            tracing::warn!(client = %ip, "failed LAN sign-ins: the address is refused for a minute");
        } else if user_limited {
            tracing::warn!(client = %ip, user = user.unwrap_or(""), "failed LAN sign-ins: the user is refused for a minute");
        } else {
            tracing::warn!(client = %ip, user = user.unwrap_or(""), what, "failed LAN sign-in");
        }
        warp::reject::custom(ApiError::Unauthorized)
    }

    /// Who holds session `secret` now (the user as stored now), or none.
    async fn session_principal(&self, secret: &str) -> Result<Option<(Principal, u64)>, Rejection> {
        let now = self.clock.wall_ms();
        let Some(session) = self.sessions.lock().expect("sessions").get(secret, now) else {
            return Ok(None);
        };
        let principal = match &session.holder {
            Holder::LocalAdmin { token_hash } => (crate::local_token::stored(&self.data).as_ref()
                == Some(token_hash))
            .then(Principal::local_admin),
            Holder::User { name, password_phc } => {
                let n = name.clone();
                let user = self.db.call(move |s| s.user(&n)).await.map_err(internal)?;
                user.filter(|u| &u.password_phc == password_phc)
                    .map(|u| Principal {
                        name: u.name,
                        role: u.role,
                        cameras: u.cameras,
                    })
            }
        };
        if principal.is_none() {
            // The user was removed, their password or the local token changed.
            self.sessions.lock().expect("sessions").end(secret);
        }
        Ok(principal.map(|p| (p, session.expires_at_ms)))
    }
}

/// Who is asking: the principal, and the end of its session (none for a bearer token).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: Principal,
    pub expires_at_ms: Option<u64>,
}

/// The client's address (the connection's; the LAN has no trusted proxy); 429 when it failed
/// to sign in too often.
fn client(lan: Arc<Lan>) -> impl Filter<Extract = (IpAddr,), Error = Rejection> + Clone {
    warp::ext::optional::<server::ClientAddr>().and_then(move |addr: Option<server::ClientAddr>| {
        let lan = lan.clone();
        async move {
            let ip = addr
                .map(|a| a.0.ip())
                .unwrap_or(IpAddr::from([127, 0, 0, 1]));
            lan.blocked(ip)?;
            Ok::<_, Rejection>(ip)
        }
    })
}

/// The caller: the local admin token as `Authorization: Bearer`, or the session cookie; 401
/// otherwise (a wrong token counts as a failed sign-in; no credentials at all does not).
fn caller(lan: Arc<Lan>) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    client(lan.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("cookie"))
        .and_then(
            move |ip: IpAddr, authorization: Option<String>, cookie: Option<String>| {
                let lan = lan.clone();
                async move {
                    if let Some(h) = authorization.as_deref() {
                        let stored = crate::local_token::stored(&lan.data);
                        return match (auth::bearer(Some(h)), stored) {
                            (Some(t), Some(s)) if crate::local_token::matches(&s, t) => {
                                Ok(Caller {
                                    principal: Principal::local_admin(),
                                    expires_at_ms: None,
                                })
                            }
                            (Some(_), _) => Err(lan.refuse(ip, None, "local admin token")),
                            (None, _) => Err(warp::reject::custom(ApiError::Unauthorized)),
                        };
                    }
                    if let Some(secret) = auth::session_cookie(cookie.as_deref())
                        && let Some((principal, end)) = lan.session_principal(secret).await?
                    {
                        return Ok(Caller {
                            principal,
                            expires_at_ms: Some(end),
                        });
                    }
                    Err(warp::reject::custom(ApiError::Unauthorized))
                }
            },
        )
}

/// Binds `[http] listen` and serves the web app and the LAN API until `stop`. The listener
/// is bound before this returns (an error says why it cannot be).
pub async fn start(
    lan: Arc<Lan>,
    listen: &str,
    allow: &[String],
    stop: Shutdown,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("http.listen {listen:?} is not an address and port"))?;
    let networks = allow::Networks::parse(allow)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ([http] listen)"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(server::serve(listener, routes(lan), networks, LIMITS, stop));
    Ok((bound, task))
}

/// Every route: the web app, the API, errors as JSON, the headers of every answer.
pub fn routes(
    lan: Arc<Lan>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_lan = {
        let lan = lan.clone();
        warp::any().map(move || lan.clone())
    };
    let who = caller(lan.clone());
    let session_post = warp::path!("api" / "v1" / "session")
        .and(warp::post())
        .and(with_lan.clone())
        .and(client(lan.clone()))
        .and(warp::body::content_length_limit(4096))
        .and(warp::body::bytes())
        .and_then(api::sign_in);
    let session_get = warp::path!("api" / "v1" / "session")
        .and(warp::get())
        .and(who.clone())
        .and_then(api::session);
    let session_delete = warp::path!("api" / "v1" / "session")
        .and(warp::delete())
        .and(with_lan.clone())
        .and(warp::header::optional::<String>("cookie"))
        .and_then(api::sign_out);
    let tenant = warp::path!("api" / "v1" / "tenant")
        .and(warp::get())
        .and(with_lan.clone())
        .and(who.clone())
        .and_then(api::tenant);
    let review = warp::path!("api" / "v1" / "review")
        .and(warp::get())
        .and(with_lan.clone())
        .and(who.clone())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(api::review);
    let thumbnail = warp::path!("api" / "v1" / "events" / String / "thumbnail")
        .and(warp::get())
        .and(with_lan.clone())
        .and(who.clone())
        .and_then(api::thumbnail);
    let clip = warp::path!("api" / "v1" / "events" / String / "clip")
        .and(warp::get())
        .and(with_lan.clone())
        .and(who.clone())
        .and(warp::header::optional::<String>("range"))
        .and_then(api::clip);
    let cameras = warp::path!("api" / "v1" / "cameras")
        .and(warp::get())
        .and(with_lan.clone())
        .and(who.clone())
        .and_then(api::cameras);
    let health = warp::path!("api" / "v1" / "health")
        .and(warp::get())
        .and(with_lan.clone())
        .and(who.clone())
        .and_then(api::health);
    let api = session_post
        .or(session_get)
        .unify()
        .or(session_delete)
        .unify()
        .or(tenant)
        .unify()
        .or(review)
        .unify()
        .or(thumbnail)
        .unify()
        .or(clip)
        .unify()
        .or(cameras)
        .unify()
        .or(health)
        .unify()
        .boxed();
    guardian_web::routes()
        .or(api)
        .unify()
        .recover(recover)
        .unify()
        .map(harden)
}

#[derive(Debug)]
pub(crate) enum ApiError {
    Unauthorized,
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    RangeNotSatisfiable(u64),
    TooManyAttempts(u64),
    Busy,
    Internal(String),
}

impl warp::reject::Reject for ApiError {}

pub(crate) fn internal(e: impl std::fmt::Display) -> Rejection {
    warp::reject::custom(ApiError::Internal(e.to_string()))
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
}

fn json_error(status: StatusCode, error: &'static str, message: String) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(&ErrorBody { error, message }), status)
        .into_response()
}

/// The headers every answer carries (a page or asset of the app keeps its own caching).
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
                "sign in (POST /api/v1/session) or send the local admin token \
                 (Authorization: Bearer <token>)"
                    .into(),
            ),
            ApiError::BadRequest(m) => {
                json_error(StatusCode::BAD_REQUEST, "bad_request", m.clone())
            }
            ApiError::NotFound(m) => json_error(StatusCode::NOT_FOUND, "not_found", m.clone()),
            ApiError::Conflict(m) => json_error(StatusCode::CONFLICT, "conflict", m.clone()),
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
                    format!("too many failed sign-ins; try again in {secs} s"),
                );
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().expect("valid"));
                r
            }
            ApiError::Busy => {
                let mut r = json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the edge is busy checking other sign-ins; try again shortly".into(),
                );
                r.headers_mut()
                    .insert("retry-after", "1".parse().expect("valid"));
                r
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "LAN API request failed");
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the request failed on the edge; see its log".into(),
                )
            }
        }
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
        tracing::debug!(rejection = ?r, "LAN request rejected");
        json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request is not valid for this path".into(),
        )
    };
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CameraSettings, EdgeConfig};
    use crate::store::{LocalEvent, Store};
    use protocols::messages::config::{LocalUser, Role, UsersSection};
    use protocols::messages::events::{EventRecord, EventState};

    fn phc(password: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
    }

    fn record(id: &str, camera: &str, started: u64) -> EventRecord {
        EventRecord {
            event_id: id.into(),
            camera_id: camera.into(),
            started_at_ms: started,
            ended_at_ms: started + 5,
            category: protocols::messages::Category::Person,
            score_milli: 900,
            ..Default::default()
        }
    }

    /// (status, set-cookie, body) of a request to the running listener.
    fn call(
        method: &str,
        url: &str,
        cookie: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, Option<String>, String) {
        let mut r = ureq::request(method, url).timeout(Duration::from_secs(20));
        if let Some(c) = cookie {
            r = r.set("cookie", c);
        }
        let resp = match body {
            Some(b) => r.send_json(b),
            None => r.call(),
        };
        let resp = match resp {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (
            resp.status(),
            resp.header("set-cookie").map(str::to_owned),
            resp.into_string().unwrap(),
        )
    }

    /// A viewer synced through the users section (the real apply function) signs in with its
    /// password and sees only its camera's events, clips and cameras; an event being recorded
    /// is listed open and its clip is 409.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_synced_viewer_sees_only_its_cameras() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let config = EdgeConfig {
            cameras: ["porch", "yard"]
                .map(|id| CameraSettings {
                    id: id.into(),
                    name: id.into(),
                    url: "test://x".into(),
                    ..Default::default()
                })
                .to_vec(),
            ..Default::default()
        };
        config.save(&data.join(crate::paths::CONFIG)).unwrap();
        let mut store = Store::open(&data.join(crate::paths::DB)).unwrap();
        for (id, camera, t) in [("ev-porch", "porch", 10), ("ev-yard", "yard", 20)] {
            std::fs::write(data.join(format!("{id}.age")), format!("sealed {id}")).unwrap();
            store
                .insert_event(
                    &LocalEvent {
                        record: record(id, camera, t),
                        track_json: "[]".into(),
                        clip_path: Some(format!("{id}.age")),
                        snapshot_path: None,
                        thumbnail_path: None,
                        objects_dir: None,
                        manifest_json: None,
                        bytes: 1,
                    },
                    false,
                    1,
                )
                .unwrap();
        }
        crate::users::apply(
            &data,
            &UsersSection {
                revision: 1,
                users: vec![LocalUser {
                    name: "sitter".into(),
                    password_phc: phc("a long password"),
                    role: Role::Viewer,
                    cameras: Some(vec!["porch".into()]),
                }],
            },
        )
        .unwrap();
        let live: LiveEvents = Arc::default();
        let mut open = record("ev-live", "porch", 30);
        open.state = EventState::Open;
        live.lock().unwrap().insert(open.event_id.clone(), open);
        let lan = Lan::with(
            data.clone(),
            crate::key_slots::tests::package_info(),
            "edge-peer".into(),
            12,
            Db::new(store),
            Arc::default(),
            live,
            guardian_node::clock::SystemClock::shared(),
        );
        let stop = Shutdown::new();
        let (addr, task) = start(lan, "127.0.0.1:0", &["127.0.0.0/8".into()], stop.clone())
            .await
            .unwrap();
        let base = format!("http://{addr}");
        tokio::task::spawn_blocking(move || {
            let url = |p: &str| format!("{base}{p}");
            let sign_in = |password: &str| {
                call(
                    "POST",
                    &url("/api/v1/session"),
                    None,
                    Some(serde_json::json!({"username": "sitter", "password": password})),
                )
            };
            assert_eq!(sign_in("wrong password").0, 401);
            let (status, cookie, body) = sign_in("a long password");
            assert_eq!(status, 200, "{body}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["user"]["role"], "viewer");
            assert_eq!(body["user"]["cameras"], serde_json::json!(["porch"]));
            let cookie = cookie.unwrap();
            let cookie = Some(cookie.split(';').next().unwrap());
            let (_, _, review) = call("GET", &url("/api/v1/review"), cookie, None);
            let review: serde_json::Value = serde_json::from_str(&review).unwrap();
            let ids: Vec<_> = review["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["event_id"].as_str().unwrap(),
                        e["state"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(ids, [("ev-live", "open"), ("ev-porch", "closed")]);
            let (status, _, clip) = call("GET", &url("/api/v1/events/ev-porch/clip"), cookie, None);
            assert_eq!((status, clip.as_str()), (200, "sealed ev-porch"));
            let (status, _, _) = call("GET", &url("/api/v1/events/ev-yard/clip"), cookie, None);
            assert_eq!(
                status, 404,
                "another camera's event is not there for a viewer"
            );
            let (status, _, _) = call("GET", &url("/api/v1/events/ev-live/clip"), cookie, None);
            assert_eq!(status, 409, "still recording");
            let (_, _, cams) = call("GET", &url("/api/v1/cameras"), cookie, None);
            let cams: serde_json::Value = serde_json::from_str(&cams).unwrap();
            assert_eq!(cams["cameras"].as_array().unwrap().len(), 1);
            assert_eq!(cams["cameras"][0]["id"], "porch");
        })
        .await
        .unwrap();
        stop.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
