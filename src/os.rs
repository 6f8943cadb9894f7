//! Linux process plumbing in one place: file limits, the child subreaper, and
//! the signal state children inherit.
//!
//! Functions named `*_in_child` run between fork and exec, so they use only
//! async-signal-safe calls on values captured before the fork. `unsafe` is left
//! only where nix has no safe call (installing an ignore disposition). The
//! inherited dispositions are read from `/proc/self/status`, which changes nothing.

use std::sync::OnceLock;

use nix::sys::prctl;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal};

use crate::signals::ACTED_ON;

/// The open-file limits ganger was started with (soft, hard).
static NOFILE: OnceLock<(u64, u64)> = OnceLock::new();
/// The signals ganger was started with blocked, and with ignored.
static INHERITED: OnceLock<(SigSet, SigSet)> = OnceLock::new();

/// Raises the soft open-file limit to the hard one (each instance costs fds),
/// remembering the original so children get it back.
pub fn raise_nofile_limit() {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let _ = NOFILE.set((soft, hard));
    if soft < hard {
        // Failure leaves the limit as it is.
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Puts back the open-file limit ganger was started with. Async-signal-safe.
pub fn restore_nofile_limit() {
    if let Some(&(soft, hard)) = NOFILE.get() {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
    }
}

/// Records which signals ganger was started with ignored or blocked, before it
/// installs handlers of its own, so children can start with the same state.
pub fn record_inherited_signals() {
    let blocked = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
    let ignored_bits = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .unwrap_or(0);
    let mut ignored = SigSet::empty();
    for sig in Signal::iterator() {
        // SIGPIPE is ignored by the Rust runtime itself, not by whoever started us.
        if sig != Signal::SIGPIPE && ignored_bits & (1 << (sig as i32 - 1)) != 0 {
            ignored.add(sig);
        }
    }
    let _ = INHERITED.set((blocked, ignored));
}

/// In the child: the signal mask and ignored signals ganger was started with.
pub fn restore_inherited_signals_in_child() {
    let Some((blocked, ignored)) = INHERITED.get() else {
        let _ = SigSet::empty().thread_set_mask();
        return;
    };
    for sig in ignored {
        // SAFETY: installing SIG_IGN is async-signal-safe and runs no handler.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(blocked), None);
}

/// The signals `start` acts on, as a set.
fn acted_on() -> SigSet {
    let mut set = SigSet::empty();
    for sig in ACTED_ON {
        set.add(sig);
    }
    set
}

/// Holds the signals `start` acts on pending until [`unblock_acted_on`], so
/// that none is lost before their handlers are installed: as PID 1 an
/// unhandled SIGTERM would simply be dropped, while a blocked one waits.
pub fn block_acted_on() {
    let _ = acted_on().thread_block();
}

/// Lets the signals blocked by [`block_acted_on`] through (to installed handlers).
pub fn unblock_acted_on() {
    let _ = acted_on().thread_unblock();
}

/// In the child: die with SIGKILL when the thread that forked us exits.
pub fn set_parent_death_signal_in_child() {
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
}

/// Makes ganger the reaper of every orphaned descendant (Linux).
pub fn become_subreaper() -> std::io::Result<()> {
    prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}
