//! What the `ganger export` tests share: the real tools each format is checked
//! with (`systemd-analyze verify`, the Compose schema, `kubernetes-validate`),
//! the daemons that run an export (supervisord, runsvdir) and small file helpers.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_yaml_ng::Value;

use crate::support::*;

/// A dotenv double-quoted string that dotenvy reads back as `value`.
pub(crate) fn dotenv_quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// The entries of `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The file's text, or "" if it cannot be read (yet).
pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// What `systemd-analyze verify` says about the units in `dir`: it must
/// accept them silently; returns its debug dump of what it read.
pub(crate) fn verify_units(dir: &Path) -> String {
    let paths: Vec<PathBuf> = names(dir).iter().map(|n| dir.join(n)).collect();
    let plain = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("verify");
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        plain.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
    // At debug level, verify dumps each unit as systemd parsed it.
    let dump = Command::new("systemd-analyze")
        .env("SYSTEMD_LOG_LEVEL", "debug")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("verify");
    String::from_utf8_lossy(&dump.stdout).into_owned() + &String::from_utf8_lossy(&dump.stderr)
}

/// The part of a `systemd-analyze` debug dump about one unit.
pub(crate) fn unit_dump<'a>(dump: &'a str, unit: &str) -> &'a str {
    let header = format!("-> Unit {unit}:");
    let start = dump
        .find(&header)
        .unwrap_or_else(|| panic!("no dump of {unit}:\n{dump}"));
    let rest = &dump[start + header.len()..];
    &rest[..rest.find("-> Unit ").unwrap_or(rest.len())]
}

/// Splits systemd's quoted rendering of a command line back into words.
pub(crate) fn split_dumped_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => word.push(chars.next().expect("escaped char")),
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

/// Asserts that systemd read each of `lines` (whole lines) for `unit`.
#[track_caller]
pub(crate) fn assert_read(dump: &str, unit: &str, lines: &[&str]) {
    let section = unit_dump(dump, unit);
    for line in lines {
        assert!(
            section.contains(&format!("\t\t{line}\n")),
            "{unit}: systemd did not read {line:?}:\n{section}"
        );
    }
}

/// Runs `cmd` and asserts that it succeeds (failing with `what` and its
/// output if not); returns its stdout.
#[track_caller]
pub(crate) fn assert_succeeds(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts that the Compose specification schema accepts `file`.
#[track_caller]
pub(crate) fn assert_compose_valid(file: &Path) {
    assert_succeeds(
        Command::new("check-jsonschema")
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(file),
        "the Compose specification schema rejects the file",
    );
}

/// Asserts that `kubernetes-validate --strict` accepts `file`.
#[track_caller]
pub(crate) fn assert_kubernetes_valid(file: &Path) {
    assert_succeeds(
        Command::new("kubernetes-validate")
            .arg("--strict")
            .arg(file),
        &format!("kubernetes-validate --strict rejects:\n{}\n", read(file)),
    );
}

/// The documents of `file`, once `kubernetes-validate --strict` accepts it.
pub(crate) fn kubernetes_docs(file: &Path) -> Vec<Value> {
    assert_kubernetes_valid(file);
    serde_yaml_ng::Deserializer::from_str(&read(file))
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML document"))
        .collect()
}

/// The object called `name` that is not a Service: a Deployment or a Job.
pub(crate) fn workload<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(name) && d["kind"] != "Service")
        .unwrap_or_else(|| panic!("no {name}:\n{docs:?}"))
}

/// A daemon the test started; stopping it (and anything it left) on drop.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    stop: Signal,
    /// Its stdout and stderr.
    pub(crate) log: PathBuf,
}

impl Daemon {
    pub(crate) fn spawn(mut cmd: Command, stop: Signal, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).expect("daemon log");
        let err = out.try_clone().expect("daemon log");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        Daemon {
            child: cmd.spawn().expect("spawn daemon"),
            stop,
            log,
        }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let family = descendants(self.pid());
        let _ = kill(Pid::from_raw(self.pid()), self.stop);
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The daemon stops its children itself; whatever is left gets SIGKILL.
        let _ = kill(Pid::from_raw(-self.pid()), Signal::SIGKILL);
        for pid in &family {
            if alive(*pid) {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
        }
        wait_all_dead(&family, Duration::from_secs(5));
    }
}

/// Every process below `pid` right now.
fn descendants(pid: i32) -> Vec<i32> {
    let mut parents: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parents.entry(ppid).or_default().push(child);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for &child in parents.get(&p).map(Vec::as_slice).unwrap_or_default() {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

/// Polls `done` until it holds, failing with the daemon's output if the
/// daemon exits or the limit passes.
pub(crate) fn wait_until(daemon: &mut Daemon, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("the daemon exited ({status}):\n{}", read(&daemon.log));
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; daemon output:\n{}",
            read(&daemon.log)
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A `supervisord` command in the foreground, its own state in the app's
/// temp dir, running the exported `conf`.
pub(crate) fn supervisord(app: &App, conf: &Path) -> Command {
    let state = app.path().join("supervisord");
    std::fs::create_dir_all(&state).expect("state dir");
    let main = state.join("supervisord.conf");
    std::fs::write(
        &main,
        format!(
            "[supervisord]\nnodaemon=true\nlogfile={s}/supervisord.log\npidfile={s}/supervisord.pid\nchildlogdir={s}\n\n\
             [include]\nfiles={conf}\n",
            s = state.display(),
            conf = conf.display()
        ),
    )
    .expect("main conf");
    let mut cmd = Command::new("supervisord");
    cmd.arg("-c").arg(&main);
    cmd
}

/// Starts [`supervisord`] on the exported `conf`; the guard stops it with
/// SIGTERM, its output in `daemon.log` in the app's temp dir.
pub(crate) fn start_supervisord(app: &App, conf: &Path) -> Daemon {
    Daemon::spawn(
        supervisord(app, conf),
        Signal::SIGTERM,
        app.path().join("daemon.log"),
    )
}

/// Copies the runit export `dir` to `service` in the app's temp dir (so that
/// runsv's supervise/ state stays out of the export) and starts `runsvdir` on
/// it; returns the guard, which stops it with SIGHUP, and the service dir.
pub(crate) fn start_runit(app: &App, dir: &Path) -> (Daemon, PathBuf) {
    let services = app.path().join("service");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(dir)
        .arg(&services)
        .status()
        .expect("cp");
    assert!(copied.success());
    let mut cmd = Command::new("runsvdir");
    cmd.arg(&services);
    let daemon = Daemon::spawn(cmd, Signal::SIGHUP, app.path().join("daemon.log"));
    (daemon, services)
}

/// Whether runsv reports the service in `dir` down and wanted down: bytes 17
/// (`u`/`d`: wanted state) and 19 (0: down) of `supervise/status`.
pub(crate) fn runsv_down_for_good(dir: &Path) -> bool {
    std::fs::read(dir.join("supervise/status"))
        .is_ok_and(|status| status.len() == 20 && status[17] == b'd' && status[19] == 0)
}
