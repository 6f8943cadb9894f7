//! The dotenv format: one file's text in, its `KEY=value` entries out.
//!
//! The syntax is dotenvy's (an optional `export` prefix, `#` comments, single
//! quotes kept literally, double quotes with `\\ \" \' \$ \  \n` escapes, the
//! same escapes outside quotes, quoted values that span lines, pieces that
//! join: `'a'"b"c`), with foreman's and honcho's rule for `$`: **a value is kept
//! byte-exact**. Only the braced form `${NAME}` expands (python-dotenv's rule),
//! to the inherited variable, else the value the files gave NAME so far, else
//! nothing; a bare `$` (`pa$$w0rd`, `$5`, `$PORT`) is a literal dollar.
//!
//! It is written here rather than taken from dotenvy because dotenvy expands
//! every `$NAME` with no way to turn that off, which silently corrupts secrets.
//! Having the parser also means one pass finds a syntax error's line, and the
//! size of what `${NAME}` produces can be bounded while it is produced.
//!
//! This module only parses: reading files and layering them is `env.rs`'s job.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The most bytes one value may hold once its `${NAME}`s are substituted.
pub const MAX_VALUE: usize = 1 << 20;

/// The most bytes substitutions may add up to over all the files of one load;
/// without it, many lines that each copy a 1 MiB value would still exhaust memory.
pub const MAX_SUBSTITUTED: usize = 16 << 20;

/// The variables `${NAME}` can see, and what the files have set so far.
pub struct Vars<'a> {
    /// Values set by the files so far, later ones replacing earlier ones.
    pub values: BTreeMap<String, String>,
    /// The 1-based line of each key's latest entry, and the index of its file.
    pub lines: BTreeMap<String, (usize, usize)>,
    /// The inherited environment, which wins over the files in a substitution
    /// as it does for the child.
    inherited: &'a dyn Fn(&str) -> Option<String>,
    /// Bytes produced by substitutions so far.
    substituted: usize,
    /// Index of the file being parsed, for `lines`.
    file: usize,
}

impl<'a> Vars<'a> {
    #[must_use]
    pub fn new(inherited: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars {
            values: BTreeMap::new(),
            lines: BTreeMap::new(),
            inherited,
            substituted: 0,
            file: 0,
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.inherited)(name).or_else(|| self.values.get(name).cloned())
    }
}

/// Where the parser is in the text; `line` is 1-based.
struct Cursor<'t> {
    text: &'t str,
    pos: usize,
    line: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips blanks up to, not including, the end of the line.
    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(|c| c != '\n' && c.is_whitespace()) {
            self.bump();
        }
    }

    /// Skips to the start of the next line (or the end of the text).
    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some('\n'))
    }
}

/// One entry being parsed: where it started, for errors.
struct At<'p> {
    path: &'p Path,
    line: usize,
    /// Byte offset of the start of the entry's first line.
    line_start: usize,
}

impl At<'_> {
    fn syntax(&self, text: &str, reason: &str) -> Error {
        let rest = &text[self.line_start..];
        let shown = rest.split('\n').next().unwrap_or_default();
        Error::EnvSyntax {
            path: self.path.to_path_buf(),
            line: self.line,
            text: shown.strip_suffix('\r').unwrap_or(shown).to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Parses one file's `text` into `vars` (`path` only names it in errors).
pub fn parse_into(path: &Path, text: &str, vars: &mut Vars<'_>) -> Result<()> {
    let mut cur = Cursor {
        text,
        pos: 0,
        line: 1,
    };
    loop {
        // Blank lines, and the indentation of the next entry.
        while cur.peek().is_some_and(char::is_whitespace) {
            cur.bump();
        }
        let Some(first) = cur.peek() else { break };
        if first == '#' {
            cur.skip_line();
            continue;
        }
        let line_start = text[..cur.pos].rfind('\n').map_or(0, |i| i + 1);
        let at = At {
            path,
            line: cur.line,
            line_start,
        };
        let mut key = parse_key(&mut cur).ok_or_else(|| {
            at.syntax(
                text,
                "expected a variable name (a letter or `_`, then letters, digits, `_` or `.`)",
            )
        })?;
        cur.skip_blanks();
        if key == "export" && cur.peek() != Some('=') {
            key = parse_key(&mut cur)
                .ok_or_else(|| at.syntax(text, "expected a variable name after `export`"))?;
            cur.skip_blanks();
        }
        if cur.peek() != Some('=') {
            return Err(at.syntax(text, &format!("expected `=` after `{key}`")));
        }
        cur.bump();
        cur.skip_blanks();
        let value = if cur.at_line_end() || cur.peek() == Some('#') {
            cur.skip_line();
            String::new()
        } else {
            parse_value(&mut cur, &at, &key, vars)?
        };
        vars.lines.insert(key.clone(), (at.line, vars.file));
        vars.values.insert(key, value);
    }
    vars.file += 1;
    Ok(())
}

fn parse_key(cur: &mut Cursor<'_>) -> Option<String> {
    let start = cur.pos;
    if !cur
        .peek()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        return None;
    }
    while cur
        .peek()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        cur.bump();
    }
    Some(cur.text[start..cur.pos].to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// Parses a value up to the end of its (last) line, which it consumes.
fn parse_value(
    cur: &mut Cursor<'_>,
    at: &At<'_>,
    key: &str,
    vars: &mut Vars<'_>,
) -> Result<String> {
    let mut out = String::new();
    let mut quote = Quote::None;
    loop {
        let Some(c) = cur.bump() else {
            return match quote {
                Quote::None => Ok(out),
                Quote::Single => Err(at.syntax(cur.text, "a single quote is never closed")),
                Quote::Double => Err(at.syntax(cur.text, "a double quote is never closed")),
            };
        };
        match (quote, c) {
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            (Quote::None, '\n') => return Ok(out),
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::None | Quote::Double, '\\') => match cur.bump() {
                Some(e @ ('\\' | '\'' | '"' | '$' | ' ')) => out.push(e),
                Some('n') => out.push('\n'),
                _ => {
                    return Err(at.syntax(
                        cur.text,
                        "unknown escape: use \\\\, \\\", \\', \\$, \\n or a backslash before a space",
                    ));
                }
            },
            (Quote::None | Quote::Double, '$') if cur.peek() == Some('{') => {
                cur.bump();
                substitute(cur, at, key, vars, &mut out)?;
            }
            (Quote::None, c) if c.is_whitespace() => {
                // Only blanks, then perhaps a comment, may follow an unquoted
                // value: `KEY=two words` would be ambiguous.
                cur.skip_blanks();
                if cur.peek() == Some('#') || cur.at_line_end() {
                    cur.skip_line();
                    return Ok(out);
                }
                return Err(at.syntax(
                    cur.text,
                    "a value with blanks in it must be quoted (a comment after a value needs a blank before its `#`)",
                ));
            }
            (_, c) => out.push(c),
        }
        if out.len() > MAX_VALUE {
            return Err(too_large(at, key));
        }
    }
}

/// Reads `NAME}` after a `${` and appends NAME's value to `out`.
fn substitute(
    cur: &mut Cursor<'_>,
    at: &At<'_>,
    key: &str,
    vars: &mut Vars<'_>,
    out: &mut String,
) -> Result<()> {
    let start = cur.pos;
    loop {
        match cur.peek() {
            Some('}') => break,
            Some('\n') | None => {
                return Err(at.syntax(cur.text, "`${` is never closed by `}`"));
            }
            Some(_) => {
                cur.bump();
            }
        }
    }
    let name = &cur.text[start..cur.pos];
    cur.bump();
    let value = vars.lookup(name).unwrap_or_default();
    if out.len() + value.len() > MAX_VALUE {
        return Err(too_large(at, key));
    }
    vars.substituted += value.len();
    if vars.substituted > MAX_SUBSTITUTED {
        return Err(Error::EnvTooLarge {
            path: at.path.to_path_buf(),
            line: at.line,
            what: format!(
                "`${{...}}` substitutions in the env files add up to more than {} MiB",
                MAX_SUBSTITUTED >> 20
            ),
        });
    }
    out.push_str(&value);
    Ok(())
}

fn too_large(at: &At<'_>, key: &str) -> Error {
    Error::EnvTooLarge {
        path: at.path.to_path_buf(),
        line: at.line,
        what: format!("the value of {key} would exceed {} MiB", MAX_VALUE >> 20),
    }
}

#[cfg(test)]
mod tests;
