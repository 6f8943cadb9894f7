//! `ganger start -i NAME`: ganger's own terminal input goes, line by line, to
//! one instance's pseudo-terminal, so that a debugger stopped in it (`pdb`,
//! `binding.pry`, `debugger`) can be used from the terminal ganger runs in.
//!
//! ganger's terminal stays in its usual (canonical) mode: the terminal edits
//! and echoes the line, and Ctrl-C still reaches ganger, which stops the app.
//! A thread of its own reads stdin, so the supervisor never blocks on it.

use std::io::{self, IsTerminal, Read};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::formation::unknown_process;
use crate::procfile::Procfile;
use crate::taps::Registry;
use crate::taps::terminal::{Terminal, write_blocking};

/// The type and the instance `-i NAME` means (`web` is `web.1`); ganger's
/// stdin must be a terminal.
pub fn resolve(procfile: &Procfile, name: &str) -> Result<(String, String)> {
    let (kind, instance) = match name.rsplit_once('.') {
        Some((kind, n))
            if procfile.find(name).is_none() && n.parse::<u32>().is_ok_and(|n| n > 0) =>
        {
            (kind.to_string(), name.to_string())
        }
        _ => (name.to_string(), format!("{name}.1")),
    };
    if procfile.find(&kind).is_none() {
        return Err(unknown_process(&kind, procfile));
    }
    if !io::stdin().is_terminal() {
        return Err(Error::Control(format!(
            "--interactive {name} needs a terminal on stdin, and ganger's stdin is not one \
             (run it in a terminal, not with input from a pipe or a file)"
        )));
    }
    Ok((kind, instance))
}

/// Starts forwarding stdin to `instance`'s pty. A line typed while the
/// instance is not running is dropped; the end of input (Ctrl-D) is passed on
/// as the terminal's end-of-file character, and ends the forwarding.
pub fn forward(taps: Arc<Registry>, instance: String) -> io::Result<()> {
    std::thread::Builder::new()
        .name("ganger-stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin();
            // A terminal in canonical mode hands over at most one line per read.
            let mut buf = vec![0u8; 4096];
            loop {
                let (bytes, last): (&[u8], bool) = match stdin.read(&mut buf) {
                    Ok(0) => (b"\x04", true),
                    Ok(n) => (&buf[..n], false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                let master = taps
                    .find(&instance)
                    .and_then(|entry| entry.terminal.as_ref().and_then(Terminal::master));
                if let Some(master) = master {
                    let _ = write_blocking(&master, bytes);
                }
                if last {
                    return;
                }
            }
        })
        .map(drop)
}
