//! `dbtool history`: every migration in order with what it does, its alias, state and
//! applied-at time. Read-only.

use crate::commands::status::{print_status, read_status};
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
    let status = read_status(ctx).await?;
    print_status(ctx, &status, true);
    Ok(Exit::Ok)
}
