//! `ganger start`: spawn every instance, relay their output, and stop them all.
//!
//! One loop over one set of event sources (child exits, signals, end of output,
//! a failed stdout, one deadline) drives an explicit state machine:
//! Running → Stopping{deadline} → Killing{deadline} → done. When any instance
//! exits, or a stop signal arrives, every process group gets SIGTERM at once;
//! what is still alive at the deadline gets SIGKILL. Descendants that left their
//! group (setsid, double fork) are found through /proc and treated the same.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};
use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::{Instant, sleep_until};

use crate::cli::{LogFormat, StartArgs};
use crate::config::App;
use crate::control::{self, Request, error_reply};
use crate::error::{Error, Result};
use crate::formation::{self, Instance};
use crate::formation::{Formation, port_for, unknown_process};
use crate::keeper::Keeper;
use crate::os;
use crate::output::{self, LineFormat, Sink, Stream, Style};
use crate::policy::Types;
use crate::policy::{BACKOFF_RESET, OnExit, Policy, backoff, show_delay};
use crate::reaper::{self, Exit};
use crate::relay;
use crate::signals::{SignalEvent, Signals};
use crate::spawn;
use crate::spawn::Streams;
use crate::tty;

/// How long an exit line waits for the rest of that instance's output.
const LINGER: Duration = Duration::from_millis(250);
/// How long ganger, done, waits on a stdout nobody reads before it exits anyway.
const STDOUT_STALL: Duration = Duration::from_secs(5);
/// How long after SIGKILL ganger waits for the last output before it gives up.
const KILL_GRACE: Duration = Duration::from_secs(3);

/// Where one instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Not started yet.
    Pending,
    Running {
        since: Instant,
    },
    /// Asked to stop by a client: SIGTERM sent, SIGKILL at `deadline`, then `next`.
    Stopping {
        deadline: Instant,
        next: AfterStop,
    },
    /// Exited, and starts again at `until` (`--restart`).
    BackingOff {
        until: Instant,
        exit: Exit,
    },
    /// Stopped by a client; down until a restart or scale starts it.
    Stopped,
    /// Scaled away; hidden until a scale up brings its number back.
    Removed,
    /// Exited for good.
    Exited(Exit),
}

/// What follows a stop a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    Start,
    Stay,
    Remove,
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
    /// The current (or last) process, also its process group.
    pid: Option<Pid>,
    state: ProcState,
    /// Output pipes not yet at end of file.
    open_streams: u8,
    /// The exit line, held until the instance's output is drained or the
    /// deadline passes, so that it comes after the last output.
    exit_note: Option<(String, Instant)>,
    /// Restarts so far, and the backoff step (reset after a long uptime).
    restarts: u32,
    backoff_step: u32,
    /// The pty master (terminal mode), for window size changes.
    pty: Option<OwnedFd>,
}

impl Proc {
    fn new(instance: Instance) -> Self {
        Proc {
            instance,
            pid: None,
            state: ProcState::Pending,
            open_streams: 0,
            exit_note: None,
            restarts: 0,
            backoff_step: 0,
            pty: None,
        }
    }

    fn is_live(&self) -> bool {
        matches!(
            self.state,
            ProcState::Running { .. } | ProcState::Stopping { .. } | ProcState::BackingOff { .. }
        )
    }

    /// What `ganger ps` shows of this instance.
    fn describe(&self, now: Instant) -> serde_json::Value {
        let state = match self.state {
            ProcState::Pending => "starting".to_string(),
            ProcState::Running { .. } => "running".to_string(),
            ProcState::Stopping { .. } => "stopping".to_string(),
            ProcState::BackingOff { until, .. } => {
                format!(
                    "restarting in {}s",
                    until.saturating_duration_since(now).as_secs_f64().ceil()
                )
            }
            ProcState::Stopped => "stopped".to_string(),
            ProcState::Removed => "removed".to_string(),
            ProcState::Exited(exit) => format!("exited {}", exit.status()),
        };
        let uptime = match self.state {
            ProcState::Running { since } => Some(now.duration_since(since).as_secs_f64()),
            _ => None,
        };
        let pid = self.pid.filter(|_| {
            matches!(
                self.state,
                ProcState::Running { .. } | ProcState::Stopping { .. }
            )
        });
        json!({
            "name": self.instance.ps(),
            "type": self.instance.name,
            "pid": pid.map(Pid::as_raw),
            "state": state,
            "uptime": uptime,
            "restarts": self.restarts,
            "port": self.instance.port,
        })
    }
}

/// Cells the prefix column takes: `HH:MM:SS name | `.
fn prefix_width(style: &Style) -> usize {
    let clock = if style.timestamp {
        "HH:MM:SS ".len()
    } else {
        0
    };
    clock + style.width() + " | ".len()
}

/// Starts the app and supervises it until it stops; returns the exit status.
pub fn start(
    app: &App,
    args: &StartArgs,
    socket: &std::path::Path,
    explicit_socket: bool,
) -> Result<i32> {
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
        let policy = Policy::new(&args.policy, &app.procfile)?;
        let (control_tx, control_rx) = unbounded_channel();
        // Bound before anything starts: a second `start` fails here, not halfway.
        let server = control::listen(socket, explicit_socket, control_tx)?;
        let tty = Types::parse(args.tty.as_deref().unwrap_or_default(), &app.procfile)?;
        let mut sup = Supervisor::new(app, args, policy, tty, style, sink, closed_tx);
        sup.keeper = keeper;
        if let Err(why) = &server {
            sup.say(why);
        }
        for warning in formation::collision_warnings(&plan) {
            sup.say(&warning);
        }
        sup.spawn_all(plan);
        let status = sup
            .run(&mut signals, failed_rx, closed_rx, control_rx)
            .await;
        Ok::<_, Error>((status, writer))
    })?;
    // Dropping the runtime drops any relay still waiting on a pipe, and with it
    // the last handle on the writer, which then finishes what is queued.
    drop(runtime);
    writer.finish(STDOUT_STALL);
    Ok(status)
}

struct Supervisor<'a> {
    app: &'a App,
    timeout: Duration,
    split_stderr: bool,
    /// Types that run on a pty.
    tty: Types,
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
    policy: Policy,
    /// The first non-zero status among instances allowed to die.
    first_failure: Option<i32>,
}

impl<'a> Supervisor<'a> {
    fn new(
        app: &'a App,
        args: &StartArgs,
        policy: Policy,
        tty: Types,
        style: Arc<Style>,
        sink: Sink,
        closed_tx: UnboundedSender<usize>,
    ) -> Self {
        Supervisor {
            app,
            timeout: args.timeout,
            split_stderr: args.output.log_format == LogFormat::Json,
            tty,
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
            policy,
            first_failure: None,
        }
    }

    /// Prints one of ganger's own lines.
    fn say(&mut self, message: &str) {
        if self.stdout_broken {
            return;
        }
        self.sink.say(&mut self.system, message);
    }

    /// Spawns every instance before any output is awaited.
    fn spawn_all(&mut self, plan: Vec<Instance>) {
        for instance in plan {
            self.procs.push(Proc::new(instance));
        }
        for index in 0..self.procs.len() {
            if self.phase != Phase::Running {
                break;
            }
            self.launch(index);
        }
    }

    /// Starts (or starts again) instance `index`, with its PORT and PS.
    fn launch(&mut self, index: usize) {
        self.flush_exit_note(index);
        let instance = &self.procs[index].instance;
        let ps = instance.ps();
        let position = instance.position;
        // `scale` may bring a longer name (web.10): the column widens for all.
        self.style.fit(&ps);
        let env = self.app.env.for_child(
            &self.app.root,
            &[("PORT", instance.port.to_string()), ("PS", ps.clone())],
        );
        let streams = if self.tty.contains(&instance.name) {
            // Measured at each start: the terminal or the name column may have changed.
            Streams::Tty(tty::child_size(prefix_width(&self.style)))
        } else if self.split_stderr {
            Streams::Split
        } else {
            Streams::Shared
        };
        let on_tty = matches!(streams, Streams::Tty(_));
        let spawned = match spawn::spawn(&instance.command, &env, &self.app.root, streams) {
            Ok(spawned) => spawned,
            Err(e) => {
                self.say(&format!("cannot start {ps}: {e}"));
                self.procs[index].state = ProcState::Exited(Exit::Code(1));
                if self.phase == Phase::Running {
                    self.status = Some(1);
                    self.begin_stop();
                }
                return;
            }
        };
        let streams = [
            (Some(spawned.stdout), Stream::Stdout),
            (spawned.stderr, Stream::Stderr),
        ];
        for (fd, stream) in streams {
            let Some(fd) = fd else { continue };
            let format = LineFormat::new(Arc::clone(&self.style), &ps, Some(position), stream);
            let format = if on_tty { format.for_tty() } else { format };
            tokio::spawn(relay::relay(
                fd,
                format,
                self.sink.clone(),
                index,
                self.closed_tx.clone(),
            ));
            self.procs[index].open_streams += 1;
        }
        self.by_pid.insert(spawned.pid, index);
        if let Some(keeper) = &mut self.keeper {
            keeper.watch(spawned.pid);
        }
        let proc = &mut self.procs[index];
        proc.pid = Some(spawned.pid);
        proc.pty = spawned.pty;
        proc.state = ProcState::Running {
            since: Instant::now(),
        };
        self.say(&format!("{ps} started with pid {}", spawned.pid));
    }

    async fn run(
        &mut self,
        signals: &mut Signals,
        mut failed_rx: UnboundedReceiver<output::WriteFailed>,
        mut closed_rx: UnboundedReceiver<usize>,
        mut control_rx: UnboundedReceiver<control::Envelope>,
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
                    SignalEvent::Resize => self.resize(),
                },
                Some(e) = failed_rx.recv() => self.on_stdout_failed(output::failure_status(&e)),
                Some((request, reply)) = control_rx.recv() => {
                    let answer = self.on_request(request);
                    let _ = reply.send(answer);
                }
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
                    .all(|p| !p.is_live() && p.open_streams == 0)
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
        let restarts = self.procs.iter().filter_map(|p| match p.state {
            ProcState::BackingOff { until, .. } if self.phase == Phase::Running => Some(until),
            ProcState::Stopping { deadline, .. } if self.phase == Phase::Running => Some(deadline),
            _ => None,
        });
        self.procs
            .iter()
            .filter_map(|p| p.exit_note.as_ref().map(|(_, by)| *by))
            .chain(restarts)
            .chain(phase)
            .min()
    }

    fn on_child(&mut self) {
        for (pid, exit) in reaper::reap() {
            let Some(index) = self.by_pid.remove(&pid) else {
                continue; // an orphan that was reparented to us
            };
            self.on_exit(index, exit);
        }
    }

    /// Instance `index` exited: restart it, let it go, or stop the app.
    fn on_exit(&mut self, index: usize, exit: Exit) {
        let now = Instant::now();
        let running = self.phase == Phase::Running;
        let on_exit = self.policy.on_exit(&self.procs[index].instance.name);
        let proc = &mut self.procs[index];
        let ps = proc.instance.ps();
        let mut note = format!("{ps} {}", exit.describe());
        if let (true, ProcState::Stopping { next, .. }) = (running, proc.state) {
            // A stop a client asked for: the app goes on.
            proc.state = match next {
                AfterStop::Start => ProcState::Exited(exit),
                AfterStop::Stay => ProcState::Stopped,
                AfterStop::Remove => ProcState::Removed,
            };
            proc.exit_note = Some((note, now + LINGER));
            if proc.open_streams == 0 || next == AfterStop::Start {
                self.flush_exit_note(index);
            }
            if next == AfterStop::Start {
                self.procs[index].restarts += 1;
                self.launch(index);
            }
            return;
        }
        match (running, on_exit) {
            (true, OnExit::Restart) => {
                if let ProcState::Running { since } = proc.state
                    && now.duration_since(since) >= BACKOFF_RESET
                {
                    proc.backoff_step = 0;
                }
                let delay = backoff(proc.backoff_step);
                proc.backoff_step = proc.backoff_step.saturating_add(1);
                proc.restarts += 1;
                proc.state = ProcState::BackingOff {
                    until: now + delay,
                    exit,
                };
                note = format!(
                    "{note}, restarting in {} (restart {})",
                    show_delay(delay),
                    proc.restarts
                );
            }
            (true, OnExit::Allowed) => {
                proc.state = ProcState::Exited(exit);
                if exit.status() != 0 && self.first_failure.is_none() {
                    self.first_failure = Some(exit.status());
                }
            }
            (true, OnExit::StopAll) => {
                proc.state = ProcState::Exited(exit);
                self.status = Some(exit.status());
            }
            (false, _) => proc.state = ProcState::Exited(exit),
        }
        let proc = &mut self.procs[index];
        proc.exit_note = Some((note, now + LINGER));
        if proc.open_streams == 0 {
            self.flush_exit_note(index);
        }
        if running && on_exit == OnExit::StopAll {
            self.begin_stop();
        } else if running
            && self
                .procs
                .iter()
                .filter(|p| p.state != ProcState::Removed)
                .all(|p| matches!(p.state, ProcState::Exited(_)))
        {
            // Every instance was allowed to exit, and has: nothing to stop but
            // what they may have left behind, so no announcement.
            self.status = Some(self.first_failure.unwrap_or(0));
            self.stop_everything();
        }
    }

    fn on_output_closed(&mut self, index: usize) {
        let proc = &mut self.procs[index];
        proc.open_streams = proc.open_streams.saturating_sub(1);
        if proc.open_streams == 0 {
            self.flush_exit_note(index);
        }
    }

    /// Prints instance `index`'s pending exit line, if any.
    fn flush_exit_note(&mut self, index: usize) {
        if let Some((note, _)) = self.procs[index].exit_note.take() {
            self.say(&note);
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

    fn on_stdout_failed(&mut self, status: i32) {
        self.stdout_broken = true;
        if self.phase == Phase::Running {
            self.status = Some(status);
            self.begin_stop();
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        for index in 0..self.procs.len() {
            if self.procs[index]
                .exit_note
                .as_ref()
                .is_some_and(|(_, by)| *by <= now)
            {
                self.flush_exit_note(index);
            }
            if self.phase != Phase::Running {
                continue;
            }
            match self.procs[index].state {
                ProcState::BackingOff { until, .. } if until <= now => self.launch(index),
                ProcState::Stopping { deadline, next } if deadline <= now => {
                    let proc = &mut self.procs[index];
                    proc.state = ProcState::Stopping {
                        deadline: now + KILL_GRACE,
                        next,
                    };
                    if let Some(pid) = proc.pid {
                        let _ = killpg(pid, Signal::SIGKILL);
                    }
                    let ps = proc.instance.ps();
                    self.say(&format!("sending SIGKILL to {ps}"));
                }
                _ => {}
            }
        }
        if let Phase::Stopping { deadline } = self.phase
            && deadline <= now
        {
            self.kill_all();
        }
    }

    fn begin_stop(&mut self) {
        self.say("sending SIGTERM to all processes");
        self.stop_everything();
    }

    /// SIGTERM to everything, SIGKILL at the deadline.
    fn stop_everything(&mut self) {
        // Nothing restarts during a shutdown, and no backoff is waited out.
        for proc in &mut self.procs {
            if let ProcState::BackingOff { exit, .. } = proc.state {
                proc.state = ProcState::Exited(exit);
            }
        }
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
            .filter(|p| {
                matches!(
                    p.state,
                    ProcState::Running { .. } | ProcState::Stopping { .. }
                )
            })
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
        for proc in &self.procs {
            if let (ProcState::Running { .. }, Some(pid)) = (proc.state, proc.pid) {
                let _ = killpg(pid, sig);
            }
        }
    }

    /// ganger's terminal changed size: so do the children's.
    fn resize(&mut self) {
        let size = tty::child_size(prefix_width(&self.style));
        for pty in self.procs.iter().filter_map(|p| p.pty.as_ref()) {
            tty::resize(pty, size);
        }
    }

    /// Answers one control request.
    fn on_request(&mut self, request: Request) -> serde_json::Value {
        if self.phase != Phase::Running && request != Request::Ps {
            return error_reply("the app is stopping");
        }
        let result = match request {
            Request::Ps => {
                let now = Instant::now();
                let mut shown: Vec<&Proc> = self
                    .procs
                    .iter()
                    .filter(|p| p.state != ProcState::Removed)
                    .collect();
                shown.sort_by_key(|p| (p.instance.position, p.instance.number));
                let instances: Vec<_> = shown.iter().map(|p| p.describe(now)).collect();
                return json!({"ok": true, "instances": instances});
            }
            Request::Restart { targets } => self.resolve(&targets).map(|found| {
                let names = self.names(&found);
                for index in found {
                    self.stop_instance(index, AfterStop::Start);
                }
                format!("restarting {names}")
            }),
            Request::Stop { targets } if targets.is_empty() => {
                Err("stop needs a target (a type or an instance)".to_string())
            }
            Request::Stop { targets } => self.resolve(&targets).map(|found| {
                let names = self.names(&found);
                for index in found {
                    self.stop_instance(index, AfterStop::Stay);
                }
                format!("stopping {names}")
            }),
            Request::Scale { spec } => self.scale(&spec),
            Request::Quit => {
                self.say("control: quit, stopping the app");
                self.status = Some(128 + Signal::SIGTERM as i32);
                self.begin_stop();
                return json!({"ok": true, "message": "stopping the app"});
            }
        };
        match result {
            Ok(message) => {
                self.say(&format!("control: {message}"));
                json!({"ok": true, "message": message})
            }
            Err(message) => error_reply(&message),
        }
    }

    fn names(&self, indices: &[usize]) -> String {
        let names: Vec<String> = indices
            .iter()
            .map(|&i| self.procs[i].instance.ps())
            .collect();
        names.join(", ")
    }

    /// The instances that targets (`web`, `web.2`; none = all) name.
    fn resolve(&self, targets: &[String]) -> Result<Vec<usize>, String> {
        let visible = |p: &Proc| p.state != ProcState::Removed;
        if targets.is_empty() {
            return Ok((0..self.procs.len())
                .filter(|&i| visible(&self.procs[i]))
                .collect());
        }
        let mut found = Vec::new();
        for target in targets {
            let matches: Vec<usize> = (0..self.procs.len())
                .filter(|&i| {
                    let p = &self.procs[i];
                    visible(p) && (p.instance.name == *target || p.instance.ps() == *target)
                })
                .collect();
            if matches.is_empty() {
                let name = target.rsplit_once('.').map_or(target.as_str(), |(n, _)| n);
                return Err(if self.app.procfile.find(name).is_some() {
                    let live: Vec<String> = self
                        .procs
                        .iter()
                        .filter(|p| visible(p))
                        .map(|p| p.instance.ps())
                        .collect();
                    format!("no instance `{target}` (instances: {})", live.join(", "))
                } else {
                    crate::error::chain(&unknown_process(name, &self.app.procfile))
                });
            }
            for index in matches {
                if !found.contains(&index) {
                    found.push(index);
                }
            }
        }
        Ok(found)
    }

    /// Stops one instance as a client asked; `next` says what follows.
    fn stop_instance(&mut self, index: usize, next: AfterStop) {
        let now = Instant::now();
        match self.procs[index].state {
            ProcState::Running { .. } => {
                let proc = &mut self.procs[index];
                if let Some(pid) = proc.pid {
                    let _ = killpg(pid, Signal::SIGTERM);
                }
                proc.state = ProcState::Stopping {
                    deadline: now + self.timeout,
                    next,
                };
            }
            ProcState::Stopping { deadline, .. } => {
                self.procs[index].state = ProcState::Stopping { deadline, next };
            }
            ProcState::Pending
            | ProcState::BackingOff { .. }
            | ProcState::Stopped
            | ProcState::Removed
            | ProcState::Exited(_) => match next {
                AfterStop::Start => self.launch(index),
                AfterStop::Stay => self.procs[index].state = ProcState::Stopped,
                AfterStop::Remove => self.procs[index].state = ProcState::Removed,
            },
        }
    }

    /// `scale web=3,worker=1`: starts new instances on the ports `start` would
    /// give them, and stops the highest-numbered ones first.
    fn scale(&mut self, spec: &str) -> Result<String, String> {
        let chain = |e: crate::Error| crate::error::chain(&e);
        let formation = Formation::parse(spec).map_err(chain)?;
        formation.check_names(&self.app.procfile).map_err(chain)?;
        let all_named = spec.split(',').any(|item| item.trim().starts_with("all="));
        // Check every port before changing anything.
        let mut wanted = Vec::new();
        for (position, entry) in self.app.procfile.entries.iter().enumerate() {
            if !all_named && !formation.counts.contains_key(&entry.name) {
                continue;
            }
            let count = formation.count(&entry.name);
            let mut ports = Vec::with_capacity(count);
            for number in 1..=count {
                let port = port_for(self.app.base_port, position, number, || {
                    format!("{}.{number}", entry.name)
                })
                .map_err(chain)?;
                ports.push(port);
            }
            wanted.push((position, entry.name.clone(), entry.command.clone(), ports));
        }
        let mut changes = Vec::new();
        for (position, name, command, ports) in wanted {
            let count = ports.len();
            let mut current: Vec<usize> = (0..self.procs.len())
                .filter(|&i| {
                    self.procs[i].instance.name == name && self.procs[i].state != ProcState::Removed
                })
                .collect();
            current.sort_by_key(|&i| self.procs[i].instance.number);
            let before = current.len();
            for (number, port) in (1..=count).zip(ports) {
                if current
                    .iter()
                    .any(|&i| self.procs[i].instance.number == number)
                {
                    continue;
                }
                let existing = self
                    .procs
                    .iter()
                    .position(|p| p.instance.name == name && p.instance.number == number);
                let index = existing.unwrap_or_else(|| {
                    self.procs.push(Proc::new(Instance {
                        name: name.clone(),
                        position,
                        number,
                        port,
                        command: command.clone(),
                    }));
                    self.procs.len() - 1
                });
                self.launch(index);
            }
            for &index in current.iter().rev().take(before.saturating_sub(count)) {
                self.stop_instance(index, AfterStop::Remove);
            }
            changes.push(format!("{name} {before} -> {count}"));
        }
        Ok(format!("scaled {}", changes.join(", ")))
    }

    /// Signals every instance's process group, and every descendant that has
    /// left those groups, exactly once each.
    fn signal_all(&self, sig: Signal) {
        for proc in &self.procs {
            // An instance a client is already stopping has had its SIGTERM.
            let stopping = matches!(proc.state, ProcState::Stopping { .. });
            if let Some(pid) = proc.pid
                && !(stopping && sig == Signal::SIGTERM)
            {
                let _ = killpg(pid, sig);
            }
        }
        for pid in self.descendants() {
            let in_a_group =
                getpgid(Some(pid)).is_ok_and(|pgid| self.procs.iter().any(|p| p.pid == Some(pgid)));
            if !in_a_group {
                let _ = kill(pid, sig);
            }
        }
    }
}
