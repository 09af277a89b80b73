//! The LAN API's handlers: sign-in, the tenant, review, an event's sealed thumbnail and clip,
//! cameras and health. Shapes follow the vm's (`docs/web.md`, `vm/openapi.yaml`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use protocols::http::range::{self, RangeError};
use protocols::messages::config::Role;
use protocols::messages::events::EventRecord;
use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::auth::{self, Holder, Principal};
use super::{ApiError, Caller, Lan, internal};
use crate::store::{LocalEvent, ReviewQuery};

/// How long one read of a clip from disk may take.
const READ_WITHIN: Duration = Duration::from_secs(30);
/// Bytes read from disk at a time for a clip.
const CHUNK: usize = 256 * 1024;

fn bad(m: impl Into<String>) -> Rejection {
    warp::reject::custom(ApiError::BadRequest(m.into()))
}

#[derive(Serialize)]
struct SessionBody<'a> {
    user: &'a Principal,
    expires_at_ms: Option<u64>,
}

/// The body of `POST /api/v1/session`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

fn session_reply(p: &Principal, expires_at_ms: Option<u64>) -> warp::reply::Response {
    warp::reply::json(&SessionBody {
        user: p,
        expires_at_ms,
    })
    .into_response()
}

/// `POST /api/v1/session`: the local admin token, or a synced user's name and password.
pub(super) async fn sign_in(
    lan: Arc<Lan>,
    ip: IpAddr,
    body: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    // serde's message names the field, never a value.
    let body: SignIn =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid body: {e}")))?;
    let (principal, holder) = match body {
        SignIn {
            token: Some(token),
            username: None,
            password: None,
        } => {
            let stored = crate::local_token::stored(&lan.data);
            match stored {
                Some(s) if crate::local_token::matches(&s, &token) => (
                    Principal::local_admin(),
                    Holder::LocalAdmin { token_hash: s },
                ),
                _ => return Err(lan.refuse(ip, None, "local admin token")),
            }
        }
        SignIn {
            token: None,
            username: Some(name),
            password: Some(password),
        } => {
            if !protocols::messages::config::valid_user_name(&name) || password.len() > 1024 {
                return Err(lan.refuse(ip, None, "user name"));
            }
            let now = lan.clock.monotonic();
            if let Some(wait) = lan
                .user_failures
                .lock()
                .expect("failures")
                .blocked(&name, now)
            {
                return Err(warp::reject::custom(ApiError::TooManyAttempts(
                    wait.as_secs().max(1),
                )));
            }
            let n = name.clone();
            let user = lan.db.call(move |s| s.user(&n)).await.map_err(internal)?;
            // An unknown name is checked against a decoy: as slow as a known one.
            let phc = user
                .as_ref()
                .map(|u| u.password_phc.clone())
                .unwrap_or_else(|| auth::decoy_phc().to_owned());
            let permit = tokio::time::timeout(auth::VERIFY_WAIT, lan.verify.acquire())
                .await
                .map_err(|_| warp::reject::custom(ApiError::Busy))?
                .map_err(internal)?;
            let ok = tokio::task::spawn_blocking(move || auth::password_matches(&phc, &password))
                .await
                .map_err(internal)?;
            drop(permit);
            match user {
                Some(u) if ok => (
                    Principal {
                        name: u.name.clone(),
                        role: u.role,
                        cameras: u.cameras.clone(),
                    },
                    Holder::User {
                        name: u.name,
                        password_phc: u.password_phc,
                    },
                ),
                _ => return Err(lan.refuse(ip, Some(&name), "password")),
            }
        }
        _ => {
            return Err(bad(
                "give {\"token\"} or {\"username\", \"password\"}, not both",
            ));
        }
    };
    let secret = {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        data_encoding::HEXLOWER.encode(&b)
    };
    let expires_at_ms =
        lan.sessions
            .lock()
            .expect("sessions")
            .open(&secret, holder, lan.clock.wall_ms());
    tracing::info!(client = %ip, user = %principal.name, role = principal.role.as_str(), "LAN sign-in");
    let mut r = session_reply(&principal, Some(expires_at_ms));
    r.headers_mut().insert(
        "set-cookie",
        auth::set_cookie(&secret, lan.session_ttl)
            .parse()
            .expect("valid"),
    );
    Ok(r)
}

/// `GET /api/v1/session`.
pub(super) async fn session(caller: Caller) -> Result<warp::reply::Response, Rejection> {
    Ok(session_reply(&caller.principal, caller.expires_at_ms))
}

/// `DELETE /api/v1/session`: ends the cookie's session (if any) and clears the cookie.
pub(super) async fn sign_out(
    lan: Arc<Lan>,
    cookie: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    if let Some(secret) = auth::session_cookie(cookie.as_deref()) {
        lan.sessions.lock().expect("sessions").end(secret);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("set-cookie", auth::clear_cookie().parse().expect("valid"));
    Ok(r)
}

/// `GET /api/v1/tenant`: what the page needs to derive the owner's key, from the install
/// package.
pub(super) async fn tenant(
    lan: Arc<Lan>,
    _caller: Caller,
) -> Result<warp::reply::Response, Rejection> {
    let info = &lan.info;
    let signing = info.owner_signing_key().ok().flatten();
    Ok(warp::reply::json(&json!({
        "tenant_id": info.tenant_id,
        "kdf": {
            "algorithm": "argon2id",
            "memory_kib": info.kdf.memory_kib,
            "iterations": info.kdf.iterations,
            "parallelism": info.kdf.parallelism,
        },
        "owner_recipient": info.archive_recipient,
        "owner_key_id": info.archive_key_id,
        "owner_signing_key": signing.map(|k| data_encoding::HEXLOWER.encode(k.as_bytes())),
        "owner_signing_fingerprint": signing.map(|k| protocols::signed::fingerprint(k.as_bytes())),
        "served_by": "edge",
        "bundle_sha256": guardian_web::bundle_sha256(),
        "time_zone": "UTC",
    }))
    .into_response())
}

/// `GET /api/v1/review`'s query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Review {
    camera: Option<String>,
    label: Option<String>,
    /// `Some(true)`: reviewed only (the edge keeps no reviewed state: none).
    reviewed: Option<bool>,
    before: u64,
    after: u64,
    limit: u32,
}

/// Parses `camera`, `label`, `reviewed`, `before`, `after` and `limit`; unknown keys, a key
/// twice and values out of range are refused.
pub(super) fn review_query(raw: &str) -> Result<Review, String> {
    use protocols::http::query::{DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY, MAX_SINCE_MS, decode};
    if raw.len() > MAX_QUERY {
        return Err(format!("the query string is over {MAX_QUERY} bytes"));
    }
    let mut q = Review {
        camera: None,
        label: None,
        reviewed: None,
        before: MAX_SINCE_MS,
        after: 0,
        limit: DEFAULT_LIMIT,
    };
    let mut seen = std::collections::HashSet::new();
    let number = |v: &str, max: u64| {
        (!v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u64>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k).map_err(|e| e.to_string())?;
        let v = decode(v).map_err(|e| e.to_string())?;
        if !seen.insert(k.clone()) {
            return Err(format!("query parameter {k} is given twice"));
        }
        match k.as_str() {
            "camera" if protocols::messages::valid_id(&v) => q.camera = Some(v),
            "camera" => return Err("camera must be a camera id (a-z, 0-9, -)".into()),
            "label"
                if !v.is_empty()
                    && v.len() <= 48
                    && v.bytes()
                        .all(|b| b.is_ascii_lowercase() || b"_-".contains(&b)) =>
            {
                q.label = Some(v)
            }
            "label" => return Err("label must be a category such as person".into()),
            "reviewed" => {
                q.reviewed = Some(match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err("reviewed must be true or false".into()),
                })
            }
            "before" => {
                q.before = number(&v, MAX_SINCE_MS).ok_or("before must be Unix ms")?;
            }
            "after" => {
                q.after = number(&v, MAX_SINCE_MS).ok_or("after must be Unix ms")?;
            }
            "limit" => {
                q.limit = number(&v, u64::from(MAX_LIMIT))
                    .filter(|n| *n >= 1)
                    .ok_or("limit must be 1 to 1000")? as u32;
            }
            _ => {
                let k: String = k.chars().take(40).collect();
                return Err(format!("unknown query parameter {k:?}"));
            }
        }
    }
    Ok(q)
}

/// An event row as the vm's `/api/v1/events` gives it (where the edge has the field), with
/// `reviewed_at_ms` (the edge keeps no reviewed state: null).
fn row(r: &EventRecord, edge: &str) -> serde_json::Value {
    json!({
        "event_id": r.event_id,
        "edge_peer_id": if r.edge_id.is_empty() { edge } else { r.edge_id.as_str() },
        "camera_id": r.camera_id,
        "started_at_ms": r.started_at_ms,
        "ended_at_ms": r.ended_at_ms,
        "category": r.category.as_str(),
        "score_milli": r.score_milli,
        "clip_cid": r.clip_cid,
        "snapshot_cid": r.snapshot_cid,
        "thumbnail_cid": r.thumbnail_cid,
        "truncated": r.truncated,
        "state": r.state.as_str(),
        "revision": r.revision,
        "confirmed_at_ms": r.confirmed_at_ms,
        "zones": r.zones,
        "verification": r.verification,
        "reviewed_at_ms": null,
    })
}

/// `GET /api/v1/review`: this edge's events newest first, those being recorded among them.
pub(super) async fn review(
    lan: Arc<Lan>,
    caller: Caller,
    raw: String,
) -> Result<warp::reply::Response, Rejection> {
    let q = review_query(&raw).map_err(bad)?;
    if q.reviewed == Some(true) {
        return Ok(warp::reply::json(&json!({"events": [], "next_before": null})).into_response());
    }
    let p = &caller.principal;
    let query = ReviewQuery {
        camera: q.camera.clone(),
        label: q.label.clone(),
        before_ms: q.before,
        after_ms: q.after,
        allowed: p.cameras.clone(),
        limit: q.limit,
    };
    let stored = lan
        .db
        .call(move |s| s.review(&query))
        .await
        .map_err(internal)?;
    let mut records: Vec<EventRecord> = stored.into_iter().map(|e| e.record).collect();
    let live: Vec<EventRecord> = lan
        .live
        .lock()
        .map(|l| l.values().cloned().collect())
        .unwrap_or_default();
    for r in live {
        let wanted = p.sees(&r.camera_id)
            && q.camera.as_ref().is_none_or(|c| *c == r.camera_id)
            && q.label.as_ref().is_none_or(|l| l == r.category.as_str())
            && r.started_at_ms < q.before
            && r.started_at_ms >= q.after
            && !records.iter().any(|x| x.event_id == r.event_id);
        if wanted {
            records.push(r);
        }
    }
    records.sort_by(|a, b| (b.started_at_ms, &b.event_id).cmp(&(a.started_at_ms, &a.event_id)));
    records.truncate(q.limit as usize);
    let next_before = (records.len() == q.limit as usize)
        .then(|| records.last().map(|r| r.started_at_ms))
        .flatten();
    let events: Vec<_> = records.iter().map(|r| row(r, &lan.edge_peer_id)).collect();
    Ok(warp::reply::json(&json!({"events": events, "next_before": next_before})).into_response())
}

/// The stored event `id` the caller may see; 404 otherwise (a viewer learns nothing of other
/// cameras' events), 409 while it is being recorded.
async fn visible_event(lan: &Lan, caller: &Caller, id: &str) -> Result<LocalEvent, Rejection> {
    if !protocols::messages::valid_id(id) {
        return Err(bad(format!(
            "{:?} is not an event id",
            id.chars().take(64).collect::<String>()
        )));
    }
    let not_found =
        || warp::reject::custom(ApiError::NotFound(format!("no event {id} on this edge")));
    let i = id.to_owned();
    let event = lan.db.call(move |s| s.event(&i)).await.map_err(internal)?;
    match event {
        Some(e) if caller.principal.sees(&e.record.camera_id) => Ok(e),
        Some(_) => Err(not_found()),
        None => {
            let live_camera = lan
                .live
                .lock()
                .ok()
                .and_then(|l| l.get(id).map(|r| r.camera_id.clone()));
            match live_camera {
                Some(c) if caller.principal.sees(&c) => Err(warp::reject::custom(
                    ApiError::Conflict(format!("event {id} is still being recorded")),
                )),
                _ => Err(not_found()),
            }
        }
    }
}

/// `GET /api/v1/events/{id}/thumbnail`: the sealed thumbnail (an age file), named by its CID.
pub(super) async fn thumbnail(
    id: String,
    lan: Arc<Lan>,
    caller: Caller,
) -> Result<warp::reply::Response, Rejection> {
    let event = visible_event(&lan, &caller, &id).await?;
    let none = || warp::reject::custom(ApiError::NotFound(format!("event {id} has no thumbnail")));
    let path = event.thumbnail_path.ok_or_else(none)?;
    let bytes = match tokio::fs::read(lan.data.join(&path)).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(none()),
        Err(e) => return Err(internal(e)),
    };
    let mut r = warp::reply::Response::new(bytes.into());
    let h = r.headers_mut();
    h.insert(
        "content-type",
        "application/octet-stream".parse().expect("valid"),
    );
    if let Some(cid) = &event.record.thumbnail_cid
        && let Ok(v) = format!("\"{cid}\"").parse()
    {
        h.insert("etag", v);
    }
    h.insert(
        "cache-control",
        "private, max-age=86400, immutable".parse().expect("valid"),
    );
    Ok(r)
}

/// `GET /api/v1/events/{id}/clip`: the sealed clip from disk, whole or one `Range`.
pub(super) async fn clip(
    id: String,
    lan: Arc<Lan>,
    caller: Caller,
    range: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let range = range
        .as_deref()
        .map(range::parse)
        .transpose()
        .map_err(range_rejection)?;
    let event = visible_event(&lan, &caller, &id).await?;
    let none = || warp::reject::custom(ApiError::NotFound(format!("event {id} has no clip")));
    let path = event.clip_path.ok_or_else(none)?;
    let mut file = match tokio::fs::File::open(lan.data.join(&path)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(none()),
        Err(e) => return Err(internal(e)),
    };
    let total = file.metadata().await.map_err(internal)?.len();
    let satisfied = range
        .map(|r| r.resolve(total))
        .transpose()
        .map_err(range_rejection)?;
    let (first, length) = satisfied.map_or((0, total), |s| (s.first, s.len()));
    file.seek(std::io::SeekFrom::Start(first))
        .await
        .map_err(internal)?;
    let body = futures::stream::unfold((file, length), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; CHUNK.min(left as usize)];
        let read = match tokio::time::timeout(READ_WITHIN, file.read(&mut buf)).await {
            Ok(Ok(0)) => Err(std::io::Error::other("the clip shrank while it was served")),
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::other("reading the clip timed out")),
        };
        match read {
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => {
                tracing::warn!(error = %e, "a clip could not be read");
                Some((Err(e), (file, 0)))
            }
        }
    });
    let mut resp = warp::reply::stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        crate::playback::CONTENT_TYPE.parse().expect("valid"),
    );
    h.insert("accept-ranges", "bytes".parse().expect("valid"));
    h.insert("content-length", length.to_string().parse().expect("valid"));
    if let Some(s) = satisfied {
        h.insert("content-range", s.content_range().parse().expect("valid"));
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

fn range_rejection(e: RangeError) -> Rejection {
    match e {
        RangeError::Malformed => bad(e.to_string()),
        RangeError::Unsatisfiable { size } => {
            warp::reject::custom(ApiError::RangeNotSatisfiable(size))
        }
    }
}

/// What a camera's last error means for the owner (as the vm says it).
fn reason(last_error: &str) -> &'static str {
    let e = last_error.to_ascii_lowercase();
    if e.contains("unauthorized") || e.contains("401") || e.contains("authenticat") {
        "unauthorized"
    } else if e.contains("not h.264") || e.contains("not h264") {
        "not_h264"
    } else if e.contains("not found") || e.contains("404") || e.contains("no such file") {
        "not_found"
    } else if e.contains("could not connect")
        || e.contains("connection refused")
        || e.contains("timed out")
        || e.contains("timeout")
        || e.contains("could not open resource")
        || e.contains("unreachable")
    {
        "unreachable"
    } else {
        "other"
    }
}

/// `GET /api/v1/cameras`: the cameras in edge.toml the caller sees, with their live state.
pub(super) async fn cameras(
    lan: Arc<Lan>,
    caller: Caller,
) -> Result<warp::reply::Response, Rejection> {
    let path = lan.data.join(crate::paths::CONFIG);
    let config = tokio::task::spawn_blocking(move || crate::config::EdgeConfig::load(&path))
        .await
        .map_err(internal)?
        .map_err(|e| internal(format!("{e:#}")))?;
    let board = lan.status.lock().map(|b| b.clone()).unwrap_or_default();
    let cameras: Vec<_> = config
        .cameras
        .iter()
        .filter(|c| caller.principal.sees(&c.id))
        .map(|c| {
            let s = board.get(&c.id);
            let last_error = s.and_then(|s| s.last_error.as_deref());
            json!({
                "id": c.id,
                "name": c.name,
                "edge": lan.edge_peer_id,
                "edge_name": lan.info.edge_name,
                "edge_online": true,
                "enabled": c.enabled,
                "state": s.map(|s| s.state),
                "reason": last_error.map(reason),
                "last_error": last_error,
                "fps": s.map(|s| f64::from(s.fps_milli) / 1000.0),
                "width": s.map(|s| s.width),
                "height": s.map(|s| s.height),
                "bitrate_kbps": s.map(|s| s.bitrate_kbps),
                "last_frame_ms": s.map(|s| s.last_frame_ms).filter(|t| *t > 0),
            })
        })
        .collect();
    Ok(warp::reply::json(&json!({ "cameras": cameras })).into_response())
}

/// `GET /api/v1/health`: the edge's own state: its link to the vm, enrollment, disk, CPU and
/// memory, backlogs, and the cameras the caller sees.
pub(super) async fn health(
    lan: Arc<Lan>,
    caller: Caller,
) -> Result<warp::reply::Response, Rejection> {
    let data = lan.data.clone();
    let link = tokio::task::spawn_blocking(move || crate::link::LinkState::load(&data))
        .await
        .map_err(internal)?
        .ok()
        .flatten();
    let (enrolled, events, (archive_objects, archive_bytes), (ev_parked, ar_parked, th_parked)) =
        lan.db
            .call(|s| {
                Ok((
                    s.device_config()?.is_some(),
                    s.event_backlog()?,
                    s.archive_backlog()?,
                    s.parked()?,
                ))
            })
            .await
            .map_err(internal)?;
    let lan2 = lan.clone();
    let sample =
        tokio::task::spawn_blocking(move || lan2.sampler.lock().map(|mut s| s.sample()).ok())
            .await
            .map_err(internal)?;
    let cameras: Vec<_> = lan
        .status
        .lock()
        .map(|b| {
            b.values()
                .filter(|s| caller.principal.sees(&s.camera_id))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let admin = caller.principal.role == Role::Admin;
    let vm_connected = link.as_ref().is_some_and(|l| l.connected);
    Ok(warp::reply::json(&json!({
        "status": if vm_connected { "ok" } else { "degraded" },
        "served_by": "edge",
        "edge": { "peer_id": lan.edge_peer_id, "name": lan.info.edge_name },
        "uptime_secs": lan.clock.monotonic().saturating_duration_since(lan.started).as_secs(),
        "enrolled": enrolled,
        "vm": link.map(|l| json!({
            "connected": l.connected,
            "since_ms": l.since_ms,
            // Addresses are for the owner's eyes only.
            "address": if admin { l.address } else { None },
            "relayed": l.relayed,
        })),
        "cpu_milli": sample.map(|s| s.cpu_milli),
        "mem_used_bytes": sample.map(|s| s.mem_used_bytes),
        "mem_total_bytes": sample.map(|s| s.mem_total_bytes),
        "disk_used_bytes": sample.map(|s| s.disk_used_bytes),
        "disk_free_bytes": sample.map(|s| s.disk_free_bytes),
        "event_backlog": events,
        "archive_backlog_objects": archive_objects,
        "archive_backlog_bytes": archive_bytes,
        "events_parked": ev_parked,
        "archive_parked": ar_parked,
        "thumbnails_parked": th_parked,
        "cameras": cameras,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_query_is_bounded() {
        let q = review_query("").unwrap();
        assert_eq!((q.before, q.after, q.limit), (i64::MAX as u64, 0, 100));
        let q =
            review_query("camera=porch&label=person&before=50&after=10&limit=24&reviewed=false")
                .unwrap();
        assert_eq!(q.camera.as_deref(), Some("porch"));
        assert_eq!(q.label.as_deref(), Some("person"));
        assert_eq!(
            (q.before, q.after, q.limit, q.reviewed),
            (50, 10, 24, Some(false))
        );
        for bad in [
            "limit=0",
            "limit=1001",
            "before=-1",
            "before=18446744073709551615",
            "camera=Front Door",
            "label=DROP TABLE",
            "reviewed=maybe",
            "since=1",
            "limit=1&limit=2",
            "camera=%zz",
        ] {
            assert!(review_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn camera_errors_are_explained() {
        assert_eq!(reason("rtspsrc: Unauthorized (401)"), "unauthorized");
        assert_eq!(reason("Could not connect to server"), "unreachable");
        assert_eq!(reason("odd"), "other");
    }
}
