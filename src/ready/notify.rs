//! The `notify` probe: systemd's `sd_notify` protocol, served by ganger.
//!
//! [`NotifySocket`] is a Unix datagram socket bound at `notify` in a fresh
//! directory only ganger's user can enter (mode 0700, removed on drop). Its path
//! is what goes into an instance's `NOTIFY_SOCKET`. A path rather than an
//! abstract name (`@...`) because every client understands a path, including
//! the hand-written ones (`socket.sendto(msg, os.environ["NOTIFY_SOCKET"])`)
//! that do not translate `@`, and because the directory's mode keeps other
//! users out, where any process of the network namespace could reach an
//! abstract name.
//!
//! `SO_PASSCRED` makes the kernel attach the sender's pid to each datagram; an
//! unprivileged sender cannot forge it. Whether that pid belongs to an
//! instance's process tree is the caller's check ([`super::in_tree`]), made as
//! soon as the message arrives: a sender that has exited and been reaped can no
//! longer be placed in any tree. Datagrams are untrusted: at most
//! [`MAX_DATAGRAM`] bytes, longer ones dropped whole, file descriptors never
//! accepted.

use std::ffi::OsString;
use std::fs::DirBuilder;
use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use tokio::io::Interest;
use tokio::net::UnixDatagram;

/// The largest datagram read; a longer one is dropped (systemd's limit too).
pub const MAX_DATAGRAM: usize = 4096;

/// The longest socket path accepted: `sun_path` holds 108 bytes with the NUL.
const MAX_PATH: usize = 107;

/// What one datagram said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The sender's pid as the kernel saw it; `None` when the credentials were
    /// missing (e.g. a datagram that also carried file descriptors) or the
    /// sender is not visible from ganger's pid namespace.
    pub pid: Option<i32>,
    /// `READY=1`.
    pub ready: bool,
    /// The last `STATUS=`, control characters replaced by spaces; `Some("")`
    /// clears the status.
    pub status: Option<String>,
    /// `STOPPING=1`.
    pub stopping: bool,
}

/// Parses a datagram's newline-separated `KEY=VALUE` assignments; unknown keys
/// are ignored, and so is anything past [`MAX_DATAGRAM`] bytes.
#[must_use]
pub fn parse(datagram: &[u8]) -> Message {
    let datagram = datagram.get(..MAX_DATAGRAM).unwrap_or(datagram);
    let mut message = Message::default();
    for line in datagram.split(|&b| b == b'\n') {
        match line {
            b"READY=1" => message.ready = true,
            b"STOPPING=1" => message.stopping = true,
            _ => {
                if let Some(status) = line.strip_prefix(b"STATUS=") {
                    let text = String::from_utf8_lossy(status);
                    // It ends up on a terminal (`ganger ps`): no escape sequences.
                    let shown = text.chars().map(|c| if c.is_control() { ' ' } else { c });
                    message.status = Some(shown.collect());
                }
            }
        }
    }
    message
}

/// The socket instances report to, and the private directory it lives in.
#[derive(Debug)]
pub struct NotifySocket {
    // Declared first so it closes before the directory is removed.
    socket: UnixDatagram,
    dir: PrivateDir,
}

impl NotifySocket {
    /// Creates the directory, binds the socket in it and asks for credentials.
    /// Needs a tokio runtime with IO enabled.
    pub fn bind() -> io::Result<NotifySocket> {
        // tokio would panic below without one.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("the notify socket needs a tokio runtime"));
        }
        let dir = PrivateDir::create()?;
        let socket = std::os::unix::net::UnixDatagram::bind(dir.socket())?;
        // Before anyone knows the path, so every datagram carries credentials.
        setsockopt(&socket, sockopt::PassCred, &true)?;
        socket.set_nonblocking(true)?;
        let socket = UnixDatagram::from_std(socket)?;
        Ok(NotifySocket { socket, dir })
    }

    /// The value for `NOTIFY_SOCKET`: the socket's absolute path.
    #[must_use]
    pub fn env_value(&self) -> OsString {
        self.dir.socket().into_os_string()
    }

    /// The next datagram that fit in [`MAX_DATAGRAM`] bytes.
    pub async fn recv(&self) -> io::Result<Message> {
        loop {
            let received = self
                .socket
                .async_io(Interest::READABLE, || self.receive())
                .await;
            match received {
                Ok(Some(message)) => return Ok(message),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One `recvmsg`: `None` for a truncated datagram.
    fn receive(&self) -> io::Result<Option<Message>> {
        let mut data = [0_u8; MAX_DATAGRAM];
        let mut iov = [IoSliceMut::new(&mut data)];
        // Room for the credentials only: a sender's file descriptors then find
        // no room and are never installed in ganger (the kernel sets CTRUNC).
        let mut control = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
        let msg = recvmsg::<()>(self.socket.as_raw_fd(), &mut iov, Some(&mut control), flags)?;
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            return Ok(None);
        }
        let mut pid = None;
        // An error here means the control data was truncated: no credentials.
        if let Ok(cmsgs) = msg.cmsgs() {
            for cmsg in cmsgs {
                match cmsg {
                    // 0: the sender is outside ganger's pid namespace.
                    ControlMessageOwned::ScmCredentials(cred) if cred.pid() > 0 => {
                        pid = Some(cred.pid());
                    }
                    // Not expected with this buffer; closed should it ever happen.
                    ControlMessageOwned::ScmRights(fds) => {
                        for fd in fds {
                            let _ = nix::unistd::close(fd);
                        }
                    }
                    _ => {}
                }
            }
        }
        let bytes = msg.bytes;
        let mut message = parse(data.get(..bytes).unwrap_or_default());
        message.pid = pid;
        Ok(Some(message))
    }
}

/// A fresh directory with mode 0700 holding the socket; removed with it.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Tries `$XDG_RUNTIME_DIR` (per user, in memory), then the temporary
    /// directory, then `/tmp`, skipping those whose socket path would be too
    /// long. `create_dir` fails on anything already there (a symlink included),
    /// so the directory is ganger's own; a taken name is retried a few times.
    fn create() -> io::Result<PrivateDir> {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let bases = [
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            Some(std::env::temp_dir()),
            Some(PathBuf::from("/tmp")),
        ];
        let mut error = io::Error::new(io::ErrorKind::InvalidInput, "no usable directory");
        for base in bases.into_iter().flatten().filter(|b| b.is_absolute()) {
            for _ in 0..8 {
                let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
                let dir = base.join(format!("ganger-{}-{serial}", std::process::id()));
                if dir.join("notify").as_os_str().len() > MAX_PATH {
                    break;
                }
                match DirBuilder::new().mode(0o700).create(&dir) {
                    Ok(()) => return Ok(PrivateDir(dir)),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => error = e,
                    Err(e) => {
                        error = e;
                        break;
                    }
                }
            }
        }
        Err(error)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("notify")
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // Best effort: nothing else is ever put in the directory.
        let _ = std::fs::remove_file(self.socket());
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[cfg(test)]
mod tests;
