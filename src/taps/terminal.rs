//! The pseudo-terminal of one instance, as `ganger attach` and `start -i` see
//! it: the master of the current run (for keys and the window size), and the
//! attached clients, each of which gets a copy of the raw output.
//!
//! The relay hands every read here; with nobody attached that costs one
//! atomic load. A client that falls behind is let go rather than waited for,
//! so an attached terminal can never slow the app down. When the run's output
//! ends, every client of that run is let go, which ends its attach.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

/// Clients attached to one instance at once.
pub const MAX_CLIENTS: usize = 16;
/// Chunks of output a client may fall behind before it is let go.
pub const CLIENT_QUEUE: usize = 64;

/// One instance's terminal.
#[derive(Debug, Default)]
pub struct Terminal {
    state: Mutex<State>,
    /// Clients attached now, read without the lock on every relay read.
    attached: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    run: u32,
    /// The pty master of `run`, while its output has not ended.
    master: Option<Arc<OwnedFd>>,
    clients: Vec<mpsc::Sender<Vec<u8>>>,
}

/// Why a client cannot attach.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NotRunning,
    Full,
}

impl Terminal {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Run `run` started on the pty whose master `master` is.
    pub fn open(&self, run: u32, master: OwnedFd) {
        let mut state = self.state();
        state.run = run;
        state.master = Some(Arc::new(master));
        state.clients.clear();
        self.attached.store(0, Ordering::Relaxed);
    }

    /// The output of run `run` ended: its clients are let go.
    pub fn close(&self, run: u32) {
        let mut state = self.state();
        if state.run == run {
            state.master = None;
            state.clients.clear();
            self.attached.store(0, Ordering::Relaxed);
        }
    }

    /// Copies `bytes`, raw output just read from the pty, to every client.
    pub fn output(&self, bytes: &[u8]) {
        if bytes.is_empty() || self.attached.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut state = self.state();
        state
            .clients
            .retain(|tx| tx.try_send(bytes.to_vec()).is_ok());
        self.attached.store(state.clients.len(), Ordering::Relaxed);
    }

    /// Attaches a client: the master to write keys to, and a queue of output.
    pub fn attach(&self) -> Result<(Arc<OwnedFd>, mpsc::Receiver<Vec<u8>>), Refusal> {
        let mut state = self.state();
        let Some(master) = state.master.clone() else {
            return Err(Refusal::NotRunning);
        };
        state.clients.retain(|tx| !tx.is_closed());
        if state.clients.len() >= MAX_CLIENTS {
            return Err(Refusal::Full);
        }
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        state.clients.push(tx);
        self.attached.store(state.clients.len(), Ordering::Relaxed);
        Ok((master, rx))
    }

    /// The master of the current run, while it runs.
    #[must_use]
    pub fn master(&self) -> Option<Arc<OwnedFd>> {
        self.state().master.clone()
    }
}

/// Writes all of `bytes` to a non-blocking descriptor, waiting for room
/// (for a thread of its own: this blocks).
pub fn write_blocking(fd: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
                poll(&mut fds, PollTimeout::NONE)?;
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> OwnedFd {
        crate::tty::open(crate::tty::DEFAULT).expect("openpty").0
    }

    #[test]
    fn clients_get_output_until_their_run_ends() {
        let terminal = Terminal::default();
        assert_eq!(terminal.attach().err(), Some(Refusal::NotRunning));
        terminal.open(1, master());
        let (_, mut rx) = terminal.attach().expect("attach");
        terminal.output(b"hi");
        assert_eq!(rx.try_recv().ok(), Some(b"hi".to_vec()));
        // The end of an earlier run does not end this one.
        terminal.close(0);
        assert!(terminal.master().is_some());
        terminal.close(1);
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        assert!(terminal.master().is_none());
    }

    #[test]
    fn clients_are_bounded() {
        let terminal = Terminal::default();
        terminal.open(1, master());
        let held: Vec<_> = (0..MAX_CLIENTS)
            .map(|_| terminal.attach().expect("attach"))
            .collect();
        assert_eq!(terminal.attach().err(), Some(Refusal::Full));
        drop(held);
        assert!(terminal.attach().is_ok());
    }
}
