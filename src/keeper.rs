//! The keeper: a tiny process forked at start that outlives ganger by a moment,
//! so that a ganger killed by `SIGKILL` still takes its process groups along.
//!
//! Every instance registers its own process group through a pipe, in the
//! child, before it runs anything ([`Keeper::register_fd`]); ganger says when
//! a group is gone ([`Keeper::forget`]), so the keeper never holds a number that
//! may already be someone else's. If ganger dies, however it dies, the pipe
//! reaches end of file and the keeper sends SIGKILL to every group still
//! registered. On a normal exit ganger first says it is done, and the keeper
//! leaves without killing anything.
//! `PR_SET_PDEATHSIG` alone would reach only the process ganger started, not
//! the other members of its group (`sh -c 'a | b'`).

use std::collections::HashSet;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::prctl;
use nix::sys::signal::{SigHandler, Signal, killpg, signal};
use nix::sys::stat::Mode;
use nix::unistd::{
    ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, read as read_fd, setpgid,
};

use crate::signals::{FORWARD, STOP};

/// The message that means "ganger is exiting normally". A positive number
/// registers that process group, a negative one forgets it.
const DONE: i32 = 0;

/// Proof that the process has a single thread, which forking the keeper needs
/// (the child goes on to use std, whose locks another thread might hold).
pub struct SingleThreaded(());

impl SingleThreaded {
    /// `Some` only while the process has one thread.
    #[must_use]
    pub fn check() -> Option<Self> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let threads = status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))?
            .trim();
        (threads == "1").then_some(SingleThreaded(()))
    }
}

/// ganger's end of the pipe to the keeper.
pub struct Keeper {
    pid: Pid,
    pipe: std::fs::File,
}

impl Keeper {
    /// Forks the keeper while ganger has a single thread.
    pub fn start(_single: &SingleThreaded) -> io::Result<Self> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
        // SAFETY: `SingleThreaded` proves there is no other thread, so the child
        // may use the whole of std until it exits.
        match unsafe { fork() }? {
            ForkResult::Child => {
                drop(write);
                keep(&read)
            }
            ForkResult::Parent { child } => {
                drop(read);
                Ok(Keeper {
                    pid: child,
                    pipe: std::fs::File::from(write),
                })
            }
        }
    }

    /// The keeper's pid, which is not one of the app's processes.
    #[must_use]
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The pipe a child writes its pid to, to register its process group.
    #[must_use]
    pub fn register_fd(&self) -> RawFd {
        self.pipe.as_raw_fd()
    }

    /// Tells the keeper that a process group is gone and must not be killed.
    pub fn forget(&mut self, pgid: Pid) {
        let _ = self.pipe.write_all(&(-pgid.as_raw()).to_ne_bytes());
    }

    /// Lets the keeper go without killing anything, and reaps it.
    pub fn release(mut self) {
        let _ = self.pipe.write_all(&DONE.to_ne_bytes());
        drop(self.pipe);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// The keeper's life: collect process groups until end of file, then kill them.
fn keep(read: &OwnedFd) -> ! {
    // Out of the terminal's way and deaf to the signals meant for ganger.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    for sig in STOP
        .into_iter()
        .chain(FORWARD)
        .chain([Signal::SIGQUIT, Signal::SIGPIPE])
    {
        // SAFETY: ignoring a signal installs no handler; nix has no safe call.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    // Hold no copy of ganger's stdout or stderr (a reader would wait for us).
    if let Ok(null) = open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
        let _ = dup2_stdin(&null);
        let _ = dup2_stdout(&null);
        let _ = dup2_stderr(&null);
    }
    // Not the keeper's parent-death signal to inherit: ganger's.
    let _ = prctl::set_pdeathsig(None);
    let mut groups: HashSet<i32> = HashSet::new();
    let mut buf = [0u8; 4096];
    let mut pending: Vec<u8> = Vec::new();
    let done = loop {
        let n = match read_fd(read, &mut buf) {
            Ok(0) | Err(Errno::EBADF | Errno::EIO | Errno::EINVAL) => break false,
            Ok(n) => n,
            Err(_) => continue,
        };
        pending.extend_from_slice(&buf[..n]);
        let whole = pending.len() / 4 * 4;
        let mut finished = false;
        for word in pending[..whole].chunks_exact(4) {
            let value = i32::from_ne_bytes([word[0], word[1], word[2], word[3]]);
            match value {
                DONE => finished = true,
                1.. => {
                    groups.insert(value);
                }
                _ => {
                    groups.remove(&value.saturating_neg());
                }
            }
        }
        pending.drain(..whole);
        if finished {
            break true;
        }
    };
    if !done {
        for pgid in groups {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
    // SAFETY: leave without running ganger's atexit handlers or destructors,
    // which belong to ganger; std has no safe `_exit`.
    unsafe { nix::libc::_exit(0) }
}
