//! The edge's WireGuard key: `wg.key` in the data folder (owner-only), with its generation
//! and when it was made. The private key never leaves the box; a rotation writes the next
//! key (generation + 1) before it is offered, so a crash between the offer and the switch
//! offers the same key again.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use guardian_overlay::keys::SecretKey;
use serde::{Deserialize, Serialize};

/// The file's name in the data folder.
pub const FILE: &str = "wg.key";

/// The key and its generation.
#[derive(Debug, Clone)]
pub struct WgKey {
    /// The private key.
    pub secret: SecretKey,
    /// 1 for the first key, one more at each rotation.
    pub generation: u64,
    /// When it was made, Unix ms.
    pub made_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    private_key: String,
    generation: u64,
    made_ms: u64,
}

fn path(data: &Path) -> PathBuf {
    data.join(FILE)
}

impl WgKey {
    /// The stored key, or a first one (generation 1) made and stored now.
    pub fn load_or_make(data: &Path, now_ms: u64) -> Result<WgKey> {
        let p = path(data);
        match std::fs::read_to_string(&p) {
            Ok(text) => {
                let d: OnDisk = serde_json::from_str(&text)
                    .with_context(|| format!("{} does not hold a WireGuard key", p.display()))?;
                Ok(WgKey {
                    secret: SecretKey::from_base64(&d.private_key)
                        .with_context(|| format!("{}: the private key", p.display()))?,
                    generation: d.generation,
                    made_ms: d.made_ms,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = WgKey {
                    secret: SecretKey::generate(),
                    generation: 1,
                    made_ms: now_ms,
                };
                k.store(data)?;
                Ok(k)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// The next key (generation + 1), stored in place of this one.
    pub fn rotate(&self, data: &Path, now_ms: u64) -> Result<WgKey> {
        let k = WgKey {
            secret: SecretKey::generate(),
            generation: self.generation + 1,
            made_ms: now_ms,
        };
        k.store(data)?;
        Ok(k)
    }

    fn store(&self, data: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = path(data);
        let tmp = data.join(format!("{FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let text = serde_json::to_vec(&OnDisk {
            private_key: self.secret.to_base64(),
            generation: self.generation,
            made_ms: self.made_ms,
        })?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p).with_context(|| format!("cannot replace {}", p.display()))?;
        Ok(())
    }
}

/// Whether a key made at `made_ms` is due for rotation at `now_ms`.
pub fn rotation_due(made_ms: u64, now_ms: u64, rotate_hours: u32) -> bool {
    now_ms.saturating_sub(made_ms) >= u64::from(rotate_hours) * 3_600_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_kept_private_and_rotated_with_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let first = WgKey::load_or_make(dir.path(), 1000).unwrap();
        assert_eq!(first.generation, 1);
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = WgKey::load_or_make(dir.path(), 5000).unwrap();
        assert_eq!(again.secret.public(), first.secret.public());
        assert_eq!(again.made_ms, 1000);
        let next = again.rotate(dir.path(), 9000).unwrap();
        assert_eq!(next.generation, 2);
        assert_ne!(next.secret.public(), first.secret.public());
        let loaded = WgKey::load_or_make(dir.path(), 10_000).unwrap();
        assert_eq!(
            (loaded.secret.public(), loaded.generation, loaded.made_ms),
            (next.secret.public(), 2, 9000)
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(WgKey::load_or_make(dir.path(), 0).is_err());
    }

    #[test]
    fn rotation_is_due_after_the_configured_hours() {
        assert!(!rotation_due(0, 3_599_999, 1));
        assert!(rotation_due(0, 3_600_000, 1));
        assert!(!rotation_due(10, 5, 1));
    }
}
