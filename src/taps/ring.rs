//! The last lines of one instance's output, as they were relayed (prefix,
//! timestamp, color or JSON included), for `ganger logs`.
//!
//! The ring keeps the relay's formatted chunks themselves, shared with the
//! writer rather than copied: pushing one costs a reference and a lock (the
//! relay counted its lines while framing them), and a chunk dropped from the front gives its buffer back
//! for reuse. A short chunk in a large buffer is copied instead, so that the
//! buffers kept stay near the bytes they hold. Both the lines and the bytes
//! are capped; whole chunks go first, oldest first, and [`Ring::tail`] never
//! gives more than the line cap. A line is never longer than the relay's piece
//! (the relay's `MAX_PIECE`) plus its prefix, so a 3 MB line is kept as
//! the pieces that fit.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;

/// Bytes kept per instance, whatever the line count allows.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Chunks a follower (`logs -f`) may fall behind before it is let go.
pub const FOLLOW_QUEUE: usize = 64;

/// One instance's recent output.
#[derive(Debug)]
pub struct Ring {
    /// Chunks of whole lines, each ending in a newline, oldest first, with
    /// the number of lines in each.
    chunks: VecDeque<(Arc<Vec<u8>>, usize)>,
    lines: usize,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
    /// `logs -f` clients: each gets a copy of every chunk pushed.
    followers: Vec<mpsc::Sender<Vec<u8>>>,
}

impl Ring {
    /// An empty ring keeping at most `max_lines` lines and `max_bytes` bytes.
    #[must_use]
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        Ring {
            chunks: VecDeque::new(),
            lines: 0,
            bytes: 0,
            max_lines,
            max_bytes,
            followers: Vec::new(),
        }
    }

    /// Adds a chunk of `lines` formatted lines (each ending in a newline; a
    /// missing last newline is added), dropping the oldest chunks past the
    /// caps; `recycle` gets the buffers of dropped chunks nobody else holds.
    /// The relay counted the lines as it framed them: no second pass here.
    pub fn push(&mut self, chunk: &Arc<Vec<u8>>, lines: usize, mut recycle: impl FnMut(Vec<u8>)) {
        if chunk.is_empty() {
            return;
        }
        if !self.followers.is_empty() {
            // A follower that cannot keep up is let go rather than waited for.
            self.followers
                .retain(|tx| tx.try_send(chunk.to_vec()).is_ok());
        }
        if self.max_lines == 0 {
            return;
        }
        let complete = chunk.ends_with(b"\n");
        let kept = if complete && chunk.capacity() <= 2 * chunk.len() + 4096 {
            Arc::clone(chunk)
        } else {
            let mut copy = Vec::with_capacity(chunk.len() + 1);
            copy.extend_from_slice(chunk);
            if !complete {
                copy.push(b'\n');
            }
            Arc::new(copy)
        };
        self.lines += lines;
        self.bytes += kept.len();
        self.chunks.push_back((kept, lines));
        while let Some((front, front_lines)) = self.chunks.front() {
            let spare_lines = self.lines - front_lines >= self.max_lines;
            if !spare_lines && self.bytes <= self.max_bytes {
                break;
            }
            self.lines -= front_lines;
            self.bytes -= front.len();
            if let Some((front, _)) = self.chunks.pop_front()
                && let Ok(buffer) = Arc::try_unwrap(front)
            {
                recycle(buffer);
            }
        }
    }

    /// The last `n` lines (at most the line cap), oldest first.
    #[must_use]
    pub fn tail(&self, n: usize) -> Vec<u8> {
        let mut need = n.min(self.len());
        let mut parts: Vec<&[u8]> = Vec::new();
        for (chunk, lines) in self.chunks.iter().rev() {
            if need == 0 {
                break;
            }
            if *lines <= need {
                parts.push(chunk);
                need -= lines;
            } else {
                // Every line ends in a newline: the one before the last
                // `need` lines starts them.
                let body = &chunk[..chunk.len() - 1];
                let start = memchr::memrchr_iter(b'\n', body)
                    .nth(need - 1)
                    .map_or(0, |at| at + 1);
                parts.push(&chunk[start..]);
                need = 0;
            }
        }
        parts.reverse();
        parts.concat()
    }

    /// The last `n` lines, and from now on a copy of every chunk pushed on
    /// `follower`: taken together, so that no line is missed or seen twice.
    pub fn tail_and_follow(&mut self, n: usize, follower: mpsc::Sender<Vec<u8>>) -> Vec<u8> {
        self.followers.push(follower);
        self.tail(n)
    }

    /// Lines that can be asked for now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lines.min(self.max_lines)
    }

    /// Whether no line is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held now.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(from: usize, to: usize) -> Arc<Vec<u8>> {
        Arc::new(
            (from..to)
                .flat_map(|i| format!("l{i}\n").into_bytes())
                .collect(),
        )
    }

    fn push(ring: &mut Ring, chunk: &Arc<Vec<u8>>) -> usize {
        let lines = chunk.split(|&b| b == b'\n').count() - usize::from(chunk.ends_with(b"\n"));
        let mut recycled = 0;
        ring.push(chunk, lines, |_| recycled += 1);
        recycled
    }

    #[test]
    fn keeps_the_last_lines_up_to_the_line_cap() {
        let mut ring = Ring::new(5, MAX_BYTES);
        push(&mut ring, &lines(0, 3));
        push(&mut ring, &lines(3, 9));
        assert_eq!(ring.len(), 5);
        assert_eq!(ring.tail(2), *lines(7, 9));
        assert_eq!(ring.tail(100), *lines(4, 9));
        assert_eq!(ring.tail(0), b"");
        push(&mut ring, &Arc::new(b"no newline".to_vec()));
        assert_eq!(ring.tail(2), b"l8\nno newline\n");
        // Many one-line chunks: still the last five.
        for i in 10..30 {
            push(&mut ring, &lines(i, i + 1));
        }
        assert_eq!(ring.tail(100), *lines(25, 30));
    }

    #[test]
    fn the_byte_cap_drops_old_chunks_and_a_huge_one_is_not_kept() {
        let mut ring = Ring::new(1000, 100);
        for i in 0..50 {
            push(&mut ring, &lines(i, i + 1));
        }
        assert!(ring.bytes() <= 100);
        assert!(ring.tail(1000).ends_with(b"l49\n"));
        let mut long = vec![b'x'; 300];
        long.push(b'\n');
        push(&mut ring, &Arc::new(long));
        assert_eq!(ring.bytes(), 0);
        push(&mut ring, &Arc::new(b"after\n".to_vec()));
        assert_eq!(ring.tail(5), b"after\n");
    }

    #[test]
    fn chunks_are_shared_not_copied_and_their_buffers_come_back() {
        let mut ring = Ring::new(2, MAX_BYTES);
        let first = lines(0, 2);
        push(&mut ring, &first);
        assert_eq!(Arc::strong_count(&first), 2);
        drop(first);
        // Dropping the first chunk hands its buffer back: nobody else has it.
        assert_eq!(push(&mut ring, &lines(2, 4)), 1);
        // A short chunk in a large buffer is kept as a copy.
        let mut roomy = Vec::with_capacity(64 * 1024);
        roomy.extend_from_slice(b"short\n");
        let roomy = Arc::new(roomy);
        push(&mut ring, &roomy);
        assert_eq!(Arc::strong_count(&roomy), 1);
        assert_eq!(ring.tail(2), b"l3\nshort\n");
    }

    #[test]
    fn no_lines_kept_when_the_cap_is_zero() {
        let mut ring = Ring::new(0, MAX_BYTES);
        push(&mut ring, &lines(0, 3));
        assert!(ring.is_empty());
        assert_eq!(ring.bytes(), 0);
    }

    #[test]
    fn a_follower_gets_what_comes_after_its_tail_and_a_slow_one_is_let_go() {
        let mut ring = Ring::new(10, MAX_BYTES);
        push(&mut ring, &lines(0, 3));
        let (tx, mut rx) = mpsc::channel(2);
        assert_eq!(ring.tail_and_follow(1, tx), *lines(2, 3));
        push(&mut ring, &Arc::new(b"new\n".to_vec()));
        assert_eq!(rx.try_recv().ok(), Some(b"new\n".to_vec()));
        for _ in 0..3 {
            push(&mut ring, &Arc::new(b"more\n".to_vec()));
        }
        assert_eq!(rx.try_recv().ok(), Some(b"more\n".to_vec()));
        assert_eq!(rx.try_recv().ok(), Some(b"more\n".to_vec()));
        // The third did not fit: the sender was dropped.
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
