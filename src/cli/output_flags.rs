//! The output flags, foreman's spellings included (`-c`, `--color` alone,
//! `--no-color`, `--timestamp`), resolved into one [`OutputArgs`].

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, FromArgMatches};

use super::{ColorChoice, LogFormat};

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
