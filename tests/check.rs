//! `ganger check`: what a valid Procfile prints, what every broken input says.

use crate::support::*;

const WEB_WORKER: &str =
    "web: python3 -m http.server $PORT\nworker: sh -c 'while :; do date; sleep 1; done'\n";

/// Asserts a failed run: non-zero, no panic, and every needle on stderr.
#[track_caller]
fn assert_fails_with(run: &Run, needles: &[&str]) {
    assert_ne!(
        run.code(),
        0,
        "expected a failure\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    for needle in needles {
        run.assert_stderr_has(needle);
    }
    assert!(
        !run.stderr.contains("RUST_BACKTRACE"),
        "panic:\n{}",
        run.stderr
    );
}

#[test]
fn valid_procfile_prints_its_names_and_nothing_else() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run(&["check"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "valid procfile detected (web, worker)\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn formation_and_port_list_every_instance_with_foreman_ports() {
    let app = App::with_procfile("web: w\nclock: c\nworker: k\n");
    let run = app.run(&["check", "-m", "all=2,clock=0,worker=3", "-p", "3000"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "valid procfile detected (web, clock, worker)\n\
         \x20 web.1     PORT=3000  w\n\
         \x20 web.2     PORT=3001  w\n\
         \x20 worker.1  PORT=3200  k\n\
         \x20 worker.2  PORT=3201  k\n\
         \x20 worker.3  PORT=3202  k\n"
    );
}

#[test]
fn port_alone_lists_one_instance_of_each_type() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run(&["check", "-p", "6000"]);
    run.assert_code(0);
    let ports: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(ports, ["PORT=6000", "PORT=6100"], "{}", run.stdout);
}

#[test]
fn formation_alone_uses_port_5000() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run(&["check", "-m", "web=1,worker=2"]);
    run.assert_code(0);
    run.assert_stdout_has("web.1     PORT=5000")
        .assert_stdout_has("worker.2  PORT=5101");
}

#[test]
fn dollar_port_is_the_base_port_default_and_the_flag_wins() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run_with_env(&["check", "-m", "all=1"], &[("PORT", "4000")]);
    run.assert_code(0);
    run.assert_stdout_has("web.1     PORT=4000")
        .assert_stdout_has("worker.1  PORT=4100");

    let run = app.run_with_env(&["check", "-p", "7000"], &[("PORT", "4000")]);
    run.assert_code(0);
    run.assert_stdout_has("web.1     PORT=7000");
}

#[test]
fn invalid_dollar_port_is_an_error_naming_it() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run_with_env(&["check"], &[("PORT", "http")]);
    assert_fails_with(&run, &["$PORT", "`http`"]);
}

#[test]
fn bad_line_names_file_and_line_and_shows_it() {
    let app = App::with_procfile("web: w\n\nthis is not an entry\nworker: k\n");
    let run = app.run(&["check"]);
    assert_fails_with(&run, &["Procfile:3:", "this is not an entry"]);
    assert_eq!(run.stdout, "");
}

#[test]
fn bad_names_are_errors() {
    for (text, shown) in [
        ("web.1: w\n", "web.1: w"),
        ("web server: w\n", "web server: w"),
        (" web: w\n", " web: w"),
        ("web\n", "web"),
        ("web:\n", "web:"),
    ] {
        let app = App::with_procfile(&format!("ok: x\n{text}"));
        let run = app.run(&["check"]);
        assert_fails_with(&run, &["Procfile:2:", shown]);
    }
}

#[test]
fn duplicate_name_names_both_lines() {
    let app = App::with_procfile("web: first\nworker: k\nweb: second\n");
    let run = app.run(&["check"]);
    assert_fails_with(
        &run,
        &[
            "Procfile:3:",
            "`web`",
            "line 1",
            "web: first",
            "web: second",
        ],
    );
}

#[test]
fn empty_and_comment_only_files_are_errors() {
    for text in ["", "\n  \n", "# web: w\n\t# worker: k\n"] {
        let app = App::with_procfile(text);
        let run = app.run(&["check"]);
        assert_fails_with(&run, &["Procfile", "defines no processes"]);
    }
}

#[test]
fn crlf_file_works() {
    let app = App::with_procfile("# comment\r\nweb: w\r\n\r\nworker: k\r\n");
    let run = app.run(&["check", "-m", "all=1"]);
    run.assert_code(0);
    run.assert_stdout_has("valid procfile detected (web, worker)\n");
    run.assert_stdout_has("PORT=5000  w\n");
    assert!(!run.stdout.contains('\r'), "{:?}", run.stdout);
}

#[test]
fn byte_order_mark_is_not_part_of_the_first_name() {
    let app = App::with_procfile("\u{feff}web: w\r\nworker: k\r\n");
    let run = app.run(&["check"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "valid procfile detected (web, worker)\n");
}

#[test]
fn crlf_file_errors_show_the_line_without_the_carriage_return() {
    let app = App::with_procfile("web: w\r\nnot an entry\r\n");
    let run = app.run(&["check"]);
    assert_fails_with(&run, &["Procfile:2:", "not an entry\n"]);
}

#[test]
fn non_utf8_procfile_names_the_line() {
    let app = App::new();
    app.write("Procfile", b"web: w\nworker: \xff\n");
    let run = app.run(&["check"]);
    assert_fails_with(&run, &["Procfile", "line 2"]);
}

#[test]
fn missing_procfile_says_where_it_looked_and_mentions_f() {
    let app = App::new();
    let run = app.run(&["check"]);
    let dir = app
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_fails_with(&run, &["Procfile", &dir, "-f"]);
}

#[test]
fn missing_named_procfile_names_it() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run(&["check", "-f", "Procfile.nope"]);
    assert_fails_with(&run, &["Procfile.nope", "-f"]);
}

#[test]
fn procfile_in_another_directory() {
    let app = App::new();
    app.write("sub/Procfile.dev", "api: a\n");
    let run = app.run(&["check", "-f", "sub/Procfile.dev"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "valid procfile detected (api)\n");

    app.write("sub/Procfile.bad", "api: a\napi: b\n");
    let run = app.run(&["check", "-f", "sub/Procfile.bad"]);
    assert_fails_with(&run, &["sub/Procfile.bad:2:"]);
}

#[test]
fn root_flag_finds_the_procfile_and_dotenv_there() {
    let app = App::new();
    app.write("srv/Procfile", "api: a\n");
    app.write("srv/.env", "A=1\nnot valid\n");
    let run = app.run(&["check", "-d", "srv"]);
    assert_fails_with(&run, &[".env:2:", "not valid"]);

    app.write("srv/.env", "A=1\n");
    let run = app.run(&["check", "-d", "srv"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "valid procfile detected (api)\n");

    let run = app.run(&["check", "-d", "nowhere"]);
    assert_fails_with(&run, &["nowhere", "-f"]);
}

#[test]
fn unknown_formation_name_suggests_the_closest() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run(&["check", "-m", "wrker=2"]);
    assert_fails_with(
        &run,
        &[
            "unknown process `wrker`",
            "did you mean `worker`?",
            "web, worker",
        ],
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn formation_counts_must_be_whole_numbers() {
    let app = App::with_procfile(WEB_WORKER);
    for (spec, bad) in [
        ("web=two", "`two`"),
        ("web=-1", "`-1`"),
        ("web=1.5", "`1.5`"),
        ("web", "`web`"),
    ] {
        let run = app.run(&["check", "-m", spec]);
        assert_fails_with(&run, &["invalid formation", &format!("`{spec}`"), bad]);
    }
}

#[test]
fn port_past_65535_is_an_error_naming_the_instance() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run(&["check", "-p", "65500"]);
    assert_fails_with(&run, &["worker.1", "PORT=65600", "65535"]);

    let run = app.run(&["check", "-m", "web=40", "-p", "65500"]);
    assert_fails_with(&run, &["web.37", "PORT=65536"]);

    let run = app.run(&["check", "-p", "70000"]);
    assert_fails_with(&run, &["70000"]);

    let run = app.run(&["check", "-p", "65435"]);
    run.assert_code(0);
    run.assert_stdout_has("worker.1  PORT=65535");
}

#[test]
fn missing_env_file_is_an_error() {
    let app = App::with_procfile(WEB_WORKER);
    app.write("a.env", "A=1\n");
    let run = app.run(&["check", "-e", "a.env,missing.env"]);
    assert_fails_with(&run, &["missing.env", "does not exist"]);
}

#[test]
fn missing_default_env_file_is_fine() {
    let app = App::with_procfile(WEB_WORKER);
    app.run(&["check"]).assert_code(0);
}

#[test]
fn dotenv_syntax_error_names_file_and_line() {
    let app = App::with_procfile(WEB_WORKER);
    app.write(
        ".env",
        "# settings\nA=1\nexport B=\"two words\"\nC D E\nF=2\n",
    );
    let run = app.run(&["check"]);
    assert_fails_with(&run, &[".env:4:", "C D E"]);

    app.write("b.env", "OK=1\nQ=\"never closed\nR=2\n");
    let run = app.run(&["check", "-e", "b.env"]);
    assert_fails_with(&run, &["b.env:2:"]);
}

#[test]
fn dotenv_syntax_error_on_a_line_that_starts_like_an_earlier_one() {
    let app = App::with_procfile(WEB_WORKER);
    app.write(".env", "NAME=1\nOTHER=2\nNAME\n");
    let run = app.run(&["check"]);
    assert_fails_with(&run, &[".env:3:"]);
}

#[test]
fn ganger_variables_set_every_common_flag() {
    let app = App::new();
    app.write("srv/Procfile.dev", "web: w\nworker: k\n");
    app.write("srv/Procfile", "other: o\n");
    app.write("bad.env", "not valid\n");

    let run = app.run_with_env(&["check"], &[("GANGER_PROCFILE", "srv/Procfile.dev")]);
    run.assert_code(0);
    assert_eq!(run.stdout, "valid procfile detected (web, worker)\n");

    let run = app.run_with_env(&["check"], &[("GANGER_ROOT", "srv")]);
    run.assert_code(0);
    assert_eq!(run.stdout, "valid procfile detected (other)\n");

    let run = app.run_with_env(&["check", "-d", "srv"], &[("GANGER_ENV", "bad.env")]);
    assert_fails_with(&run, &["bad.env:1:"]);

    let run = app.run_with_env(
        &["check", "-f", "srv/Procfile.dev"],
        &[("GANGER_FORMATION", "web=2,worker=0")],
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "valid procfile detected (web, worker)\n  web.1  PORT=5000  w\n  web.2  PORT=5001  w\n"
    );

    let run = app.run_with_env(
        &["check", "-f", "srv/Procfile.dev"],
        &[("GANGER_PORT", "8000")],
    );
    run.assert_code(0);
    run.assert_stdout_has("web.1     PORT=8000")
        .assert_stdout_has("worker.1  PORT=8100");
}

#[test]
fn flags_win_over_ganger_variables() {
    let app = App::new();
    app.write("srv/Procfile.dev", "web: w\nworker: k\n");
    app.write("srv/Procfile", "other: o\n");
    app.write("Procfile", "top: t\n");
    app.write("bad.env", "not valid\n");
    app.write("good.env", "A=1\n");

    let run = app.run_with_env(
        &["check", "-f", "Procfile"],
        &[("GANGER_PROCFILE", "srv/Procfile.dev")],
    );
    assert_eq!(run.stdout, "valid procfile detected (top)\n");

    let run = app.run_with_env(&["check", "-d", "."], &[("GANGER_ROOT", "srv")]);
    assert_eq!(run.stdout, "valid procfile detected (top)\n");

    let run = app.run_with_env(&["check", "-e", "good.env"], &[("GANGER_ENV", "bad.env")]);
    run.assert_code(0);

    let run = app.run_with_env(
        &["check", "-f", "srv/Procfile.dev", "-m", "worker=1,web=0"],
        &[("GANGER_FORMATION", "web=2,worker=0")],
    );
    assert_eq!(
        run.stdout,
        "valid procfile detected (web, worker)\n  worker.1  PORT=5100  k\n"
    );

    let run = app.run_with_env(&["check", "-p", "9000"], &[("GANGER_PORT", "8000")]);
    run.assert_stdout_has("top.1  PORT=9000");
}

#[test]
fn invalid_ganger_variables_are_errors_naming_them() {
    let app = App::with_procfile(WEB_WORKER);
    let run = app.run_with_env(&["check"], &[("GANGER_PORT", "lots")]);
    assert_fails_with(&run, &["lots"]);
    let run = app.run_with_env(&["check"], &[("GANGER_FORMATION", "web=x")]);
    assert_fails_with(&run, &["invalid formation `web=x`"]);
}

#[test]
fn a_reader_that_goes_away_is_not_an_error_but_a_full_disk_is() {
    let app = App::with_procfile("web: serve\n");
    let script = format!(
        "set -o pipefail; '{}' check -m web=5000 -p 1000 | head -n 1",
        ganger_bin().display()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.current_dir(app.path()).args(["-c", &script]);
    let run = run_with_deadline(cmd, std::time::Duration::from_secs(30));
    run.assert_code(0);
    let mut cmd = app.ganger();
    cmd.arg("check");
    cmd.stdout(std::fs::File::create("/dev/full").expect("/dev/full"));
    let status = cmd.status().expect("ganger");
    assert_eq!(status.code(), Some(1));
}
