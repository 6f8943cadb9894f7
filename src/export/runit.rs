//! runit: a service directory `APP-NAME-N/` per instance with `run`, `env/KEY`
//! files read by `chpst -e`, and `log/run` feeding `svlogd`.
//!
//! Owns the quoting for runit. `chpst -e` reads the first line of each file,
//! turns NUL bytes into newlines and strips trailing spaces and tabs; so a
//! newline is written as NUL, and the one thing a file cannot carry (a value
//! ending in a space or a tab) is exported by `run` in single quotes instead.
//! `run` is a POSIX shell script that single-quotes everything it names.
//! `env/` is 0700 with 0600 files; `run` is 0700 when it carries a value, else 0755.

use std::path::Path;

use super::{Entry, Export, after_app, has_marker, marker, sh_quote};
use crate::error::Result;

#[expect(
    clippy::unnecessary_wraps,
    reason = "every format's render has one signature"
)]
pub fn render(export: &Export) -> Result<Vec<Entry>> {
    let mut services = Vec::new();
    for inst in export.instances() {
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
        services.push(Entry::Dir {
            name: export.dashed(inst),
            mode: 0o755,
            entries: vec![
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
            ],
        });
    }
    Ok(services)
}

/// The `APP-*` service directories this app's export wrote.
pub fn owns(app: &str, name: &str, path: &Path) -> bool {
    after_app(app, name).is_some() && path.is_dir() && has_marker(&path.join("run"), app)
}
