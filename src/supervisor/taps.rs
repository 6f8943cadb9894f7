//! The edge's side of `logs`, `attach` and `start -i`: registering each
//! instance's taps, handing them to its relays, and opening its terminal to
//! clients once a run is spawned on a pty.

use super::Edge;
use crate::relay;

impl Edge<'_> {
    /// What the relays of run `run` of instance `index` feed besides the
    /// output: its log ring and terminal, and its readiness pattern.
    pub(super) fn taps(&self, index: usize, run: u32) -> relay::Taps {
        let spec = &self.core.instance(index).spec;
        let entry = self
            .taps
            .entry(&spec.ps(), &spec.name, self.tty.contains(&spec.name));
        relay::Taps {
            watch: self.log_watch(index, run),
            entry: Some(entry),
            run,
        }
    }

    /// Lets `attach` and `start -i` reach the pty of the run just spawned.
    pub(super) fn open_terminal(&self, index: usize) {
        let instance = self.core.instance(index);
        let Some(pty) = self.ptys.get(&index) else {
            return;
        };
        let entry = self
            .taps
            .entry(&instance.spec.ps(), &instance.spec.name, true);
        if let (Some(terminal), Ok(master)) = (&entry.terminal, pty.try_clone()) {
            terminal.open(instance.run, master);
        }
    }
}
