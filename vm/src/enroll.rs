//! The vm's enrollment decision, as a pure function of the token, the connecting peer, the
//! tenant and what the database holds, so every refusal is tested without a network.
//!
//! Order of checks: signature, tenant, idempotent re-enrollment of a registered device,
//! known and unspent token, expiry, peer binding. A registered device that presents its own
//! (spent) token again is accepted: it holds the device key, so it could connect as the device
//! anyway, and a lost answer to its first enrollment must not lock it out.

use ed25519_dalek::VerifyingKey;
use protocols::messages::enroll::{EnrollRefusal, EnrollmentToken};
use protocols::signed::Signed;

use crate::db::{DeviceRow, PackageRow};

/// What the checks concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new device: spend the token and register it.
    Register(EnrollmentToken),
    /// Already registered with this token: answer with its configuration again.
    AlreadyRegistered,
}

/// Decides on an enrollment request.
pub fn decide(
    token: &Signed<EnrollmentToken>,
    peer: &str,
    tenant_id: &str,
    tenant_key: &VerifyingKey,
    now_ms: u64,
    package: Option<&PackageRow>,
    device: Option<&DeviceRow>,
) -> Result<Decision, EnrollRefusal> {
    let t = token
        .verify(tenant_key)
        .map_err(|_| EnrollRefusal::BadSignature)?;
    if t.tenant_id != tenant_id {
        return Err(EnrollRefusal::WrongTenant);
    }
    if let Some(d) = device
        && d.peer_id == peer
        && d.token_id == t.token_id
    {
        return Ok(Decision::AlreadyRegistered);
    }
    let package = package.ok_or_else(|| EnrollRefusal::Other("unknown enrollment token".into()))?;
    if package.used_at_ms.is_some() {
        return Err(EnrollRefusal::AlreadyUsed);
    }
    if now_ms >= t.expires_at_ms || now_ms >= package.expires_at_ms {
        return Err(EnrollRefusal::Expired);
    }
    if t.edge_peer_id != peer || package.edge_peer_id != peer {
        return Err(EnrollRefusal::WrongPeer);
    }
    Ok(Decision::Register(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    const PEER: &str = "12D3KooWEdge";

    fn token(key: &SigningKey, tenant: &str, peer: &str, expires: u64) -> Signed<EnrollmentToken> {
        Signed::sign(
            &EnrollmentToken {
                tenant_id: tenant.into(),
                token_id: "tok".into(),
                edge_peer_id: peer.into(),
                edge_name: "home".into(),
                issued_at_ms: 0,
                expires_at_ms: expires,
            },
            key,
        )
    }

    fn package(used: Option<u64>) -> PackageRow {
        PackageRow {
            token_id: "tok".into(),
            edge_peer_id: PEER.into(),
            edge_name: "home".into(),
            recipient: "age1x".into(),
            issued_at_ms: 0,
            expires_at_ms: 100,
            used_at_ms: used,
        }
    }

    fn device(peer: &str) -> DeviceRow {
        DeviceRow {
            peer_id: peer.into(),
            name: "home".into(),
            token_id: "tok".into(),
            recipient: "age1x".into(),
            enrolled_at_ms: 5,
            agent_version: "v".into(),
            last_seen_ms: 5,
        }
    }

    /// Token, connecting peer, now, package row, device row, expected refusal.
    type Case = (
        Signed<EnrollmentToken>,
        &'static str,
        u64,
        Option<PackageRow>,
        Option<DeviceRow>,
        EnrollRefusal,
    );

    #[test]
    fn each_refusal() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let vk = k.verifying_key();
        let other = SigningKey::from_bytes(&[2; 32]);
        let ok = token(&k, "t", PEER, 100);
        let p = package(None);

        assert!(matches!(
            decide(&ok, PEER, "t", &vk, 50, Some(&p), None),
            Ok(Decision::Register(_))
        ));
        let cases: Vec<Case> = vec![
            (
                token(&other, "t", PEER, 100),
                PEER,
                50,
                Some(p.clone()),
                None,
                EnrollRefusal::BadSignature,
            ),
            (
                token(&k, "t2", PEER, 100),
                PEER,
                50,
                Some(p.clone()),
                None,
                EnrollRefusal::WrongTenant,
            ),
            (
                ok.clone(),
                PEER,
                50,
                Some(package(Some(10))),
                None,
                EnrollRefusal::AlreadyUsed,
            ),
            (
                ok.clone(),
                PEER,
                100,
                Some(p.clone()),
                None,
                EnrollRefusal::Expired,
            ),
            (
                ok.clone(),
                "12D3KooWOther",
                50,
                Some(p.clone()),
                None,
                EnrollRefusal::WrongPeer,
            ),
            (
                ok.clone(),
                PEER,
                50,
                None,
                None,
                EnrollRefusal::Other("unknown enrollment token".into()),
            ),
            // Another registered device presenting this spent token.
            (
                ok.clone(),
                "12D3KooWOther",
                50,
                Some(package(Some(10))),
                Some(DeviceRow {
                    token_id: "its-own-token".into(),
                    ..device("12D3KooWOther")
                }),
                EnrollRefusal::AlreadyUsed,
            ),
        ];
        for (i, (t, peer, now, pkg, dev, want)) in cases.into_iter().enumerate() {
            let got = decide(&t, peer, "t", &vk, now, pkg.as_ref(), dev.as_ref());
            assert_eq!(got, Err(want), "case {i}");
        }
    }

    #[test]
    fn a_registered_device_may_enroll_again() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let t = token(&k, "t", PEER, 100);
        // Even after expiry: it is registered by peer id now.
        assert_eq!(
            decide(
                &t,
                PEER,
                "t",
                &k.verifying_key(),
                500,
                Some(&package(Some(10))),
                Some(&device(PEER))
            ),
            Ok(Decision::AlreadyRegistered)
        );
    }
}
