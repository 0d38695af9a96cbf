//! One module per subcommand: each turns its arguments into domain values, calls a
//! service, and hands a view to the output module. Shared pieces of the migration
//! commands live here.

pub mod characters;
pub mod chats;
pub mod check;
pub mod completions;
pub mod config;
pub mod docs;
pub mod downgrade;
pub mod history;
pub mod login_codes;
pub mod man;
pub mod settings;
pub mod sql;
pub mod stamp;
pub mod status;
pub mod upgrade;
pub mod users;

use crate::args::Command;
use crate::exit::{coded, Exit};
use crate::service::migrations::{
    data_at_risk, read_state, short_name, suggested_stamp, DbState, Direction, MigrateError,
    Outcome, Overview, Plan, Session, StepDone,
};
use crate::target::Target;
use crate::Ctx;
use anyhow::Result;
use migration::StepInfo;
use sea_orm::DatabaseConnection;
use serde::Serialize;

pub async fn dispatch(ctx: &Ctx, command: Command) -> Result<Exit> {
    match command {
        Command::Upgrade(a) => upgrade::run(ctx, a).await,
        Command::Downgrade(a) => downgrade::run(ctx, a).await,
        Command::Status(a) => status::run(ctx, a).await,
        Command::History(a) => history::run(ctx, a).await,
        Command::Stamp(a) => stamp::run(ctx, a).await,
        Command::Settings(a) => settings::run(ctx, a).await,
        Command::Users(a) => users::run(ctx, a).await,
        Command::LoginCodes(a) => login_codes::run(ctx, a).await,
        Command::Characters(a) => characters::run(ctx, a).await,
        Command::Chats(a) => chats::run(ctx, a).await,
        Command::Check(a) => check::run(ctx, a).await,
        Command::Docs(a) => docs::run(ctx, a).await,
        Command::Config(a) => config::run(ctx, a).await,
        Command::Completions(a) => completions::run(ctx, a).await,
        Command::Man(a) => man::run(ctx, a).await,
    }
}

/// Opens a locked write session, saying once on stderr if it has to wait for the lock.
pub async fn open_session<'a>(ctx: &Ctx, db: &'a DatabaseConnection) -> Result<Session<'a>> {
    let out = ctx.out;
    let timeout = ctx.lock_timeout;
    Session::open(db, ctx.app, &ctx.lock_key(), timeout, |holder| {
        out.info(&format!(
            "waiting up to {}s for the migration lock held by {holder}",
            timeout.as_secs()
        ))
    })
    .await
    .map_err(migrate_error)
}

/// Chooses the exit code and wording for a service error.
pub fn migrate_error(e: MigrateError) -> anyhow::Error {
    let exit = match &e {
        MigrateError::UnknownTarget { .. }
        | MigrateError::AmbiguousTarget { .. }
        | MigrateError::OutOfRange { .. }
        | MigrateError::WrongDirection { .. } => Exit::Usage,
        MigrateError::Lock(crate::service::lock::LockError::Timeout { .. }) => Exit::LockTimeout,
        _ => Exit::Failure,
    };
    coded(exit, e.to_string())
}

/// `upgrade` / `downgrade`: lock, re-read the state, plan, guard (tables that already exist
/// going up; rows that would be dropped going down, unless `yes`), apply step by step, report.
pub async fn migrate(ctx: &Ctx, direction: Direction, target: &Target, yes: bool) -> Result<Exit> {
    let db = ctx.connect_migrate().await?;
    let mut session = open_session(ctx, &db).await?;
    session.overview.check_writable().map_err(migrate_error)?;
    let plan = match direction {
        Direction::Up => session.overview.plan_upgrade(target),
        Direction::Down => session.overview.plan_downgrade(target),
    }
    .map_err(migrate_error)?;
    match direction {
        Direction::Up => refuse_conflicts(&session, &plan)?,
        Direction::Down if !yes => confirm_data_loss(&session, &plan).await?,
        Direction::Down => {}
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

/// Dropping tables that hold rows needs a "yes" from a person at a terminal; without one
/// (or `--yes`) nothing changes.
async fn confirm_data_loss(session: &Session<'_>, plan: &Plan) -> Result<()> {
    let risk = session.data_at_risk(plan).await?;
    if risk.is_empty() {
        return Ok(());
    }
    let lost = risk
        .iter()
        .map(|(table, rows)| format!("{table} ({rows} rows)"))
        .collect::<Vec<_>>()
        .join(", ");
    let question = format!("This downgrade drops tables that hold data: {lost}. Continue?");
    if crate::prompt::interactive() && crate::prompt::confirm(&question).await? {
        return Ok(());
    }
    Err(coded(
        Exit::NotConfirmed,
        format!("not confirmed: the downgrade would drop {lost}; nothing was changed; re-run with --yes to confirm, or --dry-run to review"),
    ))
}

/// Adopts an Alembic-managed database on a write command, saying so in one line.
pub async fn adopt(ctx: &Ctx, session: &mut Session<'_>) -> Result<()> {
    if let Some((revision, migrations)) = session.adopt_alembic().await.map_err(migrate_error)? {
        ctx.out.info(&format!(
            "adopted Alembic-managed database: alembic_version is at {revision}, recorded {} as applied (alembic_version is left as it was)",
            migrations.join(", ")
        ));
    }
    Ok(())
}

/// Stops an upgrade whose tables already exist, suggesting the `stamp` that fits.
pub fn refuse_conflicts(session: &Session<'_>, plan: &Plan) -> Result<()> {
    conflicts_error(&session.overview, &session.state, session.backend(), plan)
}

fn conflicts_error(
    overview: &Overview,
    state: &DbState,
    backend: sea_orm::DbBackend,
    plan: &Plan,
) -> Result<()> {
    let conflicts = overview.conflicts(plan, state);
    let Some((step, tables)) = conflicts.first() else {
        return Ok(());
    };
    let fix = match suggested_stamp(overview, state) {
        Some(s) => format!(
            "if the database already has this schema, record it with `dbtool stamp {}` and run `dbtool upgrade` again",
            short_name(s)
        ),
        None => format!(
            "the tables of {} exist only in part (a failed run on a backend that cannot roll back DDL?): drop {} and run `dbtool upgrade` again",
            step.name,
            tables.join(", ")
        ),
    };
    let why = if backend == sea_orm::DbBackend::MySql {
        " (MySQL/MariaDB commit DDL at once, so a failed or killed earlier run can leave this behind)"
    } else {
        ""
    };
    Err(coded(
        Exit::Failure,
        format!(
            "table {} already exists but migration {} that creates it is not recorded{why}; nothing was changed; {fix}",
            tables.join(", "),
            describe(step)
        ),
    ))
}

/// `name (alias)`, or just the name.
pub fn describe(s: &StepInfo) -> String {
    match s.alias {
        Some(a) => format!("{} ({a})", s.name),
        None => s.name.to_owned(),
    }
}

/// The line printed as each step finishes.
pub fn step_line(d: &StepDone) -> String {
    let verb = match d.direction {
        Direction::Up => "applied    ",
        Direction::Down => "rolled back",
    };
    let alias = d.alias.map(|a| format!(" ({a})")).unwrap_or_default();
    format!(
        "{verb} {}{alias} in {:.1} ms",
        d.name,
        d.elapsed.as_secs_f64() * 1000.0
    )
}

#[derive(Serialize)]
pub struct PlanStep {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub description: &'static str,
}

/// The result document of upgrade and downgrade.
#[derive(Serialize)]
pub struct RunView {
    pub app: crate::app::App,
    pub direction: Direction,
    pub dry_run: bool,
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
    pub plan: Vec<PlanStep>,
    pub done: Vec<StepDone>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_at_risk: Vec<TableRows>,
}

#[derive(Serialize, Clone)]
pub struct TableRows {
    pub table: String,
    pub rows: i64,
}

pub fn plan_steps(plan: &Plan) -> Vec<PlanStep> {
    plan.steps
        .iter()
        .map(|s| PlanStep {
            name: s.name,
            alias: s.alias,
            description: s.description,
        })
        .collect()
}

fn position_name(overview: &Overview, pos: usize) -> Option<&'static str> {
    pos.checked_sub(1).map(|i| overview.steps[i].name)
}

/// `--dry-run` of upgrade and downgrade: the plan from a read-only look at the database.
/// It takes no lock and creates nothing (no SQLite file, no schema, no tracking table).
pub async fn dry_run(ctx: &Ctx, direction: Direction, target: &Target) -> Result<Exit> {
    let db = ctx.connect_read().await?;
    let state = match &db {
        Some(db) => read_state(db).await?,
        None => DbState::default(),
    };
    let overview = Overview::new(ctx.app, &state);
    overview.check_writable().map_err(migrate_error)?;
    let plan = match direction {
        Direction::Up => overview.plan_upgrade(target),
        Direction::Down => overview.plan_downgrade(target),
    }
    .map_err(migrate_error)?;
    conflicts_error(&overview, &state, ctx.loc.backend, &plan)?;
    let risk = match &db {
        Some(db) => data_at_risk(db, &state, &plan).await?,
        None => Vec::new(),
    };
    let risk = risk
        .into_iter()
        .map(|(table, rows)| TableRows { table, rows })
        .collect();
    show_plan(ctx, &overview, &plan, risk);
    Ok(Exit::Ok)
}

/// Prints a dry run's plan.
pub fn show_plan(ctx: &Ctx, overview: &Overview, plan: &Plan, risk: Vec<TableRows>) {
    let view = RunView {
        app: ctx.app,
        direction: plan.direction,
        dry_run: true,
        from: position_name(overview, plan.from),
        to: position_name(overview, plan.to),
        plan: plan_steps(plan),
        done: Vec::new(),
        data_at_risk: risk.clone(),
    };
    ctx.out.emit(&view, |o| {
        if plan.steps.is_empty() {
            o.line("nothing to do (dry run)");
            return;
        }
        let verb = match plan.direction {
            Direction::Up => "apply",
            Direction::Down => "roll back",
        };
        o.line(&format!(
            "would {verb} {} migration(s), in this order:",
            plan.steps.len()
        ));
        for (i, s) in plan.steps.iter().enumerate() {
            o.line(&format!("  {}. {}  {}", i + 1, describe(s), s.description));
        }
        for r in &risk {
            o.line(&format!("  drops table {} with {} row(s)", r.table, r.rows));
        }
        o.line("(dry run: nothing was changed)");
    });
}

/// Reports how a run ended and chooses the exit code.
pub fn finish_run(
    ctx: &Ctx,
    session_after: &Session<'_>,
    plan: &Plan,
    outcome: Outcome,
) -> Result<Exit> {
    let now = session_after.overview.current();
    if let Some(f) = outcome.failed {
        let verb = match f.direction {
            Direction::Up => "applying",
            Direction::Down => "rolling back",
        };
        let done = outcome.done.len();
        let before = if done > 0 {
            format!("{done} migration(s) before it succeeded and stay; ")
        } else {
            String::new()
        };
        let msg = if f.resumable {
            format!(
                "{verb} {} failed: {}; it runs outside a transaction (on PostgreSQL it builds indexes CONCURRENTLY), so it may be partly done and its tracking row is unchanged, but it completes when run again: {before}fix the cause and run the command again",
                describe(f.step),
                f.error,
            )
        } else if f.partial {
            format!(
                "{verb} {} failed: {}; MySQL/MariaDB cannot roll back DDL, so it may be partly done: {before}check its tables ({}), drop what it left and run the command again, or `dbtool stamp {}` if it completed",
                describe(f.step),
                f.error,
                f.step.creates_tables.join(", "),
                short_name(f.step)
            )
        } else {
            format!(
                "{verb} {} failed and was rolled back: {}; {before}the database is at {}",
                describe(f.step),
                f.error,
                now.map(describe).unwrap_or_else(|| "base".into())
            )
        };
        return Err(coded(Exit::MigrationFailed, msg));
    }
    let view = RunView {
        app: ctx.app,
        direction: plan.direction,
        dry_run: false,
        from: position_name(&session_after.overview, plan.from),
        to: now.map(|s| s.name),
        plan: plan_steps(plan),
        done: outcome.done,
        data_at_risk: Vec::new(),
    };
    let at = now.map(describe).unwrap_or_else(|| "base".into());
    ctx.out.emit(&view, |o| {
        if plan.steps.is_empty() {
            o.line(&format!("{}: already at {at}; nothing to do", ctx.app));
        } else {
            o.line(&format!("{}: now at {at}", ctx.app));
        }
    });
    if outcome.interrupted {
        let exit = ctx.interrupt.requested().unwrap_or(Exit::Interrupted);
        return Err(coded(
            exit,
            format!(
                "interrupted after {} of {} migration(s); the database is consistent at {at}",
                view.done.len(),
                plan.steps.len()
            ),
        ));
    }
    Ok(Exit::Ok)
}

/// The overview of a database without writing anything (an absent SQLite file reads as
/// an empty database).
pub async fn read_overview(ctx: &Ctx) -> Result<crate::service::migrations::Overview> {
    use crate::service::migrations::{read_state, DbState, Overview};
    let state = match ctx.connect_read().await? {
        Some(db) => {
            let s = read_state(&db).await?;
            db.close().await.ok();
            s
        }
        None => DbState::default(),
    };
    Ok(Overview::new(ctx.app, &state))
}

/// `dbtool [--app X] <command>` as people should type it for the current app.
pub fn dbtool_cmd(ctx: &Ctx, command: &str) -> String {
    match ctx.app {
        crate::app::App::Avatar => format!("dbtool {command}"),
        other => format!("dbtool --app {other} {command}"),
    }
}

/// A connection for an administration command, opened only once the database is known to
/// belong to `ctx.app` and to be migrated far enough to have `table`; otherwise the error
/// says which command fixes that. A missing SQLite file is not created.
pub async fn connect_admin(
    ctx: &Ctx,
    access: crate::context::Access,
    table: &str,
) -> Result<DatabaseConnection> {
    use crate::service::migrations::{read_state, Overview};
    use anyhow::Context as _;
    let upgrade = dbtool_cmd(ctx, "upgrade");
    let missing = || {
        coded(
            Exit::Failure,
            format!(
                "the database {} does not exist yet; create it with `{upgrade}`",
                ctx.loc.display
            ),
        )
    };
    if ctx.loc.sqlite_file.as_ref().is_some_and(|f| !f.exists()) {
        return Err(missing());
    }
    let db = match access {
        crate::context::Access::Write => ctx.connect_write().await?,
        crate::context::Access::ReadOnly => ctx.connect_read().await?.ok_or_else(missing)?,
    };
    let state = read_state(&db)
        .await
        .context("reading the migration state")?;
    let ov = Overview::new(ctx.app, &state);
    if let Some((other, _)) = &ov.foreign {
        return Err(coded(
            Exit::Usage,
            format!(
                "this database holds {other} migrations, not {} ones; run the command with --app {other}",
                ctx.app
            ),
        ));
    }
    let Some(i) = ov
        .steps
        .iter()
        .position(|s| s.creates_tables.contains(&table))
    else {
        return Err(coded(
            Exit::Failure,
            format!("no {} migration creates table {table}", ctx.app),
        ));
    };
    if ov.applied[i] {
        return Ok(db);
    }
    let step = ov.steps[i];
    let msg = if state.tables.contains(table) {
        let stamp = suggested_stamp(&ov, &state)
            .map(|s| dbtool_cmd(ctx, &format!("stamp {}", short_name(s))))
            .unwrap_or_else(|| dbtool_cmd(ctx, "stamp TARGET"));
        format!(
            "table {table} exists but migration {} that creates it is not recorded; if the schema is complete, record it with `{stamp}` (see `{}`)",
            describe(step),
            dbtool_cmd(ctx, "status")
        )
    } else {
        format!(
            "the {} database is not migrated far enough: table {table} comes with migration {}, which is not applied; run `{upgrade}` first",
            ctx.app,
            describe(step)
        )
    };
    Err(coded(Exit::Failure, msg))
}

/// The document `status` and `history` print.
#[derive(Serialize)]
pub struct StatusView {
    pub app: crate::app::App,
    pub database: String,
    pub current: Option<PlanStep>,
    pub pending: usize,
    pub migrations: Vec<crate::service::migrations::Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alembic: Option<crate::service::migrations::Alembic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_app: Option<crate::app::App>,
}

pub fn status_view(ctx: &Ctx, ov: &crate::service::migrations::Overview) -> StatusView {
    StatusView {
        app: ctx.app,
        database: ctx.loc.display.clone(),
        current: ov.current().map(|s| PlanStep {
            name: s.name,
            alias: s.alias,
            description: s.description,
        }),
        pending: ov.pending(),
        migrations: ov.rows(),
        alembic: ov.alembic.clone(),
        other_app: ov.foreign.as_ref().map(|(a, _)| *a),
    }
}

/// Prints the migration table (with descriptions for `history`) and the summary line.
pub fn print_status(ctx: &Ctx, ov: &crate::service::migrations::Overview, descriptions: bool) {
    use crate::output::{human_time, Tone};
    use crate::service::migrations::{Alembic, StepState};
    let view = status_view(ctx, ov);
    ctx.out.emit(&view, |o| {
        let mut header = vec!["migration", "alias", "state", "applied at"];
        if descriptions {
            header.push("description");
        }
        let rows = view
            .migrations
            .iter()
            .map(|r| {
                let tone = match r.state {
                    StepState::Applied => Tone::Good,
                    StepState::Pending => Tone::Warn,
                    StepState::Unknown => Tone::Bad,
                };
                let at = match (r.state, r.applied_at) {
                    (_, Some(t)) => human_time(&t),
                    (StepState::Applied, None) => "(by Alembic)".into(),
                    _ => String::new(),
                };
                let mut row = vec![
                    (r.name.clone(), Tone::Plain),
                    (r.alias.unwrap_or("").to_owned(), Tone::Plain),
                    (r.state.as_str().to_owned(), tone),
                    (at, Tone::Plain),
                ];
                if descriptions {
                    row.push((r.description.to_owned(), Tone::Plain));
                }
                row
            })
            .collect();
        o.table(&header, rows);
        if let Some((other, _)) = &ov.foreign {
            o.line(&format!(
                "warning: this database holds {other} migrations; did you mean --app {other}?"
            ));
        }
        match &ov.alembic {
            Some(Alembic::Adoptable { revision, migrations }) => o.line(&format!(
                "alembic_version is at {revision}: the next write command records {} migration(s) as applied",
                migrations.len()
            )),
            Some(Alembic::Unknown { revision }) => o.line(&format!(
                "warning: alembic_version holds unknown revision {revision}; write commands will refuse to run"
            )),
            None => {}
        }
        let at = ov
            .current()
            .map(describe)
            .unwrap_or_else(|| "base (nothing applied)".into());
        o.line(&format!("{}: at {at}, {} pending", ctx.app, view.pending));
    });
}
