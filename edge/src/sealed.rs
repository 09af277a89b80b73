//! An event's sealed objects: the one form in which the edge keeps what a camera recorded.
//!
//! `clips/<camera>/<event_id>/` holds `clip.mp4.age`, `snapshot.jpg.age`, `thumbnail.jpg.age`
//! (each sealed with age to every recipient of the household's key slots allowed for the
//! camera) and `manifest.json` (`guardian-manifest/2`, signed by the edge's key: CIDs and
//! sizes of the ciphertexts). That one object per kind is what playback streams, what the
//! archive uploads (no second seal) and what retention deletes. With
//! `[storage] sealed_at_rest = false` the plaintext (`clip.mp4`, `snapshot.jpg`) is kept
//! beside it for a local player.
//!
//! # Write order (as Moonfire NVR's writer)
//!
//! Each object is sealed to `<name>.part`, fsynced and renamed; then the manifest the same
//! way; then the folder and its parent are fsynced. Only then does the caller write the rows
//! ([`crate::store::Store::insert_event`]), and only after the rows does it remove the
//! working file. A crash before the rows leaves a folder without a row, which retention
//! removes after its grace period (and recovery, which seals the working file again, replaces).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use protocols::manifest::{FORMAT, Label, Manifest, ObjectKind, ObjectRef};
use protocols::messages::events::EventRecord;

use crate::video::recorder::CLIPS_DIR;

const COPY_BUF: usize = 256 * 1024;

/// Who the objects are sealed to: the recipients and their key ids.
#[derive(Clone)]
pub struct Recipients {
    /// The age recipients.
    pub recipients: Vec<age::x25519::Recipient>,
    /// Their key ids, as the manifest lists them.
    pub key_ids: Vec<String>,
}

impl Recipients {
    /// The recipients `age1...` (as [`crate::key_slots::KeySlots::recipients_for`] gives
    /// them), with their key ids.
    pub fn parse(recipients: &[String]) -> Result<Recipients> {
        anyhow::ensure!(!recipients.is_empty(), "no recipient to seal to");
        let texts: Vec<&str> = recipients.iter().map(String::as_str).collect();
        Ok(Recipients {
            recipients: protocols::seal::parse_recipients(&texts)
                .context("the recipients to seal to")?,
            key_ids: recipients
                .iter()
                .map(|r| protocols::owner_key::key_id(r))
                .collect(),
        })
    }
}

/// The plaintexts of one event.
pub struct Plain<'a, 'r> {
    /// The clip (MP4), streamed.
    pub clip: Option<&'a mut (dyn Read + 'r)>,
    /// The snapshot (JPEG).
    pub snapshot: Option<&'a [u8]>,
    /// The thumbnail (JPEG).
    pub thumbnail: Option<&'a [u8]>,
}

/// An event sealed into its folder.
#[derive(Debug, Clone)]
pub struct SealedEvent {
    /// The record, with the objects' CIDs.
    pub record: EventRecord,
    /// The signed manifest.
    pub manifest: Manifest,
    /// Its bytes, as stored.
    pub manifest_json: Vec<u8>,
    /// The folder, relative to the data directory.
    pub dir: String,
    /// Each object's path relative to the data directory.
    pub paths: Vec<(ObjectKind, String)>,
    /// Bytes on disk (objects, manifest, plain copies).
    pub bytes: u64,
}

impl SealedEvent {
    /// The path of `kind`, relative to the data directory.
    pub fn path(&self, kind: ObjectKind) -> Option<&str> {
        self.paths
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_str())
    }
}

/// The folder of an event's objects, relative to the data directory.
pub fn event_dir(camera_id: &str, event_id: &str) -> PathBuf {
    Path::new(CLIPS_DIR).join(camera_id).join(event_id)
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Copies what it reads into a second writer (the plain copy when kept).
struct Tee<'a, R> {
    inner: R,
    copy: Option<&'a mut dyn Write>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = self.copy.as_mut() {
            c.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let part = path.with_extension("part");
    let mut f = std::fs::File::create(&part)
        .with_context(|| format!("cannot create {}", part.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&part, path).with_context(|| format!("cannot rename {}", part.display()))
}

/// Seals one object into `dir` (and keeps its plaintext beside it when `keep_plain`).
fn seal_object(
    dir: &Path,
    kind: ObjectKind,
    plain: &mut dyn Read,
    to: &Recipients,
    keep_plain: bool,
) -> Result<(ObjectRef, u64)> {
    let dest = dir.join(kind.file_name());
    let part = dest.with_extension("age.part");
    let mut out = std::io::BufWriter::with_capacity(COPY_BUF, std::fs::File::create(&part)?);
    let mut copy = if keep_plain {
        let p = dir.join(format!("{}.part", kind.plain_name()));
        Some((
            p.clone(),
            std::io::BufWriter::new(
                std::fs::File::create(&p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            ),
        ))
    } else {
        None
    };
    let tee = Tee {
        inner: std::io::BufReader::with_capacity(COPY_BUF, plain),
        copy: copy.as_mut().map(|(_, w)| w as &mut dyn Write),
    };
    let summary = protocols::seal::seal(tee, &mut out, &to.recipients)
        .with_context(|| format!("cannot seal the {kind}"))?;
    out.flush()?;
    out.get_ref().sync_all()?;
    drop(out);
    std::fs::rename(&part, &dest).with_context(|| format!("cannot rename {}", part.display()))?;
    let mut plain_bytes = 0;
    if let Some((p, mut w)) = copy {
        w.flush()?;
        w.get_ref().sync_all()?;
        drop(w);
        std::fs::rename(&p, dir.join(kind.plain_name()))?;
        plain_bytes = summary.plaintext_size;
    }
    Ok((
        ObjectRef {
            cid: summary.cid,
            kind,
            size: summary.size,
        },
        plain_bytes,
    ))
}

/// Seals `plain` for `record`'s event into its folder under `data`, signs the manifest with
/// `edge_key`, and returns what was written; the rows are the caller's. A folder left by an
/// earlier attempt that never got its row is replaced.
pub fn seal_event(
    data: &Path,
    to: &Recipients,
    edge_key: &ed25519_dalek::SigningKey,
    mut record: EventRecord,
    plain: Plain<'_, '_>,
    keep_plain: bool,
    now_ms: u64,
) -> Result<SealedEvent> {
    let rel = event_dir(&record.camera_id, &record.event_id);
    let dir = data.join(&rel);
    let parent = dir.parent().expect("a camera folder").to_path_buf();
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let Plain {
        clip,
        snapshot,
        thumbnail,
    } = plain;
    let mut objects = Vec::new();
    let mut bytes = 0u64;
    let mut sources: Vec<(ObjectKind, Box<dyn Read + '_>)> = Vec::new();
    if let Some(c) = clip {
        sources.push((ObjectKind::Clip, Box::new(c)));
    }
    if let Some(s) = snapshot {
        sources.push((ObjectKind::Snapshot, Box::new(s)));
    }
    if let Some(t) = thumbnail {
        sources.push((ObjectKind::Thumbnail, Box::new(t)));
    }
    for (kind, mut source) in sources {
        // Thumbnails are for timelines only; a plain copy is of no use to a local player.
        let keep = keep_plain && kind != ObjectKind::Thumbnail;
        let (o, plain_bytes) = seal_object(&dir, kind, &mut source, to, keep)?;
        bytes += o.size + plain_bytes;
        objects.push(o);
    }
    let cid_of = |kind| {
        objects
            .iter()
            .find(|o: &&ObjectRef| o.kind == kind)
            .map(|o| o.cid.to_string())
    };
    record.clip_cid = cid_of(ObjectKind::Clip);
    record.snapshot_cid = cid_of(ObjectKind::Snapshot);
    record.thumbnail_cid = cid_of(ObjectKind::Thumbnail);
    let mut manifest = Manifest {
        camera_id: record.camera_id.clone(),
        edge_id: protocols::signed::peer_id_of(&edge_key.verifying_key()),
        ended_at_ms: record.ended_at_ms,
        event_id: record.event_id.clone(),
        format: FORMAT.into(),
        key_ids: to.key_ids.clone(),
        labels: vec![Label {
            category: record.category.as_str().to_owned(),
            score_milli: record.score_milli,
        }],
        objects,
        sealed_at_ms: now_ms,
        signature: None,
        started_at_ms: record.started_at_ms,
        tenant_id: record.tenant_id.clone(),
        truncated: record.truncated,
    };
    manifest.sign(edge_key);
    let manifest_json = manifest.to_json();
    write_new(&dir.join("manifest.json"), &manifest_json)?;
    bytes += manifest_json.len() as u64;
    sync_dir(&dir)?;
    sync_dir(&parent)?;
    let paths = manifest
        .objects
        .iter()
        .map(|o| {
            (
                o.kind,
                rel.join(o.kind.file_name()).to_string_lossy().into_owned(),
            )
        })
        .collect();
    Ok(SealedEvent {
        record,
        manifest,
        manifest_json,
        dir: rel.to_string_lossy().into_owned(),
        paths,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> EventRecord {
        let mut r = crate::store::outbox::tests::record("ev-1");
        r.camera_id = "door".into();
        r
    }

    #[test]
    fn objects_are_sealed_to_the_recipients_and_named_by_the_signed_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let owner = age::x25519::Identity::generate();
        let to = Recipients {
            recipients: vec![owner.to_public()],
            key_ids: vec!["k1".into()],
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let clip: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        for keep_plain in [false, true] {
            let mut reader = &clip[..];
            let sealed = seal_event(
                dir.path(),
                &to,
                &key,
                record(),
                Plain {
                    clip: Some(&mut reader),
                    snapshot: Some(b"jpeg bytes"),
                    thumbnail: Some(b"small jpeg"),
                },
                keep_plain,
                3,
            )
            .unwrap();
            assert_eq!(sealed.dir, "clips/door/ev-1");
            let folder = dir.path().join(&sealed.dir);
            let mut names: Vec<String> = std::fs::read_dir(&folder)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let mut expected = vec![
                "clip.mp4.age",
                "manifest.json",
                "snapshot.jpg.age",
                "thumbnail.jpg.age",
            ];
            if keep_plain {
                expected.extend(["clip.mp4", "snapshot.jpg"]);
                expected.sort();
            }
            assert_eq!(names, expected, "keep_plain {keep_plain}");
            let m = protocols::manifest::verify(
                &sealed.manifest_json,
                &key.verifying_key(),
                ObjectKind::ALL
                    .map(|k| (k, std::fs::File::open(folder.join(k.file_name())).unwrap())),
            )
            .unwrap();
            assert_eq!(m.key_ids, vec!["k1".to_string()]);
            assert_eq!(
                sealed.record.clip_cid.as_deref(),
                Some(m.object(ObjectKind::Clip).unwrap().cid.to_string().as_str())
            );
            let mut back = Vec::new();
            protocols::seal::open(
                std::fs::File::open(folder.join("clip.mp4.age")).unwrap(),
                &mut back,
                &owner,
            )
            .unwrap();
            assert_eq!(back, clip);
            if keep_plain {
                assert_eq!(std::fs::read(folder.join("clip.mp4")).unwrap(), clip);
            }
        }
    }
}
