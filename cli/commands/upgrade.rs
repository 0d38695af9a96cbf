//! `dbtool upgrade [TARGET]`: apply pending migrations up to TARGET (default head).

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
  dbtool upgrade                   apply every pending migration
  dbtool upgrade d8cf              up to the migration whose name or revision starts with d8cf
  dbtool upgrade +1                apply the next migration only
  dbtool upgrade --dry-run         show the plan, change nothing
  dbtool upgrade --atomic          all pending migrations in one transaction (PostgreSQL, SQLite)
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
    /// Run the whole upgrade in one transaction: all of it or nothing (PostgreSQL, SQLite;
    /// refused when a migration cannot run inside a transaction)
    #[arg(long)]
    pub atomic: bool,
    /// Also apply pending migrations older than an applied one
    #[arg(long)]
    pub out_of_order: bool,
    /// Refuse to run when lint finds an error in what would run (on this database's live
    /// table sizes); without it lint findings are warnings
    #[arg(long)]
    pub strict: bool,
    /// When a half-done rollback is finished first: drop the tables it drops, even if they
    /// hold rows, without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub offline: crate::commands::sql::SqlArgs,
}

pub async fn run(ctx: &Ctx, args: UpgradeArgs) -> Result<Exit> {
    if let Some(range) = args.offline.sql {
        return crate::commands::sql::run(ctx, Direction::Up, range, args.offline.dialect).await;
    }
    let target = args.target.unwrap_or(Target::Head);
    let flags = RunFlags {
        yes: args.yes,
        atomic: args.atomic,
        out_of_order: args.out_of_order,
        strict: args.strict,
    };
    if args.dry_run {
        return migrate::dry_run(ctx, Direction::Up, target, flags).await;
    }
    migrate::run(ctx, Direction::Up, target, flags).await
}
