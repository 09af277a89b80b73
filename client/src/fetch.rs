//! `guardian fetch`: an archived object by CID from the vm's API, checked and decrypted on the
//! owner's machine.
//!
//! Steps: the manifest of the object's event (`/api/v1/archive/<cid>/manifest`) must be signed
//! by an edge the vm lists as this tenant's device, and must list the CID; the ciphertext
//! (`/api/v1/archive/<cid>`) is downloaded to a temporary file beside the output while its
//! CID and size are computed; only if both match is it decrypted, and the plaintext renamed
//! into place. The vm is trusted for nothing but availability: a changed byte anywhere is
//! refused with the reason, and no output file is left.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use protocols::manifest::{Manifest, ObjectKind};
use protocols::{CidWriter, ContentId};

use crate::api::{Timeouts, VmApi};
use crate::commands::open_file;

/// What was fetched.
pub struct Fetched {
    /// The event.
    pub event_id: String,
    /// The camera.
    pub camera_id: String,
    /// Which object.
    pub kind: ObjectKind,
    /// The edge that signed the manifest.
    pub edge_id: String,
    /// Ciphertext bytes.
    pub sealed_size: u64,
    /// Plaintext bytes.
    pub plain_size: u64,
    /// Where it went.
    pub output: String,
}

impl fmt::Display for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ok: {} of event {} (camera {}), signed by edge {}: {} bytes sealed, {} bytes written to {}",
            self.kind,
            self.event_id,
            self.camera_id,
            self.edge_id,
            self.sealed_size,
            self.plain_size,
            self.output
        )
    }
}

/// Fetches `cid` from the vm at `vm` into `output`.
pub fn fetch(
    vm: &str,
    token: &str,
    cid: &ContentId,
    identity: &age::x25519::Identity,
    output: &Path,
) -> Result<Fetched> {
    let api = VmApi::new(vm, token, Timeouts::DOWNLOAD);

    // The manifest, signed by one of this tenant's edges.
    let mut manifest_json = Vec::new();
    api.get(&format!("/api/v1/archive/{cid}/manifest"))?
        .into_reader()
        .take(protocols::manifest::MAX_MANIFEST_SIZE as u64 + 1)
        .read_to_end(&mut manifest_json)?;
    let manifest = Manifest::from_json(&manifest_json).context("the vm's manifest")?;
    let devices: serde_json::Value = api
        .get("/api/v1/devices")?
        .into_json()
        .context("the vm's device list")?;
    let known = devices["devices"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d["peer_id"] == manifest.edge_id.as_str()));
    if !known {
        bail!(
            "the manifest names edge {}, which is not one of this tenant's devices",
            manifest.edge_id
        );
    }
    let edge_key = protocols::signed::parse_public_key(&manifest.edge_id)?;
    manifest
        .verify_signature(&edge_key)
        .context("refusing the archived event")?;
    let object = manifest
        .objects
        .iter()
        .find(|o| o.cid == *cid)
        .ok_or_else(|| {
            anyhow!(
                "the signed manifest of event {} does not list {cid}",
                manifest.event_id
            )
        })?
        .clone();

    // The ciphertext, hashed as it arrives.
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let sealed = tempfile::Builder::new()
        .prefix(".guardian-fetch-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let resp = api.get(&format!("/api/v1/archive/{cid}"))?;
    let bar = indicatif::ProgressBar::new(object.size);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("a valid template"),
    );
    let mut writer = CidWriter::new(std::io::BufWriter::new(sealed.as_file()));
    let mut reader = resp.into_reader().take(object.size + 1);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).context("the download broke")?;
        if n == 0 {
            break;
        }
        writer.write_all(&buf[..n])?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    let (mut inner, got, size) = writer.finish();
    inner.flush()?;
    drop(inner);
    if got != *cid || size != object.size {
        bail!(
            "the object the vm sent does not match its CID: expected {cid} ({} bytes), got {got} ({size} bytes); it was altered or damaged in storage, nothing was written",
            object.size
        );
    }
    let plain_size = open_file(sealed.path(), output, identity)?;
    Ok(Fetched {
        event_id: manifest.event_id,
        camera_id: manifest.camera_id,
        kind: object.kind,
        edge_id: manifest.edge_id,
        sealed_size: size,
        plain_size,
        output: output.display().to_string(),
    })
}
