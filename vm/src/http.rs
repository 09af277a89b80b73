//! The owner's HTTP API (warp), described by `vm/openapi.yaml`.
//!
//! Everything under `/api/v1` needs `Authorization: Bearer <owner token>` (the clip of an
//! event also takes `?token=` with the owner token or a playback token for it); `/metrics`
//! (Prometheus text format) does not. Every error is a 4xx or 5xx with a JSON body
//! `{"error": "<code>", "message": "<what went wrong>"}`.

use std::convert::Infallible;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::db;
use crate::health::EdgeHealth;
use crate::service::VmState;

/// The most events one request returns.
pub const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;

#[derive(Debug)]
enum ApiError {
    Unauthorized,
    BadRequest(String),
    NotFound(String),
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

fn internal(e: impl std::fmt::Display) -> Rejection {
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
        .and_then(list_devices);
    let events = warp::path!("api" / "v1" / "events")
        .and(warp::get())
        .and(auth.clone())
        .and(warp::query::<EventsQuery>())
        .and_then(list_events);
    let health = warp::path!("api" / "v1" / "health")
        .and(warp::get())
        .and(auth.clone())
        .and_then(get_health);
    let archive_list = warp::path!("api" / "v1" / "archive")
        .and(warp::get())
        .and(auth.clone())
        .and(warp::query::<EventsQuery>())
        .and_then(list_archive);
    let archive_manifest = warp::path!("api" / "v1" / "archive" / String / "manifest")
        .and(warp::get())
        .and(auth.clone())
        .and_then(get_manifest);
    let archive_object = warp::path!("api" / "v1" / "archive" / String)
        .and(warp::get())
        .and(auth.clone())
        .and(warp::header::optional::<String>("range"))
        .and_then(get_object);
    let play = warp::path!("api" / "v1" / "events" / String / "play")
        .and(warp::post())
        .and(auth.clone())
        .and(small_body())
        .and_then(post_play);
    let clip = warp::path!("api" / "v1" / "events" / String / "clip")
        .and(warp::get())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::query::<ClipQuery>())
        .and(warp::header::optional::<String>("range"))
        .and_then(get_clip);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state)
        .and_then(get_metrics);

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

async fn list_devices(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
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
    camera: Option<String>,
    since: Option<u64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct EventsBody {
    events: Vec<db::EventRow>,
    next_since: Option<u64>,
}

fn check_query(q: &EventsQuery) -> Result<u32, Rejection> {
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

#[derive(Serialize)]
struct ArchiveBody {
    objects: Vec<db::ArchiveRow>,
    next_since: Option<u64>,
}

async fn list_archive(
    state: Arc<VmState>,
    q: EventsQuery,
) -> Result<warp::reply::Response, Rejection> {
    let limit = check_query(&q)?;
    let (camera, since) = (q.camera.clone(), q.since.unwrap_or(0));
    let objects = state
        .db
        .call(move |c| db::archived_objects(c, camera.as_deref(), since, limit))
        .await
        .map_err(internal)?;
    let next_since = (objects.len() == limit as usize)
        .then(|| objects.last().map(|o| o.archived_at_ms))
        .flatten();
    Ok(warp::reply::json(&ArchiveBody {
        objects,
        next_since,
    })
    .into_response())
}

async fn archived(state: &VmState, cid: String) -> Result<db::ArchiveRow, Rejection> {
    if cid.parse::<protocols::ContentId>().is_err() {
        return Err(warp::reject::custom(ApiError::BadRequest(format!(
            "{cid:?} is not the CID of a sealed object"
        ))));
    }
    let c = cid.clone();
    state
        .db
        .call(move |conn| db::archived_object(conn, &c))
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            warp::reject::custom(ApiError::NotFound(format!("no archived object {cid}")))
        })
}

async fn get_manifest(
    cid: String,
    state: Arc<VmState>,
) -> Result<warp::reply::Response, Rejection> {
    let row = archived(&state, cid).await?;
    let event = row.event_id.clone();
    let json = state
        .db
        .call(move |c| db::archived_manifest(c, &event))
        .await
        .map_err(internal)?
        .ok_or_else(|| warp::reject::custom(ApiError::NotFound("the manifest is gone".into())))?;
    Ok(warp::reply::with_header(json, "content-type", "application/json").into_response())
}

async fn get_object(
    cid: String,
    state: Arc<VmState>,
    range: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    let row = archived(&state, cid).await?;
    if let Some(r) = &range
        && (!r.starts_with("bytes=") || r.contains(','))
    {
        return Err(warp::reject::custom(ApiError::BadRequest(
            "only a single `bytes=` range is supported".into(),
        )));
    }
    let out = state
        .storage
        .get(&row.bucket, &row.key, range.as_deref())
        .await
        .map_err(|e| {
            let m = e.to_string();
            if m.contains("InvalidRange") {
                warp::reject::custom(ApiError::BadRequest(format!("range not satisfiable: {m}")))
            } else {
                warp::reject::custom(ApiError::Unavailable(m))
            }
        })?;
    let length = out.content_length();
    let content_range = out.content_range().map(str::to_owned);
    let mut body = out.body;
    // A bounded channel between S3 and the client: memory stays a few chunks whatever the size.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(std::io::Error::other);
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = warp::reply::stream(stream).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        "content-type",
        "application/octet-stream".parse().expect("valid"),
    );
    headers.insert("accept-ranges", "bytes".parse().expect("valid"));
    if let Some(len) = length {
        headers.insert("content-length", len.to_string().parse().expect("valid"));
    }
    if let Some(cr) = content_range {
        if let Ok(v) = cr.parse() {
            headers.insert("content-range", v);
        }
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

async fn list_events(
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
}

async fn get_health(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let edges = state.edge_health().await.map_err(internal)?;
    let status = if edges.iter().all(|e| e.1.issues.is_empty()) {
        "ok"
    } else {
        "degraded"
    };
    let body = HealthBody {
        status,
        tenant_id: state.config.tenant_id.clone(),
        uptime_secs: state.started.elapsed().as_secs(),
        edges: edges
            .into_iter()
            .map(|(d, health)| EdgeHealthView {
                peer_id: d.peer_id,
                name: d.name,
                health,
            })
            .collect(),
    };
    Ok(warp::reply::json(&body).into_response())
}

async fn get_metrics(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let text = state.metrics_text().await.map_err(internal)?;
    Ok(warp::reply::with_header(
        text,
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    .into_response())
}

/// An optional small body: read when a Content-Length of at most 4 KiB announces it, empty
/// without one (a POST with no body, as `curl -X POST` sends), refused above.
fn small_body() -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and_then(|len: Option<u64>| async move {
            match len {
                Some(n) if n > 4096 => Err(warp::reject::custom(ApiError::BadRequest(
                    "the body is over 4 KiB".into(),
                ))),
                _ => Ok(len.unwrap_or(0)),
            }
        })
        .and(warp::body::stream())
        .and_then(collect_body)
}

async fn collect_body<S, B>(len: u64, body: S) -> Result<bytes::Bytes, Rejection>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    use futures::TryStreamExt;
    if len == 0 {
        return Ok(bytes::Bytes::new());
    }
    let mut out = Vec::with_capacity(len as usize);
    let mut body = std::pin::pin!(body);
    while let Some(mut chunk) = body.try_next().await.map_err(internal)? {
        while chunk.has_remaining() {
            let c = chunk.chunk();
            if out.len() + c.len() > len as usize {
                return Err(warp::reject::custom(ApiError::BadRequest(
                    "the body is longer than its Content-Length".into(),
                )));
            }
            out.extend_from_slice(c);
            let n = c.len();
            chunk.advance(n);
        }
    }
    Ok(bytes::Bytes::from(out))
}

/// The body of `POST /api/v1/events/{id}/play` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlayBody {
    /// The peer id the client will connect with; admitted until the token expires.
    client_peer_id: Option<String>,
}

fn playback_rejection(e: crate::playback::PlaybackError) -> Rejection {
    use crate::playback::PlaybackError as E;
    match e {
        E::NoSuchEvent(_) => warp::reject::custom(ApiError::NotFound(e.to_string())),
        E::EdgeOffline { .. } => warp::reject::custom(ApiError::EdgeOffline(e.to_string())),
        E::Refused(protocols::messages::clips::ClipRefusal::NoSuchClip(_)) => {
            warp::reject::custom(ApiError::NotFound(e.to_string()))
        }
        E::Refused(protocols::messages::clips::ClipRefusal::BadOffset { total_size, .. }) => {
            warp::reject::custom(ApiError::RangeNotSatisfiable(total_size))
        }
        E::Refused(_) | E::Edge(_) => warp::reject::custom(ApiError::Edge(e.to_string())),
        E::Db(e) => internal(e),
    }
}

fn check_event_id(id: &str) -> Result<(), Rejection> {
    if protocols::messages::valid_id(id) {
        Ok(())
    } else {
        Err(warp::reject::custom(ApiError::BadRequest(format!(
            "{id:?} is not an event id"
        ))))
    }
}

async fn post_play(
    event_id: String,
    state: Arc<VmState>,
    body: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    check_event_id(&event_id)?;
    let body: PlayBody = if body.iter().all(u8::is_ascii_whitespace) {
        PlayBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| warp::reject::custom(ApiError::BadRequest(format!("invalid body: {e}"))))?
    };
    let client = body
        .client_peer_id
        .as_deref()
        .map(|p| {
            p.parse::<guardian_node::PeerId>().map_err(|_| {
                warp::reject::custom(ApiError::BadRequest(format!(
                    "client_peer_id {p:?} is not a peer id"
                )))
            })
        })
        .transpose()?;
    let ticket = crate::playback::ticket(&state, &event_id, client)
        .await
        .map_err(playback_rejection)?;
    Ok(warp::reply::json(&ticket).into_response())
}

/// Query of `GET /api/v1/events/{id}/clip`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipQuery {
    token: Option<String>,
}

/// One byte range of a `Range` header (RFC 9110 14.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    /// `bytes=N-` (M `None`) or `bytes=N-M`.
    From(u64, Option<u64>),
    /// `bytes=-N`: the last N bytes.
    Suffix(u64),
}

/// Parses a single `bytes=` range.
fn parse_range(r: &str) -> Result<ByteRange, Rejection> {
    let bad = || {
        warp::reject::custom(ApiError::BadRequest(
            "only a single `bytes=N-`, `bytes=N-M` or `bytes=-N` range is supported".into(),
        ))
    };
    let spec = r.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    if a.trim().is_empty() {
        return Ok(ByteRange::Suffix(b.trim().parse().map_err(|_| bad())?));
    }
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end = match b.trim() {
        "" => None,
        e => Some(e.parse::<u64>().map_err(|_| bad())?),
    };
    if end.is_some_and(|e| e < start) {
        return Err(bad());
    }
    Ok(ByteRange::From(start, end))
}

async fn get_clip(
    event_id: String,
    state: Arc<VmState>,
    header: Option<String>,
    q: ClipQuery,
    range: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    let bearer = header
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let authorized = bearer.is_some_and(|t| state.owner_token_matches(t))
        || q.token.as_deref().is_some_and(|t| {
            state.owner_token_matches(t) || crate::playback::check_http_token(&state, t, &event_id)
        });
    if !authorized {
        return Err(warp::reject::custom(ApiError::Unauthorized));
    }
    check_event_id(&event_id)?;
    let range = match range.as_deref().map(parse_range).transpose()? {
        // The last N bytes: the edge names the clip's size when asked for an offset past it
        // (one more round trip), then the range starts N before the end.
        Some(ByteRange::Suffix(n)) => {
            let total = match crate::playback::open_clip(&state, &event_id, u64::MAX).await {
                Err(crate::playback::PlaybackError::Refused(
                    protocols::messages::clips::ClipRefusal::BadOffset { total_size, .. },
                )) => total_size,
                Err(e) => return Err(playback_rejection(e)),
                Ok(_) => return Err(internal("the edge streamed from offset 2^64-1")),
            };
            if n == 0 || total == 0 {
                return Err(warp::reject::custom(ApiError::RangeNotSatisfiable(total)));
            }
            Some((total.saturating_sub(n), None))
        }
        Some(ByteRange::From(start, end)) => Some((start, end)),
        None => None,
    };
    let start = range.map(|r| r.0).unwrap_or(0);
    let clip = crate::playback::open_clip(&state, &event_id, start)
        .await
        .map_err(playback_rejection)?;
    let total = clip.total_size;
    if range.is_some() && start >= total {
        return Err(warp::reject::custom(ApiError::RangeNotSatisfiable(total)));
    }
    let end = range
        .and_then(|r| r.1)
        .map(|e| e.min(total.saturating_sub(1)))
        .unwrap_or(total.saturating_sub(1));
    let length = if total == 0 { 0 } else { end + 1 - start };
    let mut stream = clip.stream;
    // A bounded channel between the edge and the client: a few chunks in memory at most.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        use futures::AsyncReadExt;
        let mut left = length;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = match tokio::time::timeout(
                crate::playback::READ_TIMEOUT,
                stream.read(&mut buf[..want]),
            )
            .await
            {
                Ok(Ok(0)) => Err(std::io::Error::other("the edge ended the clip early")),
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(std::io::Error::other("the edge stopped sending")),
            };
            match n {
                Ok(n) => {
                    left -= n as u64;
                    if tx
                        .send(Ok(bytes::Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "clip stream from the edge broke");
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
        // Dropping the stream resets it if the edge still has bytes to send (a range).
    });
    let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = warp::reply::stream(body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        "content-type",
        clip.content_type
            .parse()
            .unwrap_or_else(|_| "video/mp4".parse().expect("valid")),
    );
    headers.insert("accept-ranges", "bytes".parse().expect("valid"));
    headers.insert("content-length", length.to_string().parse().expect("valid"));
    if range.is_some() {
        headers.insert(
            "content-range",
            format!("bytes {start}-{end}/{total}")
                .parse()
                .expect("valid"),
        );
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::{ByteRange, parse_range};

    #[test]
    fn ranges_parse_as_rfc_9110_single_ranges() {
        let ok = |s: &str| parse_range(s).unwrap();
        assert_eq!(ok("bytes=0-"), ByteRange::From(0, None));
        assert_eq!(ok("bytes=10-19"), ByteRange::From(10, Some(19)));
        assert_eq!(ok(" bytes=5-5 "), ByteRange::From(5, Some(5)));
        assert_eq!(ok("bytes=-500"), ByteRange::Suffix(500));
        assert_eq!(ok("bytes=-0"), ByteRange::Suffix(0));
        for bad in [
            "bytes=20-10",
            "bytes=-",
            "bytes=a-",
            "bytes=1-2,4-5",
            "items=0-",
            "0-10",
            "bytes=--5",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
