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
    parent: i32,
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
    parse_stat(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// The text of `/proc/PID/stat`: `pid (comm) state ppid pgrp ...`. The name
/// may hold spaces, parentheses and bytes that are not UTF-8, so the fields
/// are counted from its last `)`.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let name = String::from_utf8_lossy(text.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) ... num_threads(17) starttime(19).
    let state = *fields.first()?;
    Some(Stat {
        parent: fields.get(1)?.parse().ok()?,
        group: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        name,
        stopped: state == "T" || state == "t",
        zombie: state == "Z",
        threads: fields.get(17)?.parse().ok()?,
    })
}

/// The parent of process `pid`, if it is still there.
#[must_use]
pub fn parent(pid: i32) -> Option<i32> {
    stat(pid).map(|s| s.parent)
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

/// Every process in process group `pgid`, ganger's descendant or not (a
/// member whose parent exited was reparented to init). While a group has a
/// member its number cannot be given to a new process, so a process found
/// with this group id is a member of that very group.
#[must_use]
pub fn members(pgid: Pid) -> Vec<Descendant> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = stat(pid)?;
            (stat.group == pgid.as_raw() && !stat.zombie).then(|| Descendant {
                pid: Pid::from_raw(pid),
                pgid,
                start: stat.start,
                name: stat.name,
                stopped: stat.stopped,
            })
        })
        .collect()
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

    /// A whole stat line for `name` with parent `ppid`, as the kernel writes it.
    fn line(name: &[u8], ppid: &str) -> Vec<u8> {
        let mut text = b"42 (".to_vec();
        text.extend_from_slice(name);
        text.extend_from_slice(b") S ");
        text.extend_from_slice(ppid.as_bytes());
        text.extend_from_slice(b" 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0");
        text
    }

    #[test]
    fn the_fields_follow_the_last_parenthesis() {
        for (name, parent) in [
            (&b"sh"[..], 7),
            (b"a) b (c", 9),
            (b")", 3),
            (b"\xff\xfe ", 5),
            (b"init", 0),
        ] {
            let stat = parse_stat(&line(name, &parent.to_string())).expect("parses");
            assert_eq!((stat.parent, stat.group, stat.start), (parent, 42, 777));
        }
    }

    #[test]
    fn malformed_stat_is_nothing() {
        for text in [
            &b""[..],
            b"42 sh S 7",
            b"42 (sh)",
            b"42 (sh) S",
            b"42 (sh) S x",
            b"42 (sh) S 99999999999",
            b"42 (sh) S \xff",
        ] {
            assert!(parse_stat(text).is_none(), "{text:?}");
        }
        assert!(parse_stat(&line(b"sh", "x")).is_none());
    }

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
