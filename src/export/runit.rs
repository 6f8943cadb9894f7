//! runit: a service directory `APP-NAME-N/` per instance with `run`, `env/KEY`
//! files read by `chpst -e`, and `log/run` feeding `svlogd`.
//!
//! Owns the quoting for runit. `chpst -e` reads the first line of each file,
//! turns NUL bytes into newlines and strips trailing spaces and tabs; so a
//! newline is written as NUL, and the one thing a file cannot carry (a value
//! ending in a space or a tab) is exported by `run` in single quotes instead.
//! `run` is a POSIX shell script that single-quotes everything it names.
//! `env/` is 0700 with 0600 files; `run` is 0700 when it carries a value, else 0755.
//!
//! Per type: a stop signal other than SIGTERM through `control/t`, and
//! `restart`/`oneshot` through `finish`. runit has no stop timeout of its own
//! (`sv -w SECS force-stop` decides it), so `timeout` is not carried.

use std::path::Path;

use super::{Entry, Export, Lifecycle, Runs, after_app, has_marker, marker, sh_quote};
use crate::error::Result;

#[expect(
    clippy::unnecessary_wraps,
    reason = "every format's render has one signature"
)]
pub fn render(export: &Export) -> Result<Vec<Entry>> {
    let mut services = Vec::new();
    for (process, inst) in export.each() {
        let mut env_files = Vec::new();
        let mut exported = Vec::new();
        for (key, value) in export.instance_env(inst) {
            if value.ends_with([' ', '\t']) {
                exported.push(format!("export {key}={}\n", sh_quote(&value)));
            } else {
                let mut bytes = value.replace('\n', "\0").into_bytes();
                bytes.push(b'\n');
                env_files.push(Entry::secret(key, bytes));
            }
        }
        let run = format!(
            "#!/bin/sh\n# {marker}\nexec 2>&1\nenvdir=\"$PWD/env\"\n{exports}cd {root} || exit 1\n\
             exec chpst -u {user} -e \"$envdir\" /bin/sh -c {command}\n",
            marker = marker(&export.app),
            exports = exported.concat(),
            root = sh_quote(&export.root),
            user = sh_quote(&export.user),
            command = sh_quote(&inst.command),
        );
        let log_dir = format!("{}/{}-{}", export.log_dir, inst.name, inst.number);
        let log_run = format!(
            "#!/bin/sh\n# {marker}\nset -e\nLOG={log}\ntest -d \"$LOG\" || {{ mkdir -p -m 2750 \"$LOG\" && chown {user} \"$LOG\"; }}\n\
             exec chpst -u {user} svlogd -tt \"$LOG\"\n",
            marker = marker(&export.app),
            log = sh_quote(&log_dir),
            user = sh_quote(&export.user),
        );
        let mut entries = vec![
            Entry::File {
                name: "run".into(),
                contents: run.into_bytes(),
                mode: if exported.is_empty() { 0o755 } else { 0o700 },
            },
            Entry::Dir {
                name: "env".into(),
                mode: 0o700,
                entries: env_files,
            },
            Entry::Dir {
                name: "log".into(),
                mode: 0o755,
                entries: vec![Entry::File {
                    name: "run".into(),
                    contents: log_run.into_bytes(),
                    mode: 0o755,
                }],
            },
        ];
        entries.extend(lifecycle_scripts(&process.life, &export.app));
        services.push(Entry::Dir {
            name: export.dashed(inst),
            mode: 0o755,
            entries,
        });
    }
    Ok(services)
}

/// `control/t` for a stop signal other than SIGTERM, and `finish` for a type
/// that is not started again after every exit.
///
/// runsv runs `control/t` (in the service directory) before it would send
/// SIGTERM, on `sv down`, `sv restart` and `sv exit`; when the script exits 0
/// runsv sends no SIGTERM itself. Like runsv's own SIGTERM, the signal goes to
/// the service's pid only. If the script fails, runsv still sends SIGTERM.
///
/// runsv starts a service again after every exit. `finish` gets the exit code
/// of `run` (-1 after a signal) and, to let a clean exit (or any exit, for a
/// task run once) be the last one, asks runsv to take the service down: the
/// request is written before `finish` exits, so runsv reads it before it
/// would start `run` again.
fn lifecycle_scripts(life: &Lifecycle, app: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let marker = marker(app);
    if life.custom_signal().is_some() {
        let script = format!(
            "#!/bin/sh\n# {marker}\nexec kill -s {} \"$(cat supervise/pid)\"\n",
            life.signal_name()
        );
        entries.push(Entry::Dir {
            name: "control".into(),
            mode: 0o755,
            entries: vec![Entry::File {
                name: "t".into(),
                contents: script.into_bytes(),
                mode: 0o755,
            }],
        });
    }
    let down = match life.runs {
        Runs::Always => None,
        Runs::OnFailure | Runs::OnceRetried => Some("if [ \"$1\" = 0 ]; then exec sv down .; fi\n"),
        Runs::Once => Some("exec sv down .\n"),
    };
    if let Some(down) = down {
        entries.push(Entry::File {
            name: "finish".into(),
            contents: format!("#!/bin/sh\n# {marker}\n{down}").into_bytes(),
            mode: 0o755,
        });
    }
    entries
}

/// The `APP-*` service directories this app's export wrote.
pub fn owns(app: &str, name: &str, path: &Path) -> bool {
    after_app(app, name).is_some() && path.is_dir() && has_marker(&path.join("run"), app)
}
