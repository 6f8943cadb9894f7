//! How much pipe buffer ganger asks the kernel for on its children's output.
//!
//! A larger pipe means fewer wakeups when a child writes fast. But the kernel
//! charges every pipe buffer to the user who made the pipe, and once that user
//! holds `/proc/sys/fs/pipe-user-pages-soft` of them (64 MiB by default), each
//! new pipe of any of that user's programs gets only 8 KiB. So ganger enlarges
//! a pipe only while all the pipes it holds for its children stay within a
//! quarter of that budget: a few busy instances get 1 MiB, a hundred get the
//! default 64 KiB after the first few, and the user's other programs keep
//! their pipes. The count is process-wide; it is taken when a pipe is made and
//! given back by [`release`] when its reader is done with it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::{SysconfVar, pipe2, sysconf};

/// The size asked for when there is budget to spare.
const ENLARGED: usize = 1024 * 1024;

/// The kernel's default `pipe-user-pages-soft`, used when it cannot be read or
/// is 0 (no limit): ganger stays as modest as on a default system.
const DEFAULT_SOFT_PAGES: usize = 16 * 1024;

/// Bytes of buffer in the open pipes ganger made for its children.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// A non-blocking pipe for a child's output (read end first), enlarged when
/// the budget allows.
pub fn open() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    // Already small (8 KiB) when the user is over the limit: counted as it is.
    let Some(size) = buffer_size(&read) else {
        return Ok((read, write));
    };
    HELD.fetch_add(size, Ordering::Relaxed);
    let extra = ENLARGED.saturating_sub(size);
    let reserved = HELD.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
        (held + extra <= share()).then_some(held + extra)
    });
    if extra > 0 && reserved.is_ok() {
        let asked = i32::try_from(ENLARGED).unwrap_or(i32::MAX);
        // An optimisation: if refused, the default is fine.
        let got = fcntl(&read, FcntlArg::F_SETPIPE_SZ(asked))
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(size);
        // Count what the pipe has now, not what was reserved.
        HELD.fetch_sub(size + extra, Ordering::Relaxed);
        HELD.fetch_add(got, Ordering::Relaxed);
    }
    Ok((read, write))
}

/// Gives back the budget of a pipe made by [`open`], before its read end is
/// closed. Anything else (a pty) is left alone.
pub fn release(fd: impl AsFd) {
    if let Some(size) = buffer_size(fd) {
        let _ = HELD.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
            Some(held.saturating_sub(size))
        });
    }
}

/// The buffer size of a pipe; `None` for anything else.
fn buffer_size(fd: impl AsFd) -> Option<usize> {
    let size = fcntl(fd.as_fd(), FcntlArg::F_GETPIPE_SZ).ok()?;
    usize::try_from(size).ok()
}

/// The bytes of pipe buffer ganger may hold: a quarter of the user's soft limit.
fn share() -> usize {
    static SHARE: OnceLock<usize> = OnceLock::new();
    *SHARE.get_or_init(|| {
        let pages = std::fs::read_to_string("/proc/sys/fs/pipe-user-pages-soft")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .filter(|&pages| pages > 0)
            .unwrap_or(DEFAULT_SOFT_PAGES);
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(4096);
        pages.saturating_mul(page) / 4
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_are_enlarged_only_within_the_share() {
        let mut pipes = Vec::new();
        let mut enlarged = 0;
        // More than the share holds at 1 MiB each.
        for _ in 0..(share() / ENLARGED + 4) {
            let (read, write) = open().expect("pipe");
            if buffer_size(&read) == Some(ENLARGED) {
                enlarged += 1;
            }
            pipes.push((read, write));
        }
        assert!(enlarged >= 1, "no pipe was enlarged");
        assert!(enlarged <= share() / ENLARGED, "{enlarged} pipes enlarged");
        for (read, _) in &pipes {
            release(read);
        }
        drop(pipes);
        let (read, _write) = open().expect("pipe");
        assert_eq!(buffer_size(&read), Some(ENLARGED), "the budget came back");
        release(&read);
    }
}
