//! The RTSP probe: hosts of the LAN that answer RTSP on the configured ports, and what a
//! `DESCRIBE` of common paths says (codec, size, whether credentials are wanted). Bounded:
//! at most `probes_per_sec` connection attempts a second, 32 at once, 1 s to connect, 3 s
//! per host and port, and the caller's deadline for the whole.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use protocols::lan::rtsp::{self, Response, SdpMedia};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connection attempts at once.
const AT_ONCE: usize = 32;
/// Time to connect.
const CONNECT_WITHIN: Duration = Duration::from_secs(1);
/// Time for everything asked of one host and port.
const HOST_WITHIN: Duration = Duration::from_secs(3);

/// What one host and port said.
#[derive(Debug, Clone, PartialEq)]
pub struct RtspHost {
    /// The host.
    pub ip: Ipv4Addr,
    /// The port.
    pub port: u16,
    /// The path that described a stream, if any.
    pub path: Option<String>,
    /// Its video, if described.
    pub video: Option<SdpMedia>,
    /// Whether it wants credentials (a `401` to `DESCRIBE`).
    pub needs_credentials: bool,
}

async fn exchange(s: &mut TcpStream, req: String, buf: &mut Vec<u8>) -> Option<Response> {
    s.write_all(req.as_bytes()).await.ok()?;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((r, used)) = rtsp::parse_response(buf).ok()? {
            buf.drain(..used);
            return Some(r);
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Asks one host and port: `OPTIONS`, then `DESCRIBE` of each path until one describes a
/// stream or wants credentials. `None` when nothing speaks RTSP there.
pub async fn probe_one(ip: Ipv4Addr, port: u16, paths: &[String]) -> Option<RtspHost> {
    let addr = SocketAddr::from((ip, port));
    let mut s = tokio::time::timeout(CONNECT_WITHIN, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let work = async {
        let mut buf = Vec::new();
        let base = format!("rtsp://{ip}:{port}");
        let options = exchange(
            &mut s,
            rtsp::request("OPTIONS", &format!("{base}/"), 1),
            &mut buf,
        )
        .await?;
        let mut host = RtspHost {
            ip,
            port,
            path: None,
            video: None,
            needs_credentials: options.status == 401,
        };
        for (i, path) in paths.iter().take(16).enumerate() {
            let url = format!("{base}{path}");
            let Some(r) = exchange(
                &mut s,
                rtsp::request("DESCRIBE", &url, 2 + i as u32),
                &mut buf,
            )
            .await
            else {
                break; // the camera closed the connection: what we know stands
            };
            match r.status {
                200 => {
                    let sdp = String::from_utf8_lossy(&r.body);
                    host.video = rtsp::parse_sdp(&sdp)
                        .into_iter()
                        .find(|m| m.kind == "video");
                    host.path = Some(path.clone());
                    break;
                }
                401 => {
                    host.needs_credentials = true;
                    host.path = Some(path.clone());
                    break;
                }
                _ => {}
            }
        }
        Some(host)
    };
    tokio::time::timeout(HOST_WITHIN, work).await.ok().flatten()
}

/// Probes every host on every port, starting at most `per_sec` attempts a second and
/// [`AT_ONCE`] at a time.
pub async fn probe_hosts(
    hosts: Vec<Ipv4Addr>,
    ports: &[u16],
    paths: &[String],
    per_sec: u32,
) -> Vec<RtspHost> {
    let gap = Duration::from_secs(1) / per_sec.clamp(1, 1000);
    let mut all = Vec::with_capacity(hosts.len() * ports.len());
    for h in hosts {
        for &p in ports {
            all.push((h, p));
        }
    }
    // An owned iterator: one borrowing `ports` across the awaits would not be `Send`.
    let mut targets = all.into_iter();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut out = Vec::new();
    let mut next_start = tokio::time::Instant::now();
    let mut more = true;
    loop {
        let can_start = more && in_flight.len() < AT_ONCE;
        if !can_start && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_start), if can_start => {
                match targets.next() {
                    Some((ip, port)) => {
                        in_flight.push(probe_one(ip, port, paths));
                        next_start += gap;
                    }
                    None => more = false,
                }
            }
            done = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(Some(h)) = done {
                    out.push(h);
                }
            }
        }
    }
    out.sort_by_key(|h| (h.ip, h.port));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-connection RTSP server answering OPTIONS, then 404 for `/`, then `last`.
    async fn camera(last: &'static str) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            let answers = [
                "RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n".to_string(),
                "RTSP/1.0 404 Not Found\r\nCSeq: 2\r\n\r\n".to_string(),
                last.to_string(),
            ];
            for a in answers {
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = c.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                buf.drain(..end + 4);
                c.write_all(a.as_bytes()).await.unwrap();
            }
        });
        port
    }

    #[tokio::test]
    async fn a_camera_described_one_wanting_credentials_and_nothing() {
        let paths: Vec<String> = ["/", "/cam", "/never"].map(String::from).to_vec();
        let sdp = "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=x-dimensions:1280,720\r\n";
        let ok: &'static str = Box::leak(
            format!(
                "RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            )
            .into_boxed_str(),
        );
        let described = camera(ok).await;
        let h = probe_one(Ipv4Addr::LOCALHOST, described, &paths)
            .await
            .unwrap();
        assert_eq!(h.path.as_deref(), Some("/cam"));
        assert!(!h.needs_credentials);
        let v = h.video.unwrap();
        assert_eq!(
            (v.encoding.as_deref(), v.size),
            (Some("H264"), Some((1280, 720)))
        );

        let locked = camera("RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\nWWW-Authenticate: Digest realm=\"x\", nonce=\"y\"\r\n\r\n").await;
        let h = probe_one(Ipv4Addr::LOCALHOST, locked, &paths)
            .await
            .unwrap();
        assert!(h.needs_credentials);
        assert_eq!(h.video, None);

        // A port nobody listens on, and a listener that is not RTSP.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ssh_port = ssh.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut c, _) = ssh.accept().await.unwrap();
            let _ = c.write_all(b"SSH-2.0-OpenSSH_9\r\n\r\n").await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let all = probe_hosts(
            vec![Ipv4Addr::LOCALHOST],
            &[closed_port, ssh_port],
            &paths,
            100,
        )
        .await;
        assert!(all.is_empty(), "{all:?}");
    }
}
