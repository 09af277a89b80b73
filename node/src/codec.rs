//! A request-response codec over the length-prefixed CBOR frames of `protocols::codec`: the
//! request and response types bring their own size limits and versions. And
//! [`open_with_request`], for protocols whose stream goes on after the first answer (a clip's
//! bytes, archived objects).

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncWrite};
use libp2p::{PeerId, Stream, StreamProtocol};
use protocols::codec::{FrameError, WireMessage, read_frame, write_frame};

use crate::error::RequestError;

/// The codec for one protocol: requests `Req`, responses `Resp`.
pub struct FrameCodec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> Default for FrameCodec<Req, Resp> {
    fn default() -> Self {
        FrameCodec(PhantomData)
    }
}

impl<Req, Resp> Clone for FrameCodec<Req, Resp> {
    fn clone(&self) -> Self {
        FrameCodec(PhantomData)
    }
}

fn io_error(e: FrameError) -> io::Error {
    match e {
        FrameError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl<Req, Resp> libp2p::request_response::Codec for FrameCodec<Req, Resp>
where
    Req: WireMessage + Send + Sync + 'static,
    Resp: WireMessage + Send + Sync + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await.map_err(io_error)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await.map_err(io_error)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await.map_err(io_error)
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await.map_err(io_error)
    }
}

/// Opens a `protocol` stream to `peer` (over a connection the node has or dials), writes
/// `request` as one frame and reads the first answer: the stream, for what follows, and the
/// answer. Callers bound it with their own timeout.
pub async fn open_with_request<Req: WireMessage, Resp: WireMessage>(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    protocol: &'static str,
    request: &Req,
) -> Result<(Stream, Resp), RequestError> {
    let mut stream = control
        .open_stream(peer, StreamProtocol::new(protocol))
        .await?;
    write_frame(&mut stream, request)
        .await
        .map_err(|e| RequestError::Io(e.to_string()))?;
    let answer = read_frame(&mut stream).await.map_err(|e| match e {
        FrameError::Closed { .. } => RequestError::ConnectionClosed,
        other => RequestError::Io(other.to_string()),
    })?;
    Ok((stream, answer))
}
