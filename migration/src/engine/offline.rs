//! Offline SQL: the statements a migration plan would run, captured by running each
//! migration's `up`/`down` against SeaORM's `MockDatabase` (no server is involved) and
//! rendered as one script that `psql -f`, `sqlite3` or `mariadb` can apply.
//!
//! The `proxy` feature of SeaORM 2.0.4 does not compile next to the MySQL and SQLite drivers,
//! so the mock connection is the capture device. Statements that only read (the existence
//! probes MySQL migrations make before creating or dropping an index) are answered as a
//! database at the plan's starting point would answer them and are left out of the script.

use super::app::App;
use super::error::TargetError;
use super::plan::{Direction, Plan};
use super::record;
use super::state::{DbState, Overview, Recorded};
use super::target::Target;
use crate::{Step, StepInfo};
use sea_orm::{
    DatabaseConnection, DbBackend, DbErr, MockDatabase, MockExecResult, Statement, Value,
};
use sea_orm_migration::SchemaManager;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

/// `[FROM:]TARGET` of `--sql`: where the plan starts (default: the database's state) and
/// where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlRange {
    pub from: Option<Target>,
    pub to: Target,
}

impl FromStr for SqlRange {
    type Err = String;

    fn from_str(s: &str) -> Result<SqlRange, String> {
        match s.split_once(':') {
            Some((from, to)) => {
                if from.trim().is_empty() {
                    return Err(format!(
                        "'{s}' has an empty FROM: write FROM:TARGET (e.g. base:head) or just TARGET"
                    ));
                }
                Ok(SqlRange {
                    from: Some(from.parse()?),
                    to: to.parse()?,
                })
            }
            None => Ok(SqlRange {
                from: None,
                to: s.parse()?,
            }),
        }
    }
}

/// The SQL dialects `--sql` can write.
pub fn backend_name(b: DbBackend) -> &'static str {
    match b {
        DbBackend::Postgres => "postgres",
        DbBackend::MySql => "mysql",
        _ => "sqlite",
    }
}

/// One migration of the script: its statements in order, the bookkeeping statements last.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub description: &'static str,
    /// False for a migration that must run outside a transaction (`CREATE INDEX
    /// CONCURRENTLY`), as the engine runs it.
    pub transactional: bool,
    pub statements: Vec<String>,
}

/// Everything a script consists of, before rendering.
#[derive(Debug, Clone, Serialize)]
pub struct Script {
    #[serde(serialize_with = "ser_backend")]
    pub backend: DbBackend,
    pub direction: Direction,
    /// The `applied_at` written into `seaql_migrations` (Unix seconds).
    pub applied_at: i64,
    /// Statements before everything else (PostgreSQL `SET search_path`).
    pub prelude: Vec<String>,
    /// `CREATE TABLE IF NOT EXISTS` of `seaql_migrations` (exactly as sea-orm-migration's
    /// `install()` builds it) and of dbtool's state table, as the engine creates them.
    pub bookkeeping: Vec<String>,
    /// Tracking rows for the migrations an Alembic revision stands for (adoption).
    pub adopt: Vec<String>,
    pub blocks: Vec<Block>,
}

fn ser_backend<S: serde::Serializer>(b: &DbBackend, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(backend_name(*b))
}

/// An overview of a database at position `from` (the first `from` migrations applied), for
/// planning without a database.
pub fn overview_at(app: App, from: &Target) -> Result<Overview, TargetError> {
    let base = Overview::new(app, &DbState::default());
    let pos = base.resolve(from)?;
    let state = DbState {
        recorded: base.steps[..pos]
            .iter()
            .map(|s| Recorded {
                version: s.name.to_owned(),
                applied_at: chrono::DateTime::UNIX_EPOCH,
            })
            .collect(),
        tracking_table: pos > 0,
        ..DbState::default()
    };
    Ok(Overview::new(app, &state))
}

/// More statements and existence probes than any migration of ours issues; the mock fails
/// cleanly when it runs out. A probe's answer is a row of three strings to allocate, so
/// there are fewer of those than of plain results (a probe guards a statement).
const CAPACITY: usize = 1000;
const PROBES: usize = 250;

/// A mock connection that accepts every statement and answers every existence probe with
/// `exists`.
fn mock(backend: DbBackend, exists: bool) -> DatabaseConnection {
    mock_sized(backend, exists, CAPACITY, PROBES)
}

fn mock_sized(
    backend: DbBackend,
    exists: bool,
    statements: usize,
    probes: usize,
) -> DatabaseConnection {
    let row: BTreeMap<String, Value> = ["has_table", "has_column", "has_index"]
        .into_iter()
        .map(|k| (k.to_owned(), Value::Bool(Some(exists))))
        .collect();
    MockDatabase::new(backend)
        .append_exec_results((0..statements).map(|_| MockExecResult::default()))
        .append_query_results((0..probes).map(|_| vec![row.clone()]))
        .into_connection()
}

/// The statements a mock connection saw, rendered with their values inlined, reads left out.
fn captured(conn: DatabaseConnection) -> Vec<String> {
    writes(&transaction_log(conn))
}

/// The writes of a mock's log, rendered with their values inlined.
fn writes(log: &[Statement]) -> Vec<String> {
    log.iter()
        .filter(|s| !is_read(&s.sql))
        .map(render)
        .collect()
}

/// Every statement a mock connection saw, reads included, in order.
fn transaction_log(conn: DatabaseConnection) -> Vec<Statement> {
    conn.into_transaction_log()
        .iter()
        .flat_map(|t| t.statements().to_vec())
        .collect()
}

/// A connection that runs nothing and records what it is given: with [`captured_sql`], the
/// engine renders several writes as one text to send in a single round trip.
pub(crate) fn capture_conn(backend: DbBackend) -> DatabaseConnection {
    // Bookkeeping: a few writes (and `install()`'s probe, if any).
    mock_sized(backend, false, 16, 4)
}

/// The writes a [`capture_conn`] saw, with their values inlined.
pub(crate) fn captured_sql(conn: DatabaseConnection) -> Vec<String> {
    captured(conn)
}

fn is_read(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("select"))
}

/// A statement as SQL text with its values inlined as literals of the statement's dialect
/// (sea-query escapes them: `E'...'` on PostgreSQL, doubled quotes on SQLite, backslashes on
/// MySQL).
fn render(s: &Statement) -> String {
    match &s.values {
        Some(v) if !v.0.is_empty() => s.to_string(),
        _ => s.sql.clone(),
    }
}

/// The statements one migration issues for `backend` going `direction`, without a database.
/// Probes see the database as it is before the step: nothing of it exists before `up`,
/// everything exists before `down`.
pub async fn capture_step(
    step: &dyn Step,
    backend: DbBackend,
    direction: Direction,
) -> Result<Vec<String>, DbErr> {
    // A run captures each of its steps several times (checksum, the tables it works on, the
    // lint review), and a mock with room for a thousand results is costly to build: once per
    // step, backend and direction per process. A step's statements depend on nothing else.
    type Key = (&'static str, &'static str, Direction);
    static CAPTURED: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<Key, Vec<String>>>,
    > = std::sync::LazyLock::new(Default::default);
    let key: Key = (step.info().name, backend.as_str(), direction);
    if let Some(hit) = CAPTURED.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(hit);
    }
    let statements = capture_uncached(step, backend, direction).await?;
    if let Ok(mut c) = CAPTURED.lock() {
        c.insert(key, statements.clone());
    }
    Ok(statements)
}

/// A step's statements on a small mock first: most steps issue a handful, and building the
/// roomy one was most of what rendering a step cost. A step that used up the small one (or
/// failed on it) runs again on the roomy one, so a step that stopped at the end of the
/// small one's results, or swallowed the error it got there, is never cut short.
async fn capture_uncached(
    step: &dyn Step,
    backend: DbBackend,
    direction: Direction,
) -> Result<Vec<String>, DbErr> {
    let exists = direction == Direction::Down;
    let small = mock_sized(backend, exists, SMALL, SMALL_PROBES);
    if let Ok(()) = run_on(step, direction, &small).await {
        let log = transaction_log(small);
        let reads = log.iter().filter(|s| is_read(&s.sql)).count();
        if reads < SMALL_PROBES && log.len() - reads < SMALL {
            return Ok(writes(&log));
        }
    }
    let conn = mock(backend, exists);
    run_on(step, direction, &conn)
        .await
        .map_err(|e| DbErr::Custom(format!("capturing {}: {e}", step.info().name)))?;
    Ok(captured(conn))
}

/// The small mock's size; see [`capture_uncached`].
const SMALL: usize = 32;
const SMALL_PROBES: usize = 8;

async fn run_on(
    step: &dyn Step,
    direction: Direction,
    conn: &DatabaseConnection,
) -> Result<(), DbErr> {
    let manager = SchemaManager::new(conn);
    match direction {
        Direction::Up => step.up(&manager).await,
        Direction::Down => step.down(&manager).await,
    }
}

/// The checksum of a migration for a backend: SHA-256 of the statements its `up` issues,
/// as `upgrade --sql` prints them (without bookkeeping), hex-encoded.
pub async fn checksum(step: &dyn Step, backend: DbBackend) -> Result<String, DbErr> {
    use sha2::Digest as _;
    let statements = capture_step(step, backend, Direction::Up).await?;
    let mut h = sha2::Sha256::new();
    for s in &statements {
        h.update(s.as_bytes());
        h.update(b";\n");
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Captures the script of `plan` for `backend`. `adopt` are migrations to record as applied
/// first (an Alembic-managed database), `schema` the PostgreSQL schema to work in; `applied_at`
/// (Unix seconds) goes into every row the script writes.
pub async fn script(
    app: App,
    backend: DbBackend,
    plan: &Plan,
    adopt: &[&'static StepInfo],
    schema: Option<&str>,
    applied_at: i64,
) -> Result<Script, DbErr> {
    let conn = capture_conn(backend);
    record::ensure_tables(&conn, applied_at).await?;
    let bookkeeping = captured(conn);

    let prelude = match (backend, schema) {
        (DbBackend::Postgres, Some(s)) => {
            vec![format!("SET search_path TO \"{}\"", s.replace('"', "\"\""))]
        }
        _ => Vec::new(),
    };

    let objects = app.objects();
    let find = |name: &str| {
        objects
            .iter()
            .find(|o| o.info().name == name)
            .ok_or_else(|| DbErr::Custom(format!("migration {name} is not in this build")))
    };

    let mut adopted = Vec::new();
    for info in adopt {
        adopted.push((*info, checksum(find(info.name)?.as_ref(), backend).await?));
    }
    let conn = mock(backend, false);
    if !adopted.is_empty() {
        record::stamp(&conn, applied_at, &adopted, &[], record::Origin::Stamped).await?;
    }
    let adopt = captured(conn);

    let mut blocks = Vec::new();
    for info in &plan.steps {
        let step = find(info.name)?;
        let mut statements = capture_step(step.as_ref(), backend, plan.direction).await?;
        let sum = checksum(step.as_ref(), backend).await?;
        let conn = capture_conn(backend);
        record::finish_step(&conn, applied_at, info, plan.direction, &sum).await?;
        statements.extend(captured(conn));
        blocks.push(Block {
            name: info.name,
            alias: info.alias,
            description: info.description,
            // As the engine runs it (SQLite: always in a transaction); MySQL keeps BEGIN/COMMIT
            // around its bookkeeping rows, though its DDL commits at once.
            transactional: backend == sea_orm::DbBackend::Sqlite
                || step.use_transaction() != Some(false),
            statements,
        });
    }
    Ok(Script {
        backend,
        direction: plan.direction,
        applied_at,
        prelude,
        bookkeeping,
        adopt,
        blocks,
    })
}

impl Script {
    /// The script as text: `header` lines as comments, the tracking table, then one
    /// commented block per migration with its transaction and tracking row.
    pub fn to_sql(&self, header: &[String]) -> String {
        let transactional = self.backend != DbBackend::MySql;
        let mut out = String::new();
        for h in header {
            let _ = writeln!(out, "-- {h}");
        }
        let _ = writeln!(
            out,
            "-- seaql_migrations.applied_at is the time this script was generated ({}), in Unix seconds UTC.",
            chrono::DateTime::from_timestamp(self.applied_at, 0)
                .map(|t| format!("{} = {}", self.applied_at, t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
                .unwrap_or_else(|| self.applied_at.to_string())
        );
        if !transactional {
            out.push_str(
                "-- MySQL/MariaDB commit DDL implicitly, so there are no transactions: if a statement fails,\n\
                 -- the ones before it stay applied; fix the cause, drop what the failed migration left and\n\
                 -- run the rest of the script (or `dbtool upgrade`).\n",
            );
        }
        out.push('\n');
        for p in &self.prelude {
            let _ = writeln!(out, "{p};");
        }
        out.push_str(
            "-- The tracking table, as sea-orm-migration creates it, and dbtool's state table.\n",
        );
        for b in &self.bookkeeping {
            let _ = writeln!(out, "{b};");
        }
        if !self.adopt.is_empty() {
            out.push_str(
                "\n-- Adopt the Alembic-managed database: record the migrations its alembic_version stands for.\n",
            );
            block(&mut out, transactional, &self.adopt);
        }
        if self.blocks.is_empty() {
            out.push_str("\n-- Nothing to do: no migration in the plan.\n");
        }
        for b in &self.blocks {
            let alias = b.alias.map(|a| format!(" ({a})")).unwrap_or_default();
            let _ = writeln!(out, "\n-- {}{alias}: {}", b.name, b.description);
            if transactional && !b.transactional {
                out.push_str("-- Runs outside a transaction (CREATE/DROP INDEX CONCURRENTLY cannot run in one).\n");
            }
            block(&mut out, transactional && b.transactional, &b.statements);
        }
        out
    }
}

fn block(out: &mut String, transactional: bool, statements: &[String]) {
    if transactional {
        out.push_str("BEGIN;\n");
    }
    for s in statements {
        let _ = writeln!(out, "{s};");
    }
    if transactional {
        out.push_str("COMMIT;\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        let r: SqlRange = "base:head".parse().unwrap();
        assert_eq!(r.from, Some(Target::Base));
        assert_eq!(r.to, Target::Head);
        let r: SqlRange = "-1".parse().unwrap();
        assert_eq!(r.from, None);
        assert_eq!(r.to, Target::Relative(-1));
        assert!(":head".parse::<SqlRange>().is_err());
        assert!("base:".parse::<SqlRange>().is_err());
    }

    #[test]
    fn recognises_reads() {
        assert!(is_read("  select 1"));
        assert!(!is_read("INSERT INTO t VALUES (1)"));
        assert!(!is_read("sel"));
    }
}
