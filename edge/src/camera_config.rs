//! The camera section of `/guardian/config/1` on the edge: the vm's cameras turned into
//! `edge.toml` entries, merged with changes made on the box, and the revision applied.
//!
//! The vm owns the cameras' configuration and numbers it per edge; the edge keeps what it
//! applied last in `cameras-applied.json` (the revision and the cameras as written to
//! `edge.toml`, 0600). A camera changed on the box since (`guardian-edge camera add|remove`)
//! is a local change against that base: a push keeps it unless the vm changed the same camera
//! too, and then the vm's wins ([`rebase`], pure). Passwords arrive sealed to this edge,
//! bound to the camera and host ([`protocols::credential`]); one that does not open for
//! this camera leaves the camera without it (it then fails `unauthorized`) and is logged.
//!
//! The other way, [`pending`] gives the box's own changes as a report for the vm
//! (`/guardian/config-change/1`), which takes them into its next revision and pushes that back.
//!
//! Write order: `edge.toml` first (the supervisor applies it within its tick), then the
//! applied file, then the ack. A crash between them re-applies the same revision on the
//! next push, which gives the same file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use protocols::credential;
use protocols::messages::config::{
    ArchivePolicy, CameraChanges, CameraConfig, CameraSet, DetectSettings, OnvifSource,
    RecordSettings, SealedCredential,
};
use serde::{Deserialize, Serialize};

use crate::config::{CameraArchive, CameraSettings, EdgeConfig, OnvifSettings};

/// The file holding the applied revision, in the data directory.
pub const FILE: &str = "cameras-applied.json";

/// What the edge applied last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The vm's revision; `None` before the first push.
    pub revision: Option<u64>,
    /// The vm's cameras as written to `edge.toml` then.
    pub cameras: Vec<CameraSettings>,
}

impl Applied {
    /// Reads `data`'s applied file (none yet: the default).
    pub fn load(data: &Path) -> Result<Applied> {
        let path = data.join(FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("cannot read {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Applied::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes it (temporary file, fsync, rename).
    pub fn save(&self, data: &Path) -> Result<()> {
        let path = data.join(FILE);
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(self)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// A thousandth-scaled score, clamped to 0..=1000.
fn milli(v: f32) -> u16 {
    (v.clamp(0.0, 1.0) * 1000.0).round() as u16
}

/// One `edge.toml` camera as the vm's configuration, its password sealed to `edge_recipient`
/// (the camera added on the box, reported to the vm).
pub fn to_wire(s: &CameraSettings, edge_recipient: &str) -> Result<CameraConfig> {
    let main = credential::split_userinfo(&s.url);
    let seal = |user: &str, password: &str, host_of: &str| -> Result<SealedCredential> {
        let host = credential::host(host_of).unwrap_or_default();
        Ok(SealedCredential {
            username: user.to_owned(),
            password_sealed: if password.is_empty() {
                None
            } else {
                Some(credential::seal(edge_recipient, &s.id, &host, password)?)
            },
        })
    };
    let credential = match (&s.onvif, &main.username) {
        (Some(o), _) if o.username.is_empty() => None,
        (Some(o), _) => Some(seal(&o.username, &o.password, &o.xaddr)?),
        (None, None) => None,
        (None, Some(user)) => Some(seal(
            user,
            main.password.as_deref().map_or("", |p| p.as_str()),
            &main.url,
        )?),
    };
    Ok(CameraConfig {
        id: s.id.clone(),
        name: s.name.clone(),
        url: main.url,
        substream_url: s
            .substream
            .as_deref()
            .map(|u| credential::split_userinfo(u).url),
        transport: s.transport.clone(),
        credential,
        enabled: s.enabled,
        detect: DetectSettings {
            categories: s.categories.clone(),
            min_score_milli: milli(s.min_score),
            threshold_milli: milli(s.threshold),
            fps: s.detect_fps.min(u8::MAX as u32) as u8,
            width: s.detect_width.min(u16::MAX as u32) as u16,
            height: s.detect_height.min(u16::MAX as u32) as u16,
            zones: s.zones.clone(),
            masks: s.masks.clone(),
            verify: s.verify,
        },
        record: RecordSettings {
            pre_roll_secs: s.pre_roll_secs.min(u16::MAX as u32) as u16,
            post_roll_secs: s.post_roll_secs.min(u16::MAX as u32) as u16,
        },
        onvif: s.onvif.as_ref().map(|o| OnvifSource {
            xaddr: credential::split_userinfo(&o.xaddr).url,
            profile: (!o.profile.is_empty()).then(|| o.profile.clone()),
            substream_profile: (!o.substream_profile.is_empty())
                .then(|| o.substream_profile.clone()),
        }),
        archive: s.archive.as_ref().map(|a| ArchivePolicy {
            enabled: a.enabled,
            categories: a.categories.clone(),
            min_score_milli: milli(a.min_score),
            hours: a.hours.clone(),
        }),
    })
}

/// The vm's camera as an `edge.toml` entry: the fields the vm does not own (per-category
/// filters, watchdog, ...) come from `keep` (the entry it replaces) or the defaults; the
/// password is opened with `identity` and put back into the URLs. The error, if the
/// credential does not open for this camera, is returned beside the entry (which then has
/// the user name only).
pub fn from_wire(
    c: &CameraConfig,
    keep: Option<&CameraSettings>,
    identity: &age::x25519::Identity,
) -> (CameraSettings, Option<credential::CredentialError>) {
    let mut s = keep.cloned().unwrap_or_default();
    let mut problem = None;
    // An ONVIF camera's credential is bound to its device service's host.
    let bound_to = c
        .onvif
        .as_ref()
        .map_or(c.url.as_str(), |o| o.xaddr.as_str());
    let secret = c.credential.as_ref().map(|cred| {
        let password = cred.password_sealed.as_deref().and_then(|sealed| {
            let host = credential::host(bound_to).unwrap_or_default();
            match credential::open(identity, sealed, &c.id, &host) {
                Ok(p) => Some(p),
                Err(e) => {
                    problem = Some(e);
                    None
                }
            }
        });
        (cred.username.clone(), password)
    });
    let with = |url: &str| match &secret {
        Some((user, pass)) => {
            credential::with_userinfo(url, user, pass.as_deref().map(|p| p.as_str())).to_string()
        }
        None => url.to_owned(),
    };
    s.id = c.id.clone();
    s.name = c.name.clone();
    match &c.onvif {
        Some(o) => {
            let (username, password) = match &secret {
                Some((u, p)) => (
                    u.clone(),
                    p.as_deref().map(|p| p.to_string()).unwrap_or_default(),
                ),
                None => (String::new(), String::new()),
            };
            s.url = String::new();
            s.substream = None;
            s.onvif = Some(OnvifSettings {
                xaddr: o.xaddr.clone(),
                username,
                password,
                profile: o.profile.clone().unwrap_or_default(),
                substream_profile: o.substream_profile.clone().unwrap_or_default(),
            });
        }
        None => {
            s.url = with(&c.url);
            s.substream = c.substream_url.as_deref().map(with);
            s.onvif = None;
        }
    }
    s.archive = c.archive.as_ref().map(|a| CameraArchive {
        enabled: a.enabled,
        categories: a.categories.clone(),
        min_score: f32::from(a.min_score_milli) / 1000.0,
        hours: a.hours.clone(),
    });
    s.transport = c.transport.clone();
    s.enabled = c.enabled;
    s.categories = c.detect.categories.clone();
    s.min_score = f32::from(c.detect.min_score_milli) / 1000.0;
    s.threshold = f32::from(c.detect.threshold_milli) / 1000.0;
    s.detect_fps = u32::from(c.detect.fps);
    s.detect_width = u32::from(c.detect.width);
    s.detect_height = u32::from(c.detect.height);
    s.zones = c.detect.zones.clone();
    s.masks = c.detect.masks.clone();
    s.verify = c.detect.verify;
    s.pre_roll_secs = u32::from(c.record.pre_roll_secs);
    s.post_roll_secs = u32::from(c.record.post_roll_secs);
    (s, problem)
}

/// The cameras after a push: the vm's `pushed`, with the box's own changes since `base` (the
/// cameras of the revision applied before) kept where the vm left that camera as it was.
/// A camera added on the box that the vm does not have stays; one removed on the box stays
/// removed unless the vm changed it. Order: the vm's, then the box's additions.
pub fn rebase(
    base: &[CameraSettings],
    local: &[CameraSettings],
    pushed: &[CameraSettings],
) -> Vec<CameraSettings> {
    let find = |set: &[CameraSettings], id: &str| set.iter().find(|c| c.id == id).cloned();
    let unchanged_at_vm = |id: &str| find(base, id) == find(pushed, id);
    let mut out = Vec::new();
    for p in pushed {
        let local_change = find(local, &p.id) != find(base, &p.id);
        if local_change && unchanged_at_vm(&p.id) {
            if let Some(l) = find(local, &p.id) {
                out.push(l);
            }
            // else: removed on the box, and the vm did not touch it: stays removed.
        } else {
            out.push(p.clone());
        }
    }
    for l in local {
        let in_pushed = pushed.iter().any(|p| p.id == l.id);
        let in_base = base.iter().any(|b| b.id == l.id);
        // Added on the box (or changed there while the vm removed it: the vm's removal wins).
        if !in_pushed && !in_base {
            out.push(l.clone());
        }
    }
    out
}

/// What applying a camera section gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or already running) this revision.
    Applied(u64),
    /// Older than the revision applied.
    Stale {
        /// The revision running.
        applied: u64,
    },
}

/// Applies `set` to the edge at `data`: `edge.toml`'s cameras become the rebased set, then
/// the applied file is written. Blocking (file I/O).
pub fn apply(data: &Path, set: &CameraSet, identity: &age::x25519::Identity) -> Result<Outcome> {
    let applied = Applied::load(data)?;
    if let Some(a) = applied.revision {
        if set.revision < a {
            return Ok(Outcome::Stale { applied: a });
        }
        if set.revision == a {
            return Ok(Outcome::Applied(a));
        }
    }
    let config_path: PathBuf = data.join(crate::paths::CONFIG);
    let mut config = EdgeConfig::load(&config_path)?;
    let pushed: Vec<CameraSettings> = set
        .cameras
        .iter()
        .map(|c| {
            let keep = config
                .cameras
                .iter()
                .chain(&applied.cameras)
                .find(|x| x.id == c.id);
            let (s, problem) = from_wire(c, keep, identity);
            if let Some(e) = problem {
                tracing::warn!(camera = %c.id, error = %e, "camera credential refused; the camera runs without its password");
            }
            s
        })
        .collect();
    for s in &pushed {
        s.validate()
            .with_context(|| format!("revision {}", set.revision))?;
    }
    config.cameras = rebase(&applied.cameras, &config.cameras, &pushed);
    config.save(&config_path)?;
    Applied {
        revision: Some(set.revision),
        cameras: pushed,
    }
    .save(data)?;
    Ok(Outcome::Applied(set.revision))
}

/// The box's own changes since `base` (the cameras of the revision applied): cameras added
/// or changed in `local` (`edge.toml`), and ids removed from it.
pub fn local_changes(
    base: &[CameraSettings],
    local: &[CameraSettings],
) -> (Vec<CameraSettings>, Vec<String>) {
    let upserts = local
        .iter()
        .filter(|l| base.iter().find(|b| b.id == l.id) != Some(*l))
        .cloned()
        .collect();
    let removals = base
        .iter()
        .filter(|b| !local.iter().any(|l| l.id == b.id))
        .map(|b| b.id.clone())
        .collect();
    (upserts, removals)
}

/// The report of the box's changes for the vm, with passwords sealed to the edge itself
/// (`edge_recipient`), and a key naming what changed (equal keys: the same changes, though
/// each sealing differs); `None` when nothing changed. Blocking (file reads).
pub fn pending(data: &Path, edge_recipient: &str) -> Result<Option<(String, CameraChanges)>> {
    let applied = Applied::load(data)?;
    let local = EdgeConfig::load(&data.join(crate::paths::CONFIG))?.cameras;
    let (upserts, removals) = local_changes(&applied.cameras, &local);
    if upserts.is_empty() && removals.is_empty() {
        return Ok(None);
    }
    // In memory only (it holds the box's URLs as written), never logged.
    let key = serde_json::to_string(&(applied.revision, &upserts, &removals))?;
    let changes = CameraChanges {
        base_revision: applied.revision,
        upserts: upserts
            .iter()
            .map(|s| to_wire(s, edge_recipient))
            .collect::<Result<_>>()?,
        removals,
    };
    Ok(Some((key, changes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(id: &str, url: &str) -> CameraSettings {
        CameraSettings {
            id: id.into(),
            name: id.into(),
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_camera_goes_to_the_wire_sealed_and_comes_back_whole() {
        let id = age::x25519::Identity::generate();
        let mut s = cam("porch", "rtsp://admin:s3cr%40t@192.0.2.10:554/main");
        s.substream = Some("rtsp://admin:s3cr%40t@192.0.2.10:554/sub".into());
        s.threshold = 0.6;
        s.watchdog_secs = 17;
        let wire = to_wire(&s, &id.to_public().to_string()).unwrap();
        assert_eq!(wire.url, "rtsp://192.0.2.10:554/main");
        assert_eq!(
            wire.substream_url.as_deref(),
            Some("rtsp://192.0.2.10:554/sub")
        );
        let json = serde_json::to_string(&wire).unwrap();
        assert!(!json.contains("s3cr"), "{json}");
        assert_eq!(wire.detect.threshold_milli, 600);
        let (back, problem) = from_wire(&wire, Some(&s), &id);
        assert!(problem.is_none());
        assert_eq!(back, s);
        // Without the entry it replaced, the fields the vm does not own are the defaults.
        let (fresh, _) = from_wire(&wire, None, &id);
        assert_eq!(fresh.watchdog_secs, CameraSettings::default().watchdog_secs);
        assert_eq!(fresh.url, s.url);
    }

    #[test]
    fn a_credential_moved_to_another_camera_or_host_is_not_used() {
        let id = age::x25519::Identity::generate();
        let s = cam("porch", "rtsp://admin:pw@192.0.2.10/main");
        let mut wire = to_wire(&s, &id.to_public().to_string()).unwrap();
        wire.id = "garage".into();
        let (moved, problem) = from_wire(&wire, None, &id);
        assert!(matches!(
            problem,
            Some(credential::CredentialError::WrongCamera { .. })
        ));
        assert_eq!(moved.url, "rtsp://admin@192.0.2.10/main");
        wire.id = "porch".into();
        wire.url = "rtsp://198.51.100.9/main".into();
        let (redirected, problem) = from_wire(&wire, None, &id);
        assert!(matches!(
            problem,
            Some(credential::CredentialError::WrongHost { .. })
        ));
        assert!(!redirected.url.contains("pw"));
    }

    #[test]
    fn rebase_keeps_the_boxs_changes_where_the_vm_left_the_camera_alone() {
        let r = |base: Vec<CameraSettings>,
                 local: Vec<CameraSettings>,
                 pushed: Vec<CameraSettings>| { rebase(&base, &local, &pushed) };
        let a = cam("a", "test://a");
        let b = cam("b", "test://b");
        let c = cam("c", "test://c");
        let mut a2 = a.clone();
        a2.name = "changed on the box".into();
        let mut a3 = a.clone();
        a3.name = "changed at the vm".into();
        let mut b2 = b.clone();
        b2.name = "b at the vm".into();
        // The box added c and renamed a; the vm renamed b: all three kept.
        assert_eq!(
            r(
                vec![a.clone(), b.clone()],
                vec![a2.clone(), b.clone(), c.clone()],
                vec![a.clone(), b2.clone()]
            ),
            vec![a2.clone(), b2.clone(), c.clone()]
        );
        // Both changed a: the vm's wins.
        assert_eq!(
            r(vec![a.clone()], vec![a2.clone()], vec![a3.clone()]),
            vec![a3.clone()]
        );
        // Removed on the box, untouched at the vm: stays removed; removed at the vm: gone.
        assert_eq!(
            r(
                vec![a.clone(), b.clone()],
                vec![b.clone()],
                vec![a.clone(), b.clone()]
            ),
            vec![b.clone()]
        );
        assert_eq!(
            r(
                vec![a.clone(), b.clone()],
                vec![a.clone(), b.clone()],
                vec![b.clone()]
            ),
            vec![b.clone()]
        );
        // The first push: every camera of the box that the vm does not name stays.
        assert_eq!(r(vec![], vec![c.clone()], vec![a.clone()]), vec![a, c]);
    }

    #[test]
    fn the_boxs_changes_are_what_differs_from_the_applied_revision() {
        let a = cam("a", "test://a");
        let b = cam("b", "test://b");
        let mut a2 = a.clone();
        a2.name = "renamed".into();
        let c = cam("c", "test://c");
        let (upserts, removals) = local_changes(&[a.clone(), b.clone()], &[a2.clone(), c.clone()]);
        assert_eq!(upserts, vec![a2, c]);
        assert_eq!(removals, vec!["b".to_string()]);
        let one = [a];
        let (upserts, removals) = local_changes(&one, &one);
        assert!(upserts.is_empty() && removals.is_empty());
    }

    #[test]
    fn apply_writes_edge_toml_and_refuses_an_older_revision() {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let mut config = EdgeConfig::default();
        config.cameras.push(cam("local", "test://ball"));
        config.save(&dir.path().join(crate::paths::CONFIG)).unwrap();
        let wire = to_wire(
            &cam("porch", "rtsp://u:p@192.0.2.1/x"),
            &id.to_public().to_string(),
        )
        .unwrap();
        let set = CameraSet {
            revision: 3,
            cameras: vec![wire],
        };
        assert_eq!(apply(dir.path(), &set, &id).unwrap(), Outcome::Applied(3));
        let written = EdgeConfig::load(&dir.path().join(crate::paths::CONFIG)).unwrap();
        let ids: Vec<&str> = written.cameras.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["porch", "local"]);
        assert_eq!(written.cameras[0].url, "rtsp://u:p@192.0.2.1/x");
        assert_eq!(apply(dir.path(), &set, &id).unwrap(), Outcome::Applied(3));
        let old = CameraSet {
            revision: 2,
            cameras: vec![],
        };
        assert_eq!(
            apply(dir.path(), &old, &id).unwrap(),
            Outcome::Stale { applied: 3 }
        );
        // Removed at the vm: gone from edge.toml, the box's own camera stays.
        let empty = CameraSet {
            revision: 4,
            cameras: vec![],
        };
        apply(dir.path(), &empty, &id).unwrap();
        let written = EdgeConfig::load(&dir.path().join(crate::paths::CONFIG)).unwrap();
        assert_eq!(written.cameras.len(), 1);
        assert_eq!(written.cameras[0].id, "local");
    }
}
