//! `ganger.toml` and `.foreman`: defaults from each source in their order of
//! precedence, per-type settings acted on by `start`, and errors that name the
//! file, line and column.

use std::time::{Duration, Instant};

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// The PORT `check -m web=1` shows for web.1.
fn web_port(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.trim_start().starts_with("web.1"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("PORT=")))
        .unwrap_or_else(|| panic!("no web.1 line: {}", run.stdout))
        .to_string()
}

#[test]
fn defaults_come_from_each_source_in_order() {
    let app = App::with_procfile("web: serve\n");
    let check = |vars: &[(&str, &str)], args: &[&str]| {
        let mut all = vec!["check", "-m", "web=1"];
        all.extend_from_slice(args);
        let run = app.run_with_env(&all, vars);
        run.assert_code(0);
        web_port(&run)
    };
    assert_eq!(check(&[], &[]), "PORT=5000");
    app.write(".foreman", "port: 6000\n");
    assert_eq!(check(&[], &[]), "PORT=6000");
    app.write("ganger.toml", "[defaults]\nport = 7000\n");
    assert_eq!(check(&[], &[]), "PORT=7000");
    assert_eq!(check(&[("GANGER_PORT", "8000")], &[]), "PORT=8000");
    assert_eq!(
        check(&[("GANGER_PORT", "8000")], &["-p", "9000"]),
        "PORT=9000"
    );
}

#[test]
fn foreman_projects_keep_their_defaults() {
    let app = App::new();
    app.write("Procfile.dev", "web: serve\nworker: work\n");
    app.write(
        ".foreman",
        "procfile: Procfile.dev\nformation: web=2,worker=0\n",
    );
    let run = app.run(&["check"]);
    run.assert_code(0)
        .assert_stdout_has("valid procfile detected (web, worker)")
        .assert_stdout_has("web.2");
    assert!(!run.stdout.contains("worker.1"), "{}", run.stdout);
}

#[test]
fn a_named_settings_file_is_used_and_must_exist() {
    let app = App::with_procfile("web: serve\n");
    app.write("other.toml", "[defaults]\nport = 4000\n");
    let run = app.run(&["check", "-m", "web=1", "--config", "other.toml"]);
    run.assert_code(0);
    assert_eq!(web_port(&run), "PORT=4000");
    app.run(&["check", "--config", "missing.toml"])
        .assert_code(1)
        .assert_stderr_has("missing.toml");
}

#[test]
fn errors_name_file_line_and_column() {
    let app = App::with_procfile("web: serve\nworker: work\n");
    for (text, needle) in [
        (
            "[process.web]\nstop_sginal = \"INT\"\n",
            "ganger.toml:2:1: unknown key `stop_sginal`: did you mean `stop_signal`?",
        ),
        (
            "[process.wbe]\n",
            "ganger.toml:1:10: [process.wbe]: unknown process `wbe`: did you mean `web`?",
        ),
        ("[process.web]\ntimeout = \"soon\"\n", "ganger.toml:2:11:"),
        (
            "[defaults]\nprot = 3000\n",
            "ganger.toml:2:1: unknown flag `prot`: did you mean `port`?",
        ),
        ("[defaults]\nport = \"high\"\n", "ganger.toml:2:1: port:"),
        (
            "[process.web]\nafter = [\"worker\"]\n[process.worker]\nafter = [\"web\"]\n",
            "a cycle in `after`: web -> worker -> web",
        ),
        (
            "[process.web]\nready = { log = \"(\" }\n",
            "ganger.toml:2:9: ready: bad log pattern",
        ),
    ] {
        app.write("ganger.toml", text);
        let run = app.run(&["check"]);
        run.assert_code(1).assert_stderr_has(needle);
        // The offending line is shown.
        assert!(run.stderr.contains(" | "), "{}", run.stderr);
        // `start` refuses it too, before anything starts.
        app.run(&["start"]).assert_code(1).assert_stderr_has(needle);
    }
}

#[test]
fn check_shows_each_types_settings_and_the_start_order() {
    let app = App::with_procfile("web: serve\nworker: work\n");
    app.write(
        "ganger.toml",
        "[process.web]\nstop_signal = \"INT\"\ntimeout = 0.5\nready = \"port\"\n[process.worker]\nrestart = \"on-failure\"\nafter = [\"web\"]\ntty = true\n",
    );
    let run = app.run(&["check"]);
    run.assert_code(0)
        .assert_stdout_has("(stop SIGINT within 0.5s; ready port)")
        .assert_stdout_has("(restarts on failure; after web; tty)")
        .assert_stdout_has("start order: web, then worker");
}

#[test]
fn stop_signal_int_is_what_a_stop_sends() {
    let app = App::with_procfile(
        "web: trap 'echo got INT; exit 0' INT; echo up; while :; do sleep 0.05; done\n",
    );
    app.write("ganger.toml", "[process.web]\nstop_signal = \"INT\"\n");
    let mut ganger = app.spawn(&["start", "--no-timestamp"]);
    ganger.wait_line("web.1", "up", LIMIT);
    ganger.signal("TERM");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
    let text = lines.join("\n");
    assert!(text.contains("sending SIGINT to all processes"), "{text}");
    assert!(text.contains("got INT"), "{text}");
}

#[test]
fn a_type_timeout_kills_that_type_early_and_the_rest_keep_theirs() {
    let app = App::with_procfile(
        "stubborn: trap '' TERM; echo up; exec sleep 300\nweb: trap 'sleep 1; exit 0' TERM; while :; do sleep 0.05; done\n",
    );
    app.write("ganger.toml", "[process.stubborn]\ntimeout = 0.5\n");
    let mut ganger = app.spawn(&["start", "-t", "20", "--no-timestamp"]);
    ganger.wait_line("stubborn.1", "up", LIMIT);
    let stopped = Instant::now();
    ganger.signal("TERM");
    ganger.wait_for("sending SIGKILL to stubborn.1", LIMIT);
    let killed_after = stopped.elapsed();
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
    let text = lines.join("\n");
    // web drained on its own in about a second, well inside its 20 s.
    assert!(text.contains("web.1 exited with code 0"), "{text}");
    assert!(!text.contains("SIGKILL to web.1"), "{text}");
    assert!(killed_after < Duration::from_secs(15), "{killed_after:?}");
}

#[test]
fn restart_on_failure_restarts_only_a_failed_exit() {
    let app = App::with_procfile("flaky: echo run; exit 1\nclean: echo done\nweb: sleep 300\n");
    app.write(
        "ganger.toml",
        "[process.flaky]\nrestart = \"on-failure\"\n[process.clean]\nrestart = \"on-failure\"\n",
    );
    let mut ganger = app.spawn(&["start", "--no-timestamp"]);
    ganger.wait_for("flaky.1 exited with code 1, restarting in", LIMIT);
    ganger.wait_for("clean.1 exited with code 0", LIMIT);
    ganger.wait_for(
        "flaky.1 exited with code 1, restarting in 1s (restart 2)",
        LIMIT,
    );
    ganger.signal("TERM");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
    let text = lines.join("\n");
    assert!(
        !text.contains("clean.1 exited with code 0, restarting"),
        "{text}"
    );
}

#[test]
fn a_oneshot_that_succeeds_lets_the_app_run_and_one_that_fails_stops_it() {
    let app = App::with_procfile("setup: echo prepared\nweb: sleep 300\n");
    app.write("ganger.toml", "[process.setup]\noneshot = true\n");
    let mut ganger = app.spawn(&["start", "--no-timestamp"]);
    ganger.wait_for("setup.1 exited with code 0", LIMIT);
    app.run(&["ps"]).assert_code(0).assert_stdout_has("running");
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));

    app.write("Procfile", "setup: exit 3\nweb: sleep 300\n");
    let run = app.run(&["start", "--no-timestamp"]);
    run.assert_code(3)
        .assert_stdout_has("setup.1 exited with code 3");
}

#[test]
fn tty_in_the_file_gives_that_type_a_terminal() {
    let app = App::with_procfile("term: test -t 1 && echo on a tty\n");
    app.write(
        "ganger.toml",
        "[process.term]\ntty = true\noneshot = true\n",
    );
    let run = app.run(&["start", "--no-timestamp"]);
    run.assert_code(0).assert_stdout_has("on a tty");
}

#[test]
fn flags_merge_with_the_file() {
    let app = App::with_procfile("a: exit 1\nb: exit 1\nweb: sleep 300\n");
    app.write("ganger.toml", "[process.a]\nrestart = \"always\"\n");
    let mut ganger = app.spawn(&["start", "--restart", "b", "--no-timestamp"]);
    ganger.wait_for("a.1 exited with code 1, restarting", LIMIT);
    ganger.wait_for("b.1 exited with code 1, restarting", LIMIT);
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn paths_in_a_settings_file_are_relative_to_it() {
    let app = App::new();
    app.write("sub/Procfile.dev", "web: serve\n");
    app.write(
        "sub/ganger.toml",
        "[defaults]\nprocfile = \"Procfile.dev\"\n",
    );
    app.write("sub/Procfile", "other: x\n");
    app.run(&["check", "-d", "sub"])
        .assert_code(0)
        .assert_stdout_has("valid procfile detected (web)");
}

#[test]
fn the_shipped_example_settings_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = std::process::Command::new(ganger_bin());
    cmd.current_dir(root).args([
        "check",
        "-f",
        "Procfile.example",
        "-e",
        ".env.example",
        "--config",
        "ganger.toml.example",
    ]);
    let run = run_with_deadline(cmd, LIMIT);
    run.assert_code(0)
        .assert_stdout_has("web.1")
        .assert_stdout_has("stop SIGINT")
        .assert_stdout_has("restarts on failure");
}
