//! `dbtool repair`: make the record true again without running a migration. A step left
//! half-done (its in-progress marker) is settled by what the live schema shows (all of its
//! objects: applied; none: not applied; some: refused with the list unless `--force`), and
//! the checksums of applied migrations whose statements changed are re-recorded. Both change
//! only dbtool's bookkeeping, under the migration lock, after a confirmation on a terminal or
//! `--yes`, and are audited.

use crate::exit::Exit;
use crate::Ctx;
use anyhow::Result;
use clap::Args;
use migration::engine::record::Settle;
use migration::engine::{describe, Command, Direction, MarkerRepair, RepairPlan};
use migration::App;
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool repair --dry-run          what would be changed, and why
  dbtool repair                    settle a half-done step and re-record changed checksums (asks)
  dbtool repair --yes              the same without asking
  dbtool repair --force --yes      clear a half-done marker although the step's objects exist
                                   only in part (then `dbtool check` shows what differs)

Usually re-running the interrupted command (`dbtool upgrade` or `dbtool downgrade`) finishes a
half-done step; repair is for a step that cannot be finished that way.")]
pub struct RepairArgs {
    /// Print what would be changed and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Clear a half-done marker even when the step's objects exist only in part; the record stays as it is
    #[arg(long)]
    pub force: bool,
    /// Change the record without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Serialize)]
struct RepairView<'a> {
    app: App,
    dry_run: bool,
    #[serde(flatten)]
    plan: &'a RepairPlan,
}

pub async fn run(ctx: &Ctx, args: RepairArgs) -> Result<Exit> {
    let cmd = Command::Repair {
        force: args.force,
        confirmed: args.yes,
    };
    let (app, plan) = if args.dry_run {
        let db = ctx.connect_existing("repair").await?;
        let engine = ctx.engine(&db, ctx.engine_options()).await?;
        let preview = engine.preview(&cmd).await.map_err(|e| ctx.fail(e))?;
        let plan = preview.repair.unwrap_or_default();
        // What the real run would refuse, the dry run refuses alike (same words and code).
        if let Some(m) = plan.marker.as_ref().filter(|m| m.settle.is_none()) {
            return Err(ctx.fail(migration::engine::Error::RepairRefused(Box::new(m.clone()))));
        }
        (preview.app, plan)
    } else {
        let db = ctx.connect_migrate_existing("repair", true).await?;
        let report = crate::engine::run(ctx, &db, ctx.engine_options(), &cmd, false).await?;
        (report.app, report.repaired.clone().unwrap_or_default())
    };
    let view = RepairView {
        app,
        dry_run: args.dry_run,
        plan: &plan,
    };
    if plan
        .marker
        .as_ref()
        .is_some_and(|m| m.settle == Some(Settle::KeepRecord))
        && !ctx.out.json
        && !args.dry_run
    {
        ctx.out.warn(&format!(
            "the half-done marker was cleared without the schema agreeing (--force); `{}` shows what differs",
            ctx.hint("check")
        ));
    }
    ctx.out.emit(&view, |o| {
        let say = |s: &str| if args.dry_run { o.line(s) } else { o.done(s) };
        for line in plan_lines(&plan, args.dry_run) {
            say(&line);
        }
        say(&if plan.is_empty() {
            format!("{app}: nothing to repair: no half-done step, no changed checksum")
        } else if args.dry_run {
            format!("{app}: nothing was changed (dry run)")
        } else {
            format!("{app}: repaired; no migration was run")
        });
    });
    Ok(Exit::Ok)
}

fn going(d: Direction) -> &'static str {
    match d {
        Direction::Up => "being applied",
        Direction::Down => "being rolled back",
    }
}

/// What the marker's settlement does, in words.
pub fn marker_line(m: &MarkerRepair, would: bool) -> String {
    let w = if would { "would " } else { "" };
    let found = if m.objects.missing.is_empty() && m.objects.present.is_empty() {
        "it creates nothing to look for on this backend".to_owned()
    } else if m.objects.missing.is_empty() {
        format!(
            "all of its objects exist ({})",
            crate::output::count(m.objects.present.len(), "object", "objects")
        )
    } else if m.objects.present.is_empty() {
        "none of its objects exists".to_owned()
    } else {
        format!(
            "its objects exist only in part (missing {})",
            m.objects.missing.join(", ")
        )
    };
    let action = match m.settle {
        Some(Settle::Applied) => format!("{w}record {} as applied", describe(m.step)),
        Some(Settle::NotApplied) => format!("{w}record {} as not applied", describe(m.step)),
        Some(Settle::KeepRecord) | None => format!(
            "{w}clear the half-done marker of {}, which stays {}",
            describe(m.step),
            if m.recorded {
                "recorded as applied"
            } else {
                "pending"
            }
        ),
    };
    format!(
        "{action}: it was left half-done while {}, and {found}",
        going(m.direction)
    )
}

fn plan_lines(plan: &RepairPlan, would: bool) -> Vec<String> {
    let w = if would { "would " } else { "" };
    let mut out = Vec::new();
    if let Some(m) = &plan.marker {
        out.push(marker_line(m, would));
    }
    for c in &plan.checksums {
        out.push(format!(
            "{w}re-record the checksum of {}: its statements changed after it was applied (recorded {}, now {})",
            describe(c.step),
            &c.stored[..12.min(c.stored.len())],
            &c.current[..12.min(c.current.len())]
        ));
    }
    out
}

/// The plan as lines for the confirmation question.
pub fn confirmation(plan: &RepairPlan) -> Vec<String> {
    plan_lines(plan, true)
}
