//! The install package as a cloud-init NoCloud seed ISO (volume label `cidata`): on the edge's
//! first boot cloud-init copies the agent and the signed package from the seed, runs
//! `guardian-edge init` (which checks the tenant's signature) and enables the systemd unit.
//!
//! ```text
//! cidata/
//!   meta-data            instance id and host name
//!   user-data            #cloud-config: the unit file, and the commands above
//!   edge-package.tar     the signed package (vm peer id and addresses, tenant, single-use
//!                        token, owner's recipient; no edge key: the edge makes its own)
//!   guardian-edge        the agent binary, when given
//!   detector/            the detector bundle, when given (`scripts/detector-bundle.sh`):
//!                        models/ and openvino/, copied to /usr/lib/private-ai-guardian,
//!                        where the edge finds them with nothing configured
//! ```
//!
//! The image is made with xorriso (Debian) from a private temporary folder.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use protocols::package::PackageInfo;

/// The edge's systemd unit, installed by the seed.
pub const EDGE_UNIT: &str = include_str!("../../packaging/systemd/guardian-edge.service");

/// Where the seed's detector bundle is installed (the edge's `detect::locate::SYSTEM_DIR`).
pub const DETECTOR_DIR: &str = "/usr/lib/private-ai-guardian";

/// The `user-data` for a package.
pub fn user_data(info: &PackageInfo, with_binary: bool, with_detector: bool) -> String {
    let install_binary = if with_binary {
        "install -m 0755 /mnt/cidata/guardian-edge /usr/local/bin/guardian-edge"
    } else {
        "command -v guardian-edge >/dev/null || { echo 'guardian-edge is not installed and the seed holds no binary' >&2; exit 1; }"
    };
    let install_detector = if with_detector {
        format!(" && mkdir -p {DETECTOR_DIR} && cp -R /mnt/cidata/detector/. {DETECTOR_DIR}/")
    } else {
        String::new()
    };
    let unit: String = EDGE_UNIT.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "#cloud-config\n\
         # Private AI Guardian edge \"{name}\" for tenant {tenant}.\n\
         # vm: {http} (peer {vm}); clips are sealed to the owner's recipient {recipient}.\n\
         # The signed install package (its single-use token; the edge makes its own keys) is edge-package.tar on this seed.\n\
         write_files:\n\
         \x20 - path: /etc/systemd/system/guardian-edge.service\n\
         \x20   permissions: '0644'\n\
         \x20   content: |\n{unit}\
         \x20 - path: /etc/guardian/edge.env\n\
         \x20   permissions: '0644'\n\
         \x20   content: |\n\
         \x20     GUARDIAN_VM={http}\n\
         \x20     GUARDIAN_TENANT={tenant}\n\
         runcmd:\n\
         \x20 - [sh, -ec, 'mkdir -p /mnt/cidata /var/lib/guardian && (mount -o ro -L cidata /mnt/cidata || mount -o ro -L CIDATA /mnt/cidata) && {install_binary}{install_detector} && install -m 0600 /mnt/cidata/edge-package.tar /var/lib/guardian/edge-package.tar && umount /mnt/cidata']\n\
         \x20 - [sh, -ec, 'test -d /var/lib/guardian/edge || guardian-edge init --discovery --package /var/lib/guardian/edge-package.tar --data /var/lib/guardian/edge']\n\
         \x20 - [systemctl, daemon-reload]\n\
         \x20 - [systemctl, enable, --now, guardian-edge.service]\n",
        name = info.edge_name,
        tenant = info.tenant_id,
        http = info.vm_http,
        vm = info.vm_peer_id,
        recipient = info.archive_recipient,
    )
}

/// Writes the seed ISO to `out` from the signed package bytes, with the agent binary and the
/// detector bundle (a folder with `models/` and `openvino/`) if given.
pub fn write_iso(
    info: &PackageInfo,
    package_tar: &[u8],
    edge_binary: Option<&Path>,
    detector: Option<&Path>,
    out: &Path,
) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
    let root = dir.path();
    // The token's id: unique per package (and not secret; the token's secret is another field).
    let short: String = info
        .token()
        .ok()
        .and_then(|t| t.peek().ok())
        .map(|t| t.token_id.chars().take(12).collect())
        .unwrap_or_else(|| info.created_at_ms.to_string());
    std::fs::write(
        root.join("meta-data"),
        format!(
            "instance-id: guardian-edge-{short}\nlocal-hostname: {}\n",
            hostname(&info.edge_name)
        ),
    )?;
    std::fs::write(
        root.join("user-data"),
        user_data(info, edge_binary.is_some(), detector.is_some()),
    )?;
    std::fs::write(root.join("edge-package.tar"), package_tar)?;
    if let Some(b) = edge_binary {
        std::fs::copy(b, root.join("guardian-edge"))
            .with_context(|| format!("cannot read the edge binary {}", b.display()))?;
    }
    if let Some(d) = detector {
        anyhow::ensure!(
            d.join("models").is_dir() && d.join("openvino").is_dir(),
            "{} is not a detector bundle (models/ and openvino/; make one with scripts/detector-bundle.sh)",
            d.display()
        );
        copy_tree(d, &root.join("detector"))?;
    }
    let tmp = out.with_extension("iso.part");
    let output = Command::new("xorriso")
        .args([
            "-as", "mkisofs", "-quiet", "-volid", "cidata", "-joliet", "-rock", "-output",
        ])
        .arg(&tmp)
        .arg(root)
        .output()
        .context("cannot run xorriso (scripts/setup.sh installs it)")?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "xorriso failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// Copies a folder's files and subfolders (symbolic links as the files they name).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("cannot copy {}", src.display()))?;
        }
    }
    Ok(())
}

/// A host name from an edge name: lower case letters, digits and dashes.
fn hostname(name: &str) -> String {
    let h: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let h = h.trim_matches('-');
    if h.is_empty() {
        "guardian-edge".into()
    } else {
        format!("guardian-{h}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_names() {
        assert_eq!(super::hostname("Front Door"), "guardian-front-door");
        assert_eq!(super::hostname("***"), "guardian-edge");
    }
}
