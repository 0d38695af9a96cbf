//! `dbtool downgrade [TARGET]`: roll back migrations down to TARGET (default: the last one).
//! Dropping tables that hold rows needs confirmation: a question on a terminal, `--yes`
//! otherwise.

use crate::commands::{
    adopt, dry_run, finish_run, migrate_error, open_session, step_line, TableRows,
};
use crate::exit::{coded, Exit};
use crate::service::migrations::Direction;
use crate::target::Target;
use crate::Ctx;
use anyhow::Result;
use clap::Args;

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
    #[arg(allow_negative_numbers = true)]
    pub target: Option<Target>,
    /// Print the plan, with the rows that would be lost, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Drop tables that hold rows without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub offline: crate::commands::sql::SqlArgs,
}

pub async fn run(ctx: &Ctx, args: DowngradeArgs) -> Result<Exit> {
    if let Some(range) = args.offline.sql {
        let dir = crate::service::migrations::Direction::Down;
        return crate::commands::sql::run(ctx, dir, range, args.offline.dialect).await;
    }
    let target = args.target.unwrap_or(Target::Relative(-1));
    if args.dry_run {
        return dry_run(ctx, Direction::Down, &target).await;
    }
    let db = ctx.connect_write().await?;
    let mut session = open_session(ctx, &db).await?;
    session.overview.check_writable().map_err(migrate_error)?;
    let plan = session
        .overview
        .plan_downgrade(&target)
        .map_err(migrate_error)?;
    let risk: Vec<TableRows> = session
        .data_at_risk(&plan)
        .await?
        .into_iter()
        .map(|(table, rows)| TableRows { table, rows })
        .collect();
    if !risk.is_empty() && !args.yes {
        let lost = risk
            .iter()
            .map(|r| format!("{} ({} rows)", r.table, r.rows))
            .collect::<Vec<_>>()
            .join(", ");
        let question = format!("This downgrade drops tables that hold data: {lost}. Continue?");
        let agreed = crate::prompt::interactive() && crate::prompt::confirm(&question).await?;
        if !agreed {
            session.finish().await?;
            return Err(coded(
                Exit::NotConfirmed,
                format!("not confirmed: the downgrade would drop {lost}; nothing was changed; re-run with --yes to confirm, or --dry-run to review"),
            ));
        }
    }
    adopt(ctx, &mut session).await?;
    let out = ctx.out;
    let outcome = session
        .apply(&plan, &ctx.interrupt, |d| out.line(&step_line(d)))
        .await;
    let result = finish_run(ctx, &session, &plan, outcome);
    session.finish().await?;
    result
}
