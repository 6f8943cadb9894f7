//! What the core is told about each type: what an exit means, how a stop is
//! asked for and how long it may take, and what start-up waits for.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::policy::{OnExit, Policy};
use crate::reaper::Exit;

/// Per-type rules: what an exit means, how a stop is asked for, how long it may take.
#[derive(Debug, Clone)]
pub struct Rules {
    pub policy: Policy,
    pub timeout: Duration,
    pub order: Order,
}

/// What start-up waits for: the release phase, readiness, and `after`.
#[derive(Debug, Clone, Default)]
pub struct Order {
    /// The type that runs first, alone, and must exit 0 before anything
    /// else starts (Heroku's release phase).
    pub first: Option<String>,
    /// Type -> the types it starts after.
    pub after: BTreeMap<String, Vec<String>>,
    /// Types whose readiness is probed: how (for messages) and how long it may take.
    pub probed: BTreeMap<String, (String, Duration)>,
}

impl Rules {
    #[must_use]
    pub fn on_exit(&self, name: &str, exit: Exit) -> OnExit {
        // The release phase is done when it exits 0; any other exit stops there.
        if self.order.first.as_deref() == Some(name) {
            return if exit.status() == 0 {
                OnExit::Allowed
            } else {
                OnExit::StopAll
            };
        }
        self.policy.on_exit(name, exit.status())
    }

    /// The graceful stop signal of type `name`.
    #[must_use]
    pub fn stop_signal(&self, name: &str) -> Signal {
        self.policy.rules(name).stop_signal
    }

    /// The grace between stop signal and SIGKILL for type `name`.
    #[must_use]
    pub fn timeout(&self, name: &str) -> Duration {
        self.policy.rules(name).timeout.unwrap_or(self.timeout)
    }

    /// How type `name` is probed for readiness and for how long, if it is.
    #[must_use]
    pub fn probe(&self, name: &str) -> Option<&(String, Duration)> {
        self.order.probed.get(name)
    }

    /// Whether type `name` is expected to exit: exit 0 counts as done.
    #[must_use]
    pub fn finishes(&self, name: &str) -> bool {
        self.order.first.as_deref() == Some(name) || self.policy.rules(name).oneshot
    }

    /// The longest grace any type has: the whole stop's deadline.
    #[must_use]
    pub fn longest_timeout(&self) -> Duration {
        self.policy
            .types
            .values()
            .filter_map(|r| r.timeout)
            .fold(self.timeout, Duration::max)
    }
}
