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
use clap::{ArgAction, Args, Parser, Subcommand};

mod output_flags;

pub use crate::output::{ColorChoice, LogFormat};
pub use output_flags::OutputArgs;

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

    /// Connect this terminal to an instance's pseudo-terminal (it must run with --tty)
    #[command(
        after_help = "Examples:\n  ganger attach web.1\n  ganger attach web                 # its first instance\n  ganger attach worker.2 --detach-keys ctrl-p,ctrl-q"
    )]
    Attach(AttachArgs),

    /// Print the running app's recent output, and with -f what follows
    #[command(
        after_help = "Examples:\n  ganger logs\n  ganger logs web -n 20\n  ganger logs worker.2 -f -n 0     # only what comes next"
    )]
    Logs(LogsArgs),

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
pub struct AttachArgs {
    /// An instance (`web.1`), or a type for its first instance (`web`)
    #[arg(value_name = "INSTANCE")]
    pub target: String,

    /// Keys that detach, typed in a row: a comma list of `ctrl-X` or single characters
    #[arg(long, env = "GANGER_DETACH_KEYS", value_name = "KEYS", default_value = crate::control::attach::DEFAULT_DETACH_KEYS, value_parser = parse_detach_keys)]
    pub detach_keys: DetachKeys,
}

/// `--detach-keys` as given and as bytes.
#[derive(Debug, Clone)]
pub struct DetachKeys {
    pub text: String,
    pub bytes: Vec<u8>,
}

fn parse_detach_keys(text: &str) -> Result<DetachKeys, String> {
    Ok(DetachKeys {
        text: text.to_string(),
        bytes: crate::control::attach::parse_detach_keys(text)?,
    })
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Process types (`web`) or instances (`web.2`) [default: every instance]
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Lines of each target to print, from the end
    #[arg(short = 'n', long, value_name = "N", default_value_t = crate::control::protocol::DEFAULT_LOG_LINES)]
    pub lines: usize,

    /// Keep printing new lines until Ctrl-C or the app's end (also -f after `logs`)
    #[arg(long)]
    pub follow: bool,
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

    /// Forward this terminal's input, line by line, to this type's first instance (or the instance named), which gets a pseudo-terminal: for debuggers
    #[arg(short = 'i', long, env = "GANGER_INTERACTIVE", value_name = "NAME")]
    pub interactive: Option<String>,

    /// Lines of output kept per instance for `ganger logs` (at most 1 MiB of them)
    #[arg(long, env = "GANGER_LOG_LINES", value_name = "N", default_value_t = crate::taps::DEFAULT_LINES)]
    pub log_lines: usize,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Seconds between the stop signal and SIGKILL (fractions allowed)
    #[arg(short = 't', long, env = "GANGER_TIMEOUT", value_name = "SECS", default_value = "5", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Skip the release phase (the Procfile's `release` entry, which otherwise runs first)
    #[arg(long, env = "GANGER_NO_RELEASE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub no_release: bool,
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

/// `ganger logs -f` follows, as `tail -f` does, although `-f` names the
/// Procfile everywhere else: after `logs`, a lone `-f` becomes `--follow`
/// (the Procfile can still be named before `logs`, or with `--procfile`).
#[must_use]
pub fn logs_follow_flag(mut args: Vec<OsString>) -> Vec<OsString> {
    let Some(at) = args.iter().skip(1).position(|a| a == "logs") else {
        return args;
    };
    for arg in args.iter_mut().skip(at + 2) {
        if arg == "--" {
            break;
        }
        if arg == "-f" {
            *arg = OsString::from("--follow");
        }
    }
    args
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
mod tests;
