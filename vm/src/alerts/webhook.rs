//! Webhooks: each alert POSTed as JSON ([`super::message::Payload`] with its `delivery` id),
//! signed the way Stripe signs (a timestamp, then HMAC-SHA256 over `timestamp "." body`):
//!
//! ```text
//! X-Guardian-Timestamp: 1796642080              (Unix seconds, at this attempt)
//! X-Guardian-Delivery:  dl-5f0c...              (the same on every retry: deduplicate by it)
//! X-Guardian-Signature: sha256=<hex HMAC-SHA256(secret, "1796642080." + body)>
//! ```
//!
//! A receiver recomputes the signature over the raw body, compares in constant time, and
//! refuses a timestamp more than [`REPLAY_WINDOW_SECS`] from its own clock, so a captured
//! request cannot be replayed later. Any 2xx is delivered; anything else is retried.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::channels::Webhook;

/// How far from the receiver's clock a timestamp may be (documented for receivers).
pub const REPLAY_WINDOW_SECS: u64 = 300;
/// How long one POST may take.
pub const POST_WITHIN: Duration = Duration::from_secs(10);

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `timestamp` "." `body`).
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "sha256={}",
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    )
}

/// The body: the payload with its delivery id.
pub fn body(payload_json: &str, delivery: &str) -> Result<Vec<u8>, String> {
    let mut v: serde_json::Value = serde_json::from_str(payload_json).map_err(|e| e.to_string())?;
    v["delivery"] = serde_json::Value::String(delivery.to_owned());
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}

/// POSTs one notification (blocking: run it on the blocking pool).
pub fn post(
    hook: &Webhook,
    delivery: &str,
    payload_json: &str,
    now_secs: u64,
) -> Result<(), String> {
    let body = body(payload_json, delivery)?;
    let answer = ureq::post(&hook.url)
        .timeout(POST_WITHIN)
        .set("Content-Type", "application/json")
        .set("User-Agent", "guardian-vm")
        .set("X-Guardian-Timestamp", &now_secs.to_string())
        .set("X-Guardian-Delivery", delivery)
        .set("X-Guardian-Signature", &sign(&hook.secret, now_secs, &body))
        .send_bytes(&body);
    match answer {
        Ok(r) if (200..300).contains(&r.status()) => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(ureq::Error::Status(code, _)) => Err(format!("HTTP {code}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"a-secret-of-some-length",
        //   b"1796642080.{\"type\":\"event\"}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(
                "a-secret-of-some-length",
                1_796_642_080,
                br#"{"type":"event"}"#
            ),
            "sha256=42de1c8ad8645a065b5550fa789aa2d9b870f39b84047bd711349bd8f52661cd"
        );
        let b = body(r#"{"type":"event","title":"x"}"#, "dl-1").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (v["delivery"].as_str(), v["title"].as_str()),
            (Some("dl-1"), Some("x"))
        );
        assert!(body("not json", "dl-1").is_err());
    }
}
