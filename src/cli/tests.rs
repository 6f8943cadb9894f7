//! The command line's own checks: it is well formed, and parses as documented.

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
fn after_logs_dash_f_follows() {
    let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
    let parse = |list: &[&str]| Cli::try_parse_from(logs_follow_flag(args(list)));
    let cli = parse(&["ganger", "-f", "P", "logs", "web", "-f", "-n", "0"]).expect("parse");
    assert_eq!(cli.app.procfile, Some(PathBuf::from("P")));
    let Command::Logs(logs) = cli.command else {
        panic!("not logs")
    };
    assert!(logs.follow);
    assert_eq!((logs.targets, logs.lines), (vec!["web".to_string()], 0));
    let unchanged = args(&["ganger", "start", "-f", "logs"]);
    assert_eq!(logs_follow_flag(unchanged.clone()), unchanged);
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
