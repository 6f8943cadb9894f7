use clap::Parser;

fn main() {
    // Before anything else: note the signal state we were given, so children
    // start with it rather than with ours.
    ganger::os::record_inherited_signals();
    let cli = ganger::cli::Cli::parse();
    let code = match ganger::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ganger: {}", ganger::error::chain(&err));
            err.exit_code()
        }
    };
    std::process::exit(code);
}
