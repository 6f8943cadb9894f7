//! ganger's descendants as the kernel sees them, and signalling them without
//! ever hitting a process that is not ganger's.
//!
//! A pid names a process only while that process is alive or an unreaped
//! zombie; after that the number can go to anyone (pids wrap within minutes on
//! a busy machine). So a descendant found in `/proc` is signalled through a
//! pidfd, opened and then checked to be the very process that was found (same
//! start time, same process group): a pidfd cannot be redirected to another
//! process, so the signal reaches the one that was seen, or nobody.
//!
//! This module only looks and signals; it never waits (the reaper does).

use std::collections::HashSet;
use std::os::fd::OwnedFd;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// One living descendant of ganger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descendant {
    pub pid: Pid,
    /// Its process group.
    pub pgid: Pid,
    /// Its start time (clock ticks since boot), which tells it from a later
    /// process with the same pid.
    start: u64,
    /// Its command name (`comm`), for messages.
    pub name: String,
    /// Whether it is stopped (state `T`: SIGSTOP, SIGTSTP, a background read).
    pub stopped: bool,
}

/// What `/proc/PID/stat` says of a process.
struct Stat {
    group: i32,
    /// Clock ticks since boot.
    start: u64,
    name: String,
    /// State `T` or `t`.
    stopped: bool,
    /// State `Z`: its children were already given to a reaper.
    zombie: bool,
    threads: u32,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may itself hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) ... num_threads(17) starttime(19).
    let state = *fields.first()?;
    Some(Stat {
        group: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        name,
        stopped: state == "T" || state == "t",
        zombie: state == "Z",
        threads: fields.get(17)?.parse().ok()?,
    })
}

/// The children of every thread of `pid`, which has `threads` threads: a
/// single-threaded process has one file to read, no directory to list.
fn children_of(pid: u32, threads: u32) -> Vec<i32> {
    let files: Vec<std::path::PathBuf> = if threads == 1 {
        vec![format!("/proc/{pid}/task/{pid}/children").into()]
    } else {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Vec::new();
        };
        tasks.flatten().map(|t| t.path().join("children")).collect()
    };
    files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .flat_map(|text| {
            text.split_ascii_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every living descendant of ganger, found through
/// `/proc/<pid>/task/*/children`, except `skip` and its descendants.
#[must_use]
pub fn descendants(skip: Option<Pid>) -> Vec<Descendant> {
    let mut found: Vec<Descendant> = Vec::new();
    let mut seen: HashSet<i32> = HashSet::new();
    // ganger itself has a few threads: any of them may have forked.
    let mut queue = vec![(std::process::id(), 0)];
    while let Some((pid, threads)) = queue.pop() {
        for child in children_of(pid, threads) {
            let pid = Pid::from_raw(child);
            if Some(pid) == skip || !seen.insert(child) {
                continue;
            }
            // A child that is gone between the two reads is simply not there.
            let Some(stat) = stat(child) else {
                continue;
            };
            if !stat.zombie {
                queue.push((child.unsigned_abs(), stat.threads));
            }
            found.push(Descendant {
                pid,
                pgid: Pid::from_raw(stat.group),
                start: stat.start,
                name: stat.name,
                stopped: stat.stopped,
            });
        }
    }
    found
}

/// Opens a pidfd on `d` if it is still the process that was found.
fn pin(d: &Descendant) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(d.pid.as_raw())?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    // Checked after opening: from here on the pidfd holds this very process.
    match stat(d.pid.as_raw()) {
        Some(now) if now.start == d.start && now.group == d.pgid.as_raw() => Some(fd),
        _ => None,
    }
}

/// Sends `sig` to `d`, if it is still the process that was found. Returns
/// whether the signal was sent.
#[must_use = "whether the process was still there"]
pub fn signal(d: &Descendant, sig: Signal) -> bool {
    let Some(fd) = pin(d) else {
        return false;
    };
    let Some(sig) = rustix::process::Signal::from_named_raw(sig as i32) else {
        return false;
    };
    rustix::process::pidfd_send_signal(&fd, sig).is_ok()
}

/// Whether process `pid` (a child ganger has not reaped) is stopped.
#[must_use]
pub fn is_stopped(pid: Pid) -> bool {
    stat(pid.as_raw()).is_some_and(|now| now.stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_stat() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let own = stat(me).expect("own stat");
        assert!(own.group > 0 && own.start > 0 && !own.name.is_empty());
        assert!(!own.stopped && !own.zombie && own.threads >= 1);
    }

    #[test]
    fn a_changed_start_time_is_not_signalled() {
        let me = Pid::this();
        let own = stat(me.as_raw()).expect("own stat");
        let other = Descendant {
            pid: me,
            pgid: Pid::from_raw(own.group),
            start: own.start + 1,
            name: own.name,
            stopped: false,
        };
        // SIGCONT would be harmless even if it went through; it must not.
        assert!(!signal(&other, Signal::SIGCONT));
    }
}
