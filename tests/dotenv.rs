//! Dotenv files through the real binary: values arrive byte-exact, `${NAME}`
//! expands, and hostile files (huge, self-doubling, not regular files) end in a
//! prompt error that names them instead of a hang or a full memory.

use std::time::Duration;

use crate::support::*;

#[test]
fn values_with_dollar_signs_arrive_byte_exact() {
    let app = App::with_procfile("web: env\n");
    app.write(
        ".env",
        "DATABASE_URL=\"postgres://u:pa$$w0rd@db/app\"\n\
         SECRET_KEY=s3cr3t$abc\n\
         PRICE=\"$5\"\n\
         URL=http://localhost:$PORT/x\n\
         HOST=db\n\
         DSN=\"pg://${HOST}/${APP_USER}\"\n\
         LITERAL='${HOST}'\n",
    );
    for args in [&["run", "env"][..], &["run", "web"]] {
        let run = app.run_with_env(args, &[("APP_USER", "from-shell")]);
        let env = env_map(&run.assert_code(0).stdout);
        assert_eq!(env["DATABASE_URL"], "postgres://u:pa$$w0rd@db/app");
        assert_eq!(env["SECRET_KEY"], "s3cr3t$abc");
        assert_eq!(env["PRICE"], "$5");
        assert_eq!(env["URL"], "http://localhost:$PORT/x");
        assert_eq!(env["DSN"], "pg://db/from-shell");
        assert_eq!(env["LITERAL"], "${HOST}");
    }
}

#[test]
fn a_late_error_in_a_long_file_is_found_at_once() {
    let app = App::new();
    app.write(".env", format!("{}B C\n", "A=1\n".repeat(20_000)));
    // One pass; finding the line by re-parsing prefixes took minutes here.
    let run = app.run(&["run", "true"]);
    run.assert_code(1)
        .assert_stderr_has(".env:20001: cannot parse env entry");
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
}

#[test]
fn self_doubling_substitution_is_an_error_not_a_full_memory() {
    let app = App::new();
    let text: String = std::iter::once("A=xxxxxxxxxxxxxxxx\n".to_string())
        .chain((0..40).map(|_| "A=${A}${A}\n".to_string()))
        .collect();
    app.write("doubling.env", text);
    let run = app.run(&["run", "-e", "doubling.env", "true"]);
    run.assert_code(1)
        .assert_stderr_has("doubling.env:18: the value of A would exceed 1 MiB");
}

#[test]
fn only_regular_files_are_read() {
    let app = App::with_procfile("web: true\n");
    let fifo = app.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    std::fs::create_dir(app.path().join("dir")).expect("mkdir");
    for (args, needle) in [
        (
            &["run", "-e", "fifo", "true"][..],
            "fifo: it is a named pipe (FIFO)",
        ),
        (&["check", "-f", "fifo"], "fifo: it is a named pipe (FIFO)"),
        (
            &["run", "-e", "/dev/zero", "true"],
            "/dev/zero: it is a character device",
        ),
        (
            &["check", "-f", "/dev/zero"],
            "/dev/zero: it is a character device",
        ),
        (&["run", "-e", "dir", "true"], "dir: it is a directory"),
    ] {
        let run = app.run(args);
        run.assert_code(1).assert_stderr_has(needle);
    }
}

#[test]
fn a_symlink_to_a_regular_file_is_read() {
    let app = App::with_procfile("web: true\n");
    app.write("real.env", "LINKED=yes\n");
    std::os::unix::fs::symlink("real.env", app.path().join(".env")).expect("symlink");
    let env = env_map(&app.run(&["run", "env"]).assert_code(0).stdout);
    assert_eq!(env["LINKED"], "yes");
}

#[test]
fn a_file_over_16_mib_is_refused() {
    let app = App::with_procfile("web: true\n");
    let big = std::fs::File::create(app.path().join("big.env")).expect("create");
    big.set_len(17 << 20).expect("sparse file");
    app.run(&["run", "-e", "big.env", "true"])
        .assert_code(1)
        .assert_stderr_has("big.env: it is larger than 16 MiB");
    let big = std::fs::File::create(app.path().join("Procfile.big")).expect("create");
    big.set_len(17 << 20).expect("sparse file");
    app.run(&["check", "-f", "Procfile.big"])
        .assert_code(1)
        .assert_stderr_has("Procfile.big: it is larger than 16 MiB");
}
