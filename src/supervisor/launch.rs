//! The edge's side of starting an instance: its environment, the spawn
//! itself (in batches between which signals are looked at), the relays of its
//! output with their taps and readiness watch, and its readiness probe.

use std::ffi::OsString;
use std::sync::Arc;

use super::core::Event;
use super::probes::Target;
use super::{Edge, prefix_width};
use crate::keeper::Keeper;
use crate::output::{LineFormat, Stream};
use crate::process_type::Readiness;
use crate::relay::{self, LogWatch};
use crate::spawn::{Spawner, Streams};
use crate::tty;

impl Edge<'_> {
    /// Spawns what is queued, at most `limit` of it; returns the reasons any failed.
    pub(super) fn spawn_queued(&mut self, limit: usize) -> Vec<String> {
        let mut failures = Vec::new();
        for _ in 0..limit {
            let Some(index) = self.queue.pop_front() else {
                break;
            };
            if !self.core.wants_spawn(index) {
                continue;
            }
            let (event, spawned) = match self.spawn(index) {
                Ok(event) => (event, true),
                Err(error) => {
                    failures.push(format!(
                        "cannot start {}: {error}",
                        self.core.instance(index).ps()
                    ));
                    (Event::SpawnFailed { index, error }, false)
                }
            };
            self.handle(event);
            if spawned {
                self.open_terminal(index);
            }
        }
        failures
    }

    /// Spawns instance `index` and starts relaying its output.
    pub(super) fn spawn(&mut self, index: usize) -> std::result::Result<Event, String> {
        let spec = &self.core.instance(index).spec;
        let ps = spec.ps();
        // `scale` may bring a longer name (web.10): the column widens for all.
        self.style.fit(&ps);
        if self
            .spawner
            .as_ref()
            .is_none_or(|spawner| !spawner.knows(&spec.name))
        {
            // Instances of one type share their environment but for PORT and
            // PS: it is built once, from the first one's.
            let env = self.child_env(index);
            if self.spawner.is_none() {
                self.spawner = Some(Spawner::new(&self.app.root).map_err(|e| e.to_string())?);
            }
            let name = &self.core.instance(index).spec.name;
            (self.spawner.as_mut().ok_or("no spawner")?)
                .learn(name, env)
                .map_err(|e| e.to_string())?;
        }
        let spec = &self.core.instance(index).spec;
        let streams = if self.tty.contains(&spec.name) {
            // Measured at each start: the terminal or the name column may have changed.
            Streams::Tty(tty::child_size(prefix_width(&self.style)))
        } else if self.split_stderr {
            Streams::Split
        } else {
            Streams::Shared
        };
        let register = self.keeper.as_ref().map(Keeper::register_fd);
        let spawned = (self.spawner.as_mut().ok_or("no spawner")?)
            .spawn(&spec.name, &spec.command, spec.port, &ps, streams, register)
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
                self.taps(index, run),
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

    /// The relay's watch for a `ready = { log = ... }` pattern, if the type has one.
    pub(super) fn log_watch(&self, index: usize, run: u32) -> Option<LogWatch> {
        let Some(Readiness::Log(pattern)) = self.readiness(&self.core.instance(index).spec.name)
        else {
            return None;
        };
        let events = self.probes.events();
        LogWatch::new(
            pattern.as_str(),
            Box::new(move || {
                let _ = events.send(Event::Ready { index, run });
            }),
        )
    }

    /// The environment of instance `index`: the app's, its PORT and PS, and
    /// `NOTIFY_SOCKET` when its type is ready by notify.
    pub(super) fn child_env(&self, index: usize) -> Vec<(OsString, OsString)> {
        let spec = &self.core.instance(index).spec;
        let mut own = vec![("PORT", spec.port.to_string()), ("PS", spec.ps())];
        if let (Some(socket), Some(Readiness::Notify)) =
            (self.probes.notify_socket(), self.readiness(&spec.name))
        {
            own.push(("NOTIFY_SOCKET", socket.to_string_lossy().into_owned()));
        }
        self.app.env.for_child(&self.app.root, &own)
    }

    pub(super) fn readiness(&self, name: &str) -> Option<&Readiness> {
        self.app.processes.get(name).map(|s| &s.ready)
    }

    /// Starts probing instance `index`, as its type's readiness says.
    pub(super) fn probe(&mut self, index: usize) {
        let instance = self.core.instance(index);
        let Some(pid) = instance.state.pid() else {
            return;
        };
        let Some(ready) = self.readiness(&instance.spec.name).cloned() else {
            return;
        };
        let target = Target {
            index,
            run: instance.run,
            pid,
            port: instance.spec.port,
            env: self.child_env(index),
            root: self.app.root.clone(),
        };
        self.probes.start(target, &ready);
    }
}
