//! `ganger start` end to end: spawning, the relay, stopping, exit statuses.

use std::time::Duration;

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// A line of text output: `HH:MM:SS name | text`.
fn is_timestamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 9
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b' '
        && b[..8].iter().filter(|c| c.is_ascii_digit()).count() == 6
}

/// A Procfile line for a type `end` that exits once `n` files exist in `marks/`
/// (each instance touches `marks/$PS` when it is ready), so that tests do not race
/// on which instance exits first.
fn barrier(n: usize) -> String {
    format!("end: while [ $(ls marks 2>/dev/null | wc -l) -lt {n} ]; do sleep 0.02; done\n")
}

const MARK: &str = "mkdir -p marks; touch marks/$PS";

#[test]
fn spawns_each_instance_in_its_own_group_with_null_stdin_env_and_root() {
    let app = App::with_procfile(&format!(
        "web: echo \"pgid=$(ps -o pgid= -p $$ | tr -d ' ') pid=$$ stdin=$(readlink /proc/$$/fd/0) port=$PORT ps=$PS dir=$(pwd) file=$FROM_FILE\"; {MARK}; sleep 30\n{}",
        barrier(2)
    ));
    app.write(".env", "FROM_FILE=yes\nPORT=3000\n");
    let run = app.run(&["start", "-m", "web=2", "--no-timestamp"]);
    run.assert_code(0);
    let root = std::fs::canonicalize(app.path()).expect("canonical");
    for (ps, port) in [("web.1", 3000), ("web.2", 3001)] {
        let lines = run.lines_of(ps);
        assert_eq!(lines.len(), 1, "{}", run.stdout);
        let line = &lines[0];
        let pid = line
            .split("pid=")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .expect("pid");
        assert!(
            line.starts_with(&format!("pgid={pid} ")),
            "not its own group: {line}"
        );
        assert!(line.contains("stdin=/dev/null"), "{line}");
        assert!(line.contains(&format!("port={port} ps={ps} ")), "{line}");
        assert!(line.contains(&format!("dir={}", root.display())), "{line}");
        assert!(line.contains("file=yes"), "{line}");
    }
    run.assert_stdout_has("web.1 was killed by SIGTERM");
}

#[test]
fn lines_are_prefixed_aligned_and_timestamped() {
    let app = App::with_procfile("a: echo one; echo two >&2\nlongername: sleep 30\n");
    let run = app.run(&["start"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.iter().all(|l| is_timestamped(l)), "{}", run.stdout);
    let bar = lines[0].find(" | ").expect("bar");
    assert!(
        lines.iter().all(|l| l.find(" | ") == Some(bar)),
        "not aligned:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(" a.1          | one\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(" a.1          | two\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(" system       | a.1 started with pid "),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains('\x1b'),
        "color without a terminal:\n{}",
        run.stdout
    );
}

#[test]
fn no_timestamp_from_flag_and_environment() {
    let app = App::with_procfile("a: echo hi\n");
    let run = app.run(&["start", "--no-timestamp"]);
    assert!(
        run.stdout.starts_with("system | a.1 started"),
        "{}",
        run.stdout
    );
    for value in ["1", "true", "yes"] {
        let mut cmd = app.ganger();
        cmd.env("GANGER_NO_TIMESTAMP", value).arg("start");
        let run = run_with_deadline(cmd, LIMIT);
        assert!(
            run.stdout.starts_with("system | "),
            "{value}: {}",
            run.stdout
        );
    }
    let mut cmd = app.ganger();
    cmd.env("GANGER_NO_TIMESTAMP", "0").arg("start");
    let run = run_with_deadline(cmd, LIMIT);
    assert!(is_timestamped(&run.stdout), "{}", run.stdout);
}

#[test]
fn colors_follow_foreman_order_and_the_environment() {
    let procfile: String = ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .map(|n| format!("{n}: echo {n}; {MARK}; sleep 30\n"))
        .collect();
    let app = App::with_procfile(&(procfile + &barrier(7)));
    let run = app.run(&["start", "--color", "always", "--no-timestamp"]);
    for (name, code) in [
        ("a", 36),
        ("b", 33),
        ("c", 32),
        ("d", 35),
        ("e", 31),
        ("f", 34),
        ("g", 96),
    ] {
        let expected = format!("\x1b[{code}m{name}.1    |\x1b[0m {name}\n");
        assert!(run.stdout.contains(&expected), "{name}: {:?}", run.stdout);
    }
    assert!(
        run.stdout.contains("\nsystem | ") || run.stdout.starts_with("system | "),
        "system is plain"
    );

    let mut cmd = app.ganger();
    cmd.env("FORCE_COLOR", "1")
        .args(["start", "--no-timestamp"]);
    assert!(
        run_with_deadline(cmd, LIMIT).stdout.contains("\x1b[36m"),
        "FORCE_COLOR forces color"
    );
    let mut cmd = app.ganger();
    cmd.env("GANGER_COLOR", "always")
        .env("NO_COLOR", "1")
        .arg("start");
    assert!(
        run_with_deadline(cmd, LIMIT).stdout.contains("\x1b[36m"),
        "always beats NO_COLOR"
    );
    let run = app.run(&["start", "--color", "never"]);
    assert!(!run.stdout.contains('\x1b'));
}

#[test]
fn json_lines_are_valid_even_for_invalid_utf8() {
    let app = App::with_procfile("a: printf 'ok \\377\\376 \"q\"\\n'; echo err >&2\n");
    let run = app.run(&["start", "--log-format", "json"]);
    run.assert_code(0);
    let mut seen = Vec::new();
    for line in run.stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["ts"]
                .as_str()
                .is_some_and(|t| t.contains('T') && t.ends_with('Z')),
            "{line}"
        );
        seen.push((
            v["process"].as_str().unwrap_or("").to_string(),
            v["stream"].as_str().unwrap_or("").to_string(),
            v["line"].as_str().unwrap_or("").to_string(),
        ));
    }
    assert!(
        seen.contains(&(
            "a.1".into(),
            "stdout".into(),
            "ok \u{fffd}\u{fffd} \"q\"".into()
        )),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("a.1".into(), "stderr".into(), "err".into())),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(p, _, l)| p == "system" && l.starts_with("a.1 started with pid")),
        "{seen:?}"
    );
}

#[test]
fn exit_status_is_the_first_exit_and_the_rest_get_sigterm() {
    let app = App::with_procfile(
        "fail: while [ ! -e ready ]; do sleep 0.02; done; exit 7\nslow: trap 'echo got TERM; exit 0' TERM; touch ready; while true; do sleep 0.05; done\n",
    );
    let run = app.run(&["start", "--no-timestamp"]);
    run.assert_code(7);
    assert!(
        run.lines_of("slow.1").contains(&"got TERM".to_string()),
        "{}",
        run.stdout
    );
    run.assert_stdout_has("fail.1 exited with code 7");
    run.assert_stdout_has("sending SIGTERM to all processes");

    let app = App::with_procfile("dies: kill -QUIT $$\nslow: sleep 30\n");
    app.run(&["start"]).assert_code(128 + 3);
}

#[test]
fn stop_signals_give_128_plus_n() {
    for (sig, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let app = App::with_procfile("a: echo ready; sleep 30\nb: sleep 30\n");
        let mut ganger = app.spawn(&["start"]);
        ganger.wait_line("a.1", "ready", LIMIT);
        ganger.signal(sig);
        let (status, lines, stderr) = ganger.finish(LIMIT);
        assert_eq!(
            status.code(),
            Some(code),
            "{sig}\n{}\n{stderr}",
            lines.join("\n")
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("SIG{sig} received"))),
            "{}",
            lines.join("\n")
        );
    }
}

#[test]
fn a_process_ignoring_sigterm_is_killed_after_the_timeout() {
    let app = App::with_procfile(
        "stubborn: trap '' TERM; echo ready; while true; do sleep 0.05; done\nquick: sleep 30\n",
    );
    let mut ganger = app.spawn(&["start", "-t", "1.5"]);
    ganger.wait_line("stubborn.1", "ready", LIMIT);
    let started = std::time::Instant::now();
    ganger.signal("TERM");
    let (status, lines, _) = ganger.finish(LIMIT);
    let took = started.elapsed();
    assert_eq!(status.code(), Some(143));
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("| sending SIGKILL to stubborn.1")),
        "{}",
        lines.join("\n")
    );
    assert!(
        took >= Duration::from_millis(1400),
        "killed too early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "took far longer than the timeout: {took:?}"
    );
}

#[test]
fn a_second_sigint_kills_at_once() {
    let app = App::with_procfile(
        "stubborn: trap '' TERM INT; echo ready; while true; do sleep 0.05; done\n",
    );
    let mut ganger = app.spawn(&["start", "-t", "20"]);
    ganger.wait_for("ready", LIMIT);
    let started = std::time::Instant::now();
    ganger.signal("INT");
    ganger.wait_for("sending SIGTERM", LIMIT);
    ganger.signal("INT");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited out the timeout"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("sending SIGKILL to stubborn.1")),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn usr1_and_usr2_are_forwarded_without_stopping() {
    let app = App::with_procfile(
        "a: trap 'echo got USR1' USR1; trap 'echo got USR2' USR2; echo ready; while true; do sleep 0.05; done\n",
    );
    let mut ganger = app.spawn(&["start", "-m", "a=2"]);
    ganger.wait_line("a.1", "ready", LIMIT);
    ganger.wait_line("a.2", "ready", LIMIT);
    ganger.signal("USR1");
    ganger.wait_line("a.1", "got USR1", LIMIT);
    ganger.wait_line("a.2", "got USR1", LIMIT);
    ganger.signal("USR2");
    ganger.wait_line("a.1", "got USR2", LIMIT);
    ganger.wait_line("a.2", "got USR2", LIMIT);
    assert!(!ganger.seen.iter().any(|l| l.contains("sending SIGTERM")));
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn a_line_appears_at_once_not_at_exit() {
    let app = App::with_procfile("a: echo first; sleep 30\n");
    let mut ganger = app.spawn(&["start"]);
    ganger.wait_line("a.1", "first", Duration::from_secs(10));
    assert!(
        ganger.child.try_wait().expect("try_wait").is_none(),
        "ganger should still be running"
    );
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn partial_long_and_binary_lines_are_kept_whole() {
    let app = App::with_procfile(
        "a: python3 -c \"import sys; w=sys.stdout.buffer.write; w(b'x'*3000000 + b'\\n'); w(b'bin \\xff\\xfe\\n'); w(b'no newline at end')\"\n",
    );
    let mut cmd = app.ganger();
    cmd.args(["start", "--no-timestamp"]);
    let run = run_with_deadline(cmd, LIMIT);
    run.assert_code(0);
    let raw = {
        let mut c = app.ganger();
        c.args(["start", "--no-timestamp"]);
        c.stdout(std::process::Stdio::piped());
        c.output().expect("run")
    };
    let text = raw.stdout;
    let prefix = b"a.1    | ";
    let mut xs = 0;
    let mut saw_bin = false;
    let mut saw_tail = false;
    for line in text.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(&prefix[..]) {
            if rest.iter().all(|&b| b == b'x') {
                xs += rest.len();
            }
            saw_bin |= rest == b"bin \xff\xfe";
            saw_tail |= rest == b"no newline at end";
        }
    }
    assert_eq!(xs, 3_000_000, "the long line arrived in full");
    assert!(saw_bin, "invalid UTF-8 passed through byte for byte");
    assert!(saw_tail, "the final line without a newline was kept");
}

#[test]
fn output_written_while_stopping_is_kept() {
    let app = App::with_procfile(
        "chatty: trap 'i=0; while [ $i -lt 2000 ]; do echo bye $i; i=$((i+1)); done; exit 0' TERM; echo ready; while true; do sleep 0.05; done\nquick: sleep 0.5\n",
    );
    let run = app.run(&["start", "--no-timestamp"]);
    run.assert_code(0);
    let byes: Vec<String> = run
        .lines_of("chatty.1")
        .into_iter()
        .filter(|l| l.starts_with("bye "))
        .collect();
    let expected: Vec<String> = (0..2000).map(|i| format!("bye {i}")).collect();
    assert_eq!(byes, expected);
    let exit_line = run
        .stdout
        .lines()
        .position(|l| l.contains("chatty.1 exited"))
        .expect("exit line");
    let last_bye = run
        .stdout
        .lines()
        .position(|l| l.ends_with("bye 1999"))
        .expect("last bye");
    assert!(
        last_bye < exit_line,
        "exit line printed before the output was drained"
    );
}

#[test]
fn eight_writers_arrive_complete_and_in_order() {
    // Generators ignore SIGTERM so that the first to finish does not cut the others short.
    // They also start together, all at once.
    let app = App::with_procfile(&format!(
        "gen: trap '' TERM; {MARK}; while [ $(ls marks | wc -l) -lt 8 ]; do sleep 0.01; done; seq 1 50000 | sed \"s/^/$PS line /\"\n"
    ));
    let run = app.run(&["start", "-m", "gen=8", "--no-timestamp", "-t", "120"]);
    run.assert_code(0);
    for n in 1..=8 {
        let ps = format!("gen.{n}");
        let lines = run.lines_of(&ps);
        assert_eq!(lines.len(), 50_000, "{ps}");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line, &format!("{ps} line {}", i + 1));
        }
    }
}

#[test]
fn grandchildren_and_setsid_escapees_are_gone_afterwards() {
    let app = App::with_procfile(
        "bg: sh -c 'sleep 1000 & echo $! > bg.pid; wait'\nescape: setsid sh -c 'trap \"\" TERM; echo $$ > esc.pid; sleep 1000' & wait\ntrigger: while [ ! -s bg.pid ] || [ ! -s esc.pid ]; do sleep 0.02; done; exit 0\n",
    );
    let run = app.run(&["start", "-t", "1"]);
    run.assert_code(0);
    let pids: Vec<i32> = ["bg.pid", "esc.pid"]
        .iter()
        .map(|f| app.read(f).trim().parse().expect("pid file"))
        .collect();
    wait_all_dead(&pids, Duration::from_secs(5));
}

#[test]
fn closing_stdout_stops_the_app_without_a_panic() {
    let app = App::with_procfile(
        "spam: trap 'echo $$ > spam.pid; exit 0' TERM; echo $$ > spam.pid; while true; do echo spam; done\n",
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.current_dir(app.path())
        .args([
            "-c",
            &format!(
                "'{}' start | head -n 3; echo \"status=${{PIPESTATUS:-}}\"",
                ganger_bin().display()
            ),
        ])
        .env_remove("GANGER_TIMEOUT");
    let run = run_with_deadline(cmd, LIMIT);
    assert_eq!(run.stdout.lines().count(), 4, "{}", run.stdout);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let pid: i32 = app.read("spam.pid").trim().parse().expect("pid");
    wait_all_dead(&[pid], Duration::from_secs(5));
}

#[test]
fn seven_hundred_instances_run() {
    let app = App::with_procfile(
        "w: echo up; sleep 60\nend: while [ $(ls marks | wc -l) -lt 700 ]; do sleep 0.1; done\n",
    );
    std::fs::create_dir(app.path().join("marks")).expect("mkdir");
    app.write("Procfile", "w: touch marks/$PS; echo up; sleep 60\nend: while [ $(ls marks | wc -l) -lt 700 ]; do sleep 0.1; done\n");
    let run = app.run(&["start", "-m", "w=700,end=1", "--no-timestamp"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.lines().filter(|l| l.ends_with("| up")).count(),
        700,
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("cannot start"), "{}", run.stdout);
}

#[test]
fn an_idle_ganger_does_not_wake_up() {
    let app = App::with_procfile("a: echo ready; sleep 60\n");
    let mut ganger = app.spawn(&["start"]);
    ganger.wait_for("started with pid", LIMIT);
    ganger.wait_line("a.1", "ready", LIMIT);
    let switches = |pid: i32| -> u64 {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("tasks")
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter(|l| l.starts_with("voluntary_ctxt_switches"))
                    .map(|l| {
                        l.split_whitespace()
                            .last()
                            .unwrap_or("0")
                            .parse::<u64>()
                            .unwrap_or(0)
                    })
                    .collect::<Vec<_>>()
            })
            .sum()
    };
    // Let the relay of the last line settle, then watch for a second.
    std::thread::sleep(Duration::from_millis(200));
    let before = switches(ganger.pid());
    std::thread::sleep(Duration::from_secs(1));
    let after = switches(ganger.pid());
    assert_eq!(
        after,
        before,
        "ganger woke up {} times while idle",
        after - before
    );
    ganger.signal("TERM");
    ganger.finish(LIMIT);
}

#[test]
fn ctrl_c_in_a_terminal_gives_each_child_exactly_one_stop_signal() {
    let app = App::with_procfile(&format!(
        "a: trap 'echo TERM >> sig.$PS; exit 0' TERM; trap 'echo INT >> sig.$PS; exit 0' INT; {MARK}; while true; do sleep 0.05; done\n"
    ));
    let mut pty = app.spawn_in_pty(&["start", "-m", "a=3"]);
    app.wait_for_file(
        "marks",
        |_| {
            app.path()
                .join("marks")
                .read_dir()
                .map(|d| d.count())
                .unwrap_or(0)
                == 3
        },
        LIMIT,
    );
    pty.send(b"\x03");
    let (status, shown) = pty.finish(LIMIT);
    assert_eq!(status.code(), Some(130), "{shown}");
    for n in 1..=3 {
        assert_eq!(
            app.read(&format!("sig.a.{n}")),
            "TERM\n",
            "a.{n} signals; output:\n{shown}"
        );
    }
    assert!(
        shown.contains("\x1b[36m"),
        "a terminal gets color by default:\n{shown}"
    );
}

#[test]
fn a_stdout_nobody_reads_does_not_keep_ganger_from_exiting() {
    let app = App::with_procfile("spam: yes spam\n");
    let mut cmd = app.ganger();
    // stdout is a pipe this test never reads: it fills, and stays full.
    cmd.args(["start", "-t", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    // Wait until the spammer runs (it fills the pipe at once).
    let deadline = std::time::Instant::now() + LIMIT;
    while std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "spam never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = sent + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ganger hung on a stdout nobody reads");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(143));
}
