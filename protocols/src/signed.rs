//! Signed payloads and the textual form of public keys.
//!
//! A [`Signed<T>`] carries the CBOR encoding of `T` (as the sender produced it, so nobody has
//! to re-encode to verify) and an ed25519 signature over
//! `"guardian/" ‖ T::CONTEXT ‖ 0x00 ‖ body`. The context string separates domains: an
//! enrollment token can never be replayed as a playback token, even signed by the same key.
//!
//! Public keys are written as the libp2p peer id of the ed25519 key (`12D3KooW...`), which
//! embeds the key itself, or as 64 hex digits of the raw key; [`parse_public_key`] takes both.

use std::marker::PhantomData;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A payload type that may be signed, with its domain-separation context.
pub trait SignedPayload: Serialize + DeserializeOwned {
    /// The domain of signatures over this type, such as `"enroll-token/1"`.
    const CONTEXT: &'static str;
}

/// A CBOR payload and an ed25519 signature over it.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Signed<T> {
    /// The CBOR encoding of the payload.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// The ed25519 signature (64 bytes).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    #[serde(skip)]
    _payload: PhantomData<fn() -> T>,
}

// Written out rather than derived: a signed payload is bytes, whatever `T` implements.
impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Signed {
            body: self.body.clone(),
            signature: self.signature.clone(),
            _payload: PhantomData,
        }
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body && self.signature == other.signature
    }
}

impl<T> Eq for Signed<T> {}

impl<T> std::fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("body_len", &self.body.len())
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

/// Why a signed payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature does not verify under the expected key.
    #[error("signature does not verify against the expected key")]
    BadSignature,
    /// The signature field is not 64 bytes.
    #[error("signature is {0} bytes, expected 64")]
    BadLength(usize),
    /// The signed body is not a valid payload.
    #[error("signed body is malformed: {0}")]
    Malformed(String),
}

/// Why a public key string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ed25519 public key (expected a 12D3KooW... peer id or 64 hex digits): {0}")]
pub struct PublicKeyError(pub String);

impl<T: SignedPayload> Signed<T> {
    /// Signs `payload` with `key`.
    pub fn sign(payload: &T, key: &SigningKey) -> Self {
        let mut body = Vec::new();
        ciborium::into_writer(payload, &mut body).expect("payloads are CBOR-representable");
        let signature = key.sign(&Self::message(&body)).to_bytes().to_vec();
        Signed {
            body,
            signature,
            _payload: PhantomData,
        }
    }

    /// A signed payload from its stored parts (unchecked until [`Signed::verify`]).
    pub fn from_parts(body: Vec<u8>, signature: Vec<u8>) -> Self {
        Signed {
            body,
            signature,
            _payload: PhantomData,
        }
    }

    /// Checks the signature under `key`, then decodes the payload.
    pub fn verify(&self, key: &VerifyingKey) -> Result<T, SignatureError> {
        let sig: [u8; 64] = self
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| SignatureError::BadLength(self.signature.len()))?;
        key.verify(
            &Self::message(&self.body),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .map_err(|_| SignatureError::BadSignature)?;
        self.peek()
    }

    /// Decodes the payload without checking the signature: for routing and logs only.
    pub fn peek(&self) -> Result<T, SignatureError> {
        ciborium::from_reader(self.body.as_slice())
            .map_err(|e| SignatureError::Malformed(e.to_string()))
    }

    fn message(body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(body.len() + T::CONTEXT.len() + 10);
        m.extend_from_slice(b"guardian/");
        m.extend_from_slice(T::CONTEXT.as_bytes());
        m.push(0);
        m.extend_from_slice(body);
        m
    }
}

/// The libp2p peer id (`12D3KooW...`) of an ed25519 public key.
pub fn peer_id_of(key: &VerifyingKey) -> String {
    let pk = libp2p_identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .expect("a valid ed25519 key");
    libp2p_identity::PublicKey::from(pk)
        .to_peer_id()
        .to_string()
}

/// A public key's fingerprint, to compare by eye: `SHA256:` and the first 16 bytes of the
/// SHA-256 of `public` (an ed25519 key's raw 32 bytes, or an age recipient's text) in hex, so
/// `sha256sum` recomputes it.
pub fn fingerprint(public: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(public);
    format!("SHA256:{}", data_encoding::HEXLOWER.encode(&digest[..16]))
}

/// Parses an ed25519 public key from a peer id or 64 hex digits.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, PublicKeyError> {
    let s = s.trim();
    let err = || PublicKeyError(s.to_owned());
    let raw: [u8; 32] = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| err())?
            .try_into()
            .map_err(|_| err())?
    } else {
        let peer: libp2p_identity::PeerId = s.parse().map_err(|_| err())?;
        // An ed25519 peer id is an identity multihash of the protobuf-encoded public key.
        let mh = peer.as_ref();
        if mh.code() != 0 {
            return Err(err());
        }
        let pk = libp2p_identity::PublicKey::try_decode_protobuf(mh.digest()).map_err(|_| err())?;
        pk.try_into_ed25519().map_err(|_| err())?.to_bytes()
    };
    VerifyingKey::from_bytes(&raw).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pass {
        who: String,
        until: u64,
    }
    impl SignedPayload for Pass {
        const CONTEXT: &'static str = "test-pass/1";
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OtherPass {
        who: String,
        until: u64,
    }
    impl SignedPayload for OtherPass {
        const CONTEXT: &'static str = "other-pass/1";
    }

    fn key() -> SigningKey {
        SigningKey::generate(&mut rand::rngs::OsRng)
    }

    #[test]
    fn verifies_with_the_right_key_only() {
        let (k, other) = (key(), key());
        let p = Pass {
            who: "edge".into(),
            until: 5,
        };
        let s = Signed::sign(&p, &k);
        assert_eq!(s.verify(&k.verifying_key()).unwrap(), p);
        assert_eq!(
            s.verify(&other.verifying_key()),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn tampering_and_cross_domain_replay_fail() {
        let k = key();
        let s = Signed::sign(
            &Pass {
                who: "edge".into(),
                until: 5,
            },
            &k,
        );
        let mut t = s.clone();
        let last = t.body.len() - 1;
        t.body[last] ^= 1;
        assert_eq!(
            t.verify(&k.verifying_key()),
            Err(SignatureError::BadSignature)
        );
        let mut short = s.clone();
        short.signature.pop();
        assert_eq!(
            short.verify(&k.verifying_key()),
            Err(SignatureError::BadLength(63))
        );
        let replay: Signed<OtherPass> = Signed {
            body: s.body.clone(),
            signature: s.signature.clone(),
            _payload: PhantomData,
        };
        assert_eq!(
            replay.verify(&k.verifying_key()),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn public_keys_parse_from_peer_id_and_hex() {
        let k = key().verifying_key();
        let peer = peer_id_of(&k);
        assert!(peer.starts_with("12D3KooW"), "{peer}");
        assert_eq!(parse_public_key(&peer).unwrap(), k);
        let hex = data_encoding::HEXLOWER.encode(k.as_bytes());
        assert_eq!(parse_public_key(&hex).unwrap(), k);
        assert!(parse_public_key("12D3KooWnope").is_err());
        assert!(parse_public_key(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn fingerprint_is_the_start_of_sha256() {
        // printf abc | sha256sum
        assert_eq!(
            fingerprint(b"abc"),
            "SHA256:ba7816bf8f01cfea414140de5dae2223"
        );
    }
}
