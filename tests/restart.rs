//! `--restart` with exponential backoff and `--can-die` one-shot processes.

use std::time::{Duration, Instant};

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

fn start(app: &App, args: &[&str]) -> Running {
    app.spawn(&[&["start"], args].concat())
}

#[test]
fn a_crashing_type_restarts_with_growing_gaps_while_another_keeps_running() {
    let app = App::with_procfile("crash: echo up; exit 1\nweb: echo serving; sleep 60\n");
    let mut ganger = start(&app, &["--restart", "crash", "--no-timestamp"]);
    ganger.wait_line("web.1", "serving", LIMIT);
    let web_pid = ganger.wait_for("web.1 started with pid", LIMIT);
    let mut seen_at = Vec::new();
    for (n, delay) in [(1, "0.5s"), (2, "1s"), (3, "2s")] {
        ganger.wait_for(
            &format!("crash.1 exited with code 1, restarting in {delay} (restart {n})"),
            LIMIT,
        );
        seen_at.push(Instant::now());
    }
    ganger.wait_for("(restart 4)", LIMIT);
    seen_at.push(Instant::now());
    let gaps: Vec<Duration> = seen_at.windows(2).map(|w| w[1] - w[0]).collect();
    // Each gap is the backoff plus a restart; generous upper bounds for a busy machine.
    for (gap, (low, high)) in gaps.iter().zip([(400, 3000), (900, 4000), (1900, 6000)]) {
        assert!(
            *gap >= Duration::from_millis(low) && *gap < Duration::from_millis(high),
            "gaps {gaps:?}"
        );
    }
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "gaps do not grow: {gaps:?}"
    );
    assert!(
        !ganger.seen.iter().any(|l| l.contains("sending SIGTERM")),
        "the app was stopped"
    );
    assert_eq!(
        ganger
            .seen
            .iter()
            .filter(|l| l.contains("web.1 started"))
            .count(),
        1
    );
    assert!(web_pid.contains("web.1 started with pid"));
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn a_restarted_instance_keeps_its_port_and_ps() {
    let app = App::with_procfile("a: echo \"$PS $PORT\"; exit 1\nb: sleep 60\n");
    let mut ganger = start(
        &app,
        &[
            "--restart",
            "all",
            "-m",
            "a=2",
            "-p",
            "7000",
            "--no-timestamp",
        ],
    );
    // Each "(restart 2)" line comes after that instance's second run printed.
    for ps in ["a.1", "a.2"] {
        ganger.wait_for(
            &format!("{ps} exited with code 1, restarting in 1s (restart 2)"),
            LIMIT,
        );
    }
    ganger.signal("TERM");
    let (_, lines, _) = ganger.finish(LIMIT);
    let text = lines.join("\n");
    assert!(
        lines_of(&text, "a.1")
            .iter()
            .filter(|l| *l == "a.1 7000")
            .count()
            >= 2,
        "{text}"
    );
    assert!(
        lines_of(&text, "a.2")
            .iter()
            .filter(|l| *l == "a.2 7001")
            .count()
            >= 2,
        "{text}"
    );
}

#[test]
fn sigterm_during_a_backoff_wait_stops_at_once() {
    let app = App::with_procfile("crash: exit 2\nweb: sleep 60\n");
    let mut ganger = start(&app, &["--restart", "crash", "--no-timestamp"]);
    ganger.wait_for("restarting in 2s (restart 3)", LIMIT);
    let sent = Instant::now();
    ganger.signal("TERM");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert!(
        sent.elapsed() < Duration::from_millis(1500),
        "waited out the backoff: {:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(143));
    let after = lines
        .iter()
        .skip_while(|l| !l.contains("(restart 3)"))
        .skip(1);
    assert!(
        !after.clone().any(|l| l.contains("crash.1 started")),
        "restarted during shutdown:\n{}",
        lines.join("\n")
    );
}

#[test]
fn a_migration_allowed_to_die_leaves_the_web_process_serving() {
    let app = App::with_procfile(
        "migrate: echo migrated; exit 0\nweb: trap 'echo got USR1' USR1; echo serving; while true; do sleep 0.05; done\n",
    );
    let mut ganger = start(&app, &["--can-die", "migrate", "--no-timestamp"]);
    ganger.wait_for("migrate.1 exited with code 0", LIMIT);
    ganger.wait_line("web.1", "serving", LIMIT);
    // Still running: a USR1 round trip proves the loop is alive and nothing stopped.
    ganger.signal("USR1");
    ganger.wait_line("web.1", "got USR1", LIMIT);
    assert!(
        ganger.child.try_wait().expect("try_wait").is_none(),
        "ganger exited"
    );
    assert!(!ganger.seen.iter().any(|l| l.contains("sending SIGTERM")));
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn when_all_were_allowed_to_die_the_status_is_the_first_failure_or_zero() {
    let app = App::with_procfile("a: exit 0\nb: sleep 0.2; exit 3\nc: sleep 0.4; exit 4\n");
    app.run(&["start", "--can-die", "all"]).assert_code(3);
    let app = App::with_procfile("a: exit 0\nb: sleep 0.2; exit 0\n");
    let run = app.run(&["start", "--can-die", "a,b"]);
    run.assert_code(0);
    assert!(!run.stdout.contains("sending SIGTERM"), "{}", run.stdout);
}

#[test]
fn a_type_not_allowed_to_die_still_stops_the_app() {
    let app = App::with_procfile("migrate: exit 0\nweb: sleep 0.5; exit 5\nother: sleep 60\n");
    app.run(&["start", "--can-die", "migrate"]).assert_code(5);
}

#[test]
fn policies_come_from_the_environment_and_show_in_check() {
    let app = App::with_procfile("web: w\nmigrate: m\n");
    let mut cmd = app.ganger();
    cmd.env("GANGER_RESTART", "web")
        .env("GANGER_CAN_DIE", "migrate")
        .arg("check");
    let run = run_with_deadline(cmd, LIMIT);
    run.assert_code(0);
    run.assert_stdout_has("web.1      PORT=5000  w  (restarts)");
    run.assert_stdout_has("migrate.1  PORT=5100  m  (can die)");
    app.run(&["check", "--restart", "wbe"])
        .assert_code(1)
        .assert_stderr_has("did you mean `web`?");
}
