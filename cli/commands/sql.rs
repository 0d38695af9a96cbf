//! `--sql [FROM:]TARGET` of `upgrade` and `downgrade`: print the SQL a run would execute
//! instead of running it. With FROM, or a dialect other than the database's, nothing is
//! contacted; without FROM the plan starts from the configured database's state (read-only).

use crate::exit::{coded, Exit};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use migration::engine::offline::{self as sql, SqlRange};
use migration::engine::{describe, Direction};
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
    start: Start,
    from: Option<&'static str>,
    to: Option<&'static str>,
    #[serde(flatten)]
    script: &'a sql::Script,
    sql: String,
}

/// Where an offline plan starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Start {
    /// FROM, as given.
    Given,
    /// The configured database's state (read-only).
    Database,
    /// An empty database (another dialect than the database's).
    Base,
}

pub async fn run(
    ctx: &Ctx,
    direction: Direction,
    range: SqlRange,
    dialect: Option<Dialect>,
) -> Result<Exit> {
    let backend = dialect.map(Dialect::backend).unwrap_or(ctx.loc.backend);
    let fail = |e: migration::engine::TargetError| ctx.fail(e.into());
    let (app, overview, adopt, start) = match &range.from {
        Some(from) => (
            ctx.app,
            sql::overview_at(ctx.app, from).map_err(fail)?,
            Vec::new(),
            Start::Given,
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
                ctx.app,
                sql::overview_at(ctx.app, &migration::Target::Base).map_err(fail)?,
                Vec::new(),
                Start::Base,
            )
        }
        None => {
            let cmd = match direction {
                Direction::Up => migration::engine::Command::Upgrade(range.to.clone()),
                Direction::Down => migration::engine::Command::Downgrade(range.to.clone()),
            };
            let db = ctx.connect_read().await.context(
                "reading where the database is, to start the --sql plan there (give FROM:TARGET, e.g. base:head, to work without a database)",
            )?;
            let preview = match db {
                Some(db) => {
                    let engine = ctx.engine(&db, ctx.engine_options()).await?;
                    engine.preview(&cmd).await.map_err(|e| ctx.fail(e))?
                }
                None => {
                    let ov = sql::overview_at(ctx.app, &migration::Target::Base).map_err(fail)?;
                    migration::engine::Preview {
                        app: ctx.app,
                        chosen: migration::engine::Chosen::Default,
                        overview: ov,
                        resume: None,
                        adopt: None,
                        plan: None,
                        stamp: None,
                        repair: None,
                        risk: Vec::new(),
                    }
                }
            };
            if let Some((s, _)) = preview.resume {
                return Err(coded(
                    Exit::HalfDone,
                    format!(
                        "{} is half-done in this database; finish it with `{}` first (a script cannot)",
                        describe(s),
                        ctx.hint(match direction {
                            Direction::Up => "upgrade",
                            Direction::Down => "downgrade",
                        })
                    ),
                ));
            }
            let adopt: Vec<&'static migration::StepInfo> = match &preview.adopt {
                Some(a) => preview
                    .overview
                    .steps
                    .iter()
                    .copied()
                    .filter(|s| a.migrations.contains(&s.name))
                    .collect(),
                None => Vec::new(),
            };
            (preview.app, preview.overview, adopt, Start::Database)
        }
    };
    let plan = overview.plan(direction, &range.to).map_err(fail)?;
    let schema = ctx.settings.schema.as_deref();
    let applied_at = chrono::Utc::now().timestamp();
    let script = sql::script(app, backend, &plan, &adopt, schema, applied_at)
        .await
        .context("capturing the migrations' SQL")?;

    let name_at = |pos: usize| pos.checked_sub(1).map(|i| overview.steps[i]);
    let show = |pos: usize| name_at(pos).map(describe).unwrap_or_else(|| "base".into());
    let verb = match direction {
        Direction::Up => "upgrade",
        Direction::Down => "downgrade",
    };
    let origin = match start {
        Start::Database => format!("the state of {}", ctx.loc.display),
        Start::Base => "base (an empty database)".to_owned(),
        Start::Given => "the given FROM".to_owned(),
    };
    let header = vec![
        format!(
            "dbtool {verb} --sql: app {app}, dialect {}, {} -> {}",
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
        app,
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
