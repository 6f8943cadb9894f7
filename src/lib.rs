//! ganger runs a Procfile-based application: it reads a Procfile and dotenv
//! files, starts N instances of each process type, relays their output as one
//! prefixed stream, and stops them all cleanly. It is a drop-in for foreman and
//! safe as a container's PID 1.
//!
//! [`run`] is the whole program; `main` only parses arguments and maps the result
//! to an exit status.

pub mod check;
pub mod cli;
pub mod config;
pub mod control;
pub mod docs;
pub mod dotenv;
pub mod env;
pub mod error;
pub mod export;
pub mod formation;
pub mod keeper;
pub mod os;
pub mod output;
pub mod pipes;
pub mod policy;
pub mod process_type;
pub mod procfile;
pub mod proctree;
pub mod ready;
pub mod reaper;
pub mod relay;
pub mod run;
pub mod settings;
pub mod signals;
pub mod spawn;
pub mod stdout;
pub mod supervisor;
pub mod textfile;
pub mod tty;

use cli::{Cli, Command};
use config::App;
use control::Request;
pub use error::{Error, Result};

/// The app the flags describe, with the per-type settings of `settings`.
fn load(args: &config::Source, settings: &settings::Settings) -> Result<App> {
    let app = App::load(args)?;
    let processes = settings.processes(&app.procfile)?;
    Ok(app.with_processes(processes))
}

/// Sends one control request and prints the reply's message.
fn client(app: &config::Source, request: &Request) -> Result<i32> {
    let reply = control::request(&config::socket_path(app), request)?;
    if let Some(message) = reply.message {
        stdout::print(format!("{message}\n"))?;
    }
    Ok(0)
}

/// Runs one ganger command and returns the exit status it asks for.
pub fn run(cli: Cli, settings: &settings::Settings) -> Result<i32> {
    let source = cli.app.source();
    match cli.command {
        Command::Ps => {
            let reply = control::request(&config::socket_path(&source), &Request::Ps)?;
            stdout::print(control::format_ps(&reply.instances.unwrap_or_default()))?;
            Ok(0)
        }
        Command::Restart(args) => client(
            &source,
            &Request::Restart {
                targets: args.targets,
            },
        ),
        Command::Stop(args) => client(
            &source,
            &Request::Stop {
                targets: args.targets,
            },
        ),
        Command::Scale(args) => client(&source, &Request::Scale { spec: args.spec }),
        Command::Quit => client(&source, &Request::Quit),
        Command::Health => client(&source, &Request::Health),
        Command::Export(args) => {
            let app = load(&source, settings)?;
            export::export(&app, &args.options())
        }
        Command::Check(args) => {
            let app = load(&source, settings)?;
            let policy = app.policy(&args.policy.restart, &args.policy.can_die)?;
            let tty = app.tty(&[])?;
            let show_plan = source.formation.is_some()
                || source.port.is_some()
                || !policy.is_empty()
                || !tty.is_empty()
                || !app.processes.is_empty();
            check::check(&app, &policy, &tty, show_plan)
        }
        Command::Run(args) => {
            os::raise_nofile_limit();
            let (env, app) = App::load_optional_procfile(&source)?;
            let root = config::paths(&source).1;
            run::run(app.as_ref(), &env, &root, &args.command, cli.app.port)
        }
        Command::Start(args) => {
            // Before anything slow: signals that arrive now wait for their handlers.
            os::block_acted_on();
            let app = load(&source, settings)?;
            let release = !args.no_release
                && (args.processes.is_empty()
                    || args.processes.iter().any(|p| p == supervisor::RELEASE));
            let options = supervisor::Options {
                only: args.processes,
                policy: app.policy(&args.policy.restart, &args.policy.can_die)?,
                tty: app.tty(args.tty.as_deref().unwrap_or_default())?,
                timestamp: !args.output.no_timestamp,
                color: output::color_enabled(args.output.color),
                json: args.output.log_format == output::LogFormat::Json,
                timeout: args.timeout,
                socket: config::socket_path(&source),
                explicit_socket: cli.app.socket.is_some(),
                release,
            };
            supervisor::start(&app, &options)
        }
        Command::Completions(args) => docs::completions(args.shell),
        Command::Man => docs::man(),
        Command::Version => docs::version(),
    }
}
