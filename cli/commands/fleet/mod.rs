//! `dbtool fleet status|upgrade|downgrade|check`: one command over many databases. Each
//! target gets a context of its own (URL, app, schema, lock timeouts) and goes through the
//! very function the single-database command uses (`migrate::apply`, `status::read_status`,
//! `check::inspect`), on its own connection with its own migration lock, at most `-j N` at a
//! time. Canaries first; by default nothing new starts after a failure. The result is one
//! row per target, failures first, and the exit code of the worst outcome.

pub mod targets;

use crate::commands::migrate::{self, RunFlags};
use crate::commands::{check, status};
use crate::config::{Setting, Source};
use crate::context::{Access, DbLocation};
use crate::exit::{coded, Exit};
use crate::output::{count, Column, Tone};
use crate::Ctx;
use anyhow::Result;
use clap::{Args, Subcommand};
use migration::engine::{Direction, Report};
use migration::{App, Target as MigrationTarget};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use targets::{Shard, Target};

const AFTER_HELP: &str = "\
Examples:
  dbtool fleet upgrade                          every target of ./dbtool-fleet.toml to head, 4 at a time
  dbtool fleet upgrade --file eu.toml --tag canary
  dbtool fleet upgrade -j 8 --keep-going        8 at a time; a failure does not stop the rest
  dbtool fleet upgrade --canary 2               two targets first; stop if either fails
  dbtool fleet upgrade --shard 2/3              this runner's third (CI matrix, indexed Jobs)
  dbtool fleet status --server postgres://admin@db1/postgres --match 'tenant_%'
  dbtool --app neurachar fleet upgrade --database-url postgres://app@db/saas --match-schemas 'tenant_%'
  dbtool fleet upgrade --sqlite-glob 'data/*.db'
  dbtool fleet downgrade d8cfd3cb4083 --yes     every target back to that revision

A fleet file lists one [[target]] per database:

  [[target]]
  name = \"tenant-acme\"                                      # unique; --shard hashes it
  url = \"postgres://app:${ACME_DB_PASSWORD}@db1/acme\"       # ${VAR}: environment or .env
  app = \"neurachar\"                                         # optional
  schema = \"public\"                                         # optional (PostgreSQL)
  tags = [\"eu\", \"canary\"]                                   # optional; --tag selects
  # optional: direct_url, lock_timeout (seconds), ddl_lock_timeout (seconds)

Exit status: the worst outcome: 130/143 interrupted, 20 a target failed, 21 a target was
refused (locked, wrong app, unreachable, unset ${VAR}), 0 otherwise.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP, subcommand_required = true)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Where each target is and what is pending (read-only)
    #[command(after_help = "\
Examples:
  dbtool fleet status                               every target of ./dbtool-fleet.toml
  dbtool fleet status --json                        the same as one JSON document
  dbtool fleet status --server postgres://admin@db1/postgres --match 'tenant_%'")]
    Status(Selection),
    /// Apply pending migrations on every target, up to TARGET (default: head)
    #[command(after_help = "\
Examples:
  dbtool fleet upgrade                              every target to head, 4 at a time
  dbtool fleet upgrade -j 8 --keep-going --canary 2 two first; then the rest, whatever fails
  dbtool fleet upgrade --shard 1/3                  the first of three runners' shares
  dbtool fleet upgrade --sqlite-glob 'data/*.db'    every SQLite file in data/

Exit status: 130/143 interrupted, 20 a target failed, 21 a target was refused, 0 otherwise.")]
    Upgrade(UpgradeArgs),
    /// Roll every target back to TARGET (a migration name, revision or base; needs --yes)
    #[command(after_help = "\
Examples:
  dbtool fleet downgrade d8cfd3cb4083 --yes         every target back to that revision
  dbtool fleet downgrade base --yes --tag staging   every staging target to empty

Relative targets (-1) are refused: a rerun would move the finished targets further.")]
    Downgrade(DowngradeArgs),
    /// Compare each target's live schema with its migrations (drift is a failure)
    #[command(after_help = "\
Examples:
  dbtool fleet check                                drift of every target (exit 20 on drift)
  dbtool fleet check --tag eu --json")]
    Check(Selection),
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// head (default), or a migration name or Alembic revision; +N is refused (a rerun
    /// would move finished targets further)
    #[arg(allow_negative_numbers = true)]
    pub target: Option<MigrationTarget>,
    #[command(flatten)]
    pub selection: Selection,
}

#[derive(Debug, Args)]
pub struct DowngradeArgs {
    /// base, or a migration name or Alembic revision to keep as the last applied one;
    /// -N is refused (a rerun would move finished targets further)
    #[arg(allow_negative_numbers = true)]
    pub target: Option<MigrationTarget>,
    /// Confirm: roll back every selected target, dropping tables that hold rows
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub selection: Selection,
}

/// Which targets, and how to run them.
#[derive(Debug, Args)]
pub struct Selection {
    /// Fleet file (TOML, one [[target]] per database) [default: ./dbtool-fleet.toml]
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Server whose databases match --match (a PostgreSQL or MySQL URL, any database on it)
    #[arg(long, value_name = "URL", conflicts_with_all = ["file", "sqlite_glob"])]
    pub server: Option<String>,
    /// Every database of --server whose name matches this SQL LIKE pattern ('tenant_%')
    #[arg(
        long = "match",
        value_name = "PATTERN",
        requires = "server",
        conflicts_with = "match_schemas"
    )]
    pub pattern: Option<String>,
    /// Every schema matching this LIKE pattern in one PostgreSQL database (--server, else
    /// the configured database URL)
    #[arg(long, value_name = "PATTERN", conflicts_with_all = ["file", "sqlite_glob"])]
    pub match_schemas: Option<String>,
    /// Every SQLite file matching this pattern (*, ?, [..]); targets are named by their
    /// path relative to the working directory
    #[arg(long, value_name = "PATTERN", conflicts_with = "file")]
    pub sqlite_glob: Option<String>,
    /// Only targets with this tag (repeat for any of several)
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Take share I of N (1-based) by a stable hash of the target name; N runners with
    /// 1/N..N/N cover the fleet without overlap
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// How many targets run at once
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,
    /// Run the first N targets first and stop if any of them does not succeed [default:
    /// the targets tagged canary]
    #[arg(long, value_name = "N")]
    pub canary: Option<usize>,
    /// Start every target even after one failed (canaries still stop the run)
    #[arg(long)]
    pub keep_going: bool,
}

/// What each target does.
#[derive(Debug, Clone)]
enum Op {
    Status,
    Check,
    Migrate {
        direction: Direction,
        target: MigrationTarget,
        yes: bool,
    },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Status => "status",
            Op::Check => "check",
            Op::Migrate {
                direction: Direction::Up,
                ..
            } => "upgrade",
            Op::Migrate { .. } => "downgrade",
        }
    }
}

/// How one target ended, from best to worst; the exit code is the worst's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Not started: an earlier failure, a failed canary or a signal stopped the run first.
    Skipped,
    /// Nothing was changed: locked, the other app's, unreachable, a bad URL or `${VAR}`,
    /// a history this build cannot run on.
    Refused,
    Failed,
    Interrupted,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Skipped => "skipped",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// The outcome an exit code of a single-database command stands for.
    fn of(exit: Exit) -> Outcome {
        match exit {
            Exit::Ok => Outcome::Ok,
            Exit::Interrupted | Exit::Terminated => Outcome::Interrupted,
            Exit::Usage
            | Exit::LockTimeout
            | Exit::Connection
            | Exit::NotConfirmed
            | Exit::WrongApp
            | Exit::UnknownRecorded
            | Exit::OutOfOrder
            | Exit::ReadOnly
            | Exit::Pooler
            | Exit::PermissionDenied => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }
}

/// One target's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: String,
    /// The database, password masked (`***`).
    pub database: Option<String>,
    pub app: Option<App>,
    /// The last applied migration before and after (None: base), when `position_known`.
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
    /// False when the target stopped before its position was read (not reached, refused
    /// before the engine ran): then `from` and `to` say nothing.
    pub position_known: bool,
    pub duration_ms: u128,
    pub outcome: Outcome,
    /// The exit code the single-database command would have given.
    pub code: u8,
    pub kind: &'static str,
    pub message: String,
    pub canary: bool,
    /// The engine's report of a migration run (what `upgrade --json` prints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
}

/// The whole run, as `--json` prints it.
#[derive(Debug, Serialize)]
struct FleetView {
    operation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    migration_target: Option<String>,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
    jobs: u32,
    total: usize,
    selected: usize,
    counts: Counts,
    elapsed_ms: u128,
    exit_code: u8,
    targets: Vec<Row>,
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    ok: usize,
    failed: usize,
    refused: usize,
    interrupted: usize,
    skipped: usize,
}

pub async fn run(ctx: &Ctx, args: FleetArgs) -> Result<Exit> {
    let (op, sel) = match args.action {
        Action::Status(s) => (Op::Status, s),
        Action::Check(s) => (Op::Check, s),
        Action::Upgrade(a) => {
            let target = a.target.unwrap_or(MigrationTarget::Head);
            refuse_relative("upgrade", &target)?;
            (
                Op::Migrate {
                    direction: Direction::Up,
                    target,
                    yes: false,
                },
                a.selection,
            )
        }
        Action::Downgrade(a) => {
            let Some(target) = a.target else {
                return Err(coded(
                    Exit::Usage,
                    "fleet downgrade needs an absolute target: base, or the migration name or revision every target should end at (e.g. `dbtool fleet downgrade d8cfd3cb4083 --yes`)",
                ));
            };
            refuse_relative("downgrade", &target)?;
            if !a.yes {
                return Err(coded(
                    Exit::NotConfirmed,
                    format!(
                        "not confirmed: fleet downgrade rolls back every selected target to {target} and drops tables that hold rows; nothing was changed; re-run with --yes, or see where each target is with `dbtool fleet status`"
                    ),
                ));
            }
            (
                Op::Migrate {
                    direction: Direction::Down,
                    target,
                    yes: true,
                },
                a.selection,
            )
        }
    };
    let started = Instant::now();
    let (all, source) = load(ctx, &sel).await?;
    let total = all.len();
    let selected = targets::select(all, &sel.tag, sel.shard);
    if total > 0 && selected.is_empty() && sel.shard.is_none() {
        return Err(coded(
            Exit::Usage,
            format!(
                "no target of {source} has the tag {}; the fleet has {}",
                sel.tag.join(" or "),
                count(total, "target", "targets")
            ),
        ));
    }
    let canaries = targets::canaries(&selected, sel.canary);
    // A first signal stops every target between its steps, and no new one starts.
    let _graceful = ctx.interrupt.graceful_section();
    ctx.interrupt.untraced();
    let rows = execute(ctx, &op, selected, &canaries, &sel).await;
    let view = summarise(ctx, &op, rows, source, &sel, total, started.elapsed());
    show(ctx, &view);
    Ok(exit_of(ctx, &view.targets))
}

fn refuse_relative(command: &str, target: &MigrationTarget) -> Result<()> {
    if let MigrationTarget::Relative(n) = target {
        return Err(coded(
            Exit::Usage,
            format!(
                "fleet {command} refuses the relative target {n:+}: a rerun would move the targets that finished further; give base, head or a migration name or revision every target should end at"
            ),
        ));
    }
    Ok(())
}

/// Every target of the fleet, and where they came from (for messages).
async fn load(ctx: &Ctx, sel: &Selection) -> Result<(Vec<Target>, String)> {
    if let Some(pattern) = &sel.sqlite_glob {
        let found = targets::for_sqlite_glob(pattern)?;
        if found.is_empty() {
            return Err(coded(
                Exit::Usage,
                format!("--sqlite-glob '{pattern}' matches no file; check the pattern (relative to the working directory)"),
            ));
        }
        return Ok((found, format!("--sqlite-glob '{pattern}'")));
    }
    if let Some(pattern) = &sel.match_schemas {
        let loc = match &sel.server {
            Some(u) => server_location(u)?,
            None => ctx.loc.clone(),
        };
        if loc.backend != sea_orm::DbBackend::Postgres {
            return Err(coded(
                Exit::Usage,
                format!(
                    "--match-schemas needs a PostgreSQL database, not {}; give a postgres:// URL with --server or --database-url",
                    loc.display
                ),
            ));
        }
        let names = list(ctx, &loc, Listing::Schemas, pattern).await?;
        let source = format!("the schemas matching '{pattern}' in {}", loc.display);
        if names.is_empty() {
            return Err(coded(Exit::Usage, format!("no schema matches: {source}")));
        }
        return Ok((targets::for_schemas(loc.secret_url(), &names), source));
    }
    if let Some(server) = &sel.server {
        let Some(pattern) = &sel.pattern else {
            return Err(coded(
                Exit::Usage,
                "--server needs --match PATTERN (its databases) or --match-schemas PATTERN (schemas of its database)",
            ));
        };
        let loc = server_location(server)?;
        if loc.backend == sea_orm::DbBackend::Sqlite {
            return Err(coded(
                Exit::Usage,
                "--server is for PostgreSQL and MySQL/MariaDB servers; for SQLite files use --sqlite-glob",
            ));
        }
        let names = list(ctx, &loc, Listing::Databases, pattern).await?;
        let source = format!("the databases matching '{pattern}' on {}", loc.display);
        if names.is_empty() {
            return Err(coded(Exit::Usage, format!("no database matches: {source}")));
        }
        let url = url::Url::parse(loc.secret_url())
            .map_err(|e| coded(Exit::Usage, format!("--server {}: {e}", loc.display)))?;
        return Ok((targets::for_databases(&url, &names), source));
    }
    let path = sel
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(targets::DEFAULT_FILE));
    let found = targets::from_file(&path)?;
    Ok((found, crate::config::show_path(&path)))
}

/// `--server`: a MySQL URL may leave the database out (the listing needs none).
fn server_location(url: &str) -> Result<DbLocation> {
    let mut u = url.trim().to_owned();
    let is_mysql = u.starts_with("mysql:") || u.starts_with("mariadb:");
    if is_mysql {
        if let Ok(parsed) = url::Url::parse(&u) {
            if parsed.path().trim_matches('/').is_empty() {
                let mut p = parsed;
                p.set_path("/information_schema");
                u = p.to_string();
            }
        }
    }
    DbLocation::parse(Some(&u)).map_err(|e| e.context("--server"))
}

enum Listing {
    Databases,
    Schemas,
}

/// Lists the names matching `pattern` on the server at `loc`, read-only.
async fn list(ctx: &Ctx, loc: &DbLocation, what: Listing, pattern: &str) -> Result<Vec<String>> {
    let settings = crate::context::ConnectSettings {
        schema: None,
        ..ctx.settings.clone()
    };
    let db = crate::context::connect(loc, Access::ReadOnly, &settings, &ctx.out)
        .await?
        .ok_or_else(|| coded(Exit::Connection, format!("cannot open {}", loc.display)))?;
    let names = match what {
        Listing::Databases => crate::service::fleet::databases(&db, pattern).await,
        Listing::Schemas => crate::service::fleet::schemas(&db, pattern).await,
    };
    db.close().await.ok();
    names
        .map_err(|e| anyhow::Error::new(e).context(format!("listing the fleet on {}", loc.display)))
}

/// A context for one target: the run's configuration with the target's URL, app, schema
/// and timeouts, its messages kept for the report (the fleet prints its own), sharing the
/// run's signal state.
fn target_ctx(ctx: &Ctx, t: &Target, op: &Op) -> Result<Ctx> {
    let mut c = ctx.config.clone();
    // As a flag: hints then name the database (`dbtool --database-url <url> ...`).
    c.database_url = Setting {
        value: Some(t.url.clone()),
        source: Source::Flag,
    };
    c.database_url_origin = format!("the url of target '{}'", t.name);
    c.database_url_file = None;
    // A direct URL is per target: the run's would point every target at one database.
    c.direct_url = Setting {
        value: t.direct_url.clone(),
        source: if t.direct_url.is_some() {
            Source::File
        } else {
            Source::Default
        },
    };
    // The target's own app and schema count as flags too, so that hints repeat them.
    if let Some(app) = t.app {
        c.app = Setting {
            value: app,
            source: Source::Flag,
        };
    }
    if let Some(schema) = &t.schema {
        c.schema = Setting {
            value: Some(schema.clone()),
            source: Source::Flag,
        };
    }
    if let Some(s) = t.lock_timeout {
        c.lock_timeout = Setting {
            value: s,
            source: Source::File,
        };
    }
    if let Some(s) = t.ddl_lock_timeout {
        c.ddl_lock_timeout = Setting {
            value: s,
            source: Source::File,
        };
    }
    c.warnings.clear();
    let out = crate::output::Output {
        quiet: true,
        json: false,
        ..ctx.out
    };
    let mut tc = Ctx::from_args(c, out)?;
    tc.interrupt = ctx.interrupt.clone();
    tc.progress = crate::args::ProgressMode::Lines;
    tc.invocation = Some(match op {
        Op::Migrate {
            direction: Direction::Down,
            target,
            ..
        } => format!("downgrade {target}"),
        Op::Migrate { target, .. } => format!("upgrade {target}"),
        other => other.name().to_owned(),
    });
    Ok(tc)
}

/// Runs the targets, canaries first, at most `-j` at a time; returns a row per target in
/// fleet order.
async fn execute(
    ctx: &Ctx,
    op: &Op,
    targets: Vec<Target>,
    canaries: &[usize],
    sel: &Selection,
) -> Vec<Row> {
    let n = targets.len();
    let mut rows: Vec<Option<Row>> = vec![None; n];
    let progress = Progress::new(ctx, n as u64);
    let phases: [Vec<usize>; 2] = [
        canaries.to_vec(),
        (0..n).filter(|i| !canaries.contains(i)).collect(),
    ];
    let targets = Arc::new(targets);
    let mut stop: Option<String> = None;
    for (phase, order) in phases.iter().enumerate() {
        let mut queue = order.iter().copied();
        let mut running = tokio::task::JoinSet::new();
        let mut ids = std::collections::HashMap::new();
        loop {
            while running.len() < sel.jobs as usize
                && stop.is_none()
                && ctx.interrupt.requested().is_none()
            {
                let Some(i) = queue.next() else { break };
                let t = &targets[i];
                let canary = phase == 0;
                let prepared = match &t.problem {
                    Some(p) => Err(coded(Exit::Usage, p.clone())),
                    None => target_ctx(ctx, t, op),
                };
                let op = op.clone();
                let name = t.name.clone();
                let handle = running.spawn(async move {
                    let started = Instant::now();
                    let mut row = match prepared {
                        Ok(tc) => one(&tc, &op, &name).await,
                        Err(e) => failed_row(&name, None, &e),
                    };
                    row.canary = canary;
                    row.duration_ms = started.elapsed().as_millis();
                    row
                });
                ids.insert(handle.id(), i);
            }
            let Some(joined) = running.join_next_with_id().await else {
                break;
            };
            let (i, row) = match joined {
                Ok((id, row)) => (ids[&id], row),
                Err(e) => {
                    let i = ids[&e.id()];
                    let err = coded(
                        Exit::Failure,
                        format!("internal error, a bug in dbtool (please report it): {e}"),
                    );
                    (i, failed_row(&targets[i].name, None, &err))
                }
            };
            progress.finished(&row);
            // A signal stops the run by itself (and says so); refusals and failures stop it
            // unless --keep-going (canaries always).
            let bad = matches!(row.outcome, Outcome::Refused | Outcome::Failed);
            if bad && stop.is_none() {
                if phase == 0 {
                    stop = Some(format!(
                        "not started: canary {} {}",
                        row.target,
                        row.outcome.as_str()
                    ));
                } else if !sel.keep_going {
                    stop = Some(format!(
                        "not started: {} {} (use --keep-going to run the rest anyway)",
                        row.target,
                        row.outcome.as_str()
                    ));
                }
            }
            rows[i] = Some(row);
        }
        if stop.is_some() {
            break;
        }
    }
    progress.done();
    let why_skipped = stop.unwrap_or_else(|| match ctx.interrupt.requested() {
        Some(Exit::Terminated) => "not started: terminated by SIGTERM".into(),
        _ => "not started: interrupted by SIGINT".into(),
    });
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| Row {
                target: targets[i].name.clone(),
                database: None,
                app: targets[i].app,
                from: None,
                to: None,
                position_known: false,
                duration_ms: 0,
                outcome: Outcome::Skipped,
                code: 0,
                kind: "skipped",
                message: why_skipped.clone(),
                canary: canaries.contains(&i),
                report: None,
            })
        })
        .collect()
}

/// One target, through the single-database command's own function.
async fn one(ctx: &Ctx, op: &Op, name: &str) -> Row {
    let database = Some(ctx.loc.display.clone());
    match op {
        Op::Migrate {
            direction,
            target,
            yes,
        } => {
            let flags = RunFlags {
                yes: *yes,
                ..RunFlags::default()
            };
            match migrate::apply(ctx, *direction, target.clone(), flags).await {
                Ok(report) => migrated_row(name, database, *direction, &report),
                Err(e) => failed_row(name, database, &e),
            }
        }
        Op::Status => match status::read_status(ctx).await {
            Ok(s) => {
                let ov = &s.overview;
                let at = ov.current().map(|c| c.name);
                let problems = s.problems();
                let message = match problems.first() {
                    None => "up to date".to_owned(),
                    Some(migration::engine::Problem::Pending { count: n }) => {
                        format!("{} pending", count(*n, "migration", "migrations"))
                    }
                    Some(p) => format!(
                        "needs attention: {} (see `dbtool status`)",
                        status::exit_of(p).kind().replace('_', " ")
                    ),
                };
                Row {
                    app: Some(s.app),
                    from: at,
                    to: at,
                    message,
                    ..ok_row(name, database)
                }
            }
            Err(e) => failed_row(name, database, &e),
        },
        Op::Check => match check::inspect(ctx).await {
            Ok(v) => {
                let to = v.applied.last().copied();
                if v.clean {
                    Row {
                        app: Some(v.app),
                        from: to,
                        to,
                        message: "no drift".into(),
                        ..ok_row(name, database)
                    }
                } else {
                    Row {
                        app: Some(v.app),
                        from: to,
                        to,
                        outcome: Outcome::Failed,
                        code: Exit::Drift.code(),
                        kind: Exit::Drift.kind(),
                        message: format!(
                            "drift: {}, {} (see `dbtool check`)",
                            count(v.differences.len(), "difference", "differences"),
                            count(v.extra.len(), "extra object", "extra objects")
                        ),
                        ..ok_row(name, database)
                    }
                }
            }
            Err(e) => failed_row(name, database, &e),
        },
    }
}

fn ok_row(name: &str, database: Option<String>) -> Row {
    Row {
        target: name.to_owned(),
        database,
        app: None,
        from: None,
        to: None,
        position_known: true,
        duration_ms: 0,
        outcome: Outcome::Ok,
        code: 0,
        kind: Exit::Ok.kind(),
        message: String::new(),
        canary: false,
        report: None,
    }
}

fn migrated_row(name: &str, database: Option<String>, d: Direction, r: &Report) -> Row {
    let n = r.done.len() + usize::from(r.resumed.is_some());
    let message = if r.planned.is_empty() && r.resumed.is_none() {
        "nothing to do".to_owned()
    } else {
        format!(
            "{} {}",
            count(n, "migration", "migrations"),
            match d {
                Direction::Up => "applied",
                Direction::Down => "rolled back",
            }
        )
    };
    Row {
        app: Some(r.app),
        from: r.from,
        to: r.to,
        message,
        report: serde_json::to_value(r).ok(),
        ..ok_row(name, database)
    }
}

/// The row of a target whose command failed: its one-line error, exit code and, when the
/// engine got as far, where the database was and is.
fn failed_row(name: &str, database: Option<String>, e: &anyhow::Error) -> Row {
    let (message, exit) = crate::dberror::render(e);
    let report = crate::exit::details_of(e)
        .and_then(|d| d.get("report"))
        .cloned();
    let app = report
        .as_ref()
        .and_then(|r| r.get("app"))
        .and_then(|a| a.as_str())
        .and_then(App::from_name);
    let step = |key: &str| -> Option<&'static str> {
        let v = report.as_ref()?.get(key)?.as_str()?;
        app?.steps()
            .into_iter()
            .find(|s| s.name == v)
            .map(|s| s.name)
    };
    Row {
        target: name.to_owned(),
        database,
        app,
        from: step("from"),
        to: step("to"),
        position_known: report
            .as_ref()
            .and_then(|r| r.get("to_known"))
            .and_then(|k| k.as_bool())
            .unwrap_or(false),
        duration_ms: 0,
        outcome: Outcome::of(exit),
        code: exit.code(),
        kind: exit.kind(),
        message: crate::output::redact(&message),
        canary: false,
        report,
    }
}

/// Progress on stderr: a bar on a terminal (done/total, failures, elapsed, ETA), else a line
/// per finished target; `--progress json`: an event per finished target.
struct Progress {
    out: crate::output::Output,
    mode: crate::args::ProgressMode,
    bar: Option<indicatif::ProgressBar>,
    bad: std::sync::atomic::AtomicUsize,
}

impl Progress {
    fn new(ctx: &Ctx, total: u64) -> Progress {
        use std::io::IsTerminal;
        let live = ctx.progress == crate::args::ProgressMode::Auto
            && !ctx.out.quiet
            && std::io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let bar = live.then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "fleet [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message("0 failed");
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            out: ctx.out,
            mode: ctx.progress,
            bar,
            bad: Default::default(),
        }
    }

    fn finished(&self, row: &Row) {
        use std::sync::atomic::Ordering;
        if row.outcome > Outcome::Skipped {
            self.bad.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("{} failed", self.bad.load(Ordering::SeqCst)));
            return;
        }
        if self.out.quiet {
            return;
        }
        if self.mode == crate::args::ProgressMode::Json {
            let mut v = serde_json::json!({
                "event": "target_finished",
                "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            });
            if let (Some(o), Ok(serde_json::Value::Object(r))) =
                (v.as_object_mut(), serde_json::to_value(row))
            {
                for (k, val) in r.into_iter().filter(|(k, _)| k != "report") {
                    o.insert(k, val);
                }
            }
            crate::output::write_stderr_line(&crate::output::redact(&v.to_string()));
            return;
        }
        let moved = match (row.from, row.to, row.outcome) {
            (_, _, Outcome::Ok) if row.from != row.to => {
                format!(" {} -> {},", short(row.from), short(row.to))
            }
            _ => String::new(),
        };
        self.out.info(&format!(
            "fleet: {} {}:{moved} {} ({:.1}s)",
            row.target,
            row.outcome.as_str(),
            row.message,
            row.duration_ms as f64 / 1000.0
        ));
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn short(step: Option<&str>) -> &str {
    step.unwrap_or("base")
}

/// A position for the table: empty when it is not known.
fn position(r: &Row, step: Option<&str>) -> String {
    if r.position_known {
        short(step).to_owned()
    } else {
        String::new()
    }
}

fn summarise(
    ctx: &Ctx,
    op: &Op,
    mut rows: Vec<Row>,
    source: String,
    sel: &Selection,
    total: usize,
    elapsed: Duration,
) -> FleetView {
    let mut counts = Counts::default();
    for r in &rows {
        match r.outcome {
            Outcome::Ok => counts.ok += 1,
            Outcome::Failed => counts.failed += 1,
            Outcome::Refused => counts.refused += 1,
            Outcome::Interrupted => counts.interrupted += 1,
            Outcome::Skipped => counts.skipped += 1,
        }
    }
    let exit = exit_of(ctx, &rows);
    // Failures first, worst first; otherwise fleet order (a stable sort).
    rows.sort_by_key(|r| std::cmp::Reverse(r.outcome));
    FleetView {
        operation: op.name(),
        migration_target: match op {
            Op::Migrate { target, .. } => Some(target.to_string()),
            _ => None,
        },
        source,
        shard: sel.shard.map(|s| s.to_string()),
        jobs: sel.jobs,
        total,
        selected: rows.len(),
        counts,
        elapsed_ms: elapsed.as_millis(),
        exit_code: exit.code(),
        targets: rows,
    }
}

/// The worst outcome's exit code: interrupted (the signal's), failed 20, refused 21, else 0.
fn exit_of(ctx: &Ctx, rows: &[Row]) -> Exit {
    match rows.iter().map(|r| r.outcome).max() {
        Some(Outcome::Interrupted) => ctx.interrupt.requested().unwrap_or(Exit::Interrupted),
        Some(Outcome::Failed) => Exit::FleetFailed,
        Some(Outcome::Refused) => Exit::FleetRefused,
        _ => match ctx.interrupt.requested() {
            // Stopped before anything was interrupted: the signal still decides.
            Some(exit) if rows.iter().any(|r| r.outcome == Outcome::Skipped) => exit,
            _ => Exit::Ok,
        },
    }
}

fn show(ctx: &Ctx, view: &FleetView) {
    ctx.out.emit(view, |o| {
        let tone = |outcome: Outcome| match outcome {
            Outcome::Ok => Tone::Good,
            Outcome::Skipped => Tone::Plain,
            Outcome::Refused => Tone::Warn,
            Outcome::Failed | Outcome::Interrupted => Tone::Bad,
        };
        let rows = view
            .targets
            .iter()
            .map(|r| {
                vec![
                    (r.target.clone(), Tone::Plain),
                    (
                        r.app.map(|a| a.name().to_owned()).unwrap_or_default(),
                        Tone::Plain,
                    ),
                    (position(r, r.from), Tone::Plain),
                    (position(r, r.to), Tone::Plain),
                    (
                        format!("{:.1}s", r.duration_ms as f64 / 1000.0),
                        Tone::Plain,
                    ),
                    (r.outcome.as_str().to_owned(), tone(r.outcome)),
                    (r.message.clone(), Tone::Plain),
                ]
            })
            .collect();
        o.table(
            &[
                Column::id("target"),
                Column::id("app"),
                Column::id("from"),
                Column::id("to"),
                Column::id("duration"),
                Column::id("outcome"),
                Column::text("message"),
            ],
            rows,
        );
        let c = &view.counts;
        let mut parts = vec![format!("{} ok", c.ok)];
        for (n, what) in [
            (c.failed, "failed"),
            (c.refused, "refused"),
            (c.interrupted, "interrupted"),
            (c.skipped, "skipped"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let shard = view
            .shard
            .as_ref()
            .map(|s| format!(", shard {s} of {}", count(view.total, "target", "targets")))
            .unwrap_or_default();
        o.done(&format!(
            "fleet {}: {} of {}{shard} in {:.1}s",
            view.operation,
            parts.join(", "),
            count(view.selected, "target", "targets"),
            view.elapsed_ms as f64 / 1000.0
        ));
    });
}
