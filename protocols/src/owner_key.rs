//! The owner's archive key, derived from a passphrase and the tenant id.
//!
//! ```text
//! salt     = SHA-256("guardian/owner-key/v1" ‖ 0x00 ‖ tenant_id)            (32 bytes)
//! seed     = Argon2id(passphrase, salt, m = 64 MiB, t = 3, p = 1, v = 0x13, 32 bytes)
//! identity = age X25519 identity whose secret scalar is `seed` (age clamps it)
//! recipient = identity's public key, `age1...`
//! key id   = "k" ‖ base32lower(SHA-256("guardian/key-id/v1" ‖ 0x00 ‖ recipient)[..10])
//! ```
//!
//! The same secret also derives the owner's **signing key**, which signs the household's
//! key-slot lists ([`crate::key_slots`]), in a separate Argon2id run with its own salt:
//!
//! ```text
//! salt'       = SHA-256("guardian/owner-signing-key/1" ‖ 0x00 ‖ tenant_id)
//! seed'       = Argon2id(passphrase, salt', the same parameters, 32 bytes)
//! signing key = the ed25519 key whose RFC 8032 secret is `seed'`
//! ```
//!
//! Knowing the age identity (which the owner's browser derives to open clips) gives nothing
//! of the signing key: only the passphrase does, so only the CLI, where the owner types it,
//! ever signs.
//!
//! The same passphrase and tenant give the same identity on any machine: the salt is a pure
//! function of the tenant id, and the Argon2id parameters ([`KdfParams`]) are stored with the
//! tenant so they can be raised later without locking old archives away. The vm and the edge
//! hold only the recipient and the key id; the identity exists only where the owner types the
//! passphrase.

use std::str::FromStr;

use bech32::ToBase32;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Argon2id parameters, stored with the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Always `"argon2id"` for now.
    pub algorithm: KdfAlgorithm,
    /// Memory in KiB (default 65536 = 64 MiB).
    pub memory_kib: u32,
    /// Passes over memory (default 3).
    pub iterations: u32,
    /// Lanes (default 1; part of the result, so fixed per tenant).
    pub parallelism: u32,
}

/// The key-derivation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KdfAlgorithm {
    /// Argon2id version 0x13 (RFC 9106).
    Argon2id,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            algorithm: KdfAlgorithm::Argon2id,
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// Why a key could not be derived.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The passphrase is empty.
    #[error("the owner's secret is empty")]
    EmptySecret,
    /// The tenant id is empty.
    #[error("the tenant id is empty")]
    EmptyTenant,
    /// The parameters are outside what Argon2id accepts, or below the floor we allow.
    #[error("unusable Argon2id parameters: {0}")]
    BadParams(String),
}

/// The smallest memory accepted (8 MiB): below it the passphrase is too easy to guess.
pub const MIN_MEMORY_KIB: u32 = 8 * 1024;

/// The owner's age identity, derived from the passphrase and tenant id.
pub struct OwnerKey {
    identity: age::x25519::Identity,
}

impl OwnerKey {
    /// Derives the owner's key. Costs about 64 MiB and a fraction of a second with defaults.
    pub fn derive(secret: &[u8], tenant_id: &str, params: &KdfParams) -> Result<Self, KeyError> {
        check_inputs(secret, tenant_id, params)?;
        let seed = argon_seed(secret, &tenant_salt(tenant_id), params)?;
        Ok(OwnerKey {
            identity: identity_from_seed(&seed),
        })
    }

    /// The age identity, for opening sealed objects.
    pub fn identity(&self) -> &age::x25519::Identity {
        &self.identity
    }

    /// The identity in age's text form, `AGE-SECRET-KEY-1...`, usable with `age -d -i`.
    pub fn identity_string(&self) -> Zeroizing<String> {
        use age::secrecy::ExposeSecret;
        Zeroizing::new(self.identity.to_string().expose_secret().to_owned())
    }

    /// The recipient (`age1...`) that edges seal to.
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    /// The key id of the recipient, for the vm's index.
    pub fn key_id(&self) -> String {
        key_id(&self.recipient())
    }
}

/// The owner's ed25519 signing key, derived from the passphrase and tenant id (see the
/// module's documentation): it signs key-slot lists, and nothing else.
pub struct OwnerSigningKey {
    key: ed25519_dalek::SigningKey,
}

impl OwnerSigningKey {
    /// Derives the signing key (a second Argon2id run, as costly as [`OwnerKey::derive`]).
    pub fn derive(secret: &[u8], tenant_id: &str, params: &KdfParams) -> Result<Self, KeyError> {
        check_inputs(secret, tenant_id, params)?;
        let seed = argon_seed(secret, &signing_salt(tenant_id), params)?;
        Ok(OwnerSigningKey {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The key, for signing.
    pub fn signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.key
    }

    /// The public key in hex (64 digits), as install packages name it.
    pub fn public_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(self.key.verifying_key().as_bytes())
    }

    /// The public key's fingerprint, to compare with what `guardian-edge status` prints.
    pub fn fingerprint(&self) -> String {
        crate::signed::fingerprint(self.key.verifying_key().as_bytes())
    }
}

fn check_inputs(secret: &[u8], tenant_id: &str, params: &KdfParams) -> Result<(), KeyError> {
    if secret.is_empty() {
        return Err(KeyError::EmptySecret);
    }
    if tenant_id.is_empty() {
        return Err(KeyError::EmptyTenant);
    }
    if params.memory_kib < MIN_MEMORY_KIB {
        return Err(KeyError::BadParams(format!(
            "memory {} KiB is below the floor of {MIN_MEMORY_KIB} KiB",
            params.memory_kib
        )));
    }
    Ok(())
}

/// Argon2id (version 0x13) of `secret` with `salt`, 32 bytes.
fn argon_seed(
    secret: &[u8],
    salt: &[u8; 32],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| KeyError::BadParams(e.to_string()))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut seed = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(secret, salt, seed.as_mut())
        .map_err(|e| KeyError::BadParams(e.to_string()))?;
    Ok(seed)
}

/// The signing key's salt for a tenant.
pub fn signing_salt(tenant_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"guardian/owner-signing-key/1\0");
    h.update(tenant_id.as_bytes());
    h.finalize().into()
}

/// The salt for a tenant: SHA-256 of a domain string and the tenant id.
pub fn tenant_salt(tenant_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"guardian/owner-key/v1\0");
    h.update(tenant_id.as_bytes());
    h.finalize().into()
}

/// The key id of an age recipient string: short, stable, and reveals nothing of the key
/// beyond what the recipient (public) already does.
pub fn key_id(recipient: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"guardian/key-id/v1\0");
    h.update(recipient.trim().as_bytes());
    let digest = h.finalize();
    format!(
        "k{}",
        data_encoding::BASE32_NOPAD
            .encode(&digest[..10])
            .to_lowercase()
    )
}

/// Makes an age X25519 identity whose secret is `seed`, through age's own text form.
fn identity_from_seed(seed: &[u8; 32]) -> age::x25519::Identity {
    let mut encoded = bech32::encode("age-secret-key-", seed.to_base32(), bech32::Variant::Bech32)
        .expect("the HRP is valid");
    encoded.make_ascii_uppercase();
    let identity = age::x25519::Identity::from_str(&encoded).expect("32 bytes make an identity");
    encoded.zeroize();
    identity
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> KdfParams {
        KdfParams {
            memory_kib: MIN_MEMORY_KIB,
            iterations: 1,
            ..KdfParams::default()
        }
    }

    #[test]
    fn deterministic_for_secret_and_tenant() {
        let a = OwnerKey::derive(b"correct horse", "tenant-a", &small()).unwrap();
        let b = OwnerKey::derive(b"correct horse", "tenant-a", &small()).unwrap();
        assert_eq!(a.recipient(), b.recipient());
        assert_eq!(*a.identity_string(), *b.identity_string());
        assert!(a.recipient().starts_with("age1"));
        assert!(a.identity_string().starts_with("AGE-SECRET-KEY-1"));
        assert_eq!(a.key_id(), key_id(&a.recipient()));
        assert_eq!(a.key_id().len(), 17);
    }

    #[test]
    fn secret_tenant_and_params_each_change_the_key() {
        let base = OwnerKey::derive(b"correct horse", "tenant-a", &small())
            .unwrap()
            .recipient();
        let other_secret = OwnerKey::derive(b"correct horsf", "tenant-a", &small()).unwrap();
        let other_tenant = OwnerKey::derive(b"correct horse", "tenant-b", &small()).unwrap();
        let mut p = small();
        p.iterations = 2;
        let other_params = OwnerKey::derive(b"correct horse", "tenant-a", &p).unwrap();
        for k in [other_secret, other_tenant, other_params] {
            assert_ne!(k.recipient(), base);
        }
    }

    /// The documented defaults, pinned: a change here silently locks owners out of archives.
    #[test]
    fn default_parameters_are_the_documented_ones() {
        let p = KdfParams::default();
        assert_eq!((p.memory_kib, p.iterations, p.parallelism), (65536, 3, 1));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"algorithm":"argon2id","memory_kib":65536,"iterations":3,"parallelism":1}"#
        );
    }

    /// A known-answer test, computed independently in Python (argon2-cffi `hash_secret_raw`
    /// with the salt above, X25519 public key from `cryptography`, bech32 by hand), so that a
    /// change to any step (salt, Argon2 version, seed to identity) is caught.
    #[test]
    fn known_answer_with_default_parameters() {
        let k =
            OwnerKey::derive(b"guardian test secret", "tenant-kat", &KdfParams::default()).unwrap();
        // The recipient must be what `age-keygen -y` gives for the identity.
        let recipient = age::x25519::Identity::from_str(&k.identity_string())
            .unwrap()
            .to_public()
            .to_string();
        assert_eq!(recipient, k.recipient());
        assert_eq!(k.recipient(), KAT_RECIPIENT, "derivation changed");
    }

    /// The signing key's known answer, computed independently in Python (argon2-cffi
    /// `hash_secret_raw` with the signing salt, the ed25519 public key from `cryptography`).
    #[test]
    fn signing_key_known_answer_with_default_parameters() {
        let k =
            OwnerSigningKey::derive(b"guardian test secret", "tenant-kat", &KdfParams::default())
                .unwrap();
        assert_eq!(k.public_hex(), KAT_SIGNING_KEY, "derivation changed");
        assert_eq!(
            k.fingerprint(),
            crate::signed::fingerprint(k.signing_key().verifying_key().as_bytes())
        );
    }

    const KAT_SIGNING_KEY: &str =
        "666059ffc95ff16307fcdfc4bdfadc23014a4cbbbc6f85f9aefea567d934be13";

    /// The signing key is not the age identity's seed, nor any function of it: a different
    /// salt, so the age identity alone (what a browser holds) does not give it.
    #[test]
    fn signing_key_is_apart_from_the_age_identity() {
        let id = OwnerKey::derive(b"correct horse", "tenant-a", &small()).unwrap();
        let sk = OwnerSigningKey::derive(b"correct horse", "tenant-a", &small()).unwrap();
        let again = OwnerSigningKey::derive(b"correct horse", "tenant-a", &small()).unwrap();
        assert_eq!(sk.public_hex(), again.public_hex());
        assert_ne!(signing_salt("tenant-a"), tenant_salt("tenant-a"));
        let from_identity =
            ed25519_dalek::SigningKey::from_bytes(&bech32_seed(&id.identity_string()));
        assert_ne!(
            from_identity.verifying_key(),
            sk.signing_key().verifying_key()
        );
        let other = OwnerSigningKey::derive(b"correct horse", "tenant-b", &small()).unwrap();
        assert_ne!(other.public_hex(), sk.public_hex());
        assert!(matches!(
            OwnerSigningKey::derive(b"", "t", &small()),
            Err(KeyError::EmptySecret)
        ));
    }

    fn bech32_seed(identity: &str) -> [u8; 32] {
        use bech32::FromBase32;
        let (_, data, _) = bech32::decode(&identity.to_lowercase()).unwrap();
        Vec::<u8>::from_base32(&data).unwrap().try_into().unwrap()
    }

    const KAT_RECIPIENT: &str = "age1l5w42atugl23cpra6e7jk6e7t3apdpg38nmejezpuxacek9s0vesxq7rtr";

    #[test]
    fn refuses_empty_and_weak_inputs() {
        assert!(matches!(
            OwnerKey::derive(b"", "t", &small()),
            Err(KeyError::EmptySecret)
        ));
        assert!(matches!(
            OwnerKey::derive(b"s", "", &small()),
            Err(KeyError::EmptyTenant)
        ));
        let weak = KdfParams {
            memory_kib: 1024,
            ..small()
        };
        assert!(matches!(
            OwnerKey::derive(b"s", "t", &weak),
            Err(KeyError::BadParams(_))
        ));
    }
}
