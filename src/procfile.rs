//! The Procfile: `name: command` lines in, an ordered list of entries out.
//!
//! The grammar is `^([A-Za-z0-9_-]+):[ \t]*(.+)$`; blank lines and lines whose first
//! non-blank character is `#` are skipped, and every other line is an error that
//! names the file and line. Order matters: a type's position feeds PORT numbering
//! and its color. This module reads text; it never runs anything.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One process type of the Procfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub command: String,
    /// 1-based line number in the Procfile.
    pub line: usize,
}

/// A parsed Procfile: its path (as the user gave it) and its entries in file order.
#[derive(Debug, Clone)]
pub struct Procfile {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
}

impl Procfile {
    /// Reads and parses the Procfile at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        // Only a regular file of sane size is read: a FIFO or a device named
        // by -f would hang or fill memory.
        let Some(text) = crate::textfile::read(path)? else {
            // The absolute path says where ganger looked even when the user
            // gave none (`Procfile` in whatever directory this is).
            return Err(Error::ProcfileMissing {
                path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            });
        };
        parse(path, &text)
    }

    /// The entry called `name`, with its 0-based position.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<(usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == name)
    }

    /// The names of every entry, comma separated, for messages.
    #[must_use]
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        names.join(", ")
    }
}

impl fmt::Display for Procfile {
    /// Writes the entries back in Procfile syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "{}: {}", entry.name, entry.command)?;
        }
        Ok(())
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Where a line that is not `name: command` goes wrong (as a character
/// column) and why, given the length of the valid name it starts with.
fn misplaced(content: &str, name_len: usize) -> (usize, String) {
    let name = &content[..name_len];
    let Some(next) = content[name_len..].chars().next() else {
        return (name_len, format!("expected `:` after the name `{name}`"));
    };
    let shown = next.escape_debug();
    if name_len == 0 {
        let reason = if next.is_whitespace() {
            "an entry starts with its name at the beginning of the line, with no blank before it"
                .to_string()
        } else {
            format!("a process name cannot start with `{shown}` (use letters, digits, `_` or `-`)")
        };
        return (0, reason);
    }
    // The text up to the first colon is what the author meant as the name,
    // unless it holds a blank: then the colon is missing instead.
    let meant = content.find(':').map(|colon| &content[name_len..colon]);
    let reason = match meant {
        Some(between) if between.trim().is_empty() => {
            format!("no blank is allowed between the name `{name}` and `:`")
        }
        Some(between) if !between.contains(char::is_whitespace) => {
            format!("a process name cannot contain `{shown}` (use letters, digits, `_` or `-`)")
        }
        _ => format!("expected `:` right after the name `{name}`"),
    };
    (name_len, reason)
}

/// Parses Procfile text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Procfile> {
    let mut entries: Vec<Entry> = Vec::new();
    // Name -> line of its entry: a Procfile may be generated and long, so the
    // duplicate check must not rescan the entries for every line.
    let mut lines_by_name: HashMap<&str, usize> = HashMap::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let name_len = content.bytes().take_while(|&b| is_name_byte(b)).count();
        let Some(rest) = content[name_len..].strip_prefix(':') else {
            let (column, reason) = misplaced(content, name_len);
            return Err(Error::ProcfileLine {
                path: path.to_path_buf(),
                line,
                text: content.to_string(),
                column,
                reason,
            });
        };
        let command = rest.trim_matches(|c: char| c == ' ' || c == '\t');
        if command.is_empty() {
            return Err(Error::ProcfileLine {
                path: path.to_path_buf(),
                line,
                text: content.to_string(),
                column: content.chars().count(),
                reason: "the process has no command".to_string(),
            });
        }
        let name = &content[..name_len];
        match lines_by_name.entry(name) {
            Slot::Occupied(first) => {
                let first = *first.get();
                let first_text = text.split('\n').nth(first - 1).unwrap_or_default();
                return Err(Error::ProcfileDuplicate {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                    first,
                    first_text: first_text
                        .strip_suffix('\r')
                        .unwrap_or(first_text)
                        .to_string(),
                    second: line,
                    second_text: content.to_string(),
                });
            }
            Slot::Vacant(slot) => {
                slot.insert(line);
            }
        }
        entries.push(Entry {
            name: name.to_string(),
            command: command.to_string(),
            line,
        });
    }
    if entries.is_empty() {
        return Err(Error::ProcfileEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(Procfile {
        path: path.to_path_buf(),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Result<Procfile> {
        parse(Path::new("Procfile"), text)
    }

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        p(text)
            .expect("valid procfile")
            .entries
            .into_iter()
            .map(|e| (e.name, e.command, e.line))
            .collect()
    }

    #[test]
    fn parses_entries_in_order_with_lines() {
        let text = "# comment\n\nweb: bundle exec puma -p $PORT\n  # indented comment\nworker:python3 w.py\nclock-1_x:\t echo hi  \n";
        assert_eq!(
            pairs(text),
            vec![
                ("web".into(), "bundle exec puma -p $PORT".into(), 3),
                ("worker".into(), "python3 w.py".into(), 5),
                ("clock-1_x".into(), "echo hi".into(), 6),
            ]
        );
    }

    #[test]
    fn crlf_lines_work() {
        assert_eq!(
            pairs("web: a b\r\nworker: c\r\n"),
            vec![
                ("web".into(), "a b".into(), 1),
                ("worker".into(), "c".into(), 2)
            ]
        );
    }

    #[test]
    fn command_keeps_inner_colons_and_hashes() {
        assert_eq!(
            pairs("web: echo a:b # not a comment"),
            vec![("web".into(), "echo a:b # not a comment".into(), 1)]
        );
    }

    #[test]
    fn bad_line_names_file_line_and_text() {
        let err = p("web: ok\nthis is not an entry\n").expect_err("invalid");
        let msg = err.to_string();
        assert!(msg.starts_with("Procfile:2: "), "{msg}");
        assert!(msg.contains("this is not an entry"), "{msg}");
    }

    #[test]
    fn name_with_invalid_character_is_an_error() {
        let msg = p("web.1: x").expect_err("invalid").to_string();
        assert!(msg.contains("Procfile:1:"), "{msg}");
        let msg = p(" web: x").expect_err("leading blank").to_string();
        assert!(msg.contains("Procfile:1:"), "{msg}");
        let msg = p("web : x").expect_err("space before colon").to_string();
        assert!(msg.contains("Procfile:1:"), "{msg}");
    }

    /// The message and the column of the caret under the line's text.
    fn caret(text: &str) -> (String, usize) {
        let msg = p(text).expect_err("invalid").to_string();
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3, "{msg}");
        let shown = lines[1].find(" | ").expect("gutter") + 3;
        let under = lines[2].find('^').expect("caret");
        (lines[0].to_string(), under - shown)
    }

    #[test]
    fn the_caret_points_at_the_problem() {
        for (text, column, needle) in [
            ("web.1: x", 3, "cannot contain `.`"),
            (
                "web : x",
                3,
                "no blank is allowed between the name `web` and `:`",
            ),
            (" web: x", 0, "no blank before it"),
            ("@web: x", 0, "cannot start with `@`"),
            ("web", 3, "expected `:` after the name `web`"),
            (
                "this is not an entry",
                4,
                "expected `:` right after the name `this`",
            ),
            (
                "web bundle exec puma -b 0.0.0.0:80",
                3,
                "expected `:` right after",
            ),
            ("web:  ", 6, "the process has no command"),
            ("wéb: x", 1, "cannot contain `é`"),
        ] {
            let (first, column_shown) = caret(text);
            assert!(first.starts_with("Procfile:1: "), "{text}: {first}");
            assert!(first.contains(needle), "{text}: {first}");
            assert_eq!(column_shown, column, "{text}");
        }
    }

    #[test]
    fn the_caret_keeps_tabs_so_it_lines_up() {
        let msg = p("\tweb: x").expect_err("invalid").to_string();
        assert!(msg.ends_with("\n  1 | \tweb: x\n    | ^"), "{msg:?}");
        let msg = p("web\t: x").expect_err("invalid").to_string();
        assert!(msg.ends_with("\n    |    ^"), "{msg:?}");
    }

    #[test]
    fn empty_command_is_an_error() {
        let msg = p("web:   \n").expect_err("empty").to_string();
        assert!(
            msg.contains("Procfile:1: the process has no command"),
            "{msg}"
        );
    }

    #[test]
    fn duplicate_names_both_lines() {
        let msg = p("web: a\nworker: b\nweb: c\n")
            .expect_err("dup")
            .to_string();
        assert!(msg.contains("Procfile:3:"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
        assert!(msg.contains("`web`"), "{msg}");
        assert!(msg.contains("\n  1 | web: a\n  3 | web: c"), "{msg}");
    }

    #[test]
    fn empty_and_comment_only_files_are_errors() {
        for text in ["", "\n\n", "# only a comment\n   \n"] {
            let msg = p(text).expect_err("empty").to_string();
            assert!(msg.contains("defines no processes"), "{msg}");
        }
    }

    #[test]
    fn non_utf8_file_names_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("Procfile");
        std::fs::write(&path, b"web: a\nworker: \xff\n").expect("write");
        let msg = Procfile::load(&path).expect_err("not utf8").to_string();
        assert!(msg.contains("not valid UTF-8 on line 2"), "{msg}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("Procfile");
        std::fs::write(&path, "\u{feff}web: a\n").expect("write");
        let procfile = Procfile::load(&path).expect("loads");
        assert_eq!(procfile.entries[0].name, "web");
    }

    #[test]
    fn missing_file_says_where_it_looked() {
        let msg = Procfile::load(Path::new("/nonexistent/Procfile"))
            .expect_err("missing")
            .to_string();
        assert!(msg.contains("/nonexistent/Procfile"), "{msg}");
        assert!(msg.contains("-f"), "{msg}");

        let msg = Procfile::load(Path::new("no-such-dir/Procfile"))
            .expect_err("missing")
            .to_string();
        let cwd = std::env::current_dir().expect("cwd");
        assert!(
            msg.contains(&format!("{}/no-such-dir/Procfile", cwd.display())),
            "{msg}"
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = p(&text);
        }

        #[test]
        fn never_panics_on_line_soup(text in "([a-z:# \t\r\n-]|web|: ){0,60}") {
            let _ = p(&text);
        }

        #[test]
        fn printed_entries_parse_back(
            entries in proptest::collection::btree_map(
                "[A-Za-z0-9_-]{1,12}",
                "[^\\s#\\x00-\\x1f][^\\r\\n\\x00-\\x1f]{0,40}[^\\s\\x00-\\x1f]",
                1..8,
            )
        ) {
            let mut text = String::new();
            for (name, command) in &entries {
                text.push_str(name);
                text.push_str(": ");
                text.push_str(command);
                text.push('\n');
            }
            let parsed = p(&text).expect("printed procfile parses");
            let printed = parsed.to_string();
            prop_assert_eq!(&printed, &text);
            let again = p(&printed).expect("reparse");
            prop_assert_eq!(again.entries, parsed.entries);
        }
    }
}
