//! What a process type is set up to do beyond its command: its exit and stop
//! rules, a terminal, when it counts as ready, and what it starts after. Filled
//! from `ganger.toml` by `settings`; read by `start`, `check` and `export`.

use std::time::Duration;

use crate::policy::TypeRules;

/// How long an instance may take to become ready, unless its type says.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// When an instance counts as ready.
#[derive(Debug, Clone, Default)]
pub enum Readiness {
    /// As soon as it is spawned (foreman's behaviour).
    #[default]
    Started,
    /// When a socket listens on its `$PORT`.
    Port,
    /// When it sends `READY=1` over `$NOTIFY_SOCKET`.
    Notify,
    /// When a line of its output matches.
    Log(regex::Regex),
    /// When this command exits 0.
    Exec(String),
    /// When `GET http://127.0.0.1:$PORT/PATH` answers 2xx or 3xx.
    Http(String),
}

impl Readiness {
    /// `port`, `log /^ready/`: how `check` shows it.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Readiness::Started => "started".to_string(),
            Readiness::Port => "port".to_string(),
            Readiness::Notify => "notify".to_string(),
            Readiness::Log(re) => format!("log /{}/", re.as_str()),
            Readiness::Exec(cmd) => format!("exec `{cmd}`"),
            Readiness::Http(path) => format!("http {path}"),
        }
    }
}

/// Everything `ganger.toml` says about one type.
#[derive(Debug, Clone, Default)]
pub struct ProcessSettings {
    pub rules: TypeRules,
    pub tty: bool,
    pub ready: Readiness,
    pub ready_timeout: Option<Duration>,
    pub after: Vec<String>,
}
