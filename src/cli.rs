//! The command line: clap derive types and nothing else.
//!
//! Every flag can also come from `GANGER_<FLAG>`; a flag on the command line wins.
//! Flags shared by several commands are global, so `ganger -f P start` and
//! `ganger start -f P` mean the same.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

pub use crate::output::{ColorChoice, LogFormat};

/// Run a Procfile-based application: start its processes, relay their output,
/// and stop them all cleanly.
#[derive(Debug, Parser)]
#[command(
    name = "ganger",
    version,
    propagate_version = true,
    disable_version_flag = true,
    max_term_width = 100,
    after_help = "Examples:\n  ganger start                      # every process in ./Procfile\n  ganger start web -m web=2 -p 3000\n  ganger check\n  ganger run rake db:migrate\n  ganger help start"
)]
pub struct Cli {
    #[command(flatten)]
    pub app: AppArgs,

    /// Print version
    // `-v` is foreman's spelling; clap's `-V` stays as an alias.
    #[arg(short = 'v', short_alias = 'V', long, action = ArgAction::Version, global = true, display_order = 9999)]
    version: Option<bool>,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the app lives and how it is shaped; shared by every command.
#[derive(Debug, Clone, Args)]
pub struct AppArgs {
    /// The Procfile [default: Procfile in the root]
    #[arg(
        short = 'f',
        long = "procfile",
        env = "GANGER_PROCFILE",
        global = true,
        value_name = "PATH"
    )]
    pub procfile: Option<PathBuf>,

    /// Working directory of every process [default: the Procfile's directory]
    #[arg(
        short = 'd',
        long = "root",
        env = "GANGER_ROOT",
        global = true,
        value_name = "DIR"
    )]
    pub root: Option<PathBuf>,

    /// Comma-separated dotenv files, later ones override earlier ones [default: .env in the root, if it exists]
    #[arg(
        short = 'e',
        long = "env",
        env = "GANGER_ENV",
        global = true,
        value_name = "PATHS",
        value_delimiter = ','
    )]
    pub env: Vec<PathBuf>,

    /// Instances per process type: all=N,web=2,worker=0 [default: all=1]
    #[arg(
        short = 'm',
        long = "formation",
        env = "GANGER_FORMATION",
        global = true,
        value_name = "SPEC"
    )]
    pub formation: Option<String>,

    /// Base port: type i, instance n gets PORT = base + 100*i + (n-1) [default: $PORT, else PORT from the env files, else 5000]
    #[arg(
        short = 'p',
        long = "port",
        env = "GANGER_PORT",
        global = true,
        value_name = "N"
    )]
    pub port: Option<u16>,

    /// The settings file: defaults for flags and per-type settings [default: ganger.toml in the root, if it exists]
    #[arg(long, env = "GANGER_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The control socket of `start`, used by ps/restart/stop/scale/quit [default: .ganger.sock in the root]
    #[arg(
        short = 's',
        long = "socket",
        env = "GANGER_SOCKET",
        global = true,
        value_name = "PATH"
    )]
    pub socket: Option<PathBuf>,
}

impl AppArgs {
    /// Where the flags say the app is.
    #[must_use]
    pub fn source(&self) -> crate::config::Source {
        crate::config::Source {
            procfile: self.procfile.clone(),
            root: self.root.clone(),
            env: self.env.clone(),
            formation: self.formation.clone(),
            port: self.port,
            socket: self.socket.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start every process type (or only the named ones) and supervise them
    #[command(
        after_help = "Examples:\n  ganger start\n  ganger start -m web=2,worker=3\n  ganger start web -f Procfile.dev -e .env,.env.local"
    )]
    Start(StartArgs),

    /// Run one command with the app's environment; a Procfile name runs that entry
    #[command(
        after_help = "Examples:\n  ganger run rake db:migrate\n  ganger run web\n  ganger run bash"
    )]
    Run(RunArgs),

    /// Parse the Procfile and list the processes it defines
    #[command(
        after_help = "Examples:\n  ganger check\n  ganger check -m all=2 -p 3000   # also list every instance and its PORT"
    )]
    Check(CheckArgs),

    /// Write service definitions for another process manager
    #[command(
        after_help = "Examples:\n  ganger export systemd /etc/systemd/system -a shop -u shop\n  ganger export supervisord /etc/supervisor/conf.d -m web=2,worker=1\n  ganger export kubernetes deploy/ -a shop"
    )]
    Export(ExportArgs),

    /// List the instances of the running app: pid, state, uptime, restarts, port
    #[command(after_help = "Examples:\n  ganger ps\n  ganger ps -s /run/app/ganger.sock")]
    Ps,

    /// Restart instances of the running app (a type, or an instance like web.2; none = all)
    #[command(
        after_help = "Examples:\n  ganger restart\n  ganger restart web\n  ganger restart worker.2"
    )]
    Restart(TargetArgs),

    /// Stop instances of the running app; the rest keeps running
    #[command(after_help = "Examples:\n  ganger stop worker\n  ganger stop web.2")]
    Stop(RequiredTargetArgs),

    /// Change the running app's formation: start or stop instances
    #[command(after_help = "Examples:\n  ganger scale web=3\n  ganger scale web=1,worker=4")]
    Scale(ScaleArgs),

    /// Stop the whole running app, as SIGTERM would
    #[command(after_help = "Examples:\n  ganger quit")]
    Quit,

    /// Exit 0 when every instance of the running app that should run is ready; otherwise exit 1 and say what is not
    #[command(after_help = "Examples:\n  ganger health
  HEALTHCHECK CMD ganger health          # in a Dockerfile\n  until ganger health; do sleep 1; done   # wait for the app")]
    Health,

    /// Print a completion script for a shell on stdout
    #[command(
        after_help = "Examples:\n  ganger completions bash > ~/.local/share/bash-completion/completions/ganger\n  ganger completions zsh > ~/.zfunc/_ganger\n  ganger completions fish > ~/.config/fish/completions/ganger.fish"
    )]
    Completions(CompletionsArgs),

    /// Print the version (as --version)
    #[command(after_help = "Examples:\n  ganger version")]
    Version,

    /// Print the manual page (roff) on stdout
    #[command(
        after_help = "Examples:\n  ganger man | man -l -\n  ganger man > ~/.local/share/man/man1/ganger.1"
    )]
    Man,
}

/// `ganger completions SHELL`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `ganger export FORMAT DIR`: foreman's flags and defaults.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The process manager to write definitions for
    #[arg(value_enum, value_name = "FORMAT")]
    pub format: crate::export::Format,

    /// Directory to write into (created if missing)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Application name: prefix of every unit, program, service and label
    #[arg(
        short = 'a',
        long,
        env = "GANGER_APP",
        default_value = "app",
        value_name = "NAME"
    )]
    pub app: String,

    /// User the processes run as [default: the app name]
    #[arg(short = 'u', long, env = "GANGER_USER", value_name = "USER")]
    pub user: Option<String>,

    /// Log directory [default: /var/log/APP]
    #[arg(short = 'l', long, env = "GANGER_LOG", value_name = "DIR")]
    pub log: Option<PathBuf>,

    /// Run directory, accepted as foreman does (no format needs one) [default: /var/run/APP]
    #[arg(short = 'r', long, env = "GANGER_RUN", value_name = "DIR")]
    pub run: Option<PathBuf>,

    /// Seconds between the stop signal and SIGKILL (fractions allowed)
    #[arg(short = 't', long, env = "GANGER_TIMEOUT", value_name = "SECS", default_value = "5", value_parser = ExportTimeout)]
    pub timeout: Duration,

    /// Also replace files in DIR that this app's export did not write, and symbolic links (never their targets)
    #[arg(long)]
    pub force: bool,
}

impl ExportArgs {
    /// The export the flags ask for.
    #[must_use]
    pub fn options(&self) -> crate::export::Options {
        crate::export::Options {
            format: self.format,
            dir: self.dir.clone(),
            app: self.app.clone(),
            user: self.user.clone(),
            log: self.log.clone(),
            run: self.run.clone(),
            timeout: self.timeout,
            force: self.force,
        }
    }
}

/// `export`'s `-t`: foreman's `-t` names a template directory there, so a value
/// that is not a number gets a message saying what `-t` is here instead of
/// clap's bare "invalid value".
#[derive(Debug, Clone)]
struct ExportTimeout;

impl TypedValueParser for ExportTimeout {
    type Value = Duration;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Duration, clap::Error> {
        let text = value.to_string_lossy();
        parse_timeout(&text).map_err(|_| {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!(
                    "`{text}` is not a number of seconds: in ganger export, -t/--timeout is the stop timeout; \
                     foreman's -t TEMPLATE is not supported (ganger writes each format without templates)\n"
                ),
            )
            .with_cmd(cmd)
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// A process type (`web`) or an instance (`web.2`) [default: every instance]
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RequiredTargetArgs {
    /// A process type (`web`) or an instance (`web.2`)
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// New instance counts: TYPE=N[,TYPE=N...]
    #[arg(value_name = "TYPE=N")]
    pub spec: String,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// What happens when an instance exits (beyond foreman's "stop everything").
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// Types to start again when they exit, after 0.5 s, 1 s, 2 s ... up to 30 s (comma list, or `all`)
    #[arg(
        long,
        env = "GANGER_RESTART",
        value_name = "TYPES",
        value_delimiter = ','
    )]
    pub restart: Vec<String>,

    /// Types that may exit without stopping the app, e.g. a migration (comma list, or `all`)
    #[arg(
        long = "can-die",
        env = "GANGER_CAN_DIE",
        value_name = "TYPES",
        value_delimiter = ','
    )]
    pub can_die: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Process types to start [default: all]
    #[arg(value_name = "NAME")]
    pub processes: Vec<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Give these types (comma list; none or `all` = every type) a pseudo-terminal as stdout and stderr
    #[arg(long, env = "GANGER_TTY", value_name = "TYPES", num_args = 0..=1, default_missing_value = "all", value_delimiter = ',')]
    pub tty: Option<Vec<String>>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Seconds between the stop signal and SIGKILL (fractions allowed)
    #[arg(short = 't', long, env = "GANGER_TIMEOUT", value_name = "SECS", default_value = "5", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Skip the release phase (the Procfile's `release` entry, which otherwise runs first)
    #[arg(long, env = "GANGER_NO_RELEASE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub no_release: bool,
}

/// How the merged output stream looks: what the flags below resolve to.
#[derive(Debug, Clone)]
pub struct OutputArgs {
    pub no_timestamp: bool,
    pub color: ColorChoice,
    pub log_format: LogFormat,
}

/// The output flags as given, foreman's spellings included. Of the flags that
/// say the same thing, the last one on the command line wins, and any of them
/// wins over the `GANGER_*` variable.
#[derive(Debug, Clone, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is a flag on the command line"
)]
struct OutputFlags {
    /// Drop the HH:MM:SS column
    #[arg(long, env = "GANGER_NO_TIMESTAMP", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    no_timestamp: bool,

    /// Keep the HH:MM:SS column (the default; overrides GANGER_NO_TIMESTAMP)
    #[expect(clippy::doc_markdown, reason = "the doc comment is --help text")]
    #[arg(long)]
    timestamp: bool,

    /// Color the prefixes: auto = only on a terminal with NO_COLOR unset (FORCE_COLOR forces it); --color alone = always
    #[expect(clippy::doc_markdown, reason = "the doc comment is --help text")]
    #[arg(long, env = "GANGER_COLOR", value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", num_args = 0..=1, default_missing_value = "always")]
    color: ColorChoice,

    /// Color the prefixes (foreman's -c: --color=always)
    #[arg(short = 'c')]
    color_always: bool,

    /// Do not color the prefixes (--color=never)
    #[arg(long)]
    no_color: bool,

    /// text: `HH:MM:SS web.1 | line`; json: one JSON object per line
    #[arg(long, env = "GANGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    log_format: LogFormat,
}

/// Of the flags `ids`, the one given last on the command line, if any.
fn last_given<'a>(matches: &ArgMatches, ids: &[&'a str]) -> Option<&'a str> {
    ids.iter()
        .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
        .filter_map(|id| Some((matches.indices_of(id)?.max()?, *id)))
        .max()
        .map(|(_, id)| id)
}

impl OutputArgs {
    fn resolve(flags: &OutputFlags, matches: &ArgMatches) -> Self {
        let no_timestamp = match last_given(matches, &["timestamp", "no_timestamp"]) {
            Some("timestamp") => false,
            _ => flags.no_timestamp,
        };
        let color = match last_given(matches, &["color", "color_always", "no_color"]) {
            Some("color_always") => ColorChoice::Always,
            Some("no_color") => ColorChoice::Never,
            _ => flags.color,
        };
        OutputArgs {
            no_timestamp,
            color,
            log_format: flags.log_format,
        }
    }
}

impl FromArgMatches for OutputArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self::resolve(
            &OutputFlags::from_arg_matches(matches)?,
            matches,
        ))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for OutputArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        OutputFlags::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        OutputFlags::augment_args_for_update(cmd)
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The command and its arguments, or the name of a Procfile entry
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

/// The longest timeout accepted: a day. Longer is a typo, and deadlines far
/// beyond it would overflow the clock.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

fn parse_timeout(value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a number of seconds"))?;
    let timeout = Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("`{value}` is not a number of seconds of 0 or more"))?;
    if timeout > MAX_TIMEOUT {
        return Err(format!(
            "`{value}` seconds is more than a day ({} s at most)",
            MAX_TIMEOUT.as_secs()
        ));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("0"), Ok(Duration::ZERO));
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("inf").is_err());
        assert!(parse_timeout("NaN").is_err());
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("1e19").is_err());
        assert_eq!(parse_timeout("86400"), Ok(MAX_TIMEOUT));
        assert!(parse_timeout("86400.5").is_err());
    }

    #[test]
    fn run_takes_everything_after_the_command() {
        let cli = Cli::try_parse_from(["ganger", "-f", "P", "run", "ls", "-f", "-la", "--", "x"])
            .expect("parse");
        assert_eq!(cli.app.procfile, Some(PathBuf::from("P")));
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.command, ["ls", "-f", "-la", "--", "x"]);
    }
}
