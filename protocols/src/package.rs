//! The edge's install package: everything an edge needs to find and join its vm, made by the
//! vm at provisioning and signed by the tenant key. It holds no key of the edge: the edge
//! makes its own at `guardian-edge init` (see [`crate::messages::enroll`]).
//!
//! # Format (`guardian-install/2`)
//!
//! A tar archive (ustar) with exactly these members:
//!
//! - `guardian/package.json`: [`PackageInfo`] as JSON: the tenant, the vm's identity and
//!   addresses, the owner's public keys (archive recipient, signing key and the lowest
//!   key-slot list version to accept), and the single-use enrollment token (whose secret
//!   lets the edge connect as its enrollment identity until it has enrolled).
//! - `guardian/package.sig`: 128 hex digits, the tenant key's ed25519 signature over
//!   `"guardian/package/2" ‖ 0x00 ‖ SHA-256(package.json)`.
//!
//! Any other member (such as the `guardian/edge.key` of format 1) is refused.
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
pub const FORMAT: &str = "guardian-install/2";
const SIGNING_CONTEXT: &[u8] = b"guardian/package/2\0";
/// The largest package member accepted.
const MAX_MEMBER: u64 = 256 * 1024;
const INFO_MEMBER: &str = "guardian/package.json";
const SIG_MEMBER: &str = "guardian/package.sig";

/// What an edge learns from its package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageInfo {
    /// Always [`FORMAT`].
    pub format: String,
    /// The tenant.
    pub tenant_id: String,
    /// The tenant's public key (hex), which signs tokens and this package.
    pub tenant_public_key: String,
    /// The edge's name.
    pub edge_name: String,
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
    /// The owner's signing key (64 hex digits): the only key whose key-slot lists the edge
    /// applies ([`crate::key_slots`]). Without it the edge seals to the owner's recipient
    /// alone and refuses every list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_signing_key: Option<String>,
    /// The lowest key-slot list version the edge may apply (the vm's latest when the package
    /// was made), so an old list cannot be replayed to a new edge.
    #[serde(default)]
    pub key_slots_min_version: u64,
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

    /// The enrollment identity of the package's token (its signature is not checked here:
    /// [`InstallPackage::from_tar`] did, and the vm does).
    pub fn enrollment_key(&self) -> Result<SigningKey, PackageError> {
        let token = self
            .token()?
            .peek()
            .map_err(|e| PackageError::Malformed(format!("enrollment token: {e}")))?;
        Ok(token.enrollment_key())
    }
}

/// A verified package.
#[derive(Debug, Clone)]
pub struct InstallPackage {
    /// What the edge learns.
    pub info: PackageInfo,
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
    /// The parts disagree (the token names another tenant, the key id is not the
    /// recipient's...).
    #[error("the install package is inconsistent: {0}")]
    Inconsistent(String),
}

fn signing_message(info_json: &[u8]) -> Vec<u8> {
    let mut m = SIGNING_CONTEXT.to_vec();
    m.extend_from_slice(&Sha256::digest(info_json));
    m
}

impl InstallPackage {
    /// Writes the package as a tar archive signed by `tenant_key`.
    pub fn to_tar(&self, tenant_key: &SigningKey) -> Vec<u8> {
        let info_json = serde_json::to_vec_pretty(&self.info).expect("serializable");
        let sig = tenant_key.sign(&signing_message(&info_json));
        let sig_text = format!("{}\n", data_encoding::HEXLOWER.encode(&sig.to_bytes()));
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in [
            (INFO_MEMBER, info_json.as_slice()),
            (SIG_MEMBER, sig_text.as_bytes()),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            // The token's secret is in package.json: the owner's eyes only.
            header.set_mode(0o600);
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
        let (mut info_json, mut sig_text) = (None, None);
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
            let slot = match name.as_str() {
                INFO_MEMBER => &mut info_json,
                SIG_MEMBER => &mut sig_text,
                other => {
                    return Err(PackageError::Malformed(format!(
                        "unexpected member {other}"
                    )));
                }
            };
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| PackageError::Malformed(e.to_string()))?;
            if slot.replace(data).is_some() {
                return Err(PackageError::Malformed(format!("{name} appears twice")));
            }
        }
        let missing = |n: &str| PackageError::Malformed(format!("{n} is missing"));
        let info_json = info_json.ok_or_else(|| missing(INFO_MEMBER))?;
        let sig_text = sig_text.ok_or_else(|| missing(SIG_MEMBER))?;

        // The format first, so a package of another format says so rather than failing to
        // parse.
        let format = serde_json::from_slice::<serde_json::Value>(&info_json)
            .map_err(|e| PackageError::Malformed(format!("package.json: {e}")))?
            .get("format")
            .and_then(|f| f.as_str().map(str::to_owned))
            .unwrap_or_default();
        if format != FORMAT {
            return Err(PackageError::UnknownFormat(format));
        }
        let info: PackageInfo = serde_json::from_slice(&info_json)
            .map_err(|e| PackageError::Malformed(format!("package.json: {e}")))?;
        let tenant_key = crate::signed::parse_public_key(&info.tenant_public_key)
            .map_err(|e| PackageError::Malformed(e.to_string()))?;
        let sig: [u8; 64] = data_encoding::HEXLOWER_PERMISSIVE
            .decode(String::from_utf8_lossy(&sig_text).trim().as_bytes())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(PackageError::BadSignature)?;
        tenant_key
            .verify(
                &signing_message(&info_json),
                &ed25519_dalek::Signature::from_bytes(&sig),
            )
            .map_err(|_| PackageError::BadSignature)?;
        let package = InstallPackage { info };
        package.check_consistency(&tenant_key)?;
        Ok(package)
    }

    fn check_consistency(&self, tenant_key: &VerifyingKey) -> Result<(), PackageError> {
        let token = self.info.token()?.verify(tenant_key).map_err(|_| {
            PackageError::Inconsistent("the token is not signed by the tenant key".into())
        })?;
        if token.tenant_id != self.info.tenant_id || token.edge_name != self.info.edge_name {
            return Err(PackageError::Inconsistent(
                "the token names another tenant or edge".into(),
            ));
        }
        if crate::owner_key::key_id(&self.info.archive_recipient) != self.info.archive_key_id {
            return Err(PackageError::Inconsistent(
                "archive_key_id is not the key id of archive_recipient".into(),
            ));
        }
        self.info.owner_signing_key()?;
        Ok(())
    }
}

impl PackageInfo {
    /// The owner's signing key the package names, if any.
    pub fn owner_signing_key(&self) -> Result<Option<VerifyingKey>, PackageError> {
        self.owner_signing_key
            .as_deref()
            .map(|k| {
                crate::signed::parse_public_key(k).map_err(|_| {
                    PackageError::Inconsistent(format!(
                        "owner_signing_key {k:?} is not an ed25519 public key"
                    ))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::enroll::EnrollmentToken;

    fn sample() -> (InstallPackage, SigningKey) {
        let tenant = SigningKey::from_bytes(&[1; 32]);
        let token = Signed::sign(
            &EnrollmentToken {
                tenant_id: "tenant-a".into(),
                token_id: "tok-1".into(),
                enroll_secret: [5; 32],
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
            vm_peer_id: "12D3KooWvm".into(),
            vm_addresses: vec!["/dns4/vm.example.org/udp/4001/quic-v1".into()],
            vm_http: "http://vm.example.org:8080".into(),
            archive_recipient: recipient.into(),
            archive_key_id: crate::owner_key::key_id(recipient),
            kdf: KdfParams::default(),
            owner_signing_key: Some(
                data_encoding::HEXLOWER
                    .encode(SigningKey::from_bytes(&[3; 32]).verifying_key().as_bytes()),
            ),
            key_slots_min_version: 2,
            enrollment_token: PackageInfo::encode_token(&token),
            created_at_ms: 1_790_000_000_000,
        };
        (InstallPackage { info }, tenant)
    }

    /// Every member of a tar: (name, bytes).
    fn members(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut ar = tar::Archive::new(tar);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                (name, v)
            })
            .collect()
    }

    fn build(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            builder.append_data(&mut h, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn round_trip() {
        let (p, tenant) = sample();
        let tar = p.to_tar(&tenant);
        let back = InstallPackage::from_tar(tar.as_slice()).unwrap();
        assert_eq!(back.info, p.info);
        let token = back.info.token().unwrap().peek().unwrap();
        assert_eq!(token.token_id, "tok-1");
        assert_eq!(
            back.info.enrollment_key().unwrap().as_bytes(),
            crate::messages::enroll::enrollment_key(&[5; 32]).as_bytes()
        );
        // Two members, neither an edge key.
        let names: Vec<String> = members(&tar).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [INFO_MEMBER, SIG_MEMBER]);
        let json: serde_json::Value = serde_json::from_slice(&members(&tar)[0].1).unwrap();
        assert!(json.get("edge_peer_id").is_none(), "{json}");
    }

    #[test]
    fn a_member_named_edge_key_is_refused_as_extra() {
        let (p, tenant) = sample();
        let tar = p.to_tar(&tenant);
        let m = members(&tar);
        let key = b"0202020202020202020202020202020202020202020202020202020202020202\n";
        let with_key = build(&[
            (INFO_MEMBER, &m[0].1),
            ("guardian/edge.key", key),
            (SIG_MEMBER, &m[1].1),
        ]);
        match InstallPackage::from_tar(with_key.as_slice()) {
            Err(PackageError::Malformed(why)) => {
                assert!(why.contains("unexpected member guardian/edge.key"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_format_1_package_is_refused_by_its_format() {
        let (mut p, tenant) = sample();
        p.info.format = "guardian-install/1".into();
        assert!(matches!(
            InstallPackage::from_tar(p.to_tar(&tenant).as_slice()),
            Err(PackageError::UnknownFormat(f)) if f == "guardian-install/1"
        ));
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
        // A field changed after signing: package.json of one package, the signature of the
        // other.
        let mut changed = p.clone();
        changed.info.vm_addresses = vec!["/ip4/203.0.113.9/udp/4001/quic-v1".into()];
        let good = members(&p.to_tar(&tenant));
        let evil = members(&changed.to_tar(&tenant));
        let spliced = build(&[(INFO_MEMBER, &evil[0].1), (SIG_MEMBER, &good[1].1)]);
        assert!(matches!(
            InstallPackage::from_tar(spliced.as_slice()),
            Err(PackageError::BadSignature)
        ));
        // Missing, doubled, truncated and garbage.
        let no_sig = build(&[(INFO_MEMBER, &good[0].1)]);
        assert!(matches!(
            InstallPackage::from_tar(no_sig.as_slice()),
            Err(PackageError::Malformed(_))
        ));
        let twice = build(&[
            (INFO_MEMBER, &good[0].1),
            (INFO_MEMBER, &good[0].1),
            (SIG_MEMBER, &good[1].1),
        ]);
        assert!(matches!(
            InstallPackage::from_tar(twice.as_slice()),
            Err(PackageError::Malformed(_))
        ));
        let tar = p.to_tar(&tenant);
        assert!(InstallPackage::from_tar(&tar[..tar.len() / 2]).is_err());
        assert!(matches!(
            InstallPackage::from_tar(&b"not a tar"[..]),
            Err(PackageError::Malformed(_))
        ));
    }

    #[test]
    fn inconsistent_parts_are_refused() {
        let (mut p, tenant) = sample();
        p.info.archive_key_id = "kwrong".into();
        assert!(matches!(
            InstallPackage::from_tar(p.to_tar(&tenant).as_slice()),
            Err(PackageError::Inconsistent(_))
        ));
        let (mut p, tenant) = sample();
        p.info.tenant_id = "tenant-b".into();
        assert!(matches!(
            InstallPackage::from_tar(p.to_tar(&tenant).as_slice()),
            Err(PackageError::Inconsistent(_))
        ));
        let (mut p, tenant) = sample();
        p.info.owner_signing_key = Some("not a key".into());
        assert!(matches!(
            InstallPackage::from_tar(p.to_tar(&tenant).as_slice()),
            Err(PackageError::Inconsistent(_))
        ));
        // A token signed by another key than the package's.
        let (mut p, tenant) = sample();
        let mut token = p.info.token().unwrap().peek().unwrap();
        token.token_id = "tok-2".into();
        p.info.enrollment_token =
            PackageInfo::encode_token(&Signed::sign(&token, &SigningKey::from_bytes(&[8; 32])));
        assert!(matches!(
            InstallPackage::from_tar(p.to_tar(&tenant).as_slice()),
            Err(PackageError::Inconsistent(_))
        ));
    }
}
