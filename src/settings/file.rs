//! `ganger.toml` as written: parsed with the `toml` crate into typed tables
//! that keep where each value came from, so that every error can name the
//! file, line and column and show the offending text.
//!
//! This file only reads; what the values mean for the Procfile (known types,
//! cycles in `after`, regexes) is checked in `process.rs`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Defaults for long flags, by flag name.
    #[serde(default)]
    pub defaults: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Per-type settings, by process type.
    #[serde(default)]
    pub process: BTreeMap<Spanned<String>, Process>,
}

/// One `[process.NAME]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub ready: Option<Spanned<Ready>>,
    pub ready_timeout: Option<Spanned<f64>>,
    pub after: Option<Vec<Spanned<String>>>,
    pub oneshot: Option<bool>,
    pub restart: Option<Spanned<String>>,
    pub stop_signal: Option<Spanned<String>>,
    pub timeout: Option<Spanned<f64>>,
    pub tty: Option<bool>,
}

/// The keys of a `[process.NAME]` table, for suggestions.
pub const PROCESS_KEYS: [&str; 8] = [
    "ready",
    "ready_timeout",
    "after",
    "oneshot",
    "restart",
    "stop_signal",
    "timeout",
    "tty",
];

/// `ready = "port"` or `ready = { log = "REGEX" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Ready {
    Word(String),
    Probe(Probe),
}

/// `{ log = ... }`, `{ exec = ... }` or `{ http = ... }`: exactly one key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub log: Option<String>,
    pub exec: Option<String>,
    pub http: Option<String>,
}

/// A loaded file: its path, its text (for excerpts) and what it says.
#[derive(Debug, Default)]
pub struct SettingsFile {
    pub path: PathBuf,
    pub text: String,
    pub doc: Document,
}

impl SettingsFile {
    /// Parses `text`, read from `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self> {
        let doc = match toml::from_str::<Document>(&text) {
            Ok(doc) => doc,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let reason = explain(e.message());
                return Err(error_at(path, &text, span, reason));
            }
        };
        Ok(SettingsFile {
            path: path.to_path_buf(),
            text,
            doc,
        })
    }

    /// An error about the text at `span`.
    #[must_use]
    pub fn error(&self, span: Range<usize>, reason: impl Into<String>) -> Error {
        error_at(&self.path, &self.text, span, reason.into())
    }
}

/// Serde's wording made into ganger's: lowercase, with a did-you-mean for a
/// misspelled key, and what `ready` may be.
fn explain(message: &str) -> String {
    let message = message.trim();
    if message.contains("untagged enum Ready") {
        return "`ready` must be \"started\", \"port\", \"notify\", { log = \"REGEX\" }, { exec = \"CMD\" } or { http = \"/PATH\" }".to_string();
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, expected)) = rest.split_once('`')
    {
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect::<Vec<_>>();
        let hint = crate::formation::suggestion(name, known.iter().copied())
            .map_or(String::new(), |s| format!(": did you mean `{s}`?"));
        return format!("unknown key `{name}`{hint} (known: {})", known.join(", "));
    }
    message.to_string()
}

/// `path:line:column: reason` with the line shown and a caret under `span`.
fn error_at(path: &Path, text: &str, span: Range<usize>, reason: String) -> Error {
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or_default();
    let line = 1 + before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count());
    let line_text = text
        .get(line_start..)
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    Error::SettingsFile {
        path: path.to_path_buf(),
        line,
        column,
        text: line_text,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SettingsFile> {
        SettingsFile::parse(Path::new("ganger.toml"), text.to_string())
    }

    #[test]
    fn a_full_file_parses() {
        let file = parse(
            "[defaults]\nformation = \"web=2\"\nport = 3000\n\n[process.web]\nready = \"port\"\nstop_signal = \"INT\"\ntimeout = 0.5\n\n[process.worker]\nready = { log = \"^ready\" }\nafter = [\"web\"]\nrestart = \"on-failure\"\n",
        )
        .expect("parses");
        assert_eq!(file.doc.defaults.len(), 2);
        assert_eq!(file.doc.process.len(), 2);
    }

    #[test]
    fn a_misspelled_key_is_named_with_a_suggestion_and_its_place() {
        let msg = parse("[process.web]\nstop_sginal = \"INT\"\n")
            .expect_err("unknown key")
            .to_string();
        assert!(
            msg.starts_with(
                "ganger.toml:2:1: unknown key `stop_sginal`: did you mean `stop_signal`?"
            ),
            "{msg}"
        );
        assert!(
            msg.contains("  2 | stop_sginal = \"INT\"\n    | ^"),
            "{msg}"
        );
    }

    #[test]
    fn a_wrong_value_type_is_named_with_its_place() {
        let msg = parse("[process.web]\ntimeout = \"soon\"\n")
            .expect_err("bad type")
            .to_string();
        assert!(msg.starts_with("ganger.toml:2:11:"), "{msg}");
        let msg = parse("[process.web]\nready = 3\n")
            .expect_err("bad")
            .to_string();
        assert!(msg.contains("`ready` must be"), "{msg}");
    }

    #[test]
    fn broken_toml_is_named_with_its_place() {
        let msg = parse("[defaults\nport = 1\n")
            .expect_err("broken")
            .to_string();
        assert!(msg.starts_with("ganger.toml:1:"), "{msg}");
    }
}
