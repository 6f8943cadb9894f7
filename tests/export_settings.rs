//! `ganger export` with a `ganger.toml` that sets `stop_signal`, `timeout`,
//! `restart` and `oneshot` per type: each format writes its own words for them,
//! its real tool accepts them, and where a real daemon runs the export
//! (supervisord, runit) the stop signal arrives and one-shot tasks run once.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::export_tools::*;
use crate::support::*;

/// `web` records the signal that stops it; `migrate` runs once; `seed` fails
/// twice and succeeds the third time; `worker` just stays up.
const PROCFILE: &str = r#"web: trap 'echo INT > out/$PS.sig && mv out/$PS.sig out/$PS.signal; exit 0' INT; trap 'echo TERM > out/$PS.sig && mv out/$PS.sig out/$PS.signal; exit 0' TERM; echo up > out/$PS.up; while :; do sleep 1 & wait $!; done
worker: exec sleep 60
migrate: echo ran >> out/migrate.runs
seed: n=$(($(cat out/seed.count 2>/dev/null || echo 0) + 1)); echo $n > out/seed.count; test $n -ge 3
"#;

const SETTINGS: &str = r#"
[process.web]
stop_signal = "INT"
timeout = 30
restart = "on-failure"

[process.worker]
timeout = 2.5

[process.migrate]
oneshot = true

[process.seed]
oneshot = true
restart = "on-failure"
timeout = 0
"#;

fn settings_app() -> App {
    let app = App::with_procfile(PROCFILE);
    app.write("ganger.toml", SETTINGS);
    app.write("out/.keep", "");
    app
}

/// Runs `ganger export FORMAT <tmp>/export` with `-t 7` (what types without
/// their own timeout get) and returns the export directory.
fn export(app: &App, format: &str) -> PathBuf {
    let dir = app.path().join("export");
    let log = app.path().join("log");
    let mut cmd = app.ganger();
    cmd.args(["export", format])
        .arg(&dir)
        .args(["-t", "7", "-u", &current_user(), "-l"])
        .arg(&log);
    run_with_deadline(cmd, Duration::from_secs(30)).assert_code(0);
    dir
}

#[test]
fn systemd_units_carry_kill_signal_timeout_restart_and_oneshot() {
    if !require_tool("systemd-analyze") {
        return;
    }
    let app = settings_app();
    let dir = export(&app, "systemd");
    let units = [
        "app-migrate.1.service",
        "app-seed.1.service",
        "app-web.1.service",
        "app-worker.1.service",
        "app.target",
    ];
    assert_eq!(names(&dir), units);
    let worker = read(&dir.join("app-worker.1.service"));
    assert!(worker.contains("\nTimeoutStopSec=2500ms\n"), "{worker}");
    assert!(!worker.contains("KillSignal="), "TERM is systemd's default");

    let dump = verify_units(&dir);
    // What systemd itself read, per unit.
    let expected: [(&str, &[&str]); 4] = [
        (
            "app-web.1.service",
            &[
                "Type: simple",
                "Restart: on-failure",
                "KillSignal: SIGINT",
                "TimeoutStopSec: 30s",
            ],
        ),
        (
            "app-worker.1.service",
            &["Type: simple", "Restart: always", "KillSignal: SIGTERM"],
        ),
        (
            "app-migrate.1.service",
            &[
                "Type: oneshot",
                "RemainAfterExit: yes",
                "Restart: no",
                "TimeoutStopSec: 7s",
            ],
        ),
        (
            "app-seed.1.service",
            &[
                "Type: oneshot",
                "RemainAfterExit: yes",
                "Restart: on-failure",
                // systemd reads 0 as no timeout at all; 1 ms is the nearest.
                "TimeoutStopSec: 1ms",
            ],
        ),
    ];
    for (unit, lines) in expected {
        assert_read(&dump, unit, lines);
    }
}

#[test]
fn supervisord_sends_the_stop_signal_and_runs_oneshots_once() {
    if !require_tool("supervisord") {
        return;
    }
    let app = settings_app();
    let dir = export(&app, "supervisord");
    let conf = read(&dir.join("app.conf"));
    for (program, fields) in [
        (
            "app-web-1",
            &[
                "autorestart=unexpected",
                "stopsignal=INT",
                "stopwaitsecs=30",
            ][..],
        ),
        (
            "app-worker-1",
            &["autorestart=true", "stopsignal=TERM", "stopwaitsecs=3"],
        ),
        (
            "app-migrate-1",
            &["autorestart=false", "startsecs=0", "stopwaitsecs=7"],
        ),
        (
            "app-seed-1",
            &["autorestart=unexpected", "startsecs=0", "stopwaitsecs=0"],
        ),
    ] {
        let start = conf
            .find(&format!("[program:{program}]\n"))
            .unwrap_or_else(|| panic!("no {program}:\n{conf}"));
        let section = &conf[start..];
        let section = &section[..section[1..].find("\n[").map_or(section.len(), |e| e + 1)];
        for field in fields {
            assert!(
                section.contains(&format!("\n{field}\n")),
                "{program} lacks {field}:\n{section}"
            );
        }
    }

    let out = app.path().join("out");
    let mut daemon = start_supervisord(&app, &dir.join("app.conf"));
    let log = app.path().join("supervisord/supervisord.log");
    wait_until(&mut daemon, "web.1 to start", || {
        out.join("web.1.up").exists()
    });
    wait_until(&mut daemon, "seed to succeed on its third run", || {
        read(&log).contains("exited: app-seed-1 (exit status 0; expected)")
    });
    wait_until(&mut daemon, "migrate to run", || {
        read(&log).contains("exited: app-migrate-1 (exit status 0; expected)")
    });
    // supervisord stops every program with its stopsignal as it exits.
    drop(daemon);
    assert_eq!(read(&out.join("web.1.signal")), "INT\n");
    assert_eq!(read(&out.join("migrate.runs")), "ran\n", "run once");
    assert_eq!(
        read(&out.join("seed.count")),
        "3\n",
        "retried until it succeeded"
    );
    let log = read(&log);
    assert_eq!(log.matches("exited: app-seed-1").count(), 3, "{log}");
}

#[test]
fn runit_control_script_sends_the_stop_signal_and_finish_ends_oneshots() {
    for tool in ["runsvdir", "chpst", "svlogd", "sv"] {
        if !require_tool(tool) {
            return;
        }
    }
    let app = settings_app();
    let dir = export(&app, "runit");
    assert_eq!(
        names(&dir),
        ["app-migrate-1", "app-seed-1", "app-web-1", "app-worker-1"]
    );
    let control = read(&dir.join("app-web-1/control/t"));
    assert!(
        control.contains("exec kill -s INT \"$(cat supervise/pid)\"\n"),
        "{control}"
    );
    assert!(
        !dir.join("app-worker-1/control").exists(),
        "TERM is runsv's own"
    );
    assert!(!dir.join("app-worker-1/finish").exists(), "kept up");
    assert!(read(&dir.join("app-migrate-1/finish")).ends_with("\nexec sv down .\n"));
    assert!(read(&dir.join("app-seed-1/finish")).contains("if [ \"$1\" = 0 ]"));

    let (mut daemon, services) = start_runit(&app, &dir);
    let out = app.path().join("out");
    wait_until(&mut daemon, "web.1 to start", || {
        out.join("web.1.up").exists()
    });
    wait_until(&mut daemon, "migrate to run once and stay down", || {
        runsv_down_for_good(&services.join("app-migrate-1")) && out.join("migrate.runs").exists()
    });
    wait_until(&mut daemon, "seed to succeed and stay down", || {
        runsv_down_for_good(&services.join("app-seed-1"))
    });
    assert_eq!(read(&out.join("migrate.runs")), "ran\n", "run once");
    assert_eq!(
        read(&out.join("seed.count")),
        "3\n",
        "retried until it succeeded"
    );

    let down = Command::new("sv")
        .arg("down")
        .arg(services.join("app-web-1"))
        .output()
        .expect("sv down");
    assert!(down.status.success(), "{down:?}");
    wait_until(&mut daemon, "web.1 to be stopped", || {
        out.join("web.1.signal").exists()
    });
    assert_eq!(read(&out.join("web.1.signal")), "INT\n");
    drop(daemon);
}

#[test]
fn kubernetes_grace_prestop_signal_and_jobs_for_oneshots_validate() {
    if !require_tool("kubernetes-validate") {
        return;
    }
    let app = settings_app();
    let docs = kubernetes_docs(&export(&app, "kubernetes").join("app.yaml"));
    let find = |name: &str| workload(&docs, name);
    let pod = |name: &str| &find(name)["spec"]["template"]["spec"];

    let web = find("app-web");
    assert_eq!(web["kind"].as_str(), Some("Deployment"));
    assert_eq!(
        pod("app-web")["terminationGracePeriodSeconds"].as_u64(),
        Some(30)
    );
    let hook = &pod("app-web")["containers"][0]["lifecycle"]["preStop"]["exec"]["command"];
    assert_eq!(hook[0].as_str(), Some("/bin/sh"));
    let script = hook[2].as_str().expect("script");
    assert!(script.starts_with("kill -s INT 1;"), "{script}");

    assert_eq!(find("app-worker")["kind"].as_str(), Some("Deployment"));
    assert_eq!(
        pod("app-worker")["terminationGracePeriodSeconds"].as_u64(),
        Some(3)
    );
    assert!(
        pod("app-worker")["containers"][0]
            .get("lifecycle")
            .is_none(),
        "TERM needs no hook"
    );

    for (name, policy, backoff, grace) in [
        ("app-migrate", "Never", Some(0), 7),
        ("app-seed", "OnFailure", None, 0),
    ] {
        let job = find(name);
        assert_eq!(job["kind"].as_str(), Some("Job"), "{name}");
        assert_eq!(job["spec"]["completions"].as_u64(), Some(1));
        assert_eq!(job["spec"]["backoffLimit"].as_u64(), backoff, "{name}");
        assert_eq!(pod(name)["restartPolicy"].as_str(), Some(policy));
        assert_eq!(
            pod(name)["terminationGracePeriodSeconds"].as_u64(),
            Some(grace)
        );
    }
}

#[test]
fn compose_services_carry_stop_signal_grace_and_restart() {
    if !require_tool("check-jsonschema") {
        return;
    }
    let app = settings_app();
    let file = export(&app, "compose").join("compose.yaml");
    assert_compose_valid(&file);
    let text = read(&file);
    assert!(
        text.contains("restart: \"no\"\n"),
        "quoted for YAML 1.1:\n{text}"
    );
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("parse");
    for (name, restart, signal, grace) in [
        ("web", "on-failure", Some("SIGINT"), "30s"),
        ("worker", "always", None, "2500ms"),
        ("migrate", "no", None, "7s"),
        ("seed", "on-failure", None, "0s"),
    ] {
        let service = &doc["services"][name];
        assert_eq!(service["restart"].as_str(), Some(restart), "{name}");
        assert_eq!(service["stop_signal"].as_str(), signal, "{name}");
        assert_eq!(service["stop_grace_period"].as_str(), Some(grace), "{name}");
    }
}

#[test]
fn launchd_plists_carry_exit_timeout_and_keep_alive() {
    let app = settings_app();
    let dir = export(&app, "launchd");
    let python = require_tool("python3");
    let on_failure = {
        let mut when = plist::Dictionary::new();
        when.insert("SuccessfulExit".into(), false.into());
        plist::Value::Dictionary(when)
    };
    for (file, keep_alive, timeout) in [
        ("app-web-1.plist", on_failure.clone(), 30),
        ("app-worker-1.plist", true.into(), 3),
        ("app-migrate-1.plist", false.into(), 7),
        // launchd reads 0 as "wait forever"; 1 s is the nearest.
        ("app-seed-1.plist", on_failure, 1),
    ] {
        let path = dir.join(file);
        let job: plist::Dictionary = plist::from_file(&path).expect("the plist crate parses it");
        assert_eq!(job.get("KeepAlive"), Some(&keep_alive), "{file}");
        assert_eq!(
            job.get("ExitTimeOut")
                .and_then(plist::Value::as_unsigned_integer),
            Some(timeout),
            "{file}"
        );
        assert_eq!(job.get("RunAtLoad"), Some(&true.into()), "{file}");
        if python {
            let out = assert_succeeds(
                Command::new("python3")
                    .args([
                        "-c",
                        "import json, plistlib, sys; j = plistlib.load(open(sys.argv[1], 'rb')); \
                         print(json.dumps([j['KeepAlive'], j['ExitTimeOut']]))",
                    ])
                    .arg(&path),
                "plistlib",
            );
            let parsed: serde_json::Value = serde_json::from_slice(&out).expect("json");
            assert_eq!(parsed[1].as_u64(), Some(timeout), "plistlib: {file}");
        }
    }
}
