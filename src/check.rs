//! `ganger check`: parse the Procfile and say what it defines.

use std::fmt::Write as _;

use crate::config::App;
use crate::error::Result;
use crate::formation;
use crate::policy::{OnExit, Policy};

/// Prints `valid procfile detected (web, worker)`; with `show_plan`, also every
/// instance that `start` would run with its PORT.
pub fn check(app: &App, policy: &Policy, show_plan: bool) -> Result<i32> {
    let mut out = String::new();
    let _ = writeln!(out, "valid procfile detected ({})", app.procfile.names());
    if show_plan {
        let plan = app.plan(&[])?;
        let width = plan.iter().map(|i| i.ps().len()).max().unwrap_or(0);
        for inst in &plan {
            let on_exit = match policy.on_exit(&inst.name) {
                OnExit::Restart => "  (restarts)",
                OnExit::Allowed => "  (can die)",
                OnExit::StopAll => "",
            };
            let _ = writeln!(
                out,
                "  {:width$}  PORT={}  {}{on_exit}",
                inst.ps(),
                inst.port,
                inst.command
            );
        }
        for warning in formation::collision_warnings(&plan) {
            out.push_str(&warning);
            out.push('\n');
        }
    }
    crate::stdout::print(out)?;
    Ok(0)
}
