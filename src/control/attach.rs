//! `ganger attach`: the client's terminal in raw mode, its keys sent to an
//! instance's pty and the pty's output shown unprefixed, until the detach keys,
//! the instance's exit, a signal or a lost connection.
//!
//! Whatever ends the attach, the terminal is put back as it was: raw mode is
//! held by a guard that restores it when dropped (also while unwinding), and
//! the signals that would end the process are caught so that the guard runs.

use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};

use super::client;
use super::frame;
use super::protocol::Request;
use crate::error::{Error, Result};

/// The detach keys unless `--detach-keys` says otherwise.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-]";

/// `--detach-keys`: a comma list of keys typed in a row, each `ctrl-X` or a
/// single character (`ctrl-]`, `ctrl-p,ctrl-q`, `ctrl-x,q`).
pub fn parse_detach_keys(text: &str) -> std::result::Result<Vec<u8>, String> {
    let bad = |part: &str| {
        format!(
            "`{part}` is not a key: use ctrl-X or one character, in a comma list (ctrl-], ctrl-p,ctrl-q)"
        )
    };
    let mut keys = Vec::new();
    for part in text.split(',').map(str::trim) {
        let key = if let Some(rest) = part.strip_prefix("ctrl-") {
            let &[c] = rest.as_bytes() else {
                return Err(bad(part));
            };
            match c.to_ascii_lowercase() {
                c @ b'a'..=b'z' => c - b'a' + 1,
                b'@' | b' ' => 0,
                c @ (b'[' | b'\\' | b']' | b'^' | b'_') => c - b'@',
                _ => return Err(bad(part)),
            }
        } else {
            match part.as_bytes() {
                &[c] if c.is_ascii_graphic() => c,
                _ => return Err(bad(part)),
            }
        };
        keys.push(key);
    }
    Ok(keys)
}

/// Finds the detach keys in what is typed; what is not part of them goes on.
struct Detach {
    keys: Vec<u8>,
    /// How many of the keys were typed last, held back until they turn out
    /// not to be the detach sequence.
    matched: usize,
}

impl Detach {
    /// Appends to `out` what goes to the instance; true when the keys were typed.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = usize::from(b == self.keys[0]);
                if self.matched == 0 {
                    out.push(b);
                }
            }
            if self.matched == self.keys.len() {
                return true;
            }
        }
        false
    }
}

/// Raw mode, restored when dropped.
struct RawMode;

impl RawMode {
    fn enable() -> Result<Self> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| Error::os("cannot put the terminal in raw mode", e))?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// How the attach ended, as seen by the helper threads.
const RUNNING: i32 = 0;
const DETACHED: i32 = -1;

fn send(writer: &Mutex<UnixStream>, kind: u8, payload: &[u8]) -> io::Result<()> {
    let frame = frame::encode(kind, payload);
    writer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .write_all(&frame)
}

/// Attaches this terminal to `target`; returns the exit status.
pub fn attach(socket: &Path, target: &str, keys: Vec<u8>, keys_text: &str) -> Result<i32> {
    if !io::stdin().is_terminal() {
        return Err(Error::Control(
            "attach needs a terminal: its stdin is not one".to_string(),
        ));
    }
    let (cols, rows) = crossterm::terminal::size().unwrap_or((0, 0));
    let request = Request::Attach {
        target: target.to_string(),
        cols,
        rows,
    };
    let (stream, reply) = client::open(socket, &request)?;
    let hello = reply.message.unwrap_or_default();
    let name = hello.trim_start_matches("attached to ").to_string();
    eprint!("ganger: {hello}; {keys_text} detaches\r\n");
    let guard = RawMode::enable()?;
    let fail = |e: io::Error| Error::os("cannot use the control socket", e);
    let writer = Arc::new(Mutex::new(stream.try_clone().map_err(fail)?));
    let ended = Arc::new(AtomicI32::new(RUNNING));
    {
        let (writer, ended) = (Arc::clone(&writer), Arc::clone(&ended));
        let closer = stream.try_clone().map_err(fail)?;
        std::thread::Builder::new()
            .name("attach-keys".into())
            .spawn(move || forward_keys(keys, &writer, &ended, &closer))
            .map_err(|e| Error::os("cannot start the input thread", e))?;
    }
    {
        let (writer, ended) = (Arc::clone(&writer), Arc::clone(&ended));
        let closer = stream.try_clone().map_err(fail)?;
        let mut signals =
            signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT])
                .map_err(|e| Error::os("cannot install signal handlers", e))?;
        std::thread::Builder::new()
            .name("attach-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig == SIGWINCH {
                        if let Ok((cols, rows)) = crossterm::terminal::size() {
                            let _ = send(&writer, frame::WINDOW, &frame::window(cols, rows));
                        }
                        continue;
                    }
                    ended.store(sig, Ordering::SeqCst);
                    let _ = closer.shutdown(std::net::Shutdown::Both);
                    return;
                }
            })
            .map_err(|e| Error::os("cannot start the signal thread", e))?;
    }
    let reason = show_output(&stream);
    drop(guard);
    let how = ended.load(Ordering::SeqCst);
    match (reason, how) {
        (_, DETACHED) => {
            eprintln!("\nganger: detached from {name}");
            Ok(0)
        }
        (_, sig) if sig > 0 => Ok(128 + sig),
        (Some(reason), _) => {
            eprintln!("\nganger: {reason}");
            Ok(0)
        }
        (None, _) => Err(Error::Control(format!(
            "lost the connection to ganger while attached to {name}"
        ))),
    }
}

/// Shows the instance's output until the server ends the attach (the
/// reason) or the connection ends (`None`).
fn show_output(stream: &UnixStream) -> Option<String> {
    let mut reader = io::BufReader::new(stream);
    let mut out = io::stdout().lock();
    loop {
        match frame::read_blocking(&mut reader) {
            Ok(Some((frame::DATA, bytes))) => {
                if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                    return None;
                }
            }
            Ok(Some((frame::EXIT, why))) => {
                return Some(String::from_utf8_lossy(&why).into_owned());
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Sends what is typed to the instance, until the detach keys.
fn forward_keys(keys: Vec<u8>, writer: &Mutex<UnixStream>, ended: &AtomicI32, closer: &UnixStream) {
    let mut detach = Detach { keys, matched: 0 };
    let mut stdin = io::stdin();
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        out.clear();
        let detached = detach.feed(&buf[..n], &mut out);
        if !out.is_empty() && send(writer, frame::DATA, &out).is_err() {
            return;
        }
        if detached {
            let _ = ended.compare_exchange(RUNNING, DETACHED, Ordering::SeqCst, Ordering::SeqCst);
            let _ = closer.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("ctrl-]"), Ok(vec![0x1d]));
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok(vec![0x10, 0x11]));
        assert_eq!(parse_detach_keys("ctrl-X, q"), Ok(vec![0x18, b'q']));
        for bad in ["", "ctrl-", "ctrl-ab", "ctrl-1", "qq", "ctrl-],"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn detach_keys_are_found_and_the_rest_goes_on() {
        let feed = |keys: &[u8], chunks: &[&[u8]]| {
            let mut detach = Detach {
                keys: keys.to_vec(),
                matched: 0,
            };
            let mut out = Vec::new();
            let done = chunks.iter().any(|c| detach.feed(c, &mut out));
            (out, done)
        };
        assert_eq!(feed(&[0x1d], &[b"ab\x1dcd"]), (b"ab".to_vec(), true));
        assert_eq!(
            feed(&[0x10, 0x11], &[b"a\x10", b"\x11"]),
            (b"a".to_vec(), true)
        );
        // A first key not followed by the second is passed on after all.
        assert_eq!(
            feed(&[0x10, 0x11], &[b"\x10x\x10\x10"]),
            (b"\x10x\x10".to_vec(), false)
        );
        assert_eq!(
            feed(&[0x10, 0x11], &[b"\x10\x10\x11"]),
            (b"\x10".to_vec(), true)
        );
    }
}
