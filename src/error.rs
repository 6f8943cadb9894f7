//! The one error type for everything a user can get wrong or the OS can refuse.
//!
//! Messages are lowercase, name the file, line or flag involved, and are printed
//! once by `main`. Nothing here prints; nothing here decides control flow beyond
//! [`Error::exit_code`].

use std::io;
use std::path::PathBuf;

/// A failure that ends the command with a message and a non-zero status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Procfile at {path} (use -f to pick another, or -d to choose the root)")]
    ProcfileMissing { path: PathBuf },

    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{path}:{line}: {reason}\n{}", excerpt(*.line, .text, *.column))]
    ProcfileLine {
        path: PathBuf,
        line: usize,
        text: String,
        /// Where in `text` the problem is, in characters; `^` points there.
        column: usize,
        reason: String,
    },

    #[error(
        "{path}:{second}: duplicate process name `{name}` (first defined on line {first})\n  {first} | {first_text}\n  {second} | {second_text}"
    )]
    ProcfileDuplicate {
        path: PathBuf,
        name: String,
        first: usize,
        first_text: String,
        second: usize,
        second_text: String,
    },

    #[error("{path}:{line}:{}: {reason}\n{}", .column + 1, excerpt(*.line, .text, *.column))]
    SettingsFile {
        path: PathBuf,
        line: usize,
        /// 0-based, in characters; shown 1-based.
        column: usize,
        text: String,
        reason: String,
    },

    #[error("{path}: {reason}")]
    Foreman { path: PathBuf, reason: String },

    #[error("{path}: the Procfile defines no processes")]
    ProcfileEmpty { path: PathBuf },

    #[error("{path}: not valid UTF-8 on line {line}")]
    NotUtf8 { path: PathBuf, line: usize },

    #[error("env file {path} does not exist (named by -e/--env)")]
    EnvMissing { path: PathBuf },

    #[error("{path}:{line}: cannot parse env entry: {reason}\n  {line} | {text}")]
    EnvSyntax {
        path: PathBuf,
        line: usize,
        text: String,
        reason: String,
    },

    #[error("{path}:{line}: {what}")]
    EnvTooLarge {
        path: PathBuf,
        line: usize,
        what: String,
    },

    #[error("cannot read {path}: it is {kind}, not a regular file")]
    NotRegularFile { path: PathBuf, kind: &'static str },

    #[error("cannot read {path}: it is larger than {} MiB", .limit >> 20)]
    FileTooLarge { path: PathBuf, limit: u64 },

    #[error(
        "invalid base port `{value}` from PORT in {path}:{line}: expected a number from 0 to 65535"
    )]
    PortDotenv {
        path: PathBuf,
        line: usize,
        value: String,
    },

    #[error("invalid formation `{spec}`: {reason}")]
    Formation { spec: String, reason: String },

    #[error("unknown process `{name}`{hint} (the Procfile defines {known})")]
    UnknownProcess {
        name: String,
        hint: String,
        known: String,
    },

    #[error(
        "{ps} would get PORT={port}, past 65535\n  PORT = base + 100 * type position (from 0) + instance - 1 = {base} + 100*{position} + {}\n  {}",
        .number - 1,
        port_fix(*.highest_base)
    )]
    PortRange {
        ps: String,
        port: u64,
        base: u16,
        /// The type's 0-based position in the Procfile.
        position: usize,
        /// The 1-based instance number.
        number: usize,
        /// The highest base port at which every planned instance fits, if any.
        highest_base: Option<u16>,
    },

    #[error("invalid base port `{value}` from ${var}: expected a number from 0 to 65535")]
    PortEnv { var: &'static str, value: String },

    #[error("root directory {path} does not exist or is not a directory (set by -d/--root)")]
    RootMissing { path: PathBuf },

    #[error("nothing to start: the formation gives every selected process 0 instances")]
    NothingToStart,

    #[error("nothing to export: the formation gives every process 0 instances")]
    NothingToExport,

    #[error("invalid {flag} `{value}`: {reason}")]
    ExportFlag {
        flag: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("cannot export {what} as {format}: {reason}")]
    ExportUnsupported {
        format: &'static str,
        what: String,
        reason: String,
    },

    #[error("refusing to replace {path}: {reason}")]
    ExportOverwrite { path: PathBuf, reason: String },

    #[error("{0}")]
    Control(String),

    #[error("{0}: command not found")]
    CommandNotFound(String),

    #[error("{0}: cannot execute: its interpreter (the `#!` line) was not found")]
    InterpreterNotFound(String),

    #[error("{0}: permission denied (not executable)")]
    NotExecutable(String),

    #[error("{what}")]
    Os {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The process exit status this error ends ganger with.
    ///
    /// 127 and 126 follow the shell's convention for a command that is missing or
    /// cannot be executed; every other failure is 1.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CommandNotFound(_) | Error::InterpreterNotFound(_) => 127,
            Error::NotExecutable(_) => 126,
            _ => 1,
        }
    }

    /// Wraps an OS error with a description of what ganger was doing.
    pub fn os(what: impl Into<String>, source: io::Error) -> Self {
        Error::Os {
            what: what.into(),
            source,
        }
    }
}

/// `  3 | web.1: x` and under it a `^` at `column`, as a compiler shows a line.
fn excerpt(line: usize, text: &str, column: usize) -> String {
    let number = line.to_string();
    let gutter = " ".repeat(number.len());
    // Tabs are kept so the caret lines up under tab-indented text.
    let indent: String = text
        .chars()
        .take(column)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("  {number} | {text}\n  {gutter} | {indent}^")
}

/// What to change when a PORT does not fit.
fn port_fix(highest_base: Option<u16>) -> String {
    match highest_base {
        Some(base) => {
            format!("the highest base port this formation fits is {base}: use -p {base} or lower")
        }
        None => "no base port fits this many instances: lower the counts in -m".to_string(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text of a file that must be UTF-8; otherwise an error naming the first
/// line that is not.
pub fn utf8_text(path: &std::path::Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        Error::NotUtf8 {
            path: path.to_path_buf(),
            line: 1 + memchr::memchr_iter(b'\n', valid).count(),
        }
    })
}

/// The error and its causes, joined with `: `, for printing once.
#[must_use]
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
