//! A Procfile line means what `sh -c` makes of it: ganger's `exec` prefix for
//! simple commands must not change what runs, what it prints, or its status.

use std::fs::File;
use std::process::{Command, Stdio};

use crate::support::{App, lines_of};

/// Lines whose first word is a builtin or keyword of `sh` (where `exec` would
/// run another program or none), and lines that do run a program.
const LINES: &[&str] = &[
    ":",
    "true",
    "false",
    "times > /dev/null",
    "type ls",
    "jobs",
    "echo 'a\\tb'",
    "'echo' 'quoted\\tname'",
    "printf '%s|%s\\n' x y",
    "test -n x",
    "[ 1 = 2 ]",
    "read line",
    "cd /",
    "pwd",
    "kill -0 $$",
    "wait",
    "command -v sh",
    "umask",
    "hash",
    "alias",
    "unalias -a",
    "getopts a opt",
    "exit 3",
    "FOO=bar",
    "/bin/echo 'a\\tb'",
    "ls -d /",
    "sh -c 'exit 4'",
    "env -i /bin/sh -c 'echo $0'",
];

/// What `/bin/sh -c LINE` prints (stdout and stderr in one stream, as ganger
/// relays them) and its status, run as ganger runs an instance.
fn reference(app: &App, line: &str) -> (Vec<String>, i32) {
    let out = app.path().join("reference.out");
    let file = File::create(&out).expect("create");
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(line)
        .current_dir(app.path())
        .env("PWD", app.path())
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .status()
        .expect("run sh");
    let text = std::fs::read_to_string(&out).expect("read");
    let lines = text.lines().map(str::to_string).collect();
    (lines, status.code().unwrap_or(-1))
}

#[test]
fn a_line_relays_what_sh_c_prints_and_exits_as_it_does() {
    let procfile: String = LINES
        .iter()
        .enumerate()
        .map(|(i, line)| format!("p{i}: {line}\n"))
        .collect();
    let app = App::with_procfile(&procfile);
    let run = app.run(&["start", "--can-die", "all", "--no-timestamp"]);
    let system = run.lines_of("system");
    for (i, line) in LINES.iter().enumerate() {
        let ps = format!("p{i}.1");
        let (expected, status) = reference(&app, line);
        assert_eq!(
            lines_of(&run.stdout, &ps),
            expected,
            "output of `{line}`\n{}",
            run.stdout
        );
        let exit = format!("{ps} exited with code {status}");
        assert!(
            system.contains(&exit),
            "`{line}` should exit with {status}:\n{}",
            run.stdout
        );
    }
}
