//! Per-type rules: which types restart and which may exit (`--restart`,
//! `--can-die`, and `restart`/`oneshot` in `ganger.toml`), how each is asked to
//! stop and how long it may take, and the restart backoff schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::Result;
use crate::formation::unknown_process;
use crate::procfile::Procfile;

/// The first restart delay; each further one doubles it.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
/// The longest restart delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Uptime after which an instance's backoff starts over.
pub const BACKOFF_RESET: Duration = Duration::from_secs(30);

/// A set of process types, or all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Types {
    all: bool,
    names: BTreeSet<String>,
}

impl Types {
    /// Names (or `all`) checked against the Procfile.
    pub fn parse(list: &[String], procfile: &Procfile) -> Result<Self> {
        let mut types = Types::default();
        for name in list.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            if name == "all" {
                types.all = true;
            } else if procfile.find(name).is_some() {
                types.names.insert(name.to_string());
            } else {
                return Err(unknown_process(name, procfile));
            }
        }
        Ok(types)
    }

    /// Adds one type.
    pub fn insert(&mut self, name: &str) {
        self.names.insert(name.to_string());
    }

    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.all && self.names.is_empty()
    }
}

/// When a type is started again after it exits (`restart` in `ganger.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Restart {
    #[default]
    Never,
    /// After a non-zero exit or a death by signal; a clean exit is let go.
    OnFailure,
    Always,
}

/// What one type's settings say about its exits and its stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRules {
    pub restart: Restart,
    /// Expected to exit: exit 0 does not stop the app, any other exit does.
    pub oneshot: bool,
    /// What a graceful stop sends.
    pub stop_signal: Signal,
    /// The grace before SIGKILL, overriding `-t`.
    pub timeout: Option<Duration>,
}

impl Default for TypeRules {
    fn default() -> Self {
        TypeRules {
            restart: Restart::Never,
            oneshot: false,
            stop_signal: Signal::SIGTERM,
            timeout: None,
        }
    }
}

/// What to do when an instance of a type exits, and how to stop it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `--restart`.
    pub restart: Types,
    /// `--can-die`.
    pub can_die: Types,
    /// Per-type settings, by type name.
    pub types: BTreeMap<String, TypeRules>,
}

/// What an exit leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// Start it again (same PORT and PS) after a backoff.
    Restart,
    /// Let it go; the app keeps running.
    Allowed,
    /// Stop the whole app (foreman's rule).
    StopAll,
}

impl Policy {
    /// `--restart` and `--can-die` (type names, or `all`), checked against the Procfile.
    pub fn new(restart: &[String], can_die: &[String], procfile: &Procfile) -> Result<Self> {
        Ok(Policy {
            restart: Types::parse(restart, procfile)?,
            can_die: Types::parse(can_die, procfile)?,
            types: BTreeMap::new(),
        })
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.restart.is_empty() && self.can_die.is_empty() && self.types.is_empty()
    }

    /// The settings of type `name` (the defaults when it has none).
    #[must_use]
    pub fn rules(&self, name: &str) -> TypeRules {
        self.types.get(name).cloned().unwrap_or_default()
    }

    /// What happens when an instance of type `name` exits with `status`
    /// (128+n for a death by signal n). Restarting wins over being allowed to
    /// exit, which wins over foreman's rule.
    #[must_use]
    pub fn on_exit(&self, name: &str, status: i32) -> OnExit {
        let rules = self.rules(name);
        let restart = match rules.restart {
            Restart::Always => true,
            Restart::OnFailure => status != 0,
            Restart::Never => false,
        };
        if restart || self.restart.contains(name) {
            OnExit::Restart
        } else if self.can_die.contains(name)
            || (rules.oneshot && status == 0)
            || (rules.restart == Restart::OnFailure && status == 0)
        {
            OnExit::Allowed
        } else {
            OnExit::StopAll
        }
    }

    /// How `check` describes what an exit of type `name` does, if anything
    /// other than stopping the app.
    #[must_use]
    pub fn describe(&self, name: &str) -> Option<&'static str> {
        let rules = self.rules(name);
        if self.restart.contains(name) || rules.restart == Restart::Always {
            Some("restarts")
        } else if self.can_die.contains(name) {
            Some("can die")
        } else if rules.restart == Restart::OnFailure {
            Some("restarts on failure")
        } else if rules.oneshot {
            Some("oneshot")
        } else {
            None
        }
    }
}

/// The delay before restart number `attempt` (0-based since the last reset):
/// 0.5 s, 1 s, 2 s, ... capped at 30 s.
#[must_use]
pub fn backoff(attempt: u32) -> Duration {
    BACKOFF_START
        .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .map_or(BACKOFF_MAX, |d| d.min(BACKOFF_MAX))
}

/// `2s`, `0.5s`: a delay as the restart message shows it.
#[must_use]
pub fn show_delay(delay: Duration) -> String {
    if delay.subsec_millis() == 0 {
        format!("{}s", delay.as_secs())
    } else {
        format!("{}s", delay.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfile;
    use std::path::Path;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let schedule: Vec<String> = (0..9).map(|n| show_delay(backoff(n))).collect();
        assert_eq!(
            schedule,
            ["0.5s", "1s", "2s", "4s", "8s", "16s", "30s", "30s", "30s"]
        );
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn types_are_checked_against_the_procfile() {
        let pf = procfile::parse(Path::new("Procfile"), "web: a\nmigrate: b\n").expect("procfile");
        let policy = Policy::new(&["web".into()], &["all".into()], &pf).expect("policy");
        assert_eq!(policy.on_exit("web", 0), OnExit::Restart);
        assert_eq!(policy.on_exit("migrate", 1), OnExit::Allowed);
        let msg = Policy::new(&["wbe".into()], &[], &pf)
            .expect_err("unknown")
            .to_string();
        assert!(msg.contains("did you mean `web`?"), "{msg}");
        assert_eq!(
            Policy::new(&[], &[], &pf).expect("empty").on_exit("web", 0),
            OnExit::StopAll
        );
    }

    #[test]
    fn per_type_rules_decide_by_the_exit_status() {
        let mut policy = Policy::default();
        let set = |restart, oneshot| TypeRules {
            restart,
            oneshot,
            ..TypeRules::default()
        };
        policy
            .types
            .insert("web".into(), set(Restart::OnFailure, false));
        policy
            .types
            .insert("task".into(), set(Restart::Never, true));
        policy
            .types
            .insert("worker".into(), set(Restart::Always, false));
        assert_eq!(policy.on_exit("web", 1), OnExit::Restart);
        assert_eq!(policy.on_exit("web", 137), OnExit::Restart);
        assert_eq!(policy.on_exit("web", 0), OnExit::Allowed);
        assert_eq!(policy.on_exit("task", 0), OnExit::Allowed);
        assert_eq!(policy.on_exit("task", 3), OnExit::StopAll);
        assert_eq!(policy.on_exit("worker", 0), OnExit::Restart);
        assert_eq!(policy.on_exit("other", 0), OnExit::StopAll);
    }
}
