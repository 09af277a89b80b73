//! `/guardian/enroll/1`: the edge presents the single-use token from its install package,
//! its own public keys and a proof that it holds them, and receives its long-lived
//! configuration, or a typed refusal.
//!
//! # Keys the vm never made
//!
//! The edge makes its own ed25519 key (libp2p identity, manifest signatures) and X25519 age
//! identity at `guardian-edge init`; the vm never sees either secret. Its gate admits only
//! peers it knows, so before enrollment the edge connects as its *enrollment identity*, an
//! ed25519 key both sides derive from the token's [`EnrollmentToken::enroll_secret`]:
//!
//! ```text
//! seed = SHA-256("guardian/enroll-identity/1" ‖ 0x00 ‖ enroll_secret)   (32 bytes)
//! enrollment key = the ed25519 signing key with that seed
//! ```
//!
//! The vm admits the enrollment identity's peer id while the package is unspent. On it the
//! edge sends an [`EnrollRequest`] naming its own peer id and age recipient, with `proof`, an
//! ed25519 signature by its own key over [`proof_message`]:
//!
//! ```text
//! "guardian/enroll-proof/1" ‖ 0x00 ‖ for each of (tenant id, token id, enrollment peer id,
//! age recipient): u32 big-endian length ‖ UTF-8 bytes
//! ```
//!
//! The vm registers the edge under its own peer id; the edge then leaves the enrollment
//! identity for its own key.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::WireMessage;
use crate::signed::{Signed, SignedPayload};

/// The domain of the enrollment identity's derivation.
pub const ENROLL_IDENTITY_CONTEXT: &[u8] = b"guardian/enroll-identity/1";
/// The domain of the edge's proof of its own key.
pub const ENROLL_PROOF_CONTEXT: &[u8] = b"guardian/enroll-proof/1";

/// The enrollment token the vm puts in an install package, signed by the tenant key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    /// The tenant the edge joins.
    pub tenant_id: String,
    /// Random id of this token; the vm accepts each id once.
    pub token_id: String,
    /// 32 random bytes known to the vm and the package only: the enrollment identity is
    /// derived from them ([`enrollment_key`]). Never logged.
    #[serde(with = "serde_bytes")]
    pub enroll_secret: [u8; 32],
    /// The edge's name, as given at packaging.
    pub edge_name: String,
    /// Issued at, Unix ms.
    pub issued_at_ms: u64,
    /// Not accepted after, Unix ms.
    pub expires_at_ms: u64,
}

// Written out so the secret never reaches a log line.
impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("tenant_id", &self.tenant_id)
            .field("token_id", &self.token_id)
            .field("enroll_secret", &"<secret>")
            .field("edge_name", &self.edge_name)
            .field("issued_at_ms", &self.issued_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

impl SignedPayload for EnrollmentToken {
    const CONTEXT: &'static str = "enroll-token/2";
}

impl EnrollmentToken {
    /// The enrollment identity of this token.
    pub fn enrollment_key(&self) -> SigningKey {
        enrollment_key(&self.enroll_secret)
    }

    /// The peer id of the enrollment identity: the one peer that may enroll with this token.
    pub fn enrollment_peer_id(&self) -> String {
        crate::signed::peer_id_of(&self.enrollment_key().verifying_key())
    }
}

/// The enrollment identity derived from a token's secret (see the module's documentation).
pub fn enrollment_key(enroll_secret: &[u8; 32]) -> SigningKey {
    let mut h = Sha256::new();
    h.update(ENROLL_IDENTITY_CONTEXT);
    h.update([0u8]);
    h.update(enroll_secret);
    SigningKey::from_bytes(&h.finalize().into())
}

/// The bytes the edge's own key signs at enrollment (see the module's documentation).
pub fn proof_message(
    tenant_id: &str,
    token_id: &str,
    enrollment_peer_id: &str,
    age_recipient: &str,
) -> Vec<u8> {
    let mut m = ENROLL_PROOF_CONTEXT.to_vec();
    m.push(0);
    for field in [tenant_id, token_id, enrollment_peer_id, age_recipient] {
        m.extend_from_slice(&(field.len() as u32).to_be_bytes());
        m.extend_from_slice(field.as_bytes());
    }
    m
}

/// The edge's first message on `/guardian/enroll/1`, sent as its enrollment identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The token from the install package.
    pub token: Signed<EnrollmentToken>,
    /// The edge's own peer id (of the ed25519 key it made; not the enrollment identity).
    pub edge_peer_id: String,
    /// The edge's own age X25519 recipient (`age1...`), for secrets sent to it later.
    pub age_recipient: String,
    /// The edge's own key's signature over [`proof_message`] (64 bytes).
    #[serde(with = "serde_bytes")]
    pub proof: Vec<u8>,
    /// The agent's version, for the vm's device list.
    pub agent_version: String,
}

impl WireMessage for EnrollRequest {
    const NAME: &'static str = "EnrollRequest";
    // 2: the edge names its own keys and proves it holds them.
    const VERSION: u16 = 2;
    const MAX_SIZE: usize = 16 * 1024;
}

/// Why an enrollment proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// `edge_peer_id` is not the peer id of an ed25519 key.
    #[error("the edge peer id is not an ed25519 key")]
    BadKey,
    /// The signature does not verify under the edge's key.
    #[error("the proof does not verify under the edge's key")]
    BadSignature,
    /// The edge named the enrollment identity as its own key.
    #[error("the edge's key is the enrollment identity")]
    EnrollmentKey,
}

impl EnrollRequest {
    /// The request for `token`, proving `edge_key` (the edge's own key) and naming
    /// `age_recipient`.
    pub fn new(
        token: Signed<EnrollmentToken>,
        edge_key: &SigningKey,
        age_recipient: &str,
        agent_version: &str,
    ) -> Result<Self, crate::signed::SignatureError> {
        let t = token.peek()?;
        let message = proof_message(
            &t.tenant_id,
            &t.token_id,
            &t.enrollment_peer_id(),
            age_recipient,
        );
        Ok(EnrollRequest {
            token,
            edge_peer_id: crate::signed::peer_id_of(&edge_key.verifying_key()),
            age_recipient: age_recipient.to_owned(),
            proof: edge_key.sign(&message).to_bytes().to_vec(),
            agent_version: agent_version.to_owned(),
        })
    }

    /// Checks the proof against `token` (the verified payload of [`EnrollRequest::token`]);
    /// the edge's own public key.
    pub fn check_proof(&self, token: &EnrollmentToken) -> Result<VerifyingKey, ProofError> {
        let key =
            crate::signed::parse_public_key(&self.edge_peer_id).map_err(|_| ProofError::BadKey)?;
        let enrollment_peer_id = token.enrollment_peer_id();
        if crate::signed::peer_id_of(&key) == enrollment_peer_id {
            return Err(ProofError::EnrollmentKey);
        }
        let sig: [u8; 64] = self
            .proof
            .as_slice()
            .try_into()
            .map_err(|_| ProofError::BadSignature)?;
        key.verify(
            &proof_message(
                &token.tenant_id,
                &token.token_id,
                &enrollment_peer_id,
                &self.age_recipient,
            ),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .map_err(|_| ProofError::BadSignature)?;
        Ok(key)
    }
}

/// The vm's answer. A lost answer is harmless: the edge asks again with the same token and
/// keys, and the vm answers `Accepted` with the same configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollResponse {
    /// Enrolled: the edge is now a registered device, under its own peer id.
    Accepted(DeviceConfig),
    /// Refused: the connection is closed after this message.
    Refused(EnrollRefusal),
}

impl WireMessage for EnrollResponse {
    const NAME: &'static str = "EnrollResponse";
    // 2: new refusals (`BadProof`, `BadRecipient`, `KeyInUse`).
    const VERSION: u16 = 2;
    const MAX_SIZE: usize = 64 * 1024;
}

/// The long-lived configuration of a registered edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    /// The tenant.
    pub tenant_id: String,
    /// The edge's device id on the vm.
    pub device_id: String,
    /// Seconds between telemetry reports.
    pub telemetry_interval_secs: u32,
    /// The owner's archive recipient (`age1...`), in case it was rotated since packaging.
    pub archive_recipient: String,
    /// Key id of that recipient.
    pub archive_key_id: String,
}

/// Why enrollment was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum EnrollRefusal {
    /// The token's signature does not verify under this vm's tenant key.
    #[error("the enrollment token is not signed by this tenant")]
    BadSignature,
    /// The token names another tenant.
    #[error("the enrollment token belongs to another tenant")]
    WrongTenant,
    /// The token has expired.
    #[error("the enrollment token expired")]
    Expired,
    /// The token was already used.
    #[error("the enrollment token was already used")]
    AlreadyUsed,
    /// The connecting peer is not the token's enrollment identity.
    #[error("the enrollment token was issued to another edge")]
    WrongPeer,
    /// The proof does not verify under the edge's key, the edge peer id is not an ed25519
    /// key, or it is the enrollment identity itself (which the vm can derive).
    #[error("the edge did not prove it holds its own key")]
    BadProof,
    /// The age recipient is not an X25519 recipient (`age1...`).
    #[error("the edge's age recipient is not an X25519 recipient")]
    BadRecipient,
    /// The edge's key is already registered, with another token.
    #[error("the edge's key is already registered with another token")]
    KeyInUse,
    /// Anything else, with a reason for the log.
    #[error("enrollment refused: {0}")]
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    fn payload() -> EnrollmentToken {
        EnrollmentToken {
            tenant_id: "tenant-a".into(),
            token_id: "t0k3n".into(),
            enroll_secret: [7; 32],
            edge_name: "home".into(),
            issued_at_ms: 1,
            expires_at_ms: 2,
        }
    }

    fn token() -> Signed<EnrollmentToken> {
        let k = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        Signed::sign(&payload(), &k)
    }

    const RECIPIENT: &str = "age1ydtd594d737rjz4ezm8ckwzrkv7n8qge5xuh4zj8taxdvhl4sssq2upmtd";

    #[test]
    fn enroll_request() {
        let edge = SigningKey::from_bytes(&[3; 32]);
        let request = EnrollRequest::new(token(), &edge, RECIPIENT, "0.1.0").unwrap();
        conformance::check(&request);
        conformance::check_encoder_limit(&EnrollRequest {
            agent_version: "v".repeat(20_000),
            ..request
        });
    }

    #[test]
    fn enroll_response() {
        conformance::check(&EnrollResponse::Accepted(DeviceConfig {
            tenant_id: "tenant-a".into(),
            device_id: "dev-1".into(),
            telemetry_interval_secs: 30,
            archive_recipient: "age1xyz".into(),
            archive_key_id: "kabc".into(),
        }));
        conformance::check(&EnrollResponse::Refused(EnrollRefusal::AlreadyUsed));
        conformance::check(&EnrollResponse::Refused(EnrollRefusal::BadProof));
        conformance::check(&EnrollResponse::Refused(EnrollRefusal::Other("why".into())));
    }

    /// The derivation written down in the module's documentation, with a known answer
    /// computed independently (Python: `hashlib.sha256(b"guardian/enroll-identity/1\0" +
    /// bytes(range(32)))`, the public key by `cryptography`'s Ed25519, the peer id as the
    /// identity multihash of its libp2p protobuf encoding in base58).
    #[test]
    fn enrollment_identity_known_answer() {
        let secret: [u8; 32] = core::array::from_fn(|i| i as u8);
        let key = enrollment_key(&secret);
        assert_eq!(
            data_encoding::HEXLOWER.encode(key.as_bytes()),
            "d270b67aaefdc321a40a5cf79a8b449f866304c8c4202058decaf4a2323c2dd5"
        );
        assert_eq!(
            crate::signed::peer_id_of(&key.verifying_key()),
            "12D3KooWBRooueKjvcEVdD4GqRjekhZ4nmV9x7vqEUe7dycDB9M6"
        );
        // Another secret, another identity; the token derives the same as the function.
        assert_ne!(enrollment_key(&[0; 32]).as_bytes(), key.as_bytes());
        let t = payload();
        assert_eq!(
            t.enrollment_key().as_bytes(),
            enrollment_key(&[7; 32]).as_bytes()
        );
    }

    #[test]
    fn the_proof_binds_the_edge_key_to_the_token_and_recipient() {
        let edge = SigningKey::from_bytes(&[3; 32]);
        let t = payload();
        let request = EnrollRequest::new(token(), &edge, RECIPIENT, "v").unwrap();
        assert_eq!(
            request.edge_peer_id,
            crate::signed::peer_id_of(&edge.verifying_key())
        );
        assert_eq!(request.check_proof(&t), Ok(edge.verifying_key()));
        // Another token (id, tenant or secret), another recipient, another key: no proof.
        for other in [
            EnrollmentToken {
                token_id: "other".into(),
                ..payload()
            },
            EnrollmentToken {
                tenant_id: "tenant-b".into(),
                ..payload()
            },
            EnrollmentToken {
                enroll_secret: [8; 32],
                ..payload()
            },
        ] {
            assert_eq!(request.check_proof(&other), Err(ProofError::BadSignature));
        }
        let swapped = EnrollRequest {
            age_recipient: "age1other".into(),
            ..request.clone()
        };
        assert_eq!(swapped.check_proof(&t), Err(ProofError::BadSignature));
        let stranger = SigningKey::from_bytes(&[4; 32]);
        let claimed = EnrollRequest {
            edge_peer_id: crate::signed::peer_id_of(&stranger.verifying_key()),
            ..request.clone()
        };
        assert_eq!(claimed.check_proof(&t), Err(ProofError::BadSignature));
        let garbage = EnrollRequest {
            edge_peer_id: "not a peer id".into(),
            ..request.clone()
        };
        assert_eq!(garbage.check_proof(&t), Err(ProofError::BadKey));
        let short = EnrollRequest {
            proof: vec![0; 10],
            ..request
        };
        assert_eq!(short.check_proof(&t), Err(ProofError::BadSignature));
        // The enrollment identity is known to the vm: it cannot be the edge's own key.
        let lazy = EnrollRequest::new(token(), &t.enrollment_key(), RECIPIENT, "v").unwrap();
        assert_eq!(lazy.check_proof(&t), Err(ProofError::EnrollmentKey));
    }

    #[test]
    fn the_token_debug_hides_its_secret() {
        let text = format!("{:?}", payload());
        assert!(
            text.contains("<secret>") && !text.contains("7, 7"),
            "{text}"
        );
    }
}
