//! `guardian keys slots add|list|remove`: the household's key-slot list, signed here with the
//! owner's signing key and uploaded to the vm, which stores and forwards it to the edges.
//!
//! The vm is not trusted with the list: before a change is built on the vm's latest list,
//! that list's signature is checked against the owner's own key, so a list the vm altered
//! (a recipient of its own added) is never signed again by the owner. [`add`] and [`remove`]
//! are pure: the next version from the current one.

use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;
use protocols::key_slots::{Cameras, KeySlot, KeySlotList};
use protocols::signed::Signed;
use serde_json::Value;

use crate::api::VmApi;

/// The vm's latest list, checked against the owner's key, and the vm's answer (with each
/// edge's state).
pub struct Current {
    /// The list (`None` before the first).
    pub list: Option<KeySlotList>,
    /// `GET /api/v1/key-slots` as the vm answered it.
    pub answer: Value,
}

/// Reads the vm's latest list and checks that `key` signed it.
pub fn current(api: &VmApi, key: &SigningKey) -> Result<Current> {
    let answer: Value = api
        .get("/api/v1/key-slots")?
        .into_json()
        .context("unreadable answer from the vm")?;
    let list = match answer.get("signed") {
        None | Some(Value::Null) => None,
        Some(s) => {
            let part = |name: &str| {
                let text = s[name]
                    .as_str()
                    .with_context(|| format!("no {name} in the vm's list"))?;
                data_encoding::BASE64
                    .decode(text.as_bytes())
                    .with_context(|| format!("the vm's list {name} is not base64"))
            };
            let signed = Signed::<KeySlotList>::from_parts(part("body")?, part("signature")?);
            Some(signed.verify(&key.verifying_key()).map_err(|e| {
                anyhow::anyhow!(
                    "the vm's key-slot list is not signed by your owner signing key ({e}): it was \
                     changed by someone else, or you typed another secret; not building on it"
                )
            })?)
        }
    };
    Ok(Current { list, answer })
}

/// The list after adding a slot: the next version, signed at `now_ms`.
pub fn add(
    current: Option<&KeySlotList>,
    tenant_id: &str,
    slot: KeySlot,
    now_ms: u64,
) -> Result<KeySlotList> {
    let mut next = next_version(current, tenant_id, now_ms);
    if next.slot(&slot.name).is_some() {
        bail!(
            "a slot named {:?} exists: remove it first to change it",
            slot.name
        );
    }
    if let Some(s) = next.slots.iter().find(|s| s.recipient == slot.recipient) {
        bail!("that recipient is already the slot {:?}", s.name);
    }
    next.slots.push(slot);
    next.validate()?;
    Ok(next)
}

/// The list after removing the slot `name`: the next version, signed at `now_ms`.
pub fn remove(
    current: Option<&KeySlotList>,
    tenant_id: &str,
    name: &str,
    now_ms: u64,
) -> Result<KeySlotList> {
    let mut next = next_version(current, tenant_id, now_ms);
    let before = next.slots.len();
    next.slots.retain(|s| s.name != name);
    if next.slots.len() == before {
        bail!("there is no slot named {name:?}");
    }
    Ok(next)
}

fn next_version(current: Option<&KeySlotList>, tenant_id: &str, now_ms: u64) -> KeySlotList {
    KeySlotList {
        tenant_id: tenant_id.to_owned(),
        version: current.map_or(1, |c| c.version + 1),
        slots: current.map(|c| c.slots.clone()).unwrap_or_default(),
        signed_at_ms: now_ms,
    }
}

/// Signs `list` and uploads it; the vm's answer.
pub fn upload(api: &VmApi, key: &SigningKey, list: &KeySlotList) -> Result<Value> {
    let signed = Signed::sign(list, key);
    let url = "/api/v1/key-slots";
    let body = serde_json::json!({
        "body": data_encoding::BASE64.encode(&signed.body),
        "signature": data_encoding::BASE64.encode(&signed.signature),
    });
    let answer = api.put_json(url, body)?;
    answer.into_json().context("unreadable answer from the vm")
}

/// The cameras of `--camera` values: none means every camera.
pub fn cameras(ids: &[String]) -> Cameras {
    if ids.is_empty() {
        Cameras::All
    } else {
        Cameras::Only(ids.to_vec())
    }
}

/// The list and each edge's state as lines for a terminal.
pub fn describe(answer: &Value) -> String {
    let mut out = String::new();
    let version = answer["version"].as_u64().unwrap_or(0);
    out.push_str(&format!("key-slot list version {version}\n"));
    if let Some(fp) = answer["owner_signing_key_fingerprint"].as_str() {
        out.push_str(&format!("owner signing key fingerprint: {fp}\n"));
    }
    for s in answer["slots"].as_array().into_iter().flatten() {
        let cams = match &s["cameras"] {
            Value::String(all) => all.clone(),
            other => other["only"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        };
        out.push_str(&format!(
            "slot {}  {}  cameras: {}\n",
            s["name"].as_str().unwrap_or("?"),
            s["recipient"].as_str().unwrap_or("?"),
            cams
        ));
    }
    for e in answer["edges"].as_array().into_iter().flatten() {
        let applied = e["applied_version"]
            .as_u64()
            .map_or("none".to_owned(), |v| v.to_string());
        out.push_str(&format!(
            "edge {} ({}): {}, applied version {applied}{}\n",
            e["name"].as_str().unwrap_or("?"),
            e["peer_id"].as_str().unwrap_or("?"),
            e["state"].as_str().unwrap_or("?"),
            e["reason"]
                .as_str()
                .map(|r| format!(", refused: {r}"))
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "age1png63l7y86t6utsqc0s5lh2mt97q99k84cfg3mgs9f20cn067s3svhpf46";
    const R2: &str = "age1qhwt9n8ma9mz5h9stygped7mfwhzg2c7sraly69alldgdv04kcdql3n9fr";

    fn slot(name: &str, recipient: &str) -> KeySlot {
        KeySlot {
            name: name.into(),
            recipient: recipient.into(),
            cameras: Cameras::All,
            added_at_ms: 5,
        }
    }

    #[test]
    fn each_change_is_the_next_version() {
        let v1 = add(None, "t", slot("alice", R1), 10).unwrap();
        assert_eq!((v1.version, v1.slots.len(), v1.signed_at_ms), (1, 1, 10));
        let v2 = add(Some(&v1), "t", slot("bob", R2), 11).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(v2.recipients_for("door"), [R1, R2]);
        let v3 = remove(Some(&v2), "t", "alice", 12).unwrap();
        assert_eq!(v3.version, 3);
        assert_eq!(v3.recipients_for("door"), [R2]);
    }

    #[test]
    fn mistakes_are_refused() {
        let v1 = add(None, "t", slot("alice", R1), 10).unwrap();
        assert!(
            add(Some(&v1), "t", slot("alice", R2), 11).is_err(),
            "same name"
        );
        assert!(
            add(Some(&v1), "t", slot("bob", R1), 11).is_err(),
            "same key"
        );
        assert!(add(Some(&v1), "t", slot("bob", "age1nope"), 11).is_err());
        assert!(remove(Some(&v1), "t", "carol", 11).is_err());
        assert!(remove(None, "t", "alice", 11).is_err());
    }

    #[test]
    fn cameras_of_the_flags() {
        assert_eq!(cameras(&[]), Cameras::All);
        assert_eq!(
            cameras(&["door".into()]),
            Cameras::Only(vec!["door".into()])
        );
    }
}
