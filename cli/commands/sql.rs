//! `--sql [FROM:]TARGET` of `upgrade` and `downgrade`: print the SQL a run would execute
//! instead of running it. With FROM, or a dialect other than the database's, nothing is
//! contacted; without FROM the plan starts from the configured database's state (read-only).

use crate::commands::{describe, migrate_error, read_overview};
use crate::exit::{coded, Exit};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use migration::engine::offline::{self as sql, SqlRange};
use migration::engine::state::{Alembic, Direction, Overview};
use sea_orm::DbBackend;
use serde::Serialize;

/// The options both migration commands share; flattened into their arguments.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// Print the SQL that would run and change nothing: [FROM:]TARGET. FROM defaults to the
    /// database's current state; with FROM no database is contacted
    #[arg(
        long,
        value_name = "[FROM:]TARGET",
        allow_hyphen_values = true,
        conflicts_with_all = ["target", "dry_run"],
        add = clap_complete::ArgValueCandidates::new(crate::commands::completions::targets)
    )]
    pub sql: Option<SqlRange>,
    /// SQL dialect for --sql [default: the backend of the database URL]
    #[arg(long, value_enum, requires = "sql")]
    pub dialect: Option<Dialect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dialect {
    #[value(alias = "postgresql")]
    Postgres,
    Sqlite,
    #[value(alias = "mariadb")]
    Mysql,
}

impl Dialect {
    fn backend(self) -> DbBackend {
        match self {
            Dialect::Postgres => DbBackend::Postgres,
            Dialect::Sqlite => DbBackend::Sqlite,
            Dialect::Mysql => DbBackend::MySql,
        }
    }
}

/// What `--json` prints.
#[derive(Serialize)]
struct SqlView<'a> {
    app: migration::App,
    /// Where the plan starts: "given" (FROM), "database" (its state) or "base".
    start: &'static str,
    from: Option<&'static str>,
    to: Option<&'static str>,
    #[serde(flatten)]
    script: &'a sql::Script,
    sql: String,
}

pub async fn run(
    ctx: &Ctx,
    direction: Direction,
    range: SqlRange,
    dialect: Option<Dialect>,
) -> Result<Exit> {
    let backend = dialect.map(Dialect::backend).unwrap_or(ctx.loc.backend);
    let (overview, start) = match &range.from {
        Some(from) => (
            sql::overview_at(ctx.app, from).map_err(migrate_error)?,
            "given",
        ),
        None if backend != ctx.loc.backend => {
            if direction == Direction::Down {
                return Err(coded(
                    Exit::Usage,
                    format!(
                        "--sql {} needs FROM for a downgrade in another dialect than the database's: write --sql FROM:{} (e.g. head:{})",
                        range.to, range.to, range.to
                    ),
                ));
            }
            (
                sql::overview_at(ctx.app, &migration::Target::Base).map_err(migrate_error)?,
                "base",
            )
        }
        None => {
            let ov = read_overview(ctx).await.context(
                "reading where the database is, to start the --sql plan there (give FROM:TARGET, e.g. base:head, to work without a database)",
            )?;
            ov.check_writable().map_err(migrate_error)?;
            (ov, "database")
        }
    };
    let plan = match direction {
        Direction::Up => overview.plan_upgrade(&range.to),
        Direction::Down => overview.plan_downgrade(&range.to),
    }
    .map_err(migrate_error)?;
    let adopt = adoption(&overview, start);
    let schema = ctx.settings.schema.as_deref();
    let applied_at = chrono::Utc::now().timestamp();
    let script = sql::script(ctx.app, backend, &plan, &adopt, schema, applied_at)
        .await
        .context("capturing the migrations' SQL")?;

    let name_at = |pos: usize| pos.checked_sub(1).map(|i| overview.steps[i]);
    let show = |pos: usize| name_at(pos).map(describe).unwrap_or_else(|| "base".into());
    let verb = match direction {
        Direction::Up => "upgrade",
        Direction::Down => "downgrade",
    };
    let origin = match start {
        "database" => format!("the state of {}", ctx.loc.display),
        "base" => "base (an empty database)".to_owned(),
        _ => "the given FROM".to_owned(),
    };
    let header = vec![
        format!(
            "dbtool {verb} --sql: app {}, dialect {}, {} -> {}",
            ctx.app,
            sql::backend_name(backend),
            show(plan.from),
            show(plan.to)
        ),
        format!(
            "Generated without running anything; the plan starts from {origin}. {}",
            apply_hint(backend)
        ),
    ];
    let text = script.to_sql(&header);
    let view = SqlView {
        app: ctx.app,
        start,
        from: name_at(plan.from).map(|s| s.name),
        to: name_at(plan.to).map(|s| s.name),
        script: &script,
        sql: text.clone(),
    };
    ctx.out.emit(&view, |o| o.raw(&text));
    Ok(Exit::Ok)
}

fn apply_hint(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "Apply with: psql -v ON_ERROR_STOP=1 -f FILE",
        DbBackend::MySql => "Apply with: mariadb DBNAME < FILE (or mysql)",
        _ => "Apply with: sqlite3 -bail DBFILE < FILE",
    }
}

/// The migrations an upgrade would record for Alembic's revision before running anything.
fn adoption(ov: &Overview, start: &str) -> Vec<&'static migration::StepInfo> {
    match (&ov.alembic, start) {
        (Some(Alembic::Adoptable { migrations, .. }), "database") => ov
            .steps
            .iter()
            .copied()
            .filter(|s| migrations.contains(&s.name))
            .collect(),
        _ => Vec::new(),
    }
}
