//! ganger as the command of a real container: podman with runc, a rootfs holding only
//! busybox, ganger, the libraries ganger links and the app's Procfile in `/app`, as the
//! README's Dockerfile builds it. `pid1.rs` proves the same promises under
//! `unshare --pid`; these prove them under what users run: `podman stop`'s SIGTERM, grace
//! period and SIGKILL, `podman kill`, the exit status the runtime reports, all within the
//! resource limits the runtime sets.
//!
//! No image is pulled or stored: each container runs from its own directory
//! (`podman run --rootfs`), in podman's default storage, and is removed when its test
//! ends, however it ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// The entrypoint the README's Dockerfile gives: ganger's stop timeout (8 s) stays below
/// the runtime's grace period (10 s), so ganger, not the runtime, kills what lingers.
const ENTRYPOINT: [&str; 4] = ["ganger", "start", "-t", "8"];

/// A graceful stop takes a fraction of a second; well below this means ganger, not the
/// runtime's SIGKILL after 10 s, ended the container (generous for a busy 2-core machine).
const GRACEFUL: Duration = Duration::from_secs(8);

/// A `podman` command with this test binary's containers.conf.
fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", containers_conf())
        .stdin(Stdio::null());
    cmd
}

/// podman's defaults fail here: its default nofile limit (1048576) exceeds the hard limit
/// a runtime may grant, and crun refuses a hybrid cgroup layout. The nofile limit is the one
/// this process has, read now, since it differs from machine to machine; nproc must also
/// stay within the limit podman lowers its own to (32768 here), and a container's root is
/// exempt from it anyway.
fn containers_conf() -> &'static Path {
    static CONF: OnceLock<PathBuf> = OnceLock::new();
    CONF.get_or_init(|| {
        use nix::sys::resource::{Resource, getrlimit};
        let hard = |resource| getrlimit(resource).expect("getrlimit").1;
        let text = format!(
            "[containers]\ndefault_ulimits = [\"nofile={n}:{n}\", \"nproc={p}:{p}\"]\n\n[engine]\nruntime = \"runc\"\n",
            n = hard(Resource::RLIMIT_NOFILE).min(1 << 20),
            p = hard(Resource::RLIMIT_NPROC).min(4096),
        );
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join("containers.conf");
        // Written aside and renamed, so that a concurrent run never reads half a file.
        let fresh = dir.join(format!("containers.conf.{}", std::process::id()));
        std::fs::write(&fresh, text).expect("write containers.conf");
        std::fs::rename(&fresh, &path).expect("rename containers.conf");
        path
    })
}

/// Can podman run a container here? Under CI=true it must, or every test fails.
fn podman_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        if !["podman", "runc", "busybox", "ldd"]
            .into_iter()
            .all(require_tool)
        {
            return false;
        }
        // A first container also sets up podman's storage on a fresh machine, once,
        // before the tests start theirs in parallel.
        let probe = Container::new("probe", "");
        let run = run_with_deadline(probe.run_command(&["ganger"], &["--version"]), LIMIT);
        let works = run.status.success() && run.stdout.starts_with("ganger ");
        assert!(
            works || std::env::var("CI").as_deref() != Ok("true"),
            "podman cannot run a container under CI=true (it needs root):\n{}{}",
            run.stdout,
            run.stderr
        );
        if !works {
            eprintln!(
                "skipping: podman cannot run a container here:\n{}",
                run.stderr
            );
        }
        works
    })
}

/// One container's directory (its rootfs and the `/out` it records into) and its name;
/// dropping it removes the container, running or not.
struct Container {
    name: String,
    dir: tempfile::TempDir,
}

impl Container {
    /// A container whose `/app` holds `procfile` (none if empty), or None where podman
    /// cannot run one.
    fn with_procfile(tag: &str, procfile: &str) -> Option<Self> {
        podman_works().then(|| Container::new(tag, procfile))
    }

    fn new(tag: &str, procfile: &str) -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ganger-test-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        // In the target dir, so that ganger's binary can be hard-linked, not copied.
        let dir = tempfile::Builder::new()
            .prefix("container-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        install(&PathBuf::from("/bin/busybox"), &rootfs.join("bin/busybox"));
        let applets = Command::new("busybox")
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&applets.stdout).split_whitespace() {
            let link = rootfs.join("bin").join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link).expect("symlink an applet");
            }
        }
        install(&ganger_bin(), &rootfs.join("usr/local/bin/ganger"));
        for dir in ["app", "tmp"] {
            std::fs::create_dir_all(rootfs.join(dir)).expect("mkdir");
        }
        // No Procfile for `ganger run` of a program: an empty one is an error.
        if !procfile.is_empty() {
            std::fs::write(rootfs.join("app/Procfile"), procfile).expect("write Procfile");
        }
        std::fs::create_dir(dir.path().join("out")).expect("mkdir out");
        Container { name, dir }
    }

    /// `podman run` of this container in the foreground: `entrypoint` then `args`, as an
    /// image's ENTRYPOINT and CMD, in `/app`.
    fn run_command(&self, entrypoint: &[&str], args: &[&str]) -> Command {
        self.run_command_with(&[], entrypoint, args)
    }

    /// As [`Container::run_command`], with more `podman run` flags.
    fn run_command_with(&self, flags: &[&str], entrypoint: &[&str], args: &[&str]) -> Command {
        let mut cmd = podman();
        cmd.args(["run", "--rm", "--name", &self.name, "--network", "none"])
            .args(flags)
            .arg("--volume")
            .arg(format!("{}:/out", self.dir.path().join("out").display()))
            .args(["--workdir", "/app", "--entrypoint"])
            .arg(serde_json::to_string(entrypoint).expect("json"))
            .arg("--rootfs")
            .arg(self.dir.path().join("rootfs"))
            .args(args);
        cmd
    }

    /// Starts the container; its stdout (ganger's) is read line by line.
    fn start(&self, entrypoint: &[&str], args: &[&str]) -> Running {
        Running::spawn(self.run_command(entrypoint, args))
    }

    /// Runs `podman SUBCOMMAND [ARGS] NAME [TAIL]` to completion.
    fn podman(&self, subcommand: &[&str], tail: &[&str]) -> Run {
        let mut cmd = podman();
        cmd.args(subcommand).arg(&self.name).args(tail);
        run_with_deadline(cmd, LIMIT)
    }

    /// `podman stop -t SECS`, which must succeed; returns how long it took.
    fn stop(&self, grace: u32) -> Duration {
        let run = self.podman(&["stop", "-t", &grace.to_string()], &[]);
        assert!(run.status.success(), "podman stop failed:\n{}", run.stderr);
        eprintln!(
            "{}: podman stop -t {grace} took {:?}",
            self.name, run.elapsed
        );
        run.elapsed
    }

    /// Waits until `/out/NAME` holds `text` (as a line) and returns what it holds.
    #[track_caller]
    fn wait_recorded(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join("out").join(name);
        wait_until(&format!("/out/{name} to hold {text:?}"), || {
            let held = std::fs::read_to_string(&path).unwrap_or_default();
            held.lines().any(|l| l == text).then_some(held)
        })
    }
}

impl Drop for Container {
    /// A failed test must not leave its container running.
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "--force", "--time", "0", "--ignore", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Puts `from` at `to` in a rootfs with the shared libraries it needs (as `ldd` lists them)
/// at the same paths; a hard link where possible.
fn install(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).expect("copy into the rootfs");
    }
    let rootfs = to
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "rootfs"))
        .expect("inside a rootfs");
    // A static binary makes ldd fail with "not a dynamic executable": nothing to copy.
    let ldd = Command::new("ldd").arg(from).output().expect("ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let lib = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(lib) = lib.filter(|l| l.starts_with('/')) else {
            continue;
        };
        let dest = rootfs.join(lib.trim_start_matches('/'));
        if !dest.exists() {
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::copy(lib, &dest).expect("copy a library");
        }
    }
}

/// Polls `found` until it gives a value; fails naming `what` past LIMIT.
#[track_caller]
fn wait_until<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An instance that records a SIGTERM in `/out/$PS`, then exits 0.
const GRACEFUL_ON_TERM: &str =
    "trap 'echo TERM > /out/$PS; exit 0' TERM; echo ready; sleep 1000 & wait";

#[test]
fn podman_stop_stops_every_instance_gracefully_and_the_container_exits_143() {
    let Some(container) = Container::with_procfile(
        "stop",
        &format!("web: {GRACEFUL_ON_TERM}\nworker: {GRACEFUL_ON_TERM}\n"),
    ) else {
        return;
    };
    let instances = ["web.1", "web.2", "worker.1", "worker.2"];
    let mut ganger = container.start(&ENTRYPOINT, &["-m", "web=2,worker=2"]);
    for ps in instances {
        ganger.wait_line(ps, "ready", LIMIT);
    }
    let took = container.stop(10);
    let (status, lines, stderr) = ganger.finish(LIMIT);
    let shown = format!("{}\n{stderr}", lines.join("\n"));
    assert_eq!(status.code(), Some(143), "{shown}");
    assert!(took < GRACEFUL, "podman stop took {took:?}:\n{shown}");
    for ps in instances {
        container.wait_recorded(ps, "TERM");
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(&format!("| {ps} exited with code 0"))),
            "{shown}"
        );
    }
}

#[test]
fn an_instance_that_ignores_sigterm_is_killed_by_ganger_within_the_grace_period() {
    let Some(container) = Container::with_procfile(
        "ignore",
        "stubborn: trap '' TERM; echo ready; while :; do sleep 0.1; done\n",
    ) else {
        return;
    };
    // ganger's timeout (1 s) below the runtime's grace period (5 s), as in the README.
    let mut ganger = container.start(&["ganger", "start", "-t", "1"], &[]);
    ganger.wait_line("stubborn.1", "ready", LIMIT);
    let took = container.stop(5);
    let (status, lines, stderr) = ganger.finish(LIMIT);
    let shown = format!("{}\n{stderr}", lines.join("\n"));
    // 137 would mean the runtime's SIGKILL ended ganger itself.
    assert_eq!(status.code(), Some(143), "{shown}");
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("| sending SIGKILL to stubborn.1")),
        "{shown}"
    );
    assert!(took < Duration::from_secs(5), "podman stop took {took:?}");
}

#[test]
fn an_instance_exiting_7_makes_the_container_exit_7() {
    let Some(container) = Container::with_procfile("exit7", "a: exit 7\nb: sleep 1000\n") else {
        return;
    };
    let run = run_with_deadline(container.run_command(&ENTRYPOINT, &[]), LIMIT);
    run.assert_code(7);
    run.assert_stdout_has("a.1 exited with code 7");
}

#[test]
fn an_instance_killed_by_signal_n_makes_the_container_exit_128_plus_n() {
    let cases = [("HUP", 1), ("KILL", 9)];
    let mut started = Vec::new();
    for (sig, n) in cases {
        let Some(container) = Container::with_procfile(
            &format!("sig{n}"),
            &format!("a: kill -{sig} $$\nb: sleep 1000\n"),
        ) else {
            return;
        };
        let ganger = container.start(&ENTRYPOINT, &[]);
        started.push((sig, n, container, ganger));
    }
    for (sig, n, _container, ganger) in started {
        let (status, lines, stderr) = ganger.finish(LIMIT);
        let shown = format!("{}\n{stderr}", lines.join("\n"));
        assert_eq!(status.code(), Some(128 + n), "{shown}");
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(&format!("| a.1 was killed by SIG{sig}"))),
            "{shown}"
        );
    }
}

#[test]
fn fifty_orphaned_grandchildren_are_reaped_and_ganger_is_pid_1() {
    // Each `sh -c '... &'` exits at once, orphaning its sleep to PID 1; the instance
    // counts the orphans while they live (the last may take a moment to become `sleep`),
    // then waits without a child of its own.
    let Some(container) = Container::with_procfile(
        "orphans",
        "orphans: for i in $(seq 50); do sh -c 'sleep 3 &'; done; for try in $(seq 40); do n=$(grep -lx sleep /proc/[0-9]*/comm | wc -l); [ $n -ge 50 ] && break; sleep 0.05; done; echo $n > /out/seen; echo spawned; exec tail -f /dev/null\n",
    ) else {
        return;
    };
    let mut ganger = container.start(&ENTRYPOINT, &[]);
    ganger.wait_line("orphans.1", "spawned", LIMIT);
    // Written before "spawned" was echoed.
    let seen = std::fs::read_to_string(container.dir.path().join("out/seen")).expect("seen");
    assert_eq!(seen.trim(), "50", "not all 50 orphans were alive at once");

    let pid1 = container.podman(&["exec"], &["cat", "/proc/1/comm"]);
    assert_eq!(pid1.stdout.trim(), "ganger", "{}", pid1.stderr);
    // A zombie keeps its name until reaped, so "no sleep left" means all were reaped.
    let processes = wait_until("the orphans to be gone", || {
        // A process may exit between the glob and its read: only those errors are ignored,
        // and PID 1's line shows that the listing itself worked.
        let run = container.podman(
            &["exec"],
            &["sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; true"],
        );
        assert!(
            run.status.success() && run.stdout.starts_with("1 (ganger) "),
            "podman exec failed:\n{}{}",
            run.stdout,
            run.stderr
        );
        (!run.stdout.contains(" (sleep) ")).then_some(run.stdout)
    });
    let zombies: Vec<&str> = processes
        .lines()
        .filter(|l| {
            l.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .collect();
    assert!(zombies.is_empty(), "zombies in the container: {zombies:?}");

    container.stop(10);
    let (status, lines, stderr) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{}\n{stderr}", lines.join("\n"));
}

#[test]
fn podman_kill_usr1_reaches_every_instance() {
    let Some(container) = Container::with_procfile(
        "usr1",
        "a: trap 'echo USR1 >> /out/$PS' USR1; echo ready; while :; do sleep 1 & wait; done\n",
    ) else {
        return;
    };
    let instances = ["a.1", "a.2", "a.3"];
    let mut ganger = container.start(&ENTRYPOINT, &["-m", "a=3"]);
    for ps in instances {
        ganger.wait_line(ps, "ready", LIMIT);
    }
    let kill = container.podman(&["kill", "--signal", "USR1"], &[]);
    assert!(
        kill.status.success(),
        "podman kill failed:\n{}",
        kill.stderr
    );
    for ps in instances {
        container.wait_recorded(ps, "USR1");
    }
    let took = container.stop(10);
    let (status, lines, stderr) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{}\n{stderr}", lines.join("\n"));
    assert!(took < GRACEFUL, "podman stop took {took:?}");
}

#[test]
fn run_as_the_container_command_passes_the_exit_status_through() {
    let Some(container) = Container::with_procfile("run-status", "") else {
        return;
    };
    let run = run_with_deadline(
        container.run_command(&["ganger", "run"], &["sh", "-c", "exit 3"]),
        LIMIT,
    );
    run.assert_code(3);
}

#[test]
fn run_of_a_procfile_entry_as_the_container_command_forwards_podman_stop_s_sigterm() {
    // The README's one-process container: `ENTRYPOINT ["ganger", "run", "web"]`.
    let Some(container) = Container::with_procfile(
        "run-stop",
        "web: trap 'echo TERM > /out/$PS; exit 0' TERM; echo ready; sleep 1000 & wait\n",
    ) else {
        return;
    };
    let mut ganger = container.start(&["ganger", "run", "web"], &[]);
    ganger.wait_for("ready", LIMIT);
    let took = container.stop(10);
    let (status, lines, stderr) = ganger.finish(LIMIT);
    // The command's own status after its graceful stop, not ganger's or the runtime's.
    assert_eq!(status.code(), Some(0), "{}\n{stderr}", lines.join("\n"));
    container.wait_recorded("web.1", "TERM");
    assert!(took < GRACEFUL, "podman stop took {took:?}");
}

/// `podman healthcheck run NAME`: whether the container is healthy now.
fn healthy(container: &Container) -> bool {
    container
        .podman(&["healthcheck", "run"], &[])
        .status
        .success()
}

#[test]
fn ganger_health_as_the_health_check_follows_readiness() {
    let Some(container) = Container::with_procfile(
        "health",
        "web: echo waiting; while [ ! -f /out/go ]; do sleep 0.05; done; echo listening; exec sleep 300\nworker: exec sleep 300\n",
    ) else {
        return;
    };
    std::fs::write(
        container.dir.path().join("rootfs/app/ganger.toml"),
        "[process.web]\nready = { log = \"^listening\" }\n[process.worker]\nafter = [\"web\"]\n",
    )
    .expect("write ganger.toml");
    let mut ganger = Running::spawn(container.run_command_with(
        &[
            "--health-cmd",
            "[\"ganger\", \"health\"]",
            "--health-interval",
            "disable",
        ],
        &ENTRYPOINT,
        &[],
    ));
    ganger.wait_line("web.1", "waiting", LIMIT);
    assert!(
        !healthy(&container),
        "healthy while web.1 waits for its log line"
    );
    std::fs::write(container.dir.path().join("out/go"), "").expect("write go");
    ganger.wait_for("worker.1 started", LIMIT);
    wait_until("the container to report healthy", || {
        healthy(&container).then_some(())
    });
    let took = container.stop(10);
    let (status, lines, stderr) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143), "{}\n{stderr}", lines.join("\n"));
    assert!(took < GRACEFUL, "podman stop took {took:?}");
}
