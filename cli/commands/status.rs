//! `dbtool status`: every migration and whether it is applied. Read-only: it creates
//! nothing, not even the tracking table or the SQLite file, and takes no lock.

use crate::commands::{print_status, read_overview};
use crate::exit::Exit;
use crate::Ctx;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool status                    table of migrations and a summary line
  dbtool status --json             the same as one JSON document
  dbtool status --check            exit 3 when migrations are pending (for CI gates)")]
pub struct StatusArgs {
    /// Exit with code 3 when migrations are pending
    #[arg(long)]
    pub check: bool,
}

pub async fn run(ctx: &Ctx, args: StatusArgs) -> Result<Exit> {
    let ov = read_overview(ctx).await?;
    print_status(ctx, &ov, false);
    Ok(if args.check && ov.pending() > 0 {
        Exit::Pending
    } else {
        Exit::Ok
    })
}
