//! Compose: `compose.yaml` with a service per type (`deploy.replicas` = the
//! formation's count), its environment and published ports.
//!
//! Owns the Compose model. `yaml` does the quoting (for YAML 1.1 readers too);
//! Compose then interpolates `$VAR` in every value, so each `$` is written `$$`
//! (Compose turns it back into `$`). Every replica of a type gets the same PORT (the type's
//! first port) inside its container; the host ports foreman would have given the
//! instances (`5000-5001` for `web=2`) are published to it, for types that bind
//! PORT. `PS` is exact for a single replica; with more it is the type's name.
//! The image is `APP`, and the process runs in the image's working directory.
//! The file carries the env and is 0600.
//!
//! Per type: `restart:` (`always`, `on-failure`, or `"no"` for a `oneshot`),
//! `stop_signal` (when not SIGTERM) and `stop_grace_period`. Compose sends the
//! signal to the container's PID 1: the process itself when `/bin/sh -c`
//! execs a single program, else the shell.
//!
//! Start-up order: the release phase is a service run once that every other
//! service `depends_on` with `service_completed_successfully`. A `port`,
//! `exec` or `http` readiness is a `healthcheck` (the shell checks of `order`,
//! run by the image's `/bin/sh`), and `after` is `depends_on` with
//! `service_healthy` on such a type, `service_completed_successfully` on a
//! task, else `service_started` (Compose cannot see `notify` or `log`).

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::order::check_command;
use super::yaml::{map, mapping, yaml};
use super::{Entry, Export, Process, Runs, has_marker, marker};
use crate::error::Result;

/// The file name Compose looks for first.
const FILE: &str = "compose.yaml";

#[expect(
    clippy::unnecessary_wraps,
    reason = "every format's render has one signature"
)]
pub fn render(export: &Export) -> Result<Vec<Entry>> {
    let project = export.app.to_ascii_lowercase().replace('.', "-");
    let mut services = Mapping::new();
    for process in &export.processes {
        let port = process.first_port();
        let mut env: Mapping = export
            .env
            .iter()
            .map(|(k, v)| (k.as_str().into(), escape(v).into()))
            .collect();
        env.insert("PORT".into(), port.to_string().into());
        env.insert(
            "PS".into(),
            escape(&process.shared_ps().unwrap_or_else(|| process.name.clone())).into(),
        );
        let mut service = mapping([
            ("image", export.app.to_ascii_lowercase().into()),
            (
                "command",
                Value::Sequence(vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    escape(&process.command).into(),
                ]),
            ),
            ("environment", Value::Mapping(env)),
        ]);
        if process.binds_port() {
            let last = process.instances.last().map_or(port, |i| i.port);
            let published = if last == port {
                port.to_string()
            } else {
                format!("{port}-{last}")
            };
            service.insert(
                "ports".into(),
                Value::Sequence(vec![map([
                    ("target", port.into()),
                    ("published", published.into()),
                    ("protocol", "tcp".into()),
                ])]),
            );
        }
        service.insert(
            "deploy".into(),
            map([("replicas", (process.instances.len() as u64).into())]),
        );
        let life = &process.life;
        let restart = match life.runs {
            Runs::Always => "always",
            Runs::OnFailure | Runs::OnceRetried => "on-failure",
            Runs::Once => "no",
        };
        service.insert("restart".into(), restart.into());
        if let Some(signal) = life.custom_signal() {
            service.insert("stop_signal".into(), signal.as_str().into());
        }
        service.insert("stop_grace_period".into(), duration(life.timeout).into());
        if let Some(check) = healthcheck(process) {
            service.insert("healthcheck".into(), check);
        }
        let depends_on = depends_on(export, process);
        if !depends_on.is_empty() {
            service.insert("depends_on".into(), Value::Mapping(depends_on));
        }
        services.insert(process.name.as_str().into(), Value::Mapping(service));
    }
    let doc = map([
        ("name", project.into()),
        ("services", Value::Mapping(services)),
    ]);
    let text = format!("# {}\n{}", marker(&export.app), yaml(&doc));
    Ok(vec![Entry::secret(FILE, text)])
}

/// The type's readiness as a health check: tried every second while it
/// starts, for up to `ready_timeout` (failures then do not count), and every
/// 10 s after that, each run bounded by 5 s as `start` bounds an `exec` probe.
fn healthcheck(process: &Process) -> Option<Value> {
    let probe = process.probe()?;
    let check = check_command(probe, process.first_port());
    Some(map([
        (
            "test",
            Value::Sequence(vec!["CMD-SHELL".into(), escape(&check).into()]),
        ),
        ("interval", "10s".into()),
        ("timeout", "5s".into()),
        ("retries", 3u64.into()),
        ("start_period", duration(process.order.ready_timeout).into()),
        ("start_interval", "1s".into()),
    ]))
}

/// The services `process` waits for, each with the condition that matches
/// what `start` waits for: the release phase and tasks to exit 0, a type
/// with a health check to be healthy, any other to have started.
fn depends_on(export: &Export, process: &Process) -> Mapping {
    let release = export.release().filter(|_| !process.is_release());
    let mut deps = Mapping::new();
    for dep in release.into_iter().chain(export.dependencies(process)) {
        let condition = if dep.life.runs.oneshot() {
            "service_completed_successfully"
        } else if dep.probe().is_some() {
            "service_healthy"
        } else {
            "service_started"
        };
        deps.insert(
            dep.name.as_str().into(),
            map([("condition", condition.into())]),
        );
    }
    deps
}

/// `compose.yaml`, when this app's export wrote it.
pub fn owns(app: &str, name: &str, path: &Path) -> bool {
    name == FILE && has_marker(path, app)
}

/// Compose interpolates `$`; `$$` is its escape for a literal one.
fn escape(value: &str) -> String {
    value.replace('$', "$$")
}

/// A Compose duration: whole seconds as `5s`, else milliseconds.
fn duration(timeout: std::time::Duration) -> String {
    if timeout.subsec_nanos() == 0 {
        format!("{}s", timeout.as_secs())
    } else {
        format!("{}ms", timeout.as_millis())
    }
}
