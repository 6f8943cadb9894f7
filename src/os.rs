//! Linux process plumbing in one place: file limits, the child subreaper, the
//! signal state children inherit, and the walk over every descendant.
//!
//! Functions named `*_in_child` run between fork and exec, so they use only
//! async-signal-safe calls on values captured before the fork.

use std::sync::atomic::{AtomicU64, Ordering};

use nix::libc;
use nix::unistd::Pid;

static NOFILE_SOFT: AtomicU64 = AtomicU64::new(u64::MAX);
static NOFILE_HARD: AtomicU64 = AtomicU64::new(u64::MAX);
static INHERITED_IGNORED: AtomicU64 = AtomicU64::new(0);
static INHERITED_MASK_SET: AtomicU64 = AtomicU64::new(0);
static INHERITED_MASK: AtomicU64 = AtomicU64::new(0);

/// Raises the soft open-file limit to the hard one (each instance costs fds),
/// remembering the original so children get it back.
pub fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return;
    }
    NOFILE_SOFT.store(lim.rlim_cur, Ordering::SeqCst);
    NOFILE_HARD.store(lim.rlim_max, Ordering::SeqCst);
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: plain syscall on a valid struct; failure leaves the limit as is.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) };
    }
}

/// Puts back the open-file limit ganger was started with. Async-signal-safe.
pub fn restore_nofile_limit() {
    let soft = NOFILE_SOFT.load(Ordering::SeqCst);
    let hard = NOFILE_HARD.load(Ordering::SeqCst);
    if soft == u64::MAX && hard == u64::MAX {
        return;
    }
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit is a plain syscall.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) };
}

/// Records which signals ganger was started with ignored or blocked, before it
/// installs handlers of its own, so children can start with the same state.
pub fn record_inherited_signals() {
    let mut ignored = 0u64;
    for sig in 1..32 {
        // SAFETY: sigaction with a null new action only reads the current one.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        if unsafe { libc::sigaction(sig, std::ptr::null(), &raw mut old) } == 0
            && old.sa_sigaction == libc::SIG_IGN
        {
            ignored |= 1 << sig;
        }
    }
    // SIGPIPE is ignored by the Rust runtime itself, not by whoever started us.
    ignored &= !(1 << libc::SIGPIPE);
    INHERITED_IGNORED.store(ignored, Ordering::SeqCst);

    // SAFETY: a zeroed sigset_t is valid storage for pthread_sigmask to fill.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &raw mut mask) } == 0 {
        let mut bits = 0u64;
        for sig in 1..64 {
            // SAFETY: mask is initialised above.
            if unsafe { libc::sigismember(&raw const mask, sig) } == 1 {
                bits |= 1 << sig;
            }
        }
        INHERITED_MASK.store(bits, Ordering::SeqCst);
        INHERITED_MASK_SET.store(1, Ordering::SeqCst);
    }
}

/// The signals `start` acts on. Blocked from the start of `start` until their
/// handlers are installed, so that none is lost in between: as PID 1 an
/// unhandled SIGTERM would simply be dropped, while a blocked one waits.
const ACTED_ON: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
];

fn set_blocked(how: libc::c_int) {
    // SAFETY: a local sigset filled with valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        for sig in ACTED_ON {
            libc::sigaddset(&raw mut set, sig);
        }
        libc::pthread_sigmask(how, &raw const set, std::ptr::null_mut());
    }
}

/// Holds the signals `start` acts on pending until [`unblock_acted_on`].
pub fn block_acted_on() {
    set_blocked(libc::SIG_BLOCK);
}

/// Lets the signals blocked by [`block_acted_on`] through (to installed handlers).
pub fn unblock_acted_on() {
    set_blocked(libc::SIG_UNBLOCK);
}

/// In the child: the signal mask and ignored signals ganger was started with.
pub fn restore_inherited_signals_in_child() {
    let ignored = INHERITED_IGNORED.load(Ordering::SeqCst);
    for sig in 1..32 {
        if ignored & (1 << sig) != 0 {
            // SAFETY: signal() is async-signal-safe.
            unsafe { libc::signal(sig, libc::SIG_IGN) };
        }
    }
    let bits = if INHERITED_MASK_SET.load(Ordering::SeqCst) == 1 {
        INHERITED_MASK.load(Ordering::SeqCst)
    } else {
        0
    };
    // SAFETY: sigemptyset/sigaddset/sigprocmask are async-signal-safe and act on
    // a local set.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut mask);
        for sig in 1..64 {
            if bits & (1 << sig) != 0 {
                libc::sigaddset(&raw mut mask, sig);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &raw const mask, std::ptr::null_mut());
    }
}

/// In the child: die with SIGKILL when the thread that forked us exits.
pub fn set_parent_death_signal_in_child() {
    // SAFETY: prctl is a plain syscall.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
}

/// Makes ganger the reaper of every orphaned descendant (Linux).
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl is a plain syscall.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Every living descendant of ganger, found through `/proc/<pid>/task/*/children`.
#[must_use]
pub fn descendants() -> Vec<Pid> {
    let mut found = Vec::new();
    let mut queue = vec![std::process::id()];
    while let Some(pid) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in children
                .split_ascii_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if let Ok(raw) = i32::try_from(child)
                    && !found.contains(&Pid::from_raw(raw))
                {
                    found.push(Pid::from_raw(raw));
                    queue.push(child);
                }
            }
        }
    }
    found
}
