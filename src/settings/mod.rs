//! Settings from every source, resolved once: command line > `GANGER_*`
//! variable > `ganger.toml` `[defaults]` > `.foreman` > built-in default.
//!
//! The resolution is clap's own: the file defaults become the arguments'
//! default values before the command line is parsed, so clap's order of
//! sources (command line, then environment, then default) does the rest and
//! no use site checks where a value came from. Per-type tables
//! (`[process.NAME]`) are checked against the Procfile once it is loaded
//! ([`Settings::processes`]).

pub mod file;
pub mod foreman;
pub mod process;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use self::file::SettingsFile;
use self::process::ProcessSettings;
use crate::cli::Cli;
use crate::config;
use crate::error::{Error, Result};
use crate::procfile::Procfile;

/// The settings file's name in the root.
pub const FILE_NAME: &str = "ganger.toml";
/// foreman's defaults file in the root.
pub const FOREMAN_FILE: &str = ".foreman";
/// The largest settings file read.
const MAX_SIZE: u64 = 1024 * 1024;

/// What the settings files say beyond flag defaults.
#[derive(Debug, Default)]
pub struct Settings {
    /// The `ganger.toml` in use, if any.
    pub file: Option<SettingsFile>,
}

impl Settings {
    /// Per-type settings, checked against `procfile`.
    pub fn processes(&self, procfile: &Procfile) -> Result<BTreeMap<String, ProcessSettings>> {
        match &self.file {
            Some(file) => process::validate(file, procfile),
            None => Ok(BTreeMap::new()),
        }
    }
}

/// How a parse ended when it did not produce a command line.
#[derive(Debug)]
pub enum Failure {
    /// clap's own outcome (`--help`, `--version`, a bad flag): clap prints it.
    Clap(clap::Error),
    /// A settings file is wrong.
    Settings(Error),
}

/// One default from a file: the flag, its values, and where it was written.
struct FileDefault {
    flag: String,
    values: Vec<String>,
    /// The directory of the file, which relative paths are relative to.
    base: PathBuf,
    /// The file and the span of the key, for errors.
    origin: Origin,
}

#[derive(Clone)]
enum Origin {
    Toml(Range<usize>),
    Foreman(PathBuf),
}

/// Parses `args` with the defaults of `ganger.toml` and `.foreman` applied.
pub fn parse(args: &[OsString]) -> std::result::Result<(Cli, Settings), Failure> {
    let plain = Cli::command()
        .try_get_matches_from(args)
        .map_err(Failure::Clap)?;
    let first = Cli::from_arg_matches(&plain).map_err(Failure::Clap)?;
    let root = config::paths(&first.app.source()).1;
    let toml_path = match &first.app.config {
        Some(path) => Some(path.clone()),
        None => Some(root.join(FILE_NAME)).filter(|p| p.exists()),
    };
    let file = match toml_path {
        Some(path) => Some(
            read(&path)
                .and_then(|text| SettingsFile::parse(&path, text))
                .map_err(Failure::Settings)?,
        ),
        None => None,
    };
    let foreman_path = root.join(FOREMAN_FILE);
    let mut defaults = Vec::new();
    if foreman_path.exists() {
        let text = read(&foreman_path).map_err(Failure::Settings)?;
        for (flag, values) in foreman::parse(&foreman_path, &text).map_err(Failure::Settings)? {
            let origin = Origin::Foreman(foreman_path.clone());
            defaults.push(FileDefault {
                flag,
                values,
                base: root.clone(),
                origin,
            });
        }
    }
    if let Some(file) = &file {
        for (key, value) in &file.doc.defaults {
            let values = flag_values(value.get_ref())
                .ok_or_else(|| Failure::Settings(file.error(value.span(), format!("[defaults] {}: a value must be text, a number, true/false or a list of those", key.get_ref()))))?;
            defaults.push(FileDefault {
                flag: key.get_ref().replace('_', "-"),
                values,
                base: file
                    .path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                origin: Origin::Toml(key.span()),
            });
        }
    }
    if defaults.is_empty() {
        return Ok((first, Settings { file }));
    }
    let error_at = |origin: &Origin, reason: String| match origin {
        Origin::Toml(span) => file.as_ref().map_or_else(
            || Error::Control(reason.clone()),
            |f| f.error(span.clone(), reason.clone()),
        ),
        Origin::Foreman(path) => Error::Foreman {
            path: path.clone(),
            reason,
        },
    };
    let command = with_defaults(&plain, &defaults)
        .map_err(|(origin, reason)| Failure::Settings(error_at(&origin, reason)))?;
    let matches = match command.try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(e) => {
            // The plain parse succeeded, so a file's default is what failed.
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(arg)) => arg.clone(),
                _ => String::new(),
            };
            let culprit = defaults.iter().rev().find(|d| {
                arg.contains(&format!("--{} ", d.flag)) || arg.ends_with(&format!("--{}", d.flag))
            });
            let reason = format!("[defaults]: {}", e.kind());
            let detail = e.render().to_string();
            let detail = detail
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            return Err(Failure::Settings(match culprit {
                Some(d) => error_at(&d.origin, format!("{}: {detail}", d.flag)),
                None => Error::Control(format!("{reason}: {detail}")),
            }));
        }
    };
    let cli = Cli::from_arg_matches(&matches).map_err(Failure::Clap)?;
    Ok((cli, Settings { file }))
}

/// Reads a settings file: a regular file, not too big.
fn read(path: &Path) -> Result<String> {
    let fail = |reason: String| Error::Foreman {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::os(format!("cannot read {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".to_string()));
    }
    if meta.len() > MAX_SIZE {
        return Err(fail(format!("larger than {} KiB", MAX_SIZE / 1024)));
    }
    std::fs::read_to_string(path)
        .map_err(|e| Error::os(format!("cannot read {}", path.display()), e))
}

/// A TOML value as flag values: `true`, `3000`, `"web=2"`, `["a", "b"]`.
fn flag_values(value: &toml::Value) -> Option<Vec<String>> {
    match value {
        toml::Value::String(s) => Some(vec![s.clone()]),
        toml::Value::Integer(n) => Some(vec![n.to_string()]),
        toml::Value::Float(f) => Some(vec![f.to_string()]),
        toml::Value::Boolean(b) => Some(vec![b.to_string()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Integer(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Every long flag of every command, for suggestions.
fn all_flags(command: &clap::Command) -> Vec<String> {
    let mut flags: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    for sub in command.get_subcommands() {
        flags.extend(all_flags(sub));
    }
    flags.sort();
    flags.dedup();
    flags
}

/// The command with each file default as the default value of its flag, for
/// the command being run. A flag of another command only is left alone (an
/// export's `app` while starting); a flag no command has is an error.
fn with_defaults(
    plain: &ArgMatches,
    defaults: &[FileDefault],
) -> std::result::Result<clap::Command, (Origin, String)> {
    let mut command = Cli::command();
    let known = all_flags(&command);
    let sub_name = plain.subcommand_name().map(str::to_string);
    for default in defaults {
        if matches!(default.flag.as_str(), "help" | "version" | "config")
            || !known.contains(&default.flag)
        {
            let hint =
                crate::formation::suggestion(&default.flag, known.iter().map(String::as_str))
                    .map_or(String::new(), |s| format!(": did you mean `{s}`?"));
            return Err((
                default.origin.clone(),
                format!("unknown flag `{}`{hint}", default.flag),
            ));
        }
        let top = command
            .get_arguments()
            .find(|a| a.get_long() == Some(default.flag.as_str()))
            .map(|a| a.get_id().clone());
        if let Some(id) = top {
            command = command.mut_arg(id, |arg| set_default(arg, &resolved(default)));
            continue;
        }
        let Some(sub_name) = &sub_name else { continue };
        let Some(sub) = command.find_subcommand(sub_name) else {
            continue;
        };
        let Some(id) = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(default.flag.as_str()))
            .map(|a| a.get_id().clone())
        else {
            continue;
        };
        command = command.mut_subcommand(sub_name, |sub| {
            sub.mut_arg(id, |arg| set_default(arg, &resolved(default)))
        });
    }
    Ok(command)
}

/// Flags whose values are paths: relative ones are relative to the file that
/// names them, wherever ganger runs.
const PATH_FLAGS: [&str; 4] = ["procfile", "root", "env", "socket"];

/// The values of `default`, paths made relative to its file's directory.
fn resolved(default: &FileDefault) -> Vec<String> {
    if !PATH_FLAGS.contains(&default.flag.as_str()) || default.base.as_os_str().is_empty() {
        return default.values.clone();
    }
    default
        .values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| default.base.join(v.trim()).display().to_string())
        .collect()
}

fn set_default(arg: clap::Arg, values: &[String]) -> clap::Arg {
    // `tty = true` means the flag given alone (`--tty`, every type), `tty =
    // false` not at all; likewise `color = true` is `--color`, always.
    let optional_value = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
    if optional_value && values.len() == 1 {
        let alone = if arg.get_id() == "color" {
            "always"
        } else {
            "all"
        };
        match values[0].as_str() {
            "true" => return arg.default_value(alone),
            "false" => return arg,
            _ => {}
        }
    }
    let values: Vec<String> =
        if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
            values.iter().take(1).cloned().collect()
        } else if arg.get_value_delimiter().is_some() {
            values
                .iter()
                .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
                .collect()
        } else {
            values.to_vec()
        };
    arg.default_values(values)
}
