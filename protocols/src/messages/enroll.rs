//! `/guardian/enroll/1`: the edge presents the single-use token from its install package and
//! receives its long-lived configuration, or a typed refusal.

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;
use crate::signed::{Signed, SignedPayload};

/// The enrollment token the vm puts in an install package, signed by the tenant key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    /// The tenant the edge joins.
    pub tenant_id: String,
    /// Random id of this token; the vm accepts each id once.
    pub token_id: String,
    /// The edge's libp2p peer id, which the token is bound to.
    pub edge_peer_id: String,
    /// The edge's name, as given at packaging.
    pub edge_name: String,
    /// Issued at, Unix ms.
    pub issued_at_ms: u64,
    /// Not accepted after, Unix ms.
    pub expires_at_ms: u64,
}

impl SignedPayload for EnrollmentToken {
    const CONTEXT: &'static str = "enroll-token/1";
}

/// The edge's first message on `/guardian/enroll/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The token from the install package.
    pub token: Signed<EnrollmentToken>,
    /// The agent's version, for the vm's device list.
    pub agent_version: String,
}

impl WireMessage for EnrollRequest {
    const NAME: &'static str = "EnrollRequest";
    const MAX_SIZE: usize = 16 * 1024;
}

/// The vm's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollResponse {
    /// Enrolled: the edge is now a registered device.
    Accepted(DeviceConfig),
    /// Refused: the connection is closed after this message.
    Refused(EnrollRefusal),
}

impl WireMessage for EnrollResponse {
    const NAME: &'static str = "EnrollResponse";
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
    /// The token is bound to another peer id than the one connecting.
    #[error("the enrollment token was issued to another edge")]
    WrongPeer,
    /// Anything else, with a reason for the log.
    #[error("enrollment refused: {0}")]
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    fn token() -> Signed<EnrollmentToken> {
        let k = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        Signed::sign(
            &EnrollmentToken {
                tenant_id: "tenant-a".into(),
                token_id: "t0k3n".into(),
                edge_peer_id: "12D3KooWexample".into(),
                edge_name: "home".into(),
                issued_at_ms: 1,
                expires_at_ms: 2,
            },
            &k,
        )
    }

    #[test]
    fn enroll_request() {
        conformance::check(&EnrollRequest {
            token: token(),
            agent_version: "0.1.0".into(),
        });
        conformance::check_encoder_limit(&EnrollRequest {
            token: token(),
            agent_version: "v".repeat(20_000),
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
        conformance::check(&EnrollResponse::Refused(EnrollRefusal::Other("why".into())));
    }
}
