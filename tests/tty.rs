//! Terminal mode (`--tty`): children see a terminal, and their output still
//! arrives as clean lines.

use std::time::Duration;

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn children_see_a_terminal_only_under_tty() {
    let probe = "if [ -t 1 ] && [ -t 2 ]; then echo terminal; else echo pipes; fi";
    let app = App::with_procfile(&format!("a: {probe}\nb: {probe}\n"));
    let run = app.run(&["start", "--tty", "a", "--can-die", "all", "--no-timestamp"]);
    run.assert_code(0);
    assert_eq!(run.lines_of("a.1"), ["terminal"]);
    assert_eq!(run.lines_of("b.1"), ["pipes"]);
    let run = app.run(&["start", "--can-die", "all"]);
    assert_eq!(run.lines_of("a.1"), ["pipes"]);
    let mut cmd = app.ganger();
    cmd.env("GANGER_TTY", "all")
        .args(["start", "--can-die", "all"]);
    let run = run_with_deadline(cmd, LIMIT);
    assert_eq!(run.lines_of("a.1"), ["terminal"]);
    assert_eq!(run.lines_of("b.1"), ["terminal"]);
}

#[test]
fn without_a_terminal_children_get_80_columns() {
    let app = App::with_procfile("a: stty size < /dev/tty\n");
    let run = app.run(&["start", "--tty"]);
    run.assert_code(0);
    assert_eq!(run.lines_of("a.1"), ["24 80"]);
}

#[test]
fn window_size_is_gangers_less_the_prefix_and_follows_sigwinch() {
    let app = App::with_procfile(
        "a: trap 'stty size < /dev/tty' WINCH; stty size < /dev/tty; while true; do sleep 0.05; done\n",
    );
    // Prefix: "HH:MM:SS " (9) + "system" (6) + " | " (3) = 18 cells.
    let pty = app.spawn_in_sized_pty(&["start", "--tty"], Some((100, 30)));
    pty.wait_for(" 30 82\r\n", LIMIT);
    pty.resize(120, 40);
    pty.wait_for(" 40 102\r\n", LIMIT);
    let mut pty = pty;
    pty.send(b"\x03");
    let (status, shown) = pty.finish(LIMIT);
    assert_eq!(status.code(), Some(130), "{shown}");
}

#[test]
fn a_line_shows_at_once_under_tty_but_waits_in_a_pipe_buffer_without() {
    let app = App::with_procfile(
        "py: python3 -c \"import time; print('hello', flush=False); time.sleep(60)\"\n",
    );
    let start = |tty: bool| {
        let mut cmd = app.ganger();
        cmd.env_remove("PYTHONUNBUFFERED")
            .args(["start", "--no-timestamp"]);
        if tty {
            cmd.arg("--tty");
        }
        Running::spawn(cmd)
    };
    let mut with_tty = start(true);
    with_tty.wait_line("py.1", "hello", Duration::from_secs(10));
    with_tty.signal("TERM");
    with_tty.finish(LIMIT);

    // For contrast: through a pipe, python block-buffers the line.
    let mut piped = start(false);
    piped.wait_for("py.1 started", LIMIT);
    std::thread::sleep(Duration::from_millis(1500));
    piped.signal("TERM");
    let (_, lines, _) = piped.finish(LIMIT);
    assert!(
        !lines.iter().any(|l| l.ends_with("| hello")),
        "python did not buffer? {lines:?}"
    );
}

#[test]
fn no_carriage_return_reaches_the_output_and_the_last_line_is_kept() {
    let app = App::with_procfile(
        "a: echo one; printf 'two\\r\\n'; printf '10%%\\r50%%\\r100%%\\n'; printf 'last words'\n",
    );
    let run = app.run(&["start", "--tty", "--no-timestamp"]);
    run.assert_code(0);
    assert!(!run.stdout.contains('\r'), "{:?}", run.stdout);
    assert_eq!(run.lines_of("a.1"), ["one", "two", "100%", "last words"]);
}

#[test]
fn child_colors_pass_with_color_on_and_are_stripped_with_it_off() {
    let app = App::with_procfile("a: printf '\\033[1;31mred\\033[0m plain\\n'\n");
    let run = app.run(&["start", "--tty", "--color", "always", "--no-timestamp"]);
    assert!(
        run.stdout.contains("\x1b[1;31mred\x1b[0m plain"),
        "{:?}",
        run.stdout
    );
    let run = app.run(&["start", "--tty", "--color", "never", "--no-timestamp"]);
    assert_eq!(run.lines_of("a.1"), ["red plain"]);
    assert!(!run.stdout.contains('\x1b'), "{:?}", run.stdout);
    let mut cmd = app.ganger();
    cmd.env("NO_COLOR", "1")
        .args(["start", "--tty", "--no-timestamp"]);
    let run = run_with_deadline(cmd, LIMIT);
    assert_eq!(run.lines_of("a.1"), ["red plain"]);
}

#[test]
fn stopping_a_tty_instance_reaches_its_whole_group() {
    let app =
        App::with_procfile("a: sh -c 'echo $$ > inner.pid; sleep 1000' & wait\nb: sleep 0.5\n");
    let run = app.run(&["start", "--tty", "-t", "2"]);
    run.assert_code(0);
    let inner: i32 = app.read("inner.pid").trim().parse().expect("pid");
    wait_all_dead(&[inner], Duration::from_secs(5));
}
