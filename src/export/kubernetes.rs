//! Kubernetes: one YAML stream `APP.yaml` with a Secret holding the app's
//! environment, a Deployment per type (replicas = the formation's count) and a
//! Service for each type that binds PORT.
//!
//! Owns the Kubernetes object model and its naming (DNS labels: lowercase, `-`).
//! `yaml` does all quoting, for the YAML 1.1 that Kubernetes reads. The env reaches containers through
//! `envFrom` (values from a Secret are never expanded); in `command` Kubernetes
//! expands `$(VAR)`, so every `$` is written as `$$`, which it turns back into `$`.
//! Limits of the model: every replica of a type gets the same PORT (the type's
//! first port), and `PS` is exact only for a single replica; with more, it is
//! the pod's name (downward API). The container image is `APP`; the process runs
//! in the image's working directory. The file carries the env and is 0600.
//!
//! Per type: `terminationGracePeriodSeconds`; a stop signal other than SIGTERM
//! through a `preStop` hook; a `oneshot` type is a Job (`restartPolicy: Never`
//! and `backoffLimit: 0`, or `OnFailure` when it restarts on failure).
//!
//! Start-up order: the release phase is the Job `APP-release` (run once, never
//! retried); `port`, `exec` and `http` readiness are the container's
//! `readinessProbe` (`tcpSocket`, `exec`, `httpGet` on PORT). Kubernetes has no
//! start order between workloads, so `after` and waiting for the release Job
//! are not written here: the README says how to apply the release first.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::yaml::{map, mapping, yaml};
use super::{Entry, Export, Format, Lifecycle, Probe, Process, has_marker, marker};
use crate::error::Result;

/// The Secret's component label. A type's component never holds a `.`, so a
/// selector can pick the Secret and the release Job alone
/// (`component in (env.secret,release)`) to apply them before the rest.
const SECRET_COMPONENT: &str = "env.secret";

pub fn render(export: &Export) -> Result<Vec<Entry>> {
    let app = dns_label(&export.app, "the app name")?;
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    let mut parts = Vec::new();
    for process in &export.processes {
        let what = format!("process `{}`", process.name);
        let part = dns_part(&process.name, &what)?;
        let name = dns_label(&format!("{app}-{part}"), &what)?;
        if let Some(other) = names.insert(name.clone(), &process.name) {
            return Err(Export::unsupported(
                Format::Kubernetes,
                format!("processes `{other}` and `{}`", process.name),
                format!("both become the Kubernetes name `{name}`"),
            ));
        }
        parts.push((process, part, name));
    }
    let secret_name = format!("{app}-env");
    let mut docs = Vec::new();
    if !export.env.is_empty() {
        let data: Mapping = export
            .env
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect();
        docs.push(map([
            ("apiVersion", "v1".into()),
            ("kind", "Secret".into()),
            ("metadata", metadata(&secret_name, &app, SECRET_COMPONENT)),
            ("type", "Opaque".into()),
            ("stringData", Value::Mapping(data)),
        ]));
    }
    for (process, part, name) in &parts {
        let names = Names {
            app: &app,
            part,
            name,
            secret: &secret_name,
        };
        docs.push(workload(export, process, &names));
        if process.binds_port() {
            docs.push(service(process, &names));
        }
    }
    let mut text = format!("# {}\n", marker(&export.app));
    for doc in docs {
        text.push_str("---\n");
        text.push_str(&yaml(&doc));
    }
    Ok(vec![Entry::secret(format!("{}.yaml", export.app), text)])
}

/// The names one type's objects use.
struct Names<'a> {
    app: &'a str,
    /// The type as a DNS label: container name and component label.
    part: &'a str,
    /// `APP-TYPE`: Deployment and Service.
    name: &'a str,
    secret: &'a str,
}

/// `APP.yaml`, when this app's export wrote it.
pub fn owns(app: &str, name: &str, path: &Path) -> bool {
    name == format!("{app}.yaml") && has_marker(path, app)
}

/// The container that runs one type's command.
fn container(export: &Export, process: &Process, names: &Names) -> Value {
    let ps = match process.shared_ps() {
        Some(ps) => map([("name", "PS".into()), ("value", ps.into())]),
        None => map([
            ("name", "PS".into()),
            (
                "valueFrom",
                map([("fieldRef", map([("fieldPath", "metadata.name".into())]))]),
            ),
        ]),
    };
    let port = process.first_port();
    let mut container = mapping([
        ("name", names.part.into()),
        ("image", names.app.into()),
        (
            "command",
            Value::Sequence(vec![
                "/bin/sh".into(),
                "-c".into(),
                process.command.replace('$', "$$").into(),
            ]),
        ),
        (
            "env",
            Value::Sequence(vec![
                map([("name", "PORT".into()), ("value", port.to_string().into())]),
                ps,
            ]),
        ),
    ]);
    if !export.env.is_empty() {
        container.insert(
            "envFrom".into(),
            Value::Sequence(vec![map([(
                "secretRef",
                map([("name", names.secret.into())]),
            )])]),
        );
    }
    if process.binds_port() {
        container.insert(
            "ports".into(),
            Value::Sequence(vec![map([
                ("containerPort", port.into()),
                ("protocol", "TCP".into()),
            ])]),
        );
    }
    if let Some(probe) = readiness_probe(process) {
        container.insert("readinessProbe".into(), probe);
    }
    if let Some(hook) = pre_stop(&process.life) {
        container.insert("lifecycle".into(), hook);
    }
    Value::Mapping(container)
}

/// A Deployment for a service (its pods always restart: Kubernetes has no
/// on-failure for them), a Job for a `oneshot` type.
fn workload(export: &Export, process: &Process, names: &Names) -> Value {
    let life = &process.life;
    let labels = labels(names.app, names.part);
    let mut pod = mapping([("terminationGracePeriodSeconds", life.timeout_secs().into())]);
    if life.runs.oneshot() {
        let policy = if life.runs.retries_failure() {
            "OnFailure"
        } else {
            "Never"
        };
        pod.insert("restartPolicy".into(), policy.into());
    }
    pod.insert(
        "containers".into(),
        Value::Sequence(vec![container(export, process, names)]),
    );
    let template = map([
        ("metadata", map([("labels", labels.clone())])),
        ("spec", Value::Mapping(pod)),
    ]);
    let count: u64 = process.instances.len() as u64;
    let metadata = metadata(names.name, names.app, names.part);
    if life.runs.oneshot() {
        let mut spec = mapping([("completions", count.into()), ("parallelism", count.into())]);
        if !life.runs.retries_failure() {
            // Run once: a failed pod fails the Job instead of being replaced.
            spec.insert("backoffLimit".into(), 0u64.into());
        }
        spec.insert("template".into(), template);
        return map([
            ("apiVersion", "batch/v1".into()),
            ("kind", "Job".into()),
            ("metadata", metadata),
            ("spec", Value::Mapping(spec)),
        ]);
    }
    map([
        ("apiVersion", "apps/v1".into()),
        ("kind", "Deployment".into()),
        ("metadata", metadata),
        (
            "spec",
            map([
                ("replicas", count.into()),
                ("selector", map([("matchLabels", labels)])),
                ("template", template),
            ]),
        ),
    ])
}

/// The type's readiness as the kubelet's probe, on the PORT the container
/// gets. An `exec` probe is exec'd as it is (no `$(VAR)` expansion there, so
/// no `$$`), through `/bin/sh -c` as `start` runs it; 5 s bounds each run, as
/// in `start`.
fn readiness_probe(process: &Process) -> Option<Value> {
    let port = Value::from(process.first_port());
    let (kind, action) = match process.probe()? {
        Probe::Port => ("tcpSocket", map([("port", port)])),
        Probe::Exec(cmd) => (
            "exec",
            map([(
                "command",
                Value::Sequence(vec!["/bin/sh".into(), "-c".into(), cmd.into()]),
            )]),
        ),
        Probe::Http(path) => ("httpGet", map([("path", path.into()), ("port", port)])),
    };
    Some(map([
        (kind, action),
        ("periodSeconds", 5u64.into()),
        ("timeoutSeconds", 5u64.into()),
    ]))
}

/// Kubernetes always stops a container with SIGTERM to its PID 1. A hook that
/// runs before that sends the type's own signal to PID 1 instead, then waits
/// (the grace period counts the hook's time) so that the SIGTERM comes only
/// when the grace is over, just before SIGKILL. PID 1 is the process when
/// `/bin/sh -c` execs a single program; for a compound command it is the
/// shell, which, as PID 1, ignores the signal as it ignores SIGTERM.
fn pre_stop(life: &Lifecycle) -> Option<Value> {
    life.custom_signal()?;
    let script = format!(
        "kill -s {} 1; while kill -0 1 2>/dev/null; do sleep 1; done",
        life.signal_name()
    );
    Some(map([(
        "preStop",
        map([(
            "exec",
            map([(
                "command",
                Value::Sequence(vec!["/bin/sh".into(), "-c".into(), script.into()]),
            )]),
        )]),
    )]))
}

fn service(process: &Process, names: &Names) -> Value {
    let port = process.first_port();
    map([
        ("apiVersion", "v1".into()),
        ("kind", "Service".into()),
        ("metadata", metadata(names.name, names.app, names.part)),
        (
            "spec",
            map([
                ("selector", labels(names.app, names.part)),
                (
                    "ports",
                    Value::Sequence(vec![map([
                        ("port", port.into()),
                        ("targetPort", port.into()),
                        ("protocol", "TCP".into()),
                    ])]),
                ),
            ]),
        ),
    ])
}

fn metadata(name: &str, app: &str, component: &str) -> Value {
    map([("name", name.into()), ("labels", labels(app, component))])
}

/// The recommended `app.kubernetes.io` labels; process names are valid label values.
fn labels(app: &str, component: &str) -> Value {
    map([
        ("app.kubernetes.io/name", app.into()),
        ("app.kubernetes.io/component", component.into()),
    ])
}

/// A process type as a DNS-1123 label (container names, label values):
/// lowercase, `_` as `-`, starting and ending with a letter or digit.
fn dns_part(name: &str, what: &str) -> Result<String> {
    let part = lowercase_dashed(name);
    let ok = part.len() <= 63
        && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        && part.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(part)
    } else {
        Err(Export::unsupported(
            Format::Kubernetes,
            what.to_string(),
            format!(
                "`{name}` does not make a Kubernetes name (it must start and end with a letter or digit)"
            ),
        ))
    }
}

fn lowercase_dashed(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// A DNS-1035 label (what Service names need, and stricter than the rest):
/// lowercase letters, digits and `-`, starting with a letter, at most 63.
fn dns_label(name: &str, what: &str) -> Result<String> {
    let label = lowercase_dashed(name);
    let ok = label.len() <= 63
        && label.starts_with(|c: char| c.is_ascii_lowercase())
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(label)
    } else {
        Err(Export::unsupported(
            Format::Kubernetes,
            what.to_string(),
            format!(
                "`{name}` does not make a Kubernetes name (lowercase letters, digits and `-`, starting with a letter, at most 63)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(dns_label("My_App.web", "x").expect("valid"), "my-app-web");
        assert!(dns_label("1web", "x").is_err());
        assert!(dns_label(&"a".repeat(64), "x").is_err());
    }
}
