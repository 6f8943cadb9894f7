//! `ganger start`: spawn every instance, relay their output, and stop them all.
//!
//! The decisions live in [`core::Core`], a state machine with no process in
//! sight; this file is the edge around it. One loop turns what the OS reports
//! (child exits, signals, end of output, a failed stdout, control requests, the
//! clock) into events, hands them to the core, and carries out the effects it
//! returns: spawning, signalling, relaying, printing. Spawns are done in small
//! batches between which signals are looked at, so a stop during the start-up
//! of thousands of instances is acted on at once.

pub mod commands;
pub mod core;
pub mod instance;
mod launch;
pub mod order;
pub mod probes;
pub mod rules;
pub mod shutdown;
mod taps;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use self::core::{Core, Effect, Event, Order, Rules};
use self::probes::Probes;
use crate::config::App;
use crate::control::{self, Reply, Request};
use crate::error::{Error, Result};
use crate::formation;
use crate::interactive;
use crate::keeper::{Keeper, SingleThreaded};
use crate::os;
use crate::output::{self, LineFormat, Sink, Stream, Style};
use crate::policy::{Policy, Types};
use crate::process_type::{READY_TIMEOUT, Readiness};
use crate::proctree::{self, Descendant};
use crate::reaper;
use crate::signals::{SignalEvent, Signals};
use crate::spawn::Spawner;
use crate::taps::Registry;
use crate::tty;

/// How long ganger, done, waits on a stdout nobody reads before it exits anyway.
const STDOUT_STALL: Duration = Duration::from_secs(5);
/// The Procfile entry that runs first, alone (Heroku's release phase).
pub const RELEASE: &str = "release";
/// Instances spawned between two looks at the signals.
const SPAWN_BATCH: usize = 16;

/// Cells the prefix column takes: `HH:MM:SS name | `.
fn prefix_width(style: &Style) -> usize {
    let clock = if style.timestamp {
        "HH:MM:SS ".len()
    } else {
        0
    };
    clock + style.width() + " | ".len()
}

/// What `start` is asked to do, resolved from flags and settings.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent switches, each from its own flag"
)]
pub struct Options {
    /// The types named on the command line (none: all).
    pub only: Vec<String>,
    pub policy: Policy,
    /// Types that run on a pty.
    pub tty: Types,
    pub timestamp: bool,
    pub color: bool,
    pub json: bool,
    /// The grace before SIGKILL for types without their own.
    pub timeout: Duration,
    /// The control socket, and whether the user named it (then it must work).
    pub socket: PathBuf,
    pub explicit_socket: bool,
    /// Run the Procfile's `release` entry first (Heroku's release phase).
    pub release: bool,
    /// The instance ganger's stdin goes to (`start -i`).
    pub interactive: Option<String>,
    /// Lines of output kept per instance for `ganger logs`.
    pub log_lines: usize,
}

/// What start-up waits for, from the per-type settings.
fn order(app: &App, plan: &[formation::Instance], release: bool) -> Order {
    let first = (release && plan.iter().any(|i| i.name == RELEASE)).then(|| RELEASE.to_string());
    let mut order = Order {
        first,
        ..Order::default()
    };
    for (name, settings) in &app.processes {
        if !settings.after.is_empty() {
            order.after.insert(name.clone(), settings.after.clone());
        }
        if !matches!(settings.ready, Readiness::Started) {
            let timeout = settings.ready_timeout.unwrap_or(READY_TIMEOUT);
            order
                .probed
                .insert(name.clone(), (settings.ready.describe(), timeout));
        }
    }
    order
}

/// Starts the app and supervises it until it stops; returns the exit status.
pub fn start(app: &App, options: &Options) -> Result<i32> {
    let mut plan = app.plan(&options.only)?;
    if !options.release && !options.only.iter().any(|n| n == RELEASE) {
        // Skipped (`--no-release`): not run at all, rather than run as any type.
        plan.retain(|i| i.name != RELEASE);
    }
    if plan.is_empty() {
        return Err(Error::NothingToStart);
    }
    let Options {
        policy,
        tty,
        timeout,
        socket,
        explicit_socket,
        ..
    } = options.clone();
    os::raise_nofile_limit();
    // Best effort: without it, orphans go to init instead of being reaped here.
    let _ = os::become_subreaper();
    // Forked before the runtime and the writer thread exist; without it a
    // SIGKILLed ganger would leave the other members of its groups behind.
    let keeper = SingleThreaded::check().and_then(|single| Keeper::start(&single).ok());
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
        // Every instance name, and `system`.
        let width = plan
            .iter()
            .map(|i| i.ps().len())
            .fold("system".len(), usize::max);
        let style = Arc::new(Style::with(
            options.timestamp,
            options.color,
            options.json,
            width,
        ));
        let (closed_tx, closed_rx) = unbounded_channel();
        let (control_tx, control_rx) = unbounded_channel();
        // Bound before anything starts: a second `start` fails here, not halfway.
        let taps = Arc::new(Registry::new(options.log_lines));
        let server = control::listen(&socket, explicit_socket, control_tx, Arc::clone(&taps))?;
        if let Some(instance) = &options.interactive {
            interactive::forward(Arc::clone(&taps), instance.clone())
                .map_err(|e| Error::os("cannot start reading stdin", e))?;
        }
        let warnings = formation::collision_warnings(&plan);
        let order = order(app, &plan, options.release);
        let notify = app
            .processes
            .values()
            .any(|s| matches!(s.ready, Readiness::Notify));
        let (ready_tx, ready_rx) = unbounded_channel();
        let probes = Probes::new(ready_tx, notify)
            .map_err(|e| Error::os("cannot open the notify socket", e))?;
        let rules = Rules {
            policy,
            timeout,
            order,
        };
        let core = Core::new(app.procfile.clone(), app.base_port, rules, plan);
        let mut edge = Edge {
            app,
            core,
            tty,
            split_stderr: options.json,
            system: LineFormat::new(Arc::clone(&style), "system", None, Stream::System),
            style,
            sink,
            stdout_broken: false,
            keeper,
            closed_tx,
            streams: HashMap::new(),
            next_token: 0,
            ptys: HashMap::new(),
            queue: VecDeque::new(),
            probes,
            taps,
            spawner: None,
        };
        if let Err(why) = &server {
            edge.say(why);
        }
        for warning in warnings {
            edge.say(&warning);
        }
        let effects = edge.core.boot();
        edge.apply(effects);
        let status = edge
            .run(&mut signals, failed_rx, closed_rx, control_rx, ready_rx)
            .await;
        Ok::<_, Error>((status, writer))
    })?;
    // Dropping the runtime drops any relay still waiting on a pipe, and with it
    // the last handle on the writer, which then finishes what is queued.
    drop(runtime);
    writer.finish(STDOUT_STALL);
    Ok(status)
}

/// The edge: carries out the core's effects on real processes.
struct Edge<'a> {
    app: &'a App,
    core: Core,
    /// Types that run on a pty.
    tty: Types,
    split_stderr: bool,
    style: Arc<Style>,
    sink: Sink,
    system: LineFormat,
    stdout_broken: bool,
    keeper: Option<Keeper>,
    closed_tx: UnboundedSender<usize>,
    /// Output stream token -> (instance, run).
    streams: HashMap<usize, (usize, u32)>,
    next_token: usize,
    /// Instance -> the pty master of its current run (terminal mode).
    ptys: HashMap<usize, OwnedFd>,
    /// Spawns not done yet.
    queue: VecDeque<usize>,
    probes: Probes,
    /// What `logs` and `attach` see of each instance.
    taps: Arc<Registry>,
    /// Made at the first spawn.
    spawner: Option<Spawner>,
}

impl Edge<'_> {
    /// Prints one of ganger's own lines.
    fn say(&mut self, message: &str) {
        if self.stdout_broken {
            return;
        }
        self.sink.say(&mut self.system, message);
    }

    fn handle(&mut self, event: Event) {
        let effects = self.core.handle(event, Instant::now());
        self.apply(effects);
    }

    /// Carries out `effects`; spawns are queued, in order.
    fn apply(&mut self, effects: Vec<Effect>) {
        // One walk of /proc serves every SignalStrays of a batch (a stop asks
        // for TERM, then CONT): with a thousand instances a walk costs ~20 ms.
        let mut strays: Option<Vec<Descendant>> = None;
        for effect in effects {
            match effect {
                Effect::Spawn(index) => self.queue.push_back(index),
                Effect::Signal { pid, sig } => {
                    // The core names only instances it has not seen reaped, so
                    // `pid` still leads its group.
                    let _ = killpg(pid, sig);
                }
                Effect::SignalStrays(sig) => {
                    let found = strays.get_or_insert_with(|| self.descendants());
                    self.signal_strays(found, sig);
                }
                Effect::ClearGroup { pgid, sig, last } => self.clear_group(pgid, sig, last),
                Effect::Say(text) => self.say(&text),
                Effect::Probe(index) => self.probe(index),
                Effect::EndProbe(index) => self.probes.end(index),
            }
        }
    }

    /// Every living descendant but the keeper.
    fn descendants(&self) -> Vec<Descendant> {
        proctree::descendants(self.keeper.as_ref().map(Keeper::pid))
    }

    /// Signals those of `descendants` outside the groups of living instances (those
    /// that called setsid or changed group); names them when it kills them.
    fn signal_strays(&mut self, descendants: &[Descendant], sig: Signal) {
        let live: HashSet<Pid> = self.core.live_groups().into_iter().collect();
        let mut killed = Vec::new();
        for stray in descendants {
            if !live.contains(&stray.pgid) && proctree::signal(stray, sig) && sig == Signal::SIGKILL
            {
                killed.push(format!("{} ({})", stray.pid, stray.name));
            }
        }
        if !killed.is_empty() {
            self.say(&format!(
                "sending SIGKILL to processes left behind: {}",
                killed.join(", ")
            ));
        }
    }

    /// Signals what is left of group `pgid`, whose leader was reaped. The group
    /// is forgotten (by the keeper too) once it is empty or `last` is set.
    fn clear_group(&mut self, pgid: Pid, sig: Signal, last: bool) {
        let members: Vec<Descendant> = self
            .descendants()
            .into_iter()
            .filter(|d| d.pgid == pgid)
            .collect();
        for member in &members {
            if proctree::signal(member, sig) && sig != Signal::SIGKILL {
                let _ = proctree::signal(member, Signal::SIGCONT);
            }
        }
        if (members.is_empty() || last)
            && let Some(keeper) = &mut self.keeper
        {
            keeper.forget(pgid);
        }
    }

    fn on_children(&mut self) {
        for (pid, exit) in reaper::reap() {
            if !self.probes.take_exit(pid, exit) {
                self.handle(Event::Exited { pid, exit });
            }
        }
    }

    fn on_request(&mut self, request: Request) -> Reply {
        let (mut reply, effects) = self.core.command(request, Instant::now());
        self.apply(effects);
        // What a request starts is started before it is answered, so that a
        // failure reaches the client that asked.
        let mut failures = Vec::new();
        while !self.queue.is_empty() {
            failures.extend(self.spawn_queued(self.queue.len()));
        }
        if !failures.is_empty() {
            reply = Reply::failed(failures.join("; "));
        }
        if let Some(rows) = &mut reply.instances {
            for row in rows.iter_mut().filter(|r| r.state == "running") {
                if row
                    .pid
                    .is_some_and(|pid| proctree::is_stopped(Pid::from_raw(pid)))
                {
                    row.state = "stopped by signal".to_string();
                }
            }
        }
        reply
    }

    fn resize(&mut self) {
        let size = tty::child_size(prefix_width(&self.style));
        for pty in self.ptys.values() {
            tty::resize(pty, size);
        }
    }

    async fn run(
        &mut self,
        signals: &mut Signals,
        mut failed_rx: UnboundedReceiver<output::WriteFailed>,
        mut closed_rx: UnboundedReceiver<usize>,
        mut control_rx: UnboundedReceiver<control::Envelope>,
        mut ready_rx: UnboundedReceiver<Event>,
    ) -> i32 {
        let mut booting = true;
        loop {
            if booting && self.queue.is_empty() {
                booting = false;
                self.handle(Event::Booted);
            }
            let now = Instant::now();
            let out_of_time =
                matches!(self.core.phase(), core::Phase::Killing { deadline } if now >= deadline);
            if out_of_time || (self.core.quiet() && self.descendants().is_empty()) {
                break;
            }
            let wake = self
                .core
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let spawning = !self.queue.is_empty();
            tokio::select! {
                biased;
                event = signals.recv() => match event {
                    SignalEvent::Child => self.on_children(),
                    SignalEvent::Stop(sig) => self.handle(Event::Stop(sig)),
                    SignalEvent::Forward(sig) => self.handle(Event::Forward(sig)),
                    SignalEvent::Resize => self.resize(),
                },
                Some(token) = closed_rx.recv() => {
                    if let Some((index, run)) = self.streams.remove(&token) {
                        self.handle(Event::StreamClosed { index, run });
                    }
                }
                Some(e) = failed_rx.recv() => {
                    self.stdout_broken = true;
                    self.handle(Event::StdoutFailed(output::failure_status(&e)));
                }
                Some(event) = ready_rx.recv() => self.handle(event),
                Some((request, reply)) = control_rx.recv() => {
                    let answer = self.on_request(request);
                    let _ = reply.send(answer);
                }
                () = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {
                    self.handle(Event::Tick);
                }
                () = std::future::ready(()), if spawning => {
                    self.spawn_queued(SPAWN_BATCH);
                    // Lets the runtime look at the signal pipe before the next batch.
                    tokio::task::yield_now().await;
                }
            }
        }
        if let Some(keeper) = self.keeper.take() {
            keeper.release();
        }
        // Nothing ganger started may outlive it.
        for descendant in self.descendants() {
            let _ = proctree::signal(&descendant, Signal::SIGKILL);
        }
        self.core.status()
    }
}
