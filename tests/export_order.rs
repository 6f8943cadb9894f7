//! `ganger export` with a release phase, readiness and `after`: systemd,
//! Compose and Kubernetes write the start-up order in their own words and
//! their real tools accept it; the checks Compose and systemd run are run here
//! against a real socket and a real HTTP answer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::export_tools::*;
use crate::support::*;

pub(crate) const PROCFILE: &str = "release: echo migrated >> out/release.runs
web: echo up > out/$PS.up; exec sleep 60
worker: exec sleep 60
";

/// `web` waits for its port, `worker` starts after it.
pub(crate) const SETTINGS: &str = r#"
[process.web]
ready = "port"
ready_timeout = 30

[process.worker]
after = ["web"]
"#;

/// [`SETTINGS`] with `web`'s readiness replaced by `ready`.
fn settings_with(ready: &str) -> String {
    SETTINGS.replace("ready = \"port\"", &format!("ready = {ready}"))
}

pub(crate) fn ordered_app(settings: &str) -> App {
    let app = App::with_procfile(PROCFILE);
    app.write("ganger.toml", settings);
    app.write("out/.keep", "");
    app
}

/// Runs `ganger export FORMAT <tmp>/export` with `web=2` and `-p BASE`, and
/// returns the export directory.
fn export(app: &App, format: &str, base: u16) -> PathBuf {
    let dir = app.path().join("export");
    let mut cmd = app.ganger();
    cmd.args(["export", format]).arg(&dir).args([
        "-m",
        "web=2",
        "-p",
        &base.to_string(),
        "-u",
        &current_user(),
    ]);
    let run = run_with_deadline(cmd, Duration::from_secs(30));
    run.assert_code(0);
    assert_eq!(run.stderr, "", "no warning for {format}");
    dir
}

#[test]
fn systemd_release_unit_runs_first_and_after_orders_every_instance() {
    if !require_tool("systemd-analyze") {
        return;
    }
    let app = ordered_app(SETTINGS);
    let dir = export(&app, "systemd", 5000);
    assert_eq!(
        names(&dir),
        [
            "app-release.service",
            "app-web.1.service",
            "app-web.2.service",
            "app-worker.1.service",
            "app.target"
        ]
    );
    let dump = verify_units(&dir);
    assert_read(
        &dump,
        "app-release.service",
        &["Type: oneshot", "RemainAfterExit: yes", "Restart: no"],
    );
    for unit in ["app-web.1.service", "app-web.2.service"] {
        assert_read(
            &dump,
            unit,
            &[
                "Requires: app-release.service (origin-file)",
                "After: app-release.service (origin-file)",
                "Type: simple",
                "TimeoutStartSec: 30s",
            ],
        );
    }
    assert_read(
        &dump,
        "app-worker.1.service",
        &[
            "Requires: app-release.service (origin-file)",
            "After: app-release.service (origin-file)",
            "After: app-web.1.service (origin-file)",
            "After: app-web.2.service (origin-file)",
            "Wants: app-web.1.service (origin-file)",
            "Wants: app-web.2.service (origin-file)",
        ],
    );
    let web = read(&dir.join("app-web.2.service"));
    assert!(
        web.contains(
            "\nExecStartPost=/bin/sh -c \"until grep -Eqs '^ *[0-9]+: [0-9A-F]+:13ED \
             [0-9A-F]+:[0-9A-F]+ 0A ' /proc/net/tcp /proc/net/tcp6; do sleep 1; done\"\n"
        ),
        "web.2 polls its own port, 5101:\n{web}"
    );
    let release = read(&dir.join("app-release.service"));
    assert!(!release.contains("Requires="), "{release}");
    let worker = read(&dir.join("app-worker.1.service"));
    assert!(
        !worker.contains("ExecStartPost") && !worker.contains("TimeoutStartSec"),
        "{worker}"
    );
}

#[test]
fn systemd_notify_readiness_is_type_notify() {
    if !require_tool("systemd-analyze") {
        return;
    }
    let app = ordered_app(&settings_with("\"notify\""));
    let dir = export(&app, "systemd", 5000);
    let dump = verify_units(&dir);
    assert_read(
        &dump,
        "app-web.1.service",
        &["Type: notify", "NotifyAccess: all", "TimeoutStartSec: 30s"],
    );
    assert!(!read(&dir.join("app-web.1.service")).contains("ExecStartPost"));
}

#[test]
fn systemd_exec_and_http_readiness_poll_after_the_start() {
    if !require_tool("systemd-analyze") {
        return;
    }
    for (ready, poll) in [
        (
            "{ exec = \"test -f out/$PS.up && echo 100%\" }",
            "until /bin/sh -c 'test -f out/$$PS.up && echo 100%%'; do sleep 1; done",
        ),
        (
            "{ http = \"/health\" }",
            "until curl -fs -o /dev/null 'http://127.0.0.1:5100/health' || \
             wget -q -O /dev/null 'http://127.0.0.1:5100/health'; do sleep 1; done",
        ),
    ] {
        let app = ordered_app(&settings_with(ready));
        let dir = export(&app, "systemd", 5000);
        verify_units(&dir);
        let web = read(&dir.join("app-web.1.service"));
        assert!(
            web.contains(&format!("\nExecStartPost=/bin/sh -c \"{poll}\"\n")),
            "{ready}:\n{web}"
        );
    }
}

/// Validates `compose.yaml` in `dir` against the Compose specification and
/// parses it.
fn compose(dir: &Path) -> Value {
    let file = dir.join("compose.yaml");
    assert_compose_valid(&file);
    serde_yaml_ng::from_str(&read(&file)).expect("parse")
}

fn condition<'a>(doc: &'a Value, service: &str, on: &str) -> Option<&'a str> {
    doc["services"][service]["depends_on"][on]["condition"].as_str()
}

#[test]
fn compose_release_and_after_become_depends_on_conditions() {
    if !require_tool("check-jsonschema") {
        return;
    }
    let app = ordered_app(SETTINGS);
    let doc = compose(&export(&app, "compose", 5000));
    let release = &doc["services"]["release"];
    assert_eq!(release["restart"].as_str(), Some("no"));
    assert_eq!(release["deploy"]["replicas"].as_u64(), Some(1));
    assert!(release.get("depends_on").is_none());
    for service in ["web", "worker"] {
        assert_eq!(
            condition(&doc, service, "release"),
            Some("service_completed_successfully"),
            "{service}"
        );
    }
    assert_eq!(condition(&doc, "worker", "web"), Some("service_healthy"));
    let check = &doc["services"]["web"]["healthcheck"];
    assert_eq!(check["test"][0].as_str(), Some("CMD-SHELL"));
    assert_eq!(check["start_period"].as_str(), Some("30s"));
    assert_eq!(check["start_interval"].as_str(), Some("1s"));
    assert_eq!(check["timeout"].as_str(), Some("5s"));
    assert!(doc["services"]["worker"].get("healthcheck").is_none());

    // Without a probe Compose can run, `after` waits only for the start.
    let app = ordered_app(&settings_with("\"notify\""));
    let doc = compose(&export(&app, "compose", 5000));
    assert_eq!(condition(&doc, "worker", "web"), Some("service_started"));
    assert!(doc["services"]["web"].get("healthcheck").is_none());

    // An `exec` check is the command itself, `$` escaped from interpolation.
    let app = ordered_app(&settings_with("{ exec = \"test -f out/$PS.up\" }"));
    let dir = export(&app, "compose", 5000);
    let doc = compose(&dir);
    assert_eq!(condition(&doc, "worker", "web"), Some("service_healthy"));
    assert_eq!(
        doc["services"]["web"]["healthcheck"]["test"][1].as_str(),
        Some("test -f out/$$PS.up")
    );
}

/// Runs `script` with `/bin/sh -c` as Compose's `CMD-SHELL` would (after
/// Compose has turned `$$` back into `$`).
fn holds(script: &str) -> bool {
    Command::new("/bin/sh")
        .args(["-c", &script.replace("$$", "$")])
        .status()
        .expect("sh")
        .success()
}

/// A port nothing listens on now, and the `-p` base that gives it to `web`
/// (the second entry, so its block starts 100 above the base).
fn free_web_port() -> (u16, u16) {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = probe.local_addr().expect("addr").port();
    assert!(port > 1100, "an ephemeral port: {port}");
    (port, port - 100)
}

#[test]
fn compose_port_check_holds_only_while_the_port_listens() {
    if !require_tool("check-jsonschema") || !require_tool("grep") {
        return;
    }
    let (port, base) = free_web_port();
    let app = ordered_app(SETTINGS);
    let doc = compose(&export(&app, "compose", base));
    let web = &doc["services"]["web"];
    assert_eq!(
        web["environment"]["PORT"].as_str(),
        Some(&*port.to_string())
    );
    let test = web["healthcheck"]["test"][1].as_str().expect("test");
    assert!(!holds(test), "nothing listens on {port} yet");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind web's port");
    assert!(holds(test), "{port} listens: {test}");
    drop(listener);
    assert!(!holds(test), "{port} closed again");
}

/// Serves one HTTP answer with `status` to every connection, until the test ends.
fn http_server(port: u16, status: &'static str) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind web's port");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.0 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
}

#[test]
fn compose_http_check_holds_on_2xx_and_3xx_only() {
    if !require_tool("check-jsonschema") || !(require_tool("curl") || require_tool("wget")) {
        return;
    }
    let mut checks = Vec::new();
    for status in ["204 No Content", "302 Found", "503 Service Unavailable"] {
        let (port, base) = free_web_port();
        let app = ordered_app(&settings_with("{ http = \"/health\" }"));
        let doc = compose(&export(&app, "compose", base));
        assert_eq!(condition(&doc, "worker", "web"), Some("service_healthy"));
        let test = doc["services"]["web"]["healthcheck"]["test"][1]
            .as_str()
            .expect("test")
            .to_string();
        assert!(
            test.contains(&format!("'http://127.0.0.1:{port}/health'")),
            "{test}"
        );
        assert!(!holds(&test), "nothing listens on {port} yet");
        http_server(port, status);
        checks.push((status, holds(&test)));
    }
    assert_eq!(
        checks,
        [
            ("204 No Content", true),
            ("302 Found", true),
            ("503 Service Unavailable", false)
        ]
    );
}

fn kubernetes(dir: &Path) -> Vec<Value> {
    kubernetes_docs(&dir.join("app.yaml"))
}

#[test]
fn kubernetes_release_job_and_readiness_probes_validate() {
    if !require_tool("kubernetes-validate") {
        return;
    }
    let app = ordered_app(SETTINGS);
    app.write(".env", "DATABASE_URL=postgres://db/app\n");
    let docs = kubernetes(&export(&app, "kubernetes", 5000));
    // What `-l 'app.kubernetes.io/component in (env.secret,release)'` applies first.
    let first: Vec<(&str, &str)> = docs
        .iter()
        .filter(|d| {
            matches!(
                d["metadata"]["labels"]["app.kubernetes.io/component"].as_str(),
                Some("env.secret" | "release")
            )
        })
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(first, [("Secret", "app-env"), ("Job", "app-release")]);
    let job = workload(&docs, "app-release");
    assert_eq!(job["kind"].as_str(), Some("Job"));
    assert_eq!(job["spec"]["backoffLimit"].as_u64(), Some(0));
    assert_eq!(job["spec"]["completions"].as_u64(), Some(1));
    assert_eq!(
        job["spec"]["template"]["spec"]["restartPolicy"].as_str(),
        Some("Never")
    );
    let container = |name: &str, docs: &[Value]| {
        workload(docs, name)["spec"]["template"]["spec"]["containers"][0].clone()
    };
    let web = container("app-web", &docs);
    assert_eq!(
        web["readinessProbe"]["tcpSocket"]["port"].as_u64(),
        Some(5100)
    );
    assert_eq!(web["env"][0]["value"].as_str(), Some("5100"));
    assert!(
        container("app-worker", &docs)
            .get("readinessProbe")
            .is_none()
    );

    let app = ordered_app(&settings_with("{ http = \"/health\" }"));
    let docs = kubernetes(&export(&app, "kubernetes", 5000));
    let probe = &container("app-web", &docs)["readinessProbe"]["httpGet"];
    assert_eq!(probe["path"].as_str(), Some("/health"));
    assert_eq!(probe["port"].as_u64(), Some(5100));

    let app = ordered_app(&settings_with("{ exec = \"test -f out/$PS.up\" }"));
    let docs = kubernetes(&export(&app, "kubernetes", 5000));
    let command = &container("app-web", &docs)["readinessProbe"]["exec"]["command"];
    assert_eq!(
        command,
        &serde_yaml_ng::to_value(["/bin/sh", "-c", "test -f out/$PS.up"]).expect("value"),
        "exec probes are not expanded by Kubernetes: no `$$`"
    );

    // A type whose readiness waits for PORT listens on it: it gets a Service.
    let app = App::with_procfile("web: exec ./web\napi: exec ./api\n");
    app.write("ganger.toml", "[process.api]\nready = \"port\"\n");
    let docs = kubernetes(&export(&app, "kubernetes", 5000));
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Service" && d["metadata"]["name"] == "app-api")
    );
}
