//! Household key slots: who may open what an edge seals, signed by the owner, never by the vm.
//!
//! A [`KeySlotList`] names the tenant, a version, and one slot per member: a name, an age
//! recipient, the cameras whose clips it may open, and when it was added. It is valid only
//! as a [`Signed`] payload under the context `key-slots/1`, by the owner's signing key
//! ([`crate::owner_key::OwnerSigningKey`]), which the install package names. An edge applies
//! a list only when [`accept`] says so: signed by that key, for its tenant, at a version no
//! lower than the package's minimum and than the list it runs (no rollback), and well formed.
//! So a compromised vm, which stores and forwards lists, can neither add a recipient of its
//! own nor bring back a removed member.
//!
//! The owner's own recipient (the package's) is not a slot: every clip is sealed to it.

use std::collections::BTreeSet;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::messages::valid_id;
use crate::signed::{Signed, SignedPayload};

/// Most slots in one list.
pub const MAX_SLOTS: usize = 64;

/// The household's key slots at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlotList {
    /// The tenant.
    pub tenant_id: String,
    /// Increases with each change (the first list is 1).
    pub version: u64,
    /// The members.
    pub slots: Vec<KeySlot>,
    /// When the owner signed it, Unix ms.
    pub signed_at_ms: u64,
}

impl SignedPayload for KeySlotList {
    const CONTEXT: &'static str = "key-slots/1";
}

/// One member's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlot {
    /// The member's name, unique in the list (1 to 64 characters).
    pub name: String,
    /// Their age X25519 recipient (`age1...`).
    pub recipient: String,
    /// The cameras whose clips are sealed to them.
    pub cameras: Cameras,
    /// When the slot was added, Unix ms.
    pub added_at_ms: u64,
}

/// Which cameras a slot may open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cameras {
    /// Every camera of the tenant, present and future.
    All,
    /// Only these camera ids.
    Only(Vec<String>),
}

impl Cameras {
    /// Whether `camera` is among them.
    pub fn includes(&self, camera: &str) -> bool {
        match self {
            Cameras::All => true,
            Cameras::Only(ids) => ids.iter().any(|c| c == camera),
        }
    }
}

/// Why a key-slot list is refused. None is worth retrying as it is: the owner must sign a
/// new list (or the edge's package must name the right key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The edge's package names no owner signing key, so it applies no list.
    #[error("this edge's install package names no owner signing key")]
    NoSigner,
    /// Not signed by the owner signing key the package names.
    #[error("not signed by the owner's signing key: {0}")]
    BadSignature(String),
    /// For another tenant.
    #[error("the list is for tenant {found}, not {expected}")]
    WrongTenant {
        /// The tenant of the edge.
        expected: String,
        /// The list's.
        found: String,
    },
    /// Older than the list the edge runs: a replay.
    #[error("version {offered} is older than the applied version {applied}")]
    Rollback {
        /// The list's version.
        offered: u64,
        /// The edge's.
        applied: u64,
    },
    /// Older than the package allows.
    #[error("version {offered} is below the package's minimum {minimum}")]
    BelowMinimum {
        /// The list's version.
        offered: u64,
        /// The package's minimum.
        minimum: u64,
    },
    /// Malformed: a bad recipient or camera id, a repeated name, too many slots.
    #[error("invalid key-slot list: {0}")]
    Invalid(String),
}

impl KeySlotList {
    /// Checks the list's own form (recipients, names, camera ids, size).
    pub fn validate(&self) -> Result<(), SlotError> {
        let invalid = |m: String| Err(SlotError::Invalid(m));
        if self.version == 0 {
            return invalid("version 0 (lists start at 1)".into());
        }
        if self.slots.len() > MAX_SLOTS {
            return invalid(format!("{} slots, at most {MAX_SLOTS}", self.slots.len()));
        }
        let mut names = BTreeSet::new();
        for s in &self.slots {
            if s.name.trim().is_empty() || s.name.len() > 64 || s.name.chars().any(char::is_control)
            {
                return invalid(format!(
                    "slot name {:?} (1 to 64 printable characters)",
                    s.name
                ));
            }
            if !names.insert(s.name.as_str()) {
                return invalid(format!("slot {:?} appears twice", s.name));
            }
            if crate::seal::parse_recipients(&[s.recipient.as_str()]).is_err() {
                return invalid(format!(
                    "slot {:?}: {:?} is not an age recipient",
                    s.name, s.recipient
                ));
            }
            if let Cameras::Only(ids) = &s.cameras
                && let Some(bad) = ids.iter().find(|c| !valid_id(c))
            {
                return invalid(format!("slot {:?}: {bad:?} is not a camera id", s.name));
            }
        }
        Ok(())
    }

    /// The recipients of the slots allowed for `camera`, in list order.
    pub fn recipients_for(&self, camera: &str) -> Vec<&str> {
        self.slots
            .iter()
            .filter(|s| s.cameras.includes(camera))
            .map(|s| s.recipient.as_str())
            .collect()
    }

    /// The slot named `name`.
    pub fn slot(&self, name: &str) -> Option<&KeySlot> {
        self.slots.iter().find(|s| s.name == name)
    }
}

/// Whether an edge of `tenant_id`, whose package names `signer` and `minimum`, and which runs
/// the list at version `applied` (if any), applies `list`: the list when it does.
/// The same version as the applied one is accepted again (a push repeated after a lost ack).
pub fn accept(
    list: &Signed<KeySlotList>,
    signer: Option<&VerifyingKey>,
    tenant_id: &str,
    minimum: u64,
    applied: Option<u64>,
) -> Result<KeySlotList, SlotError> {
    let signer = signer.ok_or(SlotError::NoSigner)?;
    let l = list
        .verify(signer)
        .map_err(|e| SlotError::BadSignature(e.to_string()))?;
    if l.tenant_id != tenant_id {
        return Err(SlotError::WrongTenant {
            expected: tenant_id.to_owned(),
            found: l.tenant_id,
        });
    }
    if l.version < minimum {
        return Err(SlotError::BelowMinimum {
            offered: l.version,
            minimum,
        });
    }
    if let Some(applied) = applied
        && l.version < applied
    {
        return Err(SlotError::Rollback {
            offered: l.version,
            applied,
        });
    }
    l.validate()?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    const R1: &str = "age1png63l7y86t6utsqc0s5lh2mt97q99k84cfg3mgs9f20cn067s3svhpf46";
    const R2: &str = "age1qhwt9n8ma9mz5h9stygped7mfwhzg2c7sraly69alldgdv04kcdql3n9fr";

    fn list(version: u64) -> KeySlotList {
        KeySlotList {
            tenant_id: "t".into(),
            version,
            slots: vec![
                KeySlot {
                    name: "alice".into(),
                    recipient: R1.into(),
                    cameras: Cameras::All,
                    added_at_ms: 1,
                },
                KeySlot {
                    name: "nanny".into(),
                    recipient: R2.into(),
                    cameras: Cameras::Only(vec!["nursery".into()]),
                    added_at_ms: 2,
                },
            ],
            signed_at_ms: 3,
        }
    }

    fn owner() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    #[test]
    fn the_owners_list_is_accepted_and_scoped_per_camera() {
        let k = owner();
        let l = accept(
            &Signed::sign(&list(2), &k),
            Some(&k.verifying_key()),
            "t",
            1,
            Some(1),
        )
        .unwrap();
        assert_eq!(l, list(2));
        assert_eq!(l.recipients_for("door"), [R1]);
        assert_eq!(l.recipients_for("nursery"), [R1, R2]);
        // The same version again: a repeated push.
        assert!(
            accept(
                &Signed::sign(&l, &k),
                Some(&k.verifying_key()),
                "t",
                1,
                Some(2)
            )
            .is_ok()
        );
    }

    #[test]
    fn each_refusal_says_why() {
        let k = owner();
        let vk = k.verifying_key();
        let other = SigningKey::from_bytes(&[4; 32]);
        let signed = |l: &KeySlotList| Signed::sign(l, &k);
        assert_eq!(
            accept(&signed(&list(2)), None, "t", 0, None),
            Err(SlotError::NoSigner)
        );
        assert!(matches!(
            accept(&Signed::sign(&list(2), &other), Some(&vk), "t", 0, None),
            Err(SlotError::BadSignature(_))
        ));
        // A signature by the owner over another context (an enrollment token, ...) is no list.
        let mut forged = signed(&list(2));
        forged.body[3] ^= 1;
        assert!(matches!(
            accept(&forged, Some(&vk), "t", 0, None),
            Err(SlotError::BadSignature(_))
        ));
        assert_eq!(
            accept(&signed(&list(2)), Some(&vk), "u", 0, None),
            Err(SlotError::WrongTenant {
                expected: "u".into(),
                found: "t".into()
            })
        );
        assert_eq!(
            accept(&signed(&list(2)), Some(&vk), "t", 0, Some(3)),
            Err(SlotError::Rollback {
                offered: 2,
                applied: 3
            })
        );
        assert_eq!(
            accept(&signed(&list(2)), Some(&vk), "t", 5, None),
            Err(SlotError::BelowMinimum {
                offered: 2,
                minimum: 5
            })
        );
        for broken in [
            |l: &mut KeySlotList| l.slots[1].name = "alice".into(),
            |l: &mut KeySlotList| l.slots[0].recipient = "age1nope".into(),
            |l: &mut KeySlotList| l.slots[1].cameras = Cameras::Only(vec!["Nursery".into()]),
            |l: &mut KeySlotList| l.slots[0].name = " ".into(),
            |l: &mut KeySlotList| l.version = 0,
        ] {
            let mut l = list(2);
            broken(&mut l);
            assert!(
                matches!(
                    accept(&signed(&l), Some(&vk), "t", 0, None),
                    Err(SlotError::Invalid(_))
                ),
                "{l:?}"
            );
        }
    }

    #[test]
    fn the_encoding_is_stable_cbor() {
        let l = list(7);
        let s = Signed::sign(&l, &owner());
        let back: KeySlotList = s.peek().unwrap();
        assert_eq!(back, l);
        let json = serde_json::to_value(&l.slots[1].cameras).unwrap();
        assert_eq!(json, serde_json::json!({"only": ["nursery"]}));
        assert_eq!(serde_json::to_value(Cameras::All).unwrap(), "all");
    }
}
