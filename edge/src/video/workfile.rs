//! The working file of an open event: the fragmented MP4 the muxer writes while the event is
//! open, encrypted as it is written with a key of its own, so plaintext video never reaches
//! the disk and a `kill -9` can still be recovered.
//!
//! # Where things are
//!
//! - `<data>/work/<event_id>.work`: the encrypted stream (below), on the data volume.
//! - `<data>/work/<event_id>.json`: what the event is ([`WorkMeta`]: camera, start, label),
//!   metadata the vm receives anyway; no video.
//! - `<key_dir>/<event_id>.key`: the event's 32-byte key in hex (mode 0600), in a
//!   memory-backed folder (`/run`), and in memory while the event is open. A power cut loses
//!   the key and with it the working file's content, which then cannot be opened by anyone.
//!
//! # Format
//!
//! [`MAGIC`], then records: a big-endian `u32` length and that many bytes of
//! ChaCha20-Poly1305 ciphertext (plaintext plus a 16-byte tag) under the event's key, with
//! nonce `0u32 ‖ record index as u64 big-endian` and [`MAGIC`] as associated data. Reading
//! stops at the first short or unauthentic record: what comes before is a prefix of the MP4
//! stream. [`playable_prefix`] finds where its last complete fragment ends.
//!
//! The writer hands complete fragments to the OS (a flush whenever the muxer starts the
//! next `moof`), without fsync: a crash of the process keeps them, a power cut loses the key.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The first bytes of every working file.
pub const MAGIC: &[u8; 16] = b"guardian-work/1\n";
/// Folder of working files, inside the data directory.
pub const WORK_DIR: &str = "work";
/// Largest record accepted when reading (the muxer's buffers are far smaller).
const MAX_RECORD: usize = 64 * 1024 * 1024;

/// What a working file is of, written beside it when the event opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkMeta {
    /// The event.
    pub event_id: String,
    /// Its camera.
    pub camera_id: String,
    /// When it started, Unix ms.
    pub started_at_ms: u64,
    /// The category that opened it.
    pub category: protocols::messages::Category,
    /// Its score then, thousandths.
    pub score_milli: u16,
}

/// The paths of one event's working file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkPaths {
    /// The encrypted stream.
    pub file: PathBuf,
    /// The metadata beside it.
    pub meta: PathBuf,
    /// The key, in the key folder.
    pub key: PathBuf,
}

impl WorkPaths {
    /// The paths for `event_id` in `data`'s work folder and `key_dir`.
    pub fn new(data: &Path, key_dir: &Path, event_id: &str) -> WorkPaths {
        let work = data.join(WORK_DIR);
        WorkPaths {
            file: work.join(format!("{event_id}.work")),
            meta: work.join(format!("{event_id}.json")),
            key: key_dir.join(format!("{event_id}.key")),
        }
    }

    /// Removes the working file, its metadata and its key (missing ones are fine).
    pub fn remove(&self) {
        for p in [&self.file, &self.meta, &self.key] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A working file being written: its paths, its key (in memory), its writer.
pub struct OpenWork {
    /// Where it is.
    pub paths: WorkPaths,
    /// Its key.
    pub key: Zeroizing<[u8; 32]>,
    /// Its writer.
    pub writer: WorkWriter,
}

/// A working file whose writer finished.
pub struct ClosedWork {
    /// Where it is.
    pub paths: WorkPaths,
    /// Its key.
    pub key: Zeroizing<[u8; 32]>,
    /// Plaintext bytes in it.
    pub len: u64,
}

impl ClosedWork {
    /// Its plaintext.
    pub fn reader(&self) -> io::Result<WorkReader<io::BufReader<std::fs::File>>> {
        WorkReader::open(&self.paths.file, &self.key)
    }
}

/// Begins the working file of the event `meta` describes: a new key (written to `key_dir`
/// first), the metadata, then the file with its magic. Each file is new; nothing is
/// overwritten.
pub fn begin(data: &Path, key_dir: &Path, meta: &WorkMeta) -> io::Result<OpenWork> {
    let paths = WorkPaths::new(data, key_dir, &meta.event_id);
    std::fs::create_dir_all(data.join(WORK_DIR))?;
    let key = new_key();
    write_key(&paths.key, &key)?;
    let made = (|| {
        let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
        std::fs::write(&paths.meta, json)?;
        WorkWriter::create(&paths.file, &key)
    })();
    match made {
        Ok(writer) => Ok(OpenWork { paths, key, writer }),
        Err(e) => {
            paths.remove();
            Err(e)
        }
    }
}

/// The folder for event keys: `configured` when set, else `/run/private-ai-guardian/keys`,
/// else `$XDG_RUNTIME_DIR/private-ai-guardian/keys` (both memory-backed on Debian), created
/// with mode 0700.
pub fn key_dir(configured: &str) -> io::Result<PathBuf> {
    let mut candidates = Vec::new();
    if configured.is_empty() {
        candidates.push(PathBuf::from("/run/private-ai-guardian/keys"));
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
            candidates.push(PathBuf::from(x).join("private-ai-guardian/keys"));
        }
    } else {
        candidates.push(PathBuf::from(configured));
    }
    let mut last = io::Error::other("no key folder configured");
    for dir in candidates {
        match make_private_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = io::Error::new(e.kind(), format!("{}: {e}", dir.display())),
        }
    }
    Err(last)
}

fn make_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    // Writable by us, or the first key would fail mid-event.
    let probe = dir.join(".probe");
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

/// A fresh random event key.
pub fn new_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

/// Writes `key` to `path` (hex, mode 0600, a new file).
pub fn write_key(path: &Path, key: &[u8; 32]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data_encoding::HEXLOWER.encode(key).as_bytes())?;
    f.sync_all()
}

/// Reads a key [`write_key`] wrote.
pub fn read_key(path: &Path) -> io::Result<Zeroizing<[u8; 32]>> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    let bytes = Zeroizing::new(
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.trim().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a key is not hex"))?,
    );
    let mut k = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a key is not 32 bytes",
        ));
    }
    k.copy_from_slice(&bytes);
    Ok(k)
}

fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::from(n)
}

/// Appends encrypted records to a working file.
pub struct WorkWriter {
    out: BufWriter<std::fs::File>,
    cipher: ChaCha20Poly1305,
    index: u64,
    /// Plaintext bytes written.
    pub plaintext_len: u64,
}

impl WorkWriter {
    /// Creates the working file at `path` (a new file) for `key`.
    pub fn create(path: &Path, key: &[u8; 32]) -> io::Result<WorkWriter> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        let mut out = BufWriter::with_capacity(256 * 1024, f);
        out.write_all(MAGIC)?;
        Ok(WorkWriter {
            out,
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
            index: 0,
            plaintext_len: 0,
        })
    }

    /// Appends `plain` as one record.
    pub fn append(&mut self, plain: &[u8]) -> io::Result<()> {
        let sealed = self
            .cipher
            .encrypt(
                &nonce(self.index),
                Payload {
                    msg: plain,
                    aad: MAGIC,
                },
            )
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.out.write_all(&(sealed.len() as u32).to_be_bytes())?;
        self.out.write_all(&sealed)?;
        self.index += 1;
        self.plaintext_len += plain.len() as u64;
        Ok(())
    }

    /// Hands what was appended to the OS (no fsync).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads the plaintext of a working file, record by record, up to the end or the first
/// short or unauthentic record.
pub struct WorkReader<R> {
    input: R,
    cipher: ChaCha20Poly1305,
    index: u64,
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    ended: bool,
    /// Whether the stream ended at a record boundary (`false`: a damaged or cut record
    /// was met, and reading stopped before it).
    pub clean_end: bool,
}

impl WorkReader<io::BufReader<std::fs::File>> {
    /// Opens the working file at `path` with `key`.
    pub fn open(path: &Path, key: &[u8; 32]) -> io::Result<Self> {
        WorkReader::new(io::BufReader::new(std::fs::File::open(path)?), key)
    }
}

impl<R: Read> WorkReader<R> {
    /// Reads a working file from `input` with `key`; the magic must be there.
    pub fn new(mut input: R, key: &[u8; 32]) -> io::Result<Self> {
        let mut magic = [0u8; 16];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a working file",
            ));
        }
        Ok(WorkReader {
            input,
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
            index: 0,
            buf: Zeroizing::new(Vec::new()),
            pos: 0,
            ended: false,
            clean_end: true,
        })
    }

    /// The next record's plaintext into `buf`; `false` at the end.
    fn next_record(&mut self) -> io::Result<bool> {
        let mut len = [0u8; 4];
        match read_full(&mut self.input, &mut len)? {
            0 => return Ok(false),
            4 => {}
            _ => {
                self.clean_end = false;
                return Ok(false);
            }
        }
        let len = u32::from_be_bytes(len) as usize;
        if !(16..=MAX_RECORD).contains(&len) {
            self.clean_end = false;
            return Ok(false);
        }
        let mut sealed = vec![0u8; len];
        if read_full(&mut self.input, &mut sealed)? != len {
            self.clean_end = false;
            return Ok(false);
        }
        match self.cipher.decrypt(
            &nonce(self.index),
            Payload {
                msg: &sealed,
                aad: MAGIC,
            },
        ) {
            Ok(plain) => {
                self.buf = Zeroizing::new(plain);
                self.pos = 0;
                self.index += 1;
                Ok(true)
            }
            Err(_) => {
                self.clean_end = false;
                Ok(false)
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; the count read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> Read for WorkReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.ended || !self.next_record()? {
                self.ended = true;
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Where a (possibly cut) fragmented MP4 stream stops being playable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Bytes up to the end of the last complete fragment (`moof` then `mdat`), or of the
    /// trailing `mfra` of a finished file; 0 when no fragment is complete.
    pub len: u64,
    /// Complete fragments in it.
    pub fragments: u32,
    /// Whether the whole stream was read as complete boxes (nothing cut off).
    pub complete: bool,
}

/// Walks the top-level boxes of a fragmented MP4 stream (`ftyp`, `moov`, then `moof` +
/// `mdat` pairs, perhaps `mfra`) and says where the last complete fragment ends. Only box
/// headers are inspected; bodies are skipped.
pub fn playable_prefix(mut r: impl Read) -> io::Result<Prefix> {
    let (mut pos, mut len, mut fragments) = (0u64, 0u64, 0u32);
    let (mut moov, mut prev) = (false, [0u8; 4]);
    let complete = loop {
        let mut head = [0u8; 8];
        match read_full(&mut r, &mut head)? {
            0 => break true,
            8 => {}
            _ => break false,
        }
        let mut size = u64::from(u32::from_be_bytes(head[..4].try_into().expect("4 bytes")));
        let kind: [u8; 4] = head[4..].try_into().expect("4 bytes");
        let mut header = 8u64;
        if size == 1 {
            let mut large = [0u8; 8];
            if read_full(&mut r, &mut large)? != 8 {
                break false;
            }
            size = u64::from_be_bytes(large);
            header = 16;
        }
        if size < header {
            // 0 ("to the end") is never written by a streaming muxer; garbage otherwise.
            break false;
        }
        let body = size - header;
        if io::copy(&mut (&mut r).take(body), &mut io::sink())? != body {
            break false;
        }
        pos += size;
        match &kind {
            b"moov" => moov = true,
            b"mdat" if moov && &prev == b"moof" => {
                len = pos;
                fragments += 1;
            }
            b"mfra" if fragments > 0 => len = pos,
            _ => {}
        }
        prev = kind;
    };
    Ok(Prefix {
        len,
        fragments,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((8 + body) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend((0..body).map(|i| i as u8));
        b
    }

    fn stream(fragments: usize) -> Vec<u8> {
        let mut s = mp4_box(b"ftyp", 24);
        s.extend(mp4_box(b"moov", 800));
        for _ in 0..fragments {
            s.extend(mp4_box(b"moof", 500));
            s.extend(mp4_box(b"mdat", 9000));
        }
        s
    }

    #[test]
    fn the_prefix_ends_at_the_last_complete_fragment() {
        let whole = stream(3);
        let p = playable_prefix(&whole[..]).unwrap();
        assert_eq!(
            (p.len, p.fragments, p.complete),
            (whole.len() as u64, 3, true)
        );
        // Cut anywhere inside the third fragment: two fragments remain.
        let two = stream(2).len();
        for cut in [two + 1, two + 8, two + 600, whole.len() - 1] {
            let p = playable_prefix(&whole[..cut]).unwrap();
            assert_eq!(
                (p.len, p.fragments, p.complete),
                (two as u64, 2, false),
                "cut {cut}"
            );
        }
        // A trailing mfra of a finished file counts.
        let mut finished = whole.clone();
        finished.extend(mp4_box(b"mfra", 40));
        assert_eq!(
            playable_prefix(&finished[..]).unwrap().len,
            finished.len() as u64
        );
        // Header only, or no moov: nothing playable.
        assert_eq!(playable_prefix(&stream(0)[..]).unwrap().len, 0);
        let mut no_moov = mp4_box(b"ftyp", 24);
        no_moov.extend(mp4_box(b"moof", 10));
        no_moov.extend(mp4_box(b"mdat", 10));
        assert_eq!(playable_prefix(&no_moov[..]).unwrap().fragments, 0);
        // A 64-bit size is read.
        let mut large = stream(1);
        let mut mdat = 1u32.to_be_bytes().to_vec();
        mdat.extend_from_slice(b"mdat");
        mdat.extend(26u64.to_be_bytes());
        mdat.extend([0u8; 10]);
        large.extend(mp4_box(b"moof", 4));
        large.extend(&mdat);
        let p = playable_prefix(&large[..]).unwrap();
        assert_eq!((p.len, p.fragments), (large.len() as u64, 2));
    }

    #[test]
    fn records_round_trip_and_reading_stops_at_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.work");
        let key = new_key();
        let mut w = WorkWriter::create(&path, &key).unwrap();
        let parts: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 1000 + i as usize]).collect();
        for p in &parts {
            w.append(p).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let all: Vec<u8> = parts.concat();
        let raw = std::fs::read(&path).unwrap();
        assert!(
            !raw.windows(64).any(|win| all.windows(64).any(|p| p == win)),
            "plaintext on disk"
        );

        let mut r = WorkReader::open(&path, &key).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, all);
        assert!(r.clean_end);

        // Cut in the middle of the fourth record: the first three come back.
        let three: usize = 16 + parts[..3].iter().map(|p| 4 + p.len() + 16).sum::<usize>();
        let mut r = WorkReader::new(&raw[..three + 30], &key).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, parts[..3].concat());
        assert!(!r.clean_end);

        // A flipped byte in the second record: only the first.
        let mut bad = raw.clone();
        bad[16 + 4 + 1016 + 4 + 5] ^= 1;
        let mut r = WorkReader::new(&bad[..], &key).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, parts[0]);
        assert!(!r.clean_end);

        // Another key opens nothing; a file without the magic is refused.
        let mut r = WorkReader::new(&raw[..], &new_key()).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
        assert!(WorkReader::new(&b"not a working file at all"[..], &key).is_err());
    }

    #[test]
    fn keys_are_private_files_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = key_dir(dir.path().join("keys").to_str().unwrap()).unwrap();
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let paths = WorkPaths::new(dir.path(), &keys, "ev-1");
        let key = new_key();
        write_key(&paths.key, &key).unwrap();
        assert_eq!(
            std::fs::metadata(&paths.key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(*read_key(&paths.key).unwrap(), *key);
        assert!(write_key(&paths.key, &key).is_err(), "never overwritten");
        paths.remove();
        assert!(!paths.key.exists());
    }
}
