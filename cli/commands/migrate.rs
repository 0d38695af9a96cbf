//! What `upgrade` and `downgrade` share: one engine call with the renderer, then the report
//! (or, with `--dry-run`, the engine's read-only preview).

use crate::exit::Exit;
use crate::output::count;
use crate::Ctx;
use anyhow::Result;
use migration::engine::{describe, Command, Direction, Preview, Report, TableRows};
use migration::{App, StepInfo, Target};
use serde::Serialize;

/// Options of `upgrade` and `downgrade` that shape the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags {
    pub yes: bool,
    pub atomic: bool,
    pub out_of_order: bool,
    /// Refuse a plan that lint finds errors in (upgrade --strict).
    pub strict: bool,
}

#[derive(Serialize)]
pub struct PlanStep {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub description: &'static str,
}

fn plan_step(s: &StepInfo) -> PlanStep {
    PlanStep {
        name: s.name,
        alias: s.alias,
        description: s.description,
    }
}

fn plan_steps(app: App, names: &[&'static str]) -> Vec<PlanStep> {
    let steps = app.steps();
    names
        .iter()
        .filter_map(|n| steps.iter().find(|s| s.name == *n))
        .map(|s| plan_step(s))
        .collect()
}

/// The result document of upgrade and downgrade.
#[derive(Serialize)]
struct RunView<'a> {
    dry_run: bool,
    plan: Vec<PlanStep>,
    #[serde(flatten)]
    report: &'a Report,
}

/// `upgrade` / `downgrade`: the engine does everything under its lock; this renders.
pub async fn run(ctx: &Ctx, direction: Direction, target: Target, flags: RunFlags) -> Result<Exit> {
    let report = apply(ctx, direction, target, flags).await?;
    show_report(ctx, direction, &report);
    Ok(Exit::Ok)
}

/// One upgrade or downgrade of the context's database, start to end: connect (a downgrade
/// needs the database to exist), run the engine with the CLI's renderer, close. The single
/// database commands and every target of `fleet` go through here.
pub async fn apply(
    ctx: &Ctx,
    direction: Direction,
    target: Target,
    flags: RunFlags,
) -> Result<Report> {
    let db = match direction {
        Direction::Up => {
            if ctx
                .migration_loc()
                .sqlite_file
                .as_ref()
                .is_some_and(|f| !f.exists())
            {
                // A new SQLite file starts empty: a target that cannot be planned from there
                // is refused before the file is created, and one that needs no step
                // (`upgrade base`) creates nothing.
                let preview = empty_preview(ctx, direction, &target)?;
                if preview.plan.as_ref().is_some_and(|p| p.steps.is_empty()) {
                    // Nothing to do, and nothing read: the new file's position is base.
                    let mut report = Report::new(ctx.app, Some(direction));
                    report.to_known = true;
                    return Ok(report);
                }
            }
            ctx.connect_migrate().await?
        }
        Direction::Down => ctx.connect_migrate_existing("roll back", true).await?,
    };
    let mut opts = ctx.engine_options();
    opts.allow_data_loss = flags.yes;
    opts.atomic = flags.atomic;
    opts.out_of_order = flags.out_of_order;
    let cmd = match direction {
        Direction::Up => Command::Upgrade(target),
        Direction::Down => Command::Downgrade(target),
    };
    let report = crate::engine::run(ctx, &db, opts, &cmd, flags.strict).await;
    // The session (and with it the lock) ends here, not when the process does: a fleet
    // runs many of these in one process.
    db.close().await.ok();
    report
}

/// The result of a run: a line on stdout, or the document with `--json`.
fn show_report(ctx: &Ctx, direction: Direction, report: &Report) {
    let view = RunView {
        dry_run: false,
        plan: plan_steps(report.app, &report.planned),
        report,
    };
    let at = report
        .to
        .and_then(|n| report.app.steps().into_iter().find(|s| s.name == n))
        .map(describe)
        .unwrap_or_else(|| "base".into());
    ctx.out.emit(&view, |o| {
        if !report.to_known {
            // Every step committed, but the connection went before the position was read.
            o.done(&format!(
                "{}: {}; {}",
                report.app,
                what_was_done(direction, report),
                crate::engine::position_for(ctx, report)
            ));
        } else if report.planned.is_empty() && report.resumed.is_none() {
            o.done(&format!("{}: already at {at}; nothing to do", report.app));
        } else {
            o.done(&format!(
                "{}: now at {at} ({})",
                report.app,
                what_was_done(direction, report)
            ));
        }
    });
}

/// "3 migrations applied", counting a finished half-done step only when it went the run's
/// way; one finished the other way is named on its own.
fn what_was_done(direction: Direction, report: &Report) -> String {
    let past = |d: Direction| match d {
        Direction::Up => "applied",
        Direction::Down => "rolled back",
    };
    let resumed = report.resumed.as_ref();
    let same = resumed.is_some_and(|r| r.direction == direction);
    let n = report.done.len() + usize::from(same);
    let counted = format!(
        "{} {}",
        count(n, "migration", "migrations"),
        past(direction)
    );
    match resumed.filter(|_| !same) {
        Some(r) => format!(
            "finished the interrupted {} of {}, then {counted}",
            match r.direction {
                Direction::Up => "upgrade",
                Direction::Down => "rollback",
            },
            r.step.name
        ),
        None => counted,
    }
}

#[derive(Serialize)]
struct PreviewView<'a> {
    app: App,
    direction: Direction,
    dry_run: bool,
    from: Option<&'static str>,
    to: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<PlanStep>,
    plan: Vec<PlanStep>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    data_at_risk: &'a [TableRows],
}

/// `--dry-run`: the plan from a read-only look at the database. It takes no lock and
/// creates nothing (no SQLite file, no schema, no tracking table).
pub async fn dry_run(
    ctx: &Ctx,
    direction: Direction,
    target: Target,
    flags: RunFlags,
) -> Result<Exit> {
    let preview = match ctx.connect_read().await? {
        Some(db) => {
            let mut opts = ctx.engine_options();
            opts.out_of_order = flags.out_of_order;
            let engine = ctx.engine(&db, opts).await?;
            let cmd = match direction {
                Direction::Up => Command::Upgrade(target),
                Direction::Down => Command::Downgrade(target),
            };
            engine.preview(&cmd).await.map_err(|e| ctx.fail(e))?
        }
        None => empty_preview(ctx, direction, &target)?,
    };
    show_preview(ctx, direction, &preview);
    Ok(Exit::Ok)
}

/// The preview for a database that does not exist yet.
fn empty_preview(ctx: &Ctx, direction: Direction, target: &Target) -> Result<Preview> {
    let status = migration::engine::Status::empty(ctx.app);
    let plan = status
        .overview
        .plan(direction, target)
        .map_err(|e| ctx.fail(e.into()))?;
    Ok(Preview {
        app: ctx.app,
        chosen: status.chosen,
        overview: status.overview,
        resume: None,
        adopt: None,
        plan: Some(plan),
        stamp: None,
        repair: None,
        risk: Vec::new(),
    })
}

fn show_preview(ctx: &Ctx, direction: Direction, p: &Preview) {
    let Some(plan) = &p.plan else { return };
    let at = |pos: usize| pos.checked_sub(1).map(|i| p.overview.steps[i].name);
    let view = PreviewView {
        app: p.app,
        direction,
        dry_run: true,
        from: at(plan.from),
        to: at(plan.to),
        resume: p.resume.map(|(s, _)| plan_step(s)),
        plan: plan.steps.iter().map(|s| plan_step(s)).collect(),
        data_at_risk: &p.risk,
    };
    ctx.out.emit(&view, |o| {
        if let Some((s, d)) = p.resume {
            o.line(&format!(
                "would first finish {} ({}), left half-done by an earlier run that failed or was interrupted",
                describe(s),
                match d {
                    Direction::Up => "applying",
                    Direction::Down => "rolling back",
                }
            ));
        }
        if let Some(a) = &p.adopt {
            o.line(&format!(
                "would adopt the Alembic-managed database (alembic_version {}): record {} as applied",
                a.revision,
                a.migrations.join(", ")
            ));
        }
        let drops = |o: &crate::output::Output| {
            for r in &p.risk {
                o.line(&format!(
                    "  drops table {} with {}",
                    r.table,
                    count(r.rows, "row", "rows")
                ));
            }
        };
        if plan.steps.is_empty() {
            // A step finished or an adoption recorded is still something done.
            drops(o);
            o.line(if p.resume.is_some() || p.adopt.is_some() {
                "(dry run: nothing was changed)"
            } else {
                "nothing to do (dry run)"
            });
            return;
        }
        let verb = match direction {
            Direction::Up => "apply",
            Direction::Down => "roll back",
        };
        o.line(&format!(
            "would {verb} {}, in this order:",
            count(plan.steps.len(), "migration", "migrations")
        ));
        for (i, s) in plan.steps.iter().enumerate() {
            o.line(&format!("  {}. {}  {}", i + 1, describe(s), s.description));
        }
        drops(o);
        o.line("(dry run: nothing was changed)");
    });
}
