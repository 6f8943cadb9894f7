//! The control socket: `ganger start` listens on a Unix socket, and `ganger ps`,
//! `restart`, `stop`, `scale` and `quit` talk to it ([`client`]).
//!
//! The messages are in [`protocol`]: one JSON object per line each way, so
//! scripts can drive it with `socat`. This module moves requests and replies;
//! the supervisor decides. At most [`MAX_CLIENTS`] clients are served at once,
//! so idle clients cannot take the descriptors the app needs. `logs` and
//! `attach` are answered here from the taps, as streams ([`streams`]).

pub mod attach;
pub mod client;
pub mod frame;
pub mod protocol;
pub mod streams;

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use client::{format_ps, request};
pub use protocol::{Reply, Request, Row};

use crate::error::{Error, Result};
use crate::taps::Registry;

/// The longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;
/// Clients served at once; one more is told so and closed.
pub const MAX_CLIENTS: usize = 64;

/// A request on its way to the supervisor, with where its reply goes.
pub type Envelope = (Request, oneshot::Sender<Reply>);

/// The socket `start` listens on; removed when dropped, if it is still the one
/// this ganger bound (another ganger may have replaced it since).
pub struct Server {
    path: PathBuf,
    /// Device and inode of the socket this ganger bound.
    id: (u64, u64),
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.id
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the control socket at `path` (mode 0600), replacing a leftover socket
/// that nobody answers, and serves clients until the runtime stops.
///
/// Another ganger answering there is an error. So is failing to bind a socket
/// the user named (`explicit`); failing to bind the default one (a read-only
/// root in a container, a path too long for a socket) only turns the control
/// socket off, and the returned text says why.
pub fn listen(
    path: &Path,
    explicit: bool,
    requests: mpsc::UnboundedSender<Envelope>,
    taps: Arc<Registry>,
) -> Result<Result<Server, String>> {
    let fail = |what: &str, e: io::Error| Error::os(format!("{what} {}", path.display()), e);
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            let why = format!(
                "{} exists and is not a socket (choose another with -s)",
                path.display()
            );
            if explicit {
                return Err(Error::Control(why));
            }
            return Ok(Err(format!("control socket off: {why}")));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Control(format!(
                "already running: another ganger answers on {} (use -s for a second app)",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| fail("cannot remove the stale socket", e))?;
    }
    let listener = match bind_private(path) {
        Ok(listener) => listener,
        Err(e) if !explicit => {
            return Ok(Err(format!(
                "control socket off: cannot listen on {}: {e} (choose a path with -s)",
                path.display()
            )));
        }
        Err(e) => return Err(fail("cannot listen on", e)),
    };
    let meta = std::fs::symlink_metadata(path).map_err(|e| fail("cannot inspect", e))?;
    let server = Server {
        path: path.to_path_buf(),
        id: (meta.dev(), meta.ino()),
    };
    tokio::spawn(accept_loop(listener, requests, taps));
    Ok(Ok(server))
}

/// Binds with a umask that leaves the socket 0600 from the start. The socket is
/// bound and listening under a temporary name first, then renamed into place,
/// so that whoever sees `path` appear can connect at once.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let mut staging = path.as_os_str().to_owned();
    staging.push(format!(".{}", std::process::id()));
    let staging = PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    match bind_at(&staging) {
        Ok(listener) => match std::fs::rename(&staging, path) {
            Ok(()) => Ok(listener),
            Err(e) => {
                let _ = std::fs::remove_file(&staging);
                Err(e)
            }
        },
        // The longer staging name may be what does not fit: bind in place.
        Err(_) => bind_at(path),
    }
}

fn bind_at(path: &Path) -> io::Result<UnixListener> {
    // SAFETY: umask is a plain syscall; no other thread creates files now.
    let old = unsafe { nix::libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { nix::libc::umask(old) };
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn accept_loop(
    listener: UnixListener,
    requests: mpsc::UnboundedSender<Envelope>,
    taps: Arc<Registry>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        match listener.accept().await {
            Ok((mut stream, _)) => {
                if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
                    let requests = requests.clone();
                    let taps = Arc::clone(&taps);
                    tokio::spawn(async move {
                        serve(stream, requests, &taps).await;
                        drop(slot);
                    });
                } else {
                    let busy = Reply::failed(format!(
                        "too many control clients ({MAX_CLIENTS} connected); try again"
                    ));
                    // Best effort and never waited on: the client may not read.
                    let _ = stream.try_write(&busy.to_line());
                    let _ = stream.shutdown().await;
                }
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::EMFILE) => {
                // Out of descriptors: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(_) => {}
        }
    }
}

/// One client: requests in, replies out, until it hangs up. A silent client
/// only holds its own task.
async fn serve(stream: UnixStream, requests: mpsc::UnboundedSender<Envelope>, taps: &Registry) {
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let Ok(n) = (&mut reader)
            .take(MAX_REQUEST)
            .read_until(b'\n', &mut line)
            .await
        else {
            return;
        };
        if n == 0 {
            return;
        }
        let too_long = !line.ends_with(b"\n") && n as u64 == MAX_REQUEST;
        let reply = if too_long {
            Reply::failed("request too long")
        } else if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        } else {
            match serde_json::from_slice::<Request>(&line) {
                Ok(Request::Logs {
                    targets,
                    lines,
                    follow,
                }) => {
                    streams::logs(taps, &targets, lines, follow, reader, write).await;
                    return;
                }
                Ok(Request::Attach { target, cols, rows }) => {
                    streams::attach(taps, &target, (cols, rows), reader, write).await;
                    return;
                }
                Ok(request) => {
                    let (tx, rx) = oneshot::channel();
                    if requests.send((request, tx)).is_err() {
                        return;
                    }
                    match rx.await {
                        Ok(reply) => reply,
                        Err(_) => return,
                    }
                }
                Err(e) => Reply::failed(format!("malformed request: {e}")),
            }
        };
        if write.write_all(&reply.to_line()).await.is_err() || too_long {
            return;
        }
    }
}
