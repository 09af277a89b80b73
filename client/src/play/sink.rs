//! Where the clip's bytes go: [`Output`] (a file, stdout, nowhere) and the open [`Sink`] that
//! takes the sealed clip as it streams: it hashes the ciphertext (the CID must be the one the
//! edge's signed manifest names), decrypts it with the owner's identity on a thread of its own
//! (age STREAM: each 64 KiB chunk is authenticated before a byte of it is written), and
//! writes the MP4 (a file atomically: beside its destination, renamed into place only once the
//! whole ciphertext checked). Without an identity the age file is written as served.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use protocols::content_id::{CidWriter, ContentId};

use super::error::PlayError;

/// Bytes read from the stream at a time, and the file's write buffer.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the stream and the decrypting thread.
const DECRYPT_QUEUE: usize = 8;

/// Where the clip goes.
pub enum Output {
    /// A file, written atomically (temporary file beside it, renamed on success).
    File(PathBuf),
    /// Standard output (to pipe into a player).
    Stdout,
    /// Nowhere: bytes are counted (benchmarks).
    Discard,
}

/// The destination itself.
enum Out {
    File(crate::output::AtomicFile, std::io::BufWriter<std::fs::File>),
    Stdout(std::io::Stdout),
    Discard,
}

impl Write for Out {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::File(_, w) => w.write(b),
            Out::Stdout(s) => s.write(b),
            Out::Discard => Ok(b.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::File(_, w) => w.flush(),
            Out::Stdout(s) => s.flush(),
            Out::Discard => Ok(()),
        }
    }
}

impl Out {
    fn open(output: &Output) -> Result<Out, PlayError> {
        Ok(match output {
            Output::File(p) => {
                let mut f = crate::output::AtomicFile::create(p)
                    .map_err(|e| PlayError::Output(format!("{e:#}")))?;
                let w = f
                    .file()
                    .try_clone()
                    .map_err(|e| PlayError::Output(e.to_string()))?;
                Out::File(f, std::io::BufWriter::with_capacity(CHUNK, w))
            }
            Output::Stdout => Out::Stdout(std::io::stdout()),
            Output::Discard => Out::Discard,
        })
    }

    /// Flushes; a file is renamed into place.
    fn commit(self) -> Result<(), PlayError> {
        match self {
            Out::File(f, mut w) => {
                w.flush().map_err(|e| PlayError::Output(e.to_string()))?;
                drop(w);
                f.commit().map_err(|e| PlayError::Output(format!("{e:#}")))
            }
            Out::Stdout(mut s) => s.flush().map_err(|e| PlayError::Output(e.to_string())),
            Out::Discard => Ok(()),
        }
    }
}

/// The ciphertext as a reader, fed chunk by chunk from the stream.
struct Chunks {
    rx: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Why decryption stopped, from its thread.
type Decrypted = Result<(Out, u64), (Out, String)>;

enum Dest {
    /// The ciphertext as served.
    Sealed(Out),
    /// Decrypted on a thread into the output.
    Open {
        tx: Option<mpsc::SyncSender<Vec<u8>>>,
        thread: Option<JoinHandle<Decrypted>>,
    },
}

/// An open output.
pub(crate) struct Sink {
    hash: CidWriter<std::io::Sink>,
    dest: Dest,
}

impl Sink {
    /// Opens `output` (a file is created beside its destination); with `identity` the
    /// ciphertext is decrypted into it, else written as is.
    pub(crate) fn open(
        output: &Output,
        identity: Option<age::x25519::Identity>,
    ) -> Result<Sink, PlayError> {
        let out = Out::open(output)?;
        let dest = match identity {
            None => Dest::Sealed(out),
            Some(id) => {
                let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(DECRYPT_QUEUE);
                let thread = std::thread::Builder::new()
                    .name("decrypt".into())
                    .spawn(move || decrypt(rx, out, &id))
                    .map_err(|e| PlayError::Output(e.to_string()))?;
                Dest::Open {
                    tx: Some(tx),
                    thread: Some(thread),
                }
            }
        };
        Ok(Sink {
            hash: CidWriter::new(std::io::sink()),
            dest,
        })
    }

    /// Takes the next bytes of the ciphertext.
    pub(crate) fn write(&mut self, b: &[u8]) -> Result<(), PlayError> {
        self.hash
            .write_all(b)
            .map_err(|e| PlayError::Output(e.to_string()))?;
        match &mut self.dest {
            Dest::Sealed(out) => out
                .write_all(b)
                .map_err(|e| PlayError::Output(e.to_string())),
            Dest::Open { tx, thread } => {
                let sent = tx.as_ref().map(|t| t.send(b.to_vec()));
                if let Some(Ok(())) = sent {
                    return Ok(());
                }
                // The thread stopped: it says why.
                tx.take();
                match thread.take().map(|t| t.join()) {
                    Some(Ok(Err((_, why)))) => Err(PlayError::Integrity(why)),
                    _ => Err(PlayError::Output("the decrypting thread stopped".into())),
                }
            }
        }
    }

    /// Ends the output once the ciphertext is whole: its CID must be `expected`; a file is
    /// renamed into place only then. A sink dropped unfinished, or one whose check fails,
    /// leaves no file.
    pub(crate) fn finish(self, expected: Option<ContentId>) -> Result<(), PlayError> {
        let Sink { hash, dest } = self;
        let (_, cid, size) = hash.finish();
        let out = match dest {
            Dest::Sealed(out) => out,
            Dest::Open { tx, thread } => {
                drop(tx);
                match thread.map(|t| t.join()) {
                    Some(Ok(Ok((out, _plain)))) => out,
                    Some(Ok(Err((_, why)))) => return Err(PlayError::Integrity(why)),
                    _ => return Err(PlayError::Output("the decrypting thread failed".into())),
                }
            }
        };
        if let Some(e) = expected
            && e != cid
        {
            return Err(PlayError::Integrity(format!(
                "the clip's ciphertext ({size} bytes) is {cid}, not {e} as the edge signed"
            )));
        }
        out.commit()
    }
}

/// The decrypting thread: age-decrypts what arrives into `out`.
fn decrypt(rx: mpsc::Receiver<Vec<u8>>, mut out: Out, id: &age::x25519::Identity) -> Decrypted {
    let input = Chunks {
        rx,
        buf: Vec::new(),
        pos: 0,
    };
    match protocols::seal::open(input, &mut out, id) {
        Ok(n) => Ok((out, n)),
        Err(e) => Err((out, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_appears_whole_on_finish_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let mut sink = Sink::open(&Output::File(path.clone()), None).unwrap();
        sink.write(b"abc").unwrap();
        sink.write(b"def").unwrap();
        assert!(!path.exists(), "written before it is finished");
        sink.finish(Some(ContentId::of_bytes(b"abcdef"))).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdef");
    }

    #[test]
    fn an_unfinished_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let mut sink = Sink::open(&Output::File(path.clone()), None).unwrap();
        sink.write(b"partial").unwrap();
        drop(sink);
        assert!(!path.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a temporary file was left"
        );
    }

    fn sealed(plain: &[u8], to: &age::x25519::Identity) -> Vec<u8> {
        let mut out = Vec::new();
        protocols::seal::seal(plain, &mut out, &[to.to_public()]).unwrap();
        out
    }

    #[test]
    fn a_sealed_clip_is_decrypted_as_it_streams_and_checked_against_its_cid() {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let plain: Vec<u8> = (0..700_000u32).map(|i| (i % 241) as u8).collect();
        let ct = sealed(&plain, &id);
        let cid = ContentId::of_bytes(&ct);
        let path = dir.path().join("clip.mp4");
        let mut sink = Sink::open(&Output::File(path.clone()), Some(id.clone())).unwrap();
        for piece in ct.chunks(100_000) {
            sink.write(piece).unwrap();
        }
        sink.finish(Some(cid)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), plain);

        // A flipped byte anywhere: refused, and no file is left.
        for at in [20, ct.len() / 2, ct.len() - 3] {
            let mut bad = ct.clone();
            bad[at] ^= 0x40;
            let out = dir.path().join(format!("bad-{at}.mp4"));
            let mut sink = Sink::open(&Output::File(out.clone()), Some(id.clone())).unwrap();
            let r = bad
                .chunks(100_000)
                .try_for_each(|p| sink.write(p))
                .and_then(|()| sink.finish(Some(cid)));
            assert!(
                matches!(r, Err(PlayError::Integrity(_))),
                "byte {at}: {r:?}"
            );
            assert!(!out.exists(), "byte {at}: output left");
        }
        // Intact but not the CID the edge signed: refused too.
        let mut sink = Sink::open(&Output::Discard, Some(id.clone())).unwrap();
        sink.write(&ct).unwrap();
        assert!(matches!(
            sink.finish(Some(ContentId::of_bytes(b"other"))),
            Err(PlayError::Integrity(_))
        ));
        // Another key: refused.
        let mut sink =
            Sink::open(&Output::Discard, Some(age::x25519::Identity::generate())).unwrap();
        let r = sink.write(&ct).and_then(|()| sink.finish(Some(cid)));
        assert!(matches!(r, Err(PlayError::Integrity(_))), "{r:?}");
    }

    #[test]
    fn discard_takes_everything() {
        let mut sink = Sink::open(&Output::Discard, None).unwrap();
        sink.write(&[0u8; 1024]).unwrap();
        sink.finish(None).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_output_error() {
        let path = PathBuf::from("/nonexistent-guardian-dir/clip.mp4");
        assert!(matches!(
            Sink::open(&Output::File(path), None),
            Err(PlayError::Output(_))
        ));
    }
}
