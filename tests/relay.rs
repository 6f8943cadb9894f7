//! The relay under pressure: a stdout nobody reads, a stdout that fails, very
//! long lines of multi-byte text, and the pipe buffer ganger asks for.

use std::fs::OpenOptions;
use std::io::{BufRead, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::App;

const LIMIT: Duration = Duration::from_secs(120);

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A field of /proc/PID/status in KiB (`VmHWM`, `VmRSS`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Bytes process `pid` has written so far (0 once it is gone).
fn written(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("wchar: "))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A ganger started by a test, killed if the test fails before it exits.
struct Ganger(Child);

impl Drop for Ganger {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for ganger to exit, failing the test past [`LIMIT`].
fn wait(ganger: &mut Ganger) -> ExitStatus {
    let child = &mut ganger.0;
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ganger did not exit within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
    nix::sys::signal::kill(pid, sig).expect("kill");
}

/// Reads `reader` to its end in the background; joins to the text.
fn drain(mut reader: std::io::PipeReader) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[test]
fn a_stalled_stdout_bounds_memory_however_many_instances_write() {
    const INSTANCES: usize = 300;
    let app = App::with_procfile(
        "w: yes 'a chatty line from an instance that writes as fast as it can'\n",
    );
    // A pipe nobody reads until the end: ganger's stdout is stuck.
    let (reader, writer) = std::io::pipe().expect("pipe");
    let ganger = app
        .ganger()
        .args(["start", "-m", &format!("w={INSTANCES}"), "-t", "1"])
        .stdout(writer)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ganger");
    let mut ganger = Ganger(ganger);
    let pid = ganger.0.id();
    // Every instance started (and the keeper), and nothing moves any more:
    // the children are blocked on full pipes, so ganger reads no more.
    let deadline = Instant::now() + LIMIT;
    let mut before = u64::MAX;
    loop {
        let kids = children(pid);
        let total: u64 = kids.iter().map(|&k| written(k)).sum();
        if kids.len() > INSTANCES && total == before {
            break;
        }
        before = total;
        assert!(Instant::now() < deadline, "the output never stalled");
        std::thread::sleep(Duration::from_millis(500));
    }
    let peak = status_kib(pid, "VmHWM");
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let out = drain(reader);
    let status = wait(&mut ganger);
    let out = out.join().expect("reader");
    assert!(
        peak < 32 * 1024,
        "ganger's peak RSS was {peak} KiB with {INSTANCES} instances and a stalled stdout"
    );
    assert_eq!(status.code(), Some(143));
    assert!(
        !crate::support::lines_of(&out, "w.1").is_empty(),
        "nothing relayed"
    );
}

/// Voluntary context switches of `pid`'s main thread: one more each time its
/// event loop goes back to waiting.
fn switches(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches")
}

/// Sends ganger SIGUSR1 and waits until its event loop has handled it and
/// waits again, so that signals do not merge: each makes one line.
fn nudge(pid: u32, deadline: Instant) {
    let before = switches(pid);
    signal(pid, nix::sys::signal::Signal::SIGUSR1);
    while switches(pid) == before {
        assert!(Instant::now() < deadline, "ganger never handled SIGUSR1");
        std::thread::yield_now();
    }
}

#[test]
fn own_lines_are_bounded_while_stdout_is_stalled() {
    let app = App::with_procfile("w: trap '' USR1; exec sleep 600\n");
    // A terminal nobody reads for now: its buffer is small (ganger enlarges a
    // pipe, not a terminal), so ganger's own lines soon have nowhere to go.
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let ganger = app
        .ganger()
        .args(["start", "-t", "1", "--color", "never"])
        .stdout(std::fs::File::from(pty.slave))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ganger");
    let mut ganger = Ganger(ganger);
    let pid = ganger.0.id();
    // The instance ignores SIGUSR1 once it is `sleep`.
    let deadline = Instant::now() + LIMIT;
    while !children(pid).iter().any(|&k| {
        std::fs::read_to_string(format!("/proc/{k}/comm")).is_ok_and(|c| c.trim() == "sleep")
    }) {
        assert!(Instant::now() < deadline, "the instance never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Each SIGUSR1 makes a `forwarding SIGUSR1` line of about 55 bytes: 4000
    // of them are more than the terminal's buffer and ganger's allowance hold.
    for _ in 0..4000 {
        nudge(pid, deadline);
    }
    let peak = status_kib(pid, "VmHWM");
    // Read again: the next line that fits says how many were dropped.
    let (tx, lines) = std::sync::mpsc::channel();
    let master = std::fs::File::from(pty.master);
    std::thread::spawn(move || {
        // Ends with EIO once ganger, the last holder of the terminal, exits.
        for line in std::io::BufReader::new(master).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut note = None;
    while note.is_none() {
        assert!(Instant::now() < deadline, "no line says lines were dropped");
        nudge(pid, deadline);
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            if line.contains("of ganger's own lines were dropped while stdout was not being read") {
                note = Some(line);
                break;
            }
        }
    }
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let status = wait(&mut ganger);
    assert!(peak < 16 * 1024, "ganger's peak RSS was {peak} KiB");
    assert_eq!(status.code(), Some(143));
    let note = note.unwrap_or_default();
    let dropped: usize = note
        .split(" | ")
        .nth(1)
        .and_then(|text| text.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count in {note:?}"));
    assert!(dropped >= 1000, "{note}");
}

/// Runs `ganger start` with `stdout` as its stdout; returns its status and stderr.
fn start_into(app: &App, stdout: impl Into<Stdio>) -> (ExitStatus, String) {
    let ganger = app
        .ganger()
        .arg("start")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ganger");
    let mut ganger = Ganger(ganger);
    let mut stderr = ganger.0.stderr.take().expect("stderr");
    let status = wait(&mut ganger);
    let mut text = String::new();
    let _ = stderr.read_to_string(&mut text);
    (status, text)
}

#[test]
fn a_full_disk_on_stdout_stops_the_app_with_1_and_says_why() {
    let app = App::with_procfile("w: exec sleep 600\n");
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let (status, stderr) = start_into(&app, full);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ganger: cannot write to stdout: No space left on device"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_io_error_on_stdout_stops_the_app_with_1_and_says_why() {
    let app = App::with_procfile("w: exec sleep 600\n");
    // A terminal whose other side is gone: writing to it fails with EIO.
    let pty = nix::pty::openpty(None, None).expect("openpty");
    drop(pty.master);
    let (status, stderr) = start_into(&app, std::fs::File::from(pty.slave));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ganger: cannot write to stdout: Input/output error"),
        "{stderr}"
    );
}

#[test]
fn a_long_line_of_wide_characters_reaches_json_whole() {
    let line = "日".repeat(100_000);
    let app = App::with_procfile("w: cat line.txt\n");
    app.write("line.txt", format!("{line}\n"));
    let run = app.run(&["start", "--log-format", "json"]);
    run.assert_code(0);
    let mut relayed = String::new();
    let mut pieces = 0;
    for text in run.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(text).expect("json");
        if v["process"] == "w.1" && v["stream"] == "stdout" {
            relayed.push_str(v["line"].as_str().expect("line"));
            pieces += 1;
        }
    }
    assert!(pieces > 1, "a 300,000-byte line comes in pieces");
    assert!(!relayed.contains(char::REPLACEMENT_CHARACTER));
    assert!(relayed == line, "the pieces do not add up to the line");
}

#[test]
fn many_instances_get_enlarged_pipes_only_within_a_share_of_the_users_budget() {
    let app = App::with_procfile("w: exec sleep 600\n");
    let mut ganger = app.spawn(&["start", "-m", "w=100"]);
    ganger.wait_for("w.100 started with pid", LIMIT);
    let pid = ganger.pid();
    let mut extra = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds") {
        let path = entry.expect("fd").path();
        let fd: i32 = path
            .file_name()
            .and_then(|n| n.to_str()?.parse().ok())
            .unwrap_or(0);
        let is_pipe = std::fs::read_link(&path)
            .is_ok_and(|target| target.to_string_lossy().starts_with("pipe:"));
        // 0-2 are ganger's own, made by the test.
        if fd < 3 || !is_pipe {
            continue;
        }
        let Ok(pipe) = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        let size = nix::fcntl::fcntl(&pipe, nix::fcntl::FcntlArg::F_GETPIPE_SZ).expect("size");
        extra += usize::try_from(size)
            .expect("size")
            .saturating_sub(64 * 1024);
    }
    let pages: usize = std::fs::read_to_string("/proc/sys/fs/pipe-user-pages-soft")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|&p| p > 0)
        .unwrap_or(16 * 1024);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(4096);
    assert!(extra > 0, "no pipe was enlarged");
    assert!(
        extra <= pages * page / 4,
        "{extra} bytes of enlarged pipe buffer with 100 instances"
    );
    ganger.signal("TERM");
    let (status, _, _) = ganger.finish(LIMIT);
    assert_eq!(status.code(), Some(143));
}
