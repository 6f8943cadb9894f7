//! foreman's spellings of flags and commands, accepted beside ganger's own.

use crate::support::*;

/// Whether the `web.1` output line of a `start` run is colored.
fn web_colored(app: &App, args: &[&str], vars: &[(&str, &str)]) -> bool {
    let run = app.run_with_env(&[&["start"], args].concat(), vars);
    run.assert_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("web.1") && l.contains("hi"))
        .unwrap_or_else(|| panic!("no web.1 line:\n{}", run.stdout));
    line.contains('\x1b')
}

#[test]
fn color_flags_last_one_wins_and_any_beats_the_variable() {
    let app = App::with_procfile("web: echo hi\n");
    for (args, vars, colored) in [
        (&[][..], &[][..], false),
        (&["-c"], &[], true),
        (&["-c", "web"], &[], true),
        (&["--color"], &[], true),
        (&["--color", "always"], &[], true),
        (&["--color=always"], &[], true),
        (&["--color=never", "-c"], &[], true),
        (&["-c", "--no-color"], &[], false),
        (&["--no-color", "--color"], &[], true),
        (&["-c"], &[("GANGER_COLOR", "never")], true),
        (&["--no-color"], &[("GANGER_COLOR", "always")], false),
        (&[], &[("GANGER_COLOR", "always")], true),
    ] {
        assert_eq!(
            web_colored(&app, args, vars),
            colored,
            "{args:?} with {vars:?}"
        );
    }
}

#[test]
fn timestamp_and_no_timestamp() {
    let app = App::with_procfile("web: echo hi\n");
    let stamped = |args: &[&str], vars: &[(&str, &str)]| {
        let run = app.run_with_env(&[&["start"], args].concat(), vars);
        run.assert_code(0);
        let line = run.stdout.lines().next().unwrap_or_default().to_string();
        line.as_bytes().get(2) == Some(&b':') && line.as_bytes().get(5) == Some(&b':')
    };
    assert!(stamped(&[], &[]));
    assert!(stamped(&["--timestamp"], &[]));
    assert!(!stamped(&["--no-timestamp"], &[]));
    assert!(stamped(&["--no-timestamp", "--timestamp"], &[]));
    assert!(!stamped(&["--timestamp", "--no-timestamp"], &[]));
    assert!(!stamped(&[], &[("GANGER_NO_TIMESTAMP", "1")]));
    assert!(stamped(&["--timestamp"], &[("GANGER_NO_TIMESTAMP", "1")]));
}

#[test]
fn version_command_and_short_flags() {
    let app = App::new();
    let expected = format!("ganger {}\n", env!("CARGO_PKG_VERSION"));
    for args in [&["version"][..], &["-v"], &["-V"], &["--version"]] {
        let run = app.run(args);
        run.assert_code(0);
        assert_eq!(run.stdout, expected, "{args:?}");
    }
}

#[test]
fn export_t_with_a_template_directory_says_what_t_is_here() {
    let app = App::with_procfile("web: echo hi\n");
    let run = app.run(&["export", "systemd", "out", "-t", "templates/"]);
    run.assert_code(2);
    run.assert_stderr_has("-t/--timeout is the stop timeout");
    run.assert_stderr_has("-t TEMPLATE is not supported");
    assert!(!run.stderr.contains("invalid value"), "{}", run.stderr);
    app.run(&["export", "systemd", "out", "-t", "1.5"])
        .assert_code(0);
}

#[test]
fn flag_errors_exit_2() {
    let app = App::with_procfile("web: echo hi\n");
    app.run(&["start", "--no-such-flag"]).assert_code(2);
    app.run(&["start", "--color", "sometimes"]).assert_code(2);
    app.run(&["start", "-t", "soon"]).assert_code(2);
}
