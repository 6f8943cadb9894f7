//! The one thread that writes ganger's stdout, and the [`Sink`] that relays and
//! the supervisor hand it whole formatted lines through.
//!
//! The writer batches queued chunks into one `writev`, gives their budget back
//! once written, and reports the first write error once; after that it
//! discards output, so that relays keep draining the children while the app
//! stops.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::budget::{Budget, Held, ReadBuffer};
use super::style::LineFormat;

/// Buffer size asked for when stdout is a pipe.
const STDOUT_PIPE_SIZE: i32 = 1024 * 1024;

/// A chunk of whole formatted lines, with the budget it holds. Shared, so
/// that an instance's log ring can keep it without a copy.
struct Chunk {
    bytes: Arc<Vec<u8>>,
    held: Held,
}

/// Where formatted output goes; cheap to clone.
#[derive(Clone)]
pub struct Sink {
    tx: UnboundedSender<Chunk>,
    budget: Arc<Budget>,
}

impl Sink {
    /// An empty buffer with room for at least `capacity` bytes, reused from
    /// output already written when there is one.
    #[must_use]
    pub fn buffer(&self, capacity: usize) -> Vec<u8> {
        self.budget.output_buffer(capacity)
    }

    /// A read buffer of `len` bytes from the shared pool, waiting while all
    /// are lent out (they come back as soon as their output is queued).
    pub async fn read_buffer(&self, len: usize) -> ReadBuffer<'_> {
        self.budget.read_buffer(len).await
    }

    /// Queues relayed output, waiting while the writer is too far behind.
    pub async fn send(&self, bytes: Vec<u8>) {
        self.send_shared(Arc::new(bytes)).await;
    }

    /// As [`Sink::send`], for a chunk something else keeps too (a log ring);
    /// its buffer is reused by whichever lets go of it last.
    pub async fn send_shared(&self, bytes: Arc<Vec<u8>>) {
        if bytes.is_empty() {
            return;
        }
        let held = self.budget.output(bytes.len()).await;
        let _ = self.tx.send(Chunk { bytes, held });
    }

    /// Gives a buffer no longer needed back for reuse.
    pub fn recycle(&self, bytes: Vec<u8>) {
        self.budget.recycle(bytes);
    }

    /// Queues one of ganger's own lines without waiting. While stdout is stuck
    /// they have a small allowance of their own; past it a line is dropped,
    /// and the next line that fits says how many were.
    pub fn say(&self, format: &mut LineFormat, message: &str) {
        format.refresh();
        let dropped = self.budget.dropped();
        let mut bytes = Vec::with_capacity(message.len() + 160);
        if dropped > 0 {
            let note = format!(
                "{dropped} of ganger's own lines were dropped while stdout was not being read"
            );
            format.push(&mut bytes, note.as_bytes());
        }
        format.push(&mut bytes, message.as_bytes());
        match self.budget.system(bytes.len()) {
            Some(held) => {
                self.budget.reported(dropped);
                let _ = self.tx.send(Chunk {
                    bytes: Arc::new(bytes),
                    held,
                });
            }
            None => self.budget.drop_line(),
        }
    }
}

/// The writer thread's report that stdout failed (EPIPE, EIO, ENOSPC...).
pub type WriteFailed = io::Error;

/// The status ganger exits with when its stdout failed: a reader that went
/// away (EPIPE, `ganger start | head`) stops the app as SIGTERM would, 143;
/// any other error (a full disk, EIO) is a failure, 1, and the writer has said
/// why on stderr.
#[must_use]
pub fn failure_status(error: &WriteFailed) -> i32 {
    if error.kind() == io::ErrorKind::BrokenPipe {
        128 + nix::libc::SIGTERM
    } else {
        1
    }
}

/// Starts the writer thread; it ends when every [`Sink`] is dropped. A write
/// error is reported once on `failed`, after which output is discarded so that
/// relays keep draining the children.
pub fn start_writer(failed: UnboundedSender<WriteFailed>) -> io::Result<(Sink, Writer)> {
    let (tx, rx) = unbounded_channel();
    let budget = Arc::new(Budget::new());
    let thread_budget = Arc::clone(&budget);
    let written = Arc::new(AtomicU64::new(0));
    let thread_written = Arc::clone(&written);
    let handle = std::thread::Builder::new()
        .name("ganger-stdout".into())
        .spawn(move || write_loop(rx, &thread_budget, &failed, &thread_written))?;
    Ok((Sink { tx, budget }, Writer { handle, written }))
}

/// The writer thread, for waiting on it at exit.
pub struct Writer {
    handle: std::thread::JoinHandle<()>,
    /// Bytes written so far: progress, as seen from outside.
    written: Arc<AtomicU64>,
}

impl Writer {
    /// Waits until everything queued is written (every [`Sink`] must be gone),
    /// for as long as the writes make progress. A stdout whose reader stopped
    /// reading for `stall` does not keep ganger from exiting.
    pub fn finish(self, stall: Duration) {
        let mut seen = self.written.load(Ordering::Relaxed);
        let mut since = Instant::now();
        while !self.handle.is_finished() {
            let now = self.written.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() >= stall {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.handle.join();
    }
}

fn write_loop(
    mut rx: UnboundedReceiver<Chunk>,
    budget: &Budget,
    failed: &UnboundedSender<WriteFailed>,
    written: &AtomicU64,
) {
    // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop keeps us
    // from closing it.
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    enlarge_pipe(&out);
    let mut broken = false;
    let mut batch: Vec<Chunk> = Vec::with_capacity(64);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        let mut size = batch[0].bytes.len();
        while size < 256 * 1024 && batch.len() < 64 {
            match rx.try_recv() {
                Ok(chunk) => {
                    size += chunk.bytes.len();
                    batch.push(chunk);
                }
                Err(_) => break,
            }
        }
        if !broken && let Err(e) = write_all_vectored(&mut out, &batch, written) {
            broken = true;
            if e.kind() != io::ErrorKind::BrokenPipe {
                // Nobody sees stdout any more: stderr is where this can be read.
                let _ = writeln!(io::stderr(), "ganger: cannot write to stdout: {e}");
            }
            let _ = failed.send(e);
        }
        budget.release(batch.drain(..).map(|chunk| {
            // A buffer a log ring still holds is reused once the ring lets go.
            let bytes = Arc::try_unwrap(chunk.bytes).unwrap_or_default();
            (chunk.held, bytes)
        }));
    }
}

/// When stdout is a pipe, asks for a larger buffer: fewer wakeups of the writer
/// and of the reader on the other end. Refusal (e.g. over the per-user limit)
/// leaves the pipe as it is.
fn enlarge_pipe(out: &File) {
    use nix::fcntl::{FcntlArg, fcntl};
    if let Ok(size) = fcntl(out, FcntlArg::F_GETPIPE_SZ)
        && size < STDOUT_PIPE_SIZE
    {
        let _ = fcntl(out, FcntlArg::F_SETPIPE_SZ(STDOUT_PIPE_SIZE));
    }
}

fn write_all_vectored(out: &mut File, batch: &[Chunk], written: &AtomicU64) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|c| IoSlice::new(&c.bytes)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written.fetch_add(n as u64, Ordering::Relaxed);
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_stops_as_sigterm_and_other_errors_fail() {
        assert_eq!(failure_status(&io::ErrorKind::BrokenPipe.into()), 143);
        let full = io::Error::from_raw_os_error(nix::libc::ENOSPC);
        assert_eq!(failure_status(&full), 1);
        let eio = io::Error::from_raw_os_error(nix::libc::EIO);
        assert_eq!(failure_status(&eio), 1);
    }
}
