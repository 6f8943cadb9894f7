//! One pipe in, framed lines out: the hot path.
//!
//! Each relay reads its pipe in large chunks, finds newlines with memchr, and
//! formats every complete line of a chunk into one buffer handed to the writer
//! at once. A line longer than [`MAX_PIECE`] is cut into pieces, none lost; a
//! final line without a newline is still relayed at end of file. A relay never
//! decides anything: it reports end of output to the supervisor and stops.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;

use crate::output::{LineFormat, Sink};

/// Bytes asked of the pipe per read.
const READ_SIZE: usize = 128 * 1024;
/// A line longer than this is relayed in pieces of this size.
pub const MAX_PIECE: usize = 64 * 1024;

/// Relays `fd` until end of file (or a read error, e.g. EIO from a pty), then
/// sends `id` on `closed`.
pub async fn relay(
    fd: OwnedFd,
    mut format: LineFormat,
    sink: Sink,
    id: usize,
    closed: UnboundedSender<usize>,
) {
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the
    // same for the AsyncFd's whole life.
    if let Ok(fd) = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
        read_lines(&fd, &mut format, &sink).await;
    }
    let _ = closed.send(id);
}

async fn read_lines(fd: &AsyncFd<OwnedFd>, format: &mut LineFormat, sink: &Sink) {
    let mut buf = vec![0u8; READ_SIZE + MAX_PIECE];
    // buf[..pending] holds the start of a line whose newline has not come yet.
    let mut pending = 0usize;
    loop {
        let Ok(mut guard) = fd.readable().await else {
            break;
        };
        let read = guard.try_io(|inner| {
            let n = read_fd(inner.get_ref().as_raw_fd(), &mut buf[pending..])?;
            Ok(n)
        });
        let n = match read {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(Err(_)) => break,
            Err(_would_block) => continue,
        };
        let filled = pending + n;
        format.refresh();
        let mut out = sink.buffer(filled + filled / 4 + 128);
        let consumed = frame(&buf[..filled], format, &mut out);
        buf.copy_within(consumed..filled, 0);
        pending = filled - consumed;
        sink.send(out).await;
    }
    if pending > 0 {
        format.refresh();
        let mut out = sink.buffer(pending + 128);
        format.push(&mut out, &buf[..pending]);
        sink.send(out).await;
    }
}

fn read_fd(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid writable slice for its whole length.
    let n = unsafe { nix::libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Formats every complete line of `data` into `out`, and any run of
/// [`MAX_PIECE`] bytes without a newline as a piece. Returns how many bytes were
/// used; the rest is the start of an unfinished line.
pub fn frame(data: &[u8], format: &LineFormat, out: &mut Vec<u8>) -> usize {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        let mut line_start = start;
        while end - line_start > MAX_PIECE {
            format.push(out, &data[line_start..line_start + MAX_PIECE]);
            line_start += MAX_PIECE;
        }
        format.push(out, &data[line_start..end]);
        start = end + 1;
    }
    while data.len() - start >= MAX_PIECE {
        format.push(out, &data[start..start + MAX_PIECE]);
        start += MAX_PIECE;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Stream, Style};
    use std::sync::Arc;

    fn fmt() -> LineFormat {
        let style = Arc::new(Style::with(false, false, false, 1));
        let mut f = LineFormat::new(style, "a", Some(0), Stream::Stdout);
        f.refresh();
        f
    }

    #[test]
    fn frames_complete_lines_and_keeps_the_rest() {
        let mut out = Vec::new();
        let used = frame(b"one\ntwo\n\nthr", &fmt(), &mut out);
        assert_eq!(used, 9);
        assert_eq!(out, b"a | one\na | two\na | \n");
    }

    #[test]
    fn long_lines_are_cut_into_pieces_with_nothing_lost() {
        let mut data = vec![b'x'; MAX_PIECE * 2 + 10];
        data.push(b'\n');
        data.resize(data.len() + MAX_PIECE + 3, b'y');
        let mut out = Vec::new();
        let used = frame(&data, &fmt(), &mut out);
        assert_eq!(used, data.len() - 3);
        let text = String::from_utf8(out).expect("ascii");
        let pieces: Vec<&str> = text.lines().map(|l| &l["a | ".len()..]).collect();
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces[..3].concat().len(), MAX_PIECE * 2 + 10);
        assert_eq!(pieces[3].len(), MAX_PIECE);
    }
}
