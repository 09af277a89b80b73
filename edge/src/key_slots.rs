//! The household's key slots on the edge: the list the owner signed that this edge runs, and
//! the recipients each camera's new clips are sealed to.
//!
//! A list arrives from the vm over `/guardian/config/1` ([`crate::configure`]) and is
//! applied only when [`protocols::key_slots::accept`] says so: signed by the owner signing
//! key the install package names, for this tenant, at a version no lower than the package's
//! minimum and than the list applied (no rollback). Applying writes `key-slots.cbor` (the
//! signed list as it came, fsynced, then renamed into place) before the list is used, so a
//! restart keeps it; at load the file is checked again like a new list, and one that does not
//! pass (altered on disk) is ignored with an error in the log: clips are then sealed to the
//! owner alone, never to a recipient the owner did not sign.
//!
//! Each clip is sealed to the owner's recipient (from the package) and to every slot allowed
//! for its camera ([`KeySlots::recipients_for`]). A removed member's key is in no clip sealed
//! after the list that removed it was applied.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ed25519_dalek::VerifyingKey;
use protocols::key_slots::{KeySlotList, SlotError, accept};
use protocols::package::PackageInfo;
use protocols::signed::Signed;

/// The file the applied list is kept in, in the data directory.
pub const FILE: &str = "key-slots.cbor";

/// Why a list was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The list itself is refused (signature, tenant, version, form).
    #[error(transparent)]
    Refused(#[from] SlotError),
    /// It could not be written; the list in use is unchanged (worth retrying).
    #[error("cannot keep the key-slot list: {0}")]
    Io(#[from] std::io::Error),
}

/// The applied list and what checks a new one. Cheap to clone; clones share the list.
#[derive(Clone, Debug)]
pub struct KeySlots {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Where the list is kept (`None`: in memory only, for tests).
    path: Option<PathBuf>,
    owner: Vec<String>,
    signer: Option<VerifyingKey>,
    tenant_id: String,
    minimum: u64,
    applied: RwLock<Option<KeySlotList>>,
}

impl KeySlots {
    /// The slots of the edge in `data` installed from `info`: the kept list if it still
    /// passes, else none. Fails only when the package's signing key does not parse.
    pub fn load(data: &Path, info: &PackageInfo) -> anyhow::Result<KeySlots> {
        let signer = info.owner_signing_key()?;
        let path = data.join(FILE);
        let slots = KeySlots {
            inner: Arc::new(Inner {
                path: Some(path.clone()),
                owner: vec![info.archive_recipient.clone()],
                signer,
                tenant_id: info.tenant_id.clone(),
                minimum: info.key_slots_min_version,
                applied: RwLock::new(None),
            }),
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                match ciborium::from_reader::<Signed<KeySlotList>, _>(bytes.as_slice())
                    .map_err(|e| SlotError::Invalid(e.to_string()))
                    .and_then(|s| slots.check(&s))
                {
                    Ok(list) => *slots.write() = Some(list),
                    Err(e) => tracing::error!(
                        file = %path.display(),
                        reason = %e,
                        "the kept key-slot list does not pass; sealing to the owner alone"
                    ),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
                );
            }
        }
        Ok(slots)
    }

    /// Fixed recipients and no list (tests, and tools that seal without an install).
    pub fn fixed(recipients: Vec<String>) -> KeySlots {
        KeySlots {
            inner: Arc::new(Inner {
                path: None,
                owner: recipients,
                signer: None,
                tenant_id: String::new(),
                minimum: 0,
                applied: RwLock::new(None),
            }),
        }
    }

    /// The version of the applied list, if any.
    pub fn applied_version(&self) -> Option<u64> {
        self.read().as_ref().map(|l| l.version)
    }

    /// The applied list, if any.
    pub fn applied(&self) -> Option<KeySlotList> {
        self.read().clone()
    }

    /// The owner's signing key the package names, if any.
    pub fn signer(&self) -> Option<&VerifyingKey> {
        self.inner.signer.as_ref()
    }

    /// The recipients a new clip of `camera` is sealed to: the owner's, then each slot's
    /// allowed for the camera, each once.
    pub fn recipients_for(&self, camera: &str) -> Vec<String> {
        let mut out = self.inner.owner.clone();
        if let Some(list) = self.read().as_ref() {
            for r in list.recipients_for(camera) {
                if !out.iter().any(|o| o == r) {
                    out.push(r.to_owned());
                }
            }
        }
        out
    }

    /// Checks `list` and, when it passes, keeps it (durably) and uses it from now on: its
    /// version. A refusal is logged with its reason and changes nothing.
    pub fn apply(&self, list: &Signed<KeySlotList>) -> Result<u64, ApplyError> {
        let checked = match self.check(list) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(reason = %e, applied = ?self.applied_version(), "key-slot list refused");
                return Err(e.into());
            }
        };
        let version = checked.version;
        if self.applied_version() == Some(version) {
            return Ok(version);
        }
        if let Some(path) = &self.inner.path {
            let mut bytes = Vec::new();
            ciborium::into_writer(list, &mut bytes).expect("a signed list encodes");
            write_durably(path, &bytes)?;
        }
        tracing::info!(
            version,
            slots = checked.slots.len(),
            names = ?checked.slots.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            "key-slot list applied"
        );
        *self.write() = Some(checked);
        Ok(version)
    }

    fn check(&self, list: &Signed<KeySlotList>) -> Result<KeySlotList, SlotError> {
        accept(
            list,
            self.inner.signer.as_ref(),
            &self.inner.tenant_id,
            self.inner.minimum,
            self.applied_version(),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<KeySlotList>> {
        self.inner.applied.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<KeySlotList>> {
        self.inner
            .applied
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes `bytes` to a temporary file beside `path`, fsyncs it, renames it into place and
/// fsyncs the folder.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use protocols::key_slots::{Cameras, KeySlot};

    const OWNER: &str = "age1png63l7y86t6utsqc0s5lh2mt97q99k84cfg3mgs9f20cn067s3svhpf46";
    const NANNY: &str = "age1qhwt9n8ma9mz5h9stygped7mfwhzg2c7sraly69alldgdv04kcdql3n9fr";

    /// A package for tests that neither enroll nor seal for real (tenant `tenant`).
    pub(crate) fn package_info() -> PackageInfo {
        PackageInfo {
            format: protocols::package::FORMAT.into(),
            tenant_id: "tenant".into(),
            tenant_public_key: String::new(),
            edge_name: "home".into(),
            vm_peer_id: "vm".into(),
            vm_addresses: Vec::new(),
            vm_http: String::new(),
            archive_recipient: String::new(),
            archive_key_id: String::new(),
            kdf: protocols::KdfParams::default(),
            owner_signing_key: None,
            key_slots_min_version: 0,
            enrollment_token: String::new(),
            created_at_ms: 0,
        }
    }

    fn info(signer: &SigningKey, minimum: u64) -> PackageInfo {
        PackageInfo {
            archive_recipient: OWNER.into(),
            archive_key_id: protocols::owner_key::key_id(OWNER),
            owner_signing_key: Some(
                data_encoding::HEXLOWER.encode(signer.verifying_key().as_bytes()),
            ),
            key_slots_min_version: minimum,
            ..package_info()
        }
    }

    fn list(version: u64, slots: Vec<KeySlot>) -> KeySlotList {
        KeySlotList {
            tenant_id: "tenant".into(),
            version,
            slots,
            signed_at_ms: 1,
        }
    }

    fn nanny(cameras: Cameras) -> KeySlot {
        KeySlot {
            name: "nanny".into(),
            recipient: NANNY.into(),
            cameras,
            added_at_ms: 1,
        }
    }

    #[test]
    fn applied_lists_add_scoped_recipients_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let owner = SigningKey::from_bytes(&[1; 32]);
        let slots = KeySlots::load(dir.path(), &info(&owner, 1)).unwrap();
        assert_eq!(slots.recipients_for("nursery"), [OWNER]);
        let v1 = Signed::sign(
            &list(1, vec![nanny(Cameras::Only(vec!["nursery".into()]))]),
            &owner,
        );
        assert_eq!(slots.apply(&v1).unwrap(), 1);
        assert_eq!(slots.recipients_for("nursery"), [OWNER, NANNY]);
        assert_eq!(slots.recipients_for("door"), [OWNER]);
        // Kept across a restart.
        let again = KeySlots::load(dir.path(), &info(&owner, 1)).unwrap();
        assert_eq!(again.applied_version(), Some(1));
        assert_eq!(again.recipients_for("nursery"), [OWNER, NANNY]);
        // Removal: version 2 without the slot.
        assert_eq!(
            again
                .apply(&Signed::sign(&list(2, vec![]), &owner))
                .unwrap(),
            2
        );
        assert_eq!(again.recipients_for("nursery"), [OWNER]);
        // The old list replayed is refused, and changes nothing.
        assert!(matches!(
            again.apply(&v1),
            Err(ApplyError::Refused(SlotError::Rollback {
                offered: 1,
                applied: 2
            }))
        ));
        assert_eq!(again.recipients_for("nursery"), [OWNER]);
    }

    #[test]
    fn a_list_the_owner_did_not_sign_is_refused_and_an_altered_file_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let owner = SigningKey::from_bytes(&[1; 32]);
        let vm = SigningKey::from_bytes(&[2; 32]);
        let slots = KeySlots::load(dir.path(), &info(&owner, 0)).unwrap();
        let forged = Signed::sign(&list(5, vec![nanny(Cameras::All)]), &vm);
        assert!(matches!(
            slots.apply(&forged),
            Err(ApplyError::Refused(SlotError::BadSignature(_)))
        ));
        assert_eq!(slots.recipients_for("door"), [OWNER]);
        assert!(!dir.path().join(FILE).exists());
        // A forged list written straight into the data directory is not used either.
        let mut bytes = Vec::new();
        ciborium::into_writer(&forged, &mut bytes).unwrap();
        std::fs::write(dir.path().join(FILE), bytes).unwrap();
        let loaded = KeySlots::load(dir.path(), &info(&owner, 0)).unwrap();
        assert_eq!(loaded.applied_version(), None);
        assert_eq!(loaded.recipients_for("door"), [OWNER]);
        // Without a signing key in the package, no list at all.
        let mut unsigned = info(&owner, 0);
        unsigned.owner_signing_key = None;
        let none = KeySlots::load(tempfile::tempdir().unwrap().path(), &unsigned).unwrap();
        assert!(matches!(
            none.apply(&Signed::sign(&list(1, vec![]), &owner)),
            Err(ApplyError::Refused(SlotError::NoSigner))
        ));
        // Below the package's minimum.
        let min = KeySlots::load(tempfile::tempdir().unwrap().path(), &info(&owner, 3)).unwrap();
        assert!(matches!(
            min.apply(&Signed::sign(&list(2, vec![]), &owner)),
            Err(ApplyError::Refused(SlotError::BelowMinimum { .. }))
        ));
    }
}
