//! Starting one instance: `/bin/sh -c COMMAND` in its own process group, stdin
//! from /dev/null, stdout and stderr into pipes (or a pty), an explicit environment, and
//! the signal state and file limit ganger itself was started with.
//!
//! This module forks and nothing else: it never waits (the reaper does).

use std::ffi::OsString;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::{Pid, pipe2};

use crate::os;
use crate::tty;

/// A started instance: its pid (also its process group) and the read ends of
/// its output pipes.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    pub stdout: OwnedFd,
    /// `None` when stderr shares the stdout pipe (or the pty).
    pub stderr: Option<OwnedFd>,
    /// A second handle on the pty master, for window size changes.
    pub pty: Option<OwnedFd>,
}

/// Where an instance's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// One pipe for both, keeping their relative order.
    Shared,
    /// A pipe each, so that each line's stream is known.
    Split,
    /// A pseudo-terminal of this size for both; the child leads a session with
    /// it as its controlling terminal.
    Tty(tty::Size),
}

/// Pipe buffer size asked for (fewer wakeups when a child writes fast).
const PIPE_SIZE: i32 = 1024 * 1024;

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    // A bigger buffer is an optimisation; the default is fine if refused.
    let _ = fcntl(&read, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    Ok((read, write))
}

/// Starts `command` through `/bin/sh -c`, its output going where `streams` says.
///
/// `register` is the keeper's pipe: the child writes its pid (its process
/// group) there itself, before it runs anything, so that a ganger killed at
/// any moment after the fork still has the group killed by the keeper.
pub fn spawn(
    command: &str,
    env: &[(OsString, OsString)],
    root: &Path,
    streams: Streams,
    register: Option<RawFd>,
) -> io::Result<Spawned> {
    let (stdout_read, stdout_write) = match streams {
        Streams::Tty(size) => tty::open(size)?,
        Streams::Shared | Streams::Split => pipe()?,
    };
    let (stderr_read, stderr_write) = if streams == Streams::Split {
        let (r, w) = pipe()?;
        (Some(r), w)
    } else {
        (None, stdout_write.try_clone()?)
    };
    let pty = match streams {
        Streams::Tty(_) => Some(stdout_read.try_clone()?),
        Streams::Shared | Streams::Split => None,
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(shell_command(command))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout_write))
        .stderr(Stdio::from(stderr_write));
    let session = pty.is_some();
    let parent = std::process::id();
    if !session {
        cmd.process_group(0);
    }
    // SAFETY: the closure only makes async-signal-safe calls on values captured
    // before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if session {
                // A new session (and process group) with the pty as its terminal.
                nix::libc::setsid();
                if nix::libc::ioctl(1, nix::libc::TIOCSCTTY, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            os::restore_inherited_signals_in_child();
            os::restore_nofile_limit();
            os::set_parent_death_signal_in_child();
            // ganger may have died before the death signal was armed.
            if u32::try_from(nix::libc::getppid()).ok() != Some(parent) {
                nix::libc::_exit(1);
            }
            if let Some(fd) = register {
                let pid = nix::libc::getpid().to_ne_bytes();
                // Four bytes to a pipe are written whole (PIPE_BUF) or not at all.
                if nix::libc::write(fd, pid.as_ptr().cast(), pid.len()) != 4 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // Dropping `cmd` closes our copies of the write ends.
    drop(cmd);
    let pid = Pid::from_raw(i32::try_from(child.id()).map_err(io::Error::other)?);
    Ok(Spawned {
        pid,
        stdout: stdout_read,
        stderr: stderr_read,
        pty,
    })
}

/// Words that make `exec ` in front of a command wrong or pointless.
const SHELL_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done",
    "function", "select", "!", "{", "}", "[[", "time", "cd", ".", "source", "export", "set",
    "unset", "ulimit", "umask", "trap", "eval", "exec", "wait", "read", "alias", "shift", "return",
    "exit", "break", "continue", "readonly", "local", "declare", "typeset", "command", "builtin",
];

/// Prefixes `exec ` when the command is one simple command, so that the shell
/// is replaced by the program: one process fewer, and signals and the parent
/// death signal reach the program itself (dash does not exec the last command
/// of `sh -c` on its own).
#[must_use]
pub fn shell_command(command: &str) -> String {
    let first = command.split_whitespace().next().unwrap_or("");
    if is_simple(command)
        && !first.is_empty()
        && !first.contains('=')
        && !SHELL_WORDS.contains(&first)
    {
        format!("exec {command}")
    } else {
        command.to_string()
    }
}

/// Whether `command` has no unquoted control operator, subshell or comment:
/// a single simple command, possibly with quoted arguments and redirections.
fn is_simple(command: &str) -> bool {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut quote = Quote::None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match (&quote, c) {
            (Quote::None | Quote::Double, '\\') => {
                chars.next();
            }
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::None, ';' | '&' | '|' | '(' | ')' | '`' | '#' | '\n' | '\r')
            | (Quote::Double, '`') => return false,
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            _ => {}
        }
    }
    quote == Quote::None
}

#[cfg(test)]
mod tests {
    use super::shell_command;

    #[test]
    fn exec_only_for_simple_commands() {
        assert_eq!(
            shell_command("python3 -m http.server $PORT"),
            "exec python3 -m http.server $PORT"
        );
        for cmd in [
            "a; b",
            "a && b",
            "a | b",
            "FOO=1 cmd",
            "cd dir && x",
            "sleep 1 &",
            "echo $(date)",
            "exec x",
            "trap 'x' TERM",
            "while true; do x; done",
            "a 'quoted' ; b",
            "echo 'unterminated",
            "a # comment",
            "(a)",
        ] {
            assert_eq!(shell_command(cmd), cmd);
        }
    }
}
