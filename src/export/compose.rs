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

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::yaml::{map, mapping, yaml};
use super::{Entry, Export, Runs, has_marker, marker};
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
        services.insert(process.name.as_str().into(), Value::Mapping(service));
    }
    let doc = map([
        ("name", project.into()),
        ("services", Value::Mapping(services)),
    ]);
    let text = format!("# {}\n{}", marker(&export.app), yaml(&doc));
    Ok(vec![Entry::secret(FILE, text)])
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
