//! The child's side of a spawn, from `clone` to `execve`.
//!
//! ganger starts instances with `clone(CLONE_VM | CLONE_VFORK)`, as glibc's
//! `posix_spawn` does: the child borrows ganger's memory instead of copying
//! its page tables, and ganger's thread sleeps until the child has called
//! `execve` (or exited). A `fork` copies the page tables of the whole runtime
//! and then makes ganger take a copy-on-write fault on every page it touches
//! next; at a thousand instances that was most of ganger's start-up time.
//! `posix_spawn` itself cannot be used: it runs no code of ours in the child,
//! and the child must arm its parent-death signal, check that ganger is still
//! its parent, and register its process group with the keeper before it runs
//! anything, so that a ganger killed at any moment leaves nothing behind.
//!
//! What runs in the child shares ganger's memory, so it only reads what the
//! parent prepared, writes nothing but [`Plan::error`], allocates nothing,
//! takes no lock, and makes only async-signal-safe calls.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::Pid;

use crate::os;

/// Bytes of stack for the child. It runs a handful of libc calls, none deep,
/// and has no guard page: generous, since only the pages it touches cost.
pub const STACK_SIZE: usize = 64 * 1024;

/// Everything the child needs, prepared by the parent before the clone.
pub struct Plan<'a> {
    /// `/bin/sh`, `-c`, the command, and a null.
    pub argv: [*const c_char; 4],
    /// Null-terminated `K=V` pointers.
    pub envp: *const *const c_char,
    pub root: &'a CStr,
    /// The descriptors that become 0, 1 and 2.
    pub stdio: [RawFd; 3],
    /// A new session with fd 1 (a pty) as its terminal, instead of a group.
    pub session: bool,
    /// The keeper's pipe.
    pub register: Option<RawFd>,
    pub parent: libc::pid_t,
    /// Signals ganger handles (or ignores for itself): default in the child
    /// from its first instruction on, so that none runs ganger's handler in
    /// ganger's memory.
    pub defaults: &'a [c_int],
    /// Set by the child when a step fails: the errno.
    pub error: AtomicI32,
}

/// Starts the child described by `plan` on `stack`; returns its pid once it
/// has called `execve`, or the error of the step that failed (the child then
/// has exited and is reaped here).
pub fn start(plan: &Plan<'_>, stack: &mut [MaybeUninit<u8>]) -> io::Result<Pid> {
    // The stack grows down from its end, 16-byte aligned as the ABI wants.
    let top = stack.as_mut_ptr_range().end;
    let top = top.wrapping_sub(top as usize % 16);
    // Signals stay blocked until the child has set its own dispositions: a
    // handler of ganger's run by the child would act on ganger's memory.
    let old = SigSet::all().thread_swap_mask(SigmaskHow::SIG_SETMASK)?;
    // SAFETY: CLONE_VFORK suspends this thread until the child execs or exits,
    // so `plan` and `stack` outlive the child's use of them, and nothing else
    // uses `stack` meanwhile (`&mut`). The child (`run`) only reads `plan`
    // and writes its atomic `error`. Other threads keep running, but the child
    // touches none of their data and takes no lock they could hold.
    let pid = unsafe {
        libc::clone(
            run,
            top.cast::<c_void>(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(plan).cast_mut().cast::<c_void>(),
        )
    };
    let clone_error = Errno::last();
    let _ = old.thread_set_mask();
    if pid < 0 {
        return Err(clone_error.into());
    }
    let pid = Pid::from_raw(pid);
    match plan.error.load(Ordering::Acquire) {
        0 => Ok(pid),
        errno => {
            // Already exited; no one else waits for a pid ganger never reported.
            let _ = nix::sys::wait::waitpid(pid, None);
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// The child: set up, then exec. Never returns.
extern "C" fn run(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `&Plan` given to clone in `start`, alive while the
    // parent is suspended.
    let plan = unsafe { &*arg.cast::<Plan<'_>>() };
    // SAFETY: we are the child of a vfork-style clone, as `prepare` needs.
    let errno = unsafe { prepare_and_exec(plan) };
    plan.error.store(errno.max(1), Ordering::Release);
    // SAFETY: leaves at once, running nothing of the parent's (no atexit).
    unsafe { libc::_exit(127) }
}

/// Sets the child up and execs; returns the errno of the step that failed.
///
/// # Safety
/// Only in the child of [`start`]'s clone, before exec.
unsafe fn prepare_and_exec(plan: &Plan<'_>) -> c_int {
    // SAFETY (for the whole body): plain system calls on descriptors and
    // pointers the parent prepared and keeps alive; none allocates or locks.
    unsafe {
        // Out of ganger's process group first, so that a Ctrl-C for ganger's
        // group cannot reach a child that is not started yet.
        let grouped = if plan.session {
            libc::setsid()
        } else {
            libc::setpgid(0, 0)
        };
        if grouped < 0 {
            return Errno::last_raw();
        }
        for &sig in plan.defaults {
            libc::signal(sig, libc::SIG_DFL);
        }
        // A descriptor that is already 0, 1 or 2 is moved up first, so that
        // placing one cannot overwrite another (ganger may start with 0 closed).
        let mut stdio = plan.stdio;
        for fd in &mut stdio {
            if *fd < 3 {
                *fd = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3);
                if *fd < 0 {
                    return Errno::last_raw();
                }
            }
        }
        for (target, fd) in (0..).zip(stdio) {
            if libc::dup2(fd, target) < 0 {
                return Errno::last_raw();
            }
        }
        if plan.session && libc::ioctl(1, libc::TIOCSCTTY, 0) != 0 {
            return Errno::last_raw();
        }
        os::restore_inherited_signals_in_child();
        os::restore_nofile_limit();
        os::set_parent_death_signal_in_child();
        // ganger may have died before the death signal was armed.
        if libc::getppid() != plan.parent {
            return libc::ESRCH;
        }
        if libc::chdir(plan.root.as_ptr()) != 0 {
            return Errno::last_raw();
        }
        let pid = libc::getpid();
        if let Some(fd) = plan.register
            && !tell(fd, pid)
        {
            return Errno::last_raw();
        }
        libc::execve(plan.argv[0], plan.argv.as_ptr(), plan.envp);
        let errno = Errno::last_raw();
        // Nothing will run in the group: the keeper can forget it.
        if let Some(fd) = plan.register {
            tell(fd, -pid);
        }
        errno
    }
}

/// Writes one number to the keeper. Four bytes to a pipe are written whole
/// (`PIPE_BUF`) or not at all.
fn tell(fd: RawFd, value: i32) -> bool {
    let bytes = value.to_ne_bytes();
    // SAFETY: writes from a live four-byte buffer.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) == 4 }
}
