//! The only place that waits for children: `waitpid(-1, WNOHANG)` until nothing
//! is left to reap. Called on every SIGCHLD, it collects instances and orphans
//! alike (ganger is a child subreaper, and may be PID 1).

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell's view: the exit code, or 128+n for death by signal n.
    #[must_use]
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(sig) => 128 + sig,
        }
    }

    /// `exited with code 1` / `was killed by SIGTERM`.
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Exit::Code(code) => format!("exited with code {code}"),
            Exit::Signal(sig) => match nix::sys::signal::Signal::try_from(sig) {
                Ok(s) => format!("was killed by {}", s.as_str()),
                Err(_) => format!("was killed by signal {sig}"),
            },
        }
    }
}

/// Reaps every child that has ended, without blocking.
#[must_use]
pub fn reap() -> Vec<(Pid, Exit)> {
    let mut ended = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => ended.push((pid, Exit::Code(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => ended.push((pid, Exit::Signal(sig as i32))),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    ended
}
