//! `/guardian/clips/1` on the edge: plays an event's sealed clip (the age file, never
//! plaintext) with its signed manifest to whoever holds a playback token; only the owner's
//! keys open it, so neither the vm relaying it nor anyone on the way sees a frame.
//!
//! The token is the authorization, whoever the peer is (the owner's client through the vm's
//! relay, or the vm itself for its HTTP path). It must be signed by the tenant key named in
//! the install package, name this tenant and this edge, not have expired, name the event the
//! client asks for, and its nonce must be unused: nonces are spent in SQLite (kept until the
//! token's expiry), so neither a replay nor a restart reopens a token. The event must exist
//! with a clip, and the offset be at most the clip's size. Then `Streaming` and the bytes from
//! the offset follow, read in 256 KiB pieces (memory stays one buffer per stream, at most
//! [`MAX_STREAMS`] at once). Every refusal is typed ([`ClipRefusal`]), sent, and logged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ed25519_dalek::VerifyingKey;
use futures::AsyncWriteExt;
use guardian_node::clock::SharedClock;
use guardian_node::shutdown::Shutdown;
use guardian_node::{PeerId, Stream};
use protocols::codec::{read_frame, write_frame};
use protocols::messages::clips::{ClipRefusal, ClipRequest, ClipResponse, PlaybackToken};
use protocols::signed::Signed;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::store::Db;

/// Clip streams served at once; more wait for a turn.
pub const MAX_STREAMS: usize = 8;
const CHUNK: usize = 256 * 1024;
/// How long a peer may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one write may wait for a peer that stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The content type of clips as served: the age file.
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// What the clip server knows about this edge.
pub struct ClipServer {
    /// The data directory (clip paths are relative to it).
    pub data: PathBuf,
    /// The tenant.
    pub tenant_id: String,
    /// The tenant key, from the install package.
    pub tenant_key: VerifyingKey,
    /// This edge's peer id.
    pub edge_peer_id: String,
    /// The database (events' clips, spent nonces).
    pub db: Db,
    /// Where token expiry and nonce times are read.
    pub clock: SharedClock,
}

/// Checks what can be checked without the database: signature, tenant, edge, expiry, event.
pub fn check_token(
    token: &Signed<PlaybackToken>,
    requested_event: Option<&str>,
    tenant_id: &str,
    tenant_key: &VerifyingKey,
    edge_peer_id: &str,
    now_ms: u64,
) -> Result<PlaybackToken, ClipRefusal> {
    let t = token
        .verify(tenant_key)
        .map_err(|_| ClipRefusal::BadSignature)?;
    if t.tenant_id != tenant_id {
        return Err(ClipRefusal::BadSignature);
    }
    if t.edge_peer_id != edge_peer_id {
        return Err(ClipRefusal::WrongEdge);
    }
    if now_ms > t.expires_at_ms {
        return Err(ClipRefusal::Expired);
    }
    if let Some(r) = requested_event
        && r != t.event_id
    {
        return Err(ClipRefusal::WrongEvent {
            token_event: t.event_id,
            requested: r.to_owned(),
        });
    }
    Ok(t)
}

/// Serves clip streams until `shutdown` is triggered or the stream of incoming streams
/// ends. Streams already being played go on until they end or the node stops.
pub async fn serve(
    server: Arc<ClipServer>,
    incoming: guardian_node::IncomingStreams,
    shutdown: Shutdown,
) {
    guardian_node::serve_streams(incoming, MAX_STREAMS, shutdown, |peer, stream| {
        let server = server.clone();
        async move {
            if let Err(e) = handle(&server, peer, stream).await {
                tracing::warn!(%peer, error = format!("{e:#}"), "clip stream failed");
            }
        }
    })
    .await
}

/// An accepted request: the open clip at the offset.
struct Accepted {
    file: tokio::fs::File,
    manifest_json: Option<String>,
    total_size: u64,
    offset: u64,
    token: PlaybackToken,
}

async fn decide(server: &ClipServer, request: &ClipRequest) -> Result<Accepted, ClipRefusal> {
    let token = check_token(
        &request.token,
        request.event_id.as_deref(),
        &server.tenant_id,
        &server.tenant_key,
        &server.edge_peer_id,
        server.clock.wall_ms(),
    )?;
    let no_clip = || ClipRefusal::NoSuchClip(token.event_id.clone());
    let event = token.event_id.clone();
    let playable = server
        .db
        .call(move |s| s.playable(&event))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot look up a clip");
            no_clip()
        })?
        .ok_or_else(no_clip)?;
    let path = server.data.join(&playable.clip_path);
    let manifest_json = playable
        .manifest_json
        .and_then(|m| String::from_utf8(m).ok());
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "an event's clip cannot be opened");
        no_clip()
    })?;
    let total_size = file.metadata().await.map_err(|_| no_clip())?.len();
    if request.offset > total_size {
        return Err(ClipRefusal::BadOffset {
            offset: request.offset,
            total_size,
        });
    }
    let (nonce, expires, event, owner) = (
        token.nonce.clone(),
        token.expires_at_ms,
        token.event_id.clone(),
        token.owner.clone(),
    );
    let now = server.clock.wall_ms();
    let fresh = server
        .db
        .call(move |s| s.spend_nonce(&nonce, expires, &event, &owner, now))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot record a playback nonce");
            // Refuse rather than risk a replay.
            ClipRefusal::Replayed
        })?;
    if !fresh {
        return Err(ClipRefusal::Replayed);
    }
    file.seek(std::io::SeekFrom::Start(request.offset))
        .await
        .map_err(|_| no_clip())?;
    Ok(Accepted {
        file,
        manifest_json,
        total_size,
        offset: request.offset,
        token,
    })
}

async fn handle(server: &ClipServer, peer: PeerId, mut stream: Stream) -> Result<()> {
    let request: ClipRequest = tokio::time::timeout(REQUEST_TIMEOUT, read_frame(&mut stream))
        .await
        .context("no clip request in time")??;
    let accepted = match decide(server, &request).await {
        Ok(a) => a,
        Err(refusal) => {
            let t = request.token.peek().ok();
            tracing::warn!(
                %peer,
                event = t.as_ref().map(|t| t.event_id.as_str()).unwrap_or("?"),
                owner = t.as_ref().map(|t| t.owner.as_str()).unwrap_or("?"),
                reason = %refusal,
                "clip playback refused"
            );
            let _ = tokio::time::timeout(
                WRITE_TIMEOUT,
                write_frame(&mut stream, &ClipResponse::Refused(refusal)),
            )
            .await;
            let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.close()).await;
            return Ok(());
        }
    };
    let Accepted {
        mut file,
        manifest_json,
        total_size,
        offset,
        token,
    } = accepted;
    tracing::info!(%peer, event = %token.event_id, owner = %token.owner, offset, total_size, "clip playback started");
    tokio::time::timeout(
        WRITE_TIMEOUT,
        write_frame(
            &mut stream,
            &ClipResponse::Streaming {
                total_size,
                offset,
                content_type: CONTENT_TYPE.into(),
                manifest_json,
            },
        ),
    )
    .await
    .context("the peer stopped reading")??;
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    let started = server.clock.monotonic();
    let want = total_size - offset;
    while sent < want {
        let n = file
            .read(&mut buf[..CHUNK.min((want - sent) as usize)])
            .await?;
        if n == 0 {
            anyhow::bail!("the clip shrank while it was played ({sent} of {want} bytes sent)");
        }
        tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&buf[..n]))
            .await
            .context("the peer stopped reading")?
            .with_context(|| format!("the stream broke after {sent} bytes"))?;
        sent += n as u64;
    }
    tokio::time::timeout(WRITE_TIMEOUT, stream.close())
        .await
        .context("the peer stopped reading")??;
    tracing::info!(
        %peer,
        event = %token.event_id,
        bytes = sent,
        ms = (server.clock.monotonic() - started).as_millis() as u64,
        "clip playback finished"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use guardian_node::clock::ManualClock;

    fn token(key: &SigningKey, f: impl FnOnce(&mut PlaybackToken)) -> Signed<PlaybackToken> {
        let mut t = PlaybackToken {
            tenant_id: "t".into(),
            event_id: "ev".into(),
            owner: "o".into(),
            edge_peer_id: "edge".into(),
            nonce: "n".into(),
            issued_at_ms: 0,
            expires_at_ms: 1000,
        };
        f(&mut t);
        Signed::sign(&t, key)
    }

    #[test]
    fn each_check_refuses_with_its_reason() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let vk = k.verifying_key();
        let check = |t: &Signed<PlaybackToken>, ev: Option<&str>, now| {
            check_token(t, ev, "t", &vk, "edge", now)
        };
        assert!(check(&token(&k, |_| {}), Some("ev"), 10).is_ok());
        assert!(check(&token(&k, |_| {}), None, 1000).is_ok());
        assert_eq!(
            check(&token(&other, |_| {}), None, 10),
            Err(ClipRefusal::BadSignature)
        );
        assert_eq!(
            check(&token(&k, |t| t.tenant_id = "u".into()), None, 10),
            Err(ClipRefusal::BadSignature)
        );
        assert_eq!(
            check(&token(&k, |t| t.edge_peer_id = "x".into()), None, 10),
            Err(ClipRefusal::WrongEdge)
        );
        assert_eq!(
            check(&token(&k, |_| {}), None, 1001),
            Err(ClipRefusal::Expired)
        );
        assert!(matches!(
            check(&token(&k, |_| {}), Some("ev2"), 10),
            Err(ClipRefusal::WrongEvent { .. })
        ));
    }

    /// A clip server over a temporary data directory holding event `ev` with a 10-byte clip.
    fn server(key: &SigningKey, clock: &ManualClock) -> (tempfile::TempDir, ClipServer) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(&dir.path().join("edge.sqlite")).unwrap();
        std::fs::create_dir_all(dir.path().join("clips")).unwrap();
        std::fs::write(dir.path().join("clips/ev.mp4"), b"0123456789").unwrap();
        let record = protocols::messages::events::EventRecord {
            event_id: "ev".into(),
            tenant_id: "t".into(),
            edge_id: "edge".into(),
            camera_id: "c".into(),
            started_at_ms: 1,
            ended_at_ms: 2,
            category: protocols::messages::Category::Person,
            score_milli: 900,
            clip_cid: None,
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            ..Default::default()
        };
        store
            .insert_event(
                &crate::store::LocalEvent {
                    record,
                    track_json: "[]".into(),
                    clip_path: Some("clips/ev.mp4".into()),
                    snapshot_path: None,
                    thumbnail_path: None,
                    objects_dir: None,
                    manifest_json: None,
                    bytes: 10,
                },
                false,
                1,
            )
            .unwrap();
        let server = ClipServer {
            data: dir.path().to_path_buf(),
            tenant_id: "t".into(),
            tenant_key: key.verifying_key(),
            edge_peer_id: "edge".into(),
            db: Db::new(store),
            clock: clock.shared(),
        };
        (dir, server)
    }

    fn request(token: Signed<PlaybackToken>, offset: u64) -> ClipRequest {
        ClipRequest {
            token,
            offset,
            event_id: Some("ev".into()),
        }
    }

    #[tokio::test]
    async fn a_token_plays_once_until_it_expires_on_the_clock() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let clock = ManualClock::new(100);
        let (_dir, server) = server(&k, &clock);

        let first = decide(&server, &request(token(&k, |_| {}), 4))
            .await
            .unwrap();
        assert_eq!((first.total_size, first.offset), (10, 4));
        assert!(matches!(
            decide(&server, &request(token(&k, |_| {}), 0)).await,
            Err(ClipRefusal::Replayed)
        ));
        assert!(matches!(
            decide(&server, &request(token(&k, |_| {}), 11)).await,
            Err(ClipRefusal::BadOffset {
                offset: 11,
                total_size: 10
            })
        ));

        // Past the expiry (1000) on the clock: refused, and the nonce is not spent.
        clock.advance(Duration::from_millis(901));
        let n2 = |t: &mut PlaybackToken| t.nonce = "n2".into();
        assert!(matches!(
            decide(&server, &request(token(&k, n2), 0)).await,
            Err(ClipRefusal::Expired)
        ));
        // The first nonce was kept until its token expired, then pruned: a new token reusing
        // it plays (the spent record is gone with the token it guarded).
        let later = |t: &mut PlaybackToken| t.expires_at_ms = 5_000;
        assert!(decide(&server, &request(token(&k, later), 0)).await.is_ok());
        let n2_later = |t: &mut PlaybackToken| {
            t.nonce = "n2".into();
            t.expires_at_ms = 5_000;
        };
        assert!(
            decide(&server, &request(token(&k, n2_later), 0))
                .await
                .is_ok(),
            "the expired token did not spend its nonce"
        );
        assert!(matches!(
            decide(&server, &request(token(&k, n2_later), 0)).await,
            Err(ClipRefusal::Replayed)
        ));
    }
}
