//! How a type's `ganger.toml` settings (`restart`, `oneshot`, `stop_signal`,
//! `timeout`) read in an export: what the process manager does when an
//! instance exits, and how it stops one.
//!
//! `start` stops the whole app when a type that is not restarted exits; no
//! process manager has that rule, and foreman's templates keep every process
//! up. So a type without `restart` (or with `"never"`) is kept up here as
//! before, and a type that should run once says so with `oneshot`. Each format
//! module turns a [`Lifecycle`] into its own words; nothing here renders text.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::policy::{Restart, TypeRules};

/// What the process manager does when an instance of a type exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// A service, started again after every exit (the default).
    Always,
    /// A service started again after a failure (non-zero exit or a signal);
    /// a clean exit is let go.
    OnFailure,
    /// A one-shot task (`oneshot`): run once, never started again.
    Once,
    /// A one-shot task started again only after a failure
    /// (`oneshot` with `restart = "on-failure"`).
    OnceRetried,
}

impl Runs {
    /// From the settings: `restart = "always"` wins over `oneshot`, as in
    /// `start`, where a restarted type is never merely allowed to exit.
    #[must_use]
    pub fn from_rules(rules: &TypeRules) -> Self {
        match (rules.oneshot, rules.restart) {
            (_, Restart::Always) | (false, Restart::Never) => Runs::Always,
            (false, Restart::OnFailure) => Runs::OnFailure,
            (true, Restart::Never) => Runs::Once,
            (true, Restart::OnFailure) => Runs::OnceRetried,
        }
    }

    /// A task that is expected to exit, rather than a service.
    #[must_use]
    pub fn oneshot(self) -> bool {
        matches!(self, Runs::Once | Runs::OnceRetried)
    }

    /// Started again after a failure.
    #[must_use]
    pub fn retries_failure(self) -> bool {
        !matches!(self, Runs::Once)
    }
}

/// One type's exit and stop behaviour, resolved against the export's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub runs: Runs,
    /// What a graceful stop sends.
    pub stop_signal: Signal,
    /// The grace before SIGKILL: the type's `timeout`, else `-t`.
    pub timeout: Duration,
}

impl Lifecycle {
    /// The type's settings (defaults when it has none) with `-t` as the
    /// fallback timeout.
    #[must_use]
    pub fn new(rules: &TypeRules, default_timeout: Duration) -> Self {
        Lifecycle {
            runs: Runs::from_rules(rules),
            stop_signal: rules.stop_signal,
            timeout: rules.timeout.unwrap_or(default_timeout),
        }
    }

    /// The stop signal when it is not the SIGTERM every format sends anyway.
    #[must_use]
    pub fn custom_signal(&self) -> Option<Signal> {
        (self.stop_signal != Signal::SIGTERM).then_some(self.stop_signal)
    }

    /// The signal's name without `SIG` (`INT`): what `kill -s`, supervisord
    /// and most configuration formats take.
    #[must_use]
    pub fn signal_name(&self) -> &'static str {
        let full = self.stop_signal.as_str();
        full.strip_prefix("SIG").unwrap_or(full)
    }

    /// The timeout in whole seconds, rounded up, for formats that take integers.
    #[must_use]
    pub fn timeout_secs(&self) -> u64 {
        let secs = self.timeout.as_secs();
        if self.timeout.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(oneshot: bool, restart: Restart) -> TypeRules {
        TypeRules {
            restart,
            oneshot,
            ..TypeRules::default()
        }
    }

    #[test]
    fn restart_and_oneshot_combine() {
        assert_eq!(
            Runs::from_rules(&rules(false, Restart::Never)),
            Runs::Always
        );
        assert_eq!(
            Runs::from_rules(&rules(false, Restart::Always)),
            Runs::Always
        );
        assert_eq!(
            Runs::from_rules(&rules(false, Restart::OnFailure)),
            Runs::OnFailure
        );
        assert_eq!(Runs::from_rules(&rules(true, Restart::Never)), Runs::Once);
        assert_eq!(
            Runs::from_rules(&rules(true, Restart::OnFailure)),
            Runs::OnceRetried
        );
        assert_eq!(
            Runs::from_rules(&rules(true, Restart::Always)),
            Runs::Always
        );
    }

    #[test]
    fn timeouts_and_signals() {
        let mut type_rules = rules(false, Restart::Never);
        let life = Lifecycle::new(&type_rules, Duration::from_millis(2500));
        assert_eq!(life.timeout_secs(), 3);
        assert_eq!(life.custom_signal(), None);
        type_rules.stop_signal = Signal::SIGINT;
        type_rules.timeout = Some(Duration::from_secs(30));
        let life = Lifecycle::new(&type_rules, Duration::from_secs(5));
        assert_eq!(life.timeout_secs(), 30);
        assert_eq!(life.custom_signal(), Some(Signal::SIGINT));
        assert_eq!(life.signal_name(), "INT");
    }
}
