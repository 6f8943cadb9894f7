//! The two requests the control server answers itself, from the taps, by
//! turning the connection into a stream after the reply: `logs` (the last
//! lines, then with `follow` the new ones) and `attach` (frames each way
//! between the client and an instance's pty; see [`super::frame`]).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::sync::mpsc;

use super::frame;
use super::protocol::Reply;
use crate::taps::Registry;
use crate::taps::ring::FOLLOW_QUEUE;
use crate::taps::terminal::Refusal;
use crate::tty;

/// `logs`: the reply, each target's last `lines` lines, and with `follow`
/// what comes next until the app ends or the client hangs up.
pub async fn logs<R, W>(
    taps: &Registry,
    targets: &[String],
    lines: usize,
    follow: bool,
    mut reader: R,
    mut write: W,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let entries = match taps.select(targets) {
        Ok(entries) => entries,
        Err(why) => {
            let _ = write.write_all(&Reply::failed(why).to_line()).await;
            return;
        }
    };
    if write
        .write_all(&Reply::done("logs").to_line())
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::channel(FOLLOW_QUEUE);
    for entry in &entries {
        let tail = if follow {
            entry.log().tail_and_follow(lines, tx.clone())
        } else {
            entry.log().tail(lines)
        };
        if write.write_all(&tail).await.is_err() {
            return;
        }
    }
    drop(tx);
    if !follow {
        return;
    }
    let mut scratch = [0u8; 256];
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(chunk) => if write.write_all(&chunk).await.is_err() { return },
                // Let go for falling behind, or no target left.
                None => return,
            },
            // Anything but more input (a hang-up, an error) ends the follow.
            read = reader.read(&mut scratch) => if !matches!(read, Ok(1..)) { return },
        }
    }
}

/// `attach`: the reply, then the pty's raw output to the client and its keys
/// and window sizes to the pty, until the run ends or the client leaves.
pub async fn attach<R, W>(
    taps: &Registry,
    target: &str,
    size: (u16, u16),
    mut reader: R,
    mut write: W,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (name, master, mut output) = match open(taps, target) {
        Ok(found) => found,
        Err(why) => {
            let _ = write.write_all(&Reply::failed(why).to_line()).await;
            return;
        }
    };
    // SAFETY: the AsyncFd owns the duplicate, so the descriptor stays open and
    // the same for the AsyncFd's whole life.
    let Ok(keys) = master.try_clone().and_then(|fd| unsafe {
        AsyncFd::register_with_interest(fd, Interest::WRITABLE).map_err(|e| e.into_parts().1)
    }) else {
        let _ = write
            .write_all(&Reply::failed(format!("cannot open the terminal of {name}")).to_line())
            .await;
        return;
    };
    if size.0 > 0 && size.1 > 0 {
        resize(&master, size);
    }
    let hello = Reply::done(format!("attached to {name}")).to_line();
    if write.write_all(&hello).await.is_err() {
        return;
    }
    // Each direction is one loop of its own (a frame read is not safe to
    // cancel halfway); whichever ends first ends the attach.
    let to_client = async {
        while let Some(chunk) = output.recv().await {
            if write
                .write_all(&frame::encode(frame::DATA, &chunk))
                .await
                .is_err()
            {
                return;
            }
        }
        let why = format!("{name} exited");
        let _ = write
            .write_all(&frame::encode(frame::EXIT, why.as_bytes()))
            .await;
    };
    let from_client = async {
        loop {
            match frame::read(&mut reader).await {
                Ok(Some((frame::DATA, bytes))) => {
                    if write_keys(&keys, &bytes).await.is_err() {
                        return;
                    }
                }
                Ok(Some((frame::WINDOW, payload))) => {
                    if let Some(size) = frame::parse_window(&payload) {
                        resize(&master, size);
                    }
                }
                // Unknown kinds are skipped, so that clients can grow.
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    };
    tokio::select! {
        () = to_client => {}
        () = from_client => {}
    }
}

type Attached = (String, Arc<OwnedFd>, mpsc::Receiver<Vec<u8>>);

fn open(taps: &Registry, target: &str) -> Result<Attached, String> {
    let entry = taps
        .find(target)
        .ok_or_else(|| format!("no such process or instance: {target}"))?;
    let name = entry.name.clone();
    let Some(terminal) = &entry.terminal else {
        return Err(format!(
            "{name} has no terminal to attach to: start it with `ganger start --tty {kind}`, \
             or set `tty = true` under [process.{kind}] in ganger.toml",
            kind = entry.kind
        ));
    };
    match terminal.attach() {
        Ok((master, output)) => Ok((name, master, output)),
        Err(Refusal::NotRunning) => Err(format!("{name} is not running")),
        Err(Refusal::Full) => Err(format!(
            "too many clients attached to {name} ({} at most)",
            crate::taps::terminal::MAX_CLIENTS
        )),
    }
}

fn resize(master: &OwnedFd, (cols, rows): (u16, u16)) {
    if cols > 0 && rows > 0 {
        tty::resize(master, tty::Size { cols, rows });
    }
}

/// Writes keys to the pty, waiting (without blocking the loop) while its
/// input queue is full.
async fn write_keys(fd: &AsyncFd<OwnedFd>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let mut guard = fd.writable().await?;
        match guard.try_io(|inner| {
            // SAFETY: bytes is a valid readable slice for its whole length.
            let n = unsafe {
                nix::libc::write(
                    inner.get_ref().as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                )
            };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        }) {
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}
