//! PostgreSQL's steps in as few round trips as psql running the `--sql` script: a step's
//! transaction is opened with a plain `BEGIN` in the same message as the audit entry's start
//! and the timeouts, and ended with its tracking and state rows, the audit entry's end and
//! `COMMIT` in one more, which also begins the next step (its audit entry and `BEGIN`).
//! SeaORM's transactions send `BEGIN` and `COMMIT` on their own, so they cannot share a
//! round trip; this module keeps what they guarantee (nothing left open on a connection
//! someone else may use, failures told apart).

use super::offline;
use super::plan::Direction;
use super::record;
use super::report::Hooks;
use super::run::{db_code, Engine, StepResult};
use crate::{Step, StepInfo};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::SchemaManager;

/// Whether PostgreSQL steps open their transactions with a plain `BEGIN` that shares round
/// trips with the statements around it (see [`pg_begin`]). Not when the driver wraps each
/// statement outside its own transactions in one (`transaction_setup`, for poolers): its
/// `COMMIT` would end ours.
pub(super) fn pg_fast_path(engine: &Engine) -> bool {
    engine.backend() == DbBackend::Postgres
        && engine
            .connection()
            .get_postgres_connection_pool()
            .connect_options()
            .get_transaction_setup()
            .is_none()
}

/// A step's transaction on PostgreSQL, opened with a plain `BEGIN` on the engine's one
/// connection. Dropped while open (the run's future was dropped mid-step) it closes the
/// connection's pool: a pool the caller shares would otherwise hand out a connection still
/// inside the transaction. (SeaORM's own transactions roll back on drop instead; they cannot
/// share a round trip with anything.)
pub(super) struct PgTxn<'a> {
    pub(super) db: &'a DatabaseConnection,
    pub(super) open: bool,
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if self.open {
            // Marks the pool closed at once; the returned future only waits for that.
            drop(self.db.get_postgres_connection_pool().close());
        }
    }
}

impl PgTxn<'_> {
    /// Ends a failed transaction (or the aborted block of a failed message).
    async fn rollback(mut self) {
        if self.db.execute_unprepared("ROLLBACK").await.is_ok() {
            self.open = false;
        }
    }
}

/// `BEGIN` and the step's `SET LOCAL` timeouts, as one text.
fn begin_sql(engine: &Engine) -> String {
    let opts = engine.options();
    let mut sql = format!(
        "BEGIN; SET LOCAL lock_timeout = '{}ms'",
        opts.ddl_lock_timeout.as_millis().max(1)
    );
    if let Some(st) = opts.statement_timeout {
        sql.push_str(&format!(
            "; SET LOCAL statement_timeout = '{}ms'",
            st.as_millis().max(1)
        ));
    }
    sql
}

/// Opens a step's transaction with its timeouts in one round trip, after `entry` (the audit
/// entry's start, committed on its own first, without waiting for its WAL flush: the step's
/// commit flushes it).
pub(super) async fn pg_begin<'a>(
    engine: &'a Engine,
    entry: Option<&str>,
) -> Result<PgTxn<'a>, DbErr> {
    let mut sql = String::new();
    if let Some(entry) = entry {
        sql.push_str(&record::unflushed_sql(entry, Some(record::AUDIT_WAIT)));
        sql.push_str("; ");
    }
    sql.push_str(&begin_sql(engine));
    let txn = PgTxn {
        db: engine.connection(),
        open: true,
    };
    match engine.connection().execute_unprepared(&sql).await {
        Ok(_) => Ok(txn),
        Err(e) => {
            txn.rollback().await;
            Err(e)
        }
    }
}

/// A next step's transaction that was begun with this step's commit (see [`pg_commit`]) but
/// will not run (the run stops or fails between steps): rolled back, and its audit entry,
/// written for a step that never started, removed.
/// Err: the entry could not be removed (an append-only audit table: refused, or a trigger
/// that skips the row).
pub(super) async fn abandon(txn: PgTxn<'_>, entry: Option<(&str, i64)>) -> Result<(), DbErr> {
    let db = txn.db;
    txn.rollback().await;
    if let Some((run, seq)) = entry {
        match db
            .execute_unprepared(&record::audit_delete_sql_pg(run, seq))
            .await
        {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(_) => return Err(DbErr::Custom("no row was deleted".into())),
            Err(e) => {
                let _ = db.execute_unprepared("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Before a step that runs outside a transaction (`CONCURRENTLY`), in one round trip: the
/// audit entry's start (after [`pg_begin`]'s fashion), the in-progress marker, each in a
/// transaction of its own committed without waiting for its WAL flush (the index builds
/// flush it), and then `set`, the step's session timeouts.
///
/// On failure nothing says which part failed, and the entry may have committed before the
/// marker failed: the entry is sent again on its own to tell. `Err(None)`: the entry is
/// written (or there was none), so the caller keeps it and ends it with the step, and
/// writes the marker on its own, whose own error then shows. `Err(Some(e))`: the audit
/// log cannot be written.
pub(super) async fn pg_mark(
    engine: &Engine,
    entry: Option<&str>,
    info: &StepInfo,
    direction: Direction,
    set: &[String],
) -> Result<(), Option<DbErr>> {
    let db = engine.connection();
    let mut parts = Vec::new();
    if let Some(entry) = entry {
        parts.push(record::unflushed_sql(entry, Some(record::AUDIT_WAIT)));
    }
    parts.push(record::unflushed_sql(
        &record::mark_sql_pg(info, direction),
        None,
    ));
    parts.extend(set.iter().cloned());
    if db.execute_unprepared(&parts.join("; ")).await.is_ok() {
        return Ok(());
    }
    // A failed statement leaves its block open and aborted: close it.
    let _ = db.execute_unprepared("ROLLBACK").await;
    let Some(entry) = entry else {
        return Err(None);
    };
    let again = record::unflushed_sql(entry, Some(record::AUDIT_WAIT));
    match db.execute_unprepared(&again).await {
        Ok(_) => Err(None),
        Err(e) => {
            let _ = db.execute_unprepared("ROLLBACK").await;
            // unique_violation: the first message wrote it.
            match db_code(&e).as_deref() {
                Some("23505") => Err(None),
                _ => Err(Some(e)),
            }
        }
    }
}

/// The audit entry a step's commit ends (PostgreSQL fast path).
pub(super) struct AuditEnd<'a> {
    pub(super) run: &'a str,
    pub(super) seq: i64,
    pub(super) started: i64,
}

/// Whether the audit entry's end went with the step's commit.
pub(super) enum Logged {
    WithTheStep,
    /// The step committed; the entry's end could not be written.
    Failed(DbErr),
    /// Not attempted (no entry, or the step failed first): the caller ends the entry.
    NotYet,
}

/// What [`pg_commit`] begins after the step it commits: the next step, when it runs in a
/// transaction too. Its audit entry's start is written in this step's transaction (so it is
/// committed before the next step starts, as [`pg_begin`] would have it), and its `BEGIN`
/// follows this step's `COMMIT` in the same message: one round trip between two steps.
pub(super) struct Next {
    /// The next step's audit entry (None: the log is off). Its start is the commit's time,
    /// when the next step begins, not the time it was made ready.
    entry: Option<record::AuditEntry>,
    /// [`begin_sql`] of the engine.
    begin: String,
}

impl Next {
    pub(super) fn new(engine: &Engine, entry: Option<record::AuditEntry>) -> Next {
        Next {
            entry,
            begin: begin_sql(engine),
        }
    }

    /// The entry's text, started now.
    fn entry_sql(&mut self) -> Option<String> {
        let e = self.entry.as_mut()?;
        e.started_at = record::now_ms();
        Some(record::audit_start_sql_pg(e))
    }

    /// `(seq, started_at)` of the entry as last rendered.
    pub(super) fn written(&self) -> Option<(i64, i64)> {
        self.entry.as_ref().map(|e| (e.seq, e.started_at))
    }
}

/// [`in_transaction`] on PostgreSQL in as few round trips as psql running the `--sql`
/// script: the transaction was opened together with the audit entry ([`pg_begin`]) or by
/// the previous step's commit; the step's statements; then one message with the tracking and
/// state rows, the audit entry's end under a savepoint (a failure there never costs the
/// step), `COMMIT`, and the `next` step's `BEGIN`, whose open transaction is returned.
#[allow(clippy::too_many_arguments)]
pub(super) async fn in_transaction_pg<'a>(
    engine: &'a Engine,
    obj: &dyn Step,
    direction: Direction,
    checksum: &str,
    hooks: &mut dyn Hooks,
    begun: Option<PgTxn<'a>>,
    audit: Option<AuditEnd<'_>>,
    next: Option<&mut Next>,
) -> (StepResult, Logged, Option<PgTxn<'a>>) {
    let info = obj.info();
    let txn = match begun {
        Some(t) => t,
        None => match pg_begin(engine, None).await {
            Ok(t) => t,
            Err(e) => return (Err((e, Vec::new())), Logged::NotYet, None),
        },
    };
    let work = async {
        let manager = SchemaManager::new(engine.connection());
        match direction {
            Direction::Up => obj.up(&manager).await,
            Direction::Down => obj.down(&manager).await,
        }
    };
    let (r, blockers) = super::watch::while_running(engine, info, direction, hooks, work).await;
    if let Err(e) = r {
        txn.rollback().await;
        return (Err((e, blockers)), Logged::NotYet, None);
    }
    let (r, logged, next_begun) = pg_commit(&txn, info, direction, checksum, audit, "", next).await;
    let mut txn = txn;
    txn.open = false;
    // Built only when begun: an open `PgTxn` closes the pool when dropped.
    let next = next_begun.then(|| PgTxn {
        db: engine.connection(),
        open: true,
    });
    (r.map_err(|e| (e, blockers)), logged, next)
}

/// The end of a step's transaction in one message (see [`in_transaction_pg`]). On failure,
/// what failed is told apart by the savepoint: if it can be rolled back to, only the audit
/// log failed (this step's end or the next step's start) and the step commits after all,
/// without beginning the next; otherwise the step's rows or `COMMIT` failed and everything
/// is rolled back (a failed statement skips the rest of its message, so the next `BEGIN`
/// never runs then; `BEGIN` and `SET LOCAL` of valid values after a `COMMIT` do not fail). `prefix` goes first: a step that ran outside a transaction opens one
/// here, after resetting its session timeouts. True with the result: `next` was begun.
pub(super) async fn pg_commit(
    txn: &PgTxn<'_>,
    info: &StepInfo,
    direction: Direction,
    checksum: &str,
    audit: Option<AuditEnd<'_>>,
    prefix: &str,
    mut next: Option<&mut Next>,
) -> (Result<(), DbErr>, Logged, bool) {
    let db = txn.db;
    let capture = offline::capture_conn(DbBackend::Postgres);
    if let Err(e) =
        record::finish_step(&capture, record::now_secs(), info, direction, checksum).await
    {
        let _ = db.execute_unprepared("ROLLBACK").await;
        return (Err(e), Logged::NotYet, false);
    }
    let mut sql = prefix.to_owned();
    sql.push_str(&offline::captured_sql(capture).join("; "));
    let mut logs = Vec::new();
    if let Some(a) = &audit {
        logs.push(record::audit_finish_sql_pg(a.run, a.seq, a.started, "ok"));
    }
    let next_entry = next.as_deref_mut().and_then(Next::entry_sql);
    if let Some(entry) = &next_entry {
        logs.push(entry.clone());
    }
    let logged = !logs.is_empty();
    if logged {
        // The step's deferred constraints are checked here, before the savepoint, so that a
        // failure of theirs is the step's; the audit table's own (a deferred trigger on it)
        // then fire at once, inside the savepoint, and cannot fail the COMMIT.
        sql.push_str(&format!(
            "; SET CONSTRAINTS ALL IMMEDIATE; SAVEPOINT dbtool_audit; SET LOCAL lock_timeout = '{}'; ",
            record::AUDIT_WAIT
        ));
        sql.push_str(&logs.join("; "));
        sql.push_str("; RELEASE SAVEPOINT dbtool_audit");
    }
    sql.push_str("; COMMIT");
    if let Some(n) = &next {
        sql.push_str("; ");
        sql.push_str(&n.begin);
    }
    let e = match db.execute_unprepared(&sql).await {
        Ok(_) if audit.is_some() => return (Ok(()), Logged::WithTheStep, next.is_some()),
        Ok(_) => return (Ok(()), Logged::NotYet, next.is_some()),
        Err(e) => e,
    };
    if logged
        && db
            .execute_unprepared("ROLLBACK TO SAVEPOINT dbtool_audit")
            .await
            .is_ok()
    {
        if let Err(commit) = db.execute_unprepared("COMMIT").await {
            return (Err(commit), Logged::NotYet, false);
        }
        // Perhaps only the next step's entry failed: this step's entry still ends true.
        if let (Some(a), Some(_)) = (&audit, &next_entry) {
            let end = record::audit_finish_sql_pg(a.run, a.seq, a.started, "ok");
            let end = record::unflushed_sql(&end, Some(record::AUDIT_WAIT));
            if db.execute_unprepared(&end).await.is_err() {
                let _ = db.execute_unprepared("ROLLBACK").await;
            }
        }
        return (Ok(()), Logged::Failed(e), false);
    }
    let _ = db.execute_unprepared("ROLLBACK").await;
    (Err(e), Logged::NotYet, false)
}
