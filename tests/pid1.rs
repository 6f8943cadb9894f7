//! ganger as a container entrypoint: PID 1 of a new PID namespace (`unshare`),
//! a child subreaper outside one, and nothing left behind.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// `unshare` needs root; under CI=true a missing tool or privilege fails.
pub(crate) fn can_unshare() -> bool {
    if !require_tool("unshare") {
        return false;
    }
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || std::env::var("CI").as_deref() != Ok("true"),
        "unshare --pid needs root under CI=true"
    );
    ok
}

/// `ganger ARGS` as PID 1 of a new PID namespace, in `app`'s directory.
pub(crate) fn in_namespace(app: &App, args: &[&str]) -> Command {
    let cmd = app.ganger();
    let program = cmd.get_program().to_owned();
    let mut wrapped = Command::new("unshare");
    wrapped
        .current_dir(app.path())
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(program)
        .args(args);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    wrapped.stdin(std::process::Stdio::null());
    wrapped
}

/// The host pid of the first child of `pid` (ganger, under unshare).
pub(crate) fn first_child(pid: i32) -> i32 {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(child) = children.split_whitespace().next() {
            return child.parse().expect("pid");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "unshare started no child"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn as_pid_1_it_reaps_a_hundred_orphans() {
    if !can_unshare() {
        return;
    }
    let app = App::with_procfile(
        "orphans: cp \"$(command -v sleep)\" ./orphan; [ $$ -ne 1 ]; for i in $(seq 100); do sh -c './orphan 0.1 &'; done; while pgrep -x orphan >/dev/null; do sleep 0.05; done; echo zombies=$(ps -eo stat= | grep -c '^Z')\n",
    );
    let run = run_with_deadline(in_namespace(&app, &["start", "--no-timestamp"]), LIMIT);
    run.assert_code(0);
    assert_eq!(run.lines_of("orphans.1"), ["zombies=0"], "{}", run.stdout);
}

#[test]
fn as_pid_1_sigterm_from_outside_stops_gracefully_with_143() {
    if !can_unshare() {
        return;
    }
    let app = App::with_procfile(
        "web: trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.05; done\n",
    );
    let mut unshare = Running::spawn(in_namespace(&app, &["start", "--no-timestamp"]));
    unshare.wait_line("web.1", "ready", LIMIT);
    let ganger = first_child(unshare.pid());
    let status = Command::new("kill")
        .args(["-TERM", &ganger.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (status, lines, stderr) = unshare.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{}\n{stderr}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l == "web.1  | got TERM"),
        "{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "system | web.1 exited with code 0"),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn as_pid_1_exit_codes_pass_through() {
    if !can_unshare() {
        return;
    }
    for code in [0, 1, 2, 32, 64, 127, 254, 255] {
        let app = App::with_procfile(&format!("a: exit {code}\nb: sleep 30\n"));
        run_with_deadline(in_namespace(&app, &["start"]), LIMIT).assert_code(code);
    }
}

#[test]
fn as_pid_1_death_by_signal_gives_128_plus_n() {
    if !can_unshare() {
        return;
    }
    for (sig, n) in [("TERM", 15), ("HUP", 1), ("QUIT", 3), ("KILL", 9)] {
        let app = App::with_procfile(&format!("a: kill -{sig} $$\nb: sleep 30\n"));
        let run = run_with_deadline(in_namespace(&app, &["start"]), LIMIT);
        run.assert_code(128 + n);
        run.assert_stdout_has(&format!("a.1 was killed by SIG{sig}"));
    }
}

#[test]
fn as_pid_1_sigusr1_reaches_every_instance() {
    if !can_unshare() {
        return;
    }
    let app = App::with_procfile(
        "a: trap 'echo got USR1' USR1; echo ready; while true; do sleep 0.05; done\n",
    );
    let mut unshare = Running::spawn(in_namespace(&app, &["start", "-m", "a=3"]));
    for n in 1..=3 {
        unshare.wait_line(&format!("a.{n}"), "ready", LIMIT);
    }
    let ganger = first_child(unshare.pid());
    assert!(
        Command::new("kill")
            .args(["-USR1", &ganger.to_string()])
            .status()
            .expect("kill")
            .success()
    );
    for n in 1..=3 {
        unshare.wait_line(&format!("a.{n}"), "got USR1", LIMIT);
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &ganger.to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let (status, _, _) = unshare.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn orphans_reparented_to_ganger_are_reaped() {
    let app = App::with_procfile(
        "a: cp \"$(command -v sleep)\" ./orphan; for i in $(seq 20); do sh -c './orphan 0.1 &'; done; while pgrep -x orphan >/dev/null; do sleep 0.05; done; echo reaped; sleep 30\n",
    );
    let mut ganger = app.spawn(&["start"]);
    // pgrep sees zombies too: the loop ends only once every orphan was reaped.
    ganger.wait_line("a.1", "reaped", LIMIT);
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn sigkill_of_ganger_leaves_no_instance_running() {
    // b.1's program records its own pid: with `sh -c` in between, the pid in
    // "started with pid" would be the shell's.
    let app = App::with_procfile(
        "a: sleep 1000\nb: python3 -c 'import os, time; open(\"b.pid\", \"w\").write(str(os.getpid())); time.sleep(1000)'\nc: sh -c 'echo $$ > c.pid; exec sleep 1000' | cat\n",
    );
    let mut ganger = app.spawn(&["start", "-m", "a=2,b=1"]);
    let mut pids = Vec::new();
    for ps in ["a.1", "a.2", "b.1", "c.1"] {
        let line = ganger.wait_for(&format!("{ps} started with pid "), LIMIT);
        pids.push(
            line.rsplit(' ')
                .next()
                .expect("pid")
                .parse::<i32>()
                .expect("pid"),
        );
    }
    let program: i32 = app
        .wait_for_file("b.pid", |t| !t.is_empty(), LIMIT)
        .trim()
        .parse()
        .expect("pid");
    pids.push(program);
    // A member of a compound command's group, which the parent death signal misses.
    let member: i32 = app
        .wait_for_file("c.pid", |t| !t.is_empty(), LIMIT)
        .trim()
        .parse()
        .expect("pid");
    pids.push(member);
    ganger.signal("KILL");
    ganger.finish(LIMIT);
    wait_all_dead(&pids, Duration::from_secs(10));
}

/// SigBlk and SigIgn of a child, as hex masks.
fn child_signal_masks(app: &App, wrapper: Option<&str>) -> (String, String) {
    let mut cmd = match wrapper {
        Some(code) => {
            let mut c = Command::new("python3");
            c.current_dir(app.path()).args([
                "-c",
                code,
                &ganger_bin().display().to_string(),
                "start",
                "--no-timestamp",
            ]);
            c
        }
        None => {
            let mut c = app.ganger();
            c.args(["start", "--no-timestamp"]);
            c
        }
    };
    cmd.env_remove("GANGER_TIMEOUT");
    let run = run_with_deadline(cmd, LIMIT);
    run.assert_code(0);
    let lines = run.lines_of("a.1");
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {}", run.stdout))
    };
    (field("SigBlk:"), field("SigIgn:"))
}

#[test]
fn children_get_the_signal_state_ganger_was_started_with() {
    let app = App::with_procfile("a: grep -E '^Sig(Blk|Ign)' /proc/self/status\n");
    // What this test process passes on to ganger: its own ignored signals, less
    // SIGPIPE, which the Rust runtime ignores and resets for its children, and
    // less HUP, INT, QUIT and TERM, which the harness resets (`nohup cargo test`).
    let own = std::fs::read_to_string("/proc/self/status").expect("status");
    let own_ignored = own
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn")
        .trim();
    let reset = (1 << 12) | (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14);
    let own_ignored = u64::from_str_radix(own_ignored, 16).expect("hex") & !reset;
    let (blocked, ignored) = child_signal_masks(&app, None);
    assert_eq!(blocked, "0000000000000000", "ganger added blocked signals");
    assert_eq!(
        ignored,
        format!("{own_ignored:016x}"),
        "ganger added ignored signals"
    );

    // Started with USR1 blocked and HUP ignored (as under nohup): children too.
    let wrapper = "import os, signal, sys\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)\nos.execv(sys.argv[1], sys.argv[1:])";
    // (`sh` clears its signal mask itself, so only ignored signals survive it.)
    let (_, ignored) = child_signal_masks(&app, Some(wrapper));
    assert_eq!(
        ignored,
        format!("{:016x}", own_ignored | (1 << 0)),
        "HUP stays ignored"
    );
}

#[test]
fn run_passes_on_the_signal_mask_it_was_started_with() {
    let app = App::new();
    let wrapper = "import os, signal, sys\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\nos.execv(sys.argv[1], sys.argv[1:])";
    let mut cmd = Command::new("python3");
    cmd.current_dir(app.path()).args([
        "-c",
        wrapper,
        &ganger_bin().display().to_string(),
        "run",
        "grep",
        "SigBlk",
        "/proc/self/status",
    ]);
    let run = run_with_deadline(cmd, LIMIT);
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim(),
        format!("SigBlk:\t{:016x}", 1u64 << 9),
        "USR1 stays blocked, nothing else added"
    );
}

#[test]
fn run_as_pid_1_reaps_orphans_and_passes_the_status_through() {
    if !can_unshare() {
        return;
    }
    let app = App::new();
    let script = "cp \"$(command -v sleep)\" ./orphan; for i in $(seq 20); do sh -c './orphan 0.1 &'; done; \
                  while pgrep -x orphan >/dev/null; do sleep 0.05; done; echo zombies=$(ps -eo stat= | grep -c '^Z'); exit 3";
    let run = run_with_deadline(in_namespace(&app, &["run", "sh", "-c", script]), LIMIT);
    run.assert_code(3);
    assert_eq!(run.stdout.trim(), "zombies=0");
}
