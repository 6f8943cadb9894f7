//! `ganger export`: each format is checked by its real tool (or, for the
//! container formats, the real validator and schema), with a hostile `.env`
//! whose values must arrive byte for byte, never expanded or executed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::export_tools::*;
use crate::support::*;

/// Values that break naive quoting in at least one format.
const HOSTILE: &[(&str, &str)] = &[
    ("H_DQUOTE", r#"say "hi" "#),
    ("H_SQUOTE", "it's 'quoted'"),
    ("H_EDGES", r#"'"both ends"'"#),
    ("H_SPACES", "  two  spaces  "),
    ("H_NEWLINE", "line one\nline two\n"),
    ("H_DOLLAR", "$HOME ${HOME} $$ $1"),
    ("H_SUBST", "$(touch pwned) `touch pwned`"),
    ("H_PERCENT", "100% %n %h %% %i"),
    ("H_SUPERVISOR", "%(ENV_HOME)s %(here)s"),
    ("H_BACKSLASH", r"C:\path\n\\ end\"),
    ("H_SEMI", "a;b ; c; touch pwned"),
    ("H_HASH", "a#b # c ;d"),
    ("H_TAB", "a\tb\t"),
    ("H_UNICODE", "héllo ✓ 日本"),
    ("H_EMPTY", ""),
    ("H_URL", "postgres://u:p@db:5432/x?a=1&b=2"),
];

/// The Procfile command: it records a value of its own that its quoting must
/// keep, then (atomically, last) the environment, then stays up. `clock` has
/// count 0 (skipped).
const COMMAND: &str = r#"printf '%s|%s' "50% \\ #x" '$HOME %n' > "out/$PS.cmd"; env -0 > "out/$PS.tmp" && mv "out/$PS.tmp" "out/$PS.env"; exec sleep 60"#;

/// What [`COMMAND`] writes to `out/$PS.cmd`.
const COMMAND_OUTPUT: &str = r"50% \ #x|$HOME %n";

/// The app lives in a directory whose name needs quoting too.
const ROOT: &str = "my app 50%";

const FORMATION: &str = "web=2,worker=1,clock=0";

/// The instances [`FORMATION`] gives with `-p 6000`: PS and PORT.
const INSTANCES: &[(&str, &str)] = &[("web.1", "6000"), ("web.2", "6001"), ("worker.1", "6100")];

/// An app with the hostile `.env` and a Procfile of three types.
fn hostile_app() -> App {
    let app = App::new();
    let env: String = HOSTILE
        .iter()
        .map(|(k, v)| format!("{k}={}\n", dotenv_quote(v)))
        .collect();
    app.write(&format!("{ROOT}/.env"), env);
    app.write(
        &format!("{ROOT}/Procfile"),
        format!("web: {COMMAND}\nworker: {COMMAND}\nclock: echo never\n"),
    );
    app.write(&format!("{ROOT}/out/.keep"), "");
    app
}

fn root(app: &App) -> PathBuf {
    app.path().join(ROOT).canonicalize().expect("root")
}

/// A `ganger` command in the app root.
fn in_root(app: &App) -> Command {
    let mut cmd = app.ganger();
    cmd.current_dir(app.path().join(ROOT));
    cmd
}

/// Runs `ganger export FORMAT <tmp>/export-FORMAT` in the app root with the
/// hostile setup, and returns the export directory.
fn export(app: &App, format: &str, extra: &[&str]) -> PathBuf {
    let dir = app.path().join(format!("export-{format}"));
    let user = current_user();
    let log = app.path().join("log");
    let mut cmd = in_root(app);
    cmd.args(["export", format])
        .arg(&dir)
        .args(["-m", FORMATION, "-p", "6000", "-u", &user, "-l"])
        .arg(&log)
        .args(extra);
    let run = run_with_deadline(cmd, Duration::from_secs(30));
    run.assert_code(0);
    dir
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// `env -0` output as a map.
fn env0(bytes: &[u8]) -> BTreeMap<String, String> {
    bytes
        .split(|&b| b == 0)
        .filter(|item| !item.is_empty())
        .filter_map(|item| {
            let text = String::from_utf8(item.to_vec()).expect("utf8 env");
            text.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Waits for every instance's records (failing early if the daemon dies),
/// then checks them byte for byte.
fn assert_instances_ran(app: &App, daemon: &mut Daemon) {
    let out = root(app).join("out");
    let deadline = Instant::now() + Duration::from_secs(15);
    for (ps, port) in INSTANCES {
        let env_path = out.join(format!("{ps}.env"));
        let cmd_path = out.join(format!("{ps}.cmd"));
        while !env_path.exists() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "the daemon exited ({status}):\n{}",
                    std::fs::read_to_string(&daemon.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{ps} never wrote its records; out/ holds {:?}; daemon output:\n{}",
                names(&out),
                std::fs::read_to_string(&daemon.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        let env = env0(&std::fs::read(&env_path).expect("env file"));
        for (key, value) in HOSTILE {
            assert_eq!(
                env.get(*key).map(String::as_str),
                Some(*value),
                "{ps}: {key}"
            );
        }
        assert_eq!(env["PORT"], *port, "{ps}: PORT");
        assert_eq!(env["PS"], *ps, "{ps}: PS");
        assert_eq!(
            std::fs::read_to_string(&cmd_path).expect("cmd file"),
            COMMAND_OUTPUT,
            "{ps}"
        );
    }
    assert!(!out.join("clock.1.env").exists(), "clock has count 0");
    assert_no_pwned(app);
}

fn assert_no_pwned(app: &App) {
    for dir in [app.path().to_path_buf(), root(app), root(app).join("out")] {
        assert!(
            !dir.join("pwned").exists(),
            "a value was executed (found {})",
            dir.join("pwned").display()
        );
    }
}

#[test]
fn systemd_units_pass_systemd_analyze_verify_and_carry_values_exactly() {
    if !require_tool("systemd-analyze") {
        return;
    }
    let app = hostile_app();
    let dir = export(&app, "systemd", &["-t", "7"]);
    let units = [
        "app-web.1.service",
        "app-web.2.service",
        "app-worker.1.service",
        "app.target",
    ];
    assert_eq!(names(&dir), units);
    assert_eq!(mode(&dir.join("app.target")), 0o644);
    for unit in &units[..3] {
        assert_eq!(mode(&dir.join(unit)), 0o600, "{unit} carries the env");
    }
    let target = std::fs::read_to_string(dir.join("app.target")).expect("target");
    assert!(
        target.contains("Wants=app-web.1.service app-web.2.service app-worker.1.service\n"),
        "{target}"
    );

    let dump = verify_units(&dir);
    let root = root(&app);
    for (ps, port) in INSTANCES {
        let unit = format!("app-{ps}.service");
        let section = unit_dump(&dump, &unit);
        let mut expected: Vec<(String, String)> = HOSTILE
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        expected.push(("PORT".into(), (*port).into()));
        expected.push(("PS".into(), (*ps).into()));
        for (key, value) in expected {
            let line = format!("\t\tEnvironment: {key}={value}\n\t\t");
            assert!(
                section.contains(&line),
                "{unit}: systemd did not read {key}={value:?}:\n{section}"
            );
        }
        let cwd = format!("WorkingDirectory: {}", root.display());
        assert_read(&dump, &unit, &[&cwd, "TimeoutStopSec: 7s"]);
        let line = section
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("Command Line: "))
            .unwrap_or_else(|| panic!("{unit}: no ExecStart in the dump:\n{section}"));
        // systemd keeps `$$` until exec time, where it becomes `$`.
        assert_eq!(
            split_dumped_command(line),
            ["/bin/sh", "-c", &COMMAND.replace('$', "$$")],
            "{unit}"
        );
    }
}

#[test]
fn supervisord_runs_the_export_and_every_value_arrives_exactly() {
    if !require_tool("supervisord") {
        return;
    }
    let app = hostile_app();
    let dir = export(&app, "supervisord", &[]);
    assert_eq!(names(&dir), ["app.conf"]);
    assert_eq!(mode(&dir.join("app.conf")), 0o600);
    let mut daemon = start_supervisord(&app, &dir.join("app.conf"));
    assert_instances_ran(&app, &mut daemon);
    drop(daemon);
}

#[test]
fn runsvdir_runs_the_export_and_every_value_arrives_exactly() {
    if !require_tool("runsvdir") || !require_tool("chpst") || !require_tool("svlogd") {
        return;
    }
    let app = hostile_app();
    let dir = export(&app, "runit", &[]);
    assert_eq!(names(&dir), ["app-web-1", "app-web-2", "app-worker-1"]);
    for service in names(&dir) {
        let service = dir.join(service);
        assert_eq!(mode(&service.join("env")), 0o700);
        for file in names(&service.join("env")) {
            assert_eq!(mode(&service.join("env").join(&file)), 0o600, "env/{file}");
        }
        // Values ending in a space or tab cannot be chpst env files; run carries them.
        assert_eq!(mode(&service.join("run")), 0o700);
        assert!(service.join("env/H_NEWLINE").exists() && !service.join("env/H_SPACES").exists());
        assert_eq!(mode(&service.join("log/run")), 0o755);
    }
    let (mut daemon, _) = start_runit(&app, &dir);
    assert_instances_ran(&app, &mut daemon);
    drop(daemon);
    let logged = app.path().join("log/web-1");
    assert!(
        logged.is_dir(),
        "log/run did not start svlogd in {}",
        logged.display()
    );
}

#[derive(Deserialize)]
struct Object {
    kind: String,
    metadata: serde_yaml_ng::Value,
    #[serde(default)]
    spec: serde_yaml_ng::Value,
    #[serde(default, rename = "stringData")]
    string_data: BTreeMap<String, String>,
}

#[test]
fn kubernetes_validate_accepts_the_stream_with_replicas_and_env_from_a_secret() {
    if !require_tool("kubernetes-validate") {
        return;
    }
    let app = hostile_app();
    let dir = export(&app, "kubernetes", &[]);
    assert_eq!(names(&dir), ["app.yaml"]);
    let file = dir.join("app.yaml");
    assert_eq!(mode(&file), 0o600);
    assert_kubernetes_valid(&file);

    let text = std::fs::read_to_string(&file).expect("yaml");
    let objects: Vec<Object> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Object::deserialize(doc).expect("a Kubernetes object"))
        .collect();
    let kinds: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| (o.kind.as_str(), o.metadata["name"].as_str().expect("name")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Secret", "app-env"),
            ("Deployment", "app-web"),
            ("Service", "app-web"),
            ("Deployment", "app-worker")
        ]
    );
    let expected: BTreeMap<String, String> = HOSTILE
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    assert_eq!(
        objects[0].string_data, expected,
        "the Secret holds the env exactly"
    );

    for (object, replicas, port, ps) in [
        (&objects[1], 2, "6000", None),
        (&objects[3], 1, "6100", Some("worker.1")),
    ] {
        let spec = &object.spec;
        assert_eq!(spec["replicas"].as_u64(), Some(replicas));
        let container = &spec["template"]["spec"]["containers"][0];
        assert_eq!(
            container["envFrom"][0]["secretRef"]["name"].as_str(),
            Some("app-env")
        );
        let command: Vec<&str> = container["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .map(|v| v.as_str().expect("string"))
            .collect();
        // Kubernetes expands $(VAR) in command and turns $$ into $.
        assert_eq!(command, ["/bin/sh", "-c", &COMMAND.replace('$', "$$")]);
        let env = container["env"].as_sequence().expect("env");
        assert_eq!(env[0]["name"].as_str(), Some("PORT"));
        assert_eq!(env[0]["value"].as_str(), Some(port));
        assert_eq!(env[1]["name"].as_str(), Some("PS"));
        match ps {
            Some(ps) => assert_eq!(env[1]["value"].as_str(), Some(ps)),
            None => assert_eq!(
                env[1]["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
                Some("metadata.name")
            ),
        }
        assert_eq!(
            spec["template"]["spec"]["terminationGracePeriodSeconds"].as_u64(),
            Some(5)
        );
    }
    let service = &objects[2].spec;
    assert_eq!(service["ports"][0]["port"].as_u64(), Some(6000));
    assert_eq!(
        service["selector"],
        objects[1].spec["selector"]["matchLabels"]
    );
}

#[test]
fn compose_file_validates_against_the_compose_specification() {
    if !require_tool("check-jsonschema") {
        return;
    }
    let app = hostile_app();
    let dir = export(&app, "compose", &["-a", "Shop.Front"]);
    assert_eq!(names(&dir), ["compose.yaml"]);
    let file = dir.join("compose.yaml");
    assert_eq!(mode(&file), 0o600);
    assert_compose_valid(&file);

    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&file).expect("yaml")).expect("parse");
    assert_eq!(doc["name"].as_str(), Some("shop-front"));
    let services = doc["services"].as_mapping().expect("services");
    let names: Vec<&str> = services.keys().map(|k| k.as_str().expect("name")).collect();
    assert_eq!(names, ["web", "worker"], "clock has count 0");
    for (name, replicas, port, ps) in [("web", 2, "6000", "web"), ("worker", 1, "6100", "worker.1")]
    {
        let service = &doc["services"][name];
        assert_eq!(
            service["deploy"]["replicas"].as_u64(),
            Some(replicas),
            "{name}"
        );
        assert_eq!(service["image"].as_str(), Some("shop.front"));
        let env = &service["environment"];
        // Compose interpolates $; $$ is its literal dollar.
        for (key, value) in HOSTILE {
            assert_eq!(
                env[*key].as_str(),
                Some(value.replace('$', "$$").as_str()),
                "{name}: {key}"
            );
        }
        assert_eq!(env["PORT"].as_str(), Some(port));
        assert_eq!(env["PS"].as_str(), Some(ps));
        assert_eq!(
            service["command"][2].as_str(),
            Some(COMMAND.replace('$', "$$").as_str())
        );
    }
    let ports = &doc["services"]["web"]["ports"][0];
    assert_eq!(ports["target"].as_u64(), Some(6000));
    assert_eq!(ports["published"].as_str(), Some("6000-6001"));
    assert!(
        doc["services"]["worker"].get("ports").is_none(),
        "worker does not bind PORT"
    );
}

#[test]
fn launchd_plists_parse_and_have_the_keys_launchd_needs() {
    let app = hostile_app();
    let dir = export(&app, "launchd", &[]);
    let files = ["app-web-1.plist", "app-web-2.plist", "app-worker-1.plist"];
    assert_eq!(names(&dir), files);
    let root = root(&app);
    let python = require_tool("python3");
    for ((ps, port), file) in INSTANCES.iter().zip(files) {
        let path = dir.join(file);
        assert_eq!(mode(&path), 0o600);
        let job: plist::Dictionary = plist::from_file(&path).expect("the plist crate parses it");
        assert_eq!(
            job.get("Label").and_then(|v| v.as_string()),
            Some(file.trim_end_matches(".plist"))
        );
        let args: Vec<&str> = job
            .get("ProgramArguments")
            .and_then(|v| v.as_array())
            .expect("ProgramArguments")
            .iter()
            .map(|v| v.as_string().expect("string"))
            .collect();
        assert_eq!(
            args,
            ["/bin/sh", "-c", COMMAND],
            "launchd runs no shell of its own"
        );
        assert_eq!(
            job.get("WorkingDirectory").and_then(|v| v.as_string()),
            root.to_str()
        );
        let env = job
            .get("EnvironmentVariables")
            .and_then(|v| v.as_dictionary())
            .expect("EnvironmentVariables");
        let mut expected: BTreeMap<&str, &str> = HOSTILE.iter().copied().collect();
        expected.insert("PORT", port);
        expected.insert("PS", ps);
        let got: BTreeMap<&str, &str> = env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_string().expect("string")))
            .collect();
        assert_eq!(got, expected, "{file}");

        if python {
            let out = assert_succeeds(
                Command::new("python3")
                    .args(["-c", "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))"])
                    .arg(&path),
                "plistlib",
            );
            let parsed: serde_json::Value = serde_json::from_slice(&out).expect("json");
            for key in [
                "Label",
                "ProgramArguments",
                "EnvironmentVariables",
                "WorkingDirectory",
            ] {
                assert!(parsed.get(key).is_some(), "plistlib: {file} lacks {key}");
            }
            let expected: serde_json::Map<String, serde_json::Value> = expected
                .iter()
                .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
                .collect();
            assert_eq!(
                parsed["EnvironmentVariables"],
                serde_json::Value::Object(expected),
                "plistlib: {file}"
            );
        }
    }
}

#[test]
fn reexport_replaces_this_apps_files_and_leaves_the_rest() {
    let app = hostile_app();
    let dir = export(&app, "systemd", &[]);
    // Another app's unit, and a hand-written one that merely shares the prefix.
    std::fs::write(
        dir.join("other-web.1.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("app-custom.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .expect("write");
    let reexport = |format: &str, dir: &Path, formation: &str| {
        let mut cmd = in_root(&app);
        cmd.args(["export", format])
            .arg(dir)
            .args(["-m", formation, "-u", "root"]);
        run_with_deadline(cmd, Duration::from_secs(30)).assert_code(0);
    };
    reexport("systemd", &dir, "all=0,web=1");
    assert_eq!(
        names(&dir),
        [
            "app-custom.service",
            "app-web.1.service",
            "app.target",
            "other-web.1.service"
        ]
    );

    let runit = export(&app, "runit", &[]);
    reexport("runit", &runit, "all=0,worker=1");
    assert_eq!(names(&runit), ["app-worker-1"]);
    let leftovers: Vec<String> = names(&runit)
        .into_iter()
        .filter(|n| n.contains("ganger-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn flags_come_from_ganger_variables_too() {
    let app = hostile_app();
    let dir = app.path().join("units");
    // supervisord's export creates the log directory: keep it in the temp dir.
    let log = app.path().join("srv-log");
    let mut cmd = in_root(&app);
    cmd.env("GANGER_APP", "shop")
        .env("GANGER_USER", "nobody")
        .env("GANGER_LOG", &log)
        .env("GANGER_TIMEOUT", "7")
        .args(["export", "supervisord"])
        .arg(&dir);
    let run = run_with_deadline(cmd, Duration::from_secs(30));
    run.assert_code(0).assert_stdout_has("shop.conf");
    let conf = std::fs::read_to_string(dir.join("shop.conf")).expect("conf");
    let logfile = format!("stdout_logfile={}/web-1.log", log.display());
    for needle in [
        "[group:shop]",
        "user=nobody\n",
        logfile.as_str(),
        "stopwaitsecs=7\n",
        "[program:shop-clock-1]",
    ] {
        assert!(conf.contains(needle), "lacks {needle:?}:\n{conf}");
    }
}

#[test]
fn export_errors_are_clear() {
    let app = hostile_app();
    let root = app.path().join(ROOT);
    let run = |args: &[&str]| {
        let mut cmd = in_root(&app);
        cmd.args(args);
        run_with_deadline(cmd, Duration::from_secs(30))
    };
    run(&["export", "upstart", "x"])
        .assert_code(2)
        .assert_stderr_has("invalid value 'upstart'");
    run(&["export", "systemd"])
        .assert_code(2)
        .assert_stderr_has("<DIR>");
    run(&["export", "systemd", "x", "-m", "wbe=2"])
        .assert_code(1)
        .assert_stderr_has("unknown process `wbe`");
    run(&["export", "systemd", "x", "-m", "all=0"])
        .assert_code(1)
        .assert_stderr_has("nothing to export");
    run(&["export", "systemd", "x", "-a", "../etc"])
        .assert_code(1)
        .assert_stderr_has("invalid -a/--app `../etc`");
    run(&["export", "runit", "x", "-u", "root; rm -rf /"])
        .assert_code(1)
        .assert_stderr_has("invalid -u/--user");
    run(&["export", "systemd", "x", "-l", "/var/log/a\nb"])
        .assert_code(1)
        .assert_stderr_has("invalid -l/--log");
    run(&["export", "kubernetes", "x", "-a", "1shop"])
        .assert_code(1)
        .assert_stderr_has("Kubernetes name");
    assert!(!root.join("x").exists(), "a failed export writes nothing");
}
