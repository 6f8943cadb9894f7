//! Which types restart and which may exit (`--restart`, `--can-die`), and the
//! restart backoff schedule.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::cli::PolicyArgs;
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
    fn parse(list: &[String], procfile: &Procfile) -> Result<Self> {
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

    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.all && self.names.is_empty()
    }
}

/// What to do when an instance of a type exits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub restart: Types,
    pub can_die: Types,
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
    /// Checks the named types against the Procfile.
    pub fn new(args: &PolicyArgs, procfile: &Procfile) -> Result<Self> {
        Ok(Policy {
            restart: Types::parse(&args.restart, procfile)?,
            can_die: Types::parse(&args.can_die, procfile)?,
        })
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.restart.is_empty() && self.can_die.is_empty()
    }

    /// What happens when an instance of type `name` exits. Restarting wins over
    /// being allowed to die.
    #[must_use]
    pub fn on_exit(&self, name: &str) -> OnExit {
        if self.restart.contains(name) {
            OnExit::Restart
        } else if self.can_die.contains(name) {
            OnExit::Allowed
        } else {
            OnExit::StopAll
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
        let args = PolicyArgs {
            restart: vec!["web".into()],
            can_die: vec!["all".into()],
        };
        let policy = Policy::new(&args, &pf).expect("policy");
        assert_eq!(policy.on_exit("web"), OnExit::Restart);
        assert_eq!(policy.on_exit("migrate"), OnExit::Allowed);
        let bad = PolicyArgs {
            restart: vec!["wbe".into()],
            can_die: vec![],
        };
        let msg = Policy::new(&bad, &pf).expect_err("unknown").to_string();
        assert!(msg.contains("did you mean `web`?"), "{msg}");
        assert_eq!(
            Policy::new(&PolicyArgs::default(), &pf)
                .expect("empty")
                .on_exit("web"),
            OnExit::StopAll
        );
    }
}
