//! Wire contracts and formats of Private AI Guardian: everything two parties must agree on
//! byte for byte lives here, and nothing else does.
//!
//! - [`codec`]: the CBOR envelope `[version, body]`, per-message size limits, typed decode
//!   errors, and length-prefixed frames for libp2p streams.
//! - [`messages`]: the typed messages of each protocol (`/guardian/<name>/1`).
//! - [`signed`]: ed25519-signed CBOR payloads with domain separation (enrollment and playback
//!   tokens), and the textual form of edge and tenant public keys.
//! - [`content_id`]: CIDv1 (raw, sha2-256) of sealed objects, computed while streaming.
//! - [`seal`]: streaming age encryption to X25519 recipients and decryption, hashing the
//!   ciphertext in the same pass.
//! - [`owner_key`]: the owner's passphrase and tenant id → Argon2id → age X25519 identity.
//! - [`manifest`]: the signed JSON event manifest, its canonical encoding and verification.
//! - [`package`]: the edge's install package, signed by the tenant key.
//! - [`credential`]: camera passwords sealed to the edge, bound to the camera and host.
//! - [`lan`]: what the edge speaks with cameras on its LAN (ONVIF, WS-Discovery, RTSP probes).

pub mod codec;
pub mod content_id;
pub mod credential;
pub mod http;
pub mod key_slots;
pub mod lan;
pub mod manifest;
pub mod messages;
pub mod owner_key;
pub mod package;
pub mod seal;
pub mod signed;

pub use codec::{DecodeError, EncodeError, FrameError, WireMessage};
pub use content_id::{CidWriter, ContentId};
pub use manifest::{Manifest, ManifestError, ObjectKind, ObjectRef};
pub use owner_key::{KdfParams, OwnerKey, OwnerSigningKey};
pub use seal::{OpenError, SealError, SealSummary};

/// Now, Unix milliseconds: the time unit of every message and manifest. For system tests
/// and tools that compare with what a running node wrote; the nodes themselves read time
/// through `guardian_node::clock`, so their tests can hold it.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
