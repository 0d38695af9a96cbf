//! `dbtool stamp TARGET`: record the database as being at TARGET without running any
//! migration. Only rows of the tracking table change (the table is created if needed).

use crate::commands::completions;
use crate::commands::{adopt, describe, migrate_error, open_session};
use crate::exit::Exit;
use crate::Ctx;
use anyhow::Result;
use clap::Args;
use clap_complete::ArgValueCandidates;
use migration::Target;
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool stamp 25698f3f906f        the users table exists already: record the initial revision
  dbtool stamp head                record every migration as applied
  dbtool stamp base                forget every record (tables stay as they are)")]
pub struct StampArgs {
    /// head, base, a migration name or Alembic revision (or a unique prefix of at least 4 characters), +N or -N
    #[arg(allow_negative_numbers = true, add = ArgValueCandidates::new(completions::targets))]
    pub target: Target,
    /// Print what would be recorded or removed, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Serialize)]
struct StampView {
    app: migration::App,
    dry_run: bool,
    at: Option<&'static str>,
    recorded: Vec<&'static str>,
    removed: Vec<&'static str>,
}

pub async fn run(ctx: &Ctx, args: StampArgs) -> Result<Exit> {
    let db = ctx.connect_write().await?;
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
    let dry_run = args.dry_run;
    let would = if dry_run { "would " } else { "" };
    ctx.out.emit(&view, |o| {
        // A dry run's plan is what was asked for; after a real stamp it is a confirmation.
        let say = |s: &str| if dry_run { o.line(s) } else { o.done(s) };
        for s in &plan.insert {
            say(&format!("{would}record  {}", describe(s)));
        }
        for s in &plan.delete {
            say(&format!("{would}remove  {}", describe(s)));
        }
        let at = at.map(describe).unwrap_or_else(|| "base".into());
        if plan.insert.is_empty() && plan.delete.is_empty() {
            say(&format!(
                "{}: already stamped at {at}; nothing to do",
                ctx.app
            ));
        } else if dry_run {
            say(&format!(
                "{}: would be stamped at {at}; nothing was changed (dry run)",
                ctx.app
            ));
        } else {
            say(&format!(
                "{}: stamped at {at}; no migration was run",
                ctx.app
            ));
        }
    });
    Ok(Exit::Ok)
}
