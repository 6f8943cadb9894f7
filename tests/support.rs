//! The test harness: a builder that runs the real `ganger` binary in a temp dir.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Gives `cmd` the default action for the signals a caller of the tests may
/// ignore (`nohup cargo test`): ganger rightly passes an ignored signal on to
/// its children, which is not what the tests are about.
pub fn default_signals(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal() is async-signal-safe, and SIG_DFL installs no handler.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [
                nix::sys::signal::Signal::SIGHUP,
                nix::sys::signal::Signal::SIGINT,
                nix::sys::signal::Signal::SIGQUIT,
                nix::sys::signal::Signal::SIGTERM,
            ] {
                let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
            }
            Ok(())
        });
    }
}

/// The binary under test.
pub fn ganger_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ganger"))
}

/// A temp directory holding an app (Procfile, .env, scripts).
pub struct App {
    pub dir: tempfile::TempDir,
}

impl App {
    #[must_use]
    pub fn new() -> Self {
        App {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// An app with this Procfile.
    #[must_use]
    pub fn with_procfile(text: &str) -> Self {
        let app = App::new();
        app.write("Procfile", text);
        app
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> &Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
        self
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// A `ganger` command in this app's directory, with a clean GANGER_/PORT/color environment.
    #[must_use]
    pub fn ganger(&self) -> Command {
        let mut cmd = Command::new(ganger_bin());
        cmd.current_dir(self.dir.path());
        for (key, _) in std::env::vars_os() {
            let key_s = key.to_string_lossy();
            if key_s.starts_with("GANGER_")
                || key_s == "PORT"
                || key_s == "NO_COLOR"
                || key_s == "FORCE_COLOR"
            {
                cmd.env_remove(&key);
            }
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Starts `ganger ARGS` in the background, its stdout read line by line.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut cmd = self.ganger();
        cmd.args(args);
        Running::spawn(cmd)
    }

    /// Runs `ganger ARGS` to completion, with a generous deadline.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.ganger();
        cmd.args(args);
        run_with_deadline(cmd, Duration::from_secs(60))
    }

    /// Polls until `path` (relative to the app) exists and satisfies `pred`.
    pub fn wait_for_file(
        &self,
        name: &str,
        pred: impl Fn(&str) -> bool,
        limit: Duration,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.read(name);
            if pred(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {name}; it holds: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A finished run: status, stdout and stderr as text.
#[derive(Debug)]
#[must_use = "a run is there to be checked"]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Asserts the exit code, printing the whole run if it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected status\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn assert_stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The text after `| ` of every output line from instance `ps`.
    pub fn lines_of(&self, ps: &str) -> Vec<String> {
        lines_of(&self.stdout, ps)
    }
}

/// The text after `| ` of every line whose name column is `ps`.
pub fn lines_of(stdout: &str, ps: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| {
            let (head, text) = line
                .split_once(" | ")
                .or_else(|| line.strip_suffix(" |").map(|h| (h, "")))?;
            (head.split_whitespace().last() == Some(ps)).then(|| text.to_string())
        })
        .collect()
}

/// Runs a command to completion; kills it and fails the test past `limit`.
pub fn run_with_deadline(mut cmd: Command, limit: Duration) -> Run {
    default_signals(&mut cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn ganger");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output: Output = match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("ganger did not finish within {limit:?}");
        }
    };
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// A running ganger whose stdout is read line by line in the background.
#[must_use = "a running ganger is there to be stopped and checked"]
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `cmd` with piped output.
    pub fn spawn(mut cmd: Command) -> Self {
        default_signals(&mut cmd);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ganger");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = etx.send(text);
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            stderr: erx,
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    /// Waits for a stdout line containing `needle` and returns it.
    #[track_caller]
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        self.wait_until(
            |line| line.contains(needle),
            &format!("a line with {needle:?}"),
            limit,
        )
    }

    /// Waits for the first stdout line (seen before or arriving now) that
    /// satisfies `matches`; fails with `what` and everything seen past `limit`.
    #[track_caller]
    fn wait_until(
        &mut self,
        matches: impl Fn(&str) -> bool,
        what: &str,
        limit: Duration,
    ) -> String {
        let deadline = Instant::now() + limit;
        if let Some(line) = self.seen.iter().find(|l| matches(l)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no {what} within {limit:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends a signal to ganger.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for ganger to exit; returns its status and all stdout lines.
    #[track_caller]
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                let stderr = self
                    .stderr
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                return (status, std::mem::take(&mut self.seen), stderr);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "ganger did not exit within {limit:?}; seen:\n{}",
                    self.seen.join("\n")
                );
            }
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(10)) {
                self.seen.push(line);
            }
        }
    }
}

/// Is a process with this pid alive (and not a zombie)?
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
        Err(_) => false,
    }
}

/// Waits until none of `pids` is alive; fails past `limit`.
#[track_caller]
pub fn wait_all_dead(pids: &[i32], limit: Duration) {
    let deadline = Instant::now() + limit;
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "still alive: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses `KEY=VALUE` lines (as `env` prints them) into a map.
pub fn env_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Is a tool on PATH? Under CI=true, a missing tool fails the test instead of skipping it.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{tool} is required under CI=true but is not installed");
    }
    if !found {
        eprintln!("skipping: {tool} not installed");
    }
    found
}

impl Running {
    /// Waits for a line `ps | text` (the name column is padded) and returns it.
    #[track_caller]
    pub fn wait_line(&mut self, ps: &str, text: &str, limit: Duration) -> String {
        let matches = |line: &str| lines_of(line, ps).first().is_some_and(|t| t == text);
        self.wait_until(matches, &format!("line `{ps} | {text}`"), limit)
    }
}

impl App {
    /// Runs `ganger ARGS` to completion with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut cmd = self.ganger();
        cmd.args(args).envs(vars.iter().copied());
        run_with_deadline(cmd, Duration::from_secs(60))
    }
}

/// A `ganger` running as the leader of its own session, with one end of a fresh
/// pseudo-terminal as its controlling terminal and stdin/stdout/stderr; the test
/// holds the other end, types into it and reads what the terminal shows.
pub struct Pty {
    pub child: Child,
    master: std::fs::File,
    shown: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reading: std::thread::JoinHandle<()>,
}

impl App {
    /// Starts `ganger ARGS` on a new pseudo-terminal.
    pub fn spawn_in_pty(&self, args: &[&str]) -> Pty {
        self.spawn_in_sized_pty(args, None)
    }

    /// Starts `ganger ARGS` on a new pseudo-terminal of `(cols, rows)`.
    pub fn spawn_in_sized_pty(&self, args: &[&str], size: Option<(u16, u16)>) -> Pty {
        use std::os::unix::process::CommandExt;

        let size = size.map(|(cols, rows)| nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        let pty = nix::pty::openpty(size.as_ref(), None).expect("openpty");
        let mut cmd = self.ganger();
        cmd.args(args)
            .stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
            .stdout(Stdio::from(pty.slave.try_clone().expect("dup")))
            .stderr(Stdio::from(pty.slave));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn ganger on a pty");
        // The slave must be closed here, or reading the master never ends.
        drop(cmd);
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().expect("dup master");
        let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&shown);
        let reading = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Reading fails with EIO once no process holds the slave open.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            child,
            master,
            shown,
            reading,
        }
    }
}

impl Pty {
    /// Changes the terminal's size; the kernel sends ganger SIGWINCH.
    pub fn resize(&self, cols: u16, rows: u16) {
        use std::os::fd::AsRawFd;
        let ws = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a valid winsize.
        let rc = unsafe {
            nix::libc::ioctl(
                self.master.as_raw_fd(),
                nix::libc::TIOCSWINSZ,
                &raw const ws,
            )
        };
        assert_eq!(rc, 0, "TIOCSWINSZ");
    }

    /// Types `bytes` at the terminal.
    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Everything the terminal has shown so far, as text.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.shown.lock().expect("lock")).into_owned()
    }

    /// Waits until the terminal has shown `needle`.
    #[track_caller]
    pub fn wait_for(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.shown().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {needle:?}; it shows:\n{}",
                self.shown()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for ganger to exit; returns its status and what the terminal showed.
    #[track_caller]
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // What ganger wrote last may still be on its way through the
                // terminal: wait for the end of it (EIO), within the limit.
                while !self.reading.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return (status, self.shown());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "ganger did not exit within {limit:?}; the terminal shows:\n{}",
                    self.shown()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pty {
    /// A failed test must not leave ganger running on its terminal.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Running {
    /// A failed test must not leave ganger running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
