//! `guardian-vm init` and `guardian-vm package edge`: the tenant and the edges' install
//! packages. Both work on the data directory alone, with or without a running vm: the running
//! vm picks up new packages from the database within seconds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use ed25519_dalek::SigningKey;
use guardian_node::identity::write_key;
use guardian_node::{Clock, Multiaddr, SystemClock};
use protocols::KdfParams;
use protocols::messages::enroll::EnrollmentToken;
use protocols::package::{FORMAT, InstallPackage, PackageInfo};
use protocols::signed::{Signed, peer_id_of};
use rand::RngCore;

use crate::config::VmConfig;
use crate::db::{self, Db, PackageRow};
use crate::paths;

pub use crate::data_dir::{DataDir, external_addresses, token_hash};

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

/// Creates a tenant in `data` (which must not hold one yet).
pub fn init(
    data: &Path,
    fqdn: &str,
    listen: &[String],
    http_listen: Option<&str>,
) -> Result<Initialized> {
    init_with(data, fqdn, listen, http_listen, Default::default())
}

/// [`init`] with the WireGuard overlay's settings (`[wg]`; checked before anything is
/// written).
pub fn init_with(
    data: &Path,
    fqdn: &str,
    listen: &[String],
    http_listen: Option<&str>,
    wg: crate::config::WgConfig,
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
    config.wg = wg;
    config.overlay_settings()?;
    let addresses = external_addresses(&config.fqdn, &config.p2p)?;

    let tenant_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let node_key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_key(&data.join(paths::TENANT_KEY), &tenant_key)?;
    write_key(&data.join(paths::NODE_KEY), &node_key)?;
    let owner_token = format!("gdn_{}", random_base32(32));
    let db = Db::open(&data.join(paths::DB))?;
    let kdf = serde_json::to_string(&KdfParams::default())?;
    db.with(|c| {
        db::insert_tenant(
            c,
            &tenant_id,
            SystemClock.wall_ms(),
            &kdf,
            &token_hash(&owner_token),
        )
    })?;
    // The configuration last: its presence marks a complete init.
    std::fs::write(&config_path, config.to_toml())?;
    Ok(Initialized {
        tenant_id,
        vm_peer_id: peer_id_of(&node_key.verifying_key()),
        owner_token,
        addresses,
    })
}

/// How an install package is written.
#[derive(Debug, Clone, Copy)]
pub enum PackageFormat<'a> {
    /// The signed tar (`guardian-edge init --package FILE`).
    Tar,
    /// A cloud-init NoCloud seed ISO holding the tar (and the agent binary and the detector
    /// bundle, if given).
    Iso {
        /// The `guardian-edge` binary to put on the seed.
        edge_binary: Option<&'a Path>,
        /// The detector bundle to put on the seed (`scripts/detector-bundle.sh`).
        detector: Option<&'a Path>,
    },
}

/// The owner's public keys a package names.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The archive recipient (`age1...`).
    pub recipient: &'a str,
    /// The signing key (hex or peer id), if given; the tenant's, once set, is used when not.
    pub signing_key: Option<&'a str>,
}

/// A written package.
pub struct Packaged {
    /// Where the package is.
    pub path: PathBuf,
    /// The peer id of the token's enrollment identity (what the gate admits until the edge
    /// enrolls under the key it makes itself).
    pub enrollment_peer_id: String,
    /// When its token expires, Unix ms.
    pub expires_at_ms: u64,
}

/// Makes an edge's install package, records its token, and writes it to `out` (mode 0600:
/// its token's secret lets whoever holds it enroll an edge once). The edge makes its own keys
/// at `guardian-edge init`: the package holds none.
pub fn package_edge(
    data: &Path,
    name: &str,
    owner: Owner<'_>,
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
    let recipient = owner.recipient;
    protocols::seal::parse_recipients(&[recipient]).context("--recipient")?;
    let signing_key = owner
        .signing_key
        .map(|k| {
            protocols::signed::parse_public_key(k)
                .map(|k| data_encoding::HEXLOWER.encode(k.as_bytes()))
                .context("--owner-signing-key")
        })
        .transpose()?;
    let (signing_key, min_version) = dir.db.with(|c| {
        let known = db::owner_signing_key(c)?;
        let latest = db::latest_key_slots(c)?.map_or(0, |l| l.version);
        Ok((known, signing_key, latest))
    })
    .map_err(anyhow::Error::from)
    .and_then(|(known, given, latest)| match (known, given) {
        (Some(k), Some(g)) if k != g => anyhow::bail!(
            "--owner-signing-key {g} is not the tenant's owner signing key {k} (fingerprint {}): \
             the owner's key is fixed by the first package that names it",
            protocols::signed::parse_public_key(&k)
                .map(|v| protocols::signed::fingerprint(v.as_bytes()))
                .unwrap_or_default()
        ),
        (Some(k), _) => Ok((Some(k), latest)),
        (None, Some(g)) => {
            dir.db.with(|c| db::set_owner_signing_key(c, &g))?;
            Ok((Some(g), latest))
        }
        (None, None) => Ok((None, latest)),
    })?;
    let kdf: KdfParams = dir.db.with(|c| {
        let json = db::tenant_kdf_json(c)?;
        serde_json::from_str(&json).map_err(|e| db::DbError::Corrupt(e.to_string()))
    })?;

    let now = SystemClock.wall_ms();
    let valid_secs = valid_secs.unwrap_or(dir.config.enrollment.token_valid_hours * 3600);
    let expires = now + valid_secs * 1000;
    let mut token_id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut token_id);
    let token_id = data_encoding::HEXLOWER.encode(&token_id);
    let mut enroll_secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut enroll_secret);
    let payload = EnrollmentToken {
        tenant_id: dir.config.tenant_id.clone(),
        token_id: token_id.clone(),
        enroll_secret,
        edge_name: name.to_owned(),
        issued_at_ms: now,
        expires_at_ms: expires,
    };
    let enrollment_peer_id = payload.enrollment_peer_id();
    let token = Signed::sign(&payload, &dir.tenant_key);
    let addresses = external_addresses(&dir.config.fqdn, &dir.config.p2p)?;
    let recipient = recipient.trim().to_owned();
    let package = InstallPackage {
        info: PackageInfo {
            format: FORMAT.into(),
            tenant_id: dir.config.tenant_id.clone(),
            tenant_public_key: data_encoding::HEXLOWER
                .encode(dir.tenant_key.verifying_key().as_bytes()),
            edge_name: name.to_owned(),
            vm_peer_id: peer_id_of(&dir.node_key.verifying_key()),
            vm_addresses: addresses.iter().map(|a| a.to_string()).collect(),
            vm_http: dir.config.public_url(),
            archive_key_id: protocols::owner_key::key_id(&recipient),
            archive_recipient: recipient.clone(),
            kdf,
            owner_signing_key: signing_key,
            key_slots_min_version: min_version,
            enrollment_token: PackageInfo::encode_token(&token),
            created_at_ms: now,
        },
    };
    let tar = package.to_tar(&dir.tenant_key);
    dir.db.with(|c| {
        db::insert_package(
            c,
            &PackageRow {
                token_id,
                enroll_peer_id: enrollment_peer_id.clone(),
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
        PackageFormat::Iso {
            edge_binary,
            detector,
        } => {
            crate::iso::write_iso(&package.info, &tar, edge_binary, detector, out)?;
            std::fs::set_permissions(out, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
    }
    Ok(Packaged {
        path: out.to_path_buf(),
        enrollment_peer_id,
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
