//! WireGuard packets over a byte stream (`/guardian/wg-relay/1`): each packet framed with a
//! 2-byte big-endian length, both ways. [`pump`] joins one stream to a [`Hub`] endpoint.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::transport::Hub;

/// The largest packet carried (WireGuard's are at most the MTU plus 32 bytes).
pub const MAX_PACKET: usize = 4096;

/// Writes one frame.
pub async fn write_packet<W: AsyncWrite + Unpin>(w: &mut W, packet: &[u8]) -> io::Result<()> {
    if packet.len() > MAX_PACKET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "packet too large",
        ));
    }
    let len = (packet.len() as u16).to_be_bytes();
    w.write_all(&len).await?;
    w.write_all(packet).await
}

/// Reads one frame into `buf`; `None` at a clean end of stream.
pub async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Option<()>> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_PACKET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(Some(()))
}

/// Carries packets between `stream` and the hub's virtual endpoint `endpoint` until either
/// side ends: packets WireGuard sends to `endpoint` are written to the stream (flushed when
/// no more are waiting), packets read are handed to WireGuard as coming from `endpoint`.
/// A later stream for the same endpoint replaces this one.
pub async fn pump<S>(stream: S, endpoint: SocketAddr, hub: Hub) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut reader, writer) = stream.split();
    let (mut outgoing, _attached) = hub.attach(endpoint);
    let write = async move {
        let mut w = futures::io::BufWriter::with_capacity(64 * 1024, writer);
        while let Some(p) = outgoing.recv().await {
            write_packet(&mut w, &p).await?;
            while let Ok(p) = outgoing.try_recv() {
                write_packet(&mut w, &p).await?;
            }
            w.flush().await?;
        }
        let _ = w.close().await;
        Ok::<(), io::Error>(())
    };
    let read = async {
        let mut buf = Vec::with_capacity(MAX_PACKET);
        while read_packet(&mut reader, &mut buf).await?.is_some() {
            hub.deliver(Bytes::copy_from_slice(&buf), endpoint).await;
        }
        Ok::<(), io::Error>(())
    };
    tokio::select! {
        r = write => r,
        r = read => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_a_cut_frame_is_an_error() {
        let mut wire = Vec::new();
        write_packet(&mut wire, b"hello").await.unwrap();
        write_packet(&mut wire, &[]).await.unwrap();
        write_packet(&mut wire, &[7u8; 1500]).await.unwrap();
        assert!(
            write_packet(&mut wire, &[0u8; MAX_PACKET + 1])
                .await
                .is_err()
        );
        let mut r = futures::io::Cursor::new(wire.clone());
        let mut buf = Vec::new();
        assert!(read_packet(&mut r, &mut buf).await.unwrap().is_some());
        assert_eq!(buf, b"hello");
        assert!(read_packet(&mut r, &mut buf).await.unwrap().is_some());
        assert!(buf.is_empty());
        assert!(read_packet(&mut r, &mut buf).await.unwrap().is_some());
        assert_eq!(buf.len(), 1500);
        assert!(read_packet(&mut r, &mut buf).await.unwrap().is_none());
        let mut cut = futures::io::Cursor::new(wire[..wire.len() - 1].to_vec());
        let mut n = 0;
        let err = loop {
            match read_packet(&mut cut, &mut buf).await {
                Ok(Some(())) => n += 1,
                Ok(None) => panic!("a cut frame read as a clean end"),
                Err(e) => break e,
            }
        };
        assert_eq!(n, 2);
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut huge = futures::io::Cursor::new(vec![0xff, 0xff, 0]);
        assert!(read_packet(&mut huge, &mut buf).await.is_err());
    }
}
