//! One instance of a process type and where it is in its life.
//!
//! Ownership is the state: a pid (which is also the instance's process group)
//! lives only inside the states of a process ganger has not reaped yet, so
//! nothing can signal an instance that has exited: its number may already be
//! someone else's.

use std::time::Instant;

use nix::unistd::Pid;

use crate::formation;
use crate::reaper::Exit;

/// What follows a stop a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Start it again (`restart`).
    Start,
    /// Leave it stopped (`stop`).
    Stay,
    /// Forget it (`scale` down).
    Remove,
}

/// Where one instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// To be spawned (queued).
    Pending,
    /// Held until what it starts after is ready (or the release phase is done).
    Waiting,
    /// Running as `pid`, the leader of its own process group, not ready yet:
    /// the app stops if it is not ready by `deadline`.
    Starting {
        pid: Pid,
        since: Instant,
        deadline: Instant,
    },
    /// Running as `pid`, the leader of its own process group, and ready.
    Running { pid: Pid, since: Instant },
    /// Being stopped: its stop signal is `sent` (or waits until the types
    /// that start after it have exited); SIGKILL at `deadline` (unless
    /// `killed` already).
    Stopping {
        pid: Pid,
        deadline: Instant,
        sent: bool,
        killed: bool,
        then: AfterStop,
    },
    /// Exited, and starts again at `until` (restart policy).
    Backoff { until: Instant, exit: Exit },
    /// Stopped by a client; down until a restart or scale starts it.
    Stopped,
    /// Scaled away; hidden until a scale up brings its number back.
    Removed,
    /// Could not be spawned.
    Failed,
    /// Exited for good.
    Exited(Exit),
}

impl State {
    /// The process ganger still owns (not reaped), if any.
    #[must_use]
    pub fn pid(self) -> Option<Pid> {
        match self {
            State::Starting { pid, .. }
            | State::Running { pid, .. }
            | State::Stopping { pid, .. } => Some(pid),
            _ => None,
        }
    }
}

/// An exit line held back until the instance's output is drained (so that it
/// comes after the last line), together with the group that run left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitNote {
    pub text: String,
    /// Printed at this moment even if the output has not closed.
    pub by: Instant,
    /// The process group of the run that exited, cleared once drained.
    pub group: Pid,
}

/// One instance: what to run, and where it is.
#[derive(Debug, Clone)]
pub struct Instance {
    pub spec: formation::Instance,
    pub state: State,
    /// Runs started so far; output streams are counted per run.
    pub run: u32,
    /// Output streams of the current run not yet at end of file.
    pub open_streams: u8,
    pub exit_note: Option<ExitNote>,
    /// Restarts so far, and the backoff step (reset after a long uptime).
    pub restarts: u32,
    pub backoff_step: u32,
    /// Whether its type's readiness is probed (`ps` says `ready`, not `running`).
    pub probed: bool,
    /// The last `STATUS=` it sent over the notify socket.
    pub status: Option<String>,
}

impl Instance {
    #[must_use]
    pub fn new(spec: formation::Instance) -> Self {
        Instance {
            spec,
            state: State::Pending,
            run: 0,
            open_streams: 0,
            exit_note: None,
            restarts: 0,
            backoff_step: 0,
            probed: false,
            status: None,
        }
    }

    /// `web.1`.
    #[must_use]
    pub fn ps(&self) -> String {
        self.spec.ps()
    }

    /// Whether the instance has (or is about to have) a process.
    #[must_use]
    pub fn is_live(&self) -> bool {
        matches!(
            self.state,
            State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Backoff { .. }
        )
    }

    /// Whether `ps` and targets see it.
    #[must_use]
    pub fn is_visible(&self) -> bool {
        self.state != State::Removed
    }

    /// The state as `ganger ps` shows it.
    #[must_use]
    pub fn describe(&self, now: Instant) -> String {
        match self.state {
            State::Pending | State::Starting { .. } => "starting".to_string(),
            State::Waiting => "waiting".to_string(),
            State::Running { .. } if self.probed => "ready".to_string(),
            State::Running { .. } => "running".to_string(),
            State::Stopping { .. } => "stopping".to_string(),
            State::Backoff { until, .. } => format!(
                "restarting in {}s",
                until.saturating_duration_since(now).as_secs_f64().ceil()
            ),
            State::Stopped => "stopped".to_string(),
            State::Removed => "removed".to_string(),
            State::Failed => "failed to start".to_string(),
            State::Exited(exit) => format!("exited {}", exit.status()),
        }
    }
}
