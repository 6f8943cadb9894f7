//! Writing an export into DIR without destroying what ganger did not write.
//!
//! Every entry is staged under a temporary name and renamed into place. A
//! destination may be replaced, and a name this export no longer writes
//! removed, only when it carries this app's marker. Anything else at a
//! destination (a hand-written file, another app's, a symbolic link) stops the
//! export before anything is written, unless `--force` says to replace it.
//! Links are never followed: ganger writes none, `--force` replaces the link
//! itself (never its target), and the removal of leftovers skips them.
//! This module knows nothing of the formats; `owned` says what is theirs.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use super::{Entry, marker, marker_words};
use crate::error::{Error, Result};

/// Where and how one export is written.
pub struct Target<'a, F: Fn(&str, &Path) -> bool> {
    pub dir: &'a Path,
    pub app: &'a str,
    /// Replace what is in the way even without the marker (`--force`).
    pub force: bool,
    /// Whether the name at this path is this app's, written by an earlier export.
    pub owned: F,
}

impl<F: Fn(&str, &Path) -> bool> Target<'_, F> {
    /// Writes `entries`, replacing what an earlier export of the same app wrote
    /// and removing the names it wrote that `entries` no longer has. On error,
    /// no temporary file is left behind.
    pub fn install(&self, entries: &[Entry]) -> Result<()> {
        if !self.force {
            for entry in entries {
                self.check_replaceable(entry.name())?;
            }
        }
        fs::create_dir_all(self.dir)
            .map_err(|e| Error::os(format!("cannot create {}", self.dir.display()), e))?;
        let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
        let result = entries.iter().try_for_each(|entry| {
            let tmp = self.dir.join(format!(".{}.ganger-tmp", entry.name()));
            remove_any(&tmp)?;
            staged.push((tmp.clone(), self.dir.join(entry.name())));
            write_entry(&tmp, entry)
        });
        let result = result.and_then(|()| {
            let keep: BTreeSet<&str> = entries.iter().map(Entry::name).collect();
            self.remove_leftovers(&keep)?;
            staged.iter().try_for_each(|(tmp, dest)| replace(tmp, dest))
        });
        if result.is_err() {
            for (tmp, _) in &staged {
                let _ = remove_any(tmp);
            }
        }
        result
    }

    /// Errors unless `name` in DIR is free, or this app's own.
    fn check_replaceable(&self, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        let refuse = |reason: String| {
            Err(Error::ExportOverwrite {
                path: path.clone(),
                reason,
            })
        };
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::os(format!("cannot inspect {}", path.display()), e)),
            Ok(meta) if meta.file_type().is_symlink() => refuse(
                "it is a symbolic link, and export never writes through one \
                 (--force replaces the link itself, not its target)"
                    .into(),
            ),
            Ok(_) if (self.owned)(name, &path) => Ok(()),
            Ok(_) => refuse(format!(
                "it lacks the marker `{}` (--force replaces it anyway)",
                marker_words(self.app)
            )),
        }
    }

    /// Removes what this app's earlier export wrote and `keep` no longer has.
    fn remove_leftovers(&self, keep: &BTreeSet<&str>) -> Result<()> {
        let fail = |e| Error::os(format!("cannot list {}", self.dir.display()), e);
        for item in fs::read_dir(self.dir).map_err(fail)? {
            let item = item.map_err(fail)?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let link = item.file_type().is_ok_and(|t| t.is_symlink());
            if !name.starts_with('.')
                && !keep.contains(name)
                && !link
                && (self.owned)(name, &item.path())
            {
                remove_any(&item.path())?;
            }
        }
        Ok(())
    }
}

/// Renames the staged `tmp` over `dest`, which was checked (or forced) already.
fn replace(tmp: &Path, dest: &Path) -> Result<()> {
    // A file renamed over a file or a link replaces it atomically; a directory
    // cannot be renamed over a non-empty directory or onto a link.
    if fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir() || m.file_type().is_symlink()) {
        remove_any(dest)?;
    }
    fs::rename(tmp, dest)
        .map_err(|e| Error::os(format!("cannot move {} into place", dest.display()), e))
}

/// Writes one entry at `path` with its exact mode (whatever the umask).
fn write_entry(path: &Path, entry: &Entry) -> Result<()> {
    let fail = |e| Error::os(format!("cannot write {}", path.display()), e);
    match entry {
        Entry::File { contents, mode, .. } => {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(*mode)
                .open(path)
                .map_err(fail)?;
            file.set_permissions(fs::Permissions::from_mode(*mode))
                .map_err(fail)?;
            file.write_all(contents).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        Entry::Dir { mode, entries, .. } => {
            fs::create_dir(path).map_err(fail)?;
            fs::set_permissions(path, fs::Permissions::from_mode(*mode)).map_err(fail)?;
            for child in entries {
                write_entry(&path.join(child.name()), child)?;
            }
        }
    }
    Ok(())
}

/// Removes a file, symlink or directory tree; a missing path is fine.
fn remove_any(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| Error::os(format!("cannot remove {}", path.display()), e))
}

/// Whether `path` is a regular file (not a link to one) whose first 512 bytes
/// hold the marker line for `app` (after a shebang or an XML declaration).
#[must_use]
pub fn has_marker(path: &Path, app: &str) -> bool {
    if !fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path);
    let mut head = Vec::with_capacity(512);
    opened.is_ok_and(|file| file.take(512).read_to_end(&mut head).is_ok())
        && String::from_utf8_lossy(&head).contains(&marker(app))
}

/// Creates `path` and its missing parents, 0750, unless it is a directory
/// already; `Ok(true)` when it created it.
pub fn create_log_dir(path: &Path) -> std::io::Result<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)?;
    Ok(true)
}
