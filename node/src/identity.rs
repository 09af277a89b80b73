//! The ed25519 key files nodes start from.
//!
//! A key file holds the 32-byte ed25519 secret key as 64 hex digits and a newline; it is
//! written with mode 0600. The same key is the node's libp2p identity (its peer id) and, on
//! an edge, the key that signs manifests.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use libp2p::identity::Keypair;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The content is not 64 hex digits.
    #[error("key file {0} does not hold an ed25519 secret key (64 hex digits)")]
    Malformed(String),
}

/// Encodes a signing key for a key file.
pub fn encode_key(key: &SigningKey) -> String {
    format!("{}\n", data_encoding::HEXLOWER.encode(key.as_bytes()))
}

/// Decodes a key file's content.
pub fn decode_key(text: &str) -> Option<SigningKey> {
    let bytes: [u8; 32] = data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.trim().as_bytes())
        .ok()?
        .try_into()
        .ok()?;
    Some(SigningKey::from_bytes(&bytes))
}

/// Reads a key file.
pub fn read_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    decode_key(&text).ok_or_else(|| KeyFileError::Malformed(path.display().to_string()))
}

/// Writes a key file (mode 0600), replacing any file there.
pub fn write_key(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(encode_key(key).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// The libp2p key pair of a signing key.
pub fn keypair(key: &SigningKey) -> Keypair {
    let mut secret = key.to_bytes();
    Keypair::ed25519_from_bytes(&mut secret).expect("32 bytes are an ed25519 secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_peer_id() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let path = dir.path().join("node.key");
        write_key(&path, &key).unwrap();
        let back = read_key(&path).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The libp2p peer id is the one protocols derives from the public key.
        let peer = keypair(&key).public().to_peer_id().to_string();
        assert_eq!(peer, protocols::signed::peer_id_of(&key.verifying_key()));
        std::fs::write(&path, "nope").unwrap();
        assert!(matches!(read_key(&path), Err(KeyFileError::Malformed(_))));
    }
}
