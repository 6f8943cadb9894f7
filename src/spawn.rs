//! Starting one instance: `/bin/sh -c COMMAND` in its own process group, stdin
//! from /dev/null, stdout and stderr into pipes (or a pty), an explicit environment, and
//! the signal state and file limit ganger itself was started with.
//!
//! This module forks and nothing else: it never waits (the reaper does).

use std::ffi::OsString;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::Pid;

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

/// A pipe for a child's output, sized within the user's pipe budget (see
/// [`crate::pipes`]).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    crate::pipes::open()
}

/// The variables only one instance has; every other one is in the shared base.
const PER_INSTANCE: [&str; 2] = ["PORT", "PS"];

/// Starts the instances of one app. What they all share is prepared once: the
/// environment (only `PORT` and `PS` differ between instances; the inherited
/// environment and the dotenv files do not change while ganger runs), the
/// working directory, and `/dev/null` for stdin.
pub struct Spawner {
    base: Vec<(OsString, OsString)>,
    root: PathBuf,
    dev_null: OwnedFd,
}

impl Spawner {
    /// `env` is the full environment of a child without its own `PORT` and
    /// `PS` (any given are dropped: those are always the instance's).
    pub fn new(env: Vec<(OsString, OsString)>, root: &Path) -> io::Result<Self> {
        let base = env
            .into_iter()
            .filter(|(k, _)| !PER_INSTANCE.iter().any(|name| k == name))
            .collect();
        let dev_null = OwnedFd::from(std::fs::File::open("/dev/null")?);
        Ok(Spawner {
            base,
            root: root.to_path_buf(),
            dev_null,
        })
    }

    /// Starts `command` through `/bin/sh -c` with `PORT=port` and `PS=ps`, its
    /// output going where `streams` says.
    ///
    /// `register` is the keeper's pipe: the child writes its pid (its process
    /// group) there itself, before it runs anything, so that a ganger killed at
    /// any moment after the fork still has the group killed by the keeper.
    pub fn spawn(
        &self,
        command: &str,
        port: u16,
        ps: &str,
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
            .envs(self.base.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .env("PS", ps)
            .current_dir(&self.root)
            .stdin(Stdio::from(self.dev_null.try_clone()?))
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
}

/// Command names `sh` resolves before looking for a program, so that `exec NAME`
/// would run something else (`exec echo` runs /bin/echo, not the builtin) or
/// nothing (`exec :` is "not found"): the reserved words and builtins of dash,
/// POSIX sh, bash and busybox ash, whichever `/bin/sh` is. Sorted, for binary search.
const SHELL_WORDS: &[&str] = &[
    "!",
    ".",
    ":",
    "[",
    "[[",
    "]]",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "chdir",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "coproc",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "then",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
    "{",
    "}",
];

/// Prefixes `exec ` when the command is one simple command that runs a program,
/// so that the shell is replaced by it: one process fewer, and signals and the
/// parent death signal reach the program itself (dash does not exec the last
/// command of `sh -c` on its own). A line whose first word is a builtin, a
/// reserved word, an assignment, a redirection or an expansion is left as it
/// is: `exec` would change what it means.
#[must_use]
pub fn shell_command(command: &str) -> String {
    if is_simple(command) && command_name(command).is_some_and(|name| runs_a_program(&name)) {
        format!("exec {command}")
    } else {
        command.to_string()
    }
}

/// Whether `sh` runs the command word `name` (quotes removed) as a program
/// found on PATH or named by a path.
fn runs_a_program(name: &str) -> bool {
    // A name with a slash is a path: never a builtin or a function.
    name.contains('/') || SHELL_WORDS.binary_search(&name).is_err()
}

/// The first word of `command` with its quotes removed, when it is a plain
/// literal word: `None` when it is empty, holds an unquoted expansion, glob,
/// assignment or brace, or is followed by a redirection (`2>log cmd`), since
/// what runs is then only known to the shell.
fn command_name(command: &str) -> Option<String> {
    let mut name = String::new();
    let mut chars = command.trim_start_matches([' ', '\t']).chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => break,
            '\\' => match chars.next()? {
                // A line continuation joins the word's halves.
                '\n' => {}
                c => name.push(c),
            },
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => name.push(c),
                }
            },
            '"' => {
                loop {
                    match chars.next()? {
                        '"' => break,
                        '$' | '`' => return None,
                        '\\' => match chars.next()? {
                            // The only characters a backslash escapes inside "".
                            c @ ('$' | '`' | '"' | '\\') => name.push(c),
                            '\n' => {}
                            c => {
                                name.push('\\');
                                name.push(c);
                            }
                        },
                        c => name.push(c),
                    }
                }
            }
            '$' | '`' | '<' | '>' | '=' | '*' | '?' | '[' | ']' | '{' | '}' | '~' | '!' => {
                return None;
            }
            c => name.push(c),
        }
    }
    (!name.is_empty()).then_some(name)
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
    use super::{SHELL_WORDS, shell_command};

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

    #[test]
    fn exec_only_when_the_first_word_is_a_program() {
        for cmd in [
            "bundle exec puma",
            "./bin/server --port 80",
            "/bin/echo 'a\\tb'",
            "'python3' x.py",
            "\"node\" server.js",
            "server >log 2>err",
            "ls\\\nx",
        ] {
            assert_eq!(shell_command(cmd), format!("exec {cmd}"), "{cmd}");
        }
        for cmd in [
            ":",
            "echo 'a\\tb'",
            "'echo' x",
            "\"printf\" '%s' x",
            "e\\cho x",
            "ec\\\nho x",
            "times",
            "type ls",
            "jobs",
            "[ -f x ]",
            "test -f x",
            "read line",
            "kill -0 1",
            "ulimit -n",
            "umask",
            "command -v ls",
            "FOO=bar",
            "$SERVER --port 80",
            "\"$SERVER\" x",
            "`which ls`",
            "2>err server",
            ">out server",
            "server>out",
            "*.sh",
            "~/bin/server",
            "{ server; }",
            "! server",
            "''",
        ] {
            assert_eq!(shell_command(cmd), cmd, "{cmd}");
        }
    }

    #[test]
    fn shell_words_are_sorted_for_binary_search() {
        assert!(SHELL_WORDS.windows(2).all(|w| w[0] < w[1]));
    }
}
