//! The stop ladder: each instance gets its type's stop signal (and SIGCONT, so
//! that a stopped process can act on it), then SIGKILL at its deadline; a
//! second stop signal kills at once; what left its group is found as a stray.

use std::time::Instant;

use nix::sys::signal::Signal;

use super::core::{Core, Effect, KILL_GRACE, Phase};
use super::instance::{AfterStop, State};

impl Core {
    /// INT, TERM or HUP arrived.
    pub(super) fn on_stop_signal(&mut self, sig: Signal, now: Instant) {
        match self.phase {
            Phase::Running => {
                self.status = Some(128 + sig as i32);
                self.say(format!("{} received, stopping", sig.as_str()));
                self.begin_stop(now, true);
            }
            Phase::Stopping { .. } if sig != Signal::SIGHUP => {
                self.say(format!("{} received again, killing", sig.as_str()));
                self.kill_all(now);
            }
            Phase::Stopping { .. } | Phase::Killing { .. } => {}
        }
    }

    /// Stops every instance, in reverse start order: an instance gets its stop
    /// signal once no instance of a type that starts after it is left; every
    /// one is killed at its own deadline, counted from now whatever its level.
    /// `announce` prints the line that says so.
    pub(super) fn begin_stop(&mut self, now: Instant, announce: bool) {
        if self.phase != Phase::Running {
            return;
        }
        if announce {
            let signals: std::collections::BTreeSet<&str> = self
                .instances
                .iter()
                .filter(|i| i.state.pid().is_some())
                .map(|i| self.rules.stop_signal(&i.spec.name).as_str())
                .collect();
            let text = match signals.len() {
                0 | 1 => format!(
                    "sending {} to all processes",
                    signals.first().copied().unwrap_or("SIGTERM")
                ),
                _ => "sending each process its stop signal".to_string(),
            };
            self.say(text);
        }
        let mut deadline = now + self.rules.timeout;
        for index in 0..self.instances.len() {
            let name = &self.instances[index].spec.name;
            let own = now + self.rules.timeout(name);
            let instance = &mut self.instances[index];
            match instance.state {
                // Nothing restarts during a shutdown, and no backoff is waited out.
                State::Backoff { exit, .. } => instance.state = State::Exited(exit),
                State::Pending | State::Waiting => instance.state = State::Stopped,
                State::Running { pid, .. } | State::Starting { pid, .. } => {
                    if matches!(instance.state, State::Starting { .. }) {
                        self.effects.push(Effect::EndProbe(index));
                    }
                    instance.state = State::Stopping {
                        pid,
                        deadline: own,
                        sent: false,
                        killed: false,
                        then: AfterStop::Stay,
                    };
                }
                _ => {}
            }
            if let State::Stopping {
                deadline: own,
                killed: false,
                ..
            } = self.instances[index].state
            {
                deadline = deadline.max(own);
            }
        }
        self.phase = Phase::Stopping { deadline };
        self.send_due_stops();
        self.effects.push(Effect::SignalStrays(Signal::SIGTERM));
        self.effects.push(Effect::SignalStrays(Signal::SIGCONT));
        self.kill_overdue(now);
    }

    /// Sends the stop signal to every stopping instance no later type waits on.
    pub(super) fn send_due_stops(&mut self) {
        for index in 0..self.instances.len() {
            let State::Stopping {
                pid,
                deadline,
                sent: false,
                killed,
                then,
            } = self.instances[index].state
            else {
                continue;
            };
            let name = self.instances[index].spec.name.clone();
            if self.dependents_alive(&name) {
                continue;
            }
            self.send_stop_signal(pid, &name);
            self.instances[index].state = State::Stopping {
                pid,
                deadline,
                sent: true,
                killed,
                then,
            };
        }
    }

    /// Type `name`'s stop signal to the group led by `pid`, then SIGCONT, as
    /// systemd does, so that a stopped process can act on it.
    fn send_stop_signal(&mut self, pid: nix::unistd::Pid, name: &str) {
        let sig = self.rules.stop_signal(name);
        self.effects.push(Effect::Signal { pid, sig });
        self.effects.push(Effect::Signal {
            pid,
            sig: Signal::SIGCONT,
        });
    }

    /// Whether an instance of a type that starts after `name` still has a process.
    fn dependents_alive(&self, name: &str) -> bool {
        self.instances.iter().any(|i| {
            i.state.pid().is_some()
                && self
                    .rules
                    .order
                    .after
                    .get(&i.spec.name)
                    .is_some_and(|deps| deps.iter().any(|d| d == name))
        })
    }

    /// Asks instance `index` to stop; `then` says what follows its exit.
    pub(super) fn stop_one(&mut self, index: usize, now: Instant, then: AfterStop) {
        let name = self.instances[index].spec.name.clone();
        match self.instances[index].state {
            State::Running { pid, .. } | State::Starting { pid, .. } => {
                if matches!(self.instances[index].state, State::Starting { .. }) {
                    self.effects.push(Effect::EndProbe(index));
                }
                self.send_stop_signal(pid, &name);
                self.instances[index].state = State::Stopping {
                    pid,
                    deadline: now + self.rules.timeout(&name),
                    sent: true,
                    killed: false,
                    then,
                };
            }
            State::Stopping {
                pid,
                deadline,
                sent,
                killed,
                ..
            } => {
                self.instances[index].state = State::Stopping {
                    pid,
                    deadline,
                    sent,
                    killed,
                    then,
                };
            }
            State::Waiting if then == AfterStop::Start => {}
            State::Pending
            | State::Waiting
            | State::Backoff { .. }
            | State::Stopped
            | State::Removed
            | State::Failed
            | State::Exited(_) => match then {
                AfterStop::Start => {
                    self.instances[index].state = State::Pending;
                    self.effects.push(Effect::Spawn(index));
                }
                AfterStop::Stay => self.instances[index].state = State::Stopped,
                AfterStop::Remove => self.instances[index].state = State::Removed,
            },
        }
    }

    /// SIGKILL for every instance past its deadline, and for strays once the
    /// whole app's deadline has passed.
    pub(super) fn kill_overdue(&mut self, now: Instant) {
        let overdue: Vec<usize> = (0..self.instances.len())
            .filter(|&i| {
                matches!(
                    self.instances[i].state,
                    State::Stopping { deadline, killed: false, .. } if deadline <= now
                )
            })
            .collect();
        self.kill(&overdue, now);
        if let Phase::Stopping { deadline } = self.phase
            && deadline <= now
        {
            self.effects.push(Effect::SignalStrays(Signal::SIGKILL));
            self.phase = Phase::Killing {
                deadline: now + KILL_GRACE,
            };
        }
    }

    /// SIGKILL for everything at once (a second stop signal).
    pub(super) fn kill_all(&mut self, now: Instant) {
        let alive: Vec<usize> = (0..self.instances.len())
            .filter(|&i| {
                matches!(
                    self.instances[i].state,
                    State::Starting { .. }
                        | State::Running { .. }
                        | State::Stopping { killed: false, .. }
                )
            })
            .collect();
        self.kill(&alive, now);
        self.effects.push(Effect::SignalStrays(Signal::SIGKILL));
        self.phase = Phase::Killing {
            deadline: now + KILL_GRACE,
        };
    }

    /// SIGKILL to the groups of `indices`, named in one line.
    fn kill(&mut self, indices: &[usize], now: Instant) {
        if indices.is_empty() {
            return;
        }
        let names: Vec<String> = indices.iter().map(|&i| self.instances[i].ps()).collect();
        self.say(format!("sending SIGKILL to {}", names.join(", ")));
        for &index in indices {
            let instance = &mut self.instances[index];
            let then = match instance.state {
                State::Stopping { then, .. } => then,
                _ => AfterStop::Stay,
            };
            if let Some(pid) = instance.state.pid() {
                self.effects.push(Effect::Signal {
                    pid,
                    sig: Signal::SIGKILL,
                });
                instance.state = State::Stopping {
                    pid,
                    deadline: now + KILL_GRACE,
                    sent: true,
                    killed: true,
                    then,
                };
            }
        }
    }
}
