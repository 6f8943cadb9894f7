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

use std::collections::HashMap;
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
    inner: Mutex<Inner>,
    lines: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Arc<Entry>>,
    /// Name -> position in `entries`: every spawn looks its entry up, and
    /// an app may have thousands of instances.
    by_name: HashMap<String, usize>,
}

impl Registry {
    /// An empty registry whose rings keep `lines` lines each.
    #[must_use]
    pub fn new(lines: usize) -> Self {
        Registry {
            inner: Mutex::new(Inner::default()),
            lines,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry of instance `name` of type `kind`, made on first use.
    pub fn entry(&self, name: &str, kind: &str, tty: bool) -> Arc<Entry> {
        let mut inner = self.inner();
        if let Some(&at) = inner.by_name.get(name) {
            return Arc::clone(&inner.entries[at]);
        }
        let entry = Arc::new(Entry {
            name: name.to_string(),
            kind: kind.to_string(),
            log: Mutex::new(Ring::new(self.lines, ring::MAX_BYTES)),
            terminal: tty.then(Terminal::default),
        });
        let at = inner.entries.len();
        inner.entries.push(Arc::clone(&entry));
        inner.by_name.insert(name.to_string(), at);
        entry
    }

    /// The entry of instance `name`, or of the first instance of type `name`.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<Arc<Entry>> {
        let inner = self.inner();
        match inner.by_name.get(name) {
            Some(&at) => Some(Arc::clone(&inner.entries[at])),
            None => inner.entries.iter().find(|e| e.kind == name).cloned(),
        }
    }

    /// The entries `targets` name (types or instances; none: all), in order;
    /// an unknown target is an error naming it.
    pub fn select(&self, targets: &[String]) -> Result<Vec<Arc<Entry>>, String> {
        let entries = &self.inner().entries;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_types_or_instances_in_start_order() {
        let taps = Registry::new(DEFAULT_LINES);
        for (name, kind) in [("web.1", "web"), ("worker.1", "worker"), ("web.2", "web")] {
            taps.entry(name, kind, false);
        }
        let names = |targets: &[&str]| {
            let targets: Vec<String> = targets.iter().map(ToString::to_string).collect();
            taps.select(&targets)
                .map(|found| found.iter().map(|e| e.name.clone()).collect::<Vec<_>>())
        };
        assert_eq!(
            names(&[]),
            Ok(vec!["web.1".into(), "worker.1".into(), "web.2".into()])
        );
        assert_eq!(names(&["web"]), Ok(vec!["web.1".into(), "web.2".into()]));
        assert_eq!(
            names(&["web.2", "worker"]),
            Ok(vec!["worker.1".into(), "web.2".into()])
        );
        assert!(names(&["clock"]).is_err());
        assert_eq!(
            taps.find("web").map(|e| e.name.clone()),
            Some("web.1".into())
        );
        assert_eq!(
            taps.find("web.2").map(|e| e.name.clone()),
            Some("web.2".into())
        );
        assert!(Arc::ptr_eq(
            &taps.entry("web.2", "web", false),
            &taps.entry("web.2", "web", false)
        ));
    }
}
