//! `ganger run`: one admin process with the app's environment (Factor XII), and
//! a complete init for `ENTRYPOINT ["ganger", "run", ...]`, as dumb-init and
//! tini are.
//!
//! Every catchable signal is passed on (SIGCHLD is ganger's own; SIGILL, SIGFPE
//! and SIGSEGV keep their default action, since a handler that returns from a
//! real fault loops). Where they go depends on [`Mode`]: with a terminal, the
//! child stays in ganger's process group, so an interactive program owns the
//! terminal as under a shell, and signals the terminal sent to that whole group
//! are not sent a second time; as PID 1 or without a terminal, the child leads
//! a process group of its own and every signal goes to that whole group, so a
//! pipeline stops as one. Job-control signals are treated as dumb-init treats
//! them: TSTP, TTIN and TTOU are passed on and then ganger stops itself; CONT
//! is passed on once ganger runs again.

use std::ffi::{OsStr, OsString};
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::unistd::{self, Pid};
use signal_hook::consts::FORBIDDEN;
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::{Cause, Origin};

use crate::config::App;
use crate::env::AppEnv;
use crate::error::{Error, Result};
use crate::os;
use crate::proctree;
use crate::reaper;

/// Where the child runs and where signals to ganger go.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// ganger has a terminal and is not PID 1: the child shares ganger's
    /// process group, and only signals another process sent are passed on.
    Foreground,
    /// PID 1, or no terminal: the child leads its own process group and every
    /// signal goes to the whole group. `terminal` is the descriptor of a
    /// terminal whose foreground group ganger leads, to be handed to the child.
    Group { terminal: Option<i32> },
}

impl Mode {
    fn detect() -> Mode {
        let (stdin, stdout, stderr) = (io::stdin(), io::stdout(), io::stderr());
        let fds: [(i32, BorrowedFd<'_>); 3] =
            [(0, stdin.as_fd()), (1, stdout.as_fd()), (2, stderr.as_fd())];
        let terminal = fds.iter().find(|(_, fd)| fd.is_terminal());
        if terminal.is_some() && std::process::id() != 1 {
            return Mode::Foreground;
        }
        // As PID 1 on a terminal (`docker run -it`), the child must own the
        // terminal to read it, as it would under a shell.
        let terminal = terminal
            .filter(|(_, fd)| unistd::tcgetpgrp(fd) == Ok(unistd::getpgrp()))
            .map(|(raw, _)| *raw);
        Mode::Group { terminal }
    }
}

/// The signals ganger passes on: every standard signal a handler can catch,
/// except SIGCHLD, which ganger reaps with.
fn forwarded() -> Vec<libc::c_int> {
    (1..32)
        .filter(|sig| !FORBIDDEN.contains(sig) && *sig != libc::SIGCHLD)
        .filter(|sig| Signal::try_from(*sig).is_ok())
        .collect()
}

/// Runs `command` (a Procfile entry name or a program and its arguments).
pub fn run(
    app: Option<&App>,
    env: &AppEnv,
    root: &std::path::Path,
    command: &[OsString],
    port: Option<u16>,
) -> Result<i32> {
    let Some(first) = command.first() else {
        return Err(Error::CommandNotFound(String::new()));
    };
    let entry = match (app, first.to_str()) {
        (Some(app), Some(name)) if command.len() == 1 => {
            app.procfile.find(name).map(|(pos, e)| (app, pos, e))
        }
        _ => None,
    };
    let mut extra: Vec<(&str, String)> = Vec::new();
    let mut cmd = if let Some((app, position, entry)) = entry {
        let port =
            crate::formation::port_for(app.base_port, position, 1, || format!("{}.1", entry.name))?;
        extra.push(("PORT", port.to_string()));
        extra.push(("PS", format!("{}.1", entry.name)));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(&entry.command);
        cmd
    } else {
        if let Some(port) = port {
            extra.push(("PORT", port.to_string()));
        }
        let mut cmd = Command::new(first);
        cmd.args(&command[1..]);
        cmd
    };
    cmd.env_clear()
        .envs(env.for_child(root, &extra))
        .current_dir(root);
    let shown = first.to_string_lossy().into_owned();

    let mode = Mode::detect();
    // Registered before the spawn, so that nothing sent in between is lost:
    // it waits in the iterator and is passed on once the child exists.
    let mut signals = forwarded();
    signals.push(libc::SIGCHLD);
    let mut signals = SignalsInfo::<WithOrigin>::new(&signals)
        .map_err(|e| Error::os("cannot install signal handlers", e))?;
    if let Mode::Group { terminal } = mode {
        cmd.process_group(0);
        // SAFETY: the closure only calls async-signal-safe functions.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = terminal {
                    take_terminal_in_child(fd);
                }
                Ok(())
            });
        }
    }
    // SAFETY: the closure only calls async-signal-safe functions.
    unsafe {
        cmd.pre_exec(|| {
            os::restore_inherited_signals_in_child();
            os::restore_nofile_limit();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound if program_exists(first, &cmd) => {
            Error::InterpreterNotFound(shown.clone())
        }
        io::ErrorKind::NotFound => Error::CommandNotFound(shown.clone()),
        io::ErrorKind::PermissionDenied => Error::NotExecutable(shown.clone()),
        _ => Error::os(format!("cannot run {shown}"), e),
    })?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    if let Mode::Group { .. } = mode {
        // Also from this side, so that a signal that comes before the child
        // has run finds the group; EACCES once the child has exec'd is fine.
        let _ = unistd::setpgid(pid, pid);
    }
    for origin in signals.forever() {
        if origin.signal == libc::SIGCHLD {
            // Every child, not just ours: as a container's PID 1, orphans are
            // reparented to ganger and must be reaped too.
            if let Some((_, exit)) = reaper::reap().into_iter().find(|(p, _)| *p == pid) {
                if let Mode::Group { .. } = mode {
                    end_group(pid);
                }
                return Ok(exit.status());
            }
            continue;
        }
        pass_on(mode, pid, &origin);
    }
    Err(Error::os(
        format!("stopped waiting for {shown}"),
        io::Error::from(io::ErrorKind::UnexpectedEof),
    ))
}

/// The child led its own group and has exited: what it left there (a
/// background job, a daemon it started) gets SIGTERM, as under dumb-init, so
/// that nothing of the command outlives it. The leader is reaped, so the
/// members are found in /proc and signalled through pidfds, never by the
/// group's number.
fn end_group(leader: Pid) {
    for member in proctree::members(leader) {
        let _ = proctree::signal(&member, Signal::SIGTERM);
    }
}

/// Passes one signal ganger received on to the child, as `mode` says.
fn pass_on(mode: Mode, child: Pid, origin: &Origin) {
    let Ok(sig) = Signal::try_from(origin.signal) else {
        return;
    };
    match mode {
        // The terminal signals its whole foreground group, the child included.
        Mode::Foreground if origin.cause == Cause::Kernel => {}
        Mode::Foreground => {
            let _ = signal::kill(child, sig);
        }
        Mode::Group { .. } => {
            if signal::killpg(child, sig) == Err(Errno::ESRCH) {
                let _ = signal::kill(child, sig);
            }
        }
    }
    // A stop request for ganger too, which has a handler instead of the
    // default action: stop as that action would, so the shell sees the job
    // stop. (As PID 1 the kernel ignores this, as it would the default.)
    if matches!(sig, Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU) {
        let _ = signal::raise(Signal::SIGSTOP);
    }
}

/// In the child, in its new process group: become the terminal's foreground
/// group. SIGTTOU is blocked meanwhile, since a background group that sets the
/// foreground group is sent it; the signal mask is set afresh after this.
fn take_terminal_in_child(fd: i32) {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let _ = signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None);
    // SAFETY: fd is one of 0, 1, 2, open in the child as in ganger.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = unistd::tcsetpgrp(fd, unistd::getpgrp());
}

/// Whether `program` names an existing file, as `execvp` would look for it (in
/// the child's root and `PATH`). Only asked after `exec` said ENOENT, which it
/// also says when a script's interpreter is missing.
fn program_exists(program: &OsStr, cmd: &Command) -> bool {
    let program = Path::new(program);
    let root = cmd.get_current_dir().unwrap_or(Path::new("."));
    if program.as_os_str().as_bytes().contains(&b'/') {
        return root.join(program).is_file();
    }
    let path = cmd
        .get_envs()
        .find(|(key, _)| *key == "PATH")
        .and_then(|(_, value)| value.map(OsStr::to_os_string))
        .unwrap_or_default();
    std::env::split_paths(&path).any(|dir| root.join(dir).join(program).is_file())
}
