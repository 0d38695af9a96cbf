//! The database-wide migration lock: a PostgreSQL session advisory lock, a MySQL named lock
//! (`GET_LOCK`), or SQLite's own write lock (`BEGIN IMMEDIATE` with a busy timeout). It is
//! taken on the single connection that then runs the migrations, so it lives exactly as long
//! as that session: a killed process releases it with its connection.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Who holds the lock, as far as the server can tell.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Holder {
    pub pid: Option<i64>,
    pub application: Option<String>,
    pub client: Option<String>,
    pub since: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.pid {
            parts.push(format!("pid {p}"));
        }
        if let Some(a) = self.application.as_deref().filter(|a| !a.is_empty()) {
            parts.push(format!("application '{a}'"));
        }
        if let Some(c) = &self.client {
            parts.push(format!("client {c}"));
        }
        if let Some(s) = &self.since {
            parts.push(format!("since {s}"));
        }
        if parts.is_empty() {
            f.write_str("another process")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("timed out after {secs}s waiting for the migration lock, held by {holder}")]
    Timeout { secs: u64, holder: Holder },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A held lock. On SQLite it is the write transaction in which the whole run happens.
pub enum Held {
    Session,
    Sqlite(DatabaseTransaction),
}

/// Advisory-lock key pair: a fixed class and the schema, so that two apps in two
/// PostgreSQL schemas of one database do not wait for each other.
fn pg_keys(schema: &str) -> (i32, i32) {
    let mut h: u32 = 0x811c9dc5;
    for b in schema.as_bytes() {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    (0x6462_746f, (h & 0x7fff_ffff) as i32)
}

fn mysql_lock_name(database: &str) -> String {
    let mut n = format!("dbtool:{database}");
    n.truncate(64);
    n
}

/// Takes the lock, waiting at most `timeout`; `on_wait` is called once if it has to wait.
pub async fn acquire(
    db: &DatabaseConnection,
    schema: &str,
    timeout: Duration,
    on_wait: impl FnOnce(&Holder),
) -> Result<Held, LockError> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let (k1, k2) = pg_keys(schema);
            if scalar_bool(db, &format!("SELECT pg_try_advisory_lock({k1}, {k2})")).await? {
                return Ok(Held::Session);
            }
            on_wait(&pg_holder(db, k1, k2).await?);
            // Poll instead of blocking in pg_advisory_lock(): a statement that waits holds a
            // snapshot, and CREATE INDEX CONCURRENTLY in the holder's migration waits for every
            // older snapshot in the database: the two would deadlock.
            let deadline = Instant::now() + timeout;
            let mut pause = Duration::from_millis(20);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(pause.min(left)).await;
                if scalar_bool(db, &format!("SELECT pg_try_advisory_lock({k1}, {k2})")).await? {
                    return Ok(Held::Session);
                }
                if Instant::now() >= deadline {
                    return Err(LockError::Timeout {
                        secs: timeout.as_secs(),
                        holder: pg_holder(db, k1, k2).await?,
                    });
                }
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
        DbBackend::MySql => {
            let name = mysql_lock_name(schema);
            let q = |t: u64| format!("SELECT GET_LOCK('{}', {t}) = 1", name.replace('\'', "''"));
            if scalar_bool(db, &q(0)).await? {
                return Ok(Held::Session);
            }
            on_wait(&mysql_holder(db, &name).await?);
            if scalar_bool(db, &q(timeout.as_secs().max(1))).await? {
                return Ok(Held::Session);
            }
            Err(LockError::Timeout {
                secs: timeout.as_secs(),
                holder: mysql_holder(db, &name).await?,
            })
        }
        DbBackend::Sqlite => {
            let opts = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            };
            let ms = timeout.as_millis().max(1);
            db.execute_unprepared("PRAGMA busy_timeout = 0").await?;
            match db.begin_with_options(opts).await {
                Ok(t) => {
                    // Only the first attempt must not wait: the final COMMIT may still have to
                    // wait a moment for other processes' brief shared locks (e.g. their own
                    // attempts at this lock), which busy_timeout = 0 would turn into an error.
                    t.execute_unprepared(&format!("PRAGMA busy_timeout = {ms}"))
                        .await?;
                    return Ok(Held::Sqlite(t));
                }
                Err(e) if !is_sqlite_busy(&e) => return Err(e.into()),
                Err(_) => {}
            }
            on_wait(&Holder::default());
            db.execute_unprepared(&format!("PRAGMA busy_timeout = {ms}"))
                .await?;
            match db.begin_with_options(opts).await {
                Ok(t) => Ok(Held::Sqlite(t)),
                Err(e) if is_sqlite_busy(&e) => Err(LockError::Timeout {
                    secs: timeout.as_secs(),
                    holder: Holder::default(),
                }),
                Err(e) => Err(e.into()),
            }
        }
        _ => Ok(Held::Session),
    }
}

/// Releases a session lock explicitly (closing the connection would too).
pub async fn release(db: &DatabaseConnection, schema: &str) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let (k1, k2) = pg_keys(schema);
            db.execute_unprepared(&format!("SELECT pg_advisory_unlock({k1}, {k2})"))
                .await?;
        }
        DbBackend::MySql => {
            let name = mysql_lock_name(schema);
            db.execute_unprepared(&format!(
                "SELECT RELEASE_LOCK('{}')",
                name.replace('\'', "''")
            ))
            .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn scalar_bool(db: &DatabaseConnection, sql: &str) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("no row from {sql}")))?;
    match backend {
        DbBackend::MySql => Ok(row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0) == 1),
        _ => row.try_get_by_index::<bool>(0),
    }
}

fn db_code(e: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s))
        | DbErr::Conn(RuntimeErr::SqlxError(s)) => match s.as_ref() {
            sea_orm::sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

fn is_sqlite_busy(e: &DbErr) -> bool {
    // SQLITE_BUSY = 5, extended codes keep 5 in the low byte.
    db_code(e)
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
        || e.to_string().contains("database is locked")
}

async fn pg_holder(db: &DatabaseConnection, k1: i32, k2: i32) -> Result<Holder, DbErr> {
    let sql = format!(
        "SELECT a.pid::int8, a.application_name, host(a.client_addr), \
         to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {k1} AND l.objid = {k2} \
         AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND l.pid <> pg_backend_pid() LIMIT 1"
    );
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    Ok(match row {
        Some(r) => Holder {
            pid: r.try_get_by_index(0)?,
            application: r.try_get_by_index(1)?,
            client: Some(
                r.try_get_by_index::<Option<String>>(2)?
                    .unwrap_or_else(|| "local socket".into()),
            ),
            since: r.try_get_by_index(3)?,
        },
        None => Holder::default(),
    })
}

async fn mysql_holder(db: &DatabaseConnection, name: &str) -> Result<Holder, DbErr> {
    let sql = format!(
        "SELECT CAST(p.ID AS SIGNED), CAST(p.USER AS CHAR), CAST(p.HOST AS CHAR), \
         CAST(DATE_FORMAT(UTC_TIMESTAMP() - INTERVAL p.TIME SECOND, '%Y-%m-%dT%H:%i:%sZ') AS CHAR) \
         FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK('{}')",
        name.replace('\'', "''")
    );
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::MySql, sql))
        .await?;
    Ok(match row {
        Some(r) => Holder {
            pid: r.try_get_by_index(0)?,
            application: r
                .try_get_by_index::<Option<String>>(1)?
                .map(|u| format!("user {u}")),
            client: r.try_get_by_index(2)?,
            since: r.try_get_by_index(3)?,
        },
        None => Holder::default(),
    })
}
