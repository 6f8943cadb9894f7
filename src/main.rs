fn main() {
    // Before anything else: note the signal state we were given, so children
    // start with it rather than with ours.
    ganger::os::record_inherited_signals();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, settings) = match ganger::settings::parse(&args) {
        Ok(parsed) => parsed,
        Err(ganger::settings::Failure::Clap(e)) => e.exit(),
        Err(ganger::settings::Failure::Settings(err)) => {
            eprintln!("ganger: {}", ganger::error::chain(&err));
            std::process::exit(err.exit_code());
        }
    };
    let code = match ganger::run(cli, &settings) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ganger: {}", ganger::error::chain(&err));
            err.exit_code()
        }
    };
    std::process::exit(code);
}
