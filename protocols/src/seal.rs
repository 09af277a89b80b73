//! Sealing and opening objects in the age format.
//!
//! [`seal`] streams a plaintext reader into an age file for one or more X25519 recipients and
//! returns the ciphertext's CID and size, hashed as it is written. [`open`] streams an age file
//! back to plaintext with an identity. Both use the `age` crate: the format is age v1
//! (<https://age-encryption.org/v1>), so stock `age -d -i` opens what we seal and we open what
//! `age -r` seals. Memory stays bounded whatever the object's size: age works in 64 KiB
//! chunks, copies here go through a fixed buffer, and the queue between encryption and
//! hashing holds at most a few MiB.

use std::io::{self, Read, Write};
use std::str::FromStr;
use std::sync::mpsc;

use crate::content_id::{CidWriter, ContentId};

/// Size of the copy buffer: a multiple of age's 64 KiB chunk.
const COPY_BUF: usize = 256 * 1024;

/// What sealing produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealSummary {
    /// CID of the ciphertext.
    pub cid: ContentId,
    /// Size of the ciphertext in bytes.
    pub size: u64,
    /// Size of the plaintext in bytes.
    pub plaintext_size: u64,
}

/// Why an object could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No recipient was given.
    #[error("no recipients to seal to")]
    NoRecipients,
    /// A recipient string is not an age X25519 recipient (`age1...`).
    #[error("not an age X25519 recipient: {0:?}")]
    BadRecipient(String),
    /// Reading the plaintext failed.
    #[error("reading the plaintext failed: {0}")]
    Read(io::Error),
    /// Writing the ciphertext failed.
    #[error("writing the sealed object failed: {0}")]
    Write(io::Error),
}

/// Why a sealed object could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The identity does not match any recipient of the object: a wrong secret or tenant.
    #[error("this key cannot open the object (wrong secret or tenant, or sealed to someone else)")]
    NoMatchingKey,
    /// The input is not an age file, or its header is damaged.
    #[error("not a valid age file: {0}")]
    BadHeader(String),
    /// The ciphertext failed authentication: it was modified or truncated.
    #[error("the sealed object is corrupt or truncated (authentication failed)")]
    Corrupt,
    /// Reading the sealed object failed.
    #[error("reading the sealed object failed: {0}")]
    Read(io::Error),
    /// Writing the plaintext failed.
    #[error("writing the plaintext failed: {0}")]
    Write(io::Error),
}

/// Parses age X25519 recipient strings (`age1...`).
pub fn parse_recipients<S: AsRef<str>>(
    recipients: &[S],
) -> Result<Vec<age::x25519::Recipient>, SealError> {
    if recipients.is_empty() {
        return Err(SealError::NoRecipients);
    }
    recipients
        .iter()
        .map(|r| {
            let r = r.as_ref().trim();
            age::x25519::Recipient::from_str(r).map_err(|_| SealError::BadRecipient(r.to_owned()))
        })
        .collect()
}

/// Seals everything `plaintext` yields into `ciphertext` for `recipients`, returning the
/// ciphertext's CID and size. The writer is flushed; durability (fsync) is the caller's.
///
/// Two stages run at once: this thread reads and encrypts, a scoped helper thread hashes and
/// writes the ciphertext, joined by a bounded queue of [`PIPE_DEPTH`] buffers of
/// [`PIPE_CHUNK`] bytes (memory stays bounded). On two cores that hides hashing and output
/// I/O behind encryption.
pub fn seal<R: Read, W: Write + Send>(
    mut plaintext: R,
    ciphertext: W,
    recipients: &[age::x25519::Recipient],
) -> Result<SealSummary, SealError> {
    if recipients.is_empty() {
        return Err(SealError::NoRecipients);
    }
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|_| SealError::NoRecipients)?;
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(PIPE_DEPTH);
    let (pool_tx, pool_rx) = mpsc::sync_channel::<Vec<u8>>(PIPE_DEPTH + 2);
    std::thread::scope(|scope| {
        let sink = scope.spawn(move || -> io::Result<(ContentId, u64)> {
            let mut hashing = CidWriter::new(ciphertext);
            for mut buf in rx {
                hashing.write_all(&buf)?;
                buf.clear();
                let _ = pool_tx.try_send(buf);
            }
            hashing.flush()?;
            let (_, cid, size) = hashing.finish();
            Ok((cid, size))
        });
        let pipe = PipeWriter {
            buf: Vec::with_capacity(PIPE_CHUNK),
            tx,
            pool: pool_rx,
        };
        let encrypted = encrypt_into(&mut plaintext, encryptor, pipe);
        // The pipe is dropped by now (finished or failed), so the sink sees the end.
        let sunk = sink.join().expect("the ciphertext sink does not panic");
        match (encrypted, sunk) {
            (Ok(plaintext_size), Ok((cid, size))) => Ok(SealSummary {
                cid,
                size,
                plaintext_size,
            }),
            // A sink failure shows up on this side as a broken pipe: report the real cause.
            (_, Err(e)) => Err(SealError::Write(e)),
            (Err(e), Ok(_)) => Err(e),
        }
    })
}

/// Bytes per buffer handed from the encrypting thread to the hashing and writing thread.
pub const PIPE_CHUNK: usize = 1024 * 1024;
/// Buffers in flight between the two threads.
pub const PIPE_DEPTH: usize = 4;

fn encrypt_into<R: Read>(
    plaintext: &mut R,
    encryptor: age::Encryptor,
    pipe: PipeWriter,
) -> Result<u64, SealError> {
    let mut sealed = encryptor.wrap_output(pipe).map_err(SealError::Write)?;
    let mut buf = vec![0u8; COPY_BUF];
    let mut plaintext_size = 0u64;
    loop {
        let n = match plaintext.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SealError::Read(e)),
        };
        sealed.write_all(&buf[..n]).map_err(SealError::Write)?;
        plaintext_size += n as u64;
    }
    let mut pipe = sealed.finish().map_err(SealError::Write)?;
    pipe.flush().map_err(SealError::Write)?;
    Ok(plaintext_size)
}

/// The encrypting side of the pipe: gathers ciphertext into [`PIPE_CHUNK`] buffers.
struct PipeWriter {
    buf: Vec<u8>,
    tx: mpsc::SyncSender<Vec<u8>>,
    pool: mpsc::Receiver<Vec<u8>>,
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        let next = self
            .pool
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(PIPE_CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the ciphertext sink stopped"))
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let take = rest.len().min(PIPE_CHUNK - self.buf.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == PIPE_CHUNK {
                self.send()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

/// Opens the age file `ciphertext` with `identity`, writing the plaintext to `plaintext`, and
/// returns the plaintext size. On error, `plaintext` may hold a prefix of unauthenticated
/// output: write to a temporary file and keep it only on success.
pub fn open<R: Read, W: Write>(
    ciphertext: R,
    mut plaintext: W,
    identity: &age::x25519::Identity,
) -> Result<u64, OpenError> {
    let decryptor =
        age::Decryptor::new_buffered(io::BufReader::with_capacity(COPY_BUF, ciphertext))
            .map_err(map_header_error)?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(map_header_error)?;
    let mut buf = vec![0u8; COPY_BUF];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // age reports a failed chunk authentication, and a stream that ends without its
            // final chunk, as InvalidData / UnexpectedEof.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Err(OpenError::Corrupt);
            }
            Err(e) => return Err(OpenError::Read(e)),
        };
        plaintext.write_all(&buf[..n]).map_err(OpenError::Write)?;
        total += n as u64;
    }
    plaintext.flush().map_err(OpenError::Write)?;
    Ok(total)
}

fn map_header_error(e: age::DecryptError) -> OpenError {
    use age::DecryptError as E;
    match e {
        E::NoMatchingKeys => OpenError::NoMatchingKey,
        E::DecryptionFailed | E::InvalidMac => OpenError::Corrupt,
        E::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            OpenError::BadHeader("the input ends inside the age header".into())
        }
        E::Io(io) => OpenError::Read(io),
        other => OpenError::BadHeader(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> age::x25519::Identity {
        age::x25519::Identity::generate()
    }

    #[test]
    fn round_trip_and_cid_of_what_was_written() {
        let id = identity();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let mut sealed = Vec::new();
        let summary = seal(&data[..], &mut sealed, &[id.to_public()]).unwrap();
        assert_eq!(summary.size, sealed.len() as u64);
        assert_eq!(summary.plaintext_size, data.len() as u64);
        assert_eq!(summary.cid, ContentId::of_bytes(&sealed));
        let mut out = Vec::new();
        assert_eq!(open(&sealed[..], &mut out, &id).unwrap(), data.len() as u64);
        assert_eq!(out, data);
    }

    #[test]
    fn several_recipients_each_open() {
        let (a, b) = (identity(), identity());
        let mut sealed = Vec::new();
        seal(
            &b"two owners"[..],
            &mut sealed,
            &[a.to_public(), b.to_public()],
        )
        .unwrap();
        for id in [&a, &b] {
            let mut out = Vec::new();
            open(&sealed[..], &mut out, id).unwrap();
            assert_eq!(out, b"two owners");
        }
    }

    #[test]
    fn empty_plaintext_seals() {
        let id = identity();
        let mut sealed = Vec::new();
        let s = seal(io::empty(), &mut sealed, &[id.to_public()]).unwrap();
        assert_eq!(s.plaintext_size, 0);
        let mut out = Vec::new();
        assert_eq!(open(&sealed[..], &mut out, &id).unwrap(), 0);
    }

    #[test]
    fn wrong_key_flipped_byte_and_truncation_are_refused() {
        let id = identity();
        let data = vec![7u8; 200_000];
        let mut sealed = Vec::new();
        seal(&data[..], &mut sealed, &[id.to_public()]).unwrap();

        let err = open(&sealed[..], io::sink(), &identity()).unwrap_err();
        assert!(matches!(err, OpenError::NoMatchingKey), "{err}");

        let mut flipped = sealed.clone();
        let last = flipped.len() - 100;
        flipped[last] ^= 1;
        let err = open(&flipped[..], io::sink(), &id).unwrap_err();
        assert!(matches!(err, OpenError::Corrupt), "{err}");

        // Cut inside the payload (after the first 64 KiB chunk) and inside the header.
        let err = open(&sealed[..sealed.len() - 10], io::sink(), &id).unwrap_err();
        assert!(matches!(err, OpenError::Corrupt), "{err}");
        let err = open(&sealed[..20], io::sink(), &id).unwrap_err();
        assert!(matches!(err, OpenError::BadHeader(_)), "{err}");
        let err = open(&b"not an age file at all"[..], io::sink(), &id).unwrap_err();
        assert!(matches!(err, OpenError::BadHeader(_)), "{err}");
    }

    struct FailingWriter(usize);
    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 < buf.len() {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_output_is_reported_not_hung() {
        let data = vec![1u8; 5 * PIPE_CHUNK];
        let err = seal(
            &data[..],
            FailingWriter(PIPE_CHUNK + 10),
            &[identity().to_public()],
        )
        .unwrap_err();
        assert!(
            matches!(err, SealError::Write(ref e) if e.to_string() == "disk full"),
            "{err}"
        );
    }

    #[test]
    fn recipients_are_parsed_and_checked() {
        let id = identity();
        let good = id.to_public().to_string();
        assert_eq!(parse_recipients(&[good.as_str()]).unwrap().len(), 1);
        assert!(matches!(
            parse_recipients::<&str>(&[]),
            Err(SealError::NoRecipients)
        ));
        assert!(matches!(
            parse_recipients(&["age1nope"]),
            Err(SealError::BadRecipient(_))
        ));
    }
}
