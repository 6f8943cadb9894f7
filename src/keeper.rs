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

use nix::fcntl::OFlag;
use nix::libc;
use nix::unistd::{ForkResult, Pid, fork, pipe2};

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
    // SAFETY: plain syscalls in the freshly forked, single-threaded keeper.
    unsafe {
        // Out of the terminal's way and deaf to the signals meant for ganger.
        libc::setpgid(0, 0);
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Hold no copy of ganger's stdout or stderr (a reader would wait for us).
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
        }
        // Not the keeper's parent-death signal to inherit: ganger's.
        libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
    }
    let mut groups: HashSet<i32> = HashSet::new();
    let mut buf = [0u8; 4096];
    let mut pending: Vec<u8> = Vec::new();
    let done = loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        let Ok(n) = usize::try_from(n) else {
            break false;
        };
        if n == 0 {
            break false;
        }
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
            // SAFETY: kill is a plain syscall.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
    // SAFETY: leave without running ganger's atexit handlers or destructors.
    unsafe { libc::_exit(0) }
}
