//! What each `guardian` subcommand does, as functions over paths so tests can call them.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use protocols::manifest::{Manifest, ObjectKind};
use protocols::seal::{self, SealSummary};
use protocols::{ContentId, KdfParams, OwnerKey};

use crate::Secret;
use crate::output::AtomicFile;

/// Derives the owner's key.
pub fn derive_key(secret: &Secret, tenant: &str, params: &KdfParams) -> Result<OwnerKey> {
    Ok(OwnerKey::derive(secret.expose(), tenant, params)?)
}

/// Derives the owner's signing key (for key-slot lists) from the secret.
pub fn derive_signing_key(
    secret: &Secret,
    tenant: &str,
    params: &KdfParams,
) -> Result<protocols::OwnerSigningKey> {
    Ok(protocols::OwnerSigningKey::derive(
        secret.expose(),
        tenant,
        params,
    )?)
}

fn open_input(path: &Path) -> Result<BufReader<File>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(BufReader::with_capacity(256 * 1024, f))
}

/// Seals `input` to `recipients` into `output`.
pub fn seal_file(input: &Path, output: &Path, recipients: &[String]) -> Result<SealSummary> {
    let recipients = seal::parse_recipients(recipients)?;
    let reader = open_input(input)?;
    let mut out = AtomicFile::create(output)?;
    let summary = {
        let mut w = out.writer();
        let s = seal::seal(reader, &mut w, &recipients)
            .with_context(|| format!("cannot seal {}", input.display()))?;
        w.flush()?;
        s
    };
    out.commit()?;
    Ok(summary)
}

/// Opens the sealed `input` into `output` with `identity`; nothing is left at `output` unless
/// the whole object decrypted and authenticated.
pub fn open_file(input: &Path, output: &Path, identity: &age::x25519::Identity) -> Result<u64> {
    let reader = open_input(input)?;
    let mut out = AtomicFile::create(output)?;
    let n = {
        let mut w = out.writer();
        let n = seal::open(reader, &mut w, identity)
            .with_context(|| format!("cannot open {}", input.display()))?;
        w.flush()?;
        n
    };
    out.commit()?;
    Ok(n)
}

/// The CID of a file.
pub fn cid_of_file(path: &Path) -> Result<ContentId> {
    let (cid, _) = ContentId::of_reader(open_input(path)?)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(cid)
}

/// What a successful verification checked.
pub struct VerifyReport {
    manifest: Manifest,
    checked: Vec<ObjectKind>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        write!(
            f,
            "ok: manifest of event {} (tenant {}, camera {}) is signed by edge {}",
            m.event_id, m.tenant_id, m.camera_id, m.edge_id
        )?;
        for o in &m.objects {
            let state = if self.checked.contains(&o.kind) {
                "verified"
            } else {
                "not given"
            };
            write!(f, "\n  {} {} {} bytes: {}", o.kind, o.cid, o.size, state)?;
        }
        Ok(())
    }
}

/// Verifies a manifest file against an edge key, and each object given as a path named
/// `clip*`/`snapshot*` or as `clip=PATH` / `snapshot=PATH`.
pub fn verify_manifest(
    manifest: &Path,
    edge_key: &str,
    objects: &[String],
) -> Result<VerifyReport> {
    let key_text = if Path::new(edge_key).is_file() {
        std::fs::read_to_string(edge_key)
            .with_context(|| format!("cannot read the edge key file {edge_key}"))?
    } else {
        edge_key.to_owned()
    };
    let key = protocols::signed::parse_public_key(&key_text)?;
    let json =
        std::fs::read(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let m = Manifest::from_json(&json)?;
    m.verify_signature(&key)?;
    let mut checked = Vec::new();
    for spec in objects {
        let (kind, path) = object_spec(spec)?;
        if checked.contains(&kind) {
            bail!("the {kind} object is given twice");
        }
        m.verify_object(kind, open_input(&path)?)?;
        checked.push(kind);
    }
    Ok(VerifyReport {
        manifest: m,
        checked,
    })
}

fn object_spec(spec: &str) -> Result<(ObjectKind, PathBuf)> {
    for kind in ObjectKind::ALL {
        if let Some(path) = spec.strip_prefix(&format!("{kind}=")) {
            return Ok((kind, PathBuf::from(path)));
        }
    }
    let path = PathBuf::from(spec);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let kind = if name.starts_with("clip") {
        ObjectKind::Clip
    } else if name.starts_with("snapshot") {
        ObjectKind::Snapshot
    } else if name.starts_with("thumbnail") {
        ObjectKind::Thumbnail
    } else {
        return Err(anyhow!(
            "cannot tell which object {spec} is: name it clip*/snapshot*/thumbnail* or write clip={spec}"
        ));
    };
    Ok((kind, path))
}

/// Reads an age identity file: the first `AGE-SECRET-KEY-1...` line (comments and blank lines
/// are skipped, as `age -i` does).
pub fn read_identity_file(path: &Path) -> Result<age::x25519::Identity> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.parse::<age::x25519::Identity>().ok())
        .ok_or_else(|| anyhow!("{} holds no age X25519 identity", path.display()))
}
