//! Starting one instance: `/bin/sh -c COMMAND` in its own process group, stdin
//! from /dev/null (or the pty), stdout and stderr into pipes (or a pty), an explicit environment, and
//! the signal state and file limit ganger itself was started with.
//!
//! This module starts processes and nothing else: it never waits for one
//! that started (the reaper does). How the child is made, and why that way,
//! is in [`child`].

mod child;
mod shell;

pub use shell::shell_command;

use std::collections::HashMap;
use std::ffi::{CString, OsString, c_char, c_int};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::AtomicI32;

use nix::unistd::Pid;

#[cfg(doc)]
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

/// The variables only one instance has; every other one is its type's.
const PER_INSTANCE: [&str; 2] = ["PORT", "PS"];

/// Starts the instances of one app. What they share is prepared once: the
/// environment of each type as C strings (instances of a type differ only in
/// `PORT` and `PS`; the inherited environment and the dotenv files do not
/// change while ganger runs), the working directory, `/dev/null` for stdin,
/// the signals the child resets, and the child's stack.
pub struct Spawner {
    /// Type name -> `K=V` of every variable but `PORT` and `PS`.
    types: HashMap<String, Vec<CString>>,
    /// Pointers into a type's variables and the instance's own, null-terminated;
    /// kept to reuse its allocation.
    envp: Vec<*const c_char>,
    root: CString,
    dev_null: OwnedFd,
    /// Signals whose disposition in ganger is not the default.
    defaults: Vec<c_int>,
    parent: nix::libc::pid_t,
    /// The child's stack, never initialised: the child writes what it uses.
    stack: Box<[MaybeUninit<u8>]>,
}

impl Spawner {
    /// A spawner for children that run in `root`. Make it once the signal
    /// handlers are installed.
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(Spawner {
            types: HashMap::new(),
            envp: Vec::new(),
            root: c_string(root.as_os_str().as_bytes().to_vec())?,
            dev_null: OwnedFd::from(std::fs::File::open("/dev/null")?),
            defaults: handled_signals(),
            parent: nix::unistd::getpid().as_raw(),
            stack: Box::new_uninit_slice(child::STACK_SIZE),
        })
    }

    /// Whether the environment of type `name` is known.
    #[must_use]
    pub fn knows(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }

    /// Takes `env`, the full environment of any instance of type `name`, as
    /// that type's: its `PORT` and `PS` are dropped (each instance has its own).
    pub fn learn(&mut self, name: &str, env: Vec<(OsString, OsString)>) -> io::Result<()> {
        let vars = env
            .into_iter()
            .filter(|(k, _)| !PER_INSTANCE.iter().any(|own| k == own))
            .map(|(k, v)| {
                let mut entry = k.into_vec();
                entry.push(b'=');
                entry.extend_from_slice(v.as_bytes());
                c_string(entry)
            })
            .collect::<io::Result<Vec<_>>>()?;
        self.envp.reserve(vars.len() + PER_INSTANCE.len() + 1);
        self.types.insert(name.to_string(), vars);
        Ok(())
    }

    /// Starts `command` through `/bin/sh -c` with the environment of type
    /// `name` (see [`Spawner::learn`]), `PORT=port` and `PS=ps`, its output
    /// going where `streams` says.
    ///
    /// `register` is the keeper's pipe: the child writes its pid (its process
    /// group) there itself, before it runs anything, so that a ganger killed at
    /// any moment after the clone still has the group killed by the keeper.
    pub fn spawn(
        &mut self,
        name: &str,
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
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let pty = match streams {
            Streams::Tty(_) => Some(stdout_read.try_clone()?),
            Streams::Shared | Streams::Split => None,
        };
        let command = c_string(shell_command(command).into_bytes())?;
        let port = c_string(format!("PORT={port}").into_bytes())?;
        let ps = c_string(format!("PS={ps}").into_bytes())?;
        let Some(vars) = self.types.get(name) else {
            return Err(io::Error::other(format!("no environment for {name}")));
        };
        self.envp.clear();
        self.envp.extend(vars.iter().map(|v| v.as_ptr()));
        self.envp
            .extend([port.as_ptr(), ps.as_ptr(), std::ptr::null()]);
        let stdout = stdout_write.as_raw_fd();
        let plan = child::Plan {
            argv: [
                c"/bin/sh".as_ptr(),
                c"-c".as_ptr(),
                command.as_ptr(),
                std::ptr::null(),
            ],
            envp: self.envp.as_ptr(),
            root: &self.root,
            stdio: [
                // On a pty, stdin is the pty too: `attach` and `start -i` type into it.
                if pty.is_some() {
                    stdout
                } else {
                    self.dev_null.as_raw_fd()
                },
                stdout,
                stderr_write.as_ref().map_or(stdout, AsRawFd::as_raw_fd),
            ],
            session: pty.is_some(),
            register,
            parent: self.parent,
            defaults: &self.defaults,
            error: AtomicI32::new(0),
        };
        let pid = child::start(&plan, &mut self.stack)?;
        // Our copies of the write ends close here: the child has its own.
        drop((stdout_write, stderr_write));
        Ok(Spawned {
            pid,
            stdout: stdout_read,
            stderr: stderr_read,
            pty,
        })
    }
}

/// A C string, or an error naming what held a NUL byte.
fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|e| {
        let text = String::from_utf8_lossy(&e.into_vec()).into_owned();
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a NUL byte in {text:?}"),
        )
    })
}

/// The signals ganger has a handler for or ignores: each is set to its
/// default in the child before anything else can happen there, and those
/// ganger was started with ignored are ignored again afterwards
/// ([`os::restore_inherited_signals_in_child`]). Read once, after the handlers
/// are installed; the internal signals glibc refuses to show are left out.
fn handled_signals() -> Vec<c_int> {
    (1..=64)
        .filter(|&sig| {
            let mut old = std::mem::MaybeUninit::<nix::libc::sigaction>::uninit();
            // SAFETY: only reads the disposition into `old`.
            let read = unsafe { nix::libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
            // SAFETY: filled in when sigaction succeeded.
            read == 0 && unsafe { old.assume_init() }.sa_sigaction != nix::libc::SIG_DFL
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsFd;

    use nix::sys::wait::{WaitStatus, waitpid};

    use super::*;

    /// Waits for the child, then reads all it wrote (the pipe is non-blocking).
    fn finish(spawned: Spawned) -> (WaitStatus, String) {
        let status = waitpid(spawned.pid, None).expect("waitpid");
        let mut out = String::new();
        std::fs::File::from(spawned.stdout)
            .read_to_string(&mut out)
            .expect("read");
        (status, out)
    }

    #[test]
    fn the_child_gets_the_shared_environment_its_own_port_and_ps_and_its_own_group() {
        let env = vec![
            ("GANGER_T_SHARED".into(), "s".into()),
            ("PORT".into(), "1".into()),
            ("PS".into(), "other".into()),
        ];
        let mut starter = Spawner::new(Path::new("/")).expect("spawner");
        starter.learn("web", env).expect("env");
        let script = "echo $GANGER_T_SHARED $PORT $PS $(pwd); cut -d' ' -f5 /proc/$$/stat; echo $$; \
                      env | grep -c '^PORT='; echo err >&2; read x; echo read=$?";
        let spawned = starter
            .spawn("web", script, 5000, "web.1", Streams::Shared, None)
            .expect("spawn");
        let pid = spawned.pid;
        let (status, out) = finish(spawned);
        assert_eq!(status, WaitStatus::Exited(pid, 0));
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(lines[0], "s 5000 web.1 /");
        assert_eq!(lines[1], lines[2], "the shell leads its own group");
        assert_eq!(lines[3..], ["1", "err", "read=1"]);
    }

    #[test]
    fn the_child_registers_its_group_before_it_runs() {
        let (read, write) = nix::unistd::pipe().expect("pipe");
        let mut starter = Spawner::new(Path::new("/")).expect("spawner");
        starter.learn("w", Vec::new()).expect("env");
        let register = Some(write.as_fd().as_raw_fd());
        let spawned = starter
            .spawn("w", "exit 3", 5000, "w.1", Streams::Split, register)
            .expect("spawn");
        let pid = spawned.pid;
        assert!(spawned.stderr.is_some());
        let (status, _) = finish(spawned);
        assert_eq!(status, WaitStatus::Exited(pid, 3));
        let mut word = [0u8; 4];
        std::fs::File::from(read)
            .read_exact(&mut word)
            .expect("registered");
        assert_eq!(i32::from_ne_bytes(word), pid.as_raw());
    }

    #[test]
    fn a_step_that_fails_in_the_child_is_the_spawn_error() {
        let (read, write) = nix::unistd::pipe().expect("pipe");
        let mut starter = Spawner::new(Path::new("/nonexistent/ganger")).expect("spawner");
        starter.learn("w", Vec::new()).expect("env");
        let error = starter
            .spawn(
                "w",
                "true",
                5000,
                "w.1",
                Streams::Shared,
                Some(write.as_raw_fd()),
            )
            .expect_err("no such directory");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        // It failed before registering: the keeper has nothing to forget.
        drop(write);
        let mut rest = Vec::new();
        std::fs::File::from(read)
            .read_to_end(&mut rest)
            .expect("read");
        assert!(rest.is_empty(), "{rest:?}");
    }

    #[test]
    fn a_nul_byte_is_an_error_not_a_truncation() {
        let mut starter = Spawner::new(Path::new("/")).expect("spawner");
        let env = vec![("A".into(), "x\0y".into())];
        assert!(starter.learn("w", env).is_err());
        starter.learn("w", Vec::new()).expect("env");
        let error = starter
            .spawn("w", "echo a\0b", 5000, "w.1", Streams::Shared, None)
            .expect_err("nul");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn an_unknown_type_is_an_error() {
        let mut starter = Spawner::new(Path::new("/")).expect("spawner");
        assert!(!starter.knows("w"));
        let error = starter
            .spawn("w", "true", 5000, "w.1", Streams::Shared, None)
            .expect_err("unknown type");
        assert_eq!(error.kind(), io::ErrorKind::Other);
    }
}
