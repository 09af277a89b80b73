//! The vm's enrollment decision, as a pure function of the request, the connecting peer, the
//! tenant and what the database holds, so every refusal is tested without a network.
//!
//! The edge connects as the enrollment identity derived from its token's secret (the only
//! peer the gate admits for an unspent package) and names its own ed25519 key and age
//! recipient, with a proof signed by its own key (`protocols::messages::enroll`).
//!
//! Order of checks: token signature, tenant, the connecting peer is the token's enrollment
//! identity, the proof, the age recipient, then what the database holds: a device already
//! registered with this token is answered again if it is the same edge key (a lost answer
//! must not lock the edge out) and refused as [`EnrollRefusal::AlreadyUsed`] otherwise; the
//! edge's key must not be registered with another token; the token must be known, unspent
//! and unexpired.

use ed25519_dalek::VerifyingKey;
use protocols::messages::enroll::{EnrollRefusal, EnrollRequest, EnrollmentToken};

use crate::db::{DeviceRow, PackageRow};

/// What the checks concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new device: spend the token and register the edge under its own peer id.
    Register(EnrollmentToken),
    /// Already registered with this token and this edge key: answer with its configuration
    /// again.
    AlreadyRegistered,
}

/// What the database holds for a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// The package of the token's id.
    pub package: Option<&'a PackageRow>,
    /// The device registered with the token's id.
    pub device_of_token: Option<&'a DeviceRow>,
    /// The device registered under the edge's own peer id.
    pub device_of_key: Option<&'a DeviceRow>,
}

/// Decides on an enrollment request arriving from `peer`.
pub fn decide(
    request: &EnrollRequest,
    peer: &str,
    tenant_id: &str,
    tenant_key: &VerifyingKey,
    now_ms: u64,
    known: Known<'_>,
) -> Result<Decision, EnrollRefusal> {
    let t = request
        .token
        .verify(tenant_key)
        .map_err(|_| EnrollRefusal::BadSignature)?;
    if t.tenant_id != tenant_id {
        return Err(EnrollRefusal::WrongTenant);
    }
    if t.enrollment_peer_id() != peer {
        return Err(EnrollRefusal::WrongPeer);
    }
    request
        .check_proof(&t)
        .map_err(|_| EnrollRefusal::BadProof)?;
    // Stored and shown as given, so exactly a recipient: no whitespace around it.
    if protocols::seal::parse_recipients(&[request.age_recipient.as_str()]).is_err()
        || request.age_recipient.trim() != request.age_recipient
    {
        return Err(EnrollRefusal::BadRecipient);
    }
    if let Some(d) = known.device_of_token {
        return if d.peer_id == request.edge_peer_id {
            Ok(Decision::AlreadyRegistered)
        } else {
            Err(EnrollRefusal::AlreadyUsed)
        };
    }
    if known.device_of_key.is_some() {
        return Err(EnrollRefusal::KeyInUse);
    }
    let package = known
        .package
        .ok_or_else(|| EnrollRefusal::Other("unknown enrollment token".into()))?;
    if package.used_at_ms.is_some() {
        return Err(EnrollRefusal::AlreadyUsed);
    }
    if now_ms >= t.expires_at_ms || now_ms >= package.expires_at_ms {
        return Err(EnrollRefusal::Expired);
    }
    Ok(Decision::Register(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use protocols::signed::{Signed, peer_id_of};

    const RECIPIENT: &str = "age1ydtd594d737rjz4ezm8ckwzrkv7n8qge5xuh4zj8taxdvhl4sssq2upmtd";
    const SECRET: [u8; 32] = [9; 32];

    fn tenant() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn edge() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn payload(tenant: &str, expires: u64) -> EnrollmentToken {
        EnrollmentToken {
            tenant_id: tenant.into(),
            token_id: "tok".into(),
            enroll_secret: SECRET,
            edge_name: "home".into(),
            issued_at_ms: 0,
            expires_at_ms: expires,
        }
    }

    /// The enrollment identity's peer id, where requests come from.
    fn enroll_peer() -> String {
        payload("t", 100).enrollment_peer_id()
    }

    fn request_by(key: &SigningKey, token: &EnrollmentToken, signer: &SigningKey) -> EnrollRequest {
        EnrollRequest::new(Signed::sign(token, signer), key, RECIPIENT, "v").unwrap()
    }

    fn request() -> EnrollRequest {
        request_by(&edge(), &payload("t", 100), &tenant())
    }

    fn package(used: Option<u64>) -> PackageRow {
        PackageRow {
            token_id: "tok".into(),
            enroll_peer_id: enroll_peer(),
            edge_name: "home".into(),
            recipient: "age1x".into(),
            issued_at_ms: 0,
            expires_at_ms: 100,
            used_at_ms: used,
        }
    }

    fn device(key: &SigningKey, token: &str) -> DeviceRow {
        DeviceRow {
            peer_id: peer_id_of(&key.verifying_key()),
            name: "home".into(),
            token_id: token.into(),
            recipient: "age1x".into(),
            age_recipient: Some(RECIPIENT.into()),
            enrolled_at_ms: 5,
            agent_version: "v".into(),
            last_seen_ms: 5,
        }
    }

    fn run(
        request: &EnrollRequest,
        peer: &str,
        now: u64,
        known: Known<'_>,
    ) -> Result<Decision, EnrollRefusal> {
        decide(request, peer, "t", &tenant().verifying_key(), now, known)
    }

    #[test]
    fn a_fresh_package_registers_the_edge_under_its_own_key() {
        let p = package(None);
        let known = Known {
            package: Some(&p),
            ..Known::default()
        };
        match run(&request(), &enroll_peer(), 50, known) {
            Ok(Decision::Register(t)) => assert_eq!(t.token_id, "tok"),
            other => panic!("{other:?}"),
        }
        assert_ne!(
            request().edge_peer_id,
            enroll_peer(),
            "the device's key is not the enrollment identity"
        );
    }

    #[test]
    fn each_refusal() {
        let (p, spent) = (package(None), package(Some(10)));
        let fresh = Known {
            package: Some(&p),
            ..Known::default()
        };
        let other_tenant_key = SigningKey::from_bytes(&[2; 32]);
        let stranger = SigningKey::from_bytes(&[4; 32]);
        let first = device(&stranger, "tok");
        let elsewhere = device(&edge(), "another-token");
        let with_bad_proof = EnrollRequest {
            proof: vec![0; 64],
            ..request()
        };
        let claiming_another_key = EnrollRequest {
            edge_peer_id: peer_id_of(&stranger.verifying_key()),
            ..request()
        };
        let with_bad_recipient = {
            let t = payload("t", 100);
            EnrollRequest::new(Signed::sign(&t, &tenant()), &edge(), "age1nonsense", "v").unwrap()
        };
        let with_owner_style_key = {
            let t = payload("t", 100);
            EnrollRequest::new(
                Signed::sign(&t, &tenant()),
                &edge(),
                "AGE-SECRET-KEY-1NOTARECIPIENT",
                "v",
            )
            .unwrap()
        };
        let peer = enroll_peer();
        let cases: Vec<(&str, EnrollRequest, String, u64, Known<'_>, EnrollRefusal)> = vec![
            (
                "signed by another key",
                request_by(&edge(), &payload("t", 100), &other_tenant_key),
                peer.clone(),
                50,
                fresh,
                EnrollRefusal::BadSignature,
            ),
            (
                "another tenant's token",
                request_by(&edge(), &payload("t2", 100), &tenant()),
                peer.clone(),
                50,
                fresh,
                EnrollRefusal::WrongTenant,
            ),
            (
                "not from the token's enrollment identity",
                request(),
                peer_id_of(&edge().verifying_key()),
                50,
                fresh,
                EnrollRefusal::WrongPeer,
            ),
            (
                "a proof that does not verify",
                with_bad_proof,
                peer.clone(),
                50,
                fresh,
                EnrollRefusal::BadProof,
            ),
            (
                "a proof by another key than the one named",
                claiming_another_key,
                peer.clone(),
                50,
                fresh,
                EnrollRefusal::BadProof,
            ),
            (
                "the enrollment identity named as the edge's own key",
                request_by(
                    &payload("t", 100).enrollment_key(),
                    &payload("t", 100),
                    &tenant(),
                ),
                peer.clone(),
                50,
                fresh,
                EnrollRefusal::BadProof,
            ),
            (
                "an age recipient that does not parse",
                with_bad_recipient,
                peer.clone(),
                50,
                fresh,
                EnrollRefusal::BadRecipient,
            ),
            (
                "a secret key where the recipient goes",
                with_owner_style_key,
                peer.clone(),
                50,
                fresh,
                EnrollRefusal::BadRecipient,
            ),
            (
                "a spent token presented by another edge key",
                request(),
                peer.clone(),
                50,
                Known {
                    package: Some(&spent),
                    device_of_token: Some(&first),
                    device_of_key: None,
                },
                EnrollRefusal::AlreadyUsed,
            ),
            (
                "a spent token and no device (never written so)",
                request(),
                peer.clone(),
                50,
                Known {
                    package: Some(&spent),
                    ..Known::default()
                },
                EnrollRefusal::AlreadyUsed,
            ),
            (
                "the edge's key registered with another token",
                request(),
                peer.clone(),
                50,
                Known {
                    package: Some(&p),
                    device_of_token: None,
                    device_of_key: Some(&elsewhere),
                },
                EnrollRefusal::KeyInUse,
            ),
            (
                "expired",
                request(),
                peer.clone(),
                100,
                fresh,
                EnrollRefusal::Expired,
            ),
            (
                "unknown token",
                request(),
                peer.clone(),
                50,
                Known::default(),
                EnrollRefusal::Other("unknown enrollment token".into()),
            ),
        ];
        for (what, request, peer, now, known, want) in cases {
            assert_eq!(run(&request, &peer, now, known), Err(want), "{what}");
        }
    }

    #[test]
    fn the_same_edge_asking_again_is_answered_again() {
        let spent = package(Some(10));
        let registered = device(&edge(), "tok");
        // A lost answer: the same token, the same own key, from the enrollment identity again;
        // even after the token's expiry.
        assert_eq!(
            run(
                &request(),
                &enroll_peer(),
                500,
                Known {
                    package: Some(&spent),
                    device_of_token: Some(&registered),
                    device_of_key: Some(&registered),
                }
            ),
            Ok(Decision::AlreadyRegistered)
        );
    }
}
