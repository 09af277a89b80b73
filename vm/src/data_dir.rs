//! A vm's data directory (`vm.toml`, the tenant and node keys, the database) and what is
//! derived from it alone: the owner token's stored hash and the addresses edges dial.
//! Used by the CLI commands (`init`, `package edge`) and by `run`.

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail, ensure};
use ed25519_dalek::SigningKey;
use guardian_node::Multiaddr;
use guardian_node::identity::read_key;
use guardian_overlay::keys::SecretKey;
use libp2p::multiaddr::Protocol;
use sha2::{Digest, Sha256};

use crate::config::{P2pConfig, VmConfig};
use crate::db::Db;
use crate::paths;

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

/// The vm's WireGuard private key (`wg.key`: its base64 and a newline, mode 0600), made now
/// when there is none. It never leaves the vm and is never logged. A new key is written to a
/// temporary file and linked into place, so two processes making it at once (the CLI beside
/// a starting vm) end up with the same key.
pub fn wg_key(data: &Path) -> Result<SecretKey> {
    let path = data.join(paths::WG_KEY);
    let read = |path: &Path| -> Result<Option<SecretKey>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = zeroize::Zeroizing::new(text);
                SecretKey::from_base64(text.trim()).map(Some).map_err(|_| {
                    anyhow!(
                        "{} does not hold a WireGuard key (base64 of 32 bytes)",
                        path.display()
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    };
    if let Some(key) = read(&path)? {
        return Ok(key);
    }
    let key = SecretKey::generate();
    let tmp = data.join(format!("{}.{}.tmp", paths::WG_KEY, std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut text = zeroize::Zeroizing::new(key.to_base64());
        text.push('\n');
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        // Another process made it first: its key is the vm's.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(&path)?.ok_or_else(|| anyhow!("{} vanished while it was made", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
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
        // What an older version (or a copy by hand) left readable by others is closed first.
        guardian_node::files::tighten_data_dir(data)
            .with_context(|| format!("cannot restrict the modes of {}", data.display()))?;
        Ok(DataDir {
            config: VmConfig::load(&config_path)?,
            tenant_key: read_key(&data.join(paths::TENANT_KEY))?,
            node_key: read_key(&data.join(paths::NODE_KEY))?,
            db: Db::open(&data.join(paths::DB))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wireguard_key_is_made_once_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = wg_key(dir.path()).unwrap();
        let path = dir.path().join(paths::WG_KEY);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", first.to_base64()));
        let again = wg_key(dir.path()).unwrap();
        assert_eq!(again.public(), first.public());
        // Nothing else is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, "not a key\n").unwrap();
        let e = wg_key(dir.path()).unwrap_err().to_string();
        assert!(e.contains("does not hold a WireGuard key"), "{e}");
        assert!(!e.contains("not a key"), "{e}");
    }

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
