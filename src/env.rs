//! Dotenv files in, the application's environment out.
//!
//! Files are read with dotenvy's iterator API (never `set_var`: ganger does not
//! touch its own environment). Later files override earlier ones, and the
//! inherited environment overrides them all. Each child gets the explicit map that
//! [`AppEnv::for_child`] builds.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Variables read from the dotenv files, in precedence order already applied
/// between the files (later wins).
#[derive(Debug, Clone, Default)]
pub struct AppEnv {
    pub files: BTreeMap<String, String>,
}

impl AppEnv {
    /// Loads `paths` in order. A missing file is an error only if `required`.
    pub fn load(paths: &[PathBuf], required: bool) -> Result<Self> {
        let mut files = BTreeMap::new();
        for path in paths {
            let text = match std::fs::read(path) {
                Ok(bytes) => crate::error::utf8_text(path, bytes)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if required {
                        return Err(Error::EnvMissing { path: path.clone() });
                    }
                    continue;
                }
                Err(source) => {
                    return Err(Error::Read {
                        path: path.clone(),
                        source,
                    });
                }
            };
            // dotenvy's own loaders skip a byte-order mark; its iterator does not.
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            for (key, value) in parse(path, text)? {
                files.insert(key, value);
            }
        }
        Ok(AppEnv { files })
    }

    /// The values the app's own variables take once the inherited environment
    /// has had its say: the keys of the dotenv files, each with the value a child
    /// would see. Used by `export`, which must not copy the whole shell environment.
    #[must_use]
    pub fn resolved(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(k, v)| {
                let value = std::env::var(k).unwrap_or_else(|_| v.clone());
                (k.clone(), value)
            })
            .collect()
    }

    /// The full environment of one child that runs in `root`: dotenv values,
    /// overridden by the inherited environment, then `PWD` (so it names the
    /// child's directory, not ganger's) and `extra` (PORT, PS), which always win.
    #[must_use]
    pub fn for_child(&self, root: &Path, extra: &[(&str, String)]) -> Vec<(OsString, OsString)> {
        let mut map: BTreeMap<OsString, OsString> = self
            .files
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        map.extend(std::env::vars_os());
        if let Ok(pwd) = std::fs::canonicalize(root) {
            map.insert(OsString::from("PWD"), pwd.into_os_string());
        }
        for (k, v) in extra {
            map.insert(OsString::from(k), OsString::from(v));
        }
        map.into_iter().collect()
    }
}

/// Parses one dotenv file's text. Errors name `path` and the line.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(pair) => out.push(pair),
            Err(dotenvy::Error::LineParse(..)) => {
                let line = error_line(text);
                let shown = text.split('\n').nth(line - 1).unwrap_or_default();
                return Err(Error::EnvSyntax {
                    path: path.to_path_buf(),
                    line,
                    text: shown.strip_suffix('\r').unwrap_or(shown).to_string(),
                });
            }
            Err(other) => {
                return Err(Error::EnvSyntax {
                    path: path.to_path_buf(),
                    line: 0,
                    text: other.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// The 1-based line on which the entry dotenvy rejects starts: one past the
/// longest run of whole lines it accepts. dotenvy's error carries the entry's
/// text (or only its value), not where it was, and that text may well begin an
/// earlier line too. Only called on the error path, so re-parsing is cheap enough.
fn error_line(text: &str) -> usize {
    let mut accepted = 0;
    let mut end = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        end += line.len();
        if dotenvy::from_read_iter(&text.as_bytes()[..end]).all(|item| item.is_ok()) {
            accepted = index + 1;
        }
    }
    accepted + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse(Path::new(".env"), text).expect("valid env")
    }

    #[test]
    fn dotenv_syntax() {
        let text = "# c\nA=1\nexport B=\"two words\"\nC=\"q \\\"x\\\" \\n y\"\nD='lit $A'\nE=${A}-x\nF= # empty\n";
        let map: BTreeMap<_, _> = parsed(text).into_iter().collect();
        assert_eq!(map["A"], "1");
        assert_eq!(map["B"], "two words");
        assert_eq!(map["C"], "q \"x\" \n y");
        assert_eq!(map["D"], "lit $A");
        assert_eq!(map["E"], "1-x");
        assert_eq!(map["F"], "");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let msg = parse(Path::new("a/.env"), "A=1\n\n# x\nB C D\n")
            .expect_err("bad")
            .to_string();
        assert!(msg.starts_with("a/.env:4:"), "{msg}");
        assert!(msg.contains("B C D"), "{msg}");
    }

    #[test]
    fn error_in_a_value_names_its_line_and_shows_it_whole() {
        let msg = parse(Path::new(".env"), "A=1\nB=two words\nC=3\n")
            .expect_err("bad")
            .to_string();
        assert!(msg.starts_with(".env:2:"), "{msg}");
        assert!(msg.contains("2 | B=two words"), "{msg}");
    }

    #[test]
    fn error_on_a_line_that_starts_like_an_earlier_one_names_the_right_line() {
        let msg = parse(Path::new(".env"), "NAME=1\nNAME\n")
            .expect_err("bad")
            .to_string();
        assert!(msg.starts_with(".env:2:"), "{msg}");
    }

    #[test]
    fn error_after_a_multi_line_value_counts_its_lines() {
        let msg = parse(Path::new(".env"), "A=\"x\nB C\n\"\r\nB C\r\n")
            .expect_err("bad")
            .to_string();
        assert!(msg.starts_with(".env:4:"), "{msg}");
        assert!(msg.ends_with("4 | B C"), "{msg:?}");
    }

    #[test]
    fn unterminated_quote_names_its_line() {
        let msg = parse(Path::new(".env"), "A=1\nB=\"open\nC=2\n")
            .expect_err("bad")
            .to_string();
        assert!(msg.starts_with(".env:2:"), "{msg}");
    }

    #[test]
    fn later_files_override_earlier_and_missing_named_file_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.env");
        let b = dir.path().join("b.env");
        std::fs::write(&a, "GANGER_T_X=a\nGANGER_T_Y=a\n").expect("write");
        std::fs::write(&b, "GANGER_T_Y=b\n").expect("write");
        let env = AppEnv::load(&[a.clone(), b.clone()], true).expect("load");
        assert_eq!(env.files["GANGER_T_X"], "a");
        assert_eq!(env.files["GANGER_T_Y"], "b");

        let missing = dir.path().join("nope.env");
        let msg = AppEnv::load(&[a.clone(), missing.clone()], true)
            .expect_err("missing")
            .to_string();
        assert!(msg.contains("nope.env"), "{msg}");
        assert!(
            AppEnv::load(&[missing], false)
                .expect("optional")
                .files
                .is_empty()
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "\u{feff}GANGER_T_BOM=1\n").expect("write");
        let env = AppEnv::load(&[path], true).expect("load");
        assert_eq!(env.files["GANGER_T_BOM"], "1");
    }

    #[test]
    fn inherited_environment_wins_and_extra_wins_over_all() {
        let mut env = AppEnv::default();
        env.files.insert("PATH".into(), "/from/dotenv".into());
        env.files.insert("GANGER_T_ONLY_FILE".into(), "f".into());
        env.files.insert("PORT".into(), "1".into());
        let child: BTreeMap<_, _> = env
            .for_child(Path::new("/"), &[("PORT", "5000".into())])
            .into_iter()
            .collect();
        assert_eq!(
            child[&OsString::from("PATH")],
            std::env::var_os("PATH").expect("PATH")
        );
        assert_eq!(child[&OsString::from("GANGER_T_ONLY_FILE")], "f");
        assert_eq!(child[&OsString::from("PORT")], "5000");
        assert_eq!(child[&OsString::from("PWD")], "/");
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse(Path::new(".env"), &text);
        }

        #[test]
        fn never_panics_on_quote_soup(text in "([A-Z=\"'\\\\$#{} \n]|export ){0,60}") {
            let _ = parse(Path::new(".env"), &text);
        }
    }
}
