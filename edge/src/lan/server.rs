//! The LAN listener's accept loop (the design of the vm's): HTTP/1.1 only, a header-read
//! timeout (hyper's, which also ends idle keep-alive connections), a deadline on each request
//! body, and a cap on open connections overall and per address. A connection from an address
//! outside `[http] allow` is answered `403` and closed, and one over a cap `503` with
//! `Retry-After`, both before any request is read: the edge's file descriptors stay free for
//! its cameras and the libp2p sockets. [`Admission`] is the pure bookkeeping of the caps.
//!
//! Order on shutdown: stop accepting, let open requests finish (hyper's graceful close),
//! give up after [`DRAIN_WITHIN`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use guardian_node::Shutdown;

use super::allow::Networks;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tower_service::Service;
use warp::Filter;

/// Open requests may finish for this long once the shutdown is triggered.
pub const DRAIN_WITHIN: Duration = Duration::from_secs(2);

/// How long the 503 to a refused connection may take to write.
const REFUSE_WITHIN: Duration = Duration::from_secs(1);

/// The caps and timeouts of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once, from everyone.
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub max_per_address: usize,
    /// Time to send a request's headers (and how long an idle connection is kept).
    pub header_read_timeout: Duration,
    /// Time to send a request's body, from the end of its headers.
    pub body_timeout: Duration,
}

/// The address the connection came from, put into each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The address is outside `[http] allow`.
    NotAllowed,
    /// Every connection slot is taken.
    Overall,
    /// The address holds its share.
    Address,
}

/// Open connections, counted overall and per address.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    open: usize,
    per_address: HashMap<IpAddr, usize>,
}

impl Admission {
    /// No connection open.
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            open: 0,
            per_address: HashMap::new(),
        }
    }

    /// Counts a connection from `ip` in, unless a cap is reached.
    pub fn admit(&mut self, ip: IpAddr) -> Result<(), Full> {
        if self.open >= self.limits.max_connections {
            return Err(Full::Overall);
        }
        let n = self.per_address.entry(ip).or_default();
        if *n >= self.limits.max_per_address {
            return Err(Full::Address);
        }
        *n += 1;
        self.open += 1;
        Ok(())
    }

    /// A connection from `ip` closed.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&ip);
            }
            self.open -= 1;
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
    }
}

/// Releases its connection's slot when dropped.
struct Slot(Arc<Mutex<Admission>>, IpAddr);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.lock().expect("admission lock").release(self.1);
    }
}

/// A request body that fails once its deadline passes: a client sending its body slowly
/// cannot hold a request open.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Deadline {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(r) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(r.map(|f| f.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err("the request body was not sent in time".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a connection over a cap.
fn refusal(full: Full) -> Vec<u8> {
    let (status, error, message, retry) = match full {
        Full::NotAllowed => (
            "403 Forbidden",
            "forbidden",
            "your address is not in the edge's [http] allow list",
            "",
        ),
        Full::Overall => (
            "503 Service Unavailable",
            "unavailable",
            "the edge has too many connections open; try again shortly",
            "retry-after: 1\r\n",
        ),
        Full::Address => (
            "503 Service Unavailable",
            "unavailable",
            "too many connections from your address; close some and try again",
            "retry-after: 1\r\n",
        ),
    };
    let body = format!("{{\"error\":\"{error}\",\"message\":\"{message}\"}}");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
         {retry}cache-control: no-store\r\nx-content-type-options: nosniff\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `filter` on `listener` to addresses `allow` admits, under `limits`, until `stop`.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    filter: F,
    allow: Networks,
    limits: Limits,
    stop: Shutdown,
) where
    F: Filter<Extract = (warp::reply::Response,), Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    F::Future: Send,
{
    let admission = Arc::new(Mutex::new(Admission::new(limits)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // When the last refusal was logged: one line per 10 s at most, whatever the flood.
    let mut refused_logged: Option<tokio::time::Instant> = None;
    loop {
        let (socket, peer) = tokio::select! {
            _ = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors (EMFILE) or a connection reset before accept:
                    // wait a moment instead of spinning.
                    tracing::warn!(error = %e, "LAN HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let admitted = if allow.allows(peer.ip()) {
            admission.lock().expect("admission lock").admit(peer.ip())
        } else {
            Err(Full::NotAllowed)
        };
        if let Err(full) = admitted {
            if refused_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                refused_logged = Some(tokio::time::Instant::now());
                tracing::warn!(client = %peer.ip(), ?full, "LAN HTTP connection refused");
            }
            tokio::spawn(async move {
                let mut socket = socket;
                let _ = tokio::time::timeout(REFUSE_WITHIN, socket.write_all(&refusal(full))).await;
                let _ = socket.shutdown().await;
            });
            continue;
        }
        let slot = Slot(admission.clone(), peer.ip());
        let warp_service = warp::service(filter.clone());
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut svc = warp_service.clone();
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ClientAddr(peer));
            let body = Deadline {
                inner: body,
                sleep: Box::pin(tokio::time::sleep(limits.body_timeout)),
            };
            svc.call(hyper::Request::from_parts(parts, body))
        });
        let mut builder =
            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let conn = builder
            .serve_connection(TokioIo::new(socket), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_WITHIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("LAN HTTP requests still open at shutdown were cut");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per: usize) -> Limits {
        Limits {
            max_connections: max,
            max_per_address: per,
            header_read_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn connections_are_capped_overall_and_per_address() {
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "::1".parse().unwrap(),
        );
        let mut adm = Admission::new(limits(3, 2));
        assert_eq!(adm.admit(a), Ok(()));
        assert_eq!(adm.admit(a), Ok(()));
        assert_eq!(adm.admit(a), Err(Full::Address));
        assert_eq!(adm.admit(b), Ok(()));
        assert_eq!(adm.admit(c), Err(Full::Overall));
        assert_eq!(adm.open(), 3);
        adm.release(a);
        assert_eq!(adm.admit(c), Ok(()));
        assert_eq!(adm.admit(a), Err(Full::Overall));
        for ip in [a, b, c] {
            adm.release(ip);
        }
        assert_eq!(adm.open(), 0);
        // A release of an address with nothing open counts nothing.
        adm.release(b);
        assert_eq!(adm.open(), 0);
        assert!(adm.per_address.is_empty());
    }

    #[test]
    fn the_refusal_is_a_complete_503() {
        let text = String::from_utf8(refusal(Full::Address)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "unavailable");
        let text = String::from_utf8(refusal(Full::NotAllowed)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 403 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "forbidden");
    }
}
