//! The edge's own keys, made at `guardian-edge init` and never sent anywhere: the ed25519 key
//! (`edge.key`: the libp2p identity and the manifest signatures) and the X25519 age identity
//! (`edge.age`: for secrets later sent to the edge, sealed to its recipient `age1...`). Both
//! files are mode 0600. The vm learns only the public halves, at enrollment.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use anyhow::{Context, Result, anyhow};
use ed25519_dalek::SigningKey;

/// The key files' names inside the data directory (also `crate::data_dir::paths`).
pub mod paths {
    /// The edge's ed25519 key (libp2p identity, manifest signatures), made by the edge.
    pub const KEY: &str = "edge.key";
    /// The edge's age X25519 identity (for secrets sent to it), made by the edge.
    pub const AGE_KEY: &str = "edge.age";
}

/// The edge's key pair and age identity.
pub struct EdgeKeys {
    /// The ed25519 key.
    pub signing: SigningKey,
    /// The age X25519 identity.
    pub age: age::x25519::Identity,
}

/// What [`load_or_make`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Made {
    /// `edge.key` was made now (not found).
    pub signing: bool,
    /// `edge.age` was made now (not found).
    pub age: bool,
}

impl EdgeKeys {
    /// Reads both key files of `data`.
    pub fn load(data: &Path) -> Result<Self> {
        Ok(EdgeKeys {
            signing: guardian_node::identity::read_key(&data.join(paths::KEY))?,
            age: read_age(&data.join(paths::AGE_KEY))?,
        })
    }

    /// The edge's peer id.
    pub fn peer_id(&self) -> String {
        protocols::signed::peer_id_of(&self.signing.verifying_key())
    }

    /// The age recipient (`age1...`).
    pub fn age_recipient(&self) -> String {
        self.age.to_public().to_string()
    }

    /// The fingerprint of the ed25519 public key.
    pub fn signing_fingerprint(&self) -> String {
        protocols::signed::fingerprint(self.signing.verifying_key().as_bytes())
    }

    /// The fingerprint of the age recipient.
    pub fn age_fingerprint(&self) -> String {
        protocols::signed::fingerprint(self.age_recipient().as_bytes())
    }
}

/// Reads the keys of `data`, making (and writing, mode 0600) each one that is missing; keys
/// already there are kept, so a repeated `init` changes nothing.
pub fn load_or_make(data: &Path) -> Result<(EdgeKeys, Made)> {
    let key_path = data.join(paths::KEY);
    let made_signing = !key_path.exists();
    if made_signing {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        write_new(
            &key_path,
            guardian_node::identity::encode_key(&key).as_bytes(),
        )?;
    }
    let age_path = data.join(paths::AGE_KEY);
    let made_age = !age_path.exists();
    if made_age {
        let identity = age::x25519::Identity::generate();
        let text = format!("{}\n", identity.to_string().expose_secret());
        write_new(&age_path, text.as_bytes())?;
    }
    Ok((
        EdgeKeys::load(data)?,
        Made {
            signing: made_signing,
            age: made_age,
        },
    ))
}

fn read_age(path: &Path) -> Result<age::x25519::Identity> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the edge's age identity {}", path.display()))?;
    age::x25519::Identity::from_str(text.trim())
        .map_err(|_| anyhow!("{} does not hold an age X25519 identity", path.display()))
}

/// Writes a new file readable by its owner only (refusing to replace one), synced.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (first, made) = load_or_make(dir.path()).unwrap();
        assert_eq!(
            made,
            Made {
                signing: true,
                age: true
            }
        );
        for f in [paths::KEY, paths::AGE_KEY] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        assert!(first.age_recipient().starts_with("age1"));
        let (again, made) = load_or_make(dir.path()).unwrap();
        assert_eq!(
            made,
            Made {
                signing: false,
                age: false
            }
        );
        assert_eq!(again.peer_id(), first.peer_id());
        assert_eq!(again.age_recipient(), first.age_recipient());
        assert_eq!(again.signing_fingerprint(), first.signing_fingerprint());
        // One missing: only that one is made.
        std::fs::remove_file(dir.path().join(paths::AGE_KEY)).unwrap();
        let (third, made) = load_or_make(dir.path()).unwrap();
        assert_eq!(
            made,
            Made {
                signing: false,
                age: true
            }
        );
        assert_eq!(third.peer_id(), first.peer_id());
        assert_ne!(third.age_recipient(), first.age_recipient());
    }

    #[test]
    fn a_damaged_age_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_make(dir.path()).unwrap();
        std::fs::write(dir.path().join(paths::AGE_KEY), "nonsense\n").unwrap();
        assert!(EdgeKeys::load(dir.path()).is_err());
    }
}
