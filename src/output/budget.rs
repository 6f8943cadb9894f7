//! The one memory budget for output in flight, shared by every relay and by
//! ganger's own lines: read buffers, formatted chunks queued for the writer,
//! and the buffers kept for reuse.
//!
//! When stdout is slow or nobody reads it, relays wait here before they read
//! again, so their children block in `write` and ganger's memory stays the
//! same however many instances run. This module only counts and lends; the
//! writer gives back what it has written.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

/// KiB of formatted output that relays may have queued for the writer before
/// they wait. Once stdout's pipe is 1 MiB, more queued does not keep the writer
/// busier.
const OUTPUT_KIB: usize = 2 * 1024;

/// Relays that may hold a read buffer at once. A relay holds one only from a
/// read until that read's output is queued, which is immediate unless the
/// output budget is spent; so a few cover every busy relay, and idle ones hold
/// none.
const READERS: usize = 8;

/// Bytes of ganger's own lines that may be queued. They are queued without
/// waiting (the supervisor must not block on a stuck stdout), so past this they
/// are counted and dropped, and the count is reported once stdout moves again.
const SYSTEM_BYTES: usize = 64 * 1024;

/// Written output buffers kept for reuse: relays take them instead of
/// allocating (and page-faulting in) a fresh one per chunk.
const POOL_BUFFERS: usize = 8;
/// A written buffer larger than this is freed rather than kept.
const POOL_MAX_CAPACITY: usize = 512 * 1024;

/// What a queued chunk holds of the budget, given back once it is written.
#[derive(Debug, Clone, Copy)]
pub(super) enum Held {
    /// KiB permits of relay output.
    Output(u32),
    /// Bytes of ganger's own lines.
    System(usize),
}

pub(super) struct Budget {
    output: Semaphore,
    readers: Semaphore,
    /// Read buffers not lent out; never more than [`READERS`] exist.
    reads: Mutex<Vec<Vec<u8>>>,
    /// Emptied output buffers on their way back from the writer to the relays;
    /// locked once per chunk and once per written batch, never per line.
    written: Mutex<Vec<Vec<u8>>>,
    system_queued: AtomicUsize,
    system_dropped: AtomicUsize,
}

impl Budget {
    pub(super) fn new() -> Self {
        Budget {
            output: Semaphore::new(OUTPUT_KIB),
            readers: Semaphore::new(READERS),
            reads: Mutex::new(Vec::new()),
            written: Mutex::new(Vec::new()),
            system_queued: AtomicUsize::new(0),
            system_dropped: AtomicUsize::new(0),
        }
    }

    /// Lends a read buffer of `len` bytes, waiting while [`READERS`] are out.
    pub(super) async fn read_buffer(&self, len: usize) -> ReadBuffer<'_> {
        // The semaphore is never closed; should it be, reading unbudgeted
        // beats stopping the relay.
        let slot = self.readers.acquire().await.ok();
        let reused = self.reads.lock().ok().and_then(|mut reads| reads.pop());
        let mut buf = reused.unwrap_or_default();
        // Zeroed once, when first made: later reads overwrite what they use.
        buf.resize(len, 0);
        ReadBuffer {
            buf,
            budget: self,
            _slot: slot,
        }
    }

    /// An empty output buffer with room for at least `capacity` bytes, reused
    /// from output already written when there is one.
    pub(super) fn output_buffer(&self, capacity: usize) -> Vec<u8> {
        let reused = self.written.lock().ok().and_then(|mut pool| pool.pop());
        let mut buf = reused.unwrap_or_default();
        buf.reserve(capacity);
        buf
    }

    /// Waits until `len` bytes of relay output may be queued.
    pub(super) async fn output(&self, len: usize) -> Held {
        let permits = u32::try_from(len.div_ceil(1024).min(OUTPUT_KIB)).unwrap_or(1);
        if let Ok(p) = self.output.acquire_many(permits).await {
            p.forget();
        }
        Held::Output(permits)
    }

    /// Room for `len` bytes of ganger's own lines, if there is any.
    pub(super) fn system(&self, len: usize) -> Option<Held> {
        let queued = self.system_queued.fetch_add(len, Ordering::Relaxed);
        if queued + len > SYSTEM_BYTES {
            self.system_queued.fetch_sub(len, Ordering::Relaxed);
            return None;
        }
        Some(Held::System(len))
    }

    /// ganger's own lines dropped since the last one that was queued.
    pub(super) fn dropped(&self) -> usize {
        self.system_dropped.load(Ordering::Relaxed)
    }

    /// Counts one of ganger's own lines as dropped.
    pub(super) fn drop_line(&self) {
        self.system_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets `count` dropped lines, now that a line has said so.
    pub(super) fn reported(&self, count: usize) {
        self.system_dropped.fetch_sub(count, Ordering::Relaxed);
    }

    /// Gives back what written chunks held, and keeps their buffers for reuse.
    pub(super) fn release(&self, chunks: impl Iterator<Item = (Held, Vec<u8>)>) {
        let mut permits = 0;
        let mut pool = self.written.lock().ok();
        for (held, mut bytes) in chunks {
            match held {
                Held::Output(n) => permits += n as usize,
                Held::System(n) => {
                    self.system_queued.fetch_sub(n, Ordering::Relaxed);
                }
            }
            if let Some(pool) = pool.as_mut() {
                keep(pool, &mut bytes);
            }
        }
        drop(pool);
        self.output.add_permits(permits);
    }

    /// Keeps a buffer that holds no budget (one a log ring let go) for reuse.
    pub(super) fn recycle(&self, mut bytes: Vec<u8>) {
        if let Ok(mut pool) = self.written.lock() {
            keep(&mut pool, &mut bytes);
        }
    }
}

/// Puts `bytes` in the pool if it has room and the buffer is worth keeping.
fn keep(pool: &mut Vec<Vec<u8>>, bytes: &mut Vec<u8>) {
    if pool.len() < POOL_BUFFERS && (1..=POOL_MAX_CAPACITY).contains(&bytes.capacity()) {
        bytes.clear();
        pool.push(std::mem::take(bytes));
    }
}

/// A read buffer lent by the [`Budget`]; it goes back when dropped.
pub struct ReadBuffer<'a> {
    buf: Vec<u8>,
    budget: &'a Budget,
    _slot: Option<SemaphorePermit<'a>>,
}

impl Deref for ReadBuffer<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl DerefMut for ReadBuffer<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl Drop for ReadBuffer<'_> {
    /// Back to the pool before the slot is freed, so the next borrower finds it.
    fn drop(&mut self) {
        if let Ok(mut reads) = self.budget.reads.lock() {
            reads.push(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_buffers_are_lent_and_reused() {
        let budget = Budget::new();
        let first = budget.read_buffer(16).await;
        let address = first.as_ptr();
        drop(first);
        let again = budget.read_buffer(16).await;
        assert_eq!(again.as_ptr(), address);
        assert_eq!(again.len(), 16);
    }

    #[tokio::test]
    async fn no_more_than_readers_buffers_are_out() {
        let budget = Budget::new();
        let mut out = Vec::new();
        for _ in 0..READERS {
            out.push(budget.read_buffer(4).await);
        }
        assert_eq!(budget.readers.available_permits(), 0);
        drop(out.pop());
        assert_eq!(budget.readers.available_permits(), 1);
    }

    #[test]
    fn system_lines_past_their_allowance_are_refused() {
        let budget = Budget::new();
        let held = budget.system(SYSTEM_BYTES).expect("fits");
        assert!(budget.system(1).is_none());
        budget.release(std::iter::once((held, Vec::new())));
        assert!(budget.system(1).is_some());
    }
}
