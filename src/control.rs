//! The control socket: `ganger start` listens on a Unix socket, and `ganger ps`,
//! `restart`, `stop`, `scale` and `quit` talk to it.
//!
//! The protocol is one JSON object per line each way, so scripts can drive it
//! with `socat`. Requests: `{"cmd":"ps"}`, `{"cmd":"restart","targets":["web"]}`,
//! `{"cmd":"stop","targets":["web.2"]}`, `{"cmd":"scale","spec":"web=3"}`,
//! `{"cmd":"quit"}`. Every reply has `"ok"`; a failed one has `"error"`.
//! This module moves requests and replies; the supervisor decides.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// The longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Ps,
    Restart {
        #[serde(default)]
        targets: Vec<String>,
    },
    Stop {
        targets: Vec<String>,
    },
    Scale {
        spec: String,
    },
    Quit,
}

/// A request on its way to the supervisor, with where its reply goes.
pub type Envelope = (Request, oneshot::Sender<Value>);

/// An error reply.
#[must_use]
pub fn error_reply(message: &str) -> Value {
    json!({"ok": false, "error": message})
}

/// The socket `start` listens on; removed when dropped.
pub struct Server {
    path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
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
) -> Result<Result<Server, String>> {
    let fail = |what: &str, e: io::Error| Error::os(format!("{what} {}", path.display()), e);
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(Error::Control(format!(
                "{} exists and is not a socket (choose another with -s)",
                path.display()
            )));
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
    let server = Server {
        path: path.to_path_buf(),
    };
    tokio::spawn(accept_loop(listener, requests));
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

async fn accept_loop(listener: UnixListener, requests: mpsc::UnboundedSender<Envelope>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, requests.clone()));
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
async fn serve(stream: UnixStream, requests: mpsc::UnboundedSender<Envelope>) {
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
            error_reply("request too long")
        } else if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        } else {
            match serde_json::from_slice::<Request>(&line) {
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
                Err(e) => error_reply(&format!("malformed request: {e}")),
            }
        };
        let mut out = reply.to_string().into_bytes();
        out.push(b'\n');
        if write.write_all(&out).await.is_err() || too_long {
            return;
        }
    }
}

/// Sends one request to the app listening on `socket` and returns its reply;
/// an error reply becomes an [`Error`].
pub fn request(socket: &Path, request: &Value) -> Result<Value> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        Error::Control(match e.kind() {
            io::ErrorKind::NotFound => format!(
                "no ganger is running here: no control socket at {} (start one, or point -s at its socket)",
                socket.display()
            ),
            io::ErrorKind::ConnectionRefused => format!(
                "no ganger answers on {} (a leftover socket; the app is not running)",
                socket.display()
            ),
            _ => format!("cannot connect to {}: {e}", socket.display()),
        })
    })?;
    let mut line = request.to_string().into_bytes();
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| Error::os(format!("cannot write to {}", socket.display()), e))?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(|e| Error::os(format!("cannot read from {}", socket.display()), e))?;
    let reply: Value = serde_json::from_str(&answer)
        .map_err(|_| Error::Control(format!("no answer from {}", socket.display())))?;
    if reply["ok"] == Value::Bool(true) {
        Ok(reply)
    } else {
        Err(Error::Control(
            reply["error"]
                .as_str()
                .unwrap_or("the request failed")
                .to_string(),
        ))
    }
}

/// `ganger ps`: the instance table.
#[must_use]
pub fn format_ps(reply: &Value) -> String {
    let empty = Vec::new();
    let rows: Vec<[String; 6]> = reply["instances"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|i| {
            let text = |key: &str| match &i[key] {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let uptime = i["uptime"]
                .as_f64()
                .map_or_else(|| "-".to_string(), show_uptime);
            [
                text("name"),
                text("pid"),
                text("state"),
                uptime,
                text("restarts"),
                text("port"),
            ]
        })
        .collect();
    let header = ["NAME", "PID", "STATE", "UPTIME", "RESTARTS", "PORT"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn show_uptime(secs: f64) -> String {
    // Whole seconds are what a person reads; the fraction is in the JSON.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "uptime is small and positive"
    )]
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Writes `text` to stdout; a closed stdout is not an error worth a message.
pub fn print(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::os("cannot write to stdout", e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_garbage_does_not() {
        let parse = |s: &str| serde_json::from_str::<Request>(s);
        assert_eq!(parse(r#"{"cmd":"ps"}"#).ok(), Some(Request::Ps));
        assert_eq!(
            parse(r#"{"cmd":"restart"}"#).ok(),
            Some(Request::Restart { targets: vec![] })
        );
        assert_eq!(
            parse(r#"{"cmd":"scale","spec":"web=2"}"#).ok(),
            Some(Request::Scale {
                spec: "web=2".into()
            })
        );
        for bad in [r#"{"cmd":"stop"}"#, r#"{"cmd":"dance"}"#, "[]", "ps"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ps_table_is_aligned() {
        let reply = json!({"ok": true, "instances": [
            {"name": "web.1", "pid": 12, "state": "running", "uptime": 75.2, "restarts": 0, "port": 5000},
            {"name": "worker.10", "pid": null, "state": "restarting in 2s", "uptime": null, "restarts": 3, "port": 5109},
        ]});
        assert_eq!(
            format_ps(&reply),
            "NAME       PID  STATE             UPTIME  RESTARTS  PORT\n\
             web.1      12   running           1m15s   0         5000\n\
             worker.10  -    restarting in 2s  -       3         5109\n"
        );
    }
}
