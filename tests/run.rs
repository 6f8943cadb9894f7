//! `ganger run`: the environment a one-off command gets, where it runs, the
//! status ganger exits with, signals, and a real terminal.

use std::time::Duration;

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A shell function that waits in short sleeps, so traps run promptly, and
/// gives up after about 30 s so a failed test leaves nothing behind for long.
const IDLE: &str = "idle() { i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; }; ";

/// Asserts a failed run: this status, no panic, and every needle on stderr.
#[track_caller]
fn assert_fails_with(run: &Run, code: i32, needles: &[&str]) {
    run.assert_code(code);
    for needle in needles {
        run.assert_stderr_has(needle);
    }
}

/// Polls until the file holds `lines` lines, then returns them.
#[track_caller]
fn wait_for_lines(app: &App, name: &str, lines: usize) -> Vec<String> {
    let text = app.wait_for_file(name, |t| t.lines().count() >= lines, LIMIT);
    text.lines().map(str::to_string).collect()
}

// --- environment ----------------------------------------------------------

#[test]
fn dotenv_values_arrive() {
    let app = App::new();
    app.write(".env", "# app settings\nGREETING=\"hello world\"\nexport EXPORTED=yes\nSUB=${GREETING}!\nSINGLE='$NOT_EXPANDED'\n");
    let run = app.run(&["run", "env"]);
    run.assert_code(0);
    let env = env_map(&run.stdout);
    assert_eq!(env["GREETING"], "hello world");
    assert_eq!(env["EXPORTED"], "yes");
    assert_eq!(env["SUB"], "hello world!");
    assert_eq!(env["SINGLE"], "$NOT_EXPANDED");
    assert!(!env.contains_key("PS"), "{}", run.stdout);
}

#[test]
fn dotenv_with_a_byte_order_mark_works() {
    let app = App::new();
    app.write(".env", "\u{feff}FIRST=1\nSECOND=2\n");
    let env = env_map(&app.run(&["run", "env"]).assert_code(0).stdout);
    assert_eq!((env["FIRST"].as_str(), env["SECOND"].as_str()), ("1", "2"));
}

#[test]
fn several_env_files_later_wins() {
    let app = App::new();
    app.write("a.env", "ONLY_A=a\nBOTH=a\n");
    app.write("b.env", "ONLY_B=b\nBOTH=b\n");
    app.write(".env", "DEFAULT_FILE=read\n");

    let env = env_map(
        &app.run(&["run", "-e", "a.env,b.env", "env"])
            .assert_code(0)
            .stdout,
    );
    assert_eq!(
        (
            env["ONLY_A"].as_str(),
            env["ONLY_B"].as_str(),
            env["BOTH"].as_str()
        ),
        ("a", "b", "b")
    );
    assert!(
        !env.contains_key("DEFAULT_FILE"),
        "-e replaces the default .env"
    );

    let env = env_map(
        &app.run(&["run", "-e", "b.env,a.env", "env"])
            .assert_code(0)
            .stdout,
    );
    assert_eq!(env["BOTH"], "a");

    let run = app.run(&["run", "-e", "a.env", "-e", "b.env", "env"]);
    assert_eq!(env_map(&run.assert_code(0).stdout)["BOTH"], "b");

    let run = app.run_with_env(&["run", "env"], &[("GANGER_ENV", "b.env,a.env")]);
    assert_eq!(env_map(&run.assert_code(0).stdout)["BOTH"], "a");
}

#[test]
fn inherited_environment_wins_over_dotenv() {
    let app = App::new();
    app.write(".env", "APP_MODE=from-file\nAPP_OTHER=from-file\n");
    let run = app.run_with_env(&["run", "env"], &[("APP_MODE", "from-shell")]);
    let env = env_map(&run.assert_code(0).stdout);
    assert_eq!(env["APP_MODE"], "from-shell");
    assert_eq!(env["APP_OTHER"], "from-file");
}

#[test]
fn procfile_entry_gets_its_port_and_ps() {
    let app = App::with_procfile("web: env\nworker: env\nclock: env\n");
    app.write(".env", "PS=nope\n");

    let env = env_map(&app.run(&["run", "clock"]).assert_code(0).stdout);
    assert_eq!(
        (env["PORT"].as_str(), env["PS"].as_str()),
        ("5200", "clock.1")
    );

    let env = env_map(
        &app.run(&["run", "-p", "3000", "worker"])
            .assert_code(0)
            .stdout,
    );
    assert_eq!(
        (env["PORT"].as_str(), env["PS"].as_str()),
        ("3100", "worker.1")
    );

    // $PORT is the base, and ganger's PORT wins over the inherited one.
    let env = env_map(
        &app.run_with_env(&["run", "clock"], &[("PORT", "4000")])
            .assert_code(0)
            .stdout,
    );
    assert_eq!(
        (env["PORT"].as_str(), env["PS"].as_str()),
        ("4200", "clock.1")
    );

    let env = env_map(
        &app.run_with_env(&["run", "web"], &[("GANGER_PORT", "6000")])
            .assert_code(0)
            .stdout,
    );
    assert_eq!(env["PORT"], "6000");
}

/// foreman's and honcho's rule: a `PORT` in `.env` is the base port when
/// neither `-p`/`GANGER_PORT` nor the inherited environment gives one; each
/// instance's own PORT is still computed from it.
#[test]
fn dotenv_port_is_the_base_when_nothing_else_gives_one() {
    let app = App::with_procfile("web: env\nworker: env\n");
    app.write(".env", "PORT=3000\n");
    let port = |run: Run| env_map(&run.assert_code(0).stdout)["PORT"].clone();
    assert_eq!(port(app.run(&["run", "web"])), "3000");
    assert_eq!(port(app.run(&["run", "worker"])), "3100");
    assert_eq!(port(app.run(&["run", "-p", "7000", "web"])), "7000");
    assert_eq!(
        port(app.run_with_env(&["run", "web"], &[("GANGER_PORT", "7100")])),
        "7100"
    );
    assert_eq!(
        port(app.run_with_env(&["run", "web"], &[("PORT", "4000")])),
        "4000"
    );

    let run = app.run(&["check", "-m", "web=2,worker=1"]);
    run.assert_code(0);
    for (ps, port) in [("web.1", 3000), ("web.2", 3001), ("worker.1", 3100)] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains(ps) && l.contains(&format!("PORT={port}"))),
            "{}",
            run.stdout
        );
    }

    app.write(".env", "A=1\nPORT=web\n");
    let run = app.run(&["run", "web"]);
    assert_fails_with(&run, 1, &["invalid base port `web` from PORT in", ".env:2"]);
}

#[test]
fn plain_command_gets_port_only_from_the_flag() {
    let app = App::with_procfile("web: env\n");
    let env = env_map(&app.run(&["run", "-p", "6000", "env"]).assert_code(0).stdout);
    assert_eq!(env["PORT"], "6000");
    assert!(!env.contains_key("PS"));

    let env = env_map(&app.run(&["run", "env"]).assert_code(0).stdout);
    assert!(!env.contains_key("PORT"), "no -p, no $PORT: no PORT");
}

#[test]
fn runs_in_the_root_directory() {
    let app = App::new();
    app.write("srv/Procfile", "here: pwd\n");
    app.write("other/.keep", "");
    let srv = std::fs::canonicalize(app.path().join("srv")).expect("canonicalize");
    let other = std::fs::canonicalize(app.path().join("other")).expect("canonicalize");

    let run = app.run(&["run", "-f", "srv/Procfile", "pwd"]);
    assert_eq!(
        run.assert_code(0).stdout.trim_end(),
        srv.to_str().expect("utf8")
    );

    let run = app.run(&["run", "-d", "other", "-f", "srv/Procfile", "here"]);
    assert_eq!(
        run.assert_code(0).stdout.trim_end(),
        other.to_str().expect("utf8")
    );

    let run = app.run(&["run", "-d", "srv", "pwd"]);
    assert_eq!(
        run.assert_code(0).stdout.trim_end(),
        srv.to_str().expect("utf8")
    );
}

#[test]
fn missing_root_directory_is_named() {
    let app = App::new();
    let run = app.run(&["run", "-d", "nowhere", "true"]);
    assert_ne!(run.code(), 0);
    run.assert_stderr_has("nowhere");
    assert!(!run.stderr.contains("command not found"), "{}", run.stderr);
}

// --- what runs and how ------------------------------------------------------

#[test]
fn arguments_pass_verbatim_without_a_shell() {
    let app = App::new();
    let run = app.run(&[
        "run", "printf", "[%s]\\n", "$HOME", "a;b", "*", "", "it's", "--flag", "x > y", "`id`",
    ]);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "[$HOME]\n[a;b]\n[*]\n[]\n[it's]\n[--flag]\n[x > y]\n[`id`]\n"
    );
}

#[test]
fn procfile_entry_runs_through_sh() {
    let app = App::with_procfile("calc: echo $((6*7)) && echo \"$PS\" | tr a-z A-Z; exit 4\n");
    let run = app.run(&["run", "calc"]);
    run.assert_code(4);
    assert_eq!(run.stdout, "42\nCALC.1\n");
}

#[test]
fn a_name_with_arguments_is_a_command_not_an_entry() {
    let app = App::with_procfile("echo: echo from the procfile\n");
    let run = app.run(&["run", "echo", "from", "PATH"]);
    assert_eq!(run.assert_code(0).stdout, "from PATH\n");
}

#[test]
fn works_without_a_procfile() {
    let app = App::new();
    app.write(".env", "A=1\n");
    let run = app.run(&["run", "sh", "-c", "echo $A"]);
    assert_eq!(run.assert_code(0).stdout, "1\n");
}

// --- exit status ------------------------------------------------------------

#[test]
fn exit_codes_pass_through() {
    let app = App::new();
    app.run(&["run", "true"]).assert_code(0);
    app.run(&["run", "sh", "-c", "exit 7"]).assert_code(7);
    app.run(&["run", "sh", "-c", "exit 255"]).assert_code(255);
}

#[test]
fn missing_command_exits_127_with_a_clear_message() {
    let app = App::new();
    let run = app.run(&["run", "no-such-command-for-ganger", "arg"]);
    assert_fails_with(
        &run,
        127,
        &["no-such-command-for-ganger: command not found"],
    );

    let run = app.run(&["run", "./not-here"]);
    assert_fails_with(&run, 127, &["./not-here"]);
}

#[test]
fn missing_command_in_a_procfile_entry_exits_127() {
    let app = App::with_procfile("web: no-such-command-for-ganger\n");
    app.run(&["run", "web"]).assert_code(127);
}

#[test]
fn non_executable_file_exits_126() {
    let app = App::new();
    app.write("script.sh", "#!/bin/sh\necho hi\n");
    let run = app.run(&["run", "./script.sh"]);
    assert_fails_with(&run, 126, &["./script.sh", "not executable"]);
}

#[test]
fn script_with_a_missing_interpreter_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let app = App::new();
    app.write("script", "#!/no/such/interpreter\n");
    std::fs::set_permissions(
        app.path().join("script"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let run = app.run(&["run", "./script"]);
    assert_fails_with(&run, 127, &["./script", "interpreter"]);
}

#[test]
fn killed_by_a_signal_exits_128_plus_its_number() {
    let app = App::new();
    app.run(&["run", "sh", "-c", "kill -TERM $$"])
        .assert_code(143);
    app.run(&["run", "sh", "-c", "kill -KILL $$"])
        .assert_code(137);
    app.run(&["run", "sh", "-c", "kill -USR1 $$"])
        .assert_code(138);
}

#[test]
fn errors_in_the_app_stop_run_before_it_starts_anything() {
    let app = App::with_procfile("web: w\nbad line\n");
    let run = app.run(&["run", "sh", "-c", "echo started"]);
    assert_fails_with(&run, 1, &["Procfile:2:", "bad line"]);
    assert_eq!(run.stdout, "");

    let app = App::new();
    app.write(".env", "A=1\nB C\n");
    assert_fails_with(&app.run(&["run", "true"]), 1, &[".env:2:", "B C"]);
    assert_fails_with(
        &app.run(&["run", "-e", "missing.env", "true"]),
        1,
        &["missing.env"],
    );
    assert_fails_with(
        &app.run(&["run", "-f", "Procfile.nope", "true"]),
        1,
        &["Procfile.nope", "-f"],
    );
}

// --- signals ----------------------------------------------------------------

/// A `ganger run` of a shell that logs each trapped signal to `got` and exits
/// with 9 on SIGTERM; `ready` appears once the traps are set.
fn trapping_child(app: &App) -> Running {
    let script = format!(
        "{IDLE}for s in HUP INT QUIT USR1 USR2; do trap \"echo $s >> got\" $s; done; \
         trap 'echo TERM >> got; exit 9' TERM; echo $$ > ready; idle"
    );
    let mut cmd = app.ganger();
    cmd.args(["run", "sh", "-c", &script]);
    let running = Running::spawn(cmd);
    app.wait_for_file("ready", |t| t.ends_with('\n'), LIMIT);
    running
}

#[test]
fn signals_sent_to_ganger_reach_the_child() {
    let app = App::new();
    let running = trapping_child(&app);
    let mut expected = Vec::new();
    for sig in ["HUP", "USR1", "USR2", "QUIT", "INT"] {
        running.signal(sig);
        expected.push(sig.to_string());
        assert_eq!(wait_for_lines(&app, "got", expected.len()), expected);
    }
    running.signal("TERM");
    let (status, _, stderr) = running.finish(LIMIT);
    assert_eq!(status.code(), Some(9), "{stderr}");
    expected.push("TERM".into());
    assert_eq!(app.read("got").lines().collect::<Vec<_>>(), expected);
}

#[test]
fn sigterm_kills_a_child_without_a_trap_and_ganger_exits_143() {
    let app = App::new();
    let mut cmd = app.ganger();
    cmd.args(["run", "sh", "-c", "echo $$ > ready; exec sleep 30"]);
    let running = Running::spawn(cmd);
    let pid: i32 = app
        .wait_for_file("ready", |t| t.ends_with('\n'), LIMIT)
        .trim()
        .parse()
        .expect("pid");
    // `exec sleep` keeps the pid: wait until the shell has become sleep.
    let deadline = std::time::Instant::now() + LIMIT;
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        != "sleep"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never became sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    running.signal("TERM");
    let (status, _, _) = running.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
    wait_all_dead(&[pid], LIMIT);
}

#[test]
fn sighup_exits_with_the_childs_status() {
    let app = App::new();
    let mut cmd = app.ganger();
    let script = format!("{IDLE}trap 'exit 3' HUP; echo > ready; idle");
    cmd.args(["run", "sh", "-c", &script]);
    let running = Running::spawn(cmd);
    app.wait_for_file("ready", |t| t.ends_with('\n'), LIMIT);
    running.signal("HUP");
    let (status, _, _) = running.finish(LIMIT);
    assert_eq!(status.code(), Some(3));
}

// --- a real terminal --------------------------------------------------------

/// The child reads a line from the terminal, then waits for one more; Ctrl-C in
/// between must run its SIGINT trap once: the terminal signals the whole
/// foreground group, so ganger must not pass its own copy on.
#[test]
fn interactive_child_reads_the_terminal_and_gets_ctrl_c_once() {
    let app = App::new();
    let script = "trap 'echo INT >> ints' INT; \
                  echo > ready; \
                  read line; echo \"got:$line\"; \
                  n=0; until read line2 || [ $n -gt 100 ]; do n=$((n+1)); done; \
                  echo \"then:$line2\"; exit 3";
    let mut pty = app.spawn_in_pty(&["run", "sh", "-c", script]);
    app.wait_for_file("ready", |t| t.ends_with('\n'), LIMIT);
    pty.send(b"hello terminal\n");
    pty.wait_for("got:hello terminal", LIMIT);

    pty.send(b"\x03");
    wait_for_lines(&app, "ints", 1);
    pty.send(b"bye\n");
    pty.wait_for("then:bye", LIMIT);
    let (status, shown) = pty.finish(LIMIT);
    assert_eq!(status.code(), Some(3), "{shown}");
    assert_eq!(app.read("ints"), "INT\n");
}

/// Ctrl-C at the terminal goes to the foreground group, which ganger leads; a
/// child that left that group must not get it from ganger either. Deterministic,
/// unlike counting trap runs: a second SIGINT may merge with the first.
#[test]
fn ctrl_c_is_not_forwarded_to_a_child_outside_the_foreground_group() {
    if !require_tool("setsid") {
        return;
    }
    let app = App::new();
    // setsid execs in place (the shell is not a group leader), so the pid
    // ganger forwards to is the shell that traps. It logs INT and USR1; USR1,
    // sent by the test after Ctrl-C, shows everything ganger sent has arrived.
    let script = format!(
        "{IDLE}trap 'echo INT >> got' INT; trap 'echo USR1 >> got; exit 0' USR1; \
         echo > ready; idle"
    );
    let mut pty = app.spawn_in_pty(&["run", "setsid", "sh", "-c", &script]);
    app.wait_for_file("ready", |t| t.ends_with('\n'), LIMIT);
    let ganger = i32::try_from(pty.child.id()).expect("pid");

    pty.send(b"\x03");
    // The terminal handles input asynchronously; it echoes `^C` only after it
    // has signalled the foreground group. A USR1 sent after that reaches the
    // child behind any SIGINT ganger would pass on (lower signals go first).
    pty.wait_for("^C", LIMIT);
    let status = std::process::Command::new("kill")
        .args(["-USR1", &ganger.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (status, shown) = pty.finish(LIMIT);
    assert_eq!(status.code(), Some(0), "{shown}");
    assert_eq!(app.read("got"), "USR1\n");
}
