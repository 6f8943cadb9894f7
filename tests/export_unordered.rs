//! supervisord, runit and launchd start every program at once: `export` says
//! so in one warning line when the app asks for an order, and runs the release
//! phase as a program that is never started again (a real supervisord and
//! runsvdir run it once).

use std::path::PathBuf;
use std::time::Duration;

use crate::export_order::{PROCFILE, SETTINGS, ordered_app};
use crate::export_tools::*;
use crate::support::*;

/// Runs `ganger export FORMAT <tmp>/export`; returns the directory and stderr.
fn export(app: &App, format: &str) -> (PathBuf, String) {
    let dir = app.path().join("export");
    let mut cmd = app.ganger();
    cmd.args(["export", format])
        .arg(&dir)
        .args(["-u", &current_user(), "-l"])
        .arg(app.path().join("log"));
    let run = run_with_deadline(cmd, Duration::from_secs(30));
    run.assert_code(0);
    (dir, run.stderr)
}

fn warning(format: &str) -> String {
    format!(
        "warning: {format} cannot express start-up order: `release` first, `after` and `ready` \
         are not enforced there (release runs once, alongside the other programs)\n"
    )
}

#[test]
fn unordered_formats_warn_once_when_the_app_asks_for_an_order() {
    let setups: [(&str, &str); 4] = [
        (PROCFILE, SETTINGS),
        // A release entry alone, `after` alone, `ready` alone.
        (PROCFILE, ""),
        (
            "web: w\nworker: k\n",
            "[process.worker]\nafter = [\"web\"]\n",
        ),
        ("web: w\n", "[process.web]\nready = { http = \"/up\" }\n"),
    ];
    for (procfile, settings) in setups {
        let app = App::with_procfile(procfile);
        app.write("ganger.toml", settings);
        for format in ["supervisord", "runit", "launchd"] {
            let (_, stderr) = export(&app, format);
            assert_eq!(stderr, warning(format), "{procfile}{settings}");
        }
    }
    let app = App::with_procfile("web: w\nworker: k\n");
    app.write("ganger.toml", "[process.web]\nready = \"started\"\n");
    for format in ["supervisord", "runit", "launchd"] {
        assert_eq!(export(&app, format).1, "", "nothing to order: no warning");
    }
    // A release phase with count 0 is not exported, so there is nothing to order.
    let app = App::with_procfile(PROCFILE);
    let mut cmd = app.ganger();
    cmd.args(["export", "launchd", "out", "-m", "release=0"]);
    let run = run_with_deadline(cmd, Duration::from_secs(30));
    run.assert_code(0);
    assert_eq!(run.stderr, "");
}

#[test]
fn launchd_runs_release_once() {
    let app = ordered_app(SETTINGS);
    let (dir, _) = export(&app, "launchd");
    let job: plist::Dictionary =
        plist::from_file(dir.join("app-release-1.plist")).expect("the plist crate parses it");
    assert_eq!(job.get("KeepAlive"), Some(&false.into()));
    assert_eq!(job.get("RunAtLoad"), Some(&true.into()));
}

#[test]
fn supervisord_runs_release_once_and_keeps_the_rest_up() {
    if !require_tool("supervisord") {
        return;
    }
    let app = ordered_app(SETTINGS);
    let (dir, _) = export(&app, "supervisord");
    let conf = read(&dir.join("app.conf"));
    assert!(
        conf.contains("[program:app-release-1]\n")
            && !conf.contains("[program:app-release-2]")
            && conf.contains("\nautorestart=false\nstartsecs=0\n"),
        "{conf}"
    );
    let mut daemon = start_supervisord(&app, &dir.join("app.conf"));
    let log = app.path().join("supervisord/supervisord.log");
    let out = app.path().join("out");
    wait_until(&mut daemon, "release to exit 0", || {
        read(&log).contains("exited: app-release-1 (exit status 0; expected)")
    });
    wait_until(&mut daemon, "web.1 to start", || {
        out.join("web.1.up").exists()
    });
    drop(daemon);
    assert_eq!(read(&out.join("release.runs")), "migrated\n", "run once");
}

#[test]
fn runit_runs_release_once_and_takes_it_down() {
    for tool in ["runsvdir", "chpst", "svlogd", "sv"] {
        if !require_tool(tool) {
            return;
        }
    }
    let app = ordered_app(SETTINGS);
    let (dir, _) = export(&app, "runit");
    assert!(read(&dir.join("app-release-1/finish")).ends_with("\nexec sv down .\n"));
    let (mut daemon, services) = start_runit(&app, &dir);
    let out = app.path().join("out");
    wait_until(&mut daemon, "release to run once and stay down", || {
        runsv_down_for_good(&services.join("app-release-1")) && out.join("release.runs").exists()
    });
    wait_until(&mut daemon, "web.1 to start", || {
        out.join("web.1.up").exists()
    });
    drop(daemon);
    assert_eq!(read(&out.join("release.runs")), "migrated\n", "run once");
}
