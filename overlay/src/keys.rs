//! X25519 key pairs as WireGuard writes them: 32 bytes, standard base64 (44 characters).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroize;

/// A key that does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64 of 32 bytes.
    #[error("not a WireGuard key (base64 of 32 bytes)")]
    Malformed,
}

/// A WireGuard private key. Never printed by `Debug`; zeroed when dropped.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// A new random key, clamped as `wg genkey` does.
    pub fn generate() -> SecretKey {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        SecretKey::from_bytes(b)
    }

    /// From its 32 bytes (clamped).
    pub fn from_bytes(mut b: [u8; 32]) -> SecretKey {
        b[0] &= 248;
        b[31] &= 127;
        b[31] |= 64;
        SecretKey(b)
    }

    /// From WireGuard's base64 form.
    pub fn from_base64(s: &str) -> Result<SecretKey, KeyError> {
        decode32(s).map(SecretKey::from_bytes)
    }

    /// WireGuard's base64 form (what a `PrivateKey =` line holds).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The raw bytes.
    pub fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}

/// A WireGuard public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// From WireGuard's base64 form.
    pub fn from_base64(s: &str) -> Result<PublicKey, KeyError> {
        decode32(s).map(PublicKey)
    }

    /// From bytes off the wire.
    pub fn from_slice(b: &[u8]) -> Result<PublicKey, KeyError> {
        b.try_into().map(PublicKey).map_err(|_| KeyError::Malformed)
    }

    /// WireGuard's base64 form.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

fn decode32(s: &str) -> Result<[u8; 32], KeyError> {
    let v = STANDARD.decode(s.trim()).map_err(|_| KeyError::Malformed)?;
    v.try_into().map_err(|_| KeyError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 §6.1: Alice's private key and public key.
    #[test]
    fn public_key_of_the_rfc_vector() {
        let hex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
        let mut b = [0u8; 32];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        let public = SecretKey::from_bytes(b).public();
        let want = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
        let got: String = public.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn base64_round_trip_and_refusals() {
        let k = SecretKey::generate();
        assert_eq!(k.to_base64().len(), 44);
        let back = SecretKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(back.public(), k.public());
        let p = k.public();
        assert_eq!(PublicKey::from_base64(&p.to_base64()).unwrap(), p);
        assert_eq!(PublicKey::from_base64("short"), Err(KeyError::Malformed));
        assert_eq!(PublicKey::from_slice(&[0; 31]), Err(KeyError::Malformed));
        assert!(!format!("{k:?}").contains(&k.to_base64()));
    }
}
