//! Checking what `export` is given before anything is written: flag values,
//! variable names and values, and the characters a format cannot carry.
//!
//! Nothing here renders or writes; the errors name the flag, variable or file.

use std::path::Path;

use super::{Export, Format};
use crate::error::{Error, Result};

/// App names become file names, unit names, labels and Kubernetes names:
/// letters and digits, with single `.`, `_` or `-` between them.
pub fn check_app_name(name: &str) -> Result<String> {
    let mut prev_punct = true;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| {
            let punct = matches!(c, '.' | '_' | '-');
            let fine = c.is_ascii_alphanumeric() || (punct && !prev_punct);
            prev_punct = punct;
            fine
        })
        && !prev_punct;
    if ok {
        Ok(name.to_string())
    } else {
        Err(Error::ExportFlag {
            flag: "-a/--app",
            value: name.to_string(),
            reason: "use up to 64 letters and digits, with single `.`, `_` or `-` between them",
        })
    }
}

/// A POSIX user name, so that no format has to quote it.
pub fn check_user(user: &str) -> Result<String> {
    let ok = !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(user.to_string())
    } else {
        Err(Error::ExportFlag {
            flag: "-u/--user",
            value: user.to_string(),
            reason: "expected a user name: letters, digits, `.`, `_` and `-`",
        })
    }
}

/// A path as UTF-8 text without control characters: every format writes paths
/// into line-based files, where a newline would start a new directive.
pub fn path_text(flag: &'static str, path: &Path) -> Result<String> {
    let text = path.to_str().ok_or_else(|| Error::ExportFlag {
        flag,
        value: path.display().to_string(),
        reason: "the path is not valid UTF-8",
    })?;
    if text.is_empty() || text.chars().any(char::is_control) || text.trim() != text {
        return Err(Error::ExportFlag {
            flag,
            value: text.escape_debug().to_string(),
            reason: "the path is empty, has control characters, or leading or trailing spaces",
        });
    }
    Ok(text.to_string())
}

/// Keys every format can name (a shell identifier), and values any environment
/// can hold (no NUL).
pub fn check_env(key: &str, value: &str) -> Result<()> {
    let mut chars = key.chars();
    let key_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_ok {
        return Err(Error::ExportUnsupported {
            format: "any format",
            what: format!("variable `{key}`"),
            reason: "names must be letters, digits and `_`, not starting with a digit".into(),
        });
    }
    if value.contains('\0') {
        return Err(Error::ExportUnsupported {
            format: "any format",
            what: format!("variable `{key}`"),
            reason: "the value contains a NUL byte, which no environment can hold".into(),
        });
    }
    Ok(())
}

/// Whether `c` is one of Unicode's 66 noncharacters: U+FDD0..=U+FDEF and the
/// last two code points of every plane (U+FFFE, U+FFFF, U+1FFFE, ...).
#[must_use]
pub fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

/// Errors if `value` holds a noncharacter; `what` names where it came from,
/// `why` says what in `format` cannot hold one.
pub fn refuse_noncharacter(format: Format, what: &str, value: &str, why: &str) -> Result<()> {
    match value.chars().find(|&c| is_noncharacter(c)) {
        Some(c) => Err(Export::unsupported(
            format,
            what,
            format!(
                "it contains U+{:04X}, a Unicode noncharacter, which {why}",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

impl Export {
    /// Errors on the first noncharacter in a variable, a command or the root:
    /// the text every format writes. `why` as for [`refuse_noncharacter`].
    pub fn refuse_noncharacters(&self, format: Format, why: &str) -> Result<()> {
        for (key, value) in &self.env {
            let origin = if std::env::var(key).is_ok() {
                "from ganger's environment, which overrides the dotenv files"
            } else {
                "from the dotenv files"
            };
            refuse_noncharacter(format, &format!("variable `{key}` ({origin})"), value, why)?;
        }
        for process in &self.processes {
            let what = format!("the command of `{}` in {}", process.name, self.procfile);
            refuse_noncharacter(format, &what, &process.command, why)?;
        }
        refuse_noncharacter(format, &format!("the root {}", self.root), &self.root, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        for good in ["app", "shop-web", "a.b_c", "X1"] {
            assert!(check_app_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "a/b",
            "a b",
            "..",
            "a\nb",
            &"x".repeat(65),
        ] {
            assert!(check_app_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn users_and_paths() {
        assert!(check_user("www-data").is_ok());
        assert!(check_user("-x").is_err());
        assert!(check_user("a b").is_err());
        assert!(path_text("-l/--log", Path::new("/var/log/a b")).is_ok());
        assert!(path_text("-l/--log", Path::new("/var/log/a\nb")).is_err());
        assert!(path_text("-l/--log", Path::new(" /x")).is_err());
    }

    #[test]
    fn env_keys() {
        assert!(check_env("DATABASE_URL", "x").is_ok());
        assert!(check_env("_x1", "").is_ok());
        for bad in ["1A", "A-B", "A.B", ""] {
            assert!(check_env(bad, "x").is_err(), "{bad}");
        }
        assert!(check_env("A", "a\0b").is_err());
    }

    #[test]
    fn noncharacters() {
        for c in [
            '\u{fdd0}',
            '\u{fdef}',
            '\u{fffe}',
            '\u{ffff}',
            '\u{1fffe}',
            '\u{10ffff}',
        ] {
            assert!(is_noncharacter(c), "{c:?}");
        }
        for c in [
            '\u{fdcf}',
            '\u{fdf0}',
            '\u{fffd}',
            '\u{1fffd}',
            '\u{10000}',
            'a',
        ] {
            assert!(!is_noncharacter(c), "{c:?}");
        }
    }
}
