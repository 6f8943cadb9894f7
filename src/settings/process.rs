//! `[process.NAME]` tables checked against the Procfile and turned into typed
//! per-type settings: known type names, signals, restart modes, timeouts,
//! readiness probes (regexes compiled here) and `after` without cycles.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::Spanned;

use super::file::{Process, Ready, SettingsFile};
use crate::error::{Result, chain};
use crate::formation::unknown_process;
use crate::policy::Restart;
pub use crate::process_type::{ProcessSettings, Readiness};
use crate::procfile::Procfile;

/// The longest timeout accepted, as for `-t`.
const MAX_SECS: f64 = 24.0 * 60.0 * 60.0;
/// Checks every `[process.NAME]` table of `file` against `procfile`.
pub fn validate(
    file: &SettingsFile,
    procfile: &Procfile,
) -> Result<BTreeMap<String, ProcessSettings>> {
    let mut out = BTreeMap::new();
    for (name, table) in &file.doc.process {
        if procfile.find(name.get_ref()).is_none() {
            let why = chain(&unknown_process(name.get_ref(), procfile));
            return Err(file.error(name.span(), format!("[process.{}]: {why}", name.get_ref())));
        }
        out.insert(name.get_ref().clone(), one(file, procfile, name, table)?);
    }
    check_cycles(file, &out)?;
    Ok(out)
}

fn one(
    file: &SettingsFile,
    procfile: &Procfile,
    name: &Spanned<String>,
    table: &Process,
) -> Result<ProcessSettings> {
    let mut settings = ProcessSettings {
        tty: table.tty.unwrap_or(false),
        ..ProcessSettings::default()
    };
    settings.rules.oneshot = table.oneshot.unwrap_or(false);
    if let Some(restart) = &table.restart {
        settings.rules.restart = match restart.get_ref().as_str() {
            "never" => Restart::Never,
            "on-failure" | "on_failure" => Restart::OnFailure,
            "always" => Restart::Always,
            other => {
                return Err(file.error(
                    restart.span(),
                    format!("restart `{other}` is not \"never\", \"on-failure\" or \"always\""),
                ));
            }
        };
    }
    if let Some(signal) = &table.stop_signal {
        settings.rules.stop_signal = parse_signal(signal.get_ref()).ok_or_else(|| {
            file.error(
                signal.span(),
                format!(
                    "stop_signal `{}` is not a signal (TERM, INT, QUIT, HUP, USR1, ...)",
                    signal.get_ref()
                ),
            )
        })?;
    }
    if let Some(timeout) = &table.timeout {
        settings.rules.timeout = Some(seconds(file, timeout, "timeout", true)?);
    }
    if let Some(timeout) = &table.ready_timeout {
        settings.ready_timeout = Some(seconds(file, timeout, "ready_timeout", false)?);
    }
    if let Some(ready) = &table.ready {
        settings.ready = readiness(file, ready)?;
    }
    for dependency in table.after.iter().flatten() {
        let dep = dependency.get_ref();
        if procfile.find(dep).is_none() {
            let why = chain(&unknown_process(dep, procfile));
            return Err(file.error(dependency.span(), format!("after: {why}")));
        }
        if dep == name.get_ref() {
            return Err(file.error(
                dependency.span(),
                format!("`{dep}` cannot start after itself"),
            ));
        }
        if !settings.after.contains(dep) {
            settings.after.push(dep.clone());
        }
    }
    Ok(settings)
}

/// `TERM`, `SIGTERM`, `term` or a number.
fn parse_signal(text: &str) -> Option<Signal> {
    let upper = text.trim().to_ascii_uppercase();
    if let Ok(number) = upper.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).ok()
}

fn seconds(file: &SettingsFile, value: &Spanned<f64>, key: &str, zero: bool) -> Result<Duration> {
    let secs = *value.get_ref();
    let fits = secs.is_finite() && secs <= MAX_SECS && (secs > 0.0 || (zero && secs == 0.0));
    let least = if zero { "0 or more" } else { "more than 0" };
    if !fits {
        return Err(file.error(
            value.span(),
            format!("{key} must be a number of seconds, {least} and at most a day"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn readiness(file: &SettingsFile, ready: &Spanned<Ready>) -> Result<Readiness> {
    let fail = |why: String| file.error(ready.span(), why);
    match ready.get_ref() {
        Ready::Word(word) => match word.as_str() {
            "started" => Ok(Readiness::Started),
            "port" => Ok(Readiness::Port),
            "notify" => Ok(Readiness::Notify),
            other => Err(fail(format!(
                "ready `{other}` is not \"started\", \"port\", \"notify\", or a table such as {{ log = \"REGEX\" }}"
            ))),
        },
        Ready::Probe(probe) => match (&probe.log, &probe.exec, &probe.http) {
            (Some(pattern), None, None) => regex::Regex::new(pattern)
                .map(Readiness::Log)
                .map_err(|e| fail(format!("ready: bad log pattern: {e}"))),
            (None, Some(cmd), None) if !cmd.trim().is_empty() => Ok(Readiness::Exec(cmd.clone())),
            (None, None, Some(path)) if path.starts_with('/') => Ok(Readiness::Http(path.clone())),
            (None, None, Some(path)) => Err(fail(format!(
                "ready: http path `{path}` must start with `/`"
            ))),
            _ => Err(fail(
                "ready: a table needs exactly one of log, exec (not empty) or http".to_string(),
            )),
        },
    }
}

/// Errors naming the first cycle in `after`, such as `web -> worker -> web`.
fn check_cycles(file: &SettingsFile, settings: &BTreeMap<String, ProcessSettings>) -> Result<()> {
    fn visit<'a>(
        name: &'a str,
        settings: &'a BTreeMap<String, ProcessSettings>,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = path.iter().position(|n| *n == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name);
            return Some(cycle);
        }
        if done.contains(&name) {
            return None;
        }
        path.push(name);
        for dep in settings
            .get(name)
            .map(|s| s.after.as_slice())
            .unwrap_or_default()
        {
            if let Some(cycle) = visit(dep, settings, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.push(name);
        None
    }
    let mut done = Vec::new();
    for name in settings.keys() {
        if let Some(cycle) = visit(name, settings, &mut Vec::new(), &mut done) {
            let first = cycle[0];
            let span = file
                .doc
                .process
                .keys()
                .find(|k| k.get_ref() == first)
                .map_or(0..0, Spanned::span);
            return Err(file.error(span, format!("a cycle in `after`: {}", cycle.join(" -> "))));
        }
    }
    Ok(())
}

/// The types in the order they start: each after everything it waits for,
/// in levels (types of one level start together), Procfile order within one.
#[must_use]
pub fn start_order(
    procfile: &Procfile,
    settings: &BTreeMap<String, ProcessSettings>,
) -> Vec<Vec<String>> {
    let mut placed: Vec<String> = Vec::new();
    let mut levels = Vec::new();
    let names: Vec<&str> = procfile.entries.iter().map(|e| e.name.as_str()).collect();
    while placed.len() < names.len() {
        let level: Vec<String> = names
            .iter()
            .filter(|n| !placed.iter().any(|p| p == *n))
            .filter(|n| {
                settings
                    .get(**n)
                    .is_none_or(|s| s.after.iter().all(|d| placed.contains(d)))
            })
            .map(|n| (*n).to_string())
            .collect();
        if level.is_empty() {
            break; // a cycle, which validation has already refused
        }
        placed.extend(level.iter().cloned());
        levels.push(level);
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(toml: &str) -> Result<BTreeMap<String, ProcessSettings>> {
        let procfile = crate::procfile::parse(
            Path::new("Procfile"),
            "release: r\nweb: w\nworker: k\nclock: c\n",
        )
        .expect("procfile");
        let file = SettingsFile::parse(Path::new("ganger.toml"), toml.to_string())?;
        validate(&file, &procfile)
    }

    fn error(toml: &str) -> String {
        check(toml).expect_err("invalid").to_string()
    }

    #[test]
    fn settings_become_typed() {
        let s = check("[process.web]\nstop_signal = \"int\"\ntimeout = 0.5\nrestart = \"on-failure\"\nready = \"port\"\n[process.worker]\nafter = [\"web\"]\noneshot = true\ntty = true\nready = { log = \"^up\" }\n").expect("valid");
        assert_eq!(s["web"].rules.stop_signal, Signal::SIGINT);
        assert_eq!(s["web"].rules.timeout, Some(Duration::from_millis(500)));
        assert_eq!(s["web"].rules.restart, Restart::OnFailure);
        assert!(matches!(s["web"].ready, Readiness::Port));
        assert_eq!(s["worker"].after, ["web"]);
        assert!(s["worker"].rules.oneshot && s["worker"].tty);
        assert_eq!(s["worker"].ready.describe(), "log /^up/");
    }

    #[test]
    fn unknown_types_are_named_with_a_suggestion_and_their_place() {
        let msg = error("[process.wbe]\ntty = true\n");
        assert!(
            msg.starts_with(
                "ganger.toml:1:10: [process.wbe]: unknown process `wbe`: did you mean `web`?"
            ),
            "{msg}"
        );
        let msg = error("[process.web]\nafter = [\"wroker\"]\n");
        assert!(
            msg.starts_with(
                "ganger.toml:2:10: after: unknown process `wroker`: did you mean `worker`?"
            ),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_are_named_with_their_place() {
        assert!(
            error("[process.web]\nstop_signal = \"TERMINATE\"\n")
                .starts_with("ganger.toml:2:15: stop_signal")
        );
        assert!(error("[process.web]\nrestart = \"sometimes\"\n").contains("restart `sometimes`"));
        assert!(error("[process.web]\ntimeout = -1\n").contains("timeout must be"));
        assert!(error("[process.web]\nready_timeout = 0\n").contains("ready_timeout must be"));
        assert!(error("[process.web]\nready = { log = \"(\" }\n").contains("bad log pattern"));
        assert!(error("[process.web]\nready = \"soon\"\n").contains("ready `soon`"));
        assert!(
            error("[process.web]\nready = { http = \"health\" }\n").contains("must start with `/`")
        );
        assert!(
            error("[process.web]\nready = { log = \"a\", exec = \"b\" }\n").contains("exactly one")
        );
        assert!(error("[process.web]\nafter = [\"web\"]\n").contains("after itself"));
    }

    #[test]
    fn a_cycle_is_named() {
        let msg = error(
            "[process.web]\nafter = [\"worker\"]\n[process.worker]\nafter = [\"clock\"]\n[process.clock]\nafter = [\"web\"]\n",
        );
        assert!(
            msg.contains("a cycle in `after`: clock -> web -> worker -> clock"),
            "{msg}"
        );
    }

    #[test]
    fn start_order_puts_each_type_after_what_it_waits_for() {
        let procfile =
            crate::procfile::parse(Path::new("Procfile"), "web: w\nworker: k\nclock: c\n")
                .expect("procfile");
        let file = SettingsFile::parse(
            Path::new("ganger.toml"),
            "[process.web]\nafter = [\"clock\"]\n[process.worker]\nafter = [\"web\"]\n".to_string(),
        )
        .expect("parses");
        let settings = validate(&file, &procfile).expect("valid");
        assert_eq!(
            start_order(&procfile, &settings),
            [vec!["clock"], vec!["web"], vec!["worker"]]
        );
    }
}
