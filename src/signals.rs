//! OS signals in, an internal event enum out. Handlers are installed by
//! [`Signals::install`], first thing, before any spawn: as PID 1 ganger has no
//! default signal actions, and a SIGCHLD must never be missed.

use std::io;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

/// The signals that stop `start` (a second INT or TERM kills).
pub const STOP: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];
/// The signals `start` passes on to every instance.
pub const FORWARD: [Signal; 2] = [Signal::SIGUSR1, Signal::SIGUSR2];
/// Every signal `start` has a handler for: blocked from the start of `start`
/// until the handlers are installed, so that none is lost in between.
pub const ACTED_ON: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCHLD,
    Signal::SIGWINCH,
];

/// What a signal asks of the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalEvent {
    /// INT, TERM, HUP: stop the app (a second INT/TERM: kill it).
    Stop(Signal),
    /// USR1, USR2: pass to every process group.
    Forward(Signal),
    /// A child changed state: reap.
    Child,
    /// ganger's terminal changed size.
    Resize,
}

/// The signal streams the supervisor listens to.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
    child: tokio::signal::unix::Signal,
    winch: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs handlers for every signal ganger acts on. Needs a tokio runtime.
    pub fn install() -> io::Result<Self> {
        Ok(Signals {
            child: signal(SignalKind::child())?,
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
            winch: signal(SignalKind::window_change())?,
        })
    }

    /// The next signal. Children come first so that an exit is seen before a
    /// stop request that arrived with it.
    pub async fn recv(&mut self) -> SignalEvent {
        tokio::select! {
            biased;
            _ = self.child.recv() => SignalEvent::Child,
            _ = self.int.recv() => SignalEvent::Stop(Signal::SIGINT),
            _ = self.term.recv() => SignalEvent::Stop(Signal::SIGTERM),
            _ = self.hup.recv() => SignalEvent::Stop(Signal::SIGHUP),
            _ = self.usr1.recv() => SignalEvent::Forward(Signal::SIGUSR1),
            _ = self.usr2.recv() => SignalEvent::Forward(Signal::SIGUSR2),
            _ = self.winch.recv() => SignalEvent::Resize,
        }
    }
}
