//! The control socket under abuse: absurd counts, too many clients, a frozen
//! ganger, a socket taken over by another ganger, a spawn that fails.

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

fn start(app: &App, args: &[&str]) -> Running {
    app.spawn(&[&["start", "--no-timestamp"], args].concat())
}

#[test]
fn absurd_scale_counts_are_refused_and_the_app_goes_on() {
    let app = App::with_procfile("web: sleep 300\n");
    let mut ganger = start(&app, &[]);
    ganger.wait_for("web.1 started", LIMIT);
    for spec in ["web=18446744073709551615", "web=100000000000"] {
        app.run(&["scale", spec])
            .assert_code(1)
            .assert_stderr_has("past 65535");
    }
    app.run(&["scale", "all =2"])
        .assert_code(0)
        .assert_stdout_has("scaled web 1 -> 2");
    ganger.wait_for("web.2 started", LIMIT);
    app.run(&["quit"]).assert_code(0);
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn idle_clients_beyond_the_limit_are_turned_away_and_the_app_goes_on() {
    let app = App::with_procfile("web: sleep 300\n");
    let mut ganger = start(&app, &["--restart", "web"]);
    ganger.wait_for("web.1 started", LIMIT);
    let socket = app.path().join(".ganger.sock");
    let idle: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&socket).expect("connect"))
        .collect();
    app.run(&["ps"])
        .assert_code(1)
        .assert_stderr_has("too many control clients");
    drop(idle);
    // Once they are gone, clients are served again and restarts still work.
    let deadline = Instant::now() + LIMIT;
    while app.run(&["restart", "web"]).code() != 0 {
        assert!(Instant::now() < deadline, "clients were never served again");
        std::thread::sleep(Duration::from_millis(20));
    }
    ganger.wait_for("web.1 started", LIMIT);
    app.run(&["quit"]).assert_code(0);
    ganger.finish(LIMIT);
}

#[test]
fn a_client_of_a_frozen_ganger_gives_up() {
    let app = App::with_procfile("web: sleep 300\n");
    let mut ganger = start(&app, &[]);
    ganger.wait_for("web.1 started", LIMIT);
    ganger.signal("STOP");
    let run = app.run(&["ps"]);
    ganger.signal("CONT");
    run.assert_code(1).assert_stderr_has("no answer");
    assert!(run.elapsed < Duration::from_secs(20), "{:?}", run.elapsed);
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn a_ganger_removes_only_its_own_socket() {
    let app = App::with_procfile("web: sleep 300\n");
    let mut first = start(&app, &[]);
    first.wait_for("web.1 started", LIMIT);
    // A second app takes the path over once the first one's socket is gone.
    std::fs::remove_file(app.path().join(".ganger.sock")).expect("rm");
    let mut second = start(&app, &[]);
    second.wait_for("web.1 started", LIMIT);
    first.signal("TERM");
    first.finish(LIMIT);
    assert!(app.path().join(".ganger.sock").exists());
    app.run(&["quit"]).assert_code(0);
    second.finish(LIMIT);
    assert!(!app.path().join(".ganger.sock").exists());
}

#[test]
fn a_failed_spawn_after_start_up_is_reported_and_does_not_stop_the_app() {
    let app = App::new();
    app.write("Procfile", "web: sleep 300\nworker: sleep 300\n");
    app.write("root/keep", "");
    let procfile = app.path().join("Procfile");
    let root = app.path().join("root");
    let socket = app.path().join("g.sock");
    let args = |cmd: &str| {
        vec![
            "-f".to_string(),
            procfile.display().to_string(),
            "-d".into(),
            root.display().to_string(),
            "-s".into(),
            socket.display().to_string(),
            cmd.into(),
        ]
    };
    let start_args = args("start");
    let start_args: Vec<&str> = start_args.iter().map(String::as_str).collect();
    let mut ganger = app.spawn(&start_args);
    ganger.wait_for("worker.1 started", LIMIT);
    // Without its root, nothing can start there any more.
    std::fs::remove_dir_all(&root).expect("rm root");
    // A spawn the request itself does fails back to the client ...
    let mut scale = args("scale");
    scale.push("worker=2".into());
    let scale: Vec<&str> = scale.iter().map(String::as_str).collect();
    app.run(&scale)
        .assert_code(1)
        .assert_stderr_has("cannot start worker.2");
    // ... and one that follows a stop is reported in the stream.
    let mut restart = args("restart");
    restart.push("web".into());
    let restart: Vec<&str> = restart.iter().map(String::as_str).collect();
    app.run(&restart).assert_code(0);
    ganger.wait_for("cannot start web.1", LIMIT);
    let ps = args("ps");
    let ps: Vec<&str> = ps.iter().map(String::as_str).collect();
    let run = app.run(&ps);
    run.assert_code(0).assert_stdout_has("failed to start");
    assert!(run.stdout.contains("worker.1"), "{}", run.stdout);
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn a_timeout_beyond_a_day_is_refused_before_anything_starts() {
    let app = App::with_procfile("web: sleep 300\n");
    app.run(&["start", "-t", "1e19"])
        .assert_code(2)
        .assert_stderr_has("more than a day");
}

#[test]
fn something_else_at_the_default_socket_path_only_turns_the_socket_off() {
    let app = App::with_procfile("web: sleep 300\n");
    app.write(".ganger.sock", "not a socket");
    let mut ganger = start(&app, &[]);
    ganger.wait_for("control socket off", LIMIT);
    ganger.wait_for("web.1 started", LIMIT);
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
    assert_eq!(app.read(".ganger.sock"), "not a socket");
    // A path the user named is strict.
    app.run(&["start", "-s", ".ganger.sock"])
        .assert_code(1)
        .assert_stderr_has("is not a socket");
}
