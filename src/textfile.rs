//! Reading the text files ganger is pointed at: the Procfile and dotenv files.
//!
//! Only regular files are read (after following symlinks), and only up to
//! [`MAX_SIZE`]: `-f`/`-e` naming a FIFO would otherwise block forever, and
//! `/dev/zero` would fill memory. The text must be UTF-8; an editor's
//! byte-order mark is dropped. Parsing is the callers' business.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::libc;

use crate::error::{Error, Result};

/// The largest Procfile or dotenv file ganger reads; real ones are a few KiB.
pub const MAX_SIZE: u64 = 16 << 20;

/// The text of the file at `path`, or `None` if nothing is there (a dangling
/// symlink included), so that callers decide whether that is an error.
pub fn read(path: &Path) -> Result<Option<String>> {
    let read_error = |source: io::Error| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    // Checked before opening: opening a FIFO for reading blocks until a writer
    // comes along.
    match std::fs::metadata(path) {
        Ok(meta) => check_regular(path, &meta)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    }
    // O_NONBLOCK, and the type checked again on what was opened, in case the
    // path was swapped for a FIFO in between; it changes nothing for a regular file.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    check_regular(path, &file.metadata().map_err(read_error)?)?;
    let bytes = read_capped(file, path)?;
    let text = crate::error::utf8_text(path, bytes)?;
    Ok(Some(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    }))
}

/// Reads at most [`MAX_SIZE`] bytes; a file that still has more is an error
/// (it may have grown since it was measured, so the size is not trusted).
fn read_capped(file: File, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(Error::FileTooLarge {
            path: path.to_path_buf(),
            limit: MAX_SIZE,
        });
    }
    Ok(bytes)
}

fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return if meta.len() > MAX_SIZE {
            Err(Error::FileTooLarge {
                path: path.to_path_buf(),
                limit: MAX_SIZE,
            })
        } else {
            Ok(())
        };
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(Error::NotRegularFile {
        path: path.to_path_buf(),
        kind: what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_and_drops_a_byte_order_mark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "\u{feff}A=1\n").expect("write");
        assert_eq!(read(&path).expect("read").as_deref(), Some("A=1\n"));
        assert_eq!(read(&dir.path().join("nope")).expect("missing"), None);
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let msg = read(dir.path()).expect_err("dir").to_string();
        assert!(msg.contains("a directory, not a regular file"), "{msg}");
        let msg = read(Path::new("/dev/zero"))
            .expect_err("device")
            .to_string();
        assert!(msg.contains("/dev/zero: it is a character device"), "{msg}");
    }

    #[test]
    fn refuses_a_file_over_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        let file = File::create(&path).expect("create");
        file.set_len(MAX_SIZE + 1).expect("sparse file");
        let msg = read(&path).expect_err("too big").to_string();
        assert!(msg.contains("larger than 16 MiB"), "{msg}");
        assert!(msg.contains("big"), "{msg}");
    }
}
