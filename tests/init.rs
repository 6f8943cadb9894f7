//! `ganger run` as a complete init (dumb-init and tini parity): every catchable
//! signal passed on, job control, and the child's process group signalled as a
//! whole when ganger is PID 1 or has no terminal.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::pid1::{can_unshare, first_child, in_namespace};
use crate::support::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A shell function that waits in short sleeps, so traps run promptly, and
/// gives up after about 30 s so a failed test leaves nothing behind for long.
const IDLE: &str = "idle() { i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; }; ";

/// The signals the trapping child logs (every catchable one `sh` can name).
const TRAPPED: &[&str] = &[
    "HUP", "INT", "QUIT", "USR1", "USR2", "ALRM", "VTALRM", "PROF", "XCPU", "XFSZ", "IO", "PWR",
    "WINCH", "URG", "PIPE", "TRAP", "ABRT", "BUS", "SYS", "TTIN", "TTOU", "TSTP", "CONT",
];

/// `ganger ARGS sh -c SCRIPT` in the background, once SCRIPT has written `ready`.
fn spawn_script(app: &App, script: &str) -> Running {
    let mut cmd = app.ganger();
    cmd.args(["run", "sh", "-c", script]);
    let running = Running::spawn(cmd);
    app.wait_for_file("ready", |t| t.ends_with('\n'), LIMIT);
    running
}

/// A `ganger run` of a shell that logs each of [`TRAPPED`] to `got`, one line
/// each, and exits with 9 on SIGTERM.
fn trapping_child(app: &App) -> Running {
    let traps: String = TRAPPED
        .iter()
        .map(|s| format!("trap 'echo {s} >> got' {s}; "))
        .collect();
    spawn_script(
        app,
        &format!("{IDLE}{traps}trap 'echo TERM >> got; exit 9' TERM; echo > ready; idle"),
    )
}

/// Waits until `got` holds a line `sig`.
#[track_caller]
fn wait_logged(app: &App, sig: &str) {
    app.wait_for_file("got", |t| t.lines().any(|l| l == sig), LIMIT);
}

/// The state letter of process `pid` (`S`, `T`, ...).
fn state(pid: i32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .unwrap_or('?')
}

#[track_caller]
fn wait_state(pid: i32, want: char) {
    let deadline = Instant::now() + LIMIT;
    while state(pid) != want {
        assert!(
            Instant::now() < deadline,
            "{pid} never reached state {want}: {}",
            state(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill(sig: &str, target: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} {target}");
}

#[test]
fn every_catchable_signal_reaches_the_child_and_ganger_survives_it() {
    let app = App::new();
    let running = trapping_child(&app);
    for sig in TRAPPED {
        if matches!(*sig, "TTIN" | "TTOU" | "TSTP" | "CONT") {
            continue;
        }
        running.signal(sig);
        wait_logged(&app, sig);
    }
    running.signal("TERM");
    let (status, _, stderr) = running.finish(LIMIT);
    assert_eq!(status.code(), Some(9), "{stderr}");
}

/// As dumb-init: a job-control signal is passed on, then ganger stops itself;
/// SIGCONT resumes it and is passed on too.
#[test]
fn job_control_signals_are_passed_on_and_stop_ganger() {
    let app = App::new();
    let running = trapping_child(&app);
    for sig in ["TSTP", "TTIN", "TTOU"] {
        running.signal(sig);
        wait_state(running.pid(), 'T');
        running.signal("CONT");
        wait_logged(&app, sig);
        wait_state(running.pid(), 'S');
    }
    wait_logged(&app, "CONT");
    running.signal("TERM");
    let (status, _, stderr) = running.finish(LIMIT);
    assert_eq!(status.code(), Some(9), "{stderr}");
}

/// Without a terminal the child leads its own process group and SIGTERM goes
/// to all of it: background jobs of a shell stop with it instead of living on
/// as orphans.
#[test]
fn without_a_terminal_sigterm_reaches_the_whole_process_group() {
    let app = App::new();
    let running = spawn_script(
        &app,
        "sleep 30 & echo $! >> pids; sleep 30 & echo $! >> pids; echo > ready; wait",
    );
    let pids: Vec<i32> = app
        .wait_for_file("pids", |t| t.lines().count() == 2, LIMIT)
        .lines()
        .map(|p| p.parse().expect("pid"))
        .collect();
    running.signal("TERM");
    let (status, _, _) = running.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
    wait_all_dead(&pids, Duration::from_secs(5));
}

/// Without a terminal, what the command leaves in its group when it exits (a
/// background job) gets SIGTERM, as under dumb-init: nothing of it lives on.
#[test]
fn without_a_terminal_what_the_command_leaves_behind_is_stopped() {
    let app = App::new();
    let run = app.run(&["run", "sh", "-c", "sleep 300 & echo $! > bg; exit 3"]);
    run.assert_code(3);
    let bg: i32 = app.read("bg").trim().parse().expect("pid");
    wait_all_dead(&[bg], Duration::from_secs(10));
}

/// As PID 1 (`ENTRYPOINT ["ganger", "run", ...]`), SIGTERM stops a pipeline at
/// once: the shell's trap runs only when its pipeline ends, which it does only
/// because every member got the signal too.
#[test]
fn as_pid_1_sigterm_stops_a_pipeline_at_once() {
    if !can_unshare() {
        return;
    }
    let app = App::new();
    // `ready` is written from inside the pipeline, so both members exist (the
    // left one is forked first) when the signal is sent.
    let script = "trap 'exit 7' TERM; sleep 30 | (echo > ready; sleep 30)";
    let unshare = Running::spawn(in_namespace(&app, &["run", "sh", "-c", script]));
    app.wait_for_file("ready", |t| t.ends_with('\n'), LIMIT);
    let ganger = first_child(unshare.pid());
    let sent = Instant::now();
    kill("TERM", &ganger.to_string());
    let (status, _, stderr) = unshare.finish(LIMIT);
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(7), "{stderr}");
    // Generous: it takes milliseconds; without the group it took the full 30 s.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// With a terminal the child shares ganger's group: Ctrl-Z stops both as it
/// stops any job, and SIGCONT (what `fg` sends) resumes ganger.
#[test]
fn ctrl_z_at_a_terminal_stops_ganger_and_cont_resumes_it() {
    let app = App::new();
    let script = format!("{IDLE}trap 'echo TSTP >> got' TSTP; echo > ready; idle; exit 3");
    let mut pty = app.spawn_in_pty(&["run", "sh", "-c", &script]);
    app.wait_for_file("ready", |t| t.ends_with('\n'), LIMIT);
    let ganger = i32::try_from(pty.child.id()).expect("pid");
    pty.send(b"\x1a");
    wait_logged(&app, "TSTP");
    wait_state(ganger, 'T');
    // ganger leads the terminal's session: its group is the job.
    kill("CONT", &format!("-{ganger}"));
    wait_state(ganger, 'S');
    kill("TERM", &ganger.to_string());
    let (status, shown) = pty.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{shown}");
}
