//! `ganger completions SHELL` and `ganger man`: documents generated from the
//! clap definition in [`crate::cli`], written to stdout.
//!
//! Everything here is derived from `Cli::command()`, so a new flag or command
//! shows up in the completions and the manual without edits here. This module
//! reads no Procfile and starts nothing.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use crate::cli::Cli;
use crate::error::{Error, Result};

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: Shell) -> Result<i32> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    write_stdout(&script)
}

/// `ganger version`: the same line as `--version`.
pub fn version() -> Result<i32> {
    write_stdout(Cli::command().render_version().as_bytes())
}

/// Writes the manual page (roff, section 1) to stdout.
pub fn man() -> Result<i32> {
    let page = man_page().map_err(|e| Error::os("cannot render the manual page", e))?;
    write_stdout(&page)
}

/// The whole manual: the top-level page, then one section per command with its
/// synopsis, options and examples.
fn man_page() -> io::Result<Vec<u8>> {
    let mut cmd = Cli::command();
    // Building fills in each subcommand's bin name (`ganger start`) and the
    // global flags it inherits.
    cmd.build();
    let top = Man::new(cmd.clone());

    let mut page = Vec::new();
    top.render_title(&mut page)?;
    append(&mut page, |w| top.render_name_section(w))?;
    append(&mut page, |w| top.render_synopsis_section(w))?;
    append(&mut page, |w| top.render_description_section(w))?;
    append(&mut page, |w| top.render_options_section(w))?;

    let mut list = Roff::new();
    list.control("SH", ["COMMANDS"]);
    let subcommands: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .collect();
    for sub in &subcommands {
        list.control("TP", []);
        list.text([bold(format!("ganger {}", sub.get_name()))]);
        list.text([roman(about(sub))]);
    }
    append(&mut page, |w| list.to_writer(w))?;

    for sub in subcommands {
        // The global flags, --help and --version are described once, at the top.
        let sub = sub.clone().mut_args(|arg| {
            if arg.is_global_set() || matches!(arg.get_id().as_str(), "help" | "version") {
                arg.hide(true)
            } else {
                arg
            }
        });
        let mut head = Roff::new();
        head.control(
            "SH",
            [format!("GANGER {}", sub.get_name().to_uppercase()).as_str()],
        );
        head.text([roman(about(&sub))]);
        append(&mut page, |w| head.to_writer(w))?;
        let man = Man::new(sub.clone());
        append_demoted(&mut page, |w| man.render_synopsis_section(w))?;
        if sub.get_arguments().any(|arg| !arg.is_hide_set()) {
            append_demoted(&mut page, |w| man.render_options_section(w))?;
        }
        append(&mut page, |w| examples(&sub, "SS").to_writer(w))?;
    }

    append(&mut page, |w| environment(&cmd).to_writer(w))?;
    append(&mut page, |w| examples(&cmd, "SH").to_writer(w))?;
    append(&mut page, |w| top.render_version_section(w))?;
    Ok(page)
}

fn about(cmd: &clap::Command) -> String {
    cmd.get_about().map(ToString::to_string).unwrap_or_default()
}

/// Every `GANGER_*` variable and the flag it stands for.
fn environment(cmd: &clap::Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Every flag can also be set by an environment variable; a flag on the command line wins.",
    )]);
    let mut seen = Vec::new();
    let args = cmd
        .get_arguments()
        .chain(cmd.get_subcommands().flat_map(clap::Command::get_arguments));
    for arg in args {
        let Some(var) = arg.get_env().map(|v| v.to_string_lossy().into_owned()) else {
            continue;
        };
        if seen.contains(&var) {
            continue;
        }
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(short), Some(long)) => format!("-{short}, --{long}"),
            (None, Some(long)) => format!("--{long}"),
            _ => continue,
        };
        roff.control("TP", []);
        roff.text([bold(var.as_str())]);
        roff.text([roman(flag)]);
        seen.push(var);
    }
    roff
}

/// The examples a command's `after_help` lists, one per line, unfilled.
fn examples(cmd: &clap::Command, level: &str) -> Roff {
    let mut roff = Roff::new();
    let Some(text) = cmd.get_after_help().map(ToString::to_string) else {
        return roff;
    };
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|line| line.trim_end().ends_with(':'))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    if lines.is_empty() {
        return roff;
    }
    roff.control(level, ["EXAMPLES"]);
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for line in lines {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    roff.control("RE", []);
    roff
}

/// Appends one rendered piece, minus the preamble every piece starts with
/// (the first piece, the title, keeps it).
fn append(
    page: &mut Vec<u8>,
    render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    let mut piece = Vec::new();
    render(&mut piece)?;
    let text = String::from_utf8_lossy(&piece);
    for line in text.lines().filter(|line| !is_preamble(line)) {
        page.extend_from_slice(line.as_bytes());
        page.push(b'\n');
    }
    Ok(())
}

/// Like [`append`], with section headings turned into subsection headings,
/// so a command's synopsis and options sit under that command's section.
fn append_demoted(
    page: &mut Vec<u8>,
    render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    let mut piece = Vec::new();
    render(&mut piece)?;
    append(page, |w| {
        let text = String::from_utf8_lossy(&piece);
        for line in text.lines() {
            match line.strip_prefix(".SH ") {
                Some(heading) => writeln!(w, ".SS {heading}")?,
                None => writeln!(w, "{line}")?,
            }
        }
        Ok(())
    })
}

/// The two lines `roff` puts before every document to keep `'` upright.
fn is_preamble(line: &str) -> bool {
    line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq")
}

/// Writes `bytes` to stdout. A reader that went away (`ganger man | head`) is
/// not an error.
fn write_stdout(bytes: &[u8]) -> Result<i32> {
    crate::stdout::print(bytes)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_has_a_section_per_command_and_one_preamble() {
        let page = String::from_utf8(man_page().expect("render")).expect("utf8");
        for heading in [
            ".SH COMMANDS",
            ".SH \"GANGER START\"",
            ".SH \"GANGER RUN\"",
            ".SH \"GANGER CHECK\"",
            ".SH \"GANGER EXPORT\"",
            ".SH \"GANGER COMPLETIONS\"",
            ".SH \"GANGER MAN\"",
            ".SH EXAMPLES",
            ".SH ENVIRONMENT",
            "GANGER_TIMEOUT",
        ] {
            assert!(page.contains(heading), "{heading} missing:\n{page}");
        }
        assert_eq!(page.matches(".ds Aq").count(), 2, "{page}");
        assert!(page.starts_with(".ie"), "{page}");
    }
}
