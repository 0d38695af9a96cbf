//! The record: SeaORM's tracking table `seaql_migrations` (kept exactly as SeaORM expects),
//! and two tables of dbtool's own beside it:
//! - `dbtool_state`: one row per applied migration with the checksum of its statements, and
//!   the in-progress marker of a step that cannot roll back while it runs. Needed for
//!   correctness; written in the step's transaction where the backend allows.
//! - `dbtool_audit`: who ran which step when, how long it took and how it ended. Best effort:
//!   a missing or unwritable audit table only warns.
//!
//! Both are versioned: `dbtool_state` carries a row `#format` whose checksum column holds the
//! layout version, `dbtool_audit` a `format` column in every row. A layout newer than this
//! build knows is refused instead of being misread.

use super::plan::Direction;
use crate::StepInfo;
use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, OnConflict, Order, Query, Table,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};
use sea_orm_migration::seaql_migrations;
use serde::Serialize;
use std::collections::HashMap;

pub const STATE_TABLE: &str = "dbtool_state";
/// How long an audit write waits for a lock on its table (PostgreSQL `lock_timeout`) before
/// it gives up and the run goes on unlogged.
pub const AUDIT_WAIT: &str = "1s";
pub const AUDIT_TABLE: &str = "dbtool_audit";
/// The layout of both tables this build writes.
pub const FORMAT: i64 = 1;
const FORMAT_ROW: &str = "#format";

/// Where a stored checksum came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Written when the migration was applied.
    Applied,
    /// Recorded later for a migration applied before checksums existed.
    Backfilled,
    /// Written by `stamp` (or an adoption): recorded without running.
    Stamped,
    /// Re-baselined by `repair`.
    Repaired,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Applied => "applied",
            Origin::Backfilled => "backfilled",
            Origin::Stamped => "stamped",
            Origin::Repaired => "repaired",
        }
    }
    fn parse(s: &str) -> Origin {
        match s {
            "backfilled" => Origin::Backfilled,
            "stamped" => Origin::Stamped,
            "repaired" => Origin::Repaired,
            _ => Origin::Applied,
        }
    }
}

/// One row of `dbtool_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub checksum: Option<String>,
    pub origin: Option<Origin>,
    /// Set while a step that cannot roll back runs (and after it was interrupted).
    pub in_progress: Option<Direction>,
    pub in_progress_since: Option<i64>,
}

pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A clearer error than the decoder's (`Option<String> … INT4`) when `seaql_migrations`
/// does not have the columns SeaORM expects.
pub fn tracking_shape_error(e: DbErr) -> DbErr {
    match &e {
        DbErr::Type(_) | DbErr::TryIntoErr { .. } => DbErr::Custom(format!(
            "seaql_migrations does not have the shape SeaORM expects (version varchar primary key, applied_at bigint): {}",
            e
        )),
        _ => e,
    }
}

/// Creates `seaql_migrations` and `dbtool_state` if they are missing (and the format row).
pub async fn ensure_tables<C: ConnectionTrait>(db: &C, at: i64) -> Result<(), DbErr> {
    <crate::avatar::Migrator as sea_orm_migration::MigratorTrait>::install(db).await?;
    let mut create = Table::create();
    create
        .table(Alias::new(STATE_TABLE))
        .if_not_exists()
        .col(
            ColumnDef::new(Alias::new("version"))
                .string_len(255)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(Alias::new("checksum")).string_len(64).null())
        .col(
            ColumnDef::new(Alias::new("checksum_origin"))
                .string_len(16)
                .null(),
        )
        .col(
            ColumnDef::new(Alias::new("in_progress"))
                .string_len(8)
                .null(),
        )
        .col(
            ColumnDef::new(Alias::new("in_progress_since"))
                .big_integer()
                .null(),
        )
        .col(
            ColumnDef::new(Alias::new("updated_at"))
                .big_integer()
                .not_null(),
        );
    db.execute(&create).await?;
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(STATE_TABLE))
        .columns([
            Alias::new("version"),
            Alias::new("checksum"),
            Alias::new("updated_at"),
        ])
        .values_panic([FORMAT_ROW.into(), FORMAT.to_string().into(), at.into()])
        .on_conflict(
            OnConflict::column(Alias::new("version"))
                .do_nothing_on([Alias::new("version")])
                .to_owned(),
        );
    db.execute(&insert).await?;
    Ok(())
}

/// Reads `dbtool_state` (the format row checked, not returned).
pub async fn read_state_rows<C: ConnectionTrait>(
    db: &C,
) -> Result<HashMap<String, StateRow>, DbErr> {
    let select = Query::select()
        .columns([
            Alias::new("version"),
            Alias::new("checksum"),
            Alias::new("checksum_origin"),
            Alias::new("in_progress"),
            Alias::new("in_progress_since"),
        ])
        .from(Alias::new(STATE_TABLE))
        .to_owned();
    let rows = db.query_all(&select).await?;
    let mut out = HashMap::new();
    for r in rows {
        let version: String = r.try_get_by_index(0)?;
        let checksum: Option<String> = r.try_get_by_index(1)?;
        if version == FORMAT_ROW {
            let format: i64 = checksum
                .as_deref()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if format > FORMAT {
                return Err(DbErr::Custom(format!(
                    "{STATE_TABLE} has layout {format}, newer than this build knows ({FORMAT}); use a newer dbtool"
                )));
            }
            continue;
        }
        let origin: Option<String> = r.try_get_by_index(2)?;
        let in_progress: Option<String> = r.try_get_by_index(3)?;
        out.insert(
            version,
            StateRow {
                checksum,
                origin: origin.as_deref().map(Origin::parse),
                in_progress: in_progress.as_deref().and_then(Direction::parse),
                in_progress_since: r.try_get_by_index(4)?,
            },
        );
    }
    Ok(out)
}

/// Inserts or replaces the state row of `version`.
async fn upsert_state<C: ConnectionTrait>(
    db: &C,
    at: i64,
    version: &str,
    checksum: Option<&str>,
    origin: Option<Origin>,
    in_progress: Option<Direction>,
) -> Result<(), DbErr> {
    let cols = [
        "version",
        "checksum",
        "checksum_origin",
        "in_progress",
        "in_progress_since",
        "updated_at",
    ];
    let now = at;
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(STATE_TABLE))
        .columns(cols.map(Alias::new))
        .values_panic([
            version.into(),
            checksum.map(str::to_owned).into(),
            origin.map(|o| o.as_str().to_owned()).into(),
            in_progress.map(|d| d.as_str().to_owned()).into(),
            in_progress.map(|_| now).into(),
            now.into(),
        ])
        .on_conflict(
            OnConflict::column(Alias::new("version"))
                .update_columns(cols[1..].iter().map(|c| Alias::new(*c)))
                .to_owned(),
        );
    db.execute(&insert).await?;
    Ok(())
}

async fn delete_state<C: ConnectionTrait>(db: &C, version: &str) -> Result<(), DbErr> {
    let delete = Query::delete()
        .from_table(Alias::new(STATE_TABLE))
        .and_where(Expr::col(Alias::new("version")).eq(version))
        .to_owned();
    db.execute(&delete).await?;
    Ok(())
}

/// Marks `step` as running in `direction`, before a step that cannot roll back starts.
/// Keeps a stored checksum (a half-done downgrade of an applied step still has one): the
/// row is inserted or only its marker columns are updated, so nothing needs reading first.
pub async fn mark<C: ConnectionTrait>(
    db: &C,
    step: &StepInfo,
    direction: Direction,
) -> Result<(), DbErr> {
    write_unflushed(db, &mark_insert(step, direction), None).await
}

/// [`mark`]'s row as PostgreSQL text, to send with other statements.
pub fn mark_sql_pg(step: &StepInfo, direction: Direction) -> String {
    mark_insert(step, direction).to_string(sea_orm::sea_query::PostgresQueryBuilder)
}

fn mark_insert(step: &StepInfo, direction: Direction) -> sea_orm::sea_query::InsertStatement {
    let now = now_secs();
    let cols = ["version", "in_progress", "in_progress_since", "updated_at"];
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(STATE_TABLE))
        .columns(cols.map(Alias::new))
        .values_panic([
            step.name.into(),
            direction.as_str().into(),
            now.into(),
            now.into(),
        ])
        .on_conflict(
            OnConflict::column(Alias::new("version"))
                .update_columns(cols[1..].iter().map(|c| Alias::new(*c)))
                .to_owned(),
        );
    insert
}

/// Records the end of a step in the tracking table and the state table: up inserts the
/// tracking row and the checksum (clearing any marker), down deletes both.
pub async fn finish_step<C: ConnectionTrait>(
    db: &C,
    at: i64,
    step: &StepInfo,
    direction: Direction,
    checksum: &str,
) -> Result<(), DbErr> {
    match direction {
        Direction::Up => {
            insert_tracking(db, at, &[step.name]).await?;
            upsert_state(
                db,
                at,
                step.name,
                Some(checksum),
                Some(Origin::Applied),
                None,
            )
            .await
        }
        Direction::Down => {
            delete_tracking(db, &[step.name]).await?;
            delete_state(db, step.name).await
        }
    }
}

/// Tracking rows and checksums for migrations recorded without running (stamp, adoption).
pub async fn stamp<C: ConnectionTrait>(
    db: &C,
    at: i64,
    insert: &[(&'static StepInfo, String)],
    delete: &[&'static StepInfo],
    origin: Origin,
) -> Result<(), DbErr> {
    let names: Vec<&str> = insert.iter().map(|(s, _)| s.name).collect();
    insert_tracking(db, at, &names).await?;
    for (s, checksum) in insert {
        upsert_state(db, at, s.name, Some(checksum), Some(origin), None).await?;
    }
    let names: Vec<&str> = delete.iter().map(|s| s.name).collect();
    delete_tracking(db, &names).await?;
    for s in delete {
        delete_state(db, s.name).await?;
    }
    Ok(())
}

/// Stores checksums (origin back-filled or repaired) for recorded migrations.
pub async fn store_checksums<C: ConnectionTrait>(
    db: &C,
    rows: &[(&'static StepInfo, String)],
    origin: Origin,
) -> Result<(), DbErr> {
    for (s, checksum) in rows {
        upsert_state(db, now_secs(), s.name, Some(checksum), Some(origin), None).await?;
    }
    Ok(())
}

/// Clears the in-progress marker of `version` (repair), keeping its checksum.
pub async fn clear_marker<C: ConnectionTrait>(
    db: &C,
    version: &str,
    row: &StateRow,
) -> Result<(), DbErr> {
    if row.checksum.is_none() {
        return delete_state(db, version).await;
    }
    upsert_state(
        db,
        now_secs(),
        version,
        row.checksum.as_deref(),
        row.origin,
        None,
    )
    .await
}

/// How `repair` settles a stuck in-progress marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Settle {
    /// Every object of the step exists: record it as applied.
    Applied,
    /// None of its objects exists: record it as not applied.
    NotApplied,
    /// Forced over a partial schema: only the marker goes, the record stays as it is.
    KeepRecord,
}

/// Settles a stuck in-progress marker (repair). `recorded`: the step has its tracking row;
/// `checksum`: its current checksum, stored (as repaired) when it becomes applied here.
pub async fn resolve_marker<C: ConnectionTrait>(
    db: &C,
    step: &StepInfo,
    row: &StateRow,
    recorded: bool,
    settle: Settle,
    checksum: &str,
) -> Result<(), DbErr> {
    // Its checksum, as repaired, and no marker.
    let repaired = || {
        upsert_state(
            db,
            now_secs(),
            step.name,
            Some(checksum),
            Some(Origin::Repaired),
            None,
        )
    };
    match (settle, recorded) {
        (Settle::Applied, false) => {
            insert_tracking(db, now_secs(), &[step.name]).await?;
            repaired().await
        }
        (Settle::NotApplied, true) => {
            delete_tracking(db, &[step.name]).await?;
            delete_state(db, step.name).await
        }
        (Settle::NotApplied, false) => delete_state(db, step.name).await,
        (Settle::Applied, true) if row.checksum.is_none() => repaired().await,
        _ => clear_marker(db, step.name, row).await,
    }
}

async fn insert_tracking<C: ConnectionTrait>(
    db: &C,
    now: i64,
    names: &[&str],
) -> Result<(), DbErr> {
    if names.is_empty() {
        return Ok(());
    }
    // A plain INSERT (not the entity's, which wants the inserted key back): the same SQL on
    // every backend and in the offline script.
    let mut insert = Query::insert();
    insert.into_table(seaql_migrations::Entity).columns([
        seaql_migrations::Column::Version,
        seaql_migrations::Column::AppliedAt,
    ]);
    for n in names {
        insert.values_panic([(*n).into(), now.into()]);
    }
    db.execute(&insert).await?;
    Ok(())
}

async fn delete_tracking<C: ConnectionTrait>(db: &C, names: &[&str]) -> Result<(), DbErr> {
    if names.is_empty() {
        return Ok(());
    }
    let delete = Query::delete()
        .from_table(seaql_migrations::Entity)
        .and_where(Expr::col(seaql_migrations::Column::Version).is_in(names.iter().copied()))
        .to_owned();
    db.execute(&delete).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The audit log

/// Who is running, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub db_user: Option<String>,
    pub os_user: Option<String>,
    pub host: Option<String>,
    pub client: String,
}

impl Actor {
    /// The process's side of who runs (OS user, host) with `db_user` as the session reported
    /// it.
    pub fn current(db_user: Option<String>, client: &str) -> Actor {
        let os_user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .or_else(passwd_name);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        Actor {
            db_user,
            os_user,
            host,
            client: client.to_owned(),
        }
    }
}

/// The name of the process's user from `/etc/passwd` (services and containers often run
/// without `USER`).
fn passwd_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub run: String,
    pub seq: i64,
    /// Unix milliseconds.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub operation: String,
    pub app: String,
    pub version: Option<String>,
    pub direction: Option<String>,
    /// running, ok, failed, interrupted, refused
    pub outcome: String,
    pub error: Option<String>,
    pub db_user: Option<String>,
    pub os_user: Option<String>,
    pub host: Option<String>,
    pub client: String,
}

const AUDIT_COLUMNS: [&str; 15] = [
    "run_id",
    "seq",
    "started_at",
    "finished_at",
    "duration_ms",
    "operation",
    "app",
    "version",
    "direction",
    "outcome",
    "error",
    "db_user",
    "os_user",
    "host",
    "client",
];

/// Creates `dbtool_audit` if it is missing.
pub async fn ensure_audit<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let s = |n: &str, len: u32| ColumnDef::new(Alias::new(n)).string_len(len).to_owned();
    let mut create = Table::create();
    create
        .table(Alias::new(AUDIT_TABLE))
        .if_not_exists()
        .col(s("run_id", 36).not_null())
        .col(ColumnDef::new(Alias::new("seq")).integer().not_null())
        .col(
            ColumnDef::new(Alias::new("started_at"))
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("finished_at"))
                .big_integer()
                .null(),
        )
        .col(
            ColumnDef::new(Alias::new("duration_ms"))
                .big_integer()
                .null(),
        )
        .col(s("operation", 16).not_null())
        .col(s("app", 32).not_null())
        .col(s("version", 255).null())
        .col(s("direction", 8).null())
        .col(s("outcome", 16).not_null())
        .col(ColumnDef::new(Alias::new("error")).text().null())
        .col(s("db_user", 255).null())
        .col(s("os_user", 255).null())
        .col(s("host", 255).null())
        .col(s("client", 64).not_null())
        .col(
            ColumnDef::new(Alias::new("format"))
                .integer()
                .not_null()
                .default(FORMAT),
        )
        .primary_key(
            Index::create()
                .col(Alias::new("run_id"))
                .col(Alias::new("seq")),
        );
    db.execute(&create).await?;
    Ok(())
}

/// The row that starts an audited operation (outcome `running`).
fn audit_insert(e: &AuditEntry) -> sea_orm::sea_query::InsertStatement {
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(AUDIT_TABLE))
        .columns(AUDIT_COLUMNS.map(Alias::new))
        .values_panic([
            e.run.clone().into(),
            e.seq.into(),
            e.started_at.into(),
            e.finished_at.into(),
            e.duration_ms.into(),
            e.operation.clone().into(),
            e.app.clone().into(),
            e.version.clone().into(),
            e.direction.clone().into(),
            e.outcome.clone().into(),
            e.error.clone().into(),
            e.db_user.clone().into(),
            e.os_user.clone().into(),
            e.host.clone().into(),
            e.client.clone().into(),
        ]);
    insert
}

/// Writes the start of an audited operation (outcome `running`).
pub async fn audit_start<C: ConnectionTrait>(db: &C, e: &AuditEntry) -> Result<(), DbErr> {
    write_unflushed(db, &audit_insert(e), Some(AUDIT_WAIT)).await
}

/// [`audit_start`]'s row as PostgreSQL text, to send with other statements.
pub fn audit_start_sql_pg(e: &AuditEntry) -> String {
    audit_insert(e).to_string(sea_orm::sea_query::PostgresQueryBuilder)
}

/// Writes an audit row or a marker. On PostgreSQL in one round trip with `synchronous_commit`
/// off for just this write, so it need not wait for its own WAL flush: a killed client loses
/// nothing committed; only a server crash could lose it, and the next synchronous commit
/// (the step's own, or any of `CREATE INDEX CONCURRENTLY`'s) flushes it first, since the WAL
/// is written in order. An audit entry is best effort anyway, and a marker lost in a crash
/// goes with all the step did (nothing of it was flushed either). Two synchronous commits per
/// step would otherwise cost more than the step's own.
///
/// `wait`: PostgreSQL's `lock_timeout` for the write ([`AUDIT_WAIT`] for the log, which must
/// never hold a migration up behind a lock on its table; None: the session's).
async fn write_unflushed<C, S>(db: &C, stmt: &S, wait: Option<&str>) -> Result<(), DbErr>
where
    C: ConnectionTrait,
    S: sea_orm::sea_query::QueryStatementWriter + sea_orm::StatementBuilder,
{
    match db.get_database_backend() {
        DbBackend::Postgres => {}
        DbBackend::MySql if wait.is_some() => {
            return mysql_bounded(db, async { db.execute(stmt).await.map(|_| ()) }).await
        }
        _ => {
            db.execute(stmt).await?;
            return Ok(());
        }
    }
    let sql = stmt.to_string(sea_orm::sea_query::PostgresQueryBuilder);
    match db.execute_unprepared(&unflushed_sql(&sql, wait)).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // A failed statement leaves the block open and aborted: close it.
            let _ = db.execute_unprepared("ROLLBACK").await;
            Err(e)
        }
    }
}

/// MySQL/MariaDB: how long a write of the audit log waits for a lock on its table, in
/// seconds ([`AUDIT_WAIT`] on PostgreSQL). The servers' own limits are 50 s for a row and a
/// day (`lock_wait_timeout`) for the table.
const MYSQL_AUDIT_WAIT_SECS: u32 = 1;

/// MySQL/MariaDB: runs `work` with the session's lock waits bounded to
/// [`MYSQL_AUDIT_WAIT_SECS`], and then puts back what they were (a step outside a
/// transaction sets its own). For the audit log, which must never hold a migration up
/// behind a lock on its table.
pub(crate) async fn mysql_bounded<C, T>(
    db: &C,
    work: impl std::future::Future<Output = Result<T, DbErr>>,
) -> Result<T, DbErr>
where
    C: ConnectionTrait,
{
    db.execute_unprepared(&format!(
        "SET @dbtool_lw = @@SESSION.lock_wait_timeout, \
         @dbtool_ilw = @@SESSION.innodb_lock_wait_timeout, \
         SESSION lock_wait_timeout = {w}, SESSION innodb_lock_wait_timeout = {w}",
        w = MYSQL_AUDIT_WAIT_SECS
    ))
    .await?;
    let r = work.await;
    let restored = db
        .execute_unprepared(
            "SET SESSION lock_wait_timeout = @dbtool_lw, \
             SESSION innodb_lock_wait_timeout = @dbtool_ilw",
        )
        .await;
    match (r, restored) {
        (Ok(_), Err(e)) => Err(e),
        (r, _) => r,
    }
}

/// PostgreSQL: `sql` as [`write_unflushed`] sends it, its own transaction committed without
/// waiting for its WAL flush, as text to send with other statements.
pub(crate) fn unflushed_sql(sql: &str, wait: Option<&str>) -> String {
    let wait = wait
        .map(|w| format!("SET LOCAL lock_timeout = '{w}'; "))
        .unwrap_or_default();
    format!("BEGIN; SET LOCAL synchronous_commit TO off; {wait}{sql}; COMMIT")
}

fn audit_update(
    run: &str,
    seq: i64,
    started_at: i64,
    outcome: &str,
    error: Option<&str>,
) -> sea_orm::sea_query::UpdateStatement {
    let now = now_ms();
    Query::update()
        .table(Alias::new(AUDIT_TABLE))
        .values([
            (Alias::new("finished_at"), now.into()),
            (Alias::new("duration_ms"), (now - started_at).into()),
            (Alias::new("outcome"), outcome.into()),
            (
                Alias::new("error"),
                Value::String(error.map(|e| e.to_owned())).into(),
            ),
        ])
        .and_where(Expr::col(Alias::new("run_id")).eq(run))
        .and_where(Expr::col(Alias::new("seq")).eq(seq))
        .to_owned()
}

/// Writes how an audited operation ended.
pub async fn audit_finish<C: ConnectionTrait>(
    db: &C,
    run: &str,
    seq: i64,
    started_at: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), DbErr> {
    write_unflushed(
        db,
        &audit_update(run, seq, started_at, outcome, error),
        Some(AUDIT_WAIT),
    )
    .await
}

/// [`audit_finish`]'s statement as PostgreSQL text (its duration ends now), to send with
/// other statements.
pub fn audit_finish_sql_pg(run: &str, seq: i64, started_at: i64, outcome: &str) -> String {
    audit_update(run, seq, started_at, outcome, None)
        .to_string(sea_orm::sea_query::PostgresQueryBuilder)
}

/// PostgreSQL: removes an entry written for a step that then never started (see
/// `pg_step::abandon`), as text in a transaction of its own that does not wait for its WAL
/// flush or long for a lock. Its count of affected rows is the DELETE's (the others count
/// none).
pub(crate) fn audit_delete_sql_pg(run: &str, seq: i64) -> String {
    let delete = Query::delete()
        .from_table(Alias::new(AUDIT_TABLE))
        .and_where(Expr::col(Alias::new("run_id")).eq(run))
        .and_where(Expr::col(Alias::new("seq")).eq(seq))
        .to_string(sea_orm::sea_query::PostgresQueryBuilder);
    unflushed_sql(&delete, Some(AUDIT_WAIT))
}

/// Entries still `running` when the migration lock is free belong to a run that was killed:
/// they become `interrupted`. Call with the lock held.
pub async fn audit_sweep<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let update = Query::update()
        .table(Alias::new(AUDIT_TABLE))
        .values([(Alias::new("outcome"), "interrupted".into())])
        .and_where(Expr::col(Alias::new("outcome")).eq("running"))
        .to_owned();
    if db.get_database_backend() == DbBackend::Postgres {
        // One round trip, and a lock on the table makes it give up instead of waiting.
        write_unflushed(db, &update, Some(AUDIT_WAIT)).await?;
        return Ok(0);
    }
    // Read first: a write (even of no row) needs SQLite's write lock, which another writer
    // may hold for a while.
    let running = Query::select()
        .expr(Expr::col(Alias::new("run_id")).count())
        .from(Alias::new(AUDIT_TABLE))
        .and_where(Expr::col(Alias::new("outcome")).eq("running"))
        .to_owned();
    let n: i64 = db
        .query_one(&running)
        .await?
        .map(|r| r.try_get_by_index(0))
        .transpose()?
        .unwrap_or(0);
    if n == 0 {
        return Ok(0);
    }
    Ok(db.execute(&update).await?.rows_affected())
}

/// The newest `limit` audit entries, newest first.
pub async fn read_audit<C: ConnectionTrait>(
    db: &C,
    limit: Option<u64>,
) -> Result<Vec<AuditEntry>, DbErr> {
    let mut select = Query::select();
    select
        .columns(AUDIT_COLUMNS.map(Alias::new))
        .from(Alias::new(AUDIT_TABLE))
        .order_by(Alias::new("started_at"), Order::Desc)
        .order_by(Alias::new("seq"), Order::Desc);
    if let Some(l) = limit {
        select.limit(l);
    }
    let rows = db.query_all(&select).await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                run: r.try_get_by_index(0)?,
                seq: r.try_get_by_index::<i32>(1).map(i64::from)?,
                started_at: r.try_get_by_index(2)?,
                finished_at: r.try_get_by_index(3)?,
                duration_ms: r.try_get_by_index(4)?,
                operation: r.try_get_by_index(5)?,
                app: r.try_get_by_index(6)?,
                version: r.try_get_by_index(7)?,
                direction: r.try_get_by_index(8)?,
                outcome: r.try_get_by_index(9)?,
                error: r.try_get_by_index(10)?,
                db_user: r.try_get_by_index(11)?,
                os_user: r.try_get_by_index(12)?,
                host: r.try_get_by_index(13)?,
                client: r.try_get_by_index(14)?,
            })
        })
        .collect()
}

/// The entries [`prune_audit`] deletes: started before `before_ms`, finished, and not of a
/// run with an entry still `running` (a run in progress, or a killed one the next write run
/// has not swept yet: its entries go once it reads `interrupted`). The inner derived table
/// is for MySQL, which cannot otherwise read the table it deletes from.
fn prunable(before_ms: i64) -> String {
    format!(
        "{AUDIT_TABLE} WHERE started_at < {before_ms} AND outcome <> 'running' AND run_id NOT IN \
         (SELECT run_id FROM (SELECT run_id FROM {AUDIT_TABLE} WHERE outcome = 'running') AS live)"
    )
}

/// How many audit entries [`prune_audit`] would delete.
pub async fn count_audit_before<C: ConnectionTrait>(db: &C, before_ms: i64) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!("SELECT COUNT(*) FROM {}", prunable(before_ms));
    let n: i64 = db
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await?
        .map(|r| r.try_get_by_index(0))
        .transpose()?
        .unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Deletes old finished audit entries (see [`prunable`]); `before_ms` in Unix milliseconds.
pub async fn prune_audit<C: ConnectionTrait>(db: &C, before_ms: i64) -> Result<u64, DbErr> {
    let sql = format!("DELETE FROM {}", prunable(before_ms));
    Ok(db.execute_unprepared(&sql).await?.rows_affected())
}

/// The audit entry of a new operation: who, what, started now.
pub fn entry(
    actor: &Actor,
    run: &str,
    seq: i64,
    operation: &str,
    app: &str,
    step: Option<&StepInfo>,
    direction: Option<Direction>,
) -> AuditEntry {
    AuditEntry {
        run: run.to_owned(),
        seq,
        started_at: now_ms(),
        finished_at: None,
        duration_ms: None,
        operation: operation.to_owned(),
        app: app.to_owned(),
        version: step.map(|s| s.name.to_owned()),
        direction: direction.map(|d| d.as_str().to_owned()),
        outcome: "running".to_owned(),
        error: None,
        db_user: actor.db_user.clone(),
        os_user: actor.os_user.clone(),
        host: actor.host.clone(),
        client: actor.client.clone(),
    }
}
