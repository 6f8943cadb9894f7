//! `ganger run`: one admin process with the app's environment (Factor XII).
//!
//! The child stays in ganger's process group, so an interactive program owns the
//! terminal as it would under a shell and Ctrl-C reaches it once, from the
//! terminal. Signals another process sends to ganger (TERM, HUP, QUIT, INT,
//! USR1, USR2) are forwarded; signals the terminal sent to the whole group are
//! not, since the child already has them.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::config::App;
use crate::env::AppEnv;
use crate::error::{Error, Result};
use crate::os;

/// Signals passed on to the child when another process sends them.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGINT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(
    sig: nix::libc::c_int,
    info: *mut nix::libc::siginfo_t,
    _: *mut nix::libc::c_void,
) {
    // SI_KERNEL and other positive codes mean the terminal (or the kernel) sent it
    // to the whole foreground group, the child included.
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    let pid = CHILD.load(Ordering::SeqCst);
    if code <= 0 && pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            nix::libc::kill(pid, sig);
        }
    }
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

    let mut block = SigSet::empty();
    for sig in FORWARDED {
        block.add(sig);
    }
    let mut original = SigSet::empty();
    signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&block), Some(&mut original))
        .map_err(|e| Error::os("cannot block signals", e.into()))?;
    let action = SigAction::new(
        SigHandler::SigAction(forward),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    for sig in FORWARDED {
        // SAFETY: the handler only reads an atomic and calls kill.
        unsafe { signal::sigaction(sig, &action) }
            .map_err(|e| Error::os("cannot install a signal handler", e.into()))?;
    }
    // SAFETY: the closure only calls async-signal-safe functions.
    unsafe {
        cmd.pre_exec(|| {
            os::restore_inherited_signals_in_child();
            os::restore_nofile_limit();
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    if let Ok(child) = &spawned {
        CHILD.store(i32::try_from(child.id()).unwrap_or(0), Ordering::SeqCst);
    }
    signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&original), None)
        .map_err(|e| Error::os("cannot restore the signal mask", e.into()))?;
    let child = spawned.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound if program_exists(first, &cmd) => {
            Error::InterpreterNotFound(shown.clone())
        }
        io::ErrorKind::NotFound => Error::CommandNotFound(shown.clone()),
        io::ErrorKind::PermissionDenied => Error::NotExecutable(shown.clone()),
        _ => Error::os(format!("cannot run {shown}"), e),
    })?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    // Waiting for any child, not just ours: as a container's PID 1, orphans are
    // reparented to ganger and must be reaped too.
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::os(format!("cannot wait for {shown}"), e.into())),
        }
    }
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
