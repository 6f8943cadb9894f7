//! launchd: an XML property list `APP-NAME-N.plist` per instance.
//!
//! Owns the launchd job model: `Label`, `ProgramArguments` (`/bin/sh -c CMD`),
//! `EnvironmentVariables`, `WorkingDirectory`, `UserName`, logs and
//! `ExitTimeOut`. The `plist` crate does the XML escaping; launchd passes
//! arguments and variables as they are, with no shell or expansion in between.
//! XML 1.0 cannot hold most control characters at all, nor U+FFFE and U+FFFF,
//! so a value with one, or with any Unicode noncharacter, is an error here. The files carry the environment and are 0600.
//!
//! Per type: `ExitTimeOut` and `KeepAlive`. launchd has no key for the stop
//! signal (it always sends SIGTERM), so `stop_signal` is not carried.

use std::path::Path;

use plist::{Dictionary, Value};

use super::checks::refuse_noncharacter;
use super::{Entry, Export, Format, Runs, after_app, marker};
use crate::error::{Error, Result};

pub fn render(export: &Export) -> Result<Vec<Entry>> {
    let why = "an XML property list does not carry (XML 1.0 excludes U+FFFE and U+FFFF outright)";
    export.refuse_noncharacters(Format::Launchd, why)?;
    refuse_noncharacter(
        Format::Launchd,
        "the log directory (-l)",
        &export.log_dir,
        why,
    )?;
    let mut entries = Vec::new();
    for (process, inst) in export.each() {
        let label = export.dashed(inst);
        let log = format!("{}/{label}.log", export.log_dir);
        let mut env = Dictionary::new();
        for (key, value) in export.instance_env(inst) {
            check_xml(&key, &value)?;
            env.insert(key, Value::String(value));
        }
        check_xml("the command", &inst.command)?;
        let mut job = Dictionary::new();
        job.insert("Label".into(), Value::String(label.clone()));
        job.insert(
            "ProgramArguments".into(),
            Value::Array(vec![
                "/bin/sh".into(),
                "-c".into(),
                inst.command.clone().into(),
            ]),
        );
        job.insert("EnvironmentVariables".into(), Value::Dictionary(env));
        job.insert("WorkingDirectory".into(), export.root.clone().into());
        job.insert("UserName".into(), export.user.clone().into());
        job.insert("RunAtLoad".into(), true.into());
        job.insert("KeepAlive".into(), keep_alive(process.life.runs));
        job.insert("StandardOutPath".into(), log.clone().into());
        job.insert("StandardErrorPath".into(), log.into());
        // launchd reads 0 as "wait forever"; 1 s is the nearest it has.
        job.insert(
            "ExitTimeOut".into(),
            process.life.timeout_secs().max(1).into(),
        );

        let mut xml = Vec::new();
        Value::Dictionary(job)
            .to_writer_xml(&mut xml)
            .map_err(|e| {
                Error::os(
                    format!("cannot write {label}.plist"),
                    std::io::Error::other(e),
                )
            })?;
        xml.push(b'\n');
        entries.push(Entry::secret(
            format!("{label}.plist"),
            with_marker(xml, &export.app),
        ));
    }
    Ok(entries)
}

/// `KeepAlive`: `true` restarts after every exit, `{SuccessfulExit = false}`
/// only after a non-zero one (or a signal), `false` runs it once (`RunAtLoad`).
fn keep_alive(runs: Runs) -> Value {
    match runs {
        Runs::Always => true.into(),
        Runs::OnFailure | Runs::OnceRetried => {
            let mut when = Dictionary::new();
            when.insert("SuccessfulExit".into(), false.into());
            Value::Dictionary(when)
        }
        Runs::Once => false.into(),
    }
}

/// The `APP-*.plist` files this app's export wrote (the marker is an XML
/// comment before `<plist>`).
#[expect(
    clippy::case_sensitive_file_extension_comparisons,
    reason = "ganger writes these names itself, in lower case"
)]
pub fn owns(app: &str, name: &str, path: &Path) -> bool {
    after_app(app, name).is_some_and(|rest| rest.ends_with(".plist"))
        && super::has_marker(path, app)
}

/// Puts the marker comment before the `<plist` element.
fn with_marker(xml: Vec<u8>, app: &str) -> Vec<u8> {
    let comment = format!("<!-- {} -->\n", marker(app));
    match xml.windows(6).position(|w| w == b"<plist") {
        Some(at) => [&xml[..at], comment.as_bytes(), &xml[at..]].concat(),
        None => xml,
    }
}

/// XML 1.0 has no way to write most control characters, and a raw carriage
/// return would be read back as a line feed.
fn check_xml(what: &str, value: &str) -> Result<()> {
    match value
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        Some(c) => Err(Export::unsupported(
            Format::Launchd,
            what.to_string(),
            format!(
                "the value contains {}, which an XML property list cannot hold",
                c.escape_unicode()
            ),
        )),
        None => Ok(()),
    }
}
