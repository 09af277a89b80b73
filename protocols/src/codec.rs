//! The CBOR envelope shared by every wire message, and length-prefixed frames for streams.
//!
//! # Encoding
//!
//! A message is the CBOR array `[version, body]`: `version` is an unsigned integer (the
//! message type's [`WireMessage::VERSION`]), `body` is the message as a CBOR map with the
//! field names of its Rust type. Unknown fields in a body are ignored, so a newer peer may add
//! optional fields; an unknown `version` is refused, so an incompatible change must bump it.
//!
//! # Limits
//!
//! Every message type has a [`WireMessage::MAX_SIZE`] in bytes. [`decode`] checks it before
//! parsing, [`read_frame`] before allocating, and [`encode`] refuses to produce a larger
//! message, so a peer can never make another hold more than one message's limit in memory.
//!
//! # Frames
//!
//! On a libp2p stream each message is preceded by its length as a big-endian `u32`.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::{Serialize, de::DeserializeOwned};

/// A message that travels on the wire: a name for errors, a version and a size limit.
pub trait WireMessage: Serialize + DeserializeOwned {
    /// A short name used in errors and logs, such as `"EnrollRequest"`.
    const NAME: &'static str;
    /// The envelope version this build writes and accepts.
    const VERSION: u16 = 1;
    /// The largest encoded size accepted, in bytes, envelope included.
    const MAX_SIZE: usize;
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The encoded message exceeds its type's limit.
    #[error("{message} is {size} bytes encoded, over its limit of {limit} bytes")]
    TooLarge {
        /// The message type.
        message: &'static str,
        /// The encoded size.
        size: usize,
        /// The type's limit.
        limit: usize,
    },
    /// The CBOR serializer failed (a type that CBOR cannot represent).
    #[error("{message} could not be encoded: {reason}")]
    Serialize {
        /// The message type.
        message: &'static str,
        /// What the serializer said.
        reason: String,
    },
}

/// Why bytes from a peer were not accepted as a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// More bytes than the type allows; nothing was parsed.
    #[error("{message} of {size} bytes is over its limit of {limit} bytes")]
    TooLarge {
        /// The message type.
        message: &'static str,
        /// The size announced or received.
        size: usize,
        /// The type's limit.
        limit: usize,
    },
    /// The input ended inside the message.
    #[error("{message} is truncated")]
    Truncated {
        /// The message type.
        message: &'static str,
    },
    /// The envelope carries a version this build does not speak.
    #[error("{message} has version {got}, this build speaks version {supported}")]
    UnsupportedVersion {
        /// The message type.
        message: &'static str,
        /// The version received.
        got: u64,
        /// The version this build speaks.
        supported: u16,
    },
    /// The bytes are not a well-formed message of this type.
    #[error("{message} is malformed: {reason}")]
    Malformed {
        /// The message type.
        message: &'static str,
        /// What did not parse.
        reason: String,
    },
    /// Bytes follow a complete message.
    #[error("{message} is followed by {extra} unexpected bytes")]
    TrailingBytes {
        /// The message type.
        message: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

/// Why a frame could not be read from or written to a stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed or closed before a whole frame arrived.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream closed cleanly where a frame should have started.
    #[error("stream closed before a {message} arrived")]
    Closed {
        /// The message type expected.
        message: &'static str,
    },
    /// The frame arrived but is not an acceptable message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Encodes `message` in its envelope, refusing to exceed its size limit.
pub fn encode<M: WireMessage>(message: &M) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(128);
    ciborium::into_writer(&(M::VERSION, message), &mut out).map_err(|e| {
        EncodeError::Serialize {
            message: M::NAME,
            reason: e.to_string(),
        }
    })?;
    if out.len() > M::MAX_SIZE {
        return Err(EncodeError::TooLarge {
            message: M::NAME,
            size: out.len(),
            limit: M::MAX_SIZE,
        });
    }
    Ok(out)
}

/// Decodes one whole message of type `M` from `bytes`.
pub fn decode<M: WireMessage>(bytes: &[u8]) -> Result<M, DecodeError> {
    if bytes.len() > M::MAX_SIZE {
        return Err(DecodeError::TooLarge {
            message: M::NAME,
            size: bytes.len(),
            limit: M::MAX_SIZE,
        });
    }
    let mut rest = bytes;
    let (version, body): (u64, ciborium::Value) =
        ciborium::from_reader(&mut rest).map_err(|e| cbor_error::<M>(e))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            message: M::NAME,
            extra: rest.len(),
        });
    }
    if version != u64::from(M::VERSION) {
        return Err(DecodeError::UnsupportedVersion {
            message: M::NAME,
            got: version,
            supported: M::VERSION,
        });
    }
    body.deserialized().map_err(|e| DecodeError::Malformed {
        message: M::NAME,
        reason: e.to_string(),
    })
}

fn cbor_error<M: WireMessage>(e: ciborium::de::Error<std::io::Error>) -> DecodeError {
    match e {
        ciborium::de::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Truncated { message: M::NAME }
        }
        other => DecodeError::Malformed {
            message: M::NAME,
            reason: other.to_string(),
        },
    }
}

/// Writes `message` as one length-prefixed frame and flushes.
pub async fn write_frame<M: WireMessage, W: AsyncWrite + Unpin>(
    io: &mut W,
    message: &M,
) -> Result<(), FrameError> {
    let bytes = encode(message)?;
    let len = u32::try_from(bytes.len()).expect("MAX_SIZE fits in u32");
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.flush().await?;
    Ok(())
}

/// Reads one length-prefixed frame holding an `M`, refusing an oversized length before
/// allocating anything for it.
pub async fn read_frame<M: WireMessage, R: AsyncRead + Unpin>(io: &mut R) -> Result<M, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        let n = io.read(&mut len[got..]).await?;
        if n == 0 {
            return Err(if got == 0 {
                FrameError::Closed { message: M::NAME }
            } else {
                DecodeError::Truncated { message: M::NAME }.into()
            });
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > M::MAX_SIZE {
        return Err(DecodeError::TooLarge {
            message: M::NAME,
            size: len,
            limit: M::MAX_SIZE,
        }
        .into());
    }
    let mut buf = vec![0u8; len];
    match io.read_exact(&mut buf).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(DecodeError::Truncated { message: M::NAME }.into());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(decode(&buf)?)
}

/// Shared checks for every message type, used by the tests of [`crate::messages`]: a message
/// round-trips; and oversized, truncated, wrong-version and garbage inputs are refused with
/// the right error.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;
    use futures::executor::block_on;
    use std::fmt::Debug;

    /// Runs every codec check against `sample`, a representative value of `M`.
    pub fn check<M: WireMessage + PartialEq + Debug>(sample: &M) {
        // Round trip, in memory and through a frame.
        let bytes = encode(sample).expect("sample encodes");
        assert_eq!(&decode::<M>(&bytes).expect("round trip"), sample);
        let mut framed = Vec::new();
        block_on(write_frame(&mut framed, sample)).unwrap();
        let back: M = block_on(read_frame(&mut framed.as_slice())).unwrap();
        assert_eq!(&back, sample);

        // Oversized: a buffer over the limit is refused before parsing...
        let big = vec![0u8; M::MAX_SIZE + 1];
        assert!(matches!(
            decode::<M>(&big),
            Err(DecodeError::TooLarge { size, .. }) if size == M::MAX_SIZE + 1
        ));
        // ...and a frame announcing too much is refused before allocating.
        let mut frame = ((M::MAX_SIZE + 1) as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&bytes);
        let err = block_on(read_frame::<M, _>(&mut frame.as_slice())).unwrap_err();
        assert!(
            matches!(err, FrameError::Decode(DecodeError::TooLarge { .. })),
            "{err}"
        );

        // Truncated at every length short of the whole message.
        for cut in 0..bytes.len() {
            match decode::<M>(&bytes[..cut]) {
                Err(DecodeError::Truncated { .. }) => {}
                other => panic!("cut at {cut} of {}: {other:?}", bytes.len()),
            }
        }
        // A frame cut short.
        let err = block_on(read_frame::<M, _>(&mut &framed[..framed.len() - 1])).unwrap_err();
        assert!(
            matches!(err, FrameError::Decode(DecodeError::Truncated { .. })),
            "{err}"
        );
        let err = block_on(read_frame::<M, _>(&mut &framed[..0])).unwrap_err();
        assert!(matches!(err, FrameError::Closed { .. }), "{err}");

        // Wrong version: the same body under the next version is refused.
        let mut wrong = Vec::new();
        ciborium::into_writer(&(M::VERSION + 1, sample), &mut wrong).unwrap();
        assert_eq!(
            decode::<M>(&wrong),
            Err(DecodeError::UnsupportedVersion {
                message: M::NAME,
                got: u64::from(M::VERSION) + 1,
                supported: M::VERSION
            })
        );

        // Garbage: not an envelope at all, an envelope around the wrong shape, trailing bytes.
        // (The envelope's version as a one-byte CBOR unsigned integer, so the body is what
        // is wrong.)
        assert!(M::VERSION < 24, "a version CBOR writes in one byte");
        let wrong_shape = [0x82, M::VERSION as u8, 0x63, b'a', b'b', b'c'];
        for garbage in [
            &b"\xff\xff\xff\xff"[..],
            b"hello world",
            &wrong_shape,
            &[0xa1, 0x61, b'x', 0x01],
        ] {
            assert!(
                matches!(decode::<M>(garbage), Err(DecodeError::Malformed { .. })),
                "garbage {garbage:?} gave {:?}",
                decode::<M>(garbage)
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode::<M>(&trailing),
            Err(DecodeError::TrailingBytes { extra: 1, .. })
        ));
    }

    /// Checks that a value too large for `M` is refused by the encoder.
    pub fn check_encoder_limit<M: WireMessage + Debug>(too_big: &M) {
        assert!(matches!(encode(too_big), Err(EncodeError::TooLarge { .. })));
    }
}
