//! `dbtool upgrade [TARGET]`: apply pending migrations up to TARGET (default head).

use crate::commands::{adopt, finish_run, open_session, refuse_conflicts, show_plan, step_line};
use crate::exit::Exit;
use crate::target::Target;
use crate::Ctx;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool upgrade                   apply every pending migration
  dbtool upgrade d8cf              up to the migration whose name or revision starts with d8cf
  dbtool upgrade +1                apply the next migration only
  dbtool upgrade --dry-run         show the plan, change nothing")]
pub struct UpgradeArgs {
    /// head (default), a migration name or Alembic revision (or a unique prefix of at least 4 characters), or +N
    #[arg(allow_negative_numbers = true)]
    pub target: Option<Target>,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(ctx: &Ctx, args: UpgradeArgs) -> Result<Exit> {
    let target = args.target.unwrap_or(Target::Head);
    let db = ctx.connect_write().await?;
    let mut session = open_session(ctx, &db).await?;
    session
        .overview
        .check_writable()
        .map_err(crate::commands::migrate_error)?;
    let plan = session
        .overview
        .plan_upgrade(&target)
        .map_err(crate::commands::migrate_error)?;
    refuse_conflicts(&session, &plan)?;
    if args.dry_run {
        show_plan(ctx, &session, &plan, Vec::new());
        session.finish().await?;
        return Ok(Exit::Ok);
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
