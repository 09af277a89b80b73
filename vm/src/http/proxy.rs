//! `GET /api/v1/devices/{peer}/proxy/{path}` (admin): a GET passed through the WireGuard
//! overlay to the edge's local API, `http://[edge's overlay address]:api_port/{path}?{query}`,
//! with the request's `X-Edge-Authorization` as the edge's `Authorization` (the edge's own
//! sign-in: the vm's credentials never go to it).
//!
//! Only JSON comes back (the edge's status and body when its `Content-Type` is
//! `application/json`, else 502), with `Content-Security-Policy: default-src 'none'` and no
//! header of the edge's: the edge's pages must never run on the vm's origin, where they could
//! drive the vm's API with the owner's cookie. [`target`] and [`is_json`] are pure.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use warp::Rejection;
use warp::http::{HeaderValue, StatusCode, header};

use super::json_error;
use crate::db;
use crate::state::VmState;

/// How long the edge has to answer.
const WITHIN: Duration = Duration::from_secs(30);
/// The largest answer passed on.
const MAX_ANSWER: u64 = 8 << 20;

/// The edge's path and query as sent on, or why not: characters of a URL's path (and query)
/// only, no `.` or `..` segment. Pure.
pub fn target(tail: &str, query: &str) -> Result<String, &'static str> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/".contains(&b);
    if !tail.bytes().all(allowed) || !query.bytes().all(|b| allowed(b) || b == b'?') {
        return Err("the path or query holds characters a URL does not");
    }
    let dots = |s: &str| {
        let s = s.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    };
    if tail.split('/').any(dots) {
        return Err("the path has a . or .. segment");
    }
    Ok(if query.is_empty() {
        format!("/{tail}")
    } else {
        format!("/{tail}?{query}")
    })
}

/// Whether a `Content-Type` is `application/json` (with any parameters). Pure.
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// The headers every answer of the proxy carries.
fn sealed(mut r: warp::reply::Response) -> warp::reply::Response {
    let h = r.headers_mut();
    h.remove(header::SET_COOKIE);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn error(status: StatusCode, code: &'static str, message: String) -> warp::reply::Response {
    sealed(json_error(status, code, message))
}

/// What the edge answered.
enum Answer {
    Json(u16, Vec<u8>),
    NotJson(Option<String>),
    TooLarge,
    Silent(String),
}

/// `GET /api/v1/devices/{peer}/proxy/{path}`.
pub(super) async fn get(
    peer: String,
    tail: warp::path::Tail,
    state: Arc<VmState>,
    query: String,
    edge_authorization: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    let path = match target(tail.as_str(), &query) {
        Ok(p) => p,
        Err(why) => return Ok(error(StatusCode::BAD_REQUEST, "bad_request", why.into())),
    };
    let p = peer.clone();
    let found = state
        .db
        .call(move |c| Ok((db::device(c, &p)?.is_some(), db::overlay_edge(c, &p)?)))
        .await;
    let (known, row) = match found {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "API request failed");
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request failed on the server; see its log".into(),
            ));
        }
    };
    if !known {
        return Ok(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no edge {peer}"),
        ));
    }
    let off = |m: &str| error(StatusCode::SERVICE_UNAVAILABLE, "overlay_off", m.into());
    let overlay = match state.overlay.get() {
        Some(o) if o.is_running().await => o.clone(),
        _ => return Ok(off("the WireGuard overlay is off at this vm")),
    };
    let Some(row) = row else {
        return Ok(off("the edge has no WireGuard tunnel to the vm yet"));
    };
    if row.api_port == 0 {
        return Ok(off(
            "the edge serves no API on the overlay (its [wg] api_port is 0)",
        ));
    }
    let Ok(address) = overlay.settings.prefixes.peer(row.index) else {
        return Ok(off("the edge has no overlay address"));
    };
    let url = format!("http://[{}]:{}{path}", address.v6, row.api_port);
    let call = tokio::task::spawn_blocking(move || fetch(&url, edge_authorization.as_deref()));
    let answer = match tokio::time::timeout(WITHIN + Duration::from_secs(2), call).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => Answer::Silent(e.to_string()),
        Err(_) => Answer::Silent("timed out".into()),
    };
    Ok(match answer {
        Answer::Json(status, body) => {
            let mut r = warp::reply::Response::new(body.into());
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            sealed(r)
        }
        Answer::NotJson(t) => {
            tracing::info!(%peer, content_type = ?t, "the proxy refused an edge's answer that is not JSON");
            error(
                StatusCode::BAD_GATEWAY,
                "edge_error",
                format!(
                    "the edge answered {} and the proxy passes JSON only (application/json)",
                    t.as_deref().unwrap_or("without a Content-Type")
                ),
            )
        }
        Answer::TooLarge => error(
            StatusCode::BAD_GATEWAY,
            "edge_error",
            format!("the edge's answer is larger than {} MiB", MAX_ANSWER >> 20),
        ),
        Answer::Silent(e) => {
            tracing::info!(%peer, error = %e, "the edge did not answer over the overlay");
            error(
                StatusCode::GATEWAY_TIMEOUT,
                "edge_timeout",
                "the edge does not answer over the WireGuard overlay".into(),
            )
        }
    })
}

/// The GET itself (blocking: on the blocking pool), without following redirects.
fn fetch(url: &str, authorization: Option<&str>) -> Answer {
    let agent = ureq::AgentBuilder::new()
        .timeout(WITHIN)
        .redirects(0)
        .build();
    let mut req = agent
        .get(url)
        .set("Accept", "application/json")
        .set("User-Agent", "guardian-vm");
    if let Some(a) = authorization {
        req = req.set("Authorization", a);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Answer::Silent(e.to_string()),
    };
    let content_type = resp.header("content-type").map(str::to_owned);
    if !is_json(content_type.as_deref()) {
        return Answer::NotJson(content_type);
    }
    let status = resp.status();
    let mut body = Vec::new();
    match resp
        .into_reader()
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut body)
    {
        Ok(n) if n as u64 > MAX_ANSWER => Answer::TooLarge,
        Ok(_) => Answer::Json(status, body),
        Err(e) => Answer::Silent(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_paths_go_to_the_edge() {
        assert_eq!(target("api/v1/health", "").unwrap(), "/api/v1/health");
        assert_eq!(
            target("api/v1/review", "camera=porch&limit=5").unwrap(),
            "/api/v1/review?camera=porch&limit=5"
        );
        assert_eq!(target("", "").unwrap(), "/");
        assert_eq!(
            target("api/v1/events/a%20b", "").unwrap(),
            "/api/v1/events/a%20b"
        );
        for (tail, query) in [
            ("api/../secret", ""),
            ("api/./x", ""),
            ("..", ""),
            ("api/%2E%2e/x", ""),
            ("api/x y", ""),
            ("api/x\r\nHost: evil", ""),
            ("api/x", "a=b#frag"),
            ("api/x", "a=<script>"),
        ] {
            assert!(target(tail, query).is_err(), "{tail:?} {query:?}");
        }
        // A dot inside a segment is fine.
        assert!(target("assets/app.js", "").is_ok());
        assert!(target("a/...", "").is_ok());
    }

    /// A one-request HTTP server answering `answer`; its address and what it was sent.
    fn serve_once(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = std::io::BufReader::new(stream);
            let mut request = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                request += &line;
            }
            reader.into_inner().write_all(answer.as_bytes()).unwrap();
            request
        });
        (base, t)
    }

    #[test]
    fn the_edge_answer_passes_only_as_json() {
        let (base, t) = serve_once(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
             Set-Cookie: s=1\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{\"error\":\"nope\"}",
        );
        match fetch(
            &format!("{base}/api/v1/health?x=1"),
            Some("Bearer edge-token"),
        ) {
            Answer::Json(status, body) => {
                assert_eq!(
                    (status, body.as_slice()),
                    (401, &b"{\"error\":\"nope\"}"[..])
                )
            }
            _ => panic!("not passed as JSON"),
        }
        let request = t.join().unwrap();
        assert!(
            request.starts_with("GET /api/v1/health?x=1 HTTP/1.1"),
            "{request}"
        );
        assert!(
            request.contains("Authorization: Bearer edge-token"),
            "{request}"
        );
        let (base, t) = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\nhi",
        );
        assert!(matches!(fetch(&base, None), Answer::NotJson(Some(t)) if t == "text/html"));
        assert!(!t.join().unwrap().contains("Authorization"));
        // A redirect is not followed (a JSON one is passed as it is).
        let (base, t) = serve_once(
            "HTTP/1.1 302 Found\r\nLocation: http://198.51.100.1/\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        );
        assert!(matches!(fetch(&base, None), Answer::Json(302, _)));
        t.join().unwrap();
        // Nobody there.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        assert!(matches!(fetch(&url, None), Answer::Silent(_)));
    }

    #[test]
    fn json_is_application_json_with_any_parameters() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(!is_json(Some("text/html")));
        assert!(!is_json(Some("application/json-seq")));
        assert!(!is_json(Some("application/javascript")));
        assert!(!is_json(None));
    }
}
