//! The last lines of one instance's output, as they were relayed (prefix,
//! timestamp, color or JSON included), for `ganger logs`.
//!
//! A byte ring with the length of each line beside it: pushing a chunk is one
//! copy and one `memchr` pass, so the relay pays next to nothing. Both the
//! line count and the bytes are capped; the oldest lines go first. A line is
//! never longer than the relay's piece ([`crate::relay::MAX_PIECE`]) plus its
//! prefix, so a 3 MB line is kept as the pieces that fit.

use std::collections::VecDeque;

use tokio::sync::mpsc;

/// Bytes kept per instance, whatever the line count allows.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Chunks a follower (`logs -f`) may fall behind before it is let go.
pub const FOLLOW_QUEUE: usize = 64;

/// One instance's recent output.
#[derive(Debug)]
pub struct Ring {
    data: VecDeque<u8>,
    /// Length of each line in `data`, newline included, oldest first.
    lens: VecDeque<usize>,
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
            data: VecDeque::new(),
            lens: VecDeque::new(),
            max_lines,
            max_bytes,
            followers: Vec::new(),
        }
    }

    /// Adds a chunk of formatted lines (each ending in a newline; a missing
    /// last newline counts as one), dropping the oldest lines past the caps.
    pub fn push(&mut self, chunk: &[u8]) {
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
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', chunk) {
            self.lens.push_back(end + 1 - start);
            start = end + 1;
        }
        if start < chunk.len() {
            self.lens.push_back(chunk.len() - start);
        }
        self.data.extend(chunk);
        while self.lens.len() > self.max_lines || self.data.len() > self.max_bytes {
            let Some(len) = self.lens.pop_front() else {
                break;
            };
            self.data.drain(..len);
        }
    }

    /// The last `n` lines, oldest first.
    #[must_use]
    pub fn tail(&self, n: usize) -> Vec<u8> {
        let n = n.min(self.lens.len());
        let bytes: usize = self.lens.iter().rev().take(n).sum();
        self.data
            .range(self.data.len() - bytes..)
            .copied()
            .collect()
    }

    /// The last `n` lines, and from now on a copy of every chunk pushed on
    /// `follower`: taken together, so that no line is missed or seen twice.
    pub fn tail_and_follow(&mut self, n: usize, follower: mpsc::Sender<Vec<u8>>) -> Vec<u8> {
        self.followers.push(follower);
        self.tail(n)
    }

    /// Lines held now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Whether no line is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Bytes held now.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(from: usize, to: usize) -> Vec<u8> {
        (from..to)
            .flat_map(|i| format!("l{i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn keeps_the_last_lines_up_to_the_line_cap() {
        let mut ring = Ring::new(5, MAX_BYTES);
        ring.push(&lines(0, 3));
        ring.push(&lines(3, 9));
        assert_eq!(ring.len(), 5);
        assert_eq!(ring.tail(2), lines(7, 9));
        assert_eq!(ring.tail(100), lines(4, 9));
        assert_eq!(ring.tail(0), b"");
    }

    #[test]
    fn the_byte_cap_drops_old_lines_and_a_long_line_keeps_what_fits() {
        let mut ring = Ring::new(1000, 100);
        ring.push(&lines(0, 50));
        assert!(ring.bytes() <= 100);
        assert!(ring.tail(1000).ends_with(b"l49\n"));
        // A line longer than the cap is not kept whole: nothing of it stays.
        let mut long = vec![b'x'; 300];
        long.push(b'\n');
        ring.push(&long);
        assert_eq!(ring.bytes(), 0);
        ring.push(b"after\n");
        assert_eq!(ring.tail(5), b"after\n");
    }

    #[test]
    fn no_lines_kept_when_the_cap_is_zero() {
        let mut ring = Ring::new(0, MAX_BYTES);
        ring.push(&lines(0, 3));
        assert!(ring.is_empty());
    }

    #[test]
    fn a_follower_gets_what_comes_after_its_tail_and_a_slow_one_is_let_go() {
        let mut ring = Ring::new(10, MAX_BYTES);
        ring.push(&lines(0, 3));
        let (tx, mut rx) = mpsc::channel(2);
        assert_eq!(ring.tail_and_follow(1, tx), lines(2, 3));
        ring.push(b"new\n");
        assert_eq!(rx.try_recv().ok(), Some(b"new\n".to_vec()));
        for _ in 0..3 {
            ring.push(b"more\n");
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
