//! What the control socket can see of each instance while the app runs: its
//! last lines of output ([`ring`], for `ganger logs`) and, for an instance on
//! a pseudo-terminal, the terminal itself ([`terminal`], for `ganger attach`
//! and `start -i`).
//!
//! The supervisor registers each instance when it first spawns it and hands
//! its relays the taps; the control server and the stdin forwarder only read
//! them. Nothing here decides anything about the instances.

pub mod ring;
pub mod terminal;

use std::sync::{Arc, Mutex, MutexGuard};

use self::ring::Ring;
use self::terminal::Terminal;

/// Lines kept per instance unless `--log-lines` says otherwise.
pub const DEFAULT_LINES: usize = 10_000;

/// One instance's taps.
#[derive(Debug)]
pub struct Entry {
    /// `web.1`.
    pub name: String,
    /// `web`.
    pub kind: String,
    pub log: Mutex<Ring>,
    /// Present when the instance runs on a pty.
    pub terminal: Option<Terminal>,
}

impl Entry {
    /// The ring, whatever a panic elsewhere left behind.
    pub fn log(&self) -> MutexGuard<'_, Ring> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Every instance's taps, in the order they were first started.
#[derive(Debug)]
pub struct Registry {
    entries: Mutex<Vec<Arc<Entry>>>,
    lines: usize,
}

impl Registry {
    /// An empty registry whose rings keep `lines` lines each.
    #[must_use]
    pub fn new(lines: usize) -> Self {
        Registry {
            entries: Mutex::new(Vec::new()),
            lines,
        }
    }

    fn entries(&self) -> MutexGuard<'_, Vec<Arc<Entry>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry of instance `name` of type `kind`, made on first use.
    pub fn entry(&self, name: &str, kind: &str, tty: bool) -> Arc<Entry> {
        let mut entries = self.entries();
        if let Some(entry) = entries.iter().find(|e| e.name == name) {
            return Arc::clone(entry);
        }
        let entry = Arc::new(Entry {
            name: name.to_string(),
            kind: kind.to_string(),
            log: Mutex::new(Ring::new(self.lines, ring::MAX_BYTES)),
            terminal: tty.then(Terminal::default),
        });
        entries.push(Arc::clone(&entry));
        entry
    }

    /// The entry of instance `name`, or of the first instance of type `name`.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<Arc<Entry>> {
        let entries = self.entries();
        entries
            .iter()
            .find(|e| e.name == name)
            .or_else(|| entries.iter().find(|e| e.kind == name))
            .cloned()
    }

    /// The entries `targets` name (types or instances; none: all), in order;
    /// an unknown target is an error naming it.
    pub fn select(&self, targets: &[String]) -> Result<Vec<Arc<Entry>>, String> {
        let entries = self.entries();
        if targets.is_empty() {
            return Ok(entries.clone());
        }
        for target in targets {
            if !entries
                .iter()
                .any(|e| &e.name == target || &e.kind == target)
            {
                return Err(format!("no such process or instance: {target}"));
            }
        }
        Ok(entries
            .iter()
            .filter(|e| targets.iter().any(|t| t == &e.name || t == &e.kind))
            .cloned()
            .collect())
    }
}
