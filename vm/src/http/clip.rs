//! `POST /api/v1/events/{id}/play` (a playback ticket) and `GET /api/v1/events/{id}/clip`
//! (the clip streamed from the edge, with `Range` parsing).

use std::sync::Arc;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{self, Client};
use super::{ApiError, check_event_id, internal};
use crate::playback::{self, PlaybackError};
use crate::state::VmState;
use protocols::http::range::{self, ByteRange, RangeError};

/// An optional small body: read when a Content-Length of at most 4 KiB announces it, empty
/// without one (a POST with no body, as `curl -X POST` sends), refused above.
pub(super) fn small_body() -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
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

fn playback_rejection(e: PlaybackError) -> Rejection {
    use PlaybackError as E;
    match e {
        E::NoSuchEvent(_) => warp::reject::custom(ApiError::NotFound(e.to_string())),
        E::EdgeOffline { .. } => warp::reject::custom(ApiError::EdgeOffline(e.to_string())),
        E::StillRecording(_) => warp::reject::custom(ApiError::Conflict(e.to_string())),
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

pub(super) async fn post_play(
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
    let ticket = playback::ticket(&state, &event_id, client)
        .await
        .map_err(playback_rejection)?;
    Ok(warp::reply::json(&ticket).into_response())
}

/// A refused `Range`: 400 when malformed, 416 (with the size) when outside the clip.
pub(super) fn range_rejection(e: RangeError) -> Rejection {
    match e {
        RangeError::Malformed => warp::reject::custom(ApiError::BadRequest(e.to_string())),
        RangeError::Unsatisfiable { size } => {
            warp::reject::custom(ApiError::RangeNotSatisfiable(size))
        }
    }
}

pub(super) async fn get_clip(
    event_id: String,
    state: Arc<VmState>,
    client: Client,
    header: Option<String>,
    cookie: Option<String>,
    query_token: Option<String>,
    range: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    let mut owner = auth::bearer(header.as_deref()).is_some_and(|t| state.owner_token_matches(t));
    // The web app's session (a viewer only for its cameras' events).
    if !owner
        && header.is_none()
        && query_token.is_none()
        && let Some(id) = crate::access::session_cookie(cookie.as_deref())
    {
        let Some(p) = auth::session_principal(&state, id).await? else {
            return Err(warp::reject::custom(ApiError::Unauthorized));
        };
        super::review::visible_event(&state, &p, &event_id).await?;
        owner = true;
    }
    if !owner {
        match query_token.as_deref() {
            Some(t) if playback::check_http_token(&state, t, &event_id) => {}
            // The owner token in a URL ends up in proxy logs and browser history: refused,
            // and said so (it is no guess, so not counted as a failed sign-in).
            Some(t) if state.owner_token_matches(t) => {
                return Err(warp::reject::custom(ApiError::BadRequest(
                    "the owner token is not accepted in the query string: send it as \
                     `Authorization: Bearer`, or use a playback token from \
                     POST /api/v1/events/{id}/play"
                        .into(),
                )));
            }
            Some(_) => return Err(client.sign_in.refuse(client.ip, "playback token")),
            None if header.is_some() => {
                return Err(client.sign_in.refuse(client.ip, "owner token"));
            }
            None => return Err(warp::reject::custom(ApiError::Unauthorized)),
        }
    }
    check_event_id(&event_id)?;
    let range = range
        .as_deref()
        .map(range::parse)
        .transpose()
        .map_err(range_rejection)?;
    // The first byte to ask the edge for. A suffix (the last N bytes) needs the clip's size
    // first: the edge names it when asked for an offset past the end (one more round trip).
    let start = match range {
        Some(ByteRange::Suffix(n)) => {
            let size = match playback::open_clip(&state, &event_id, u64::MAX).await {
                Err(PlaybackError::Refused(
                    protocols::messages::clips::ClipRefusal::BadOffset { total_size, .. },
                )) => total_size,
                Err(e) => return Err(playback_rejection(e)),
                Ok(_) => return Err(internal("the edge streamed from offset 2^64-1")),
            };
            ByteRange::Suffix(n)
                .resolve(size)
                .map_err(range_rejection)?
                .first
        }
        Some(ByteRange::From(first, _)) => first,
        None => 0,
    };
    let clip = playback::open_clip(&state, &event_id, start)
        .await
        .map_err(playback_rejection)?;
    let total = clip.total_size;
    let satisfied = range
        .map(|r| r.resolve(total))
        .transpose()
        .map_err(range_rejection)?;
    let length = satisfied.map(|s| s.len()).unwrap_or(total);
    let mut stream = clip.stream;
    // A bounded channel between the edge and the client: a few chunks in memory at most.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        use futures::AsyncReadExt;
        let mut left = length;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n =
                match tokio::time::timeout(playback::READ_TIMEOUT, stream.read(&mut buf[..want]))
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
            .unwrap_or_else(|_| "application/octet-stream".parse().expect("valid")),
    );
    headers.insert("accept-ranges", "bytes".parse().expect("valid"));
    headers.insert("content-length", length.to_string().parse().expect("valid"));
    if let Some(s) = satisfied {
        headers.insert("content-range", s.content_range().parse().expect("valid"));
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}
