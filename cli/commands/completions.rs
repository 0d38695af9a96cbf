//! `dbtool completions SHELL`: a completion script generated from the clap definitions, so
//! it always matches the binary that prints it.

use crate::exit::Exit;
use crate::Ctx;
use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool completions bash > ~/.local/share/bash-completion/completions/dbtool
  dbtool completions zsh > ~/.zfunc/_dbtool     (with fpath+=~/.zfunc before compinit)
  dbtool completions fish > ~/.config/fish/completions/dbtool.fish
  dbtool completions powershell >> $PROFILE")]
pub struct CompletionsArgs {
    /// The shell to write the script for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Serialize)]
struct CompletionsView {
    shell: String,
    script: String,
}

pub async fn run(ctx: &Ctx, args: CompletionsArgs) -> Result<Exit> {
    let mut cmd = crate::args::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "dbtool", &mut buf);
    let view = CompletionsView {
        shell: args.shell.to_string(),
        script: String::from_utf8_lossy(&buf).into_owned(),
    };
    ctx.out.emit(&view, |o| o.raw(&view.script));
    Ok(Exit::Ok)
}
