//! `dbtool stamp TARGET`: record the database as being at TARGET without running any
//! migration. Only dbtool's bookkeeping changes; the migrations recorded as applied are
//! verified first (their tables, columns, indexes and keys must exist), unless `--force`.

use crate::commands::completions;
use crate::exit::Exit;
use crate::Ctx;
use anyhow::Result;
use clap::Args;
use clap_complete::ArgValueCandidates;
use migration::engine::{describe, Command};
use migration::{App, Target};
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool stamp 25698f3f906f        the users table exists already: record the initial revision
  dbtool stamp head                record every migration as applied (verified first)
  dbtool stamp base                forget every record (tables stay as they are)
  dbtool stamp d8cf --force        record it although objects are missing (check shows them)")]
pub struct StampArgs {
    /// head, base, a migration name or Alembic revision (or a unique prefix of at least 4 characters), +N or -N
    #[arg(allow_negative_numbers = true, add = ArgValueCandidates::new(completions::targets))]
    pub target: Target,
    /// Print what would be recorded or removed, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Record even if objects of the recorded migrations are missing
    #[arg(long)]
    pub force: bool,
    /// When a half-done rollback is finished first: drop the tables it drops, even if they
    /// hold rows, without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Serialize)]
struct StampView {
    app: App,
    dry_run: bool,
    forced: bool,
    at: Option<&'static str>,
    recorded: Vec<&'static str>,
    removed: Vec<&'static str>,
    /// A half-done step this run finished first (in the direction it was going).
    #[serde(skip_serializing_if = "Option::is_none")]
    finished: Option<Finished>,
}

#[derive(Serialize)]
struct Finished {
    migration: &'static str,
    direction: migration::engine::Direction,
}

pub async fn run(ctx: &Ctx, args: StampArgs) -> Result<Exit> {
    let missing = ctx
        .migration_loc()
        .sqlite_file
        .as_ref()
        .filter(|f| !f.exists());
    let mut nothing_to_do = false;
    let mut new_file_plan = None;
    if let Some(file) = missing {
        // A bad target is a bad command line whether or not the database exists.
        let plan = migration::engine::Status::empty(ctx.app)
            .overview
            .plan_stamp(&args.target)
            .map_err(|e| ctx.fail(e.into()))?;
        nothing_to_do = plan.insert.is_empty() && plan.delete.is_empty();
        if !nothing_to_do && !args.force && !args.dry_run {
            // A verified stamp checks the recorded migrations' tables, which a new file
            // cannot have: refused before the file is created.
            let names: Vec<&str> = plan.insert.iter().map(|s| s.name).collect();
            return Err(crate::exit::coded(
                Exit::Drift,
                format!(
                    "cannot record {} as applied: the SQLite database {} does not exist, so none of their tables do; nothing was created; create them with `{}`, or record them anyway with `{}` (which creates the file)",
                    names.join(", "),
                    crate::config::show_path(file),
                    ctx.hint(&format!("upgrade {}", args.target)),
                    ctx.hint(&format!("stamp {} --force", args.target)),
                ),
            ));
        }
        new_file_plan = Some(plan);
    }
    let cmd = Command::Stamp {
        target: args.target,
        force: args.force,
    };
    let view = if nothing_to_do {
        // Base on a file that does not exist: nothing to record, and nothing is created.
        StampView {
            app: ctx.app,
            dry_run: args.dry_run,
            forced: false,
            at: None,
            recorded: Vec::new(),
            removed: Vec::new(),
            finished: None,
        }
    } else if let (true, Some(plan)) = (args.dry_run, &new_file_plan) {
        // A dry run on a file that does not exist: the plan from an empty database.
        let steps = ctx.app.steps();
        StampView {
            app: ctx.app,
            dry_run: true,
            forced: false,
            at: plan.to.checked_sub(1).map(|i| steps[i].name),
            recorded: plan.insert.iter().map(|s| s.name).collect(),
            removed: Vec::new(),
            finished: None,
        }
    } else if args.dry_run {
        let db = ctx.connect_existing("stamp").await?;
        let engine = ctx.engine(&db, ctx.engine_options()).await?;
        let preview = engine.preview(&cmd).await.map_err(|e| ctx.fail(e))?;
        let plan = preview.stamp.expect("a stamp preview has a stamp plan");
        StampView {
            app: preview.app,
            dry_run: true,
            forced: false,
            at: plan
                .to
                .checked_sub(1)
                .map(|i| preview.overview.steps[i].name),
            recorded: plan.insert.iter().map(|s| s.name).collect(),
            removed: plan.delete.iter().map(|s| s.name).collect(),
            finished: preview.resume.map(|(step, direction)| Finished {
                migration: step.name,
                direction,
            }),
        }
    } else {
        // A SQLite file that does not exist is created (only with --force gets here with
        // something to record, see above).
        let db = ctx.connect_migrate().await?;
        let opts = migration::engine::Options {
            allow_data_loss: args.yes,
            ..ctx.engine_options()
        };
        let report = crate::engine::run(ctx, &db, opts, &cmd, false).await?;
        StampView {
            app: report.app,
            dry_run: false,
            forced: report.forced,
            at: report.to,
            recorded: report.recorded.clone(),
            removed: report.removed.clone(),
            finished: report.resumed.as_ref().map(|r| Finished {
                migration: r.step.name,
                direction: r.direction,
            }),
        }
    };
    if view.forced {
        ctx.out.warn(&format!(
            "recorded without verifying the schema (--force); `{}` shows what differs",
            ctx.hint("check")
        ));
    }
    let would = if view.dry_run { "would " } else { "" };
    let steps = view.app.steps();
    let show = |n: &str| {
        steps
            .iter()
            .find(|s| s.name == n)
            .map(|s| describe(s))
            .unwrap_or_else(|| n.to_owned())
    };
    ctx.out.emit(&view, |o| {
        // A dry run's plan is what was asked for; after a real stamp it is a confirmation.
        let say = |s: &str| if view.dry_run { o.line(s) } else { o.done(s) };
        if let Some(f) = &view.finished {
            say(&format!(
                "{} the interrupted {} of {} first",
                if view.dry_run {
                    "would finish"
                } else {
                    "finished"
                },
                match f.direction {
                    migration::engine::Direction::Up => "upgrade",
                    migration::engine::Direction::Down => "rollback",
                },
                show(f.migration)
            ));
        }
        // After finishing a half-done step, "nothing" would be untrue.
        let other = if view.finished.is_some() {
            " other"
        } else {
            ""
        };
        for s in &view.recorded {
            say(&format!("{would}record {}", show(s)));
        }
        for s in &view.removed {
            say(&format!("{would}remove {}", show(s)));
        }
        let at = view.at.map(show).unwrap_or_else(|| "base".into());
        if view.recorded.is_empty() && view.removed.is_empty() && view.finished.is_some() {
            say(&format!("{}: at {at}; nothing else to stamp", view.app));
        } else if view.recorded.is_empty() && view.removed.is_empty() {
            say(&format!(
                "{}: already stamped at {at}; nothing to do",
                view.app
            ));
        } else if view.dry_run {
            say(&format!(
                "{}: would be stamped at {at}; nothing was changed (dry run)",
                view.app
            ));
        } else {
            say(&format!(
                "{}: stamped at {at}; no{other} migration was run",
                view.app
            ));
        }
    });
    Ok(Exit::Ok)
}
