//! `dbtool history`: every migration in order with what it does, its alias, state and
//! applied-at time. Read-only.

use crate::commands::{print_status, read_overview};
use crate::exit::Exit;
use crate::Ctx;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool history
  dbtool --app neurachar history --json")]
pub struct HistoryArgs {}

pub async fn run(ctx: &Ctx, _args: HistoryArgs) -> Result<Exit> {
    let ov = read_overview(ctx).await?;
    print_status(ctx, &ov, true);
    Ok(Exit::Ok)
}
