//! The supervisor's decisions, with no process in sight: events in, effects out.
//!
//! [`Core::handle`] takes what happened (a spawn, an exit, a signal, the end of
//! an output stream, the clock) and returns what to do about it (spawn, signal a
//! group, clear what an exited run left, print a line). The event loop in
//! `mod.rs` does the doing; unit tests drive this with fake events and a fake
//! clock. The stop ladder is in `shutdown.rs`, control requests in
//! `commands.rs`.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::instance::{AfterStop, ExitNote, Instance, State};
pub use super::rules::{Order, Rules};
use crate::formation;
use crate::policy::{BACKOFF_RESET, OnExit, backoff, show_delay};
use crate::procfile::Procfile;
use crate::reaper::Exit;

/// How long an exit line waits for the rest of that instance's output.
pub const LINGER: Duration = Duration::from_millis(250);
/// How long after SIGKILL ganger waits for the last output before it gives up.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Instance `index` was spawned as `pid` with `streams` output streams.
    Spawned { index: usize, pid: Pid, streams: u8 },
    /// Instance `index` could not be spawned.
    SpawnFailed { index: usize, error: String },
    /// The first spawns are all done.
    Booted,
    /// A child was reaped.
    Exited { pid: Pid, exit: Exit },
    /// An output stream of run `run` of instance `index` reached end of file.
    StreamClosed { index: usize, run: u32 },
    /// INT, TERM, HUP: stop the app (a second INT or TERM: kill it).
    Stop(Signal),
    /// USR1, USR2: pass on to every running instance.
    Forward(Signal),
    /// Run `run` of instance `index` became ready (its probe succeeded).
    Ready { index: usize, run: u32 },
    /// Run `run` of instance `index` said `STATUS=text` over the notify socket.
    Status {
        index: usize,
        run: u32,
        text: String,
    },
    /// ganger's own stdout failed; the app stops with this status (143 for a
    /// reader that went away, 1 for an error such as a full disk).
    StdoutFailed(i32),
    /// Time passed.
    Tick,
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Spawn instance `index` (it is in [`State::Pending`]).
    Spawn(usize),
    /// Signal the process group led by `pid`, an instance ganger has not reaped.
    Signal { pid: Pid, sig: Signal },
    /// Signal every descendant outside the groups of living instances.
    SignalStrays(Signal),
    /// Signal what is left of the group of an instance that was reaped, if
    /// anything; `last` means ganger forgets the group afterwards.
    ClearGroup { pgid: Pid, sig: Signal, last: bool },
    /// Start probing instance `index` (in [`State::Starting`]) for readiness.
    Probe(usize),
    /// Stop probing instance `index`: its run ended or is being stopped.
    EndProbe(usize),
    /// Print a `system` line.
    Say(String),
}

/// Where the whole app is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Stop signals sent; what is left at `deadline` is killed.
    Stopping {
        deadline: Instant,
    },
    /// SIGKILL sent; ganger exits at `deadline` even if some output never closed.
    Killing {
        deadline: Instant,
    },
}

/// The state machine of the whole app.
#[derive(Debug)]
pub struct Core {
    pub(super) procfile: Procfile,
    pub(super) base_port: u16,
    pub(super) rules: Rules,
    pub(super) instances: Vec<Instance>,
    pub(super) phase: Phase,
    /// The status ganger exits with, set by whatever started the stop.
    pub(super) status: Option<i32>,
    /// The first non-zero status among instances allowed to exit.
    pub(super) first_failure: Option<i32>,
    /// Still spawning the first instances: a failed spawn stops the app.
    pub(super) booting: bool,
    /// Output streams of every run not yet at end of file.
    pub(super) open_total: usize,
    /// Groups of reaped instances that still had members, and when to kill them.
    pub(super) leftovers: Vec<(Pid, Instant)>,
    pub(super) effects: Vec<Effect>,
}

impl Core {
    /// A core for `plan`, nothing spawned yet.
    #[must_use]
    pub fn new(
        procfile: Procfile,
        base_port: u16,
        rules: Rules,
        plan: Vec<formation::Instance>,
    ) -> Self {
        Core {
            procfile,
            base_port,
            rules,
            instances: plan.into_iter().map(Instance::new).collect(),
            phase: Phase::Running,
            status: None,
            first_failure: None,
            booting: true,
            open_total: 0,
            leftovers: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// The first effects: spawn every instance that need not wait; the rest
    /// wait for the release phase or for what they start after.
    pub fn boot(&mut self) -> Vec<Effect> {
        for index in 0..self.instances.len() {
            let name = self.instances[index].spec.name.clone();
            self.instances[index].probed = self.rules.probe(&name).is_some();
            if self.blocked(index) {
                self.instances[index].state = State::Waiting;
            } else {
                self.effects.push(Effect::Spawn(index));
            }
        }
        std::mem::take(&mut self.effects)
    }

    #[must_use]
    pub fn instance(&self, index: usize) -> &Instance {
        &self.instances[index]
    }

    #[must_use]
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The exit status so far (0 when nothing set one).
    #[must_use]
    pub fn status(&self) -> i32 {
        self.status.unwrap_or(0)
    }

    /// Whether a queued spawn of `index` should still happen.
    #[must_use]
    pub fn wants_spawn(&self, index: usize) -> bool {
        self.phase == Phase::Running
            && self
                .instances
                .get(index)
                .is_some_and(|i| i.state == State::Pending)
    }

    /// The process groups of instances ganger has not reaped.
    #[must_use]
    pub fn live_groups(&self) -> Vec<Pid> {
        self.instances
            .iter()
            .filter_map(|i| i.state.pid())
            .collect()
    }

    /// Whether the app is stopping and nothing of the instances is left: no
    /// process, no open output. (The event loop also waits for strays.)
    #[must_use]
    pub fn quiet(&self) -> bool {
        self.phase != Phase::Running
            && self.open_total == 0
            && self.instances.iter().all(|i| i.state.pid().is_none())
    }

    /// The earliest moment something must happen without an event.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Running => None,
            Phase::Stopping { deadline } | Phase::Killing { deadline } => Some(deadline),
        };
        let running = self.phase == Phase::Running;
        let states = self.instances.iter().filter_map(|i| match i.state {
            State::Backoff { until, .. } if running => Some(until),
            State::Starting { deadline, .. } if running => Some(deadline),
            State::Stopping {
                deadline,
                killed: false,
                ..
            } => Some(deadline),
            _ => None,
        });
        let notes = self
            .instances
            .iter()
            .filter_map(|i| i.exit_note.as_ref().map(|n| n.by));
        let leftovers = self.leftovers.iter().map(|(_, at)| *at);
        states.chain(notes).chain(leftovers).chain(phase).min()
    }

    /// Prints one of ganger's own lines.
    pub(super) fn say(&mut self, text: String) {
        self.effects.push(Effect::Say(text));
    }

    /// Takes one event and returns what to do about it.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        match event {
            Event::Spawned {
                index,
                pid,
                streams,
            } => self.on_spawned(index, pid, streams, now),
            Event::SpawnFailed { index, error } => self.on_spawn_failed(index, &error, now),
            Event::Booted => self.booting = false,
            Event::Exited { pid, exit } => self.on_exit(pid, exit, now),
            Event::StreamClosed { index, run } => self.on_stream_closed(index, run, now),
            Event::Stop(sig) => self.on_stop_signal(sig, now),
            Event::Forward(sig) => self.forward(sig),
            Event::StdoutFailed(status) => {
                if self.phase == Phase::Running {
                    self.status = Some(status);
                    self.begin_stop(now, true);
                }
            }
            Event::Ready { index, run } => self.on_ready(index, run, now),
            Event::Status { index, run, text } => {
                if let Some(instance) = self.instances.get_mut(index)
                    && instance.run == run
                {
                    instance.status = Some(text);
                }
            }
            Event::Tick => self.on_tick(now),
        }
        std::mem::take(&mut self.effects)
    }

    fn on_spawned(&mut self, index: usize, pid: Pid, streams: u8, now: Instant) {
        let Some(instance) = self.instances.get_mut(index) else {
            return;
        };
        instance.run += 1;
        instance.open_streams = streams;
        instance.status = None;
        self.open_total += usize::from(streams);
        let ps = instance.ps();
        let probe = self.rules.probe(&instance.spec.name).cloned();
        instance.state = match &probe {
            Some((_, timeout)) => State::Starting {
                pid,
                since: now,
                deadline: now + *timeout,
            },
            None => State::Running { pid, since: now },
        };
        self.say(format!("{ps} started with pid {pid}"));
        if probe.is_some() {
            self.effects.push(Effect::Probe(index));
        }
        if self.phase == Phase::Running {
            if probe.is_none() {
                self.release_waiting();
            }
        } else {
            // A stop that began while this spawn was under way reaches it too.
            self.stop_one(index, now, AfterStop::Stay);
        }
    }

    fn on_spawn_failed(&mut self, index: usize, error: &str, now: Instant) {
        let Some(instance) = self.instances.get_mut(index) else {
            return;
        };
        instance.state = State::Failed;
        let ps = instance.ps();
        self.say(format!("cannot start {ps}: {error}"));
        if self.booting && self.phase == Phase::Running {
            self.status = Some(1);
            self.begin_stop(now, true);
        }
    }

    fn on_stream_closed(&mut self, index: usize, run: u32, now: Instant) {
        self.open_total = self.open_total.saturating_sub(1);
        let Some(instance) = self.instances.get_mut(index) else {
            return;
        };
        if instance.run != run {
            return; // an earlier run's stream: it no longer holds an exit line
        }
        instance.open_streams = instance.open_streams.saturating_sub(1);
        if instance.open_streams == 0 {
            self.flush_exit_note(index, now);
        }
    }

    /// Prints instance `index`'s pending exit line, if any, after clearing
    /// what its run left in its process group.
    pub(super) fn flush_exit_note(&mut self, index: usize, now: Instant) {
        let Some(note) = self.instances[index].exit_note.take() else {
            return;
        };
        self.clear_group(note.group, now);
        self.say(note.text);
    }

    /// The run that led group `pgid` was reaped: its other members, if any,
    /// get the type's stop signal now and SIGKILL after the timeout. During a
    /// shutdown the stop ladder reaches them as strays instead.
    fn clear_group(&mut self, pgid: Pid, now: Instant) {
        if self.phase != Phase::Running || self.live_groups().contains(&pgid) {
            return;
        }
        self.effects.push(Effect::ClearGroup {
            pgid,
            sig: Signal::SIGTERM,
            last: false,
        });
        self.leftovers
            .push((pgid, now + self.rules.longest_timeout()));
    }

    fn index_of(&self, pid: Pid) -> Option<usize> {
        self.instances
            .iter()
            .position(|i| i.state.pid() == Some(pid))
    }

    /// A child was reaped: if it was an instance, restart it, let it go, or
    /// stop the app.
    fn on_exit(&mut self, pid: Pid, exit: Exit, now: Instant) {
        let Some(index) = self.index_of(pid) else {
            return; // an orphan that was reparented to ganger
        };
        let running = self.phase == Phase::Running;
        let on_exit = self.rules.on_exit(&self.instances[index].spec.name, exit);
        let instance = &mut self.instances[index];
        let mut text = format!("{} {}", instance.ps(), exit.describe());
        let previous = instance.state;
        instance.state = State::Exited(exit);
        if matches!(previous, State::Starting { .. }) {
            self.effects.push(Effect::EndProbe(index));
        }
        if !running {
            // A dependency's stop waits for this one's exit.
            self.send_due_stops();
        }
        let instance = &mut self.instances[index];
        if let (true, State::Stopping { then, .. }) = (running, previous) {
            // A stop a client asked for: the app goes on.
            instance.state = match then {
                AfterStop::Start => State::Pending,
                AfterStop::Stay => State::Stopped,
                AfterStop::Remove => State::Removed,
            };
            self.hold_exit_note(index, text, pid, now);
            if then == AfterStop::Start {
                self.flush_exit_note(index, now);
                self.instances[index].restarts += 1;
                self.effects.push(Effect::Spawn(index));
            }
            return;
        }
        match (running, on_exit) {
            (true, OnExit::Restart) => {
                if let State::Running { since, .. } | State::Starting { since, .. } = previous
                    && now.duration_since(since) >= BACKOFF_RESET
                {
                    instance.backoff_step = 0;
                }
                let delay = backoff(instance.backoff_step);
                instance.backoff_step = instance.backoff_step.saturating_add(1);
                instance.restarts += 1;
                instance.state = State::Backoff {
                    until: now + delay,
                    exit,
                };
                text = format!(
                    "{text}, restarting in {} (restart {})",
                    show_delay(delay),
                    instance.restarts
                );
            }
            (true, OnExit::Allowed) => {
                if exit.status() != 0 && self.first_failure.is_none() {
                    self.first_failure = Some(exit.status());
                }
            }
            (true, OnExit::StopAll) => self.status = Some(exit.status()),
            (false, _) => {}
        }
        self.hold_exit_note(index, text, pid, now);
        if running && on_exit == OnExit::StopAll {
            self.begin_stop(now, true);
        } else if running && self.release_waiting() {
            // Something that waited for this exit has started.
        } else if running && self.all_exited() {
            // Every instance was allowed to exit, and has: nothing to stop but
            // what they may have left behind, so no announcement.
            self.status = Some(self.first_failure.unwrap_or(0));
            self.begin_stop(now, false);
        }
    }

    /// Holds the exit line until the run's output is drained (or [`LINGER`]).
    fn hold_exit_note(&mut self, index: usize, text: String, group: Pid, now: Instant) {
        self.instances[index].exit_note = Some(ExitNote {
            text,
            by: now + LINGER,
            group,
        });
        if self.instances[index].open_streams == 0 {
            self.flush_exit_note(index, now);
        }
    }

    /// Whether every visible instance has exited for good (or never started).
    fn all_exited(&self) -> bool {
        self.instances
            .iter()
            .filter(|i| i.is_visible())
            .all(|i| matches!(i.state, State::Exited(_) | State::Failed))
    }

    fn forward(&mut self, sig: Signal) {
        self.say(format!("forwarding {} to all processes", sig.as_str()));
        for instance in &self.instances {
            if let State::Running { pid, .. } | State::Starting { pid, .. } = instance.state {
                self.effects.push(Effect::Signal { pid, sig });
            }
        }
    }

    fn on_tick(&mut self, now: Instant) {
        for index in 0..self.instances.len() {
            if self.instances[index]
                .exit_note
                .as_ref()
                .is_some_and(|n| n.by <= now)
            {
                self.flush_exit_note(index, now);
            }
            if self.phase == Phase::Running
                && let State::Backoff { until, .. } = self.instances[index].state
                && until <= now
            {
                self.instances[index].state = State::Pending;
                self.effects.push(Effect::Spawn(index));
            }
        }
        let (due, kept): (Vec<_>, Vec<_>) = self.leftovers.iter().partition(|(_, at)| *at <= now);
        self.leftovers = kept;
        for (pgid, _) in due {
            if !self.live_groups().contains(&pgid) {
                self.effects.push(Effect::ClearGroup {
                    pgid,
                    sig: Signal::SIGKILL,
                    last: true,
                });
            }
        }
        self.ready_timeouts(now);
        self.kill_overdue(now);
    }
}
