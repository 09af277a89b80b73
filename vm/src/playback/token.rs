//! Playback tokens, pure: minting one for an event (signed by the tenant key, valid a given
//! number of seconds from `now_ms`) and checking one presented over HTTP (signature, tenant,
//! event, expiry at `now_ms`).

use ed25519_dalek::{SigningKey, VerifyingKey};
use protocols::messages::clips::PlaybackToken;
use protocols::signed::Signed;

use crate::db::EventRow;

/// What a minted token says besides the event.
#[derive(Debug, Clone, Copy)]
pub struct Minting<'a> {
    /// The tenant.
    pub tenant_id: &'a str,
    /// Who it is for (`owner-api`, `vm-http`).
    pub owner: &'a str,
    /// Issued at, Unix ms.
    pub now_ms: u64,
    /// Valid for, seconds (at least 1).
    pub valid_secs: u64,
    /// A fresh random nonce.
    pub nonce: [u8; 16],
}

/// Signs a token for `event`.
pub fn mint(m: Minting<'_>, event: &EventRow, key: &SigningKey) -> Signed<PlaybackToken> {
    let token = PlaybackToken {
        tenant_id: m.tenant_id.to_owned(),
        event_id: event.event_id.clone(),
        owner: m.owner.to_owned(),
        edge_peer_id: event.edge_peer_id.clone(),
        nonce: data_encoding::BASE64URL_NOPAD.encode(&m.nonce),
        issued_at_ms: m.now_ms,
        expires_at_ms: m.now_ms + m.valid_secs.max(1) * 1000,
    };
    Signed::sign(&token, key)
}

/// Whether `text` (an encoded token) is valid for `event_id` of `tenant_id` at `now_ms`:
/// signed by the tenant key, this tenant, this event, not past its expiry (valid at the
/// expiry millisecond itself).
pub fn check(
    text: &str,
    tenant_key: &VerifyingKey,
    tenant_id: &str,
    event_id: &str,
    now_ms: u64,
) -> bool {
    let Ok(signed) = protocols::messages::clips::decode_token(text) else {
        return false;
    };
    match signed.verify(tenant_key) {
        Ok(t) => t.tenant_id == tenant_id && t.event_id == event_id && now_ms <= t.expires_at_ms,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardian_node::{Clock, ManualClock};
    use protocols::messages::clips::encode_token;
    use std::time::Duration;

    fn event(id: &str) -> EventRow {
        EventRow {
            event_id: id.into(),
            edge_peer_id: "edge".into(),
            camera_id: "front".into(),
            started_at_ms: 0,
            ended_at_ms: 1,
            category: "person".into(),
            score_milli: 900,
            clip_cid: None,
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            received_at_ms: 1,
            state: "closed".into(),
            revision: 0,
            confirmed_at_ms: 0,
            zones: Vec::new(),
            verification: None,
            reviewed_at_ms: None,
        }
    }

    #[test]
    fn a_token_is_valid_until_its_expiry_and_refused_one_ms_after() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let clock = ManualClock::new(1_800_000_000_000);
        let signed = mint(
            Minting {
                tenant_id: "t",
                owner: "owner-api",
                now_ms: clock.wall_ms(),
                valid_secs: 300,
                nonce: [1; 16],
            },
            &event("ev-1"),
            &key,
        );
        let text = encode_token(&signed);
        let vk = key.verifying_key();
        let ok = |c: &ManualClock| check(&text, &vk, "t", "ev-1", c.wall_ms());
        assert!(ok(&clock), "valid when minted");
        clock.advance(Duration::from_secs(300));
        assert!(ok(&clock), "valid at its expiry");
        clock.advance(Duration::from_millis(1));
        assert!(!ok(&clock), "refused one ms after");
    }

    #[test]
    fn a_token_names_its_tenant_event_and_signer() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let m = Minting {
            tenant_id: "t",
            owner: "vm-http",
            now_ms: 0,
            valid_secs: 0,
            nonce: [2; 16],
        };
        let signed = mint(m, &event("ev-1"), &key);
        let t = signed.peek().unwrap();
        assert_eq!(t.expires_at_ms, 1000, "at least one second");
        assert_eq!(t.owner, "vm-http");
        let text = encode_token(&signed);
        let vk = key.verifying_key();
        assert!(check(&text, &vk, "t", "ev-1", 0));
        assert!(!check(&text, &vk, "t", "ev-2", 0), "another event");
        assert!(!check(&text, &vk, "t2", "ev-1", 0), "another tenant");
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        assert!(!check(&text, &other, "t", "ev-1", 0), "another signer");
        assert!(!check("not a token", &vk, "t", "ev-1", 0));
    }
}
