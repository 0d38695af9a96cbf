//! `dbtool lint [--file FILE|-]`: risky operations in the pending migrations, or in any SQL
//! script, with the live table sizes where the database is reachable (read-only). Exit 19
//! when a finding at or above `--fail-on` exists.

use crate::commands::sql::Dialect;
use crate::exit::{coded, Exit};
use crate::output::{Column, Tone};
use crate::service::lint::{self, sizes, Config, Finding, Input, Severity, Sizes, Step};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use migration::engine::offline::backend_name;
use migration::engine::{DbState, Overview, Plan};
use migration::Target;
use sea_orm::{DatabaseConnection, DbBackend};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool lint                                 the pending migrations of the configured database
  dbtool lint --file change.sql               any SQL script, with the live table sizes
  psql ... | dbtool lint --file - --dialect postgres --offline
  dbtool lint --file change.sql --fail-on warning --json

Severities follow the table sizes: an index built without CONCURRENTLY is a note on an empty
table, a warning on a small one and an error on a large one (--large-table). Without a
database (--offline, or none reachable) every existing table counts as large.")]
pub struct LintArgs {
    /// Check this SQL script (`-`: standard input) instead of the pending migrations
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Exit 19 when a finding of this severity or worse exists
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Do not connect: no table sizes (pending migrations: all of them, as on an empty database)
    #[arg(long)]
    pub offline: bool,
    /// SQL dialect [default: the backend of the database URL]
    #[arg(long, value_enum)]
    pub dialect: Option<Dialect>,
    /// Rows from which a table counts as large
    #[arg(long, value_name = "ROWS", default_value_t = lint::DEFAULT_LARGE_TABLE,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub large_table: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
            FailOn::Info => Severity::Info,
        }
    }
}

fn dialect_backend(d: Dialect) -> DbBackend {
    match d {
        Dialect::Postgres => DbBackend::Postgres,
        Dialect::Sqlite => DbBackend::Sqlite,
        Dialect::Mysql => DbBackend::MySql,
    }
}

/// What `--json` prints.
#[derive(Serialize)]
struct LintView {
    /// `file`, `stdin` or `pending`.
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<migration::App>,
    /// The pending migrations that were linted.
    #[serde(skip_serializing_if = "Option::is_none")]
    migrations: Option<Vec<&'static str>>,
    dialect: &'static str,
    /// The database the sizes (and the pending migrations) come from.
    database: Option<String>,
    /// True when the table sizes were read from the database.
    sizes: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    offline_reason: Option<String>,
    large_table: i64,
    fail_on: Severity,
    failed: bool,
    statements: usize,
    counts: lint::Counts,
    findings: Vec<Finding>,
}

pub async fn run(ctx: &Ctx, args: LintArgs) -> Result<Exit> {
    let dialect = args.dialect.map(dialect_backend).unwrap_or(ctx.loc.backend);
    let config = Config {
        dialect,
        large_table: args.large_table,
        script: args.file.is_some(),
    };
    // Sizes from another backend than the dialect's would describe another database.
    let unusable = if args.offline {
        Some("--offline".to_owned())
    } else if dialect != ctx.loc.backend {
        Some(format!(
            "--dialect {} is not the backend of {}",
            backend_name(dialect),
            ctx.loc.display
        ))
    } else {
        None
    };

    let mut view = LintView {
        source: "pending",
        file: None,
        app: None,
        migrations: None,
        dialect: backend_name(dialect),
        database: None,
        sizes: false,
        offline_reason: unusable.clone(),
        large_table: args.large_table,
        fail_on: args.fail_on.severity(),
        failed: false,
        statements: 0,
        counts: lint::Counts::default(),
        findings: Vec::new(),
    };

    let (inputs, db) = match &args.file {
        Some(path) => {
            let text = read_script(path).await?;
            view.source = if path.as_os_str() == "-" {
                "stdin"
            } else {
                "file"
            };
            view.file = Some(path.display().to_string());
            let inputs = lint::script_inputs(&text, dialect);
            view.statements = inputs.len();
            let db = match &unusable {
                Some(_) => None,
                None => match ctx.connect_read().await {
                    Ok(Some(db)) => Some(db),
                    Ok(None) => {
                        view.offline_reason = Some(format!("{} does not exist", ctx.loc.display));
                        None
                    }
                    Err(e) => {
                        let reason = format!("{e:#}");
                        ctx.out.warn(&format!(
                            "linting without table sizes, every existing table counts as large: {reason}"
                        ));
                        view.offline_reason = Some(reason);
                        None
                    }
                },
            };
            (inputs, db)
        }
        None => {
            let (app, plan, db) = match &unusable {
                Some(_) => {
                    let ov = Overview::new(ctx.app, &DbState::default());
                    let plan = ov
                        .plan_upgrade(&Target::Head)
                        .map_err(|e| ctx.fail(e.into()))?;
                    (ctx.app, plan, None)
                }
                None => {
                    let db = ctx.connect_read().await.context(
                        "reading which migrations are pending (use --offline to lint every migration as on an empty database)",
                    )?;
                    match db {
                        Some(db) => {
                            let engine = ctx.engine(&db, ctx.engine_options()).await?;
                            let preview = engine
                                .preview(&migration::engine::Command::Upgrade(Target::Head))
                                .await
                                .map_err(|e| ctx.fail(e))?;
                            let plan = preview.plan.expect("an upgrade preview has a plan");
                            (preview.app, plan, Some(db))
                        }
                        None => {
                            view.offline_reason = Some(format!(
                                "{} does not exist yet: every migration is pending",
                                ctx.loc.display
                            ));
                            let ov = Overview::new(ctx.app, &DbState::default());
                            let plan = ov
                                .plan_upgrade(&Target::Head)
                                .map_err(|e| ctx.fail(e.into()))?;
                            (ctx.app, plan, None)
                        }
                    }
                }
            };
            view.app = Some(app);
            let steps = pending_steps(app, dialect, &plan).await?;
            view.migrations = Some(plan.steps.iter().map(|s| s.name).collect());
            view.statements = steps.iter().map(|s| s.statements.len()).sum();
            (lint::step_inputs(&steps), db)
        }
    };

    let sizes = match db {
        Some(db) => {
            let r = read_sizes(&db, &inputs, &config).await;
            db.close().await.ok();
            match r {
                Ok(s) => {
                    view.database = Some(ctx.loc.display.clone());
                    view.sizes = true;
                    s
                }
                Err(e) => {
                    let reason = format!("cannot read the table sizes: {e:#}");
                    ctx.out.warn(&format!(
                        "linting without table sizes, every existing table counts as large: {reason}"
                    ));
                    view.offline_reason = Some(reason);
                    Sizes::offline()
                }
            }
        }
        None => Sizes::offline(),
    };

    view.findings = lint::lint(&inputs, &config, &sizes);
    view.counts = lint::counts(&view.findings);
    view.failed = view.findings.iter().any(|f| f.severity >= view.fail_on);
    ctx.out.emit(&view, |o| show(o, ctx, &view));
    Ok(if view.failed {
        Exit::LintFindings
    } else {
        Exit::Ok
    })
}

/// The statements each pending migration would run, as `upgrade --sql` captures them
/// offline. The one place that knows where that capture lives.
async fn pending_steps(app: migration::App, dialect: DbBackend, plan: &Plan) -> Result<Vec<Step>> {
    let objects = app.objects();
    let mut out = Vec::new();
    for info in &plan.steps {
        let Some(obj) = objects.iter().find(|o| o.info().name == info.name) else {
            continue;
        };
        let statements =
            migration::engine::offline::capture_step(obj.as_ref(), dialect, plan.direction)
                .await
                .context("capturing the pending migrations' SQL")?;
        out.push(Step {
            name: info.name.to_owned(),
            transactional: obj.use_transaction() != Some(false) && dialect != DbBackend::MySql,
            statements,
        });
    }
    Ok(out)
}

async fn read_sizes(db: &DatabaseConnection, inputs: &[Input], config: &Config) -> Result<Sizes> {
    let tables = lint::tables_to_size(inputs, config.dialect);
    let cap = config.large_table.saturating_mul(10);
    Ok(sizes::table_sizes(db, &tables, config.large_table, cap).await?)
}

/// The script's text; a file that cannot be read or is not UTF-8 is bad input (exit 2).
async fn read_script(path: &std::path::Path) -> Result<String> {
    let (bytes, what) = if path.as_os_str() == "-" {
        let b = tokio::task::spawn_blocking(|| {
            use std::io::Read;
            let mut b = Vec::new();
            std::io::stdin().read_to_end(&mut b).map(|_| b)
        })
        .await
        .context("reading standard input")?
        .map_err(|e| coded(Exit::Usage, format!("cannot read standard input: {e}")))?;
        (b, "standard input".to_owned())
    } else {
        let b = std::fs::read(path).map_err(|e| {
            coded(
                Exit::Usage,
                format!(
                    "cannot read --file {}: {e}; give an SQL script, or - for standard input",
                    path.display()
                ),
            )
        })?;
        (b, format!("--file {}", path.display()))
    };
    String::from_utf8(bytes).map_err(|e| {
        coded(
            Exit::Usage,
            format!(
                "{what} is not UTF-8 text (invalid byte at offset {}); give an SQL script",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// A statement on one line, shortened for the table (the JSON document has it whole).
fn short(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 72 {
        format!("{}…", one.chars().take(71).collect::<String>())
    } else {
        one
    }
}

fn show(o: &crate::output::Output, ctx: &Ctx, v: &LintView) {
    let subject = match (v.source, &v.file, &v.migrations) {
        ("stdin", _, _) => "standard input".to_owned(),
        (_, Some(f), _) => f.clone(),
        (_, _, Some(m)) => format!(
            "{}: {}",
            ctx.app,
            crate::output::count(m.len(), "pending migration", "pending migrations")
        ),
        _ => String::new(),
    };
    if v.migrations.as_ref().is_some_and(|m| m.is_empty()) {
        o.line(&format!("{}: nothing pending, nothing to lint", ctx.app));
        return;
    }
    if !v.findings.is_empty() {
        let rows = v
            .findings
            .iter()
            .map(|f| {
                let tone = match f.severity {
                    Severity::Error => Tone::Bad,
                    Severity::Warning => Tone::Warn,
                    Severity::Info => Tone::Plain,
                };
                let place = match (&f.migration, f.line) {
                    (Some(m), _) => m.clone(),
                    (None, Some(l)) => format!("line {l}"),
                    _ => String::new(),
                };
                let rows = match (&f.table, f.rows, f.rows_source) {
                    (_, Some(n), Some(s)) => lint::TableSize { rows: n, source: s }.display(),
                    (Some(_), _, _) => "unknown".to_owned(),
                    _ => String::new(),
                };
                vec![
                    (f.rule.to_owned(), Tone::Plain),
                    (f.severity.as_str().to_owned(), tone),
                    (place, Tone::Plain),
                    (f.table.clone().unwrap_or_default(), Tone::Plain),
                    (rows, Tone::Plain),
                    (short(&f.statement), Tone::Plain),
                    (f.why.clone(), Tone::Plain),
                    (f.instead.clone(), Tone::Plain),
                ]
            })
            .collect();
        o.table(
            &[
                Column::id("rule"),
                Column::id("severity"),
                Column::id("where"),
                Column::id("table"),
                Column::id("rows"),
                Column::text("statement"),
                Column::text("why it is risky"),
                Column::text("instead"),
            ],
            rows,
        );
    }
    let sizes = match (&v.database, &v.offline_reason) {
        (Some(db), _) => format!("table sizes from {db}"),
        (None, Some(r)) => format!("no table sizes ({r}): existing tables count as large"),
        (None, None) => "no table sizes".to_owned(),
    };
    let verdict = if v.failed {
        format!("fails --fail-on {}", v.fail_on.as_str())
    } else {
        format!("passes --fail-on {}", v.fail_on.as_str())
    };
    let found = if v.findings.is_empty() {
        "no findings".to_owned()
    } else {
        format!(
            "{}: {}, {}, {} info",
            crate::output::count(v.findings.len(), "finding", "findings"),
            crate::output::count(v.counts.error, "error", "errors"),
            crate::output::count(v.counts.warning, "warning", "warnings"),
            v.counts.info
        )
    };
    o.line(&format!(
        "{subject}: {found} in {}; {}, {sizes}; {verdict}",
        crate::output::count(v.statements, "statement", "statements"),
        v.dialect
    ));
}
