//! ganger signals only what it owns: never a process that merely got the pid
//! of one of its exited instances, and always every group it started, even when
//! it is killed in the middle of starting them.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// Pids of the processes whose working directory is `dir` (the app's).
fn processes_in(dir: &std::path::Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
                && alive(*pid)
        })
        .collect()
}

/// Waits until no process runs in `dir`; fails naming the ones left.
#[track_caller]
fn wait_none_in(dir: &std::path::Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_in(dir);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} processes left running: {left:?}",
            left.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The PID-reuse attack: once.1 exits, an unrelated `setsid sleep` is given
/// its pid (through ns_last_pid, in a PID namespace of its own), then ganger is
/// stopped with `sig`. The unrelated process must survive.
fn reused_pid_survives(sig: &str) {
    if !require_tool("unshare") {
        return;
    }
    let app = App::with_procfile("once: true\nweb: sleep 300\n");
    let script = format!(
        r#"
        cd '{dir}'
        '{bin}' start --can-die once --no-timestamp > out.txt 2>&1 &
        g=$!
        i=0
        until grep -q 'once.1 exited' out.txt; do
            i=$((i+1)); [ $i -gt 600 ] && {{ echo 'once.1 never exited'; exit 2; }}
            sleep 0.05
        done
        p=$(sed -n 's/.*once.1 started with pid \([0-9]*\).*/\1/p' out.txt)
        echo $((p-1)) > /proc/sys/kernel/ns_last_pid
        setsid sleep 1000 &
        s=$!
        [ "$s" = "$p" ] || {{ echo "pid not reused: $s, wanted $p"; exit 3; }}
        kill -{sig} $g
        wait $g
        # The keeper (a process named ganger) acts once ganger is gone.
        i=0
        while grep -qs ganger /proc/[0-9]*/comm; do
            i=$((i+1)); [ $i -gt 200 ] && break
            sleep 0.05
        done
        if kill -0 $s 2>/dev/null; then echo SURVIVED; else echo KILLED; fi
        kill -9 $s 2>/dev/null
        "#,
        dir = app.path().display(),
        bin = ganger_bin().display(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script]);
    let run = run_with_deadline(cmd, LIMIT);
    if run.stdout.contains("pid not reused") && std::env::var("CI").as_deref() != Ok("true") {
        eprintln!("skipping: ns_last_pid is not writable here");
        return;
    }
    assert!(
        run.stdout.contains("SURVIVED"),
        "stdout: {}\nstderr: {}\nganger: {}",
        run.stdout,
        run.stderr,
        app.read("out.txt")
    );
}

#[test]
fn a_reused_pid_survives_a_sigterm_of_ganger() {
    reused_pid_survives("TERM");
}

#[test]
fn a_reused_pid_survives_a_sigkill_of_ganger() {
    reused_pid_survives("KILL");
}

#[test]
fn sigkill_during_start_up_leaves_nothing_running() {
    let app = App::with_procfile("web: sleep 300 & exec sleep 301\n");
    let mut ganger = app.spawn(&["start", "-m", "web=600", "--no-timestamp"]);
    ganger.wait_for("web.150 started", LIMIT);
    ganger.signal("KILL");
    let _ = ganger.finish(LIMIT);
    wait_none_in(app.path(), LIMIT);
}

#[test]
fn sigterm_during_start_up_stops_at_once_with_its_status() {
    let app = App::with_procfile("web: sleep 300\n");
    let mut ganger = app.spawn(&["start", "-m", "web=1500", "--no-timestamp"]);
    ganger.wait_for("web.20 started", LIMIT);
    ganger.signal("TERM");
    // Acted on while instances are still being started, and a second signal
    // then kills without changing the status.
    ganger.wait_for("SIGTERM received, stopping", LIMIT);
    ganger.signal("INT");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{}", lines.join("\n"));
    let started = lines
        .iter()
        .filter(|l| l.contains(" started with pid "))
        .count();
    assert!(started < 1500, "every instance was started before the stop");
    wait_none_in(app.path(), LIMIT);
}

#[test]
fn leftovers_of_an_exited_instance_are_stopped_while_the_app_runs() {
    let app = App::with_procfile("once: sleep 1000 & echo bg=$!\nweb: sleep 300\n");
    let mut ganger = app.spawn(&["start", "--can-die", "once", "--no-timestamp"]);
    let line = ganger.wait_for("bg=", LIMIT);
    let bg: i32 = line
        .rsplit_once("bg=")
        .and_then(|(_, p)| p.trim().parse().ok())
        .expect("pid");
    ganger.wait_for("once.1 exited with code 0", LIMIT);
    wait_all_dead(&[bg], LIMIT);
    // The app itself goes on.
    app.run(&["ps"]).assert_code(0).assert_stdout_has("running");
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}

#[test]
fn a_stopped_instance_is_continued_so_that_it_stops_gracefully() {
    let app = App::with_procfile("web: sleep 300\n");
    let mut ganger = app.spawn(&["start", "-t", "20", "--no-timestamp"]);
    let line = ganger.wait_for("web.1 started with pid", LIMIT);
    let pid = line.rsplit(' ').next().expect("pid").to_string();
    let status = Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + LIMIT;
    loop {
        let ps = app.run(&["ps"]);
        if ps.stdout.contains("stopped by signal") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ps never showed it: {}",
            ps.stdout
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ganger.signal("TERM");
    // Well within the 20 s timeout: SIGCONT let SIGTERM act.
    let (status, lines, _) = ganger.finish(Duration::from_secs(15));
    assert_eq!(status.code(), Some(143));
    let text = lines.join("\n");
    assert!(text.contains("web.1 was killed by SIGTERM"), "{text}");
    assert!(!text.contains("SIGKILL"), "{text}");
}

#[test]
fn the_kill_line_names_processes_that_left_their_group() {
    let app = App::with_procfile(
        "web: setsid sh -c 'trap \"\" TERM; echo stray=$$; exec sleep 1000' & exec sleep 300\n",
    );
    let mut ganger = app.spawn(&["start", "-t", "0.5", "--no-timestamp"]);
    let line = ganger.wait_for("stray=", LIMIT);
    let stray: i32 = line
        .rsplit_once("stray=")
        .and_then(|(_, p)| p.trim().parse().ok())
        .expect("pid");
    ganger.signal("TERM");
    let (status, lines, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
    let text = lines.join("\n");
    assert!(
        text.contains(&format!(
            "sending SIGKILL to processes left behind: {stray} (sleep)"
        )),
        "{text}"
    );
    assert!(!alive(stray));
}
