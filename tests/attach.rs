//! `ganger attach`, `start -i` and `ganger logs`: the real binary on real
//! processes, clients on real pseudo-terminals.

use std::time::Duration;

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// A child that answers each line it reads.
const ECHOER: &str = "web: while read line; do echo \"got $line\"; done\n";

/// Whether the last `stty -a` in `shown` says canonical mode with echo.
fn cooked_after(shown: &str, marker: &str) -> bool {
    let after = &shown[shown.find(marker).unwrap_or(0)..];
    let words: Vec<&str> = after.split_whitespace().collect();
    words.contains(&"icanon") && words.contains(&"echo") && !words.contains(&"-icanon")
}

#[test]
fn attach_types_into_the_instance_and_detaches_with_the_terminal_restored() {
    let app = App::with_procfile(ECHOER);
    app.write("ganger.toml", "[process.web]\ntty = true\n");
    let mut ganger = app.spawn(&["start", "--no-timestamp"]);
    ganger.wait_for("web.1 started with pid", LIMIT);
    let mut client = app.shell_in_pty("\"$GANGER\" attach web.1; echo \"status=$?\"; stty -a");
    client.wait_for("attached to web.1", LIMIT);
    client.send(b"hello\r");
    client.wait_for("got hello\r\n", LIMIT);
    // The main stream has it too, prefixed.
    ganger.wait_line("web.1", "got hello", LIMIT);
    client.send(b"\x1d");
    client.wait_for("status=0", LIMIT);
    let (status, shown) = client.finish(LIMIT);
    assert!(status.success(), "{shown}");
    assert!(shown.contains("detached from web.1"), "{shown}");
    assert!(cooked_after(&shown, "status=0"), "{shown}");
    // The app runs on, and a second client still reaches the instance.
    assert!(ganger.child.try_wait().expect("try_wait").is_none());
    let mut again =
        app.shell_in_pty("\"$GANGER\" attach web --detach-keys ctrl-x,q; echo \"status=$?\"");
    again.wait_for("attached to web.1", LIMIT);
    again.send(b"again\r");
    again.wait_for("got again", LIMIT);
    again.send(b"\x18q");
    again.wait_for("status=0", LIMIT);
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn the_instances_exit_ends_the_attach() {
    let app = App::with_procfile("web: read line; echo \"bye $line\"\n");
    let mut ganger = app.spawn(&["start", "--tty", "--no-timestamp"]);
    ganger.wait_for("web.1 started with pid", LIMIT);
    let mut client = app.shell_in_pty("\"$GANGER\" attach web; echo \"status=$?\"; stty -a");
    client.wait_for("attached to web.1", LIMIT);
    client.send(b"now\r");
    client.wait_for("status=0", LIMIT);
    let (_, shown) = client.finish(LIMIT);
    assert!(shown.contains("bye now"), "{shown}");
    assert!(shown.contains("web.1 exited"), "{shown}");
    assert!(cooked_after(&shown, "status=0"), "{shown}");
    ganger.finish(LIMIT);
}

#[test]
fn attaching_to_an_instance_without_a_terminal_says_how_to_give_it_one() {
    let app = App::with_procfile("web: sleep 1000\n");
    let mut ganger = app.spawn(&["start"]);
    ganger.wait_for("web.1 started with pid", LIMIT);
    let client = app.shell_in_pty("\"$GANGER\" attach web; echo \"status=$?\"");
    client.wait_for("status=", LIMIT);
    let (_, shown) = client.finish(LIMIT);
    assert!(shown.contains("web.1 has no terminal"), "{shown}");
    assert!(shown.contains("--tty web"), "{shown}");
    assert!(shown.contains("tty = true"), "{shown}");
    assert!(shown.contains("status=1"), "{shown}");
    let run = app.run(&["attach", "nope"]);
    run.assert_code(1);
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn start_interactive_forwards_typed_lines_and_ctrl_c_still_stops() {
    let app = App::with_procfile(&format!("{ECHOER}other: sleep 1000\n"));
    let mut pty = app.spawn_in_pty(&["start", "-i", "web", "--no-timestamp"]);
    pty.wait_for("web.1 started with pid", LIMIT);
    pty.send(b"hello\n");
    pty.wait_for("got hello", LIMIT);
    pty.send(b"\x03");
    let (status, shown) = pty.finish(LIMIT);
    assert_eq!(status.code(), Some(130), "{shown}");
}

#[test]
fn start_interactive_needs_a_terminal() {
    let app = App::with_procfile(ECHOER);
    let run = app.run(&["start", "-i", "web"]);
    run.assert_code(1)
        .assert_stderr_has("needs a terminal on stdin");
    let run = app.run(&["start", "-i", "nope"]);
    run.assert_stderr_has("nope");
}

#[test]
fn logs_gives_the_last_lines_and_follow_only_new_ones() {
    let app = App::with_procfile(
        "burst: seq 1 300; while true; do if [ -f go ]; then rm go; echo new; fi; sleep 0.05; done\n",
    );
    let mut ganger = app.spawn(&["start", "--no-timestamp"]);
    ganger.wait_line("burst.1", "300", LIMIT);
    let run = app.run(&["logs", "-n", "5"]);
    run.assert_code(0);
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.stdout);
    assert_eq!(run.lines_of("burst.1"), ["296", "297", "298", "299", "300"]);
    let run = app.run(&["logs", "burst.1", "-n", "1", "--no-such-flag"]);
    run.assert_code(2);
    let run = app.run(&["logs", "nope"]);
    run.assert_code(1)
        .assert_stderr_has("no such process or instance: nope");

    let mut follow = app.spawn(&["logs", "-f", "-n", "0", "burst"]);
    // The follower may not listen yet when the first line is asked for: ask
    // again until one arrives.
    let deadline = std::time::Instant::now() + LIMIT;
    let mut seen = None;
    while seen.is_none() {
        assert!(std::time::Instant::now() < deadline, "no new line followed");
        app.write("go", "");
        seen = follow.try_line(Duration::from_millis(500));
    }
    assert_eq!(lines_of(&seen.unwrap_or_default(), "burst.1"), ["new"]);
    app.run(&["quit"]).assert_code(0);
    let (status, lines, _) = follow.finish(LIMIT);
    assert!(status.success());
    assert!(
        lines.iter().all(|l| l.ends_with("| new")),
        "old lines were followed: {lines:?}"
    );
    ganger.finish(LIMIT);
}

#[test]
fn logs_keep_the_stream_format_and_a_huge_line_is_kept_cut() {
    let app = App::with_procfile(
        "big: head -c 3000000 /dev/zero | tr '\\0' x; echo; echo after; sleep 1000\n",
    );
    let mut ganger = app.spawn(&["start", "--log-format", "json"]);
    ganger.wait_for("\"line\":\"after\"", LIMIT);
    let run = app.run(&["logs", "big", "-n", "1000"]);
    run.assert_code(0);
    // At most the ring's 1 MiB, in whole JSON lines, the last one `after`.
    assert!(
        run.stdout.len() <= 1024 * 1024,
        "{} bytes",
        run.stdout.len()
    );
    assert!(run.stdout.len() > 512 * 1024, "{} bytes", run.stdout.len());
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        lines.last().map(|v| v["line"].clone()),
        Some("after".into())
    );
    assert!(lines.iter().all(|v| v["process"] == "big.1"));
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}
