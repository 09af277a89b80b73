//! The local admin token of the LAN web app ([`crate::lan`]): made by `guardian-edge init`
//! (and `guardian-edge local-token --rotate`), printed once, and kept only as its SHA-256 in
//! the data directory ([`FILE`], mode 0600). It signs in as an admin when the vm and its
//! users are out of reach. It is never logged.

use std::path::Path;

use anyhow::{Context, Result};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The file holding the token's SHA-256 (hex), in the data directory.
pub const FILE: &str = "local-token.sha256";

/// Makes a new token (32 random bytes, hex), stores its hash in `data` (replacing any
/// earlier one: the old token stops working) and returns it, to be shown once.
pub fn make(data: &Path) -> Result<String> {
    use std::io::Write;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = data_encoding::HEXLOWER.encode(&bytes);
    // A temporary file is 0600; renamed into place, the hash is whole or absent.
    let mut tmp = tempfile::NamedTempFile::new_in(data)
        .with_context(|| format!("cannot write in {}", data.display()))?;
    writeln!(tmp, "{}", digest(&token))?;
    tmp.as_file().sync_all()?;
    tmp.persist(data.join(FILE))
        .with_context(|| format!("cannot write {}", data.join(FILE).display()))?;
    Ok(token)
}

/// Whether `data` holds a token's hash.
pub fn exists(data: &Path) -> bool {
    data.join(FILE).is_file()
}

/// The stored hash, if any (read each time: a rotation applies to a running edge at once).
pub fn stored(data: &Path) -> Option<[u8; 32]> {
    let text = std::fs::read_to_string(data.join(FILE)).ok()?;
    let bytes = data_encoding::HEXLOWER
        .decode(text.trim().as_bytes())
        .ok()?;
    bytes.try_into().ok()
}

/// Whether `token` is the one whose hash is `stored` (compared in constant time).
pub fn matches(stored: &[u8; 32], token: &str) -> bool {
    let h: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
    h.iter().zip(stored).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn digest(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_is_kept_and_a_rotation_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!exists(dir.path()));
        assert_eq!(stored(dir.path()), None);
        let first = make(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!text.contains(&first), "the token itself is not stored");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let h = stored(dir.path()).unwrap();
        assert!(matches(&h, &first));
        assert!(!matches(&h, "nope"));
        let second = make(dir.path()).unwrap();
        let h = stored(dir.path()).unwrap();
        assert!(matches(&h, &second));
        assert!(!matches(&h, &first), "the old token stops working");
    }
}
