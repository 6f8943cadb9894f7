//! `ganger check`: parse the Procfile and say what it defines.

use std::fmt::Write as _;

use nix::sys::signal::Signal;

use crate::config::App;
use crate::error::Result;
use crate::formation;
use crate::policy::{Policy, Types};
use crate::process_type::Readiness;
use crate::settings::process::start_order;
use crate::supervisor::RELEASE;

/// What the settings say about type `name`, for its plan line: `restarts on
/// failure; stop SIGINT within 0.5s; ready port; after web; tty`.
fn describe(app: &App, policy: &Policy, tty: &Types, name: &str) -> String {
    let mut parts: Vec<String> = policy
        .describe(name)
        .map(str::to_string)
        .into_iter()
        .collect();
    let rules = policy.rules(name);
    if rules.stop_signal != Signal::SIGTERM || rules.timeout.is_some() {
        let mut stop = format!("stop {}", rules.stop_signal.as_str());
        if let Some(timeout) = rules.timeout {
            let _ = write!(stop, " within {}s", timeout.as_secs_f64());
        }
        parts.push(stop);
    }
    if let Some(settings) = app.processes.get(name) {
        if !matches!(settings.ready, Readiness::Started) {
            parts.push(format!("ready {}", settings.ready.describe()));
        }
        if !settings.after.is_empty() {
            parts.push(format!("after {}", settings.after.join(", ")));
        }
    }
    if tty.contains(name) {
        parts.push("tty".to_string());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  ({})", parts.join("; "))
    }
}

/// Prints `valid procfile detected (web, worker)`; with `show_plan`, also every
/// instance that `start` would run with its PORT and its type's settings, and
/// the start order when some type waits for another.
pub fn check(app: &App, policy: &Policy, tty: &Types, show_plan: bool) -> Result<i32> {
    let mut out = String::new();
    let names: Vec<String> = app
        .procfile
        .entries
        .iter()
        .map(|e| {
            if e.name == RELEASE {
                format!("{RELEASE} [runs first]")
            } else {
                e.name.clone()
            }
        })
        .collect();
    let _ = writeln!(out, "valid procfile detected ({})", names.join(", "));
    if show_plan {
        let plan = app.plan(&[])?;
        let width = plan.iter().map(|i| i.ps().len()).max().unwrap_or(0);
        for inst in &plan {
            let _ = writeln!(
                out,
                "  {:width$}  PORT={}  {}{}",
                inst.ps(),
                inst.port,
                inst.command,
                describe(app, policy, tty, &inst.name)
            );
        }
        if app.processes.values().any(|s| !s.after.is_empty()) {
            let levels: Vec<String> = start_order(&app.procfile, &app.processes)
                .iter()
                .map(|level| level.join(" + "))
                .collect();
            let _ = writeln!(out, "start order: {}", levels.join(", then "));
        }
        for warning in formation::collision_warnings(&plan) {
            out.push_str(&warning);
            out.push('\n');
        }
    }
    crate::stdout::print(out)?;
    Ok(0)
}
