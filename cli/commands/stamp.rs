//! `dbtool stamp TARGET`: record the database as being at TARGET without running any
//! migration. Only rows of the tracking table change (the table is created if needed).

use crate::commands::{adopt, describe, migrate_error, open_session};
use crate::exit::Exit;
use crate::target::Target;
use crate::Ctx;
use anyhow::Result;
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool stamp 25698f3f906f        the users table exists already: record the initial revision
  dbtool stamp head                record every migration as applied
  dbtool stamp base                forget every record (tables stay as they are)")]
pub struct StampArgs {
    /// head, base, a migration name or Alembic revision (or a unique prefix of at least 4 characters), +N or -N
    #[arg(allow_negative_numbers = true)]
    pub target: Target,
    /// Print what would be recorded or removed, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Serialize)]
struct StampView {
    app: crate::app::App,
    dry_run: bool,
    at: Option<&'static str>,
    recorded: Vec<&'static str>,
    removed: Vec<&'static str>,
}

pub async fn run(ctx: &Ctx, args: StampArgs) -> Result<Exit> {
    let db = ctx.connect_migrate().await?;
    let mut session = open_session(ctx, &db).await?;
    session.overview.check_writable().map_err(migrate_error)?;
    if !args.dry_run {
        adopt(ctx, &mut session).await?;
    }
    let plan = session
        .overview
        .plan_stamp(&args.target)
        .map_err(migrate_error)?;
    if !args.dry_run {
        session
            .write_stamp(&plan.insert, &plan.delete)
            .await
            .map_err(migrate_error)?;
    }
    let at = plan.to.checked_sub(1).map(|i| session.overview.steps[i]);
    session.finish().await?;
    let view = StampView {
        app: ctx.app,
        dry_run: args.dry_run,
        at: at.map(|s| s.name),
        recorded: plan.insert.iter().map(|s| s.name).collect(),
        removed: plan.delete.iter().map(|s| s.name).collect(),
    };
    let would = if args.dry_run { "would " } else { "" };
    ctx.out.emit(&view, |o| {
        for s in &plan.insert {
            o.line(&format!("{would}record  {}", describe(s)));
        }
        for s in &plan.delete {
            o.line(&format!("{would}remove  {}", describe(s)));
        }
        let at = at.map(describe).unwrap_or_else(|| "base".into());
        if plan.insert.is_empty() && plan.delete.is_empty() {
            o.line(&format!(
                "{}: already stamped at {at}; nothing to do",
                ctx.app
            ));
        } else {
            o.line(&format!(
                "{}: {would}stamped at {at}; no migration was run",
                ctx.app
            ));
        }
    });
    Ok(Exit::Ok)
}
