//! Start-up orchestration end to end: the release phase, every readiness kind,
//! `after`, the ready timeout, reverse-order stop, and `ganger health`.

use std::time::{Duration, Instant};

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// The position of the first line containing `needle`.
#[track_caller]
fn position(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", lines.join("\n")))
}

fn start(app: &App, args: &[&str]) -> Running {
    app.spawn(&[&["start", "--no-timestamp"], args].concat())
}

#[test]
fn release_runs_first_and_the_rest_start_after_it_succeeds() {
    let app = App::with_procfile(
        "release: echo migrating; sleep 0.2; echo migrated\nweb: echo web up; sleep 300\n",
    );
    let mut ganger = start(&app, &[]);
    ganger.wait_line("web.1", "web up", LIMIT);
    ganger.signal("TERM");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
    assert!(position(&lines, "migrated") < position(&lines, "web.1 started"));
    assert!(position(&lines, "release.1 exited with code 0") < position(&lines, "web.1 started"));
}

#[test]
fn a_failed_release_stops_there_with_its_status() {
    let app = App::with_procfile("release: echo failing; exit 4\nweb: echo web up; sleep 300\n");
    let run = app.run(&["start", "--no-timestamp"]);
    run.assert_code(4)
        .assert_stdout_has("release.1 exited with code 4");
    assert!(!run.stdout.contains("web.1 started"), "{}", run.stdout);
}

#[test]
fn the_release_phase_can_be_skipped() {
    let app = App::with_procfile("release: echo RELEASED; exit 4\nweb: echo web up; exit 0\n");
    for (args, vars) in [
        (vec!["start", "--no-release"], vec![]),
        (vec!["start"], vec![("GANGER_NO_RELEASE", "1")]),
        (vec!["start", "-m", "release=0"], vec![]),
        (vec!["start", "web"], vec![]),
    ] {
        let run = app.run_with_env(&args, &vars);
        run.assert_code(0).assert_stdout_has("web up");
        assert!(!run.stdout.contains("RELEASED"), "{args:?}: {}", run.stdout);
    }
    // Named, it runs first again.
    let run = app.run(&["start", "release", "web"]);
    run.assert_code(4);
    assert!(!run.stdout.contains("web up"), "{}", run.stdout);
}

#[test]
fn check_marks_the_release_phase_and_run_runs_it() {
    let app = App::with_procfile("release: echo release ran\nweb: serve\n");
    app.run(&["check"])
        .assert_code(0)
        .assert_stdout_has("valid procfile detected (release [runs first], web)");
    app.run(&["run", "release"])
        .assert_code(0)
        .assert_stdout_has("release ran");
}

/// `web` becomes ready by `ready`; `worker` starts after it. Returns the lines.
fn worker_waits_for(procfile_web: &str, ready: &str) -> Vec<String> {
    let app = App::with_procfile(&format!(
        "web: {procfile_web}\nworker: echo worker up; sleep 300\n"
    ));
    app.write(
        "ganger.toml",
        format!("[process.web]\nready = {ready}\nready_timeout = 20\n[process.worker]\nafter = [\"web\"]\n"),
    );
    let mut ganger = start(&app, &["-p", &free_port().to_string()]);
    ganger.wait_line("worker.1", "worker up", LIMIT);
    let ps = app.run(&["ps"]);
    assert!(ps.stdout.contains("ready"), "{}", ps.stdout);
    ganger.signal("TERM");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{}", lines.join("\n"));
    assert!(position(&lines, "web.1 ready in") < position(&lines, "worker.1 started"));
    lines
}

/// A port nobody listens on now, for the base port of a test app.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Keep clear of the top: instance ports go up from the base.
    if port > 60000 {
        20000 + port % 1000
    } else {
        port
    }
}

#[test]
fn port_readiness() {
    let lines = worker_waits_for(
        "sleep 0.3; exec python3 -m http.server $PORT --bind 127.0.0.1",
        "\"port\"",
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("web.1 ready in") && l.contains("(port)"))
    );
}

#[test]
fn http_readiness() {
    worker_waits_for(
        "sleep 0.3; exec python3 -m http.server $PORT --bind 127.0.0.1",
        "{ http = \"/\" }",
    );
}

#[test]
fn log_readiness() {
    let lines = worker_waits_for(
        "echo booting; sleep 0.3; echo listening now; sleep 300",
        "{ log = \"^listening\" }",
    );
    assert!(position(&lines, "listening now") < position(&lines, "worker.1 started"));
}

#[test]
fn exec_readiness() {
    worker_waits_for(
        "sleep 0.3; touch ready.flag; sleep 300",
        "{ exec = \"test -f ready.flag\" }",
    );
}

#[test]
fn notify_readiness_from_a_real_sd_notify_client() {
    let client = "import os, socket, time; time.sleep(0.3); s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'STATUS=warming up', os.environ['NOTIFY_SOCKET']); s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET']); time.sleep(300)";
    worker_waits_for(&format!("exec python3 -c \"{client}\""), "\"notify\"");
}

#[test]
fn notify_from_outside_the_instance_is_ignored() {
    let app = App::with_procfile("web: echo $NOTIFY_SOCKET > notify.path; sleep 300\n");
    app.write(
        "ganger.toml",
        "[process.web]\nready = \"notify\"\nready_timeout = 20\n",
    );
    let ganger = start(&app, &[]);
    let path = app.wait_for_file("notify.path", |t| t.ends_with('\n'), LIMIT);
    // A process that is not web.1's sends READY=1: nothing happens.
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'READY=1', sys.argv[1])",
            path.trim(),
        ])
        .status()
        .expect("python3");
    assert!(status.success());
    let health = app.run(&["health"]);
    health
        .assert_code(1)
        .assert_stderr_has("web.1: starting, waiting for notify");
    ganger.signal("TERM");
    let (_, lines, _) = ganger.finish(LIMIT);
    assert!(
        !lines.iter().any(|l| l.contains("web.1 ready")),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn not_ready_in_time_stops_the_app_with_1_and_says_why() {
    let app = App::with_procfile("web: sleep 300\n");
    app.write(
        "ganger.toml",
        "[process.web]\nready = \"port\"\nready_timeout = 0.5\n",
    );
    let run = app.run(&["start", "--no-timestamp", "-p", &free_port().to_string()]);
    run.assert_code(1)
        .assert_stdout_has("web.1 not ready after 0.5s (port), stopping");
}

#[test]
fn health_fails_while_waiting_and_passes_once_ready() {
    let app = App::with_procfile(
        "web: echo up; while [ ! -f go ]; do sleep 0.05; done; echo listening; sleep 300\nworker: sleep 300\n",
    );
    app.write(
        "ganger.toml",
        "[process.web]\nready = { log = \"^listening\" }\n[process.worker]\nafter = [\"web\"]\n",
    );
    let mut ganger = start(&app, &[]);
    ganger.wait_line("web.1", "up", LIMIT);
    let health = app.run(&["health"]);
    health
        .assert_code(1)
        .assert_stderr_has("web.1: starting, waiting for log /^listening/")
        .assert_stderr_has("worker.1: waiting for web");
    let ps = app.run(&["ps"]);
    assert!(
        ps.stdout.contains("starting") && ps.stdout.contains("waiting"),
        "{}",
        ps.stdout
    );
    app.write("go", "");
    ganger.wait_for("worker.1 started", LIMIT);
    let deadline = Instant::now() + LIMIT;
    while app.run(&["health"]).code() != 0 {
        assert!(Instant::now() < deadline, "never healthy");
        std::thread::sleep(Duration::from_millis(20));
    }
    app.run(&["health"])
        .assert_stdout_has("ready: 2 of 2 instances");
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn stop_runs_in_reverse_start_order() {
    let app = App::with_procfile(
        "web: trap 'echo web >> stop.log; exit 0' TERM; echo up; while :; do sleep 0.05; done\nworker: trap 'sleep 0.3; echo worker >> stop.log; exit 0' TERM; echo up; while :; do sleep 0.05; done\n",
    );
    app.write("ganger.toml", "[process.worker]\nafter = [\"web\"]\n");
    let mut ganger = start(&app, &["-t", "10"]);
    ganger.wait_line("worker.1", "up", LIMIT);
    ganger.wait_line("web.1", "up", LIMIT);
    ganger.signal("TERM");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{}", lines.join("\n"));
    assert_eq!(app.read("stop.log"), "worker\nweb\n");
}
