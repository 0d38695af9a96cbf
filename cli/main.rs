//! The `dbtool` binary: parse, run, print the error chain to stderr, return an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    dbtool::output::install_panic_hook();
    let cli = match dbtool::args::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let out = dbtool::output::Output::new(cli.global.json, cli.global.quiet);
    match dbtool::run(cli, out) {
        Ok(exit) => exit.into(),
        Err(err) => out.error(&err).into(),
    }
}
