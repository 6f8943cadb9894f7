//! Control requests (`ps`, `restart`, `stop`, `scale`, `quit`) as transitions
//! of the core, answered with typed replies.

use std::time::Instant;

use nix::sys::signal::Signal;

use super::core::{Core, Effect, Phase};
use super::instance::{AfterStop, Instance, State};
use crate::control::{Reply, Request, Row};
use crate::error::chain;
use crate::formation::{self, Formation, port_for, unknown_process};

impl Core {
    /// Answers one control request; the effects carry out what it asked.
    pub fn command(&mut self, request: Request, now: Instant) -> (Reply, Vec<Effect>) {
        let reply = self.answer(request, now);
        (reply, std::mem::take(&mut self.effects))
    }

    fn answer(&mut self, request: Request, now: Instant) -> Reply {
        if request == Request::Health {
            let waiting = self.not_ready();
            let total = self.instances.iter().filter(|i| i.is_visible()).count();
            return if waiting.is_empty() {
                Reply::done(format!("ready: {total} of {total} instances"))
            } else {
                Reply::failed(format!(
                    "not ready: {} of {total} instances\n  {}",
                    waiting.len(),
                    waiting.join("\n  ")
                ))
            };
        }
        if self.phase != Phase::Running && request != Request::Ps {
            return Reply::failed("the app is stopping");
        }
        let result = match request {
            Request::Ps => return Reply::table(self.rows(now)),
            Request::Restart { targets } => self.resolve(&targets).map(|found| {
                let names = self.names(&found);
                for index in found {
                    self.stop_one(index, now, AfterStop::Start);
                }
                format!("restarting {names}")
            }),
            Request::Stop { targets } if targets.is_empty() => {
                Err("stop needs a target (a type or an instance)".to_string())
            }
            Request::Stop { targets } => self.resolve(&targets).map(|found| {
                let names = self.names(&found);
                for index in found {
                    self.stop_one(index, now, AfterStop::Stay);
                }
                format!("stopping {names}")
            }),
            Request::Scale { spec } => self.scale(&spec, now),
            Request::Health => unreachable!("answered above"),
            Request::Quit => {
                self.say("control: quit, stopping the app".to_string());
                self.status = Some(128 + Signal::SIGTERM as i32);
                self.begin_stop(now, true);
                return Reply::done("stopping the app");
            }
        };
        match result {
            Ok(message) => {
                self.say(format!("control: {message}"));
                Reply::done(message)
            }
            Err(message) => Reply::failed(message),
        }
    }

    /// What `ganger ps` shows, in Procfile order.
    fn rows(&self, now: Instant) -> Vec<Row> {
        let mut shown: Vec<&Instance> = self.instances.iter().filter(|i| i.is_visible()).collect();
        shown.sort_by_key(|i| (i.spec.position, i.spec.number));
        shown
            .into_iter()
            .map(|i| Row {
                name: i.ps(),
                kind: i.spec.name.clone(),
                pid: i.state.pid().map(nix::unistd::Pid::as_raw),
                state: i.describe(now),
                uptime: match i.state {
                    State::Running { since, .. } | State::Starting { since, .. } => {
                        Some(now.duration_since(since).as_secs_f64())
                    }
                    _ => None,
                },
                restarts: i.restarts,
                port: i.spec.port,
            })
            .collect()
    }

    fn names(&self, indices: &[usize]) -> String {
        let names: Vec<String> = indices.iter().map(|&i| self.instances[i].ps()).collect();
        names.join(", ")
    }

    /// The instances that targets (`web`, `web.2`; none = all) name.
    fn resolve(&self, targets: &[String]) -> Result<Vec<usize>, String> {
        let visible: Vec<usize> = (0..self.instances.len())
            .filter(|&i| self.instances[i].is_visible())
            .collect();
        if targets.is_empty() {
            return Ok(visible);
        }
        let mut found = Vec::new();
        for target in targets {
            let matches: Vec<usize> = visible
                .iter()
                .copied()
                .filter(|&i| {
                    let instance = &self.instances[i];
                    instance.spec.name == *target || instance.ps() == *target
                })
                .collect();
            if matches.is_empty() {
                let name = target.rsplit_once('.').map_or(target.as_str(), |(n, _)| n);
                return Err(if self.procfile.find(name).is_some() {
                    format!(
                        "no instance `{target}` (instances: {})",
                        self.names(&visible)
                    )
                } else {
                    chain(&unknown_process(name, &self.procfile))
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

    /// `scale web=3,worker=1`: starts new instances on the ports `start` would
    /// give them, and stops the highest-numbered ones first. Every count is
    /// checked against the ports before anything changes or is allocated.
    fn scale(&mut self, spec: &str, now: Instant) -> Result<String, String> {
        let formation = Formation::parse(spec).map_err(|e| chain(&e))?;
        formation
            .check_names(&self.procfile)
            .map_err(|e| chain(&e))?;
        let all_named = spec.split(',').any(|item| {
            item.split_once('=')
                .is_some_and(|(name, _)| name.trim() == "all")
        });
        let mut wanted = Vec::new();
        for (position, entry) in self.procfile.entries.iter().enumerate() {
            if !all_named && !formation.counts.contains_key(&entry.name) {
                continue;
            }
            let count = formation.count(&entry.name);
            // The highest port is the one that can overflow.
            if count > 0 {
                port_for(self.base_port, position, count, || {
                    format!("{}.{count}", entry.name)
                })
                .map_err(|e| chain(&e))?;
            }
            wanted.push((position, entry.name.clone(), entry.command.clone(), count));
        }
        let mut changes = Vec::new();
        for (position, name, command, count) in wanted {
            let mut current: Vec<usize> = (0..self.instances.len())
                .filter(|&i| self.instances[i].spec.name == name && self.instances[i].is_visible())
                .collect();
            current.sort_by_key(|&i| self.instances[i].spec.number);
            let before = current.len();
            for number in 1..=count {
                if current
                    .iter()
                    .any(|&i| self.instances[i].spec.number == number)
                {
                    continue;
                }
                let existing = self
                    .instances
                    .iter()
                    .position(|i| i.spec.name == name && i.spec.number == number);
                let index = if let Some(index) = existing {
                    index
                } else {
                    let port = port_for(self.base_port, position, number, String::new)
                        .map_err(|e| chain(&e))?;
                    self.instances.push(Instance::new(formation::Instance {
                        name: name.clone(),
                        position,
                        number,
                        port,
                        command: command.clone(),
                    }));
                    self.instances.len() - 1
                };
                self.instances[index].probed = self.rules.probe(&name).is_some();
                if self.blocked(index) {
                    self.instances[index].state = State::Waiting;
                } else {
                    self.instances[index].state = State::Pending;
                    self.effects.push(Effect::Spawn(index));
                }
            }
            for &index in current.iter().rev().take(before.saturating_sub(count)) {
                self.stop_one(index, now, AfterStop::Remove);
            }
            changes.push(format!("{name} {before} -> {count}"));
        }
        Ok(format!("scaled {}", changes.join(", ")))
    }
}
