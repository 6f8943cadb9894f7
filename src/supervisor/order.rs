//! Start-up order: the release phase runs first and alone, a type with
//! `after` waits until its dependencies are ready (or, for one-shots, have
//! exited 0), a probed instance is `starting` until its probe succeeds, and one
//! that is not ready in time stops the app. Also what `ganger health` reports.

use std::time::Instant;

use super::core::{Core, Effect, Phase};
use super::instance::State;
use crate::reaper::Exit;

impl Core {
    /// Whether instance `index` must wait before it may be spawned.
    pub(super) fn blocked(&self, index: usize) -> bool {
        let name = &self.instances[index].spec.name;
        if let Some(first) = &self.rules.order.first
            && first != name
            && !self.type_done(first)
        {
            return true;
        }
        self.rules
            .order
            .after
            .get(name)
            .is_some_and(|deps| deps.iter().any(|dep| !self.type_done(dep)))
    }

    /// Whether every instance of type `name` is ready, or has finished as a
    /// one-shot should (exit 0). A type with no instance waits for nothing.
    fn type_done(&self, name: &str) -> bool {
        let finishes = self.rules.finishes(name);
        self.instances
            .iter()
            .filter(|i| i.spec.name == name && i.is_visible())
            .all(|i| match i.state {
                // A one-shot is done when it has finished, not while it runs.
                State::Running { .. } => !finishes,
                State::Exited(Exit::Code(0)) => finishes,
                _ => false,
            })
    }

    /// Spawns every waiting instance that no longer has to wait; returns
    /// whether any was.
    pub(super) fn release_waiting(&mut self) -> bool {
        if self.phase != Phase::Running {
            return false;
        }
        let mut started = false;
        for index in 0..self.instances.len() {
            if self.instances[index].state == State::Waiting && !self.blocked(index) {
                self.instances[index].state = State::Pending;
                self.effects.push(Effect::Spawn(index));
                started = true;
            }
        }
        started
    }

    /// The probe of run `run` of instance `index` succeeded.
    pub(super) fn on_ready(&mut self, index: usize, run: u32, now: Instant) {
        let Some(instance) = self.instances.get_mut(index) else {
            return;
        };
        let State::Starting { pid, since, .. } = instance.state else {
            return;
        };
        if instance.run != run {
            return;
        }
        instance.state = State::Running { pid, since };
        let how = self
            .rules
            .probe(&instance.spec.name)
            .map_or(String::new(), |(how, _)| format!(" ({how})"));
        let took = now.duration_since(since).as_secs_f64();
        let text = format!("{} ready in {took:.2}s{how}", instance.ps());
        self.effects.push(Effect::EndProbe(index));
        self.say(text);
        self.release_waiting();
    }

    /// An instance not ready by its deadline stops the app with status 1.
    pub(super) fn ready_timeouts(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        let late = self
            .instances
            .iter()
            .find(|i| matches!(i.state, State::Starting { deadline, .. } if deadline <= now));
        let Some(late) = late else { return };
        let (how, timeout) = self
            .rules
            .probe(&late.spec.name)
            .cloned()
            .unwrap_or_default();
        let text = format!(
            "{} not ready after {}s ({how}), stopping",
            late.ps(),
            timeout.as_secs_f64()
        );
        self.status = Some(1);
        self.say(text);
        self.begin_stop(now, true);
    }

    /// The instances that are not ready and why, for `ganger health`: empty
    /// when every instance that should run is ready (a finished one-shot and a
    /// stopped instance count as fine).
    #[must_use]
    pub fn not_ready(&self) -> Vec<String> {
        if self.phase != Phase::Running {
            return vec!["the app is stopping".to_string()];
        }
        self.instances
            .iter()
            .filter(|i| i.is_visible())
            .filter_map(|i| {
                let why = match i.state {
                    State::Running { .. } | State::Stopped => return None,
                    State::Exited(Exit::Code(0)) if self.rules.finishes(&i.spec.name) => {
                        return None;
                    }
                    State::Waiting => {
                        let deps = self.waits_for(&i.spec.name);
                        format!("waiting for {deps}")
                    }
                    State::Starting { .. } => {
                        let how = self
                            .rules
                            .probe(&i.spec.name)
                            .map_or("its probe", |(how, _)| how.as_str());
                        match &i.status {
                            Some(status) => format!("starting, waiting for {how}: {status}"),
                            None => format!("starting, waiting for {how}"),
                        }
                    }
                    _ => i.describe(Instant::now()),
                };
                Some(format!("{}: {why}", i.ps()))
            })
            .collect()
    }

    /// What type `name` is waiting for: `release`, `web, worker`.
    fn waits_for(&self, name: &str) -> String {
        let mut deps: Vec<&str> = Vec::new();
        if let Some(first) = &self.rules.order.first
            && first != name
            && !self.type_done(first)
        {
            deps.push(first);
        }
        for dep in self.rules.order.after.get(name).into_iter().flatten() {
            if !self.type_done(dep) {
                deps.push(dep);
            }
        }
        deps.join(", ")
    }
}
