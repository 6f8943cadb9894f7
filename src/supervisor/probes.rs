//! The edge of readiness: runs each starting instance's probe and reports
//! success to the event loop as [`Event::Ready`]. The core decides what
//! readiness means for the app (order, timeouts); this only looks.
//!
//! `port` reads the kernel's socket tables, `http` sends one GET, `exec` runs
//! a command (reaped by the one reaper, which hands its status back here),
//! `notify` listens on one datagram socket for all instances and accepts a
//! message only from the instance's own process tree, and `log` is watched by
//! the relay itself.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::core::Event;
use crate::os;
use crate::process_type::Readiness;
use crate::ready::http;
use crate::ready::port;
use crate::ready::{NotifySocket, in_tree};
use crate::reaper::Exit;

/// How often a port is looked for.
const PORT_EVERY: Duration = Duration::from_millis(100);
/// How often `exec` and `http` probes run, as the contract says.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long one `exec` probe run or one `http` request may take.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// What one probe needs to know of its instance.
pub struct Target {
    pub index: usize,
    pub run: u32,
    pub pid: Pid,
    pub port: u16,
    pub env: Vec<(OsString, OsString)>,
    pub root: PathBuf,
}

type Waiters = Arc<Mutex<HashMap<Pid, oneshot::Sender<Exit>>>>;
type NotifyTargets = Arc<Mutex<HashMap<usize, (i32, u32)>>>;

/// The running probes.
pub struct Probes {
    events: UnboundedSender<Event>,
    tasks: HashMap<usize, JoinHandle<()>>,
    /// `exec` probe children, waiting for the reaper to hand over their exit.
    waiters: Waiters,
    notify: Option<OsString>,
    /// Instance -> (pid, run) of instances waiting for `READY=1`.
    notify_targets: NotifyTargets,
}

impl Probes {
    /// Probes that report on `events`; binds the notify socket if `notify`.
    pub fn new(events: UnboundedSender<Event>, notify: bool) -> std::io::Result<Self> {
        let notify_targets: NotifyTargets = Arc::default();
        let mut probes = Probes {
            events,
            tasks: HashMap::new(),
            waiters: Arc::default(),
            notify: None,
            notify_targets: Arc::clone(&notify_targets),
        };
        if notify {
            let socket = NotifySocket::bind()?;
            probes.notify = Some(socket.env_value());
            let events = probes.events.clone();
            tokio::spawn(listen(socket, notify_targets, events));
        }
        Ok(probes)
    }

    /// Where probes report; a relay's log watch reports there too.
    #[must_use]
    pub fn events(&self) -> UnboundedSender<Event> {
        self.events.clone()
    }

    /// `NOTIFY_SOCKET` for instances of `notify` types.
    #[must_use]
    pub fn notify_socket(&self) -> Option<&OsString> {
        self.notify.as_ref()
    }

    /// Starts probing `target` the way `ready` says.
    pub fn start(&mut self, target: Target, ready: &Readiness) {
        let (index, run) = (target.index, target.run);
        let events = self.events.clone();
        let ready_event = move || {
            let _ = events.send(Event::Ready { index, run });
        };
        let task = match ready {
            Readiness::Started | Readiness::Log(_) => return,
            Readiness::Notify => {
                lock(&self.notify_targets).insert(index, (target.pid.as_raw(), run));
                return;
            }
            Readiness::Port => tokio::spawn(async move {
                while !port::listening(target.port) {
                    tokio::time::sleep(PORT_EVERY).await;
                }
                ready_event();
            }),
            Readiness::Http(path) => {
                let path = path.clone();
                tokio::spawn(async move {
                    while !http::get_ok(target.port, &path, PROBE_LIMIT).await {
                        tokio::time::sleep(PROBE_EVERY).await;
                    }
                    ready_event();
                })
            }
            Readiness::Exec(cmd) => {
                let cmd = cmd.clone();
                let waiters = Arc::clone(&self.waiters);
                tokio::spawn(async move {
                    while !exec_once(&cmd, &target, &waiters).await {
                        tokio::time::sleep(PROBE_EVERY).await;
                    }
                    ready_event();
                })
            }
        };
        if let Some(old) = self.tasks.insert(index, task) {
            old.abort();
        }
    }

    /// Stops probing instance `index`.
    pub fn end(&mut self, index: usize) {
        if let Some(task) = self.tasks.remove(&index) {
            task.abort();
        }
        lock(&self.notify_targets).remove(&index);
    }

    /// Hands the exit of an `exec` probe's child to its probe; returns whether
    /// `pid` was one.
    #[must_use = "an exit that was not a probe's is an instance's"]
    pub fn take_exit(&self, pid: Pid, exit: Exit) -> bool {
        match lock(&self.waiters).remove(&pid) {
            Some(waiter) => {
                let _ = waiter.send(exit);
                true
            }
            None => false,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the `exec` probe once: whether it exited 0 within [`PROBE_LIMIT`].
async fn exec_once(cmd: &str, target: &Target, waiters: &Waiters) -> bool {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(cmd)
        .env_clear()
        .envs(target.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&target.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            os::restore_inherited_signals_in_child();
            os::set_parent_death_signal_in_child();
            Ok(())
        });
    }
    let (tx, rx) = oneshot::channel();
    // Spawned and registered with no await in between: the reaper, on this
    // same thread, cannot take its exit before it is registered.
    let Ok(child) = command.spawn() else {
        return false;
    };
    let Ok(raw) = i32::try_from(child.id()) else {
        return false;
    };
    let pid = Pid::from_raw(raw);
    lock(waiters).insert(pid, tx);
    drop(child);
    let mut rx = rx;
    match tokio::time::timeout(PROBE_LIMIT, &mut rx).await {
        Ok(Ok(exit)) => exit == Exit::Code(0),
        Ok(Err(_)) => false,
        Err(_) => {
            // Not reaped yet, so the pid is still this probe's group.
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = rx.await;
            false
        }
    }
}

/// The notify socket's reader: `READY=1` and `STATUS=` from an instance's
/// process tree become events; anything from anyone else is ignored.
async fn listen(socket: NotifySocket, targets: NotifyTargets, events: UnboundedSender<Event>) {
    loop {
        let Ok(message) = socket.recv().await else {
            continue;
        };
        let Some(sender) = message.pid else { continue };
        let found = lock(&targets)
            .iter()
            .find(|(_, (pid, _))| in_tree(sender, *pid))
            .map(|(index, (_, run))| (*index, *run));
        let Some((index, run)) = found else { continue };
        if let Some(text) = message.status {
            let _ = events.send(Event::Status { index, run, text });
        }
        if message.ready {
            let _ = events.send(Event::Ready { index, run });
        }
    }
}
