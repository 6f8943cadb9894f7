//! The control socket end to end: `ganger ps`, `restart`, `stop`, `scale`, `quit`,
//! and the socket's own robustness.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// A command that runs until SIGTERM (the trap makes the exit prompt).
const SERVE: &str = "trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done";

fn start(app: &App, args: &[&str]) -> Running {
    app.spawn(&[&["start", "--no-timestamp"], args].concat())
}

/// Sends one request line over the socket, as `socat` would, and reads the reply.
fn ask(app: &App, request: &str) -> Value {
    let mut stream = UnixStream::connect(app.path().join(".ganger.sock")).expect("connect");
    stream
        .write_all(format!("{request}\n").as_bytes())
        .expect("write");
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).expect("read");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn instances(app: &App) -> Vec<Value> {
    let reply = ask(app, r#"{"cmd":"ps"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    reply["instances"].as_array().expect("instances").clone()
}

fn instance(app: &App, name: &str) -> Value {
    instances(app)
        .into_iter()
        .find(|i| i["name"] == name)
        .unwrap_or(Value::Null)
}

/// Polls `ps` until `pred` holds for instance `name`.
#[track_caller]
fn wait_for_instance(app: &App, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let found = instance(app, name);
        if pred(&found) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never matched; last: {found}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_socket(app: &App) {
    app.wait_for_file(
        ".ganger.sock",
        |_| app.path().join(".ganger.sock").exists(),
        LIMIT,
    );
}

#[test]
fn ps_shows_pids_ports_states_and_restarts() {
    let app = App::with_procfile(&format!("web: {SERVE}\ncrash: exit 3\n"));
    let mut ganger = start(&app, &["-m", "web=2", "--restart", "crash"]);
    let web1 = ganger.wait_for("web.1 started with pid", LIMIT);
    wait_for_socket(&app);
    let pid: i64 = web1.rsplit(' ').next().expect("pid").parse().expect("pid");
    let web = wait_for_instance(&app, "web.1", |i| i["state"] == "running");
    assert_eq!(web["pid"], pid);
    assert_eq!(web["port"], 5000);
    assert_eq!(instance(&app, "web.2")["port"], 5001);
    assert_eq!(instance(&app, "crash.1")["port"], 5100);
    wait_for_instance(&app, "crash.1", |i| i["restarts"].as_u64() >= Some(2));

    let run = app.run(&["ps"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", run.stdout);
    assert!(
        lines.iter().any(|l| l.starts_with("web.1 ")
            && l.contains(&pid.to_string())
            && l.contains("running")
            && l.ends_with("5000")),
        "{}",
        run.stdout
    );
    let columns = lines[0].find("STATE").expect("STATE");
    assert!(
        lines
            .iter()
            .skip(1)
            .all(|l| l[columns..].starts_with(|c: char| c.is_ascii_lowercase())),
        "not aligned:\n{}",
        run.stdout
    );
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn restart_of_one_instance_keeps_its_port_and_the_others_pids() {
    let app = App::with_procfile(&format!(
        "web: echo \"port=$PORT pid=$$\"; {SERVE}\nworker: {SERVE}\n"
    ));
    let mut ganger = start(&app, &["-m", "web=2"]);
    wait_for_socket(&app);
    let before: Vec<Value> = (1..=2)
        .map(|n| wait_for_instance(&app, &format!("web.{n}"), |i| i["state"] == "running"))
        .collect();
    let worker = wait_for_instance(&app, "worker.1", |i| i["state"] == "running");
    ganger.wait_for(&format!("port=5001 pid={}", before[1]["pid"]), LIMIT);
    app.run(&["restart", "web.2"])
        .assert_code(0)
        .assert_stdout_has("restarting web.2");
    let after = wait_for_instance(&app, "web.2", |i| {
        i["state"] == "running" && i["pid"] != before[1]["pid"]
    });
    assert_eq!(after["port"], 5001);
    assert_eq!(after["restarts"], 1);
    ganger.wait_for(&format!("port=5001 pid={}", after["pid"]), LIMIT);
    assert_eq!(instance(&app, "web.1")["pid"], before[0]["pid"]);
    assert_eq!(instance(&app, "worker.1")["pid"], worker["pid"]);
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn stop_of_one_type_leaves_the_app_running_and_restart_starts_it_again() {
    let app = App::with_procfile(&format!("web: {SERVE}\nworker: {SERVE}\n"));
    let mut ganger = start(&app, &["-m", "worker=2"]);
    wait_for_socket(&app);
    wait_for_instance(&app, "worker.2", |i| i["state"] == "running");
    app.run(&["stop", "worker"])
        .assert_code(0)
        .assert_stdout_has("stopping worker.1, worker.2");
    wait_for_instance(&app, "worker.1", |i| {
        i["state"] == "stopped" && i["pid"].is_null()
    });
    wait_for_instance(&app, "worker.2", |i| i["state"] == "stopped");
    assert_eq!(instance(&app, "web.1")["state"], "running");
    assert!(
        ganger.child.try_wait().expect("try_wait").is_none(),
        "the app stopped"
    );
    app.run(&["restart", "worker.1"]).assert_code(0);
    wait_for_instance(&app, "worker.1", |i| i["state"] == "running");
    assert_eq!(instance(&app, "worker.2")["state"], "stopped");
    app.run(&["quit"]).assert_code(0);
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{}", lines.join("\n"));
}

#[test]
fn scale_up_uses_starts_ports_and_scale_down_stops_the_highest_first() {
    let app = App::with_procfile(&format!(
        "web: echo \"$PS on $PORT\"; {SERVE}\nworker: {SERVE}\n"
    ));
    let mut ganger = start(&app, &["-p", "6000"]);
    wait_for_socket(&app);
    app.run(&["scale", "web=3,worker=2"])
        .assert_code(0)
        .assert_stdout_has("scaled web 1 -> 3, worker 1 -> 2");
    ganger.wait_line("web.3", "web.3 on 6002", LIMIT);
    let worker2 = wait_for_instance(&app, "worker.2", |i| i["state"] == "running");
    assert_eq!(worker2["port"], 6101);
    let web1 = instance(&app, "web.1");
    app.run(&["scale", "web=1"]).assert_code(0);
    let deadline = Instant::now() + LIMIT;
    while instances(&app)
        .iter()
        .any(|i| i["name"] == "web.3" || i["name"] == "web.2")
    {
        assert!(Instant::now() < deadline, "web.2 and web.3 still listed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        instance(&app, "web.1")["pid"],
        web1["pid"],
        "scale down must keep the lowest numbers"
    );
    app.run(&["scale", "web=70000"])
        .assert_code(1)
        .assert_stderr_has("past 65535");
    app.run(&["scale", "nope=1"])
        .assert_code(1)
        .assert_stderr_has("unknown process `nope`");
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn an_unknown_target_is_a_clear_error_and_the_app_keeps_running() {
    let app = App::with_procfile(&format!("web: {SERVE}\n"));
    let ganger = start(&app, &[]);
    wait_for_socket(&app);
    app.run(&["restart", "wbe"])
        .assert_code(1)
        .assert_stderr_has("did you mean `web`?");
    app.run(&["stop", "web.7"])
        .assert_code(1)
        .assert_stderr_has("no instance `web.7`");
    wait_for_instance(&app, "web.1", |i| i["state"] == "running");
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn socket_is_private_a_second_start_is_refused_and_the_socket_goes_on_exit() {
    let app = App::with_procfile(&format!("web: {SERVE}\n"));
    let ganger = start(&app, &[]);
    wait_for_socket(&app);
    let socket = app.path().join(".ganger.sock");
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let second = app.run(&["start"]);
    second.assert_code(1).assert_stderr_has("already running");
    wait_for_instance(&app, "web.1", |i| i["state"] == "running");
    ganger.signal("TERM");
    ganger.finish(LIMIT);
    assert!(!socket.exists(), "socket left behind");
    app.run(&["ps"])
        .assert_code(1)
        .assert_stderr_has("no ganger is running here");
}

#[test]
fn a_stale_socket_is_replaced() {
    let app = App::with_procfile(&format!("web: {SERVE}\n"));
    let socket = app.path().join(".ganger.sock");
    // A socket nobody listens on any more, as a crashed ganger leaves it.
    // (Made by another process: a listener opened here could be inherited for a
    // moment by a child that a parallel test forks, and answer.)
    let made = std::process::Command::new("python3")
        .current_dir(app.path())
        .args([
            "-c",
            "import socket; socket.socket(socket.AF_UNIX).bind('.ganger.sock')",
        ])
        .status()
        .expect("python3");
    assert!(made.success());
    assert!(socket.exists());
    app.run(&["ps"])
        .assert_code(1)
        .assert_stderr_has("no ganger answers");
    let mut ganger = start(&app, &[]);
    ganger.wait_line("web.1", "ready", LIMIT);
    wait_for_instance(&app, "web.1", |i| i["state"] == "running");
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn garbage_and_silent_clients_do_not_disturb_the_app() {
    let app = App::with_procfile(&format!("web: {SERVE}\n"));
    let ganger = start(&app, &[]);
    wait_for_socket(&app);
    let _silent = UnixStream::connect(app.path().join(".ganger.sock")).expect("connect");
    for garbage in [
        "nonsense",
        "{}",
        r#"{"cmd":"dance"}"#,
        r#"{"cmd":"stop"}"#,
        "[1,2]",
    ] {
        let reply = ask(&app, garbage);
        assert_eq!(reply["ok"], false, "{garbage}: {reply}");
        assert!(
            reply["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{reply}"
        );
    }
    let mut stream = UnixStream::connect(app.path().join(".ganger.sock")).expect("connect");
    stream
        .write_all(&vec![b'x'; 100_000])
        .expect("write a huge line");
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).expect("read");
    assert!(line.contains("too long"), "{line}");
    wait_for_instance(&app, "web.1", |i| i["state"] == "running");
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn an_unusable_default_socket_turns_the_socket_off_but_a_named_one_is_an_error() {
    // A root whose socket path is too long for a Unix socket (108 bytes).
    let app = App::new();
    let deep = app.path().join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("Procfile"), "web: echo up\n").expect("write");
    // Relative to the app directory, so the path stays long.
    let procfile = format!("{}/{}/Procfile", "d".repeat(60), "e".repeat(60));
    let run = app.run(&["start", "--no-timestamp", "-f", &procfile]);
    run.assert_code(0);
    run.assert_stdout_has("control socket off: cannot listen on");
    assert_eq!(run.lines_of("web.1"), ["up"]);

    let socket = deep.join(".ganger.sock").display().to_string();
    let run = app.run(&["start", "-f", &procfile, "-s", &socket]);
    run.assert_code(1).assert_stderr_has("cannot listen on");
}

#[test]
fn the_name_column_widens_for_a_longer_name_from_scale() {
    let app = App::with_procfile(&format!("worker: {SERVE}\n"));
    let mut ganger = start(&app, &[]);
    wait_for_socket(&app);
    ganger.wait_line("worker.1", "ready", LIMIT);
    assert!(
        ganger.seen.iter().any(|l| l.starts_with("system   | ")),
        "{:?}",
        ganger.seen
    );
    app.run(&["scale", "worker=10"]).assert_code(0);
    let line = ganger.wait_line("worker.10", "ready", LIMIT);
    assert!(line.starts_with("worker.10 | "), "{line}");
    app.run(&["restart", "worker.1"]).assert_code(0);
    ganger.wait_for("system    | control: restarting worker.1", LIMIT);
    ganger.wait_for("worker.1  | ready", LIMIT);
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}
