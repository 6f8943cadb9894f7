//! The core driven by fake events and a fake clock: no process is spawned.

mod lifecycle;
mod order;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::core::{Core, Effect, Event, Order, Rules};
use crate::control::{Reply, Request};
use crate::formation::{self, Formation};
use crate::policy::{Policy, Types};
use crate::reaper::Exit;

pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// A test bench: a core, the clock, and the pids handed out so far.
pub(super) struct Bench {
    pub(super) core: Core,
    pub(super) now: Instant,
    next_pid: i32,
}

pub(super) fn bench(procfile: &str, formation: &str, restart: &[&str], can_die: &[&str]) -> Bench {
    bench_with(procfile, formation, restart, can_die, Order::default(), &[])
}

/// A bench whose start-up follows `order`.
pub(super) fn bench_with(
    procfile: &str,
    formation: &str,
    restart: &[&str],
    can_die: &[&str],
    order: Order,
    oneshot: &[&str],
) -> Bench {
    let procfile = crate::procfile::parse(Path::new("Procfile"), procfile).expect("procfile");
    let formation = Formation::parse(formation).expect("formation");
    let plan = formation::plan(&procfile, &formation, 5000, &[]).expect("plan");
    let names = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let policy = Policy {
        restart: Types::parse(&names(restart), &procfile).expect("restart"),
        can_die: Types::parse(&names(can_die), &procfile).expect("can-die"),
        types: oneshot
            .iter()
            .map(|t| {
                let rules = crate::policy::TypeRules {
                    oneshot: true,
                    ..crate::policy::TypeRules::default()
                };
                ((*t).to_string(), rules)
            })
            .collect(),
    };
    let rules = Rules {
        policy,
        timeout: TIMEOUT,
        order,
    };
    let mut bench = Bench {
        core: Core::new(procfile, 5000, rules, plan),
        now: Instant::now(),
        next_pid: 100,
    };
    let effects = bench.core.boot();
    bench.spawn_all(&effects);
    bench.event(Event::Booted);
    bench
}

impl Bench {
    pub(super) fn event(&mut self, event: Event) -> Vec<Effect> {
        self.core.handle(event, self.now)
    }

    /// Does every spawn among `effects`, as the edge would, with one stream each.
    /// Spawns what those spawns released in turn, as the edge's queue would.
    pub(super) fn spawn_all(&mut self, effects: &[Effect]) -> Vec<Effect> {
        let mut more = Vec::new();
        let mut queue: std::collections::VecDeque<Effect> = effects.iter().cloned().collect();
        while let Some(effect) = queue.pop_front() {
            if let Effect::Spawn(index) = effect {
                if !self.core.wants_spawn(index) {
                    continue;
                }
                let pid = Pid::from_raw(self.next_pid);
                self.next_pid += 1;
                let next = self.event(Event::Spawned {
                    index,
                    pid,
                    streams: 1,
                });
                queue.extend(next.iter().cloned());
                more.extend(next);
            }
        }
        more
    }

    pub(super) fn pid(&self, index: usize) -> Pid {
        self.core
            .instance(index)
            .state
            .pid()
            .expect("a live instance")
    }

    /// Instance `index` exits with `exit` and its output closes.
    pub(super) fn exit(&mut self, index: usize, exit: Exit) -> Vec<Effect> {
        let pid = self.pid(index);
        let run = self.core.instance(index).run;
        let mut effects = self.event(Event::Exited { pid, exit });
        effects.extend(self.event(Event::StreamClosed { index, run }));
        effects
    }

    pub(super) fn advance(&mut self, by: Duration) -> Vec<Effect> {
        self.now += by;
        self.event(Event::Tick)
    }

    pub(super) fn command(&mut self, request: Request) -> (Reply, Vec<Effect>) {
        self.core.command(request, self.now)
    }
}

pub(super) fn said(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Say(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

pub(super) fn signalled(effects: &[Effect]) -> Vec<(Pid, Signal)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Signal { pid, sig } => Some((*pid, *sig)),
            _ => None,
        })
        .collect()
}

pub(super) const TWO: &str = "web: serve\nworker: work\n";
