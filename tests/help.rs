//! The first-run experience: `--help` and `--version`, shell completions, the
//! manual page, and the errors a newcomer meets first (snapshots of the real
//! binary's output, with temp-dir paths and pids normalised).

use std::io::Write;
use std::process::{Command, Stdio};

use clap::CommandFactory;

use crate::support::*;

const THREE_TYPES: &str = "web: w\nworker: k\nclock: c\n";

/// The commands whose `--help` is snapshotted (a new one adds its name here).
const COMMANDS: &[&str] = &[
    "start",
    "run",
    "check",
    "export",
    "ps",
    "restart",
    "stop",
    "scale",
    "quit",
    "attach",
    "logs",
    "completions",
    "man",
];

/// `text` with this app's directory shown as `[APP]` and pids as `[PID]`.
fn normalise(app: &App, text: &str) -> String {
    let mut text = text.to_string();
    let dir = app.path();
    if let Ok(real) = dir.canonicalize() {
        text = text.replace(&real.display().to_string(), "[APP]");
    }
    text = text.replace(&dir.display().to_string(), "[APP]");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("pid ") {
        let (head, tail) = rest.split_at(at + 4);
        out.push_str(head);
        let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push_str("[PID]");
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Runs `ganger ARGS` with a fixed terminal width, so help text wraps the same everywhere.
fn ganger(app: &App, args: &[&str]) -> Run {
    app.run_with_env(args, &[("COLUMNS", "100")])
}

/// Runs `ganger ARGS`, expects a failure, and returns stderr normalised.
#[track_caller]
fn failure(app: &App, args: &[&str]) -> String {
    let run = ganger(app, args);
    assert_eq!(
        run.code(),
        1,
        "ganger {args:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    normalise(app, &run.stderr)
}

#[test]
fn help_snapshots() {
    let app = App::new();
    let run = ganger(&app, &["--help"]);
    run.assert_code(0);
    insta::assert_snapshot!("help", run.stdout);
    for command in COMMANDS {
        let run = ganger(&app, &[command, "--help"]);
        run.assert_code(0);
        insta::assert_snapshot!(format!("help_{command}"), run.stdout);
    }
}

#[test]
fn every_command_has_examples_in_its_help() {
    let app = App::new();
    let cli = ganger::cli::Cli::command();
    let names: Vec<&str> = cli
        .get_subcommands()
        .map(clap::Command::get_name)
        .filter(|name| *name != "help")
        .collect();
    for name in &names {
        let run = ganger(&app, &[name, "--help"]);
        run.assert_code(0);
        let examples = run
            .stdout
            .split_once("Examples:\n")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        assert!(
            examples.contains(&format!("ganger {name}")),
            "`ganger {name} --help` shows no example of itself:\n{}",
            run.stdout
        );
    }
    let run = ganger(&app, &["--help"]);
    run.assert_stdout_has("Examples:\n  ganger start");
    for name in &names {
        run.assert_stdout_has(&format!("\n  {name} "));
    }
}

#[test]
fn version_is_the_crate_version() {
    let app = App::new();
    let expected = format!("ganger {}\n", env!("CARGO_PKG_VERSION"));
    for args in [&["--version"][..], &["-V"]] {
        let run = ganger(&app, args);
        run.assert_code(0);
        assert_eq!(run.stdout, expected, "{args:?}");
    }
    // Every command takes it too (clap names the command: `ganger-check 0.1.0`).
    let run = ganger(&app, &["check", "--version"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .ends_with(&format!(" {}\n", env!("CARGO_PKG_VERSION"))),
        "{}",
        run.stdout
    );
}

#[test]
fn completions_for_every_shell() {
    let app = App::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = ganger(&app, &["completions", shell]);
        run.assert_code(0);
        assert_eq!(run.stderr, "", "{shell}");
        assert!(run.stdout.len() > 500, "{shell}: {}", run.stdout);
        for word in ["ganger", "start", "export", "completions", "procfile"] {
            assert!(run.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let run = ganger(&app, &["completions", "tcsh"]);
    assert_eq!(run.code(), 2, "{}", run.stderr);
    run.assert_stderr_has("[possible values: bash, elvish, fish, powershell, zsh]");
}

/// Feeds `script` to `shell ARGS` on stdin and asserts it parses.
#[track_caller]
fn parses(shell: &str, args: &[&str], script: &str) {
    let mut child = Command::new(shell)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the shell");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{shell} {args:?} rejects the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bash_completions_parse_and_complete_the_commands() {
    if !require_tool("bash") {
        return;
    }
    let app = App::new();
    let run = ganger(&app, &["completions", "bash"]);
    run.assert_code(0);
    parses("bash", &["-n"], &run.stdout);

    // Load the script and ask it what follows `ganger ` and `ganger completions `.
    app.write("ganger.bash", &run.stdout);
    let probe = "source ./ganger.bash\n\
         COMP_WORDS=(ganger ''); COMP_CWORD=1; _ganger ganger '' ganger; echo \"${COMPREPLY[*]}\"\n\
         COMP_WORDS=(ganger completions ''); COMP_CWORD=2; _ganger ganger '' completions; echo \"${COMPREPLY[*]}\"\n";
    let out = Command::new("bash")
        .args(["-c", probe])
        .current_dir(app.path())
        .output()
        .expect("bash");
    let shown = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "{shown}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for command in COMMANDS {
        assert!(lines[0].split(' ').any(|w| w == *command), "{shown}");
    }
    assert!(
        lines[1].ends_with(" bash elvish fish powershell zsh"),
        "{shown}"
    );
}

#[test]
fn zsh_and_fish_completions_parse() {
    let app = App::new();
    for (shell, args) in [("zsh", &["-n"][..]), ("fish", &["--no-execute"])] {
        if require_tool(shell) {
            let run = ganger(&app, &["completions", shell]);
            parses(shell, args, &run.stdout);
        }
    }
}

/// The manual page as `ganger man` writes it.
fn man_page(app: &App) -> String {
    let run = ganger(app, &["man"]);
    run.assert_code(0);
    assert_eq!(run.stderr, "");
    run.stdout
}

#[test]
fn man_page_renders_without_groff_warnings() {
    if !require_tool("groff") {
        return;
    }
    let app = App::new();
    app.write("ganger.1", man_page(&app));
    let out = Command::new("groff")
        // -P-cbou: plain text, without bold or underline escapes to search through.
        .args(["-man", "-Tutf8", "-ww", "-P-cbou", "ganger.1"])
        .current_dir(app.path())
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("groff");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "", "groff warns");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "GANGER START",
        "GANGER EXPORT",
        "GANGER COMPLETIONS",
        "ENVIRONMENT",
        "GANGER_TIMEOUT",
        "EXAMPLES",
    ] {
        assert!(text.contains(needle), "the page lacks {needle}:\n{text}");
    }
}

#[test]
fn man_page_reads_with_man_l_dash() {
    if !require_tool("man") {
        return;
    }
    let app = App::new();
    let page = man_page(&app);
    let mut child = Command::new("man")
        .args(["-l", "-"])
        .env("LC_ALL", "C.UTF-8")
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .env("MANROFFOPT", "-ww")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn man");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("write the page");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "", "man warns");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ganger man | man -l -"), "{text}");
}

#[test]
fn generated_documents_survive_a_closed_pipe() {
    let app = App::new();
    for args in [&["man"][..], &["completions", "bash"]] {
        // A pipe nobody reads from: the first write fails with EPIPE.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = app
            .ganger()
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run ganger");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn unknown_process_names_suggest_the_closest() {
    let app = App::with_procfile(THREE_TYPES);
    for (name, args) in [
        ("start_name", &["start", "wbe"][..]),
        ("start_formation", &["start", "-m", "wrker=2"]),
        ("check_formation", &["check", "-m", "wrker=2"]),
        ("check_restart", &["check", "--restart", "web,clk"]),
        ("check_can_die", &["check", "--can-die", "wroker"]),
        ("no_suggestion", &["start", "database"]),
    ] {
        insta::assert_snapshot!(format!("unknown_process_{name}"), failure(&app, args));
    }
}

#[test]
fn procfile_errors_point_at_the_problem() {
    for (name, text) in [
        ("bad_character", "web: w\nweb.1: w\n"),
        ("blank_before_colon", "web : w\n"),
        ("missing_colon", "web\n"),
        ("not_an_entry", "web: w\n\nthis is not an entry\n"),
        ("leading_blank", "  web: w\n"),
        ("tab_indented", "\tweb: w\n"),
        ("no_command", "web:   \n"),
        ("bad_first_character", "@web: w\n"),
    ] {
        let app = App::with_procfile(text);
        insta::assert_snapshot!(format!("procfile_{name}"), failure(&app, &["check"]));
    }
    let app = App::with_procfile("web: first\nworker: k\nweb: second\n");
    insta::assert_snapshot!("procfile_duplicate", failure(&app, &["start"]));
}

#[test]
fn a_missing_procfile_says_where_it_looked_and_how_to_pick_another() {
    let app = App::new();
    let stderr = failure(&app, &["start"]);
    assert!(stderr.contains(" -f "), "{stderr}");
    insta::assert_snapshot!("missing_procfile_default", stderr);
    insta::assert_snapshot!(
        "missing_procfile_flag",
        failure(&app, &["check", "-f", "Procfile.dev"])
    );
    insta::assert_snapshot!(
        "missing_procfile_root",
        failure(&app, &["start", "-d", "srv"])
    );

    // And -f does pick another.
    app.write("Procfile.dev", "web: w\n");
    let run = ganger(&app, &["check", "-f", "Procfile.dev"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "valid procfile detected (web)\n");
}

#[test]
fn ports_past_65535_say_which_base_fits() {
    let app = App::with_procfile(THREE_TYPES);
    insta::assert_snapshot!("port_range", failure(&app, &["start", "-p", "65400"]));
    insta::assert_snapshot!(
        "port_range_too_many",
        failure(&app, &["check", "-m", "web=70000"])
    );
    // The base the message offers does fit.
    let run = ganger(&app, &["check", "-p", "65335"]);
    run.assert_code(0);
    run.assert_stdout_has("clock.1   PORT=65535");
}

#[test]
fn a_port_collision_is_explained() {
    let app = App::with_procfile(THREE_TYPES);
    let run = ganger(&app, &["check", "-m", "web=101"]);
    run.assert_code(0);
    run.assert_stdout_has("web.101   PORT=5100")
        .assert_stdout_has("worker.1  PORT=5100");
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    insta::assert_snapshot!("port_collision", warnings.join("\n"));

    let run = ganger(&app, &["check", "-m", "web=250,worker=150"]);
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    insta::assert_snapshot!("port_collision_many", warnings.join("\n"));
}
