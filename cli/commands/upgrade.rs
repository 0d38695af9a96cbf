//! `dbtool upgrade [TARGET]`: apply pending migrations up to TARGET (default head).

use crate::commands::completions;
use crate::commands::{dry_run, migrate};
use crate::exit::Exit;
use crate::Ctx;
use anyhow::Result;
use clap::Args;
use clap_complete::ArgValueCandidates;
use migration::engine::state::Direction;
use migration::Target;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool upgrade                   apply every pending migration
  dbtool upgrade d8cf              up to the migration whose name or revision starts with d8cf
  dbtool upgrade +1                apply the next migration only
  dbtool upgrade --dry-run         show the plan, change nothing
  dbtool upgrade --sql head        print the SQL that would run from the database's state to head
  dbtool upgrade --sql base:head --dialect postgres > all.sql
                                   the whole schema as a psql script, without any database")]
pub struct UpgradeArgs {
    /// head (default), a migration name or Alembic revision (or a unique prefix of at least 4 characters), or +N
    #[arg(allow_negative_numbers = true, add = ArgValueCandidates::new(completions::targets))]
    pub target: Option<Target>,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub offline: crate::commands::sql::SqlArgs,
}

pub async fn run(ctx: &Ctx, args: UpgradeArgs) -> Result<Exit> {
    if let Some(range) = args.offline.sql {
        return crate::commands::sql::run(ctx, Direction::Up, range, args.offline.dialect).await;
    }
    let target = args.target.unwrap_or(Target::Head);
    if args.dry_run {
        return dry_run(ctx, Direction::Up, &target).await;
    }
    migrate(ctx, Direction::Up, &target, false).await
}
