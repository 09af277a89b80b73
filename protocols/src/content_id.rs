//! Content identifiers of sealed objects.
//!
//! A sealed object's CID is a CIDv1 with the `raw` codec (0x55) and a sha2-256 multihash of
//! the whole ciphertext, printed in base32 lower case with the multibase prefix `b`, as IPFS
//! and Filecoin print it (`bafkrei...`). [`CidWriter`] computes it while the ciphertext is
//! written, so a clip is never read twice.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec code of the `raw` codec.
pub const RAW_CODEC: u64 = 0x55;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// The CID of a sealed object (always CIDv1, raw, sha2-256), held as its 32-byte digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId([u8; 32]);

/// Why a string is not the CID of a sealed object.
#[derive(Debug, thiserror::Error)]
pub enum CidError {
    /// Not a CID at all.
    #[error("not a CID: {0}")]
    Parse(#[from] cid::Error),
    /// A CID, but not CIDv1 raw sha2-256 as sealed objects use.
    #[error("CID {0} is not a CIDv1 with the raw codec and a sha2-256 multihash")]
    WrongKind(String),
}

impl ContentId {
    /// The CID of a sha2-256 digest of a whole object.
    pub fn from_sha256(digest: [u8; 32]) -> Self {
        ContentId(digest)
    }

    /// The CID of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    /// Reads `reader` to its end and returns its CID and length.
    pub fn of_reader(mut reader: impl Read) -> io::Result<(Self, u64)> {
        let mut w = CidWriter::new(io::sink());
        io::copy(&mut reader, &mut w)?;
        let (_, cid, size) = w.finish();
        Ok((cid, size))
    }

    /// The sha2-256 digest inside the CID.
    pub fn sha256(&self) -> [u8; 32] {
        self.0
    }

    /// The `cid` crate's value of this CID.
    pub fn to_cid(&self) -> Cid {
        let mh = Multihash::<64>::wrap(SHA2_256, &self.0).expect("32 bytes fit in 64");
        Cid::new_v1(RAW_CODEC, mh)
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // CIDv1's default string form is multibase base32 lower case, prefix `b`.
        fmt::Display::fmt(&self.to_cid(), f)
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({self})")
    }
}

impl FromStr for ContentId {
    type Err = CidError;
    fn from_str(s: &str) -> Result<Self, CidError> {
        let cid = Cid::from_str(s)?;
        if cid.version() != cid::Version::V1
            || cid.codec() != RAW_CODEC
            || cid.hash().code() != SHA2_256
            || cid.hash().size() != 32
        {
            return Err(CidError::WrongKind(s.to_owned()));
        }
        Ok(ContentId(
            cid.hash().digest().try_into().expect("size checked above"),
        ))
    }
}

impl serde::Serialize for ContentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ContentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A writer that passes bytes through to an inner writer while hashing and counting them.
pub struct CidWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> CidWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        CidWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Returns the inner writer, the CID of everything written and its size.
    pub fn finish(self) -> (W, ContentId, u64) {
        let digest: [u8; 32] = self.hasher.finalize().into();
        (self.inner, ContentId::from_sha256(digest), self.size)
    }
}

impl<W: Write> Write for CidWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked out by hand: SHA-256("") is
    /// e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 (FIPS 180-2).
    /// The binary CID is 0x01 (CIDv1) 0x55 (raw) 0x12 (sha2-256) 0x20 (32 bytes) ‖ digest;
    /// base32 (RFC 4648, lower case, no padding) of those 36 bytes, prefixed with `b`.
    /// 0x01 0x55 0x12 = 00000001 01010101 00010010 → 00000 00101 01010 10001 0010.. →
    /// "a","f","k","r" and so on: every CIDv1-raw-sha256 starts with `bafkrei`.
    #[test]
    fn empty_input_matches_hand_computed_vector() {
        let digest = data_encoding::HEXLOWER
            .decode(b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            .unwrap();
        let mut binary = vec![0x01, 0x55, 0x12, 0x20];
        binary.extend_from_slice(&digest);
        let by_hand = format!(
            "b{}",
            data_encoding::BASE32_NOPAD.encode(&binary).to_lowercase()
        );
        assert_eq!(
            by_hand,
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        assert_eq!(ContentId::of_bytes(b"").to_string(), by_hand);
    }

    /// SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    /// (FIPS 180-2 appendix B.1).
    #[test]
    fn abc_matches_known_sha256() {
        let cid = ContentId::of_bytes(b"abc");
        assert_eq!(
            data_encoding::HEXLOWER.encode(&cid.sha256()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(cid.to_string().starts_with("bafkrei"));
        assert_eq!(cid.to_string().parse::<ContentId>().unwrap(), cid);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = CidWriter::new(Vec::new());
        for chunk in data.chunks(4093) {
            w.write_all(chunk).unwrap();
        }
        let (out, cid, size) = w.finish();
        assert_eq!(out, data);
        assert_eq!(size, data.len() as u64);
        assert_eq!(cid, ContentId::of_bytes(&data));
        assert_eq!(ContentId::of_reader(&data[..]).unwrap(), (cid, size));
    }

    #[test]
    fn refuses_other_cid_kinds() {
        // A CIDv0 (dag-pb) and a CIDv1 dag-cbor are CIDs, but not of sealed objects.
        for s in [
            "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",
            "bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje",
        ] {
            assert!(
                matches!(s.parse::<ContentId>(), Err(CidError::WrongKind(_))),
                "{s}"
            );
        }
        assert!(matches!(
            "not-a-cid".parse::<ContentId>(),
            Err(CidError::Parse(_))
        ));
    }
}
