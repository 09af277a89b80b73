//! `guardian-vm init` and `guardian-vm package edge`: the tenant and the edges' install
//! packages. Both work on the data directory alone, with or without a running vm: the running
//! vm picks up new packages from the database within seconds.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail, ensure};
use ed25519_dalek::SigningKey;
use guardian_node::Multiaddr;
use guardian_node::identity::{read_key, write_key};
use libp2p::multiaddr::Protocol;
use protocols::KdfParams;
use protocols::messages::enroll::EnrollmentToken;
use protocols::package::{FORMAT, InstallPackage, PackageInfo};
use protocols::signed::{Signed, peer_id_of};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::{P2pConfig, VmConfig};
use crate::db::{self, Db, PackageRow};
use crate::{now_ms, paths};

/// What `init` made.
pub struct Initialized {
    /// The tenant id.
    pub tenant_id: String,
    /// The vm's peer id.
    pub vm_peer_id: String,
    /// The owner's API token; shown once, stored only as a hash.
    pub owner_token: String,
    /// The addresses edges will dial.
    pub addresses: Vec<Multiaddr>,
}

fn random_base32(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    data_encoding::BASE32_NOPAD.encode(&b).to_lowercase()
}

/// SHA-256 of an owner token, hex: what the database keeps.
pub fn token_hash(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// The addresses edges dial: each listen address with its IP replaced by the FQDN (`/dns4`)
/// or by the FQDN's IP literal, QUIC first.
pub fn external_addresses(fqdn: &str, p2p: &P2pConfig) -> Result<Vec<Multiaddr>> {
    if !p2p.external.is_empty() {
        return p2p
            .external
            .iter()
            .map(|a| Multiaddr::from_str(a).with_context(|| format!("bad external address {a}")))
            .collect();
    }
    let host = if let Ok(ip) = fqdn.parse::<std::net::IpAddr>() {
        match ip {
            std::net::IpAddr::V4(v4) => Protocol::Ip4(v4),
            std::net::IpAddr::V6(v6) => Protocol::Ip6(v6),
        }
    } else {
        Protocol::Dns4(fqdn.to_owned().into())
    };
    let mut out = Vec::new();
    for listen in &p2p.listen {
        let addr =
            Multiaddr::from_str(listen).with_context(|| format!("bad listen address {listen}"))?;
        let mut parts = addr.iter();
        ensure!(
            matches!(parts.next(), Some(Protocol::Ip4(_) | Protocol::Ip6(_))),
            "listen address {listen} must start with /ip4 or /ip6"
        );
        let mut ext = Multiaddr::empty().with(host.clone());
        for p in parts {
            if matches!(p, Protocol::Tcp(0) | Protocol::Udp(0)) {
                bail!("listen address {listen} has port 0: edges need a fixed port to dial");
            }
            ext.push(p);
        }
        out.push(ext);
    }
    // QUIC before TCP: edges try addresses in this order.
    out.sort_by_key(|a| !a.iter().any(|p| p == Protocol::QuicV1));
    Ok(out)
}

/// Creates a tenant in `data` (which must not hold one yet).
pub fn init(
    data: &Path,
    fqdn: &str,
    listen: &[String],
    http_listen: Option<&str>,
) -> Result<Initialized> {
    let config_path = data.join(paths::CONFIG);
    if config_path.exists() {
        bail!(
            "{} already holds a vm (found {})",
            data.display(),
            config_path.display()
        );
    }
    ensure!(!fqdn.trim().is_empty(), "--fqdn is empty");
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))?;
    }
    let tenant_id = format!("t-{}", random_base32(10));
    let mut config = VmConfig::new(&tenant_id, fqdn.trim());
    if !listen.is_empty() {
        config.p2p.listen = listen.to_vec();
    }
    if let Some(h) = http_listen {
        config.http.listen = h.to_owned();
    }
    let addresses = external_addresses(&config.fqdn, &config.p2p)?;

    let tenant_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let node_key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_key(&data.join(paths::TENANT_KEY), &tenant_key)?;
    write_key(&data.join(paths::NODE_KEY), &node_key)?;
    let owner_token = format!("gdn_{}", random_base32(32));
    let db = Db::open(&data.join(paths::DB))?;
    let kdf = serde_json::to_string(&KdfParams::default())?;
    db.with(|c| db::insert_tenant(c, &tenant_id, now_ms(), &kdf, &token_hash(&owner_token)))?;
    // The configuration last: its presence marks a complete init.
    std::fs::write(&config_path, config.to_toml())?;
    Ok(Initialized {
        tenant_id,
        vm_peer_id: peer_id_of(&node_key.verifying_key()),
        owner_token,
        addresses,
    })
}

/// What `package edge` made.
/// How an install package is written.
#[derive(Debug, Clone, Copy)]
pub enum PackageFormat<'a> {
    /// The signed tar (`guardian-edge init --package FILE`).
    Tar,
    /// A cloud-init NoCloud seed ISO holding the tar (and the agent binary, if given).
    Iso {
        /// The `guardian-edge` binary to put on the seed.
        edge_binary: Option<&'a Path>,
    },
}

/// A written package.
pub struct Packaged {
    /// Where the package is.
    pub path: PathBuf,
    /// The edge's peer id.
    pub edge_peer_id: String,
    /// When its token expires, Unix ms.
    pub expires_at_ms: u64,
}

/// The loaded pieces of a vm's data directory.
pub struct DataDir {
    /// `vm.toml`.
    pub config: VmConfig,
    /// The tenant key.
    pub tenant_key: SigningKey,
    /// The node key.
    pub node_key: SigningKey,
    /// The database.
    pub db: Db,
}

impl DataDir {
    /// Opens an initialized data directory.
    pub fn open(data: &Path) -> Result<Self> {
        let config_path = data.join(paths::CONFIG);
        if !config_path.exists() {
            bail!(
                "{} holds no vm: run `guardian-vm init --data {} --fqdn HOST` first",
                data.display(),
                data.display()
            );
        }
        Ok(DataDir {
            config: VmConfig::load(&config_path)?,
            tenant_key: read_key(&data.join(paths::TENANT_KEY))?,
            node_key: read_key(&data.join(paths::NODE_KEY))?,
            db: Db::open(&data.join(paths::DB))?,
        })
    }
}

/// Makes an edge's install package, records its token, and writes it to `out` (mode 0600:
/// it holds the edge's private key).
pub fn package_edge(
    data: &Path,
    name: &str,
    recipient: &str,
    out: &Path,
    valid_secs: Option<u64>,
    format: PackageFormat<'_>,
) -> Result<Packaged> {
    let dir = DataDir::open(data)?;
    let name = name.trim();
    ensure!(
        !name.is_empty() && name.len() <= 64,
        "--name must be 1 to 64 characters"
    );
    protocols::seal::parse_recipients(&[recipient]).context("--recipient")?;
    let kdf: KdfParams = dir.db.with(|c| {
        let json: String = c.query_row("SELECT kdf_json FROM tenant", [], |r| r.get(0))?;
        serde_json::from_str(&json).map_err(|e| db::DbError::Corrupt(e.to_string()))
    })?;

    let edge_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let edge_peer_id = peer_id_of(&edge_key.verifying_key());
    let now = now_ms();
    let valid_secs = valid_secs.unwrap_or(dir.config.enrollment.token_valid_hours * 3600);
    let expires = now + valid_secs * 1000;
    let mut token_id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut token_id);
    let token_id = data_encoding::HEXLOWER.encode(&token_id);
    let token = Signed::sign(
        &EnrollmentToken {
            tenant_id: dir.config.tenant_id.clone(),
            token_id: token_id.clone(),
            edge_peer_id: edge_peer_id.clone(),
            edge_name: name.to_owned(),
            issued_at_ms: now,
            expires_at_ms: expires,
        },
        &dir.tenant_key,
    );
    let addresses = external_addresses(&dir.config.fqdn, &dir.config.p2p)?;
    let recipient = recipient.trim().to_owned();
    let package = InstallPackage {
        info: PackageInfo {
            format: FORMAT.into(),
            tenant_id: dir.config.tenant_id.clone(),
            tenant_public_key: data_encoding::HEXLOWER
                .encode(dir.tenant_key.verifying_key().as_bytes()),
            edge_name: name.to_owned(),
            edge_peer_id: edge_peer_id.clone(),
            vm_peer_id: peer_id_of(&dir.node_key.verifying_key()),
            vm_addresses: addresses.iter().map(|a| a.to_string()).collect(),
            vm_http: dir.config.public_url(),
            archive_key_id: protocols::owner_key::key_id(&recipient),
            archive_recipient: recipient.clone(),
            kdf,
            enrollment_token: PackageInfo::encode_token(&token),
            created_at_ms: now,
        },
        edge_key,
    };
    let tar = package.to_tar(&dir.tenant_key);
    dir.db.with(|c| {
        db::insert_package(
            c,
            &PackageRow {
                token_id,
                edge_peer_id: edge_peer_id.clone(),
                edge_name: name.to_owned(),
                recipient,
                issued_at_ms: now,
                expires_at_ms: expires,
                used_at_ms: None,
            },
        )
    })?;
    match format {
        PackageFormat::Tar => write_private(out, &tar)?,
        PackageFormat::Iso { edge_binary } => {
            crate::iso::write_iso(&package.info, &tar, edge_binary, out)?;
            std::fs::set_permissions(out, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
    }
    Ok(Packaged {
        path: out.to_path_buf(),
        edge_peer_id,
        expires_at_ms: expires,
    })
}

/// Writes a file readable only by its owner, atomically.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_addresses_follow_fqdn_and_put_quic_first() {
        let p2p = P2pConfig {
            listen: vec![
                "/ip4/0.0.0.0/tcp/4001".into(),
                "/ip4/0.0.0.0/udp/4001/quic-v1".into(),
            ],
            external: vec![],
        };
        let a = external_addresses("vm.example.org", &p2p).unwrap();
        assert_eq!(
            a.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            [
                "/dns4/vm.example.org/udp/4001/quic-v1",
                "/dns4/vm.example.org/tcp/4001"
            ]
        );
        let a = external_addresses("203.0.113.7", &p2p).unwrap();
        assert_eq!(a[0].to_string(), "/ip4/203.0.113.7/udp/4001/quic-v1");
        let zero = P2pConfig {
            listen: vec!["/ip4/0.0.0.0/tcp/0".into()],
            external: vec![],
        };
        assert!(external_addresses("x", &zero).is_err());
    }
}
