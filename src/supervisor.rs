//! `ganger start`: spawn every instance, relay their output, and stop them all.
//!
//! One loop over one set of event sources (child exits, signals, end of output,
//! a failed stdout, one deadline) drives an explicit state machine:
//! Running → Stopping{deadline} → Killing{deadline} → done. When any instance
//! exits, or a stop signal arrives, every process group gets SIGTERM at once;
//! what is still alive at the deadline gets SIGKILL. Descendants that left their
//! group (setsid, double fork) are found through /proc and treated the same.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::{Instant, sleep_until};

use crate::cli::{LogFormat, StartArgs};
use crate::config::App;
use crate::error::{Error, Result};
use crate::formation::{self, Instance};
use crate::keeper::Keeper;
use crate::os;
use crate::output::{self, LineFormat, Sink, Stream, Style};
use crate::reaper::{self, Exit};
use crate::relay;
use crate::signals::{SignalEvent, Signals};
use crate::spawn;

/// How long an exit line waits for the rest of that instance's output.
const LINGER: Duration = Duration::from_millis(250);
/// How long after SIGKILL ganger waits for the last output before it gives up.
const KILL_GRACE: Duration = Duration::from_secs(3);

/// Where one instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Running,
    Exited(Exit),
}

/// Where the whole app is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// SIGTERM sent; SIGKILL at the deadline.
    Stopping {
        deadline: Instant,
    },
    /// SIGKILL sent; ganger exits at the deadline even if some output never closed.
    Killing {
        deadline: Instant,
    },
}

struct Proc {
    instance: Instance,
    pid: Pid,
    state: ProcState,
    /// Output pipes not yet at end of file.
    open_streams: u8,
    /// Whether the exit line has been printed.
    announced: bool,
    /// When to print the exit line even if output is still open.
    announce_by: Option<Instant>,
}

/// Starts the app and supervises it until it stops; returns the exit status.
pub fn start(app: &App, args: &StartArgs) -> Result<i32> {
    let plan = app.plan(&args.processes)?;
    if plan.is_empty() {
        return Err(Error::NothingToStart);
    }
    os::raise_nofile_limit();
    // Best effort: without it, orphans go to init instead of being reaped here.
    let _ = os::become_subreaper();
    // Forked while ganger still has one thread; without it a SIGKILLed ganger
    // would leave the other members of compound commands' groups behind.
    let keeper = Keeper::start().ok();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::os("cannot start the event loop", e))?;
    let (status, writer) = runtime.block_on(async {
        let mut signals =
            Signals::install().map_err(|e| Error::os("cannot install signal handlers", e))?;
        os::unblock_acted_on();
        let (failed_tx, failed_rx) = unbounded_channel();
        let (sink, writer) = output::start_writer(failed_tx)
            .map_err(|e| Error::os("cannot start the output thread", e))?;
        let width = plan.iter().map(|i| i.ps().len()).max().unwrap_or(0);
        let style = Arc::new(Style::new(&args.output, width));
        let (closed_tx, closed_rx) = unbounded_channel();
        let mut sup = Supervisor::new(app, args, style, sink, closed_tx);
        sup.keeper = keeper;
        for warning in formation::collision_warnings(&plan) {
            sup.say(&warning);
        }
        sup.spawn_all(plan);
        let status = sup.run(&mut signals, failed_rx, closed_rx).await;
        Ok::<_, Error>((status, writer))
    })?;
    // Dropping the runtime drops any relay still waiting on a pipe, and with it
    // the last handle on the writer, which then finishes what is queued.
    drop(runtime);
    let _ = writer.join();
    Ok(status)
}

struct Supervisor<'a> {
    app: &'a App,
    timeout: Duration,
    split_stderr: bool,
    style: Arc<Style>,
    sink: Sink,
    system: LineFormat,
    closed_tx: UnboundedSender<usize>,
    procs: Vec<Proc>,
    by_pid: HashMap<Pid, usize>,
    phase: Phase,
    /// The status ganger exits with, set by whatever started the stop.
    status: Option<i32>,
    stdout_broken: bool,
    keeper: Option<Keeper>,
}

impl<'a> Supervisor<'a> {
    fn new(
        app: &'a App,
        args: &StartArgs,
        style: Arc<Style>,
        sink: Sink,
        closed_tx: UnboundedSender<usize>,
    ) -> Self {
        Supervisor {
            app,
            timeout: args.timeout,
            split_stderr: args.output.log_format == LogFormat::Json,
            system: LineFormat::new(Arc::clone(&style), "system", None, Stream::System),
            style,
            sink,
            closed_tx,
            procs: Vec::new(),
            by_pid: HashMap::new(),
            phase: Phase::Running,
            status: None,
            stdout_broken: false,
            keeper: None,
        }
    }

    /// Prints one of ganger's own lines.
    fn say(&mut self, message: &str) {
        if self.stdout_broken {
            return;
        }
        self.system.refresh();
        let mut out = Vec::with_capacity(message.len() + 64);
        self.system.push(&mut out, message.as_bytes());
        self.sink.send_now(out);
    }

    /// Spawns every instance before any output is awaited.
    fn spawn_all(&mut self, plan: Vec<Instance>) {
        for instance in plan {
            if self.phase != Phase::Running {
                break;
            }
            self.spawn(instance);
        }
    }

    fn spawn(&mut self, instance: Instance) {
        let ps = instance.ps();
        let env = self.app.env.for_child(
            &self.app.root,
            &[("PORT", instance.port.to_string()), ("PS", ps.clone())],
        );
        match spawn::spawn(&instance.command, &env, &self.app.root, self.split_stderr) {
            Ok(spawned) => {
                let index = self.procs.len();
                let mut open_streams = 1;
                let format = LineFormat::new(
                    Arc::clone(&self.style),
                    &ps,
                    Some(instance.position),
                    Stream::Stdout,
                );
                if let Some(stderr) = spawned.stderr {
                    open_streams += 1;
                    let err_format = LineFormat::new(
                        Arc::clone(&self.style),
                        &ps,
                        Some(instance.position),
                        Stream::Stderr,
                    );
                    tokio::spawn(relay::relay(
                        stderr,
                        err_format,
                        self.sink.clone(),
                        index,
                        self.closed_tx.clone(),
                    ));
                }
                tokio::spawn(relay::relay(
                    spawned.stdout,
                    format,
                    self.sink.clone(),
                    index,
                    self.closed_tx.clone(),
                ));
                self.by_pid.insert(spawned.pid, index);
                if let Some(keeper) = &mut self.keeper {
                    keeper.watch(spawned.pid);
                }
                self.procs.push(Proc {
                    instance,
                    pid: spawned.pid,
                    state: ProcState::Running,
                    open_streams,
                    announced: false,
                    announce_by: None,
                });
                self.say(&format!("{ps} started with pid {}", spawned.pid));
            }
            Err(e) => {
                self.say(&format!("cannot start {ps}: {e}"));
                if self.phase == Phase::Running {
                    self.status = Some(1);
                    self.begin_stop();
                }
            }
        }
    }

    async fn run(
        &mut self,
        signals: &mut Signals,
        mut failed_rx: UnboundedReceiver<output::WriteFailed>,
        mut closed_rx: UnboundedReceiver<usize>,
    ) -> i32 {
        self.on_child();
        while !self.finished() {
            let wake = self.next_deadline();
            tokio::select! {
                biased;
                Some(index) = closed_rx.recv() => self.on_output_closed(index),
                event = signals.recv() => match event {
                    SignalEvent::Child => self.on_child(),
                    SignalEvent::Stop(sig) => self.on_stop_signal(sig),
                    SignalEvent::Forward(sig) => self.forward(sig),
                },
                Some(_) = failed_rx.recv() => self.on_stdout_failed(),
                () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => self.on_timer(),
            }
        }
        if let Some(keeper) = self.keeper.take() {
            keeper.release();
        }
        // Nothing ganger started may outlive it.
        for pid in self.descendants() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        self.status.unwrap_or(0)
    }

    /// Every living descendant but the keeper.
    fn descendants(&self) -> Vec<Pid> {
        let keeper = self.keeper.as_ref().map(Keeper::pid);
        os::descendants()
            .into_iter()
            .filter(|&pid| Some(pid) != keeper)
            .collect()
    }

    fn finished(&self) -> bool {
        match self.phase {
            Phase::Running => false,
            Phase::Killing { deadline } if Instant::now() >= deadline => true,
            Phase::Stopping { .. } | Phase::Killing { .. } => {
                self.procs
                    .iter()
                    .all(|p| matches!(p.state, ProcState::Exited(_)) && p.open_streams == 0)
                    && self.descendants().is_empty()
            }
        }
    }

    /// The earliest moment something must happen without an event.
    fn next_deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Running => None,
            Phase::Stopping { deadline } | Phase::Killing { deadline } => Some(deadline),
        };
        self.procs
            .iter()
            .filter(|p| !p.announced)
            .filter_map(|p| p.announce_by)
            .chain(phase)
            .min()
    }

    fn on_child(&mut self) {
        for (pid, exit) in reaper::reap() {
            let Some(index) = self.by_pid.remove(&pid) else {
                continue; // an orphan that was reparented to us
            };
            let proc = &mut self.procs[index];
            proc.state = ProcState::Exited(exit);
            if proc.open_streams == 0 {
                self.announce(index);
            } else {
                proc.announce_by = Some(Instant::now() + LINGER);
            }
            if self.phase == Phase::Running {
                self.status = Some(exit.status());
                self.begin_stop();
            }
        }
    }

    fn on_output_closed(&mut self, index: usize) {
        let proc = &mut self.procs[index];
        proc.open_streams = proc.open_streams.saturating_sub(1);
        if proc.open_streams == 0 && matches!(proc.state, ProcState::Exited(_)) {
            self.announce(index);
        }
    }

    fn announce(&mut self, index: usize) {
        let proc = &mut self.procs[index];
        if proc.announced {
            return;
        }
        proc.announced = true;
        if let ProcState::Exited(exit) = proc.state {
            let line = format!("{} {}", proc.instance.ps(), exit.describe());
            self.say(&line);
        }
    }

    fn on_stop_signal(&mut self, sig: Signal) {
        match self.phase {
            Phase::Running => {
                self.status = Some(128 + sig as i32);
                self.say(&format!("{} received, stopping", sig.as_str()));
                self.begin_stop();
            }
            Phase::Stopping { .. } if sig != Signal::SIGHUP => {
                self.say(&format!("{} received again, killing", sig.as_str()));
                self.kill_all();
            }
            Phase::Stopping { .. } | Phase::Killing { .. } => {}
        }
    }

    fn on_stdout_failed(&mut self) {
        self.stdout_broken = true;
        if self.phase == Phase::Running {
            self.status = Some(128 + Signal::SIGTERM as i32);
            self.begin_stop();
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        let due: Vec<usize> = (0..self.procs.len())
            .filter(|&i| {
                !self.procs[i].announced && self.procs[i].announce_by.is_some_and(|t| t <= now)
            })
            .collect();
        for index in due {
            self.announce(index);
        }
        if let Phase::Stopping { deadline } = self.phase
            && deadline <= now
        {
            self.kill_all();
        }
    }

    fn begin_stop(&mut self) {
        self.say("sending SIGTERM to all processes");
        self.phase = Phase::Stopping {
            deadline: Instant::now() + self.timeout,
        };
        self.signal_all(Signal::SIGTERM);
        if self.timeout.is_zero() {
            self.kill_all();
        }
    }

    fn kill_all(&mut self) {
        let alive: Vec<String> = self
            .procs
            .iter()
            .filter(|p| p.state == ProcState::Running)
            .map(|p| p.instance.ps())
            .collect();
        if !alive.is_empty() {
            self.say(&format!("sending SIGKILL to {}", alive.join(", ")));
        }
        self.signal_all(Signal::SIGKILL);
        self.phase = Phase::Killing {
            deadline: Instant::now() + KILL_GRACE,
        };
    }

    fn forward(&mut self, sig: Signal) {
        self.say(&format!("forwarding {} to all processes", sig.as_str()));
        for proc in self.procs.iter().filter(|p| p.state == ProcState::Running) {
            let _ = killpg(proc.pid, sig);
        }
    }

    /// Signals every instance's process group, and every descendant that has
    /// left those groups, exactly once each.
    fn signal_all(&self, sig: Signal) {
        for proc in &self.procs {
            let _ = killpg(proc.pid, sig);
        }
        for pid in self.descendants() {
            let in_a_group =
                getpgid(Some(pid)).is_ok_and(|pgid| self.procs.iter().any(|p| p.pid == pgid));
            if !in_a_group {
                let _ = kill(pid, sig);
            }
        }
    }
}
