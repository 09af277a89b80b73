//! Files only the service's own user reads: keys, databases, configurations and stored
//! objects. [`private_by_default`] sets the process's umask so that everything it creates is
//! 0600 (directories 0700); [`tighten`] brings what an older version left readable by others
//! down to the same modes.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Files created from now on by this process are 0600 and directories 0700 (umask 077).
pub fn private_by_default() {
    // SAFETY: umask only sets the process's file-mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// The mode `mode` should have: group and other bits cleared. `None` when it has none.
pub fn tightened(mode: u32) -> Option<u32> {
    (mode & 0o077 != 0).then_some(mode & !0o077)
}

/// Clears the group and other bits of `root` and everything below it (symbolic links are
/// left alone and not followed). Returns how many entries it changed.
pub fn tighten(root: &Path) -> io::Result<u64> {
    let mut changed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            // Removed meanwhile (a clip retention deleted, a temporary file renamed).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        if let Some(mode) = tightened(meta.permissions().mode()) {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            changed += 1;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(changed)
}

/// [`tighten`] on a service's data directory at start, logging what it changed.
pub fn tighten_data_dir(data: &Path) -> io::Result<()> {
    let changed = tighten(data)?;
    if changed > 0 {
        tracing::info!(
            changed,
            dir = %data.display(),
            "made the data directory's files private (0600, 0700)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_other_bits_are_cleared_and_nothing_else() {
        assert_eq!(tightened(0o100644), Some(0o100600));
        assert_eq!(tightened(0o40755), Some(0o40700));
        assert_eq!(tightened(0o100600), None);
        assert_eq!(tightened(0o100400), None);
        assert_eq!(tightened(0o104751), Some(0o104700));
    }

    #[test]
    fn a_tree_is_tightened_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("objects");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("a"), b"x").unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(sub.join("a"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(tighten(dir.path()).unwrap(), 2);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&sub.join("a")), 0o600);
        assert_eq!(tighten(dir.path()).unwrap(), 0);
    }
}
