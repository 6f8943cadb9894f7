//! supervisord: `APP.conf` with `[program:APP-NAME-N]` per instance and `[group:APP]`.
//!
//! Owns the quoting for supervisord's ini dialect, which is hostile to values:
//! every option is `%`-interpolated (`%(ENV_X)s`), ` ;` and ` #` start inline
//! comments, a line break ends the value, and `environment=` is split by a
//! non-POSIX shlex that cannot escape a quote and strips quotes from both ends
//! of each value. So `environment=` carries `PORT`, `PS` and only the values it
//! passes through unchanged; every other variable is exported by a `/bin/sh`
//! wrapper in `command=`, which supervisord splits with a POSIX shlex, written
//! with no line break, comment leader or bare `%` in it. The file is 0600.
//!
//! Per type: `stopsignal=`, `stopwaitsecs=` and `autorestart=`; a `oneshot`
//! type also gets `startsecs=0`. With `stopasgroup=true` the stop signal
//! reaches the whole process group, as `start` sends it.

use std::fmt::Write as _;
use std::path::Path;

use super::{Entry, Export, Format, Runs, has_marker, marker, sh_quote};
use crate::error::Result;

pub fn render(export: &Export) -> Result<Vec<Entry>> {
    let app = &export.app;
    let root = ini_path(&export.root, "the root")?;
    let log_dir = ini_path(&export.log_dir, "the log directory (-l)")?;
    if log_dir.contains('%') {
        // supervisord interpolates *_logfile twice; refuse rather than guess.
        return Err(Export::unsupported(
            Format::Supervisord,
            "the log directory (-l)",
            "supervisord expands `%` in log file names twice; choose a path without `%`",
        ));
    }
    let mut text = format!("; {}\n", marker(app));
    let mut programs = Vec::new();
    for (process, inst) in export.each() {
        if inst.command.contains(['\n', '\r']) {
            return Err(Export::unsupported(
                Format::Supervisord,
                format!("the command of `{}`", inst.name),
                "it contains a line break, which command= cannot hold",
            ));
        }
        let program = export.dashed(inst);
        let log = format!("{log_dir}/{}-{}", inst.name, inst.number);
        let (listed, exported): (Vec<_>, Vec<_>) = export
            .instance_env(inst)
            .into_iter()
            .partition(|(_, value)| passes_environment(value));
        let environment: Vec<String> = listed
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('%', "%%")))
            .collect();
        let command = if exported.is_empty() {
            format!("/bin/sh -c {}", ini_word(&inst.command))
        } else {
            format!(
                "/bin/sh -c {} sh {}",
                ini_word(&wrapper(&exported)),
                ini_word(&inst.command)
            )
        };
        let life = &process.life;
        let _ = write!(
            text,
            "\n[program:{program}]\ncommand={command}\ndirectory={root}\nuser={user}\n\
             autostart=true\nautorestart={restart}\n{startsecs}stopsignal={signal}\nstopwaitsecs={wait}\n\
             stopasgroup=true\nkillasgroup=true\n\
             stdout_logfile={log}.log\nstderr_logfile={log}.error.log\nenvironment={env}\n",
            user = export.user,
            restart = match life.runs {
                Runs::Always => "true",
                // `unexpected`: an exit code other than `exitcodes` (0), or a signal.
                Runs::OnFailure | Runs::OnceRetried => "unexpected",
                Runs::Once => "false",
            },
            // A task may finish at once; supervisord would call a program that
            // exits within startsecs (default 1) a failed start.
            startsecs = if life.runs.oneshot() {
                "startsecs=0\n"
            } else {
                ""
            },
            signal = life.signal_name(),
            wait = life.timeout_secs(),
            env = environment.join(","),
        );
        programs.push(program);
    }
    let _ = write!(text, "\n[group:{app}]\nprograms={}\n", programs.join(","));
    Ok(vec![Entry::secret(format!("{app}.conf"), text)])
}

/// `APP.conf`, when this app's export wrote it.
pub fn owns(app: &str, name: &str, path: &Path) -> bool {
    name == format!("{app}.conf") && has_marker(path, app)
}

/// Whether supervisord's `environment=KEY="value"` parsing gives back exactly
/// `value`: no quote it cannot escape or would strip, no comment leader, no
/// line break or other control character, no `%(` (supervisord replaces
/// `%(here)s` even after a `%%`).
fn passes_environment(value: &str) -> bool {
    !value.contains("%(")
        && !value.starts_with('\'')
        && !value.ends_with('\'')
        && !value
            .chars()
            .any(|c| matches!(c, '"' | ';' | '#') || c.is_control())
}

/// A shell script that exports `vars` without a line break in its text, then
/// runs its first argument with `/bin/sh -c`, as ganger would.
fn wrapper(vars: &[(String, String)]) -> String {
    let mut script = String::new();
    if vars.iter().any(|(_, v)| v.contains('\n')) {
        script.push_str("nl=$(printf '\\nx'); nl=${nl%x}; ");
    }
    if vars.iter().any(|(_, v)| v.contains('\r')) {
        script.push_str("cr=$(printf '\\rx'); cr=${cr%x}; ");
    }
    script.push_str("export");
    for (key, value) in vars {
        script.push(' ');
        script.push_str(key);
        script.push('=');
        script.push_str(&one_line_word(value));
    }
    script.push_str("; exec /bin/sh -c \"$1\"");
    script
}

/// A shell word for `value` with no raw line break: each `\n` and `\r` is
/// spliced in from `$nl` / `$cr`, set by [`wrapper`].
fn one_line_word(value: &str) -> String {
    let mut out = String::new();
    let mut part = String::new();
    for c in value.chars() {
        let var = match c {
            '\n' => "\"$nl\"",
            '\r' => "\"$cr\"",
            _ => {
                part.push(c);
                continue;
            }
        };
        if !part.is_empty() {
            out.push_str(&sh_quote(&part));
            part.clear();
        }
        out.push_str(var);
    }
    if !part.is_empty() || out.is_empty() {
        out.push_str(&sh_quote(&part));
    }
    out
}

/// One word for supervisord's POSIX shlex split of `command=`, safe in its ini:
/// single-quoted, with `'`, `;` and `#` outside the quotes and backslashed (so
/// no comment leader follows a space) and `%` doubled. `s` has no line break
/// ([`one_line_word`] sees to that; Procfile commands are one line).
fn ini_word(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | ';' | '#' => {
                out.push('\'');
                out.push('\\');
                out.push(c);
                out.push('\'');
            }
            // supervisord replaces `%(here)s` as plain text before it reads
            // `%%`, so no `%(` may appear: an empty '' splits them.
            '%' if chars.peek() == Some(&'(') => out.push_str("%%''"),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A path for an unquoted ini value: `%` doubled; a comment leader after a
/// space cannot be written, so it is an error.
fn ini_path(path: &str, what: &str) -> Result<String> {
    let chars: Vec<char> = path.chars().collect();
    let comment = chars
        .windows(2)
        .any(|w| w[0].is_whitespace() && matches!(w[1], ';' | '#'));
    if comment || path.contains("%(") {
        return Err(Export::unsupported(
            Format::Supervisord,
            what,
            format!("`{path}` has ` ;` or ` #` (a comment to supervisord) or `%(` (an expansion)"),
        ));
    }
    Ok(path.replace('%', "%%"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_only_used_where_faithful() {
        assert!(passes_environment("postgres://u:p@h/db?x=1&y=2"));
        assert!(passes_environment("a b, c = d \\ 100%"));
        assert!(!passes_environment("say \"hi\""));
        assert!(!passes_environment("'quoted'"));
        assert!(!passes_environment("a ;b"));
        assert!(!passes_environment("a\nb"));
    }

    #[test]
    fn words_have_no_comment_leader_or_line_break() {
        let word = ini_word("a ;b #c 'd' 50%");
        assert_eq!(word, "'a '\\;'b '\\#'c '\\''d'\\'' 50%%'");
        assert_eq!(ini_word("%(here)s"), "'%%''(here)s'");
        let script = wrapper(&[("A".into(), "x\ny\r".into())]);
        assert!(!script.contains('\n') && !script.contains('\r'), "{script}");
    }
}
