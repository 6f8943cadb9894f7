//! The start-up orchestration an export carries: the release phase, readiness
//! and `after`, resolved against the types the export actually writes.
//!
//! Owns which type is the release phase, which dependencies survive into an
//! export (types with instances only), and the shell checks that stand in for
//! ganger's own readiness probes where a format runs a command to decide
//! (Compose `healthcheck`, systemd `ExecStartPost=`). Each format module turns
//! an [`Order`] into its own words; the text here is plain shell, unquoted for
//! any format.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Export, Format, Process};
use crate::process_type::Readiness;

/// Heroku's release phase: the Procfile entry `start` runs first, once.
pub const RELEASE: &str = "release";

/// One type's place in the start-up order.
#[derive(Debug, Clone, Default)]
pub struct Order {
    /// When an instance counts as ready.
    pub ready: Readiness,
    /// How long it may take to get there.
    pub ready_timeout: Duration,
    /// The types it starts after, as exported: only types with instances,
    /// never itself and never the release phase (every type waits for that).
    pub after: Vec<String>,
}

/// A readiness condition a format can check by running something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe<'a> {
    /// A socket listens on the port.
    Port,
    /// The command exits 0.
    Exec(&'a str),
    /// `GET http://127.0.0.1:PORT/PATH` answers 2xx or 3xx.
    Http(&'a str),
}

impl Process {
    /// Whether this is the release phase.
    #[must_use]
    pub fn is_release(&self) -> bool {
        self.name == RELEASE
    }

    /// The probe a format can run for this type: none for `started`, `notify`
    /// and `log`, and none for a task (it is done when it exits, not ready).
    #[must_use]
    pub fn probe(&self) -> Option<Probe<'_>> {
        if self.life.runs.oneshot() {
            return None;
        }
        match &self.order.ready {
            Readiness::Port => Some(Probe::Port),
            Readiness::Exec(cmd) => Some(Probe::Exec(cmd)),
            Readiness::Http(path) => Some(Probe::Http(path)),
            Readiness::Started | Readiness::Notify | Readiness::Log(_) => None,
        }
    }

    /// Whether the type says it is ready over `$NOTIFY_SOCKET` (a task never does).
    #[must_use]
    pub fn notifies(&self) -> bool {
        matches!(self.order.ready, Readiness::Notify) && !self.life.runs.oneshot()
    }
}

impl Export {
    /// The release phase, when the export has one.
    #[must_use]
    pub fn release(&self) -> Option<&Process> {
        self.processes.iter().find(|p| p.is_release())
    }

    /// The types `process` starts after, in Procfile order.
    pub fn dependencies<'a>(&'a self, process: &'a Process) -> impl Iterator<Item = &'a Process> {
        self.processes
            .iter()
            .filter(|p| process.order.after.contains(&p.name))
    }

    /// Whether anything in the export asks for an order of start-up.
    #[must_use]
    pub fn orders_start_up(&self) -> bool {
        self.processes.iter().any(|p| {
            p.is_release()
                || !p.order.after.is_empty()
                || !matches!(p.order.ready, Readiness::Started)
        })
    }

    /// The one-line warning for a format that starts everything at once.
    #[must_use]
    pub fn unordered_warning(format: Format) -> String {
        format!(
            "warning: {} cannot express start-up order: `release` first, `after` and `ready` are \
             not enforced there (release runs once, alongside the other programs)\n",
            format.name()
        )
    }
}

/// Fills in each type's exported [`Order`]: drops dependencies on types the
/// export does not write, on itself and on `release`. The release phase itself
/// runs first and waits for nothing, so its own `after` and `ready` are dropped.
pub fn resolve(processes: &mut [Process]) {
    let present: Vec<String> = processes.iter().map(|p| p.name.clone()).collect();
    for process in processes.iter_mut() {
        if process.is_release() {
            process.order.after.clear();
            process.order.ready = Readiness::Started;
            continue;
        }
        let name = process.name.clone();
        process
            .order
            .after
            .retain(|dep| dep != &name && dep != RELEASE && present.contains(dep));
    }
}

/// A shell command that exits 0 when `probe` holds for an instance on `port`.
///
/// `port` reads the kernel's table of listening sockets, as ganger does, so
/// the app gets no probe traffic and the check needs nothing but `grep`
/// (busybox has it, as has every Debian or Alpine image). `http` needs `curl`
/// or `wget` (tried in that order; busybox's `wget` is enough). `exec` is the
/// command itself, run by `/bin/sh -c` with the instance's environment.
#[must_use]
pub fn check_command(probe: Probe<'_>, port: u16) -> String {
    match probe {
        Probe::Port => port_check(port),
        Probe::Exec(cmd) => cmd.to_string(),
        Probe::Http(path) => {
            let url = super::sh_quote(&format!("http://127.0.0.1:{port}{path}"));
            // curl -f fails on 4xx/5xx only, so a 3xx counts as ready, as in `start`.
            format!("curl -fs -o /dev/null {url} || wget -q -O /dev/null {url}")
        }
    }
}

/// A shell loop that runs the check every second until it holds, for a
/// format that only waits for a command to finish (systemd's
/// `ExecStartPost=`). An `exec` command gets its own `/bin/sh -c`, so that a
/// compound command stays one condition.
#[must_use]
pub fn poll_command(probe: Probe<'_>, port: u16) -> String {
    let condition = match probe {
        Probe::Exec(cmd) => format!("/bin/sh -c {}", super::sh_quote(cmd)),
        Probe::Port | Probe::Http(_) => check_command(probe, port),
    };
    format!("until {condition}; do sleep 1; done")
}

/// `grep` for a socket in state LISTEN (`0A`) on `port` (upper-case hex after
/// the local address) in `/proc/net/tcp` or `tcp6`.
fn port_check(port: u16) -> String {
    let mut pattern = String::from("^ *[0-9]+: [0-9A-F]+:");
    let _ = write!(pattern, "{port:04X}");
    pattern.push_str(" [0-9A-F]+:[0-9A-F]+ 0A ");
    format!("grep -Eqs '{pattern}' /proc/net/tcp /proc/net/tcp6")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_check_matches_a_listening_socket_only() {
        let check = port_check(5000);
        assert_eq!(
            check,
            "grep -Eqs '^ *[0-9]+: [0-9A-F]+:1388 [0-9A-F]+:[0-9A-F]+ 0A ' /proc/net/tcp /proc/net/tcp6"
        );
    }

    #[test]
    fn http_check_quotes_the_path() {
        let check = check_command(Probe::Http("/it's"), 80);
        assert!(check.starts_with("curl -fs -o /dev/null 'http://127.0.0.1:80/it'\\''s' || wget"));
    }
}
