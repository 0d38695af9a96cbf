//! The `dbtool` binary: answer a shell's completion request, or parse, run, print the
//! error chain to stderr, and return an exit code (a failed write to stdout included).

use std::process::ExitCode;

fn main() -> ExitCode {
    dbtool::output::install_panic_hook();
    // `COMPLETE=bash dbtool -- ...`: the shell asks for candidates; answered and exited here.
    dbtool::commands::completions::answer_shell();
    let cli = match dbtool::args::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let out = dbtool::output::Output::new(cli.global.json, cli.global.quiet);
    let exit = match dbtool::run(cli, out) {
        Ok(exit) => exit,
        Err(err) => out.error(&err),
    };
    dbtool::output::settle(exit).into()
}
