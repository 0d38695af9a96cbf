//! The migration lock, one per migration target whatever the spelling of the URL:
//! - PostgreSQL: a session advisory lock keyed on the effective schema (the `schema` option,
//!   exactly as it is put into `search_path`, or `current_schema()`); advisory locks are per
//!   database already. Taken on the engine's one connection, so a killed process releases it.
//! - MySQL/MariaDB: `GET_LOCK('dbtool:<database>')` on that connection.
//! - SQLite: an exclusive `flock` on a side file next to the database (`<file>-dbtool.lock`),
//!   which the operating system releases when the process dies. Steps commit one by one, so
//!   the database's own write lock cannot stand in for a run lock; a side file rather than
//!   the database file itself, because closing any descriptor of the database file would drop
//!   SQLite's own POSIX locks held by the same process.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Who holds the lock, as far as the server can tell.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
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

/// What the lock is keyed on, computed once per engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKey {
    /// The effective PostgreSQL schema.
    Postgres { schema: String },
    /// The `GET_LOCK` name (at most 64 characters).
    MySql { name: String },
    /// The side file of a SQLite database; None for an in-memory database (one process).
    Sqlite { file: Option<PathBuf> },
}

impl LockKey {
    /// The advisory-lock key pair: a fixed class and a hash of the schema name.
    fn pg_keys(schema: &str) -> (i32, i32) {
        let mut h: u32 = 0x811c9dc5;
        for b in schema.as_bytes() {
            h ^= *b as u32;
            h = h.wrapping_mul(0x01000193);
        }
        (0x6462_746f, (h & 0x7fff_ffff) as i32)
    }

    pub fn mysql(database: &str) -> LockKey {
        let mut name = format!("dbtool:{database}");
        while name.len() > 64 {
            name.pop();
        }
        LockKey::MySql { name }
    }

    /// The side file of a SQLite database file.
    pub fn sqlite(file: Option<PathBuf>) -> LockKey {
        LockKey::Sqlite {
            file: file.map(|f| {
                let mut s = f.into_os_string();
                s.push("-dbtool.lock");
                PathBuf::from(s)
            }),
        }
    }
}

/// A held lock; release it with [`release`] (or drop the connection).
#[derive(Debug)]
pub enum Held {
    Session,
    /// The open, locked side file (closing it releases the lock).
    File(std::fs::File),
    Nothing,
}

#[derive(Debug)]
pub enum LockError {
    Timeout {
        waited: Duration,
        holder: Holder,
    },
    Db(DbErr),
    Io {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The caller asked to stop waiting.
    Stopped,
}

impl From<DbErr> for LockError {
    fn from(e: DbErr) -> Self {
        LockError::Db(e)
    }
}

/// Takes the lock, waiting at most `timeout`. `on_wait` is called with the holder once if it
/// has to wait, then with None between attempts: false stops the wait (`Stopped`).
pub async fn acquire(
    db: &DatabaseConnection,
    key: &LockKey,
    timeout: Duration,
    on_wait: &mut (dyn FnMut(Option<&Holder>) -> bool + Send),
) -> Result<Held, LockError> {
    let started = Instant::now();
    match key {
        LockKey::Postgres { schema } => {
            let (k1, k2) = LockKey::pg_keys(schema);
            let sql = format!("SELECT pg_try_advisory_lock({k1}, {k2})");
            // Poll instead of blocking in pg_advisory_lock(): a statement that waits holds a
            // snapshot, and CREATE INDEX CONCURRENTLY in the holder's migration waits for every
            // older snapshot in the database: the two would deadlock.
            poll(
                timeout,
                started,
                on_wait,
                || scalar_bool(db, &sql),
                || pg_holder(db, k1, k2),
            )
            .await
            .map(|()| Held::Session)
        }
        LockKey::MySql { name } => {
            let q = |t: u64| format!("SELECT GET_LOCK('{}', {t}) = 1", name.replace('\'', "''"));
            if scalar_bool(db, &q(0)).await? {
                return Ok(Held::Session);
            }
            on_wait(Some(&mysql_holder(db, name).await?));
            // GET_LOCK waits on the server without holding a snapshot; whole seconds only,
            // one at a time so that a request to stop is heard.
            loop {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(LockError::Timeout {
                        waited: started.elapsed(),
                        holder: mysql_holder(db, name).await?,
                    });
                }
                if !on_wait(None) {
                    return Err(LockError::Stopped);
                }
                let secs = left.as_secs_f64().ceil().min(1.0) as u64;
                if scalar_bool(db, &q(secs.max(1))).await? {
                    return Ok(Held::Session);
                }
            }
        }
        LockKey::Sqlite { file: None } => Ok(Held::Nothing),
        LockKey::Sqlite { file: Some(path) } => {
            let io = |error| LockError::Io {
                file: path.clone(),
                error,
            };
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(io)?;
            let mut said = false;
            let mut pause = Duration::from_millis(10);
            loop {
                match f.try_lock() {
                    Ok(()) => return Ok(Held::File(f)),
                    Err(std::fs::TryLockError::WouldBlock) => {}
                    Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
                }
                if !said {
                    on_wait(Some(&Holder::default()));
                    said = true;
                }
                if !on_wait(None) {
                    return Err(LockError::Stopped);
                }
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(LockError::Timeout {
                        waited: started.elapsed(),
                        holder: Holder::default(),
                    });
                }
                tokio::time::sleep(pause.min(left)).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// Tries `attempt` until it succeeds or `timeout` has passed, with backoff and one last try
/// at the deadline.
async fn poll<A, H>(
    timeout: Duration,
    started: Instant,
    on_wait: &mut (dyn FnMut(Option<&Holder>) -> bool + Send),
    mut attempt: impl FnMut() -> A,
    mut holder: impl FnMut() -> H,
) -> Result<(), LockError>
where
    A: std::future::Future<Output = Result<bool, DbErr>>,
    H: std::future::Future<Output = Result<Holder, DbErr>>,
{
    if attempt().await? {
        return Ok(());
    }
    on_wait(Some(&holder().await?));
    let mut pause = Duration::from_millis(20);
    loop {
        if !on_wait(None) {
            return Err(LockError::Stopped);
        }
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(LockError::Timeout {
                waited: started.elapsed(),
                holder: holder().await?,
            });
        }
        tokio::time::sleep(pause.min(left)).await;
        if attempt().await? {
            return Ok(());
        }
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Releases a lock explicitly (closing the connection or the file would too).
pub async fn release(db: &DatabaseConnection, key: &LockKey, held: Held) -> Result<(), DbErr> {
    match (key, held) {
        (LockKey::Postgres { schema }, Held::Session) => {
            let (k1, k2) = LockKey::pg_keys(schema);
            db.execute_unprepared(&format!("SELECT pg_advisory_unlock({k1}, {k2})"))
                .await?;
        }
        (LockKey::MySql { name }, Held::Session) => {
            db.execute_unprepared(&format!(
                "SELECT RELEASE_LOCK('{}')",
                name.replace('\'', "''")
            ))
            .await?;
        }
        (_, Held::File(f)) => {
            let _ = f.unlock();
        }
        _ => {}
    }
    Ok(())
}

/// Is the lock free right now? Takes and releases it at once; used to tell an interrupted
/// run from a running one. A lock that cannot be tested reads as held.
pub async fn is_free(db: &DatabaseConnection, key: &LockKey) -> bool {
    let mut never = |_: Option<&Holder>| true;
    match acquire(db, key, Duration::ZERO, &mut never).await {
        Ok(held) => release(db, key, held).await.is_ok(),
        Err(_) => false,
    }
}

/// Who holds the lock right now, if anyone else does, read without taking it (so a
/// read-only command changes nothing and a transaction pooler cannot strand a lock):
/// PostgreSQL's `pg_locks`, MySQL's `IS_USED_LOCK`, a test of the SQLite side file (absent:
/// nobody ever held it).
pub async fn holder(db: &DatabaseConnection, key: &LockKey) -> Result<Option<Holder>, DbErr> {
    match key {
        LockKey::Postgres { schema } => {
            let (k1, k2) = LockKey::pg_keys(schema);
            let h = pg_holder(db, k1, k2).await?;
            Ok((h != Holder::default()).then_some(h))
        }
        LockKey::MySql { name } => {
            let used = scalar_bool(
                db,
                &format!(
                    "SELECT IS_USED_LOCK('{}') IS NOT NULL",
                    name.replace('\'', "''")
                ),
            )
            .await?;
            match used {
                true => Ok(Some(mysql_holder(db, name).await?)),
                false => Ok(None),
            }
        }
        LockKey::Sqlite { file: None } => Ok(None),
        LockKey::Sqlite { file: Some(path) } => {
            let Ok(f) = std::fs::File::open(path) else {
                return Ok(None);
            };
            Ok(match f.try_lock() {
                Ok(()) => {
                    let _ = f.unlock();
                    None
                }
                Err(_) => Some(Holder::default()),
            })
        }
    }
}

pub(crate) async fn scalar_bool<C: ConnectionTrait>(db: &C, sql: &str) -> Result<bool, DbErr> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable() {
        assert_eq!(LockKey::pg_keys("public"), LockKey::pg_keys("public"));
        assert_ne!(LockKey::pg_keys("public"), LockKey::pg_keys("avatar"));
        let LockKey::MySql { name } = LockKey::mysql(&"x".repeat(100)) else {
            unreachable!()
        };
        assert_eq!(name.len(), 64);
        assert_eq!(
            LockKey::sqlite(Some(PathBuf::from("/tmp/a.db"))),
            LockKey::Sqlite {
                file: Some(PathBuf::from("/tmp/a.db-dbtool.lock"))
            }
        );
    }
}
