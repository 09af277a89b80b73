//! The signed event manifest: chain of custody for an archived event.
//!
//! A manifest is a JSON object in the clear, stored beside the sealed objects as
//! `events/<event_id>/manifest.json`. It names the tenant, edge, camera, times, labels and
//! scores, and the CID and size of each sealed object, and it is signed by the edge's ed25519
//! key, so anyone holding the edge's public key can check that the archive holds exactly what
//! the edge sealed. It carries no plaintext hash of the video.
//!
//! # Canonical encoding (what is signed)
//!
//! The signature covers the manifest's canonical bytes: the JSON object **without** its
//! `signature` member, with
//! - object members in ascending order of their names (byte order; nested objects too),
//! - no whitespace outside strings,
//! - strings escaped as `serde_json` does (only `"`, `\` and control characters are escaped,
//!   non-ASCII is written as UTF-8), and
//! - integers only (scores are in thousandths, times in Unix milliseconds; no floats).
//!
//! For this schema that is the JSON Canonicalization Scheme (RFC 8785). The bytes signed are
//! `"guardian/manifest/2" ‖ 0x00 ‖ canonical bytes`. The `signature` member holds the 64-byte
//! ed25519 signature in lower-case hex. Unknown members are refused: every byte of a manifest
//! is covered by its signature.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::content_id::ContentId;

/// The `format` member of every manifest this build writes.
pub const FORMAT: &str = "guardian-manifest/2";
const SIGNING_CONTEXT: &[u8] = b"guardian/manifest/2\0";
/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_SIZE: usize = 64 * 1024;

/// One archived event's manifest. Field order is the canonical (sorted) member order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The camera's id (also the bucket `camera-<camera_id>`).
    pub camera_id: String,
    /// The edge's libp2p peer id (`12D3KooW...`), which embeds its public key.
    pub edge_id: String,
    /// When the event ended, Unix milliseconds.
    pub ended_at_ms: u64,
    /// The event's id, unique per tenant.
    pub event_id: String,
    /// Always [`FORMAT`].
    pub format: String,
    /// Key ids of the recipients the objects are sealed to (see [`crate::owner_key::key_id`]),
    /// one per key slot allowed for the camera.
    pub key_ids: Vec<String>,
    /// What was seen, best score first.
    pub labels: Vec<Label>,
    /// The sealed objects.
    pub objects: Vec<ObjectRef>,
    /// When the edge sealed the objects, Unix milliseconds.
    pub sealed_at_ms: u64,
    /// Hex ed25519 signature over the canonical bytes; absent until signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// When the event started, Unix milliseconds.
    pub started_at_ms: u64,
    /// The tenant's id.
    pub tenant_id: String,
    /// The clip ends early: recovered after the edge stopped mid-event (up to its last
    /// complete fragment).
    #[serde(default)]
    pub truncated: bool,
}

/// A detection label and its best score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// The category, such as `person` or `car`.
    pub category: String,
    /// The best score, in thousandths (0..=1000).
    pub score_milli: u16,
}

/// What a sealed object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// The event clip, MP4 sealed with age.
    Clip,
    /// The best snapshot, JPEG sealed with age.
    Snapshot,
    /// A small JPEG of the best frame (about 320 px wide) for timelines, sealed with age.
    Thumbnail,
}

impl ObjectKind {
    /// Every kind, in manifest order.
    pub const ALL: [ObjectKind; 3] = [
        ObjectKind::Clip,
        ObjectKind::Snapshot,
        ObjectKind::Thumbnail,
    ];

    /// The object's file name on the edge and in the archive (`clip.mp4.age`, ...).
    pub fn file_name(self) -> &'static str {
        match self {
            ObjectKind::Clip => "clip.mp4.age",
            ObjectKind::Snapshot => "snapshot.jpg.age",
            ObjectKind::Thumbnail => "thumbnail.jpg.age",
        }
    }

    /// The plaintext's file name, where an owner keeps plain copies (`clip.mp4`, ...).
    pub fn plain_name(self) -> &'static str {
        match self {
            ObjectKind::Clip => "clip.mp4",
            ObjectKind::Snapshot => "snapshot.jpg",
            ObjectKind::Thumbnail => "thumbnail.jpg",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Clip => "clip",
            ObjectKind::Snapshot => "snapshot",
            ObjectKind::Thumbnail => "thumbnail",
        })
    }
}

/// A sealed object named by the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// CID of the ciphertext.
    pub cid: ContentId,
    /// What it holds.
    pub kind: ObjectKind,
    /// Ciphertext size in bytes.
    pub size: u64,
}

/// Why a manifest, or the objects it names, did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are not a manifest.
    #[error("not a valid manifest: {0}")]
    Malformed(String),
    /// The manifest is larger than [`MAX_MANIFEST_SIZE`].
    #[error("manifest of {0} bytes is over the limit of {MAX_MANIFEST_SIZE}")]
    TooLarge(usize),
    /// A format this build does not know.
    #[error("manifest format {0:?} is not {FORMAT:?}")]
    UnknownFormat(String),
    /// The manifest carries no signature.
    #[error("manifest is not signed")]
    Unsigned,
    /// The signature is not 64 bytes of hex.
    #[error("manifest signature is not 128 hex digits")]
    BadSignatureEncoding,
    /// The signature does not verify under the edge key: some field was changed, or another
    /// key signed it.
    #[error(
        "manifest signature does not verify against edge key {edge_key}: a field was changed after signing, or another key signed it"
    )]
    BadSignature {
        /// The key tried, as a peer id.
        edge_key: String,
    },
    /// The manifest's `edge_id` is not the key it was verified against.
    #[error("manifest names edge {in_manifest} but was checked against edge key {given}")]
    EdgeMismatch {
        /// The `edge_id` member.
        in_manifest: String,
        /// The key given.
        given: String,
    },
    /// The same kind of object appears twice.
    #[error("manifest lists the {0} twice")]
    DuplicateObject(ObjectKind),
    /// An object's bytes do not have the CID the manifest says.
    #[error("{kind} object: CID mismatch: the manifest says {expected}, the object is {actual}")]
    CidMismatch {
        /// Which object.
        kind: ObjectKind,
        /// The manifest's CID.
        expected: ContentId,
        /// The object's CID.
        actual: ContentId,
    },
    /// An object's size is not what the manifest says.
    #[error(
        "{kind} object: size mismatch: the manifest says {expected} bytes, the object has {actual}"
    )]
    SizeMismatch {
        /// Which object.
        kind: ObjectKind,
        /// The manifest's size.
        expected: u64,
        /// The object's size.
        actual: u64,
    },
    /// An object was given that the manifest does not list.
    #[error("the manifest lists no {0} object")]
    NotInManifest(ObjectKind),
    /// Reading an object failed.
    #[error("reading the {kind} object failed: {source}")]
    Read {
        /// Which object.
        kind: ObjectKind,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Manifest {
    /// The canonical bytes (everything but `signature`, see the module doc).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let unsigned = Manifest {
            signature: None,
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).expect("a manifest is always serializable")
    }

    /// Signs the manifest with the edge's key, replacing any earlier signature.
    pub fn sign(&mut self, edge_key: &SigningKey) {
        let sig = edge_key.sign(&signing_message(&self.canonical_bytes()));
        self.signature = Some(data_encoding::HEXLOWER.encode(&sig.to_bytes()));
    }

    /// The manifest as stored: the canonical bytes with the signature member in its place.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest is always serializable")
    }

    /// Parses a stored manifest (any whitespace), checking size and format but not the
    /// signature.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if m.format != FORMAT {
            return Err(ManifestError::UnknownFormat(m.format));
        }
        let mut seen = BTreeSet::new();
        for o in &m.objects {
            if !seen.insert(o.kind) {
                return Err(ManifestError::DuplicateObject(o.kind));
            }
        }
        Ok(m)
    }

    /// Checks the signature under `edge_key`, and that the manifest names that edge.
    pub fn verify_signature(&self, edge_key: &VerifyingKey) -> Result<(), ManifestError> {
        let given = crate::signed::peer_id_of(edge_key);
        let sig_hex = self.signature.as_deref().ok_or(ManifestError::Unsigned)?;
        let sig: [u8; 64] = data_encoding::HEXLOWER_PERMISSIVE
            .decode(sig_hex.as_bytes())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(ManifestError::BadSignatureEncoding)?;
        edge_key
            .verify(
                &signing_message(&self.canonical_bytes()),
                &ed25519_dalek::Signature::from_bytes(&sig),
            )
            .map_err(|_| ManifestError::BadSignature {
                edge_key: given.clone(),
            })?;
        if self.edge_id != given {
            return Err(ManifestError::EdgeMismatch {
                in_manifest: self.edge_id.clone(),
                given,
            });
        }
        Ok(())
    }

    /// The entry for `kind`, if listed.
    pub fn object(&self, kind: ObjectKind) -> Option<&ObjectRef> {
        self.objects.iter().find(|o| o.kind == kind)
    }

    /// Checks one object's bytes (streamed) against the manifest's CID and size for `kind`.
    pub fn verify_object(&self, kind: ObjectKind, bytes: impl Read) -> Result<(), ManifestError> {
        let expected = self
            .object(kind)
            .ok_or(ManifestError::NotInManifest(kind))?;
        let (actual, size) =
            ContentId::of_reader(bytes).map_err(|source| ManifestError::Read { kind, source })?;
        if actual != expected.cid {
            return Err(ManifestError::CidMismatch {
                kind,
                expected: expected.cid,
                actual,
            });
        }
        if size != expected.size {
            return Err(ManifestError::SizeMismatch {
                kind,
                expected: expected.size,
                actual: size,
            });
        }
        Ok(())
    }
}

/// Verifies a stored manifest: its signature under `edge_key`, then each given object's CID
/// and size. Returns the parsed manifest.
pub fn verify<R: Read>(
    manifest_json: &[u8],
    edge_key: &VerifyingKey,
    objects: impl IntoIterator<Item = (ObjectKind, R)>,
) -> Result<Manifest, ManifestError> {
    let m = Manifest::from_json(manifest_json)?;
    m.verify_signature(edge_key)?;
    for (kind, reader) in objects {
        m.verify_object(kind, reader)?;
    }
    Ok(m)
}

fn signing_message(canonical: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + canonical.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(canonical);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge_key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn sample(edge: &SigningKey, clip: &[u8], snap: &[u8]) -> Manifest {
        let mut m = Manifest {
            camera_id: "front-door".into(),
            edge_id: crate::signed::peer_id_of(&edge.verifying_key()),
            ended_at_ms: 1_790_000_015_000,
            event_id: "ev-01".into(),
            format: FORMAT.into(),
            key_ids: vec!["kabcdefghijklmnop".into()],
            labels: vec![Label {
                category: "person".into(),
                score_milli: 874,
            }],
            objects: vec![
                ObjectRef {
                    cid: ContentId::of_bytes(clip),
                    kind: ObjectKind::Clip,
                    size: clip.len() as u64,
                },
                ObjectRef {
                    cid: ContentId::of_bytes(snap),
                    kind: ObjectKind::Snapshot,
                    size: snap.len() as u64,
                },
            ],
            sealed_at_ms: 1_790_000_016_000,
            signature: None,
            started_at_ms: 1_790_000_000_000,
            tenant_id: "tenant-a".into(),
            truncated: false,
        };
        m.sign(edge);
        m
    }

    #[test]
    fn canonical_bytes_have_sorted_members_and_no_whitespace() {
        let m = sample(&edge_key(), b"clip", b"snap");
        let bytes = m.canonical_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains(' ') && !text.contains('\n'));
        assert!(!text.contains("signature"));
        // Re-serialising through an order-preserving generic value sorted by name gives the
        // same bytes: the struct order is the sorted order.
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        fn sorted(v: &serde_json::Value) -> bool {
            match v {
                serde_json::Value::Object(o) => {
                    o.keys().zip(o.keys().skip(1)).all(|(a, b)| a < b) && o.values().all(sorted)
                }
                serde_json::Value::Array(a) => a.iter().all(sorted),
                _ => true,
            }
        }
        assert!(sorted(&v));
        // Whitespace in the stored form does not matter to verification.
        let pretty = serde_json::to_vec_pretty(&m).unwrap();
        verify::<&[u8]>(&pretty, &edge_key().verifying_key(), []).unwrap();
    }

    #[test]
    fn verifies_signature_and_objects() {
        let m = sample(&edge_key(), b"clip bytes", b"snapshot bytes");
        let json = m.to_json();
        let back = verify(
            &json,
            &edge_key().verifying_key(),
            [
                (ObjectKind::Clip, &b"clip bytes"[..]),
                (ObjectKind::Snapshot, &b"snapshot bytes"[..]),
            ],
        )
        .unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn every_field_is_covered_by_the_signature() {
        let key = edge_key();
        let m = sample(&key, b"c", b"s");
        let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        let tampered: Vec<(&str, serde_json::Value)> = vec![
            ("camera_id", "back-door".into()),
            ("ended_at_ms", 1.into()),
            ("event_id", "ev-02".into()),
            ("key_ids", serde_json::json!(["kzzzz"])),
            ("truncated", true.into()),
            (
                "labels",
                serde_json::json!([{"category":"car","score_milli":874}]),
            ),
            (
                "labels",
                serde_json::json!([{"category":"person","score_milli":875}]),
            ),
            ("sealed_at_ms", 2.into()),
            ("started_at_ms", 3.into()),
            ("tenant_id", "tenant-b".into()),
            ("objects", serde_json::json!([])),
        ];
        for (field, value) in tampered {
            let mut t = json.clone();
            t[field] = value;
            let err = verify::<&[u8]>(&serde_json::to_vec(&t).unwrap(), &key.verifying_key(), [])
                .unwrap_err();
            assert!(
                matches!(err, ManifestError::BadSignature { .. }),
                "{field}: {err}"
            );
        }
        // An object's size or CID changed in the manifest.
        let mut t = json.clone();
        t["objects"][0]["size"] = 99.into();
        assert!(matches!(
            verify::<&[u8]>(&serde_json::to_vec(&t).unwrap(), &key.verifying_key(), []),
            Err(ManifestError::BadSignature { .. })
        ));
        // An added member is refused outright.
        let mut t = json.clone();
        t["note"] = "hi".into();
        assert!(matches!(
            verify::<&[u8]>(&serde_json::to_vec(&t).unwrap(), &key.verifying_key(), []),
            Err(ManifestError::Malformed(_))
        ));
        // No signature.
        let mut t = json.clone();
        t.as_object_mut().unwrap().remove("signature");
        assert!(matches!(
            verify::<&[u8]>(&serde_json::to_vec(&t).unwrap(), &key.verifying_key(), []),
            Err(ManifestError::Unsigned)
        ));
    }

    #[test]
    fn another_key_is_refused() {
        let m = sample(&edge_key(), b"c", b"s");
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let err = verify::<&[u8]>(&m.to_json(), &other.verifying_key(), []).unwrap_err();
        assert!(matches!(err, ManifestError::BadSignature { .. }), "{err}");
        // Signed by another edge key, but naming this edge: the signature checks, the id not.
        let mut forged = m.clone();
        forged.sign(&other);
        let err = verify::<&[u8]>(&forged.to_json(), &other.verifying_key(), []).unwrap_err();
        assert!(matches!(err, ManifestError::EdgeMismatch { .. }), "{err}");
    }

    #[test]
    fn object_mismatches_say_what_differs() {
        let key = edge_key();
        let m = sample(&key, b"clip bytes", b"snap");
        let err = verify(
            &m.to_json(),
            &key.verifying_key(),
            [(ObjectKind::Clip, &b"clip bytez"[..])],
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ManifestError::CidMismatch {
                kind: ObjectKind::Clip,
                ..
            }
        ));
        assert!(
            err.to_string().contains("clip object: CID mismatch"),
            "{err}"
        );

        let only_clip = Manifest {
            objects: m.objects[..1].to_vec(),
            ..m.clone()
        };
        let err = only_clip
            .verify_object(ObjectKind::Snapshot, &b"snap"[..])
            .unwrap_err();
        assert!(matches!(
            err,
            ManifestError::NotInManifest(ObjectKind::Snapshot)
        ));
    }

    /// The manifests the web app's tests verify in JavaScript (`web/test/vectors/`): signed
    /// here with the fixed test key (ed25519 signing is deterministic), so each committed file
    /// must be exactly what this code signs, and must verify. `manifest-escapes.json` has
    /// strings that need escaping and non-ASCII text, to pin the canonical encoding across
    /// both implementations. Rewrite them with `GUARDIAN_WRITE_WEB_VECTORS=1`.
    #[test]
    fn web_vectors_are_what_this_code_signs() {
        let key = edge_key();
        let plain = sample(&key, b"clip bytes", b"snapshot bytes");
        let mut escapes = plain.clone();
        escapes.event_id =
            "ev-\u{e9}t\u{e9} \"quoted\" back\\slash\ttab\u{1}\u{7f} \u{1f512}".into();
        escapes.labels = vec![
            Label {
                category: "person".into(),
                score_milli: 1000,
            },
            Label {
                category: "chat \u{1f408}".into(),
                score_milli: 0,
            },
        ];
        escapes.truncated = true;
        escapes.sign(&key);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/test/vectors");
        for (name, m) in [
            ("manifest.json", &plain),
            ("manifest-escapes.json", &escapes),
        ] {
            let mut want = m.to_json();
            want.push(b'\n');
            let path = dir.join(name);
            if std::env::var_os("GUARDIAN_WRITE_WEB_VECTORS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            }
            let have = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (GUARDIAN_WRITE_WEB_VECTORS=1 writes it)",
                    path.display()
                )
            });
            assert_eq!(
                String::from_utf8_lossy(&have),
                String::from_utf8_lossy(&want),
                "{name} is not what this code signs"
            );
            let back = verify::<&[u8]>(&have, &key.verifying_key(), []).unwrap();
            assert_eq!(&back, m);
        }
    }

    #[test]
    fn malformed_and_oversized_are_refused() {
        assert!(matches!(
            Manifest::from_json(b"{"),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            Manifest::from_json(&vec![b' '; MAX_MANIFEST_SIZE + 1]),
            Err(ManifestError::TooLarge(_))
        ));
        let mut m = sample(&edge_key(), b"c", b"s");
        m.format = "guardian-manifest/1".into();
        assert!(matches!(
            Manifest::from_json(&m.to_json()),
            Err(ManifestError::UnknownFormat(_))
        ));
        let mut m = sample(&edge_key(), b"c", b"s");
        m.objects[1].kind = ObjectKind::Clip;
        assert!(matches!(
            Manifest::from_json(&m.to_json()),
            Err(ManifestError::DuplicateObject(ObjectKind::Clip))
        ));
    }
}
