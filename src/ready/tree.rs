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
        match crate::proctree::parent(current) {
            Some(parent) if parent > 0 => current = parent,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    #[test]
    fn descendants_are_in_the_tree_and_ancestors_are_not() {
        let me = i32::try_from(std::process::id()).expect("pid");
        // A shell with a grandchild whose pid it prints; it waits for it.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 600 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let shell = i32::try_from(child.id()).expect("pid");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read");
        let grandchild: i32 = line.trim().parse().expect("a pid");

        assert!(in_tree(me, me));
        assert!(in_tree(shell, me));
        assert!(in_tree(grandchild, me));
        assert!(in_tree(grandchild, shell));
        assert!(!in_tree(me, shell));
        assert!(!in_tree(shell, grandchild));
        assert!(!in_tree(me, 0));
        assert!(!in_tree(0, me));
        assert!(!in_tree(-1, me));
        // The tree is searched upward only from pids that exist.
        assert!(!in_tree(i32::MAX, me));

        kill(Pid::from_raw(grandchild), Signal::SIGKILL).expect("kill");
        // The shell's `wait` returns and it exits.
        child.wait().expect("wait");
    }
}
