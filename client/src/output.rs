//! Atomic output files: written beside their destination under a temporary name, synced, and
//! renamed into place only on success. On any error (or a crash) the destination is untouched
//! and the temporary file is removed (or left with a `.guardian-` prefix to sweep).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// An output file being written.
pub struct AtomicFile {
    dest: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    /// Starts writing `dest` (through a temporary file in the same directory).
    pub fn create(dest: &Path) -> Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".guardian-")
            .suffix(".part")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            tmp,
        })
    }

    /// A buffered writer into the temporary file.
    pub fn writer(&mut self) -> BufWriter<&mut File> {
        BufWriter::with_capacity(256 * 1024, self.tmp.as_file_mut())
    }

    /// The temporary file itself.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Syncs the data and renames it to the destination.
    pub fn commit(self) -> Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot sync {}", self.dest.display()))?;
        let dest = self.dest;
        self.tmp
            .persist(&dest)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename durable; not every filesystem allows syncing a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    {
        let mut w = f.writer();
        w.write_all(bytes)?;
        w.flush()?;
    }
    f.commit()
}
