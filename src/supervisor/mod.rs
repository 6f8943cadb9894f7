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
pub mod shutdown;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use self::core::{Core, Effect, Event, Rules};
use crate::cli::{LogFormat, StartArgs};
use crate::config::App;
use crate::control::{self, Reply, Request};
use crate::error::{Error, Result};
use crate::formation;
use crate::keeper::{Keeper, SingleThreaded};
use crate::os;
use crate::output::{self, LineFormat, Sink, Stream, Style};
use crate::policy::{Policy, Types};
use crate::proctree::{self, Descendant};
use crate::reaper;
use crate::relay;
use crate::signals::{SignalEvent, Signals};
use crate::spawn::{Spawner, Streams};
use crate::tty;

/// How long ganger, done, waits on a stdout nobody reads before it exits anyway.
const STDOUT_STALL: Duration = Duration::from_secs(5);
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
    let policy = Policy::new(&args.policy, &app.procfile)?;
    let tty = Types::parse(args.tty.as_deref().unwrap_or_default(), &app.procfile)?;
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
        let width = plan.iter().map(|i| i.ps().len()).max().unwrap_or(0);
        let style = Arc::new(Style::new(&args.output, width));
        let (closed_tx, closed_rx) = unbounded_channel();
        let (control_tx, control_rx) = unbounded_channel();
        // Bound before anything starts: a second `start` fails here, not halfway.
        let server = control::listen(socket, explicit_socket, control_tx)?;
        let warnings = formation::collision_warnings(&plan);
        let rules = Rules {
            policy,
            timeout: args.timeout,
        };
        let core = Core::new(app.procfile.clone(), app.base_port, rules, plan);
        let mut edge = Edge {
            app,
            core,
            tty,
            split_stderr: args.output.log_format == LogFormat::Json,
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
            }
        }
    }

    /// Spawns what is queued, at most `limit` of it; returns the reasons any failed.
    fn spawn_queued(&mut self, limit: usize) -> Vec<String> {
        let mut failures = Vec::new();
        for _ in 0..limit {
            let Some(index) = self.queue.pop_front() else {
                break;
            };
            if !self.core.wants_spawn(index) {
                continue;
            }
            let event = match self.spawn(index) {
                Ok(event) => event,
                Err(error) => {
                    failures.push(format!(
                        "cannot start {}: {error}",
                        self.core.instance(index).ps()
                    ));
                    Event::SpawnFailed { index, error }
                }
            };
            self.handle(event);
        }
        failures
    }

    /// Spawns instance `index` and starts relaying its output.
    fn spawn(&mut self, index: usize) -> std::result::Result<Event, String> {
        let spec = &self.core.instance(index).spec;
        let ps = spec.ps();
        // `scale` may bring a longer name (web.10): the column widens for all.
        self.style.fit(&ps);
        let streams = if self.tty.contains(&spec.name) {
            // Measured at each start: the terminal or the name column may have changed.
            Streams::Tty(tty::child_size(prefix_width(&self.style)))
        } else if self.split_stderr {
            Streams::Split
        } else {
            Streams::Shared
        };
        let register = self.keeper.as_ref().map(Keeper::register_fd);
        if self.spawner.is_none() {
            // What every instance shares is prepared once, at the first spawn.
            let env = self.app.env.for_child(&self.app.root, &[]);
            self.spawner = Some(Spawner::new(env, &self.app.root).map_err(|e| e.to_string())?);
        }
        let spawned = (self.spawner.as_mut().ok_or("no spawner")?)
            .spawn(&spec.command, spec.port, &ps, streams, register)
            .map_err(|e| e.to_string())?;
        let position = spec.position;
        let run = self.core.instance(index).run + 1;
        let on_tty = matches!(streams, Streams::Tty(_));
        let mut count = 0u8;
        for (fd, stream) in [
            (Some(spawned.stdout), Stream::Stdout),
            (spawned.stderr, Stream::Stderr),
        ] {
            let Some(fd) = fd else { continue };
            let format = LineFormat::new(Arc::clone(&self.style), &ps, Some(position), stream);
            let format = if on_tty { format.for_tty() } else { format };
            let token = self.next_token;
            self.next_token += 1;
            self.streams.insert(token, (index, run));
            tokio::spawn(relay::relay(
                fd,
                format,
                self.sink.clone(),
                token,
                self.closed_tx.clone(),
            ));
            count += 1;
        }
        match spawned.pty {
            Some(pty) => self.ptys.insert(index, pty),
            None => self.ptys.remove(&index),
        };
        Ok(Event::Spawned {
            index,
            pid: spawned.pid,
            streams: count,
        })
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
                "sending SIGKILL to processes that left their group: {}",
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
            self.handle(Event::Exited { pid, exit });
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
