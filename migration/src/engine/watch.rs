//! Watching a running step from a second, read-only session: on PostgreSQL, which sessions
//! block it (`pg_blocking_pids`, named with `pg_stat_activity`) and how far an index build
//! has come (`pg_stat_progress_create_index`); on MySQL/MariaDB, which open transactions may
//! hold the lock it timed out on (`INNODB_TRX`: there is no `performance_schema` here to name
//! the holder exactly). The watcher connects only once a step has run for a moment, so quick
//! steps pay nothing.

use super::error::Blocker;
use super::plan::Direction;
use super::report::{Event, Hooks};
use super::run::Engine;
use crate::StepInfo;
use sea_orm::sqlx;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::future::Future;
use std::time::Duration;

/// How long a step runs before the watcher looks at it.
const FIRST_LOOK: Duration = Duration::from_millis(300);
const EVERY: Duration = Duration::from_millis(500);

/// Runs `work` and watches it meanwhile; returns its result and the last blockers seen.
pub(crate) async fn while_running<T>(
    engine: &Engine,
    step: &'static StepInfo,
    direction: Direction,
    hooks: &mut dyn Hooks,
    work: impl Future<Output = T>,
) -> (T, Vec<Blocker>) {
    let Some(pid) = engine.pid() else {
        return (work.await, Vec::new());
    };
    let mut blockers: Vec<Blocker> = Vec::new();
    let result = {
        let watcher = async {
            // Before a short DDL lock timeout runs out, so that its blockers can be named.
            tokio::time::sleep(FIRST_LOOK.min(engine.options().ddl_lock_timeout / 2)).await;
            let Ok(side) = side_connection(engine.connection()).await else {
                return std::future::pending::<()>().await;
            };
            loop {
                if let Ok(now) = pg_blockers(&side, pid).await {
                    if now != blockers && !now.is_empty() {
                        hooks.event(&Event::Blocked {
                            step,
                            direction,
                            blockers: &now,
                        });
                    }
                    if !now.is_empty() {
                        blockers = now;
                    }
                }
                if let Ok(Some(p)) = pg_progress(&side, pid).await {
                    hooks.event(&Event::Progress {
                        step,
                        phase: &p.0,
                        done: p.1,
                        total: p.2,
                    });
                }
                tokio::time::sleep(EVERY).await;
            }
        };
        tokio::pin!(work);
        tokio::pin!(watcher);
        tokio::select! {
            r = &mut work => r,
            _ = &mut watcher => unreachable!("the watcher never ends"),
        }
    };
    (result, blockers)
}

/// A second connection to the same database with the engine's connect options.
async fn side_connection(db: &DatabaseConnection) -> Result<DatabaseConnection, DbErr> {
    let opts = (*db.get_postgres_connection_pool().connect_options()).clone();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        // No pool maintenance task for a connection that may live as long as a long step.
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(opts.application_name("dbtool-watch"))
        .await
        .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e))))?;
    Ok(sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(
        pool,
    ))
}

async fn pg_blockers<C: ConnectionTrait>(side: &C, pid: i64) -> Result<Vec<Blocker>, DbErr> {
    let sql = "SELECT a.pid::int8, a.usename::text, a.application_name, a.state, \
               to_char(coalesce(a.xact_start, a.query_start) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
               a.query \
               FROM pg_catalog.pg_stat_activity a \
               WHERE a.pid = ANY (pg_catalog.pg_blocking_pids($1::int4)) ORDER BY a.pid";
    let rows = side
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [(pid as i32).into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Blocker {
                pid: r.try_get_by_index(0)?,
                user: r.try_get_by_index(1)?,
                application: r.try_get_by_index(2)?,
                state: r.try_get_by_index(3)?,
                since: r.try_get_by_index(4)?,
                query: r.try_get_by_index(5)?,
            })
        })
        .collect()
}

/// Phase, done and total (blocks, or tuples once blocks are done) of an index build.
async fn pg_progress<C: ConnectionTrait>(
    side: &C,
    pid: i64,
) -> Result<Option<(String, i64, i64)>, DbErr> {
    let sql = "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total \
               FROM pg_catalog.pg_stat_progress_create_index WHERE pid = $1::int4";
    let row = side
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [(pid as i32).into()],
        ))
        .await?;
    let Some(r) = row else { return Ok(None) };
    let phase: String = r.try_get_by_index(0)?;
    let (bd, bt, td, tt): (i64, i64, i64, i64) = (
        r.try_get_by_index(1)?,
        r.try_get_by_index(2)?,
        r.try_get_by_index(3)?,
        r.try_get_by_index(4)?,
    );
    Ok(Some(if bt > 0 && bd < bt {
        (phase, bd, bt)
    } else {
        (phase, td, tt)
    }))
}

/// After a lock wait timed out: the sessions that may hold the lock. MySQL/MariaDB: other
/// open InnoDB transactions with their process-list entry; SQLite: another process.
pub(crate) async fn candidates(db: &DatabaseConnection) -> Vec<Blocker> {
    match db.get_database_backend() {
        DbBackend::MySql => {
            let sql = "SELECT CAST(t.trx_mysql_thread_id AS SIGNED), CAST(p.USER AS CHAR), \
                       CAST(p.HOST AS CHAR), CAST(p.COMMAND AS CHAR), \
                       CAST(DATE_FORMAT(CONVERT_TZ(t.trx_started, @@session.time_zone, '+00:00'), '%Y-%m-%dT%H:%i:%sZ') AS CHAR), \
                       CAST(coalesce(t.trx_query, p.INFO) AS CHAR) \
                       FROM information_schema.INNODB_TRX t \
                       LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
                       WHERE t.trx_mysql_thread_id <> CONNECTION_ID() ORDER BY t.trx_started";
            let Ok(rows) = db
                .query_all_raw(Statement::from_string(DbBackend::MySql, sql.to_owned()))
                .await
            else {
                return Vec::new();
            };
            rows.iter()
                .filter_map(|r| {
                    Some(Blocker {
                        pid: r.try_get_by_index(0).ok()?,
                        user: r.try_get_by_index(1).ok()?,
                        application: r
                            .try_get_by_index::<Option<String>>(2)
                            .ok()?
                            .map(|h| format!("from {h}")),
                        state: r
                            .try_get_by_index::<Option<String>>(3)
                            .ok()?
                            .map(|c| format!("{} in an open transaction", c.to_lowercase())),
                        since: r.try_get_by_index(4).ok()?,
                        query: r.try_get_by_index(5).ok()?,
                    })
                })
                .collect()
        }
        DbBackend::Sqlite => vec![Blocker {
            pid: None,
            user: None,
            application: Some("another process holds the database's write lock".into()),
            state: None,
            since: None,
            query: None,
        }],
        _ => Vec::new(),
    }
}
