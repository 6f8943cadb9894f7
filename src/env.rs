//! Dotenv files in, the application's environment out.
//!
//! Files are parsed by [`crate::dotenv`] (never `set_var`: ganger does not touch
//! its own environment). Later files override earlier ones, and the inherited
//! environment overrides them all. Each child gets the explicit map that
//! [`AppEnv::for_child`] builds.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::dotenv::{self, Vars};
use crate::error::{Error, Result};

/// Variables read from the dotenv files, in precedence order already applied
/// between the files (later wins).
#[derive(Debug, Clone, Default)]
pub struct AppEnv {
    pub files: BTreeMap<String, String>,
    /// The files read, in order.
    sources: Vec<PathBuf>,
    /// For each key, the line of the entry that set it and the index of its file.
    lines: BTreeMap<String, (usize, usize)>,
}

impl AppEnv {
    /// Loads `paths` in order. A missing file is an error only if `required`.
    pub fn load(paths: &[PathBuf], required: bool) -> Result<Self> {
        let inherited = |name: &str| std::env::var(name).ok();
        let mut vars = Vars::new(&inherited);
        let mut sources = Vec::new();
        for path in paths {
            let Some(text) = crate::textfile::read(path)? else {
                if required {
                    return Err(Error::EnvMissing { path: path.clone() });
                }
                continue;
            };
            dotenv::parse_into(path, &text, &mut vars)?;
            sources.push(path.clone());
        }
        Ok(AppEnv {
            files: vars.values,
            sources,
            lines: vars.lines,
        })
    }

    /// The file and line where the files last set `key`.
    #[must_use]
    pub fn origin(&self, key: &str) -> Option<(&Path, usize)> {
        let (line, file) = self.lines.get(key)?;
        Some((self.sources.get(*file)?.as_path(), *line))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
