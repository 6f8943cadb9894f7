//! One pipe in, framed lines out: the hot path.
//!
//! Each relay reads its pipe in large chunks into a buffer lent by the shared
//! output budget, finds newlines with memchr, and formats the complete lines of
//! a chunk into buffers handed to the writer at once. A line longer than
//! [`MAX_PIECE`] is cut into pieces at character boundaries, none lost; a final
//! line without a newline is still relayed at end of file. A relay never
//! decides anything: it reports end of output to the supervisor and stops.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;

use crate::output::{LineFormat, Sink};

/// Bytes asked of the pipe per read.
const READ_SIZE: usize = 128 * 1024;
/// A line longer than this is relayed in pieces of at most this size.
pub const MAX_PIECE: usize = 64 * 1024;
/// Formatted output is handed to the writer in chunks of about this size, so
/// that a read of many short lines (each line gains a prefix) stays bounded.
const OUT_CHUNK: usize = 256 * 1024;

/// A readiness pattern (`ready = { log = "..." }`) the relay looks for in the
/// lines it relays, until the first match.
pub struct LogWatch {
    /// The pattern, matched against one line.
    pattern: regex::bytes::Regex,
    /// The same pattern in multi-line mode, for a first look at a whole chunk.
    chunk: regex::bytes::Regex,
    /// Called once, on the first matching line.
    matched: Box<dyn FnOnce() + Send>,
}

impl LogWatch {
    /// A watch for `pattern` (checked when the settings were read); `None`
    /// if it does not compile as a byte pattern.
    #[must_use]
    pub fn new(pattern: &str, matched: Box<dyn FnOnce() + Send>) -> Option<Self> {
        Some(LogWatch {
            pattern: regex::bytes::Regex::new(pattern).ok()?,
            chunk: regex::bytes::RegexBuilder::new(pattern)
                .multi_line(true)
                .build()
                .ok()?,
            matched,
        })
    }

    /// Looks at every complete line of `data` (the unfinished rest is seen
    /// when it is complete); returns whether the watch is done.
    fn looks_at(&self, data: &[u8]) -> bool {
        let end = memchr::memrchr(b'\n', data).map_or(0, |i| i + 1);
        let lines = &data[..end];
        // One search over the whole chunk (the pattern is multi-line, so `^`
        // and `$` hold at line ends) instead of one per line: a pattern that
        // never matches then costs one fast scan per read.
        if !self.chunk.is_match(lines) {
            return false;
        }
        // A match may span lines (`\s` matches a newline): confirm per line.
        lines.split(|&b| b == b'\n').any(|line| {
            self.pattern
                .is_match(line.strip_suffix(b"\r").unwrap_or(line))
        })
    }
}

/// Relays `fd` until end of file (or a read error, e.g. EIO from a pty), then
/// sends `id` on `closed`.
pub async fn relay(
    fd: OwnedFd,
    mut format: LineFormat,
    sink: Sink,
    id: usize,
    closed: UnboundedSender<usize>,
    watch: Option<LogWatch>,
) {
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the
    // same for the AsyncFd's whole life.
    match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
        Ok(fd) => {
            read_lines(&fd, &mut format, &sink, watch).await;
            crate::pipes::release(fd.get_ref());
        }
        Err(failed) => crate::pipes::release(&failed.into_parts().0),
    }
    let _ = closed.send(id);
}

async fn read_lines(
    fd: &AsyncFd<OwnedFd>,
    format: &mut LineFormat,
    sink: &Sink,
    mut watch: Option<LogWatch>,
) {
    // The start of a line whose newline has not come yet (shorter than
    // MAX_PIECE), kept between reads while the read buffer goes back to the pool.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let Ok(mut guard) = fd.readable().await else {
            break;
        };
        // Waits here while the output budget is spent: the pipe is not read,
        // so the child blocks in write and nothing piles up in ganger.
        let mut buf = sink.read_buffer(READ_SIZE + MAX_PIECE).await;
        buf[..pending.len()].copy_from_slice(&pending);
        // At least READ_SIZE, and more when no line was pending.
        let read =
            guard.try_io(|inner| read_fd(inner.get_ref().as_raw_fd(), &mut buf[pending.len()..]));
        let n = match read {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(Err(_)) => break,
            Err(_would_block) => continue,
        };
        let filled = pending.len() + n;
        // Off the hot path once matched: only a type waiting on a pattern pays.
        if watch.as_ref().is_some_and(|w| w.looks_at(&buf[..filled]))
            && let Some(done) = watch.take()
        {
            (done.matched)();
        }
        format.refresh();
        let mut used = 0;
        loop {
            let left = filled - used;
            let mut out = sink.buffer((left + left / 4 + 128).min(OUT_CHUNK + 4096));
            let (consumed, full) = frame(&buf[used..filled], format, &mut out, OUT_CHUNK);
            used += consumed;
            sink.send(out).await;
            if !full {
                break;
            }
        }
        pending.clear();
        pending.extend_from_slice(&buf[used..filled]);
        // One long partial line must not keep 64 KiB per instance for good.
        if pending.capacity() > 4096 && pending.len() <= 1024 {
            pending.shrink_to(1024);
        }
    }
    if !pending.is_empty() {
        pending.push(b'\n');
        if watch.as_ref().is_some_and(|w| w.looks_at(&pending))
            && let Some(done) = watch.take()
        {
            (done.matched)();
        }
        pending.pop();
        format.refresh();
        let mut out = sink.buffer(pending.len() + 128);
        format.push(&mut out, &pending);
        sink.send(out).await;
    }
}

fn read_fd(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid writable slice for its whole length.
    let n = unsafe { nix::libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Formats complete lines of `data` into `out`, and any run of [`MAX_PIECE`]
/// bytes without a newline as a piece, until `out` holds `limit` bytes or
/// more. Returns how many bytes were used, and whether it stopped for the
/// limit (whole lines may follow); otherwise the rest is the start of an
/// unfinished line, shorter than [`MAX_PIECE`].
pub fn frame(data: &[u8], format: &LineFormat, out: &mut Vec<u8>, limit: usize) -> (usize, bool) {
    frame_pieces(data, format, out, limit, MAX_PIECE)
}

fn frame_pieces(
    data: &[u8],
    format: &LineFormat,
    out: &mut Vec<u8>,
    limit: usize,
    piece: usize,
) -> (usize, bool) {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        let mut line_start = start;
        while end - line_start > piece {
            let cut = piece_end(&data[..end], line_start, piece);
            format.push(out, &data[line_start..cut]);
            line_start = cut;
        }
        format.push(out, &data[line_start..end]);
        start = end + 1;
        if out.len() >= limit {
            return (start, true);
        }
    }
    while data.len() - start >= piece {
        let cut = piece_end(data, start, piece);
        format.push(out, &data[start..cut]);
        start = cut;
        if out.len() >= limit {
            return (start, true);
        }
    }
    (start, false)
}

/// Where a piece of at most `piece` bytes from `start` ends: before a UTF-8
/// character the cut would split, so that each piece of valid text is valid
/// text (a JSON line never gains U+FFFD). Bytes that are not UTF-8 are cut
/// where they fall. `data` holds at least `start + piece` bytes.
fn piece_end(data: &[u8], start: usize, piece: usize) -> usize {
    let cut = start + piece;
    // The last byte that starts a character, at most three back (a character
    // is at most four bytes).
    let lead = (cut.saturating_sub(3).max(start + 1)..cut)
        .rev()
        .find(|&i| data[i] & 0b1100_0000 != 0b1000_0000);
    if let Some(lead) = lead {
        let width = match data[lead] {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        if lead + width > cut {
            return lead;
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Stream, Style};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn fmt(json: bool) -> LineFormat {
        let style = Arc::new(Style::with(false, false, json, 1));
        let mut f = LineFormat::new(style, "a", Some(0), Stream::Stdout);
        f.refresh();
        f
    }

    #[test]
    fn frames_complete_lines_and_keeps_the_rest() {
        let mut out = Vec::new();
        let used = frame(b"one\ntwo\n\nthr", &fmt(false), &mut out, usize::MAX);
        assert_eq!(used, (9, false));
        assert_eq!(out, b"a | one\na | two\na | \n");
    }

    #[test]
    fn output_stops_at_the_limit_and_resumes() {
        let data = b"one\ntwo\nthree\nfou";
        let mut out = Vec::new();
        let (used, full) = frame(data, &fmt(false), &mut out, 8);
        assert_eq!((used, full), (4, true));
        assert_eq!(out, b"a | one\n");
        let (more, full) = frame(&data[used..], &fmt(false), &mut out, usize::MAX);
        assert_eq!((used + more, full), (data.len() - 3, false));
        assert_eq!(out, b"a | one\na | two\na | three\n");
    }

    #[test]
    fn long_lines_are_cut_into_pieces_with_nothing_lost() {
        let mut data = vec![b'x'; MAX_PIECE * 2 + 10];
        data.push(b'\n');
        data.resize(data.len() + MAX_PIECE + 3, b'y');
        let mut out = Vec::new();
        let (used, _) = frame(&data, &fmt(false), &mut out, usize::MAX);
        assert_eq!(used, data.len() - 3);
        let text = String::from_utf8(out).expect("ascii");
        let pieces: Vec<&str> = text.lines().map(|l| &l["a | ".len()..]).collect();
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces[..3].concat().len(), MAX_PIECE * 2 + 10);
        assert_eq!(pieces[3].len(), MAX_PIECE);
    }

    /// The `line` of every JSON object in `out`, joined.
    fn json_text(out: &[u8]) -> String {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).expect("json");
                v["line"].as_str().expect("line").to_string()
            })
            .collect()
    }

    #[test]
    fn a_long_line_of_wide_characters_keeps_every_character() {
        let line = "日".repeat(100_000);
        let mut data = line.clone().into_bytes();
        data.push(b'\n');
        let mut out = Vec::new();
        let (used, _) = frame(&data, &fmt(true), &mut out, usize::MAX);
        assert_eq!(used, data.len());
        let text = json_text(&out);
        assert!(!text.contains(char::REPLACEMENT_CHARACTER));
        assert_eq!(text, line);
    }

    proptest! {
        #[test]
        fn valid_utf8_never_gains_a_replacement_character(
            text in "[a\u{e9}\u{65e5}\u{1f600}]{0,80}",
            piece in 4usize..12,
            newline in proptest::option::of(0usize..80),
        ) {
            let mut data = text.clone().into_bytes();
            if let Some(at) = newline {
                // A newline at a character boundary near `at`.
                let at = (0..=at.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                data.insert(at, b'\n');
            }
            data.push(b'\n');
            let mut out = Vec::new();
            let (used, full) = frame_pieces(&data, &fmt(true), &mut out, usize::MAX, piece);
            prop_assert_eq!((used, full), (data.len(), false));
            let joined = json_text(&out);
            prop_assert!(!joined.contains(char::REPLACEMENT_CHARACTER), "a replacement character");
            prop_assert_eq!(joined, text);
        }

        #[test]
        fn pieces_are_never_longer_than_asked(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            piece in 4usize..12,
        ) {
            let mut out = Vec::new();
            let (used, _) = frame_pieces(&data, &fmt(false), &mut out, usize::MAX, piece);
            prop_assert!(data.len() - used < piece);
            let mut relayed = Vec::new();
            for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                prop_assert!(line.len() - "a | ".len() <= piece);
                relayed.extend_from_slice(&line["a | ".len()..]);
            }
            let expected: Vec<u8> = data[..used].iter().copied().filter(|&b| b != b'\n').collect();
            prop_assert_eq!(relayed, expected);
        }
    }
}
