//! A small blocking HTTP/1.1 client for cameras' SOAP services: one `POST` per connection
//! (`Connection: close`), every step bounded in time, the answer bounded in size, bodies by
//! `Content-Length`, chunks, or the connection's end. Camera threads call it directly; the
//! scanner from the blocking pool. Plain `http://` only: cameras' ONVIF services are served
//! on the LAN over HTTP (an `https://` xaddr is refused with that reason).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The largest answer read.
pub const MAX_ANSWER: usize = 1024 * 1024;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host[:port]/path`.
    #[error("unusable URL {0:?}: want http://host[:port]/path")]
    Url(String),
    /// No connection.
    #[error("could not connect to {addr}: {error}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        error: String,
    },
    /// The connection failed or timed out after it was made.
    #[error("{0}")]
    Io(String),
    /// Not an HTTP answer, or too large.
    #[error("bad HTTP answer: {0}")]
    Answer(String),
}

/// A URL's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host (an IPv6 literal without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, from `/`.
    pub path: String,
}

/// Splits `http://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<HttpUrl, HttpError> {
    let bad = || HttpError::Url(url.to_owned());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if auth.contains('@') || auth.is_empty() {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = auth.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => 80,
            None => return Err(bad()),
        };
        (h.to_owned(), port)
    } else {
        match auth.split_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
            None => (auth.to_owned(), 80),
        }
    };
    if host.is_empty() || path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad());
    }
    Ok(HttpUrl {
        host,
        port,
        path: path.to_owned(),
    })
}

/// POSTs `body` to `url` and returns the status and body, all within `timeout`.
pub fn post(
    url: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    let u = parse_url(url)?;
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let addr: SocketAddr = (u.host.as_str(), u.port)
        .to_socket_addrs()
        .map_err(|e| HttpError::Connect {
            addr: format!("{}:{}", u.host, u.port),
            error: e.to_string(),
        })?
        .next()
        .ok_or_else(|| HttpError::Url(url.to_owned()))?;
    let mut s = TcpStream::connect_timeout(&addr, left()).map_err(|e| HttpError::Connect {
        addr: addr.to_string(),
        error: e.to_string(),
    })?;
    let io = |e: std::io::Error| HttpError::Io(format!("{addr}: {e}"));
    let host = if u.host.contains(':') {
        format!("[{}]", u.host)
    } else {
        u.host.clone()
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: guardian-edge\r\n\r\n",
        u.path,
        u.port,
        body.len()
    );
    s.set_write_timeout(Some(left())).map_err(io)?;
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        s.set_read_timeout(Some(left())).map_err(io)?;
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_ANSWER {
            return Err(HttpError::Answer("larger than 1 MiB".into()));
        }
        if let Some(done) = complete(&buf)? {
            return Ok(done);
        }
        if Instant::now() >= deadline {
            return Err(HttpError::Io(format!(
                "{addr}: no whole answer in {timeout:?}"
            )));
        }
    }
    complete_at_end(&buf)
}

/// The answer in `buf` if it is whole (by its length or chunks), `None` if more may come.
fn complete(buf: &[u8]) -> Result<Option<(u16, Vec<u8>)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let at = match r.parse(buf) {
        Ok(httparse::Status::Complete(at)) => at,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpError::Answer(e.to_string())),
    };
    let status = r.code.unwrap_or(0);
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        return Ok(dechunk(&buf[at..])?.map(|b| (status, b)));
    }
    if let Some(len) = header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::Answer("bad Content-Length".into()))?;
        if len > MAX_ANSWER {
            return Err(HttpError::Answer("larger than 1 MiB".into()));
        }
        return Ok((buf.len() >= at + len).then(|| (status, buf[at..at + len].to_vec())));
    }
    Ok(None)
}

/// At the connection's end: the answer, whatever framing it had.
fn complete_at_end(buf: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
    if let Some(done) = complete(buf)? {
        return Ok(done);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    match r.parse(buf) {
        Ok(httparse::Status::Complete(at)) => Ok((r.code.unwrap_or(0), buf[at..].to_vec())),
        _ => Err(HttpError::Answer(
            "the connection closed before a whole answer".into(),
        )),
    }
}

/// Chunked transfer coding: the body if every chunk is here.
fn dechunk(mut b: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&b[..eol])
            .map_err(|_| HttpError::Answer("bad chunk size".into()))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| HttpError::Answer("bad chunk size".into()))?;
        if size > MAX_ANSWER {
            return Err(HttpError::Answer("larger than 1 MiB".into()));
        }
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if b.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://10.0.0.3:8080/onvif/device_service").unwrap(),
            HttpUrl {
                host: "10.0.0.3".into(),
                port: 8080,
                path: "/onvif/device_service".into()
            }
        );
        assert_eq!(parse_url("http://cam").unwrap().port, 80);
        assert_eq!(parse_url("http://[fe80::1]:81/x").unwrap().host, "fe80::1");
        for bad in [
            "https://cam/x",
            "http://u:p@cam/x",
            "http://cam:99999/",
            "http:///x",
            "http://cam/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn framings() {
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(complete(whole).unwrap(), Some((200, b"hello".to_vec())));
        assert_eq!(complete(&whole[..whole.len() - 1]).unwrap(), None);
        let chunked = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(complete(chunked).unwrap(), Some((400, b"abcde".to_vec())));
        assert_eq!(complete(&chunked[..60]).unwrap(), None);
        let eof = b"HTTP/1.0 200 OK\r\n\r\nuntil the end";
        assert_eq!(complete(eof).unwrap(), None);
        assert_eq!(
            complete_at_end(eof).unwrap(),
            (200, b"until the end".to_vec())
        );
        assert!(complete(b"SSH-2.0\r\n\r\n").is_err());
        assert!(complete_at_end(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn a_post_to_a_local_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 4096];
            while !got.ends_with(b"<x/>") {
                let n = c.read(&mut b).unwrap();
                got.extend_from_slice(&b[..n]);
            }
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<ok/\r\n1\r\n>\r\n0\r\n\r\n").unwrap();
            String::from_utf8(got).unwrap()
        });
        let (status, body) = post(
            &format!("http://127.0.0.1:{port}/onvif/device_service"),
            "application/soap+xml",
            b"<x/>",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!((status, body.as_slice()), (200, b"<ok/>".as_slice()));
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /onvif/device_service HTTP/1.1\r\n"));
        assert!(request.contains("Content-Length: 4\r\n"));
        let refused = post(
            &format!("http://127.0.0.1:{port}/"),
            "text/xml",
            b"",
            Duration::from_secs(2),
        );
        assert!(
            matches!(refused, Err(HttpError::Connect { .. })),
            "{refused:?}"
        );
    }
}
