//! `dbtool status`: every migration and whether it is applied, half-done or changed since.
//! Read-only: it creates nothing, not even the tracking table or the SQLite file, and takes
//! no lock. `--check` is the CI gate: it fails on anything in the history that needs
//! attention, each with its own exit code. The view is shared with `history`.

use crate::exit::Exit;
use crate::output::{count, human_time, Column, Tone};
use crate::Ctx;
use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::Args;
use migration::engine::{describe, Alembic, Checksum, Chosen, Problem, Status, StepState};
use migration::App;
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool status                    table of migrations and a summary line
  dbtool status --json             the same as one JSON document
  dbtool status --check            fail when the history needs attention (for CI gates)

--check exits 13 for a half-done step, 14 when an applied migration was changed, 15 for
recorded migrations this build does not know, 16 for out-of-order history and 3 for pending
migrations (the first that holds, in this order).")]
pub struct StatusArgs {
    /// Exit non-zero when the history needs attention (see below)
    #[arg(long)]
    pub check: bool,
}

pub async fn run(ctx: &Ctx, args: StatusArgs) -> Result<Exit> {
    let status = read_status(ctx).await?;
    print_status(ctx, &status, false);
    Ok(if args.check {
        status.problems().first().map(exit_of).unwrap_or(Exit::Ok)
    } else {
        Exit::Ok
    })
}

/// The exit code of a `status --check` problem.
pub fn exit_of(p: &Problem) -> Exit {
    match p {
        Problem::HalfDone { .. } => Exit::HalfDone,
        Problem::ChecksumMismatch { .. } => Exit::ChecksumMismatch,
        Problem::UnknownRecorded { .. } => Exit::UnknownRecorded,
        Problem::OutOfOrder { .. } => Exit::OutOfOrder,
        Problem::Pending { .. } => Exit::Pending,
    }
}

/// The status of the configured database, read-only (an absent SQLite file reads as an
/// empty database, and says so on stderr).
pub async fn read_status(ctx: &Ctx) -> Result<Status> {
    match ctx.connect_read().await? {
        Some(db) => {
            let engine = ctx.engine(&db, ctx.engine_options()).await?;
            let status = engine.status().await.map_err(|e| ctx.fail(e))?;
            db.close().await.ok();
            Ok(status)
        }
        // `connect_read` has said that there is no database there.
        None => Ok(Status::empty(ctx.app)),
    }
}

#[derive(Serialize)]
pub struct StepView {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub description: &'static str,
}

/// One migration as `status` and `history` show it.
#[derive(Serialize)]
pub struct Row {
    pub name: String,
    pub alias: Option<&'static str>,
    pub description: &'static str,
    pub state: StepState,
    pub applied_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
}

#[derive(Serialize)]
pub struct ProblemView {
    pub kind: &'static str,
    pub code: u8,
    pub message: String,
}

/// The document `status` and `history` print.
#[derive(Serialize)]
pub struct StatusView {
    pub app: App,
    /// How the app was chosen: given, recognised from the database, or the default.
    pub app_chosen: Chosen,
    pub database: String,
    pub current: Option<StepView>,
    pub pending: usize,
    pub migrations: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alembic: Option<Alembic>,
    /// What `status --check` fails on, most serious first.
    pub problems: Vec<ProblemView>,
}

fn problem_view(ctx: &Ctx, p: &Problem) -> ProblemView {
    let exit = exit_of(p);
    let message = match p {
        Problem::HalfDone {
            step,
            direction,
            running: Some(holder),
        } => format!(
            "{} is being {} right now (the migration lock is held by {holder}); wait for that run to finish",
            describe(step),
            match direction {
                migration::engine::Direction::Up => "applied",
                migration::engine::Direction::Down => "rolled back",
            },
        ),
        Problem::HalfDone {
            step, direction, ..
        } => format!(
            "{} was interrupted halfway while {}; the next `{}` finishes it first",
            describe(step),
            match direction {
                migration::engine::Direction::Up => "being applied",
                migration::engine::Direction::Down => "being rolled back",
            },
            ctx.hint(match direction {
                migration::engine::Direction::Up => "upgrade",
                migration::engine::Direction::Down => "downgrade",
            })
        ),
        Problem::ChecksumMismatch { steps } => format!(
            "changed after it was applied: {} (its statements differ from what was recorded; `{}` re-records them once reviewed)",
            steps.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
            ctx.hint("repair")
        ),
        Problem::UnknownRecorded { versions } => format!(
            "recorded but unknown to this build: {} (the database is ahead of this dbtool)",
            versions.join(", ")
        ),
        Problem::OutOfOrder { pending } => format!(
            "pending although a later migration is applied: {} (`{}` applies them)",
            pending.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
            ctx.hint("upgrade --out-of-order")
        ),
        Problem::Pending { count: n } => format!("{} pending", count(*n, "migration", "migrations")),
    };
    ProblemView {
        kind: exit.kind(),
        code: exit.code(),
        message,
    }
}

pub fn status_view(ctx: &Ctx, st: &Status) -> StatusView {
    let ov = &st.overview;
    let mut migrations: Vec<Row> = ov
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| Row {
            name: s.name.to_owned(),
            alias: s.alias,
            description: s.description,
            state: ov.step_state(i),
            applied_at: ov.applied_at[i],
            checksum: st.checksums.get(i).cloned().flatten(),
        })
        .collect();
    migrations.extend(ov.unknown.iter().map(|r| Row {
        name: r.version.clone(),
        alias: None,
        description: "recorded in the database, unknown to this build of dbtool",
        state: StepState::Unknown,
        applied_at: Some(r.applied_at),
        checksum: None,
    }));
    StatusView {
        app: st.app,
        app_chosen: st.chosen.clone(),
        database: ctx.loc.display.clone(),
        current: ov.current().map(|s| StepView {
            name: s.name,
            alias: s.alias,
            description: s.description,
        }),
        pending: ov.pending(),
        migrations,
        alembic: ov.alembic.clone(),
        problems: st.problems().iter().map(|p| problem_view(ctx, p)).collect(),
    }
}

/// Prints the migration table (with descriptions for `history`) and the summary line;
/// warnings go to stderr.
pub fn print_status(ctx: &Ctx, st: &Status, descriptions: bool) {
    let view = status_view(ctx, st);
    let ov = &st.overview;
    if !ctx.out.json {
        if let Chosen::Recognised { evidence } = &st.chosen {
            if st.app != ctx.app {
                ctx.out.info(&format!(
                    "recognised a {} database ({})",
                    st.app,
                    evidence.join(", ")
                ));
            }
        }
        match &ov.alembic {
            Some(Alembic::Adoptable {
                revision,
                migrations,
            }) => ctx.out.info(&format!(
                "alembic_version is at {revision}: the next write command records {} as applied",
                count(migrations.len(), "migration", "migrations")
            )),
            Some(Alembic::Unknown { revision }) => ctx.out.warn(&format!(
                "alembic_version holds unknown revision {revision}; upgrade and downgrade will refuse to run"
            )),
            None => {}
        }
        if let Some(why) = &st.state.state_unreadable {
            ctx.out.warn(&format!(
                "dbtool's state table cannot be read ({why}): half-done steps and checksums are not checked"
            ));
        }
        for p in view.problems.iter().filter(|p| p.kind != "pending") {
            ctx.out.warn(&p.message);
        }
    }
    ctx.out.emit(&view, |o| {
        let mut header = vec![
            Column::id("migration"),
            Column::id("alias"),
            Column::id("state"),
            Column::id("applied at"),
        ];
        if descriptions {
            header.push(Column::text("description"));
        }
        let rows = view
            .migrations
            .iter()
            .map(|r| {
                let tone = match r.state {
                    StepState::Applied => Tone::Good,
                    StepState::Pending => Tone::Warn,
                    StepState::HalfDone | StepState::Unknown => Tone::Bad,
                };
                let at = match (r.state, r.applied_at) {
                    (_, Some(t)) => human_time(&t),
                    (StepState::Applied, None) => "(by Alembic)".into(),
                    _ => String::new(),
                };
                let state = match &r.checksum {
                    Some(Checksum::Mismatch { .. }) => format!("{} (changed)", r.state.as_str()),
                    _ => r.state.as_str().to_owned(),
                };
                let mut row = vec![
                    (r.name.clone(), Tone::Plain),
                    (r.alias.unwrap_or("").to_owned(), Tone::Plain),
                    (state, tone),
                    (at, Tone::Plain),
                ];
                if descriptions {
                    row.push((r.description.to_owned(), Tone::Plain));
                }
                row
            })
            .collect();
        o.table(&header, rows);
        let at = ov
            .current()
            .map(describe)
            .unwrap_or_else(|| "base (nothing applied)".into());
        // The position last: nothing clings to a name that may fill a narrow terminal.
        o.line(&format!("{}: {} pending, at {at}", st.app, view.pending));
    });
}
