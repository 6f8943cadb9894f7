//! YAML text for the container formats, safe for YAML 1.1 and 1.2 readers.
//!
//! Kubernetes reads YAML 1.1 (go-yaml), where plain `no`, `on`, `y`, `1_000`,
//! `1:20`, `2001-12-14` or `0o17` are not strings and `=` or `<<` are not even
//! readable; a YAML 1.2 serializer leaves most of them plain. So this module
//! writes the block-style text itself and decides each scalar's style: plain
//! only for a short, conservative set of strings that no YAML 1.1 or 1.2 reader
//! resolves to anything but that string; every other string is double-quoted,
//! with every character outside YAML's printable set (and every character a
//! YAML 1.1 reader takes for a line break, and the byte-order mark) escaped.
//! Documents are built as [`serde_yaml_ng::Value`] trees; only the text is ours.

use std::fmt::Write as _;

use serde_yaml_ng::{Mapping, Value};

/// An ordered YAML mapping, keys in the order a reader expects.
#[must_use]
pub fn mapping<const N: usize>(pairs: [(&str, Value); N]) -> Mapping {
    pairs
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect()
}

/// [`mapping`] as a YAML value.
#[must_use]
pub fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(mapping(pairs))
}

/// One YAML document as block-style text, ending in a newline.
#[must_use]
pub fn yaml(doc: &Value) -> String {
    let mut out = String::new();
    match doc {
        Value::Mapping(m) if !m.is_empty() => write_mapping(&mut out, m, 0, false),
        Value::Sequence(s) if !s.is_empty() => write_sequence(&mut out, s, 0, false),
        scalar => {
            write_scalar(&mut out, scalar);
            out.push('\n');
        }
    }
    out
}

/// Writes `m` at `indent`; with `inline`, the first key continues the current
/// line (after a sequence's `- `).
fn write_mapping(out: &mut String, m: &Mapping, indent: usize, inline: bool) {
    for (i, (key, value)) in m.iter().enumerate() {
        if i > 0 || !inline {
            push_indent(out, indent);
        }
        write_scalar(out, key);
        out.push(':');
        match value {
            Value::Mapping(m) if !m.is_empty() => {
                out.push('\n');
                write_mapping(out, m, indent + 2, false);
            }
            Value::Sequence(s) if !s.is_empty() => {
                out.push('\n');
                write_sequence(out, s, indent, false);
            }
            scalar => {
                out.push(' ');
                write_scalar(out, scalar);
                out.push('\n');
            }
        }
    }
}

/// Writes `s` at `indent` as `- ITEM` lines; `inline` as for [`write_mapping`].
fn write_sequence(out: &mut String, s: &[Value], indent: usize, inline: bool) {
    for (i, item) in s.iter().enumerate() {
        if i > 0 || !inline {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Mapping(m) if !m.is_empty() => write_mapping(out, m, indent + 2, true),
            Value::Sequence(s) if !s.is_empty() => write_sequence(out, s, indent + 2, true),
            scalar => {
                write_scalar(out, scalar);
                out.push('\n');
            }
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar, or an empty collection, on the current line.
fn write_scalar(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) if plain_is_safe(s) => out.push_str(s),
        Value::String(s) => double_quoted(out, s),
        Value::Sequence(_) => out.push_str("[]"),
        Value::Mapping(_) => out.push_str("{}"),
        // The exports build no tagged values; the value is what matters.
        Value::Tagged(tagged) => write_scalar(out, &tagged.value),
    }
}

/// Whether `s` written plain reads back as the string `s` under YAML 1.1 and
/// 1.2: it starts with a letter, `_` or `/` (so no number, date, `.inf`, `~`,
/// `=`, `<<` or indicator), holds only letters, digits and `_ . / - : @ +`
/// (no space, comment, flow indicator or quote), does not end in `:`, and is
/// not one of YAML 1.1's boolean or null words in any case.
fn plain_is_safe(s: &str) -> bool {
    const WORDS: [&str; 9] = ["y", "yes", "n", "no", "true", "false", "on", "off", "null"];
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '/')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':' | '@' | '+')
        })
        && !s.ends_with(':')
        && !WORDS.contains(&s.to_ascii_lowercase().as_str())
}

/// A double-quoted scalar with the escapes YAML 1.1 and 1.2 share.
fn double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c => {
                let code = u32::from(c);
                let _ = match code {
                    0..=0xFF => write!(out, "\\x{code:02X}"),
                    0x100..=0xFFFF => write!(out, "\\u{code:04X}"),
                    _ => write!(out, "\\U{code:08X}"),
                };
            }
        }
    }
    out.push('"');
}

/// YAML's printable characters, less the ones a YAML 1.1 reader breaks lines
/// at (U+0085, U+2028, U+2029) and the byte-order mark: what may appear raw.
fn printable(c: char) -> bool {
    matches!(u32::from(c),
        0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
        && !super::checks::is_noncharacter(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_only_where_every_reader_agrees() {
        for plain in [
            "web",
            "apps/v1",
            "app.kubernetes.io/name",
            "/bin/sh",
            "web.1",
            "a:b",
        ] {
            assert!(plain_is_safe(plain), "{plain}");
        }
        for quoted in [
            "",
            "no",
            "Yes",
            "ON",
            "y",
            "N",
            "null",
            "~",
            "1_000",
            "1:20",
            "0x1F",
            "0o17",
            ".inf",
            ".nan",
            "=",
            "<<",
            "2001-12-14",
            "5000",
            "-c",
            "a b",
            "C:",
            "#x",
            "*a",
        ] {
            assert!(!plain_is_safe(quoted), "{quoted}");
        }
    }

    #[test]
    fn escapes_what_cannot_appear_raw() {
        let mut out = String::new();
        double_quoted(
            &mut out,
            "a\"\\\n\u{7f}\u{85}\u{2028}\u{feff}\u{fffe}\u{1fffe}é",
        );
        assert_eq!(out, r#""a\"\\\n\x7F\x85\u2028\uFEFF\uFFFE\U0001FFFEé""#);
    }

    #[test]
    fn block_layout() {
        let doc = map([
            ("kind", "Secret".into()),
            ("data", map([("on", "no".into()), ("n", 1.into())])),
            (
                "list",
                Value::Sequence(vec![map([
                    ("a", "x".into()),
                    ("b", Value::Sequence(vec![])),
                ])]),
            ),
        ]);
        assert_eq!(
            yaml(&doc),
            "kind: Secret\ndata:\n  \"on\": \"no\"\n  \"n\": 1\nlist:\n- a: x\n  b: []\n"
        );
    }
}
