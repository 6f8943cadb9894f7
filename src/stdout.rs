//! Writing a command's result to stdout, with one policy for every command: a
//! reader that went away (`ganger check | head -1`) is not an error worth a
//! message, any other failure (`> /dev/full`) is.
//!
//! `start` streams through its own writer thread (`output.rs`); this is for
//! the commands that print once and exit.

use std::io::{self, Write};

use crate::error::{Error, Result};

/// Writes `bytes` to stdout and flushes; a broken pipe counts as written.
pub fn print(bytes: impl AsRef<[u8]>) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes.as_ref()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::os("cannot write to stdout", e))
        }
        _ => Ok(()),
    }
}
