//! `POST /api/v1/events/{id}/play` (a playback ticket) and `GET /api/v1/events/{id}/clip`
//! (the clip streamed from the edge, with `Range` parsing).

use std::sync::Arc;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{ApiError, check_event_id, internal};
use crate::playback::{self, PlaybackError};
use crate::state::VmState;

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

pub(super) async fn get_clip(
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
            state.owner_token_matches(t) || playback::check_http_token(&state, t, &event_id)
        });
    if !authorized {
        return Err(warp::reject::custom(ApiError::Unauthorized));
    }
    check_event_id(&event_id)?;
    let range = match range.as_deref().map(parse_range).transpose()? {
        // The last N bytes: the edge names the clip's size when asked for an offset past it
        // (one more round trip), then the range starts N before the end.
        Some(ByteRange::Suffix(n)) => {
            let total = match playback::open_clip(&state, &event_id, u64::MAX).await {
                Err(PlaybackError::Refused(
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
    let clip = playback::open_clip(&state, &event_id, start)
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
