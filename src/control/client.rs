//! The client side of the control socket: one request, one reply, bounded in
//! time, and the `ps` table; and `logs`, which reads on after the reply.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{Reply, Request, Row};
use crate::error::{Error, Result};

/// How long a client waits for a ganger that does not answer (a frozen or
/// overloaded one) before it gives up.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends one request to the app listening on `socket` and returns its reply;
/// an error reply becomes an [`Error`].
pub fn request(socket: &Path, request: &Request) -> Result<Reply> {
    open(socket, request).map(|(_, reply)| reply)
}

/// Sends one request and reads its reply line, leaving the connection open
/// for what follows it (`logs`, `attach`), with no timeout left on it.
pub fn open(socket: &Path, request: &Request) -> Result<(UnixStream, Reply)> {
    let stream = UnixStream::connect(socket).map_err(|e| {
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
    let timed_out = || {
        Error::Control(format!(
            "no answer from {} within {}s (is that ganger stopped or frozen?)",
            socket.display(),
            CLIENT_TIMEOUT.as_secs()
        ))
    };
    let io_error = |what: &str, e: io::Error| {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            timed_out()
        } else {
            Error::os(format!("cannot {what} {}", socket.display()), e)
        }
    };
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
        .map_err(|e| io_error("set a timeout on", e))?;
    let mut line = serde_json::to_vec(request)
        .map_err(|e| Error::Control(format!("cannot encode the request: {e}")))?;
    line.push(b'\n');
    match (&stream).write_all(&line) {
        // A server that turned us away has said why before closing: read it.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.map_err(|e| io_error("write to", e))?,
    }
    let answer = if request.is_stream() {
        read_line(&stream)
    } else {
        let mut answer = Vec::new();
        BufReader::new(&stream)
            .read_until(b'\n', &mut answer)
            .map(|_| answer)
    }
    .map_err(|e| io_error("read from", e))?;
    let reply: Reply = serde_json::from_slice(&answer)
        .map_err(|_| Error::Control(format!("no answer from {}", socket.display())))?;
    if !reply.ok {
        return Err(Error::Control(
            reply
                .error
                .unwrap_or_else(|| "the request failed".to_string()),
        ));
    }
    stream
        .set_read_timeout(None)
        .and_then(|()| stream.set_write_timeout(None))
        .map_err(|e| io_error("set a timeout on", e))?;
    Ok((stream, reply))
}

/// The reply line of a stream request, read a byte at a time so that nothing
/// after it is taken from the stream (it is short).
fn read_line(mut stream: &UnixStream) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < MAX_REPLY {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(line)
}

/// The longest reply line of a stream request read.
const MAX_REPLY: usize = 64 * 1024;

/// `ganger logs`: copies what the server streams to stdout until it ends; a
/// reader of stdout that went away ends it quietly.
pub fn logs(socket: &Path, request: &Request) -> Result<()> {
    let (mut stream, _) = open(socket, request)?;
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::os("cannot read from the control socket", e)),
        };
        match out.write_all(&buf[..n]).and_then(|()| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Error::os("cannot write to stdout", e)),
            Ok(()) => {}
        }
    }
}

/// `ganger ps`: the instance table.
#[must_use]
pub fn format_ps(rows: &[Row]) -> String {
    let dash = || "-".to_string();
    let rows: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.pid.map_or_else(dash, |p| p.to_string()),
                r.state.clone(),
                r.uptime.map_or_else(dash, show_uptime),
                r.restarts.to_string(),
                r.port.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_table_is_aligned() {
        let row = |name: &str, pid, state: &str, uptime, restarts, port| Row {
            name: name.into(),
            kind: name.split('.').next().unwrap_or_default().into(),
            pid,
            state: state.into(),
            uptime,
            restarts,
            port,
        };
        let rows = [
            row("web.1", Some(12), "running", Some(75.2), 0, 5000),
            row("worker.10", None, "restarting in 2s", None, 3, 5109),
        ];
        assert_eq!(
            format_ps(&rows),
            "NAME       PID  STATE             UPTIME  RESTARTS  PORT\n\
             web.1      12   running           1m15s   0         5000\n\
             worker.10  -    restarting in 2s  -       3         5109\n"
        );
    }
}
