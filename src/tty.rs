//! Terminal mode (`--tty`): a pseudo-terminal per instance, its window size, and
//! turning what a terminal program writes back into plain log lines.
//!
//! Under a pty, programs line-buffer and color their output as they would in a
//! terminal. The relay reads the master like a pipe (EIO after the child exits is
//! the end); lines pass through [`clean_line`], which undoes the terminal's
//! `\r\n` and carriage-return redraws, and strips escape sequences when ganger's
//! own color is off.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::libc;
use nix::pty::{Winsize, openpty};

/// A window size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

/// The size children get when ganger itself has no terminal.
pub const DEFAULT: Size = Size { cols: 80, rows: 24 };

fn winsize(size: Size) -> Winsize {
    Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Opens a pty of `size`: the master (non-blocking) for the relay, the slave for
/// the child. Both are close-on-exec, so no other child inherits them.
pub fn open(size: Size) -> io::Result<(OwnedFd, OwnedFd)> {
    let pty = openpty(Some(&winsize(size)), None)?;
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    fcntl(&pty.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((pty.master, pty.slave))
}

/// Sets a pty's window size; the kernel sends SIGWINCH to its foreground group.
pub fn resize(master: &OwnedFd, size: Size) {
    let ws = winsize(size);
    // SAFETY: TIOCSWINSZ reads a valid winsize from the pointer.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &raw const ws) };
}

/// The window size for children: ganger's terminal less the prefix column
/// (`prefix` cells), or [`DEFAULT`] when ganger's stdout is not a terminal.
#[must_use]
pub fn child_size(prefix: usize) -> Size {
    let mut ws = winsize(DEFAULT);
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer; failure leaves it.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &raw mut ws) } == 0;
    if !ok || ws.ws_col == 0 {
        return DEFAULT;
    }
    let prefix = u16::try_from(prefix).unwrap_or(u16::MAX);
    Size {
        cols: ws.ws_col.saturating_sub(prefix).max(20),
        rows: if ws.ws_row == 0 {
            DEFAULT.rows
        } else {
            ws.ws_row
        },
    }
}

/// Appends to `out` what a terminal would leave of `line`: the text after the
/// last carriage return (a redraw such as a progress bar, or the `\r` of
/// `\r\n`), without escape sequences when `strip` is set.
pub fn clean_line(line: &[u8], strip: bool, out: &mut Vec<u8>) {
    let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
    let trimmed = &line[..end];
    let shown = match memchr::memrchr(b'\r', trimmed) {
        Some(at) => &trimmed[at + 1..],
        None => trimmed,
    };
    if strip {
        strip_escapes(shown, out);
    } else {
        out.extend_from_slice(shown);
    }
}

/// Copies `bytes` without ANSI escape sequences (CSI `ESC [ ... final`, OSC
/// `ESC ] ... BEL|ESC \`, and `ESC intermediates final`).
fn strip_escapes(bytes: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            let next = memchr::memchr(0x1b, &bytes[i..]).map_or(bytes.len(), |n| i + n);
            out.extend_from_slice(&bytes[i..next]);
            i = next;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'[') => {
                // Parameters and intermediates, then one final byte in 0x40..=0x7e.
                let mut j = i + 2;
                while j < bytes.len() && !(0x40..=0x7e).contains(&bytes[j]) {
                    j += 1;
                }
                i = j + 1;
            }
            Some(b']') => {
                let mut j = i + 2;
                while j < bytes.len() {
                    if bytes[j] == 0x07 {
                        j += 1;
                        break;
                    }
                    if bytes[j] == 0x1b && bytes.get(j + 1) == Some(&b'\\') {
                        j += 2;
                        break;
                    }
                    j += 1;
                }
                i = j;
            }
            Some(_) => {
                // ESC, intermediates (0x20..=0x2f), one final byte: `ESC ( B`, `ESC 7`.
                let mut j = i + 1;
                while j < bytes.len() && (0x20..=0x2f).contains(&bytes[j]) {
                    j += 1;
                }
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(line: &[u8], strip: bool) -> Vec<u8> {
        let mut out = Vec::new();
        clean_line(line, strip, &mut out);
        out
    }

    #[test]
    fn carriage_returns_leave_what_a_terminal_shows() {
        assert_eq!(clean(b"hello\r", false), b"hello");
        assert_eq!(
            clean(b"crlf through onlcr\r\r", false),
            b"crlf through onlcr"
        );
        assert_eq!(clean(b"\r", false), b"");
        assert_eq!(clean(b"10%\r50%\r100%\r", false), b"100%");
        assert_eq!(clean(b"plain", false), b"plain");
    }

    #[test]
    fn escapes_are_kept_or_stripped() {
        let colored = b"\x1b[1;31merror\x1b[0m: \x1b]0;title\x07x\x1b(By";
        assert_eq!(clean(colored, false), colored);
        assert_eq!(clean(colored, true), b"error: xy");
        assert_eq!(clean(b"cut \x1b[", true), b"cut ");
    }

    #[test]
    fn a_pty_has_the_size_asked_for() {
        let (master, slave) = open(Size { cols: 91, rows: 13 }).expect("openpty");
        let mut ws = winsize(DEFAULT);
        // SAFETY: as in child_size.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &raw mut ws) };
        assert_eq!((ws.ws_col, ws.ws_row), (91, 13));
        resize(&master, Size { cols: 40, rows: 10 });
        // SAFETY: as above.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &raw mut ws) };
        assert_eq!((ws.ws_col, ws.ws_row), (40, 10));
    }
}
