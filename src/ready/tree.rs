//! Process ancestry: is a process in an instance's tree?
//!
//! A `READY=1` counts only when it comes from the instance's own process or one
//! of its descendants (a wrapper script's child, a server's worker). The
//! kernel's record of each process's parent, in `/proc/PID/stat`, answers that
//! without any bookkeeping. A descendant that detached (double fork, setsid) is
//! reparented to ganger, the child subreaper, and so leaves the instance's tree.
//!
//! This module only reads `/proc`; it signals and waits for nothing.

/// How many parents [`in_tree`] walks up before giving up.
const MAX_DEPTH: usize = 64;

/// Whether process `pid` is `root` or one of its descendants, by walking
/// parents through `/proc/PID/stat`, at most [`MAX_DEPTH`] steps. A process
/// that has already exited (and been reaped) is in no tree.
#[must_use]
pub fn in_tree(pid: i32, root: i32) -> bool {
    if pid <= 0 || root <= 0 {
        return false;
    }
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        if current == root {
            return true;
        }
        match std::fs::read(format!("/proc/{current}/stat"))
            .ok()
            .and_then(|s| parent_in(&s))
        {
            Some(parent) if parent > 0 => current = parent,
            _ => return false,
        }
    }
    false
}

/// The parent pid in the text of `/proc/PID/stat`: `pid (comm) state ppid ...`.
/// The command name may hold spaces, parentheses and any bytes, so the fields
/// are counted from its last `)`.
fn parent_in(stat: &[u8]) -> Option<i32> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

#[cfg(test)]
mod tests {}
