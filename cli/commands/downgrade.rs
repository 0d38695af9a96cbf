//! `dbtool downgrade [TARGET]`: roll back migrations down to TARGET (default: the last one).
//! Dropping tables that hold rows needs confirmation: a question on a terminal, `--yes`
//! otherwise.

use crate::commands::completions;
use crate::commands::migrate::{self, RunFlags};
use crate::exit::Exit;
use crate::Ctx;
use anyhow::Result;
use clap::Args;
use clap_complete::ArgValueCandidates;
use migration::engine::Direction;
use migration::Target;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool downgrade                 roll back the last applied migration
  dbtool downgrade -2              roll back two migrations
  dbtool downgrade 25698f3f906f    down to (and keeping) that revision
  dbtool downgrade base --yes      roll back everything, even tables that hold rows
  dbtool downgrade base --dry-run  show what would be dropped, change nothing
  dbtool downgrade --sql head:base --dialect postgres
                                   print the SQL that rolls everything back, without any database")]
pub struct DowngradeArgs {
    /// -1 (default), -N, base, or a migration name or Alembic revision (or a unique prefix of at least 4 characters) to keep as the last applied one
    #[arg(allow_negative_numbers = true, add = ArgValueCandidates::new(completions::targets))]
    pub target: Option<Target>,
    /// Print the plan, with the rows that would be lost, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Drop tables that hold rows without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Run the whole downgrade in one transaction: all of it or nothing (PostgreSQL, SQLite)
    #[arg(long)]
    pub atomic: bool,
    #[command(flatten)]
    pub offline: crate::commands::sql::SqlArgs,
}

pub async fn run(ctx: &Ctx, args: DowngradeArgs) -> Result<Exit> {
    if let Some(range) = args.offline.sql {
        return crate::commands::sql::run(ctx, Direction::Down, range, args.offline.dialect).await;
    }
    let target = args.target.unwrap_or(Target::Relative(-1));
    let flags = RunFlags {
        yes: args.yes,
        atomic: args.atomic,
        out_of_order: false,
        strict: false,
    };
    if args.dry_run {
        return migrate::dry_run(ctx, Direction::Down, target, flags).await;
    }
    migrate::run(ctx, Direction::Down, target, flags).await
}
