//! The edge's install package: everything an edge needs to find, join and serve its vm,
//! made by the vm at provisioning and signed by the tenant key.
//!
//! # Format (`guardian-install/1`)
//!
//! A tar archive (ustar) with exactly these members:
//!
//! - `guardian/package.json`: [`PackageInfo`] as JSON.
//! - `guardian/edge.key`: the edge's ed25519 secret key, 64 hex digits and a newline. The vm
//!   makes the edge's key pair, so it knows the edge's peer id before the edge first calls.
//! - `guardian/package.sig`: 128 hex digits, the tenant key's ed25519 signature over
//!   `"guardian/package/1" ‖ 0x00 ‖ SHA-256(package.json) ‖ SHA-256(edge.key)`.
//!
//! `package.json` names the tenant's public key, and the enrollment token inside is signed by
//! the same key, so [`InstallPackage::from_tar`] checks that the parts belong together and
//! were not altered; the vm checks the token again against its own key at enrollment.

use std::io::Read;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::messages::enroll::EnrollmentToken;
use crate::owner_key::KdfParams;
use crate::signed::Signed;

/// The `format` of packages this build writes.
pub const FORMAT: &str = "guardian-install/1";
const SIGNING_CONTEXT: &[u8] = b"guardian/package/1\0";
/// The largest package member accepted.
const MAX_MEMBER: u64 = 256 * 1024;

/// What an edge learns from its package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// Always [`FORMAT`].
    pub format: String,
    /// The tenant.
    pub tenant_id: String,
    /// The tenant's public key (hex), which signs tokens and this package.
    pub tenant_public_key: String,
    /// The edge's name.
    pub edge_name: String,
    /// The edge's peer id (of `edge.key`).
    pub edge_peer_id: String,
    /// The vm's peer id.
    pub vm_peer_id: String,
    /// The vm's addresses, QUIC first (`/dns4/<fqdn>/udp/<port>/quic-v1`, then TCP).
    pub vm_addresses: Vec<String>,
    /// The vm's HTTP API base URL.
    pub vm_http: String,
    /// The owner's archive recipient (`age1...`).
    pub archive_recipient: String,
    /// Its key id.
    pub archive_key_id: String,
    /// The Argon2id parameters of the owner's key, as stored with the tenant.
    pub kdf: KdfParams,
    /// The single-use enrollment token, CBOR signed by the tenant key, hex.
    pub enrollment_token: String,
    /// When the package was made, Unix ms.
    pub created_at_ms: u64,
}

impl PackageInfo {
    /// The decoded enrollment token.
    pub fn token(&self) -> Result<Signed<EnrollmentToken>, PackageError> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(self.enrollment_token.as_bytes())
            .map_err(|_| PackageError::Malformed("enrollment token is not hex".into()))?;
        ciborium::from_reader(bytes.as_slice())
            .map_err(|e| PackageError::Malformed(format!("enrollment token: {e}")))
    }

    /// Encodes a token for [`PackageInfo::enrollment_token`].
    pub fn encode_token(token: &Signed<EnrollmentToken>) -> String {
        let mut bytes = Vec::new();
        ciborium::into_writer(token, &mut bytes).expect("a token encodes");
        data_encoding::HEXLOWER.encode(&bytes)
    }
}

/// A verified package.
#[derive(Debug, Clone)]
pub struct InstallPackage {
    /// What the edge learns.
    pub info: PackageInfo,
    /// The edge's key.
    pub edge_key: SigningKey,
}

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Not a package archive, or a member is missing, extra or too large.
    #[error("not a valid install package: {0}")]
    Malformed(String),
    /// A format this build does not know.
    #[error("install package format {0:?} is not {FORMAT:?}")]
    UnknownFormat(String),
    /// The signature does not verify: the package was altered or assembled from parts.
    #[error("the install package's signature does not verify: it was altered or damaged")]
    BadSignature,
    /// The parts disagree (the key is not the edge's, the token names another tenant...).
    #[error("the install package is inconsistent: {0}")]
    Inconsistent(String),
}

fn signing_message(info_json: &[u8], key_text: &[u8]) -> Vec<u8> {
    let mut m = SIGNING_CONTEXT.to_vec();
    m.extend_from_slice(&Sha256::digest(info_json));
    m.extend_from_slice(&Sha256::digest(key_text));
    m
}

impl InstallPackage {
    /// Writes the package as a tar archive signed by `tenant_key`.
    pub fn to_tar(&self, tenant_key: &SigningKey) -> Vec<u8> {
        let info_json = serde_json::to_vec_pretty(&self.info).expect("serializable");
        let key_text = format!(
            "{}\n",
            data_encoding::HEXLOWER.encode(self.edge_key.as_bytes())
        );
        let sig = tenant_key.sign(&signing_message(&info_json, key_text.as_bytes()));
        let sig_text = format!("{}\n", data_encoding::HEXLOWER.encode(&sig.to_bytes()));
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data, mode) in [
            ("guardian/package.json", info_json.as_slice(), 0o644),
            ("guardian/edge.key", key_text.as_bytes(), 0o600),
            ("guardian/package.sig", sig_text.as_bytes(), 0o644),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_mtime(self.info.created_at_ms / 1000);
            header.set_cksum();
            builder
                .append_data(&mut header, name, data)
                .expect("writing to memory");
        }
        builder.into_inner().expect("writing to memory")
    }

    /// Reads and verifies a package archive.
    pub fn from_tar(reader: impl Read) -> Result<Self, PackageError> {
        let mut archive = tar::Archive::new(reader);
        let (mut info_json, mut key_text, mut sig_text) = (None, None, None);
        let entries = archive
            .entries()
            .map_err(|e| PackageError::Malformed(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| PackageError::Malformed(e.to_string()))?;
            let name = entry
                .path()
                .map_err(|e| PackageError::Malformed(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            if entry.size() > MAX_MEMBER {
                return Err(PackageError::Malformed(format!("{name} is too large")));
            }
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| PackageError::Malformed(e.to_string()))?;
            let slot = match name.as_str() {
                "guardian/package.json" => &mut info_json,
                "guardian/edge.key" => &mut key_text,
                "guardian/package.sig" => &mut sig_text,
                other => {
                    return Err(PackageError::Malformed(format!(
                        "unexpected member {other}"
                    )));
                }
            };
            if slot.replace(data).is_some() {
                return Err(PackageError::Malformed(format!("{name} appears twice")));
            }
        }
        let missing = |n: &str| PackageError::Malformed(format!("{n} is missing"));
        let info_json = info_json.ok_or_else(|| missing("guardian/package.json"))?;
        let key_text = key_text.ok_or_else(|| missing("guardian/edge.key"))?;
        let sig_text = sig_text.ok_or_else(|| missing("guardian/package.sig"))?;

        let info: PackageInfo = serde_json::from_slice(&info_json)
            .map_err(|e| PackageError::Malformed(format!("package.json: {e}")))?;
        if info.format != FORMAT {
            return Err(PackageError::UnknownFormat(info.format));
        }
        let tenant_key = crate::signed::parse_public_key(&info.tenant_public_key)
            .map_err(|e| PackageError::Malformed(e.to_string()))?;
        let sig: [u8; 64] = data_encoding::HEXLOWER_PERMISSIVE
            .decode(String::from_utf8_lossy(&sig_text).trim().as_bytes())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(PackageError::BadSignature)?;
        tenant_key
            .verify(
                &signing_message(&info_json, &key_text),
                &ed25519_dalek::Signature::from_bytes(&sig),
            )
            .map_err(|_| PackageError::BadSignature)?;

        let edge_key: [u8; 32] = data_encoding::HEXLOWER_PERMISSIVE
            .decode(String::from_utf8_lossy(&key_text).trim().as_bytes())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| PackageError::Malformed("edge.key is not 64 hex digits".into()))?;
        let edge_key = SigningKey::from_bytes(&edge_key);
        let package = InstallPackage { info, edge_key };
        package.check_consistency(&tenant_key)?;
        Ok(package)
    }

    fn check_consistency(&self, tenant_key: &VerifyingKey) -> Result<(), PackageError> {
        let peer = crate::signed::peer_id_of(&self.edge_key.verifying_key());
        if peer != self.info.edge_peer_id {
            return Err(PackageError::Inconsistent(
                "edge.key is not the key of edge_peer_id".into(),
            ));
        }
        let token = self.info.token()?.verify(tenant_key).map_err(|_| {
            PackageError::Inconsistent("the token is not signed by the tenant key".into())
        })?;
        if token.tenant_id != self.info.tenant_id || token.edge_peer_id != peer {
            return Err(PackageError::Inconsistent(
                "the token names another tenant or edge".into(),
            ));
        }
        if crate::owner_key::key_id(&self.info.archive_recipient) != self.info.archive_key_id {
            return Err(PackageError::Inconsistent(
                "archive_key_id is not the key id of archive_recipient".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::enroll::EnrollmentToken;

    fn sample() -> (InstallPackage, SigningKey) {
        let tenant = SigningKey::from_bytes(&[1; 32]);
        let edge = SigningKey::from_bytes(&[2; 32]);
        let edge_peer = crate::signed::peer_id_of(&edge.verifying_key());
        let token = Signed::sign(
            &EnrollmentToken {
                tenant_id: "tenant-a".into(),
                token_id: "tok-1".into(),
                edge_peer_id: edge_peer.clone(),
                edge_name: "home".into(),
                issued_at_ms: 1,
                expires_at_ms: 2,
            },
            &tenant,
        );
        let recipient = "age1ydtd594d737rjz4ezm8ckwzrkv7n8qge5xuh4zj8taxdvhl4sssq2upmtd";
        let info = PackageInfo {
            format: FORMAT.into(),
            tenant_id: "tenant-a".into(),
            tenant_public_key: data_encoding::HEXLOWER.encode(tenant.verifying_key().as_bytes()),
            edge_name: "home".into(),
            edge_peer_id: edge_peer,
            vm_peer_id: "12D3KooWvm".into(),
            vm_addresses: vec!["/dns4/vm.example.org/udp/4001/quic-v1".into()],
            vm_http: "http://vm.example.org:8080".into(),
            archive_recipient: recipient.into(),
            archive_key_id: crate::owner_key::key_id(recipient),
            kdf: KdfParams::default(),
            enrollment_token: PackageInfo::encode_token(&token),
            created_at_ms: 1_790_000_000_000,
        };
        (
            InstallPackage {
                info,
                edge_key: edge,
            },
            tenant,
        )
    }

    #[test]
    fn round_trip() {
        let (p, tenant) = sample();
        let tar = p.to_tar(&tenant);
        let back = InstallPackage::from_tar(tar.as_slice()).unwrap();
        assert_eq!(back.info, p.info);
        assert_eq!(back.edge_key.to_bytes(), p.edge_key.to_bytes());
        assert_eq!(back.info.token().unwrap().peek().unwrap().token_id, "tok-1");
    }

    #[test]
    fn altered_packages_are_refused() {
        let (p, tenant) = sample();
        // Signed by another key than the one the package names.
        let other = SigningKey::from_bytes(&[9; 32]);
        assert!(matches!(
            InstallPackage::from_tar(p.to_tar(&other).as_slice()),
            Err(PackageError::BadSignature)
        ));
        // A field changed after signing: rebuild the archive with a different package.json.
        let mut changed = p.clone();
        changed.info.vm_addresses = vec!["/ip4/203.0.113.9/udp/4001/quic-v1".into()];
        let good = p.to_tar(&tenant);
        let evil = changed.to_tar(&tenant);
        let spliced = splice(&evil, &good);
        assert!(matches!(
            InstallPackage::from_tar(spliced.as_slice()),
            Err(PackageError::BadSignature)
        ));
        // Truncated and garbage.
        assert!(InstallPackage::from_tar(&good[..good.len() / 2]).is_err());
        assert!(matches!(
            InstallPackage::from_tar(&b"not a tar"[..]),
            Err(PackageError::Malformed(_))
        ));
    }

    #[test]
    fn inconsistent_parts_are_refused() {
        let (mut p, tenant) = sample();
        p.edge_key = SigningKey::from_bytes(&[3; 32]);
        assert!(matches!(
            InstallPackage::from_tar(p.to_tar(&tenant).as_slice()),
            Err(PackageError::Inconsistent(_))
        ));
        let (mut p, tenant) = sample();
        p.info.archive_key_id = "kwrong".into();
        assert!(matches!(
            InstallPackage::from_tar(p.to_tar(&tenant).as_slice()),
            Err(PackageError::Inconsistent(_))
        ));
    }

    /// `package.json` from `a`, the other members (signature included) from `b`.
    fn splice(a: &[u8], b: &[u8]) -> Vec<u8> {
        let member = |tar: &[u8], want: &str| -> Vec<u8> {
            let mut ar = tar::Archive::new(tar);
            for e in ar.entries().unwrap() {
                let mut e = e.unwrap();
                if e.path().unwrap().to_string_lossy() == want {
                    let mut v = Vec::new();
                    e.read_to_end(&mut v).unwrap();
                    return v;
                }
            }
            panic!("no {want}")
        };
        let mut builder = tar::Builder::new(Vec::new());
        for (name, src) in [
            ("guardian/package.json", a),
            ("guardian/edge.key", b),
            ("guardian/package.sig", b),
        ] {
            let data = member(src, name);
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            builder.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        builder.into_inner().unwrap()
    }
}
