//! From flags to a loaded application: paths resolved, Procfile parsed, dotenv
//! files read, formation checked. Every command starts here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::env::AppEnv;
use crate::error::{Error, Result};
use crate::formation::{self, Formation, Instance};
use crate::policy::{Policy, Types};
use crate::process_type::ProcessSettings;
use crate::procfile::Procfile;

/// The default base port when neither `-p`, `$PORT` nor a dotenv file gives one.
pub const DEFAULT_PORT: u16 = 5000;

/// Everything a command needs to know about the application.
#[derive(Debug, Clone)]
pub struct App {
    pub procfile: Procfile,
    /// Working directory of every process.
    pub root: PathBuf,
    pub env: AppEnv,
    pub formation: Formation,
    pub base_port: u16,
    /// Per-type settings from `ganger.toml`, checked against the Procfile.
    pub processes: BTreeMap<String, ProcessSettings>,
}

/// Where the app is and how it is shaped, as the flags (or settings) say;
/// `None` and empty mean the default.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub procfile: Option<PathBuf>,
    pub root: Option<PathBuf>,
    pub env: Vec<PathBuf>,
    pub formation: Option<String>,
    pub port: Option<u16>,
    pub socket: Option<PathBuf>,
}

/// The Procfile path and root the flags point at.
#[must_use]
pub fn paths(args: &Source) -> (PathBuf, PathBuf) {
    match (&args.procfile, &args.root) {
        (Some(procfile), Some(root)) => (procfile.clone(), root.clone()),
        (Some(procfile), None) => {
            let root = match procfile.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (procfile.clone(), root)
        }
        (None, Some(root)) => (root.join("Procfile"), root.clone()),
        (None, None) => (PathBuf::from("Procfile"), PathBuf::from(".")),
    }
}

/// The control socket: `-s`/`GANGER_SOCKET`, else `.ganger.sock` in the root.
#[must_use]
pub fn socket_path(args: &Source) -> PathBuf {
    args.socket
        .clone()
        .unwrap_or_else(|| paths(args).1.join(".ganger.sock"))
}

/// The base port: `-p`/`GANGER_PORT`, else the inherited `$PORT`, else a `PORT`
/// in the dotenv files (as foreman and honcho read it: Rails and Node projects
/// ship `PORT=3000` there), else 5000.
pub fn base_port(args: &Source, env: &AppEnv) -> Result<u16> {
    if let Some(port) = args.port {
        return Ok(port);
    }
    if let Ok(value) = std::env::var("PORT")
        && !value.trim().is_empty()
    {
        return value
            .trim()
            .parse()
            .map_err(|_| Error::PortEnv { var: "PORT", value });
    }
    match env.files.get("PORT") {
        Some(value) if !value.trim().is_empty() => value.trim().parse().map_err(|_| {
            let (path, line) = env.origin("PORT").unwrap_or((Path::new(".env"), 0));
            Error::PortDotenv {
                path: path.to_path_buf(),
                line,
                value: value.clone(),
            }
        }),
        _ => Ok(DEFAULT_PORT),
    }
}

/// Errors unless `root` is a directory: every process runs there, and a
/// failed `chdir` would otherwise pass for a missing command.
fn check_root(root: &Path) -> Result<()> {
    if root.is_dir() {
        Ok(())
    } else {
        Err(Error::RootMissing {
            path: root.to_path_buf(),
        })
    }
}

/// The dotenv files to read, and whether they must exist.
fn env_files(args: &Source, root: &Path) -> (Vec<PathBuf>, bool) {
    if args.env.is_empty() {
        (vec![root.join(".env")], false)
    } else {
        (args.env.clone(), true)
    }
}

impl App {
    /// Loads the application the flags describe. The Procfile must exist.
    pub fn load(args: &Source) -> Result<Self> {
        let (procfile_path, root) = paths(args);
        let procfile = Procfile::load(&procfile_path)?;
        Self::with_procfile(args, procfile, root)
    }

    /// Like [`App::load`], but a missing default Procfile is not an error
    /// (`ganger run` works in any directory); a named one still must exist.
    pub fn load_optional_procfile(args: &Source) -> Result<(AppEnv, Option<Self>)> {
        let (procfile_path, root) = paths(args);
        match Procfile::load(&procfile_path) {
            Ok(procfile) => {
                let app = Self::with_procfile(args, procfile, root)?;
                Ok((app.env.clone(), Some(app)))
            }
            Err(Error::ProcfileMissing { .. }) if args.procfile.is_none() => {
                check_root(&root)?;
                let (files, required) = env_files(args, &root);
                Ok((AppEnv::load(&files, required)?, None))
            }
            Err(e) => Err(e),
        }
    }

    fn with_procfile(args: &Source, procfile: Procfile, root: PathBuf) -> Result<Self> {
        check_root(&root)?;
        let formation = match &args.formation {
            Some(spec) => Formation::parse(spec)?,
            None => Formation::default(),
        };
        formation.check_names(&procfile)?;
        let (files, required) = env_files(args, &root);
        let env = AppEnv::load(&files, required)?;
        let base_port = base_port(args, &env)?;
        Ok(App {
            procfile,
            root,
            env,
            formation,
            base_port,
            processes: BTreeMap::new(),
        })
    }

    /// The app with per-type settings (checked against its Procfile already).
    #[must_use]
    pub fn with_processes(mut self, processes: BTreeMap<String, ProcessSettings>) -> Self {
        self.processes = processes;
        self
    }

    /// The policy `--restart`/`--can-die` and the per-type settings make together.
    pub fn policy(&self, restart: &[String], can_die: &[String]) -> Result<Policy> {
        let mut policy = Policy::new(restart, can_die, &self.procfile)?;
        for (name, settings) in &self.processes {
            policy.types.insert(name.clone(), settings.rules.clone());
        }
        Ok(policy)
    }

    /// The types on a pty: `--tty` and `tty = true`.
    pub fn tty(&self, flag: &[String]) -> Result<Types> {
        let mut types = Types::parse(flag, &self.procfile)?;
        for (name, settings) in &self.processes {
            if settings.tty {
                types.insert(name);
            }
        }
        Ok(types)
    }

    /// The instances to run for the named types (all types when `only` is empty).
    pub fn plan(&self, only: &[String]) -> Result<Vec<Instance>> {
        formation::plan(&self.procfile, &self.formation, self.base_port, only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(procfile: Option<&str>, root: Option<&str>) -> Source {
        Source {
            procfile: procfile.map(PathBuf::from),
            root: root.map(PathBuf::from),
            ..Source::default()
        }
    }

    #[test]
    fn root_follows_the_procfile_and_procfile_follows_the_root() {
        assert_eq!(paths(&args(None, None)), ("Procfile".into(), ".".into()));
        assert_eq!(
            paths(&args(Some("app/Procfile.dev"), None)),
            ("app/Procfile.dev".into(), "app".into())
        );
        assert_eq!(
            paths(&args(Some("Procfile.dev"), None)),
            ("Procfile.dev".into(), ".".into())
        );
        assert_eq!(
            paths(&args(None, Some("srv"))),
            ("srv/Procfile".into(), "srv".into())
        );
        assert_eq!(
            paths(&args(Some("a/P"), Some("b"))),
            ("a/P".into(), "b".into())
        );
    }
}
