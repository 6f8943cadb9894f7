//! systemd: `APP.target` wanting every instance, and `APP-NAME.N.service` each.
//!
//! Owns the quoting of unit-file values: every value goes in a double-quoted
//! string where systemd undoes C escapes, with `%` doubled (specifiers) and, in
//! `ExecStart=`, `$` doubled (systemd substitutes `$VAR` there at exec time).
//! A newline becomes `\n`, which systemd turns back into a newline, so no value
//! can start a directive of its own. systemd refuses a unit with a Unicode
//! noncharacter in it (and no escape gets one past it), so such a value is an
//! error here. Service files carry the environment and are
//! 0600; the target is 0644. Output goes to the journal (`-l`/`-r` are unused).
//!
//! Per type: `KillSignal=` (when not SIGTERM), `TimeoutStopSec=` and `Restart=`;
//! a `oneshot` type is `Type=oneshot` with `RemainAfterExit=yes`.
//!
//! Start-up order: the release phase is `APP-release.service`, a oneshot that
//! every other unit `Requires=` and is `After=`, so nothing starts unless it
//! exited 0. `after` is `After=` and `Wants=` on every instance unit of each
//! dependency. systemd counts a unit started when its start-up job is done:
//! for `ready = "notify"` that is `READY=1` (`Type=notify`); for `port`,
//! `exec` and `http` an `ExecStartPost=` polls the check until it holds; both
//! within `TimeoutStartSec=` (`ready_timeout`), else the unit fails.

use std::fmt::Write as _;
use std::path::Path;

use super::order::poll_command;
use super::{Entry, Export, Format, Process, Runs, after_app, has_marker, marker};
use crate::error::Result;

pub fn render(export: &Export) -> Result<Vec<Entry>> {
    export.refuse_noncharacters(
        Format::Systemd,
        "systemd refuses in a unit file (\"not UTF-8 clean\")",
    )?;
    let app = &export.app;
    let services: Vec<String> = export
        .each()
        .map(|(p, i)| service_name(app, p, &i.ps()))
        .collect();
    let mut entries = vec![Entry::public(
        format!("{app}.target"),
        format!(
            "# {}\n[Unit]\nDescription={app}\nWants={}\n\n[Install]\nWantedBy=multi-user.target\n",
            marker(app),
            services.join(" ")
        ),
    )];
    for (process, inst) in export.each() {
        let ps = inst.ps();
        let life = &process.life;
        let mut unit = format!(
            "# {marker}\n[Unit]\nDescription={app} {ps}\nPartOf={app}.target\nStopWhenUnneeded=yes\n\
             {order}\n[Service]\nType={kind}\n{remain}User={user}\nWorkingDirectory={root}\n",
            marker = marker(app),
            order = ordering(export, process),
            kind = if life.runs.oneshot() {
                "oneshot"
            } else if process.notifies() {
                "notify"
            } else {
                "simple"
            },
            // A finished task stays active, so the target does not run it again.
            remain = if life.runs.oneshot() {
                "RemainAfterExit=yes\n"
            } else {
                ""
            },
            user = export.user,
            root = export.root.replace('%', "%%"),
        );
        for (key, value) in export.instance_env(inst) {
            let _ = writeln!(
                unit,
                "Environment={}",
                quote(&format!("{key}={value}"), false)
            );
        }
        let _ = writeln!(unit, "ExecStart=/bin/sh -c {}", quote(&inst.command, true));
        unit.push_str(&readiness(process, inst.port));
        unit.push_str(restart(life.runs));
        let _ = write!(
            unit,
            "StandardInput=null\nStandardOutput=journal\nStandardError=journal\n\
             SyslogIdentifier={app}-{ps}\nKillMode=control-group\n"
        );
        if let Some(signal) = life.custom_signal() {
            let _ = writeln!(unit, "KillSignal={}", signal.as_str());
        }
        let _ = write!(
            unit,
            "TimeoutStopSec={timeout}ms\n\n[Install]\nWantedBy={app}.target\n",
            // systemd reads 0 as "no timeout at all"; 1 ms is the nearest it has.
            timeout = life.timeout.as_millis().max(1),
        );
        entries.push(Entry::secret(service_name(app, process, &ps), unit));
    }
    Ok(entries)
}

/// `Restart=` for how the type runs. systemd refuses `Restart=always` with
/// `Type=oneshot`, and a task that retries is `on-failure` anyway.
fn restart(runs: Runs) -> &'static str {
    match runs {
        Runs::Always => "Restart=always\nRestartSec=1\n",
        Runs::OnFailure | Runs::OnceRetried => "Restart=on-failure\nRestartSec=1\n",
        Runs::Once => "Restart=no\n",
    }
}

/// `Requires=`/`After=` the release unit, and `After=`/`Wants=` every
/// instance unit of each type in `after`. `Wants=` rather than `Requires=`, so
/// that restarting a dependency does not restart its dependents.
fn ordering(export: &Export, process: &Process) -> String {
    let app = &export.app;
    let mut lines = String::new();
    if !process.is_release()
        && let Some(release) = export.release()
    {
        let unit = service_name(app, release, "");
        let _ = write!(lines, "Requires={unit}\nAfter={unit}\n");
    }
    let units: Vec<String> = export
        .dependencies(process)
        .flat_map(|dep| {
            dep.instances
                .iter()
                .map(|i| service_name(app, dep, &i.ps()))
        })
        .collect();
    if !units.is_empty() {
        let units = units.join(" ");
        let _ = write!(lines, "After={units}\nWants={units}\n");
    }
    lines
}

/// How systemd learns that the instance is ready: `READY=1` from any process
/// of the unit (ganger takes it from descendants too), or a poll of the
/// type's check after the start. Either is bounded by `ready_timeout`.
fn readiness(process: &Process, port: u16) -> String {
    let timeout = format!(
        "TimeoutStartSec={}ms\n",
        process.order.ready_timeout.as_millis().max(1)
    );
    if process.notifies() {
        return format!("NotifyAccess=all\n{timeout}");
    }
    let Some(probe) = process.probe() else {
        return String::new();
    };
    let poll = poll_command(probe, port);
    format!("ExecStartPost=/bin/sh -c {}\n{timeout}", quote(&poll, true))
}

/// `APP-web.1.service`: foreman's unit name; `APP-release.service` for the
/// release phase, which has one instance.
fn service_name(app: &str, process: &Process, ps: &str) -> String {
    if process.is_release() {
        format!("{app}-release.service")
    } else {
        format!("{app}-{ps}.service")
    }
}

/// `APP.target` and the `APP-*.service` units this app's export wrote.
pub fn owns(app: &str, name: &str, path: &Path) -> bool {
    let ours = name == format!("{app}.target")
        || after_app(app, name).is_some_and(|rest| rest.ends_with(".service"));
    ours && has_marker(path, app)
}

/// A double-quoted unit-file string that systemd reads back as exactly `s`.
/// With `dollar`, `$` is doubled too (for `ExecStart=`).
fn quote(s: &str, dollar: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if dollar => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                for unit in c.to_string().bytes() {
                    let _ = write!(out, "\\x{unit:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("A=b c", false), "\"A=b c\"");
        assert_eq!(quote("a\"b\\c%d$e\nf", false), "\"a\\\"b\\\\c%%d$e\\nf\"");
        assert_eq!(quote("echo $PORT", true), "\"echo $$PORT\"");
        assert_eq!(quote("\u{1}", false), "\"\\x01\"");
    }
}
