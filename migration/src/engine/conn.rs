//! The engine's own connection. Session locks (PostgreSQL advisory locks, MySQL `GET_LOCK`),
//! `SET` of timeouts and each step's transaction must all happen on one server session, so
//! the engine needs a pool of exactly one connection that sqlx never retires and never
//! replaces. A caller's pool of one that is set up so is used as it is (the CLI opens one);
//! from any other pool (an application's) the engine opens a pool of one with the same
//! connect options, carrying over the effective `search_path`, which SeaORM sets after
//! connecting and the options do not hold.

use sea_orm::sqlx;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

fn conn_err(e: sqlx::Error) -> DbErr {
    DbErr::Conn(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e)))
}

/// A pool of one connection that is never retired and, once lost, never replaced: a new
/// session would carry on without the migration lock and the session's settings, so the
/// run fails instead (`replace_lost_connections` is dbtool's patch of sqlx-core).
fn one<DB: sqlx::Database>() -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .replace_lost_connections(false)
}

/// A connection for the engine: `db` itself when its pool has one connection, else a new
/// pool of one to the same database. In-memory SQLite is always used as it is (another
/// pool would open another, empty database). True with it: `db` itself.
pub async fn dedicated(db: &DatabaseConnection) -> Result<(DatabaseConnection, bool), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            if pool.options().get_max_connections() == 1
                && !pool.options().get_replace_lost_connections()
            {
                return Ok((db.clone(), true));
            }
            let path = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT current_setting('search_path')".to_owned(),
                ))
                .await?
                .map(|r| r.try_get_by_index::<String>(0))
                .transpose()?;
            let conn = fresh(db).await?;
            if let Some(path) = path.filter(|p| !p.is_empty()) {
                // `SET` takes the list as `current_setting` prints it.
                conn.execute_unprepared(&format!("SET search_path TO {path}"))
                    .await?;
            }
            Ok((conn, false))
        }
        DbBackend::MySql => {
            let pool = db.get_mysql_connection_pool();
            if pool.options().get_max_connections() == 1
                && !pool.options().get_replace_lost_connections()
            {
                return Ok((db.clone(), true));
            }
            Ok((fresh(db).await?, false))
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            if pool.options().get_max_connections() == 1 || sqlite_file(db).await?.is_none() {
                return Ok((db.clone(), true));
            }
            let opts = (*pool.connect_options()).clone();
            let new = one::<sqlx::Sqlite>()
                .connect_with(opts)
                .await
                .map_err(conn_err)?;
            Ok((
                sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(new),
                false,
            ))
        }
        other => Err(DbErr::BackendNotSupported {
            db: other.as_str(),
            ctx: "the migration engine",
        }),
    }
}

/// The file of the main SQLite database; None for an in-memory or temporary one.
pub async fn sqlite_file<C: ConnectionTrait>(db: &C) -> Result<Option<std::path::PathBuf>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT file FROM pragma_database_list WHERE name = 'main'".to_owned(),
        ))
        .await?;
    let file: Option<String> = row.map(|r| r.try_get_by_index(0)).transpose()?;
    Ok(file.filter(|f| !f.is_empty()).map(std::path::PathBuf::from))
}

/// A new pool of one connection to the same database as `db` (PostgreSQL, MySQL; SQLite's
/// `db` itself): the engine's own, or one for reading after `db`'s session was lost (the
/// position a run reports), which nothing that needs the old session (its lock) may use.
pub async fn fresh(db: &DatabaseConnection) -> Result<DatabaseConnection, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let opts = (*db.get_postgres_connection_pool().connect_options()).clone();
            let new = one::<sqlx::Postgres>()
                .connect_with(opts)
                .await
                .map_err(conn_err)?;
            Ok(sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(new))
        }
        DbBackend::MySql => {
            let opts = (*db.get_mysql_connection_pool().connect_options()).clone();
            let new = one::<sqlx::MySql>()
                .connect_with(opts)
                .await
                .map_err(conn_err)?;
            Ok(sea_orm::SqlxMySqlConnector::from_sqlx_mysql_pool(new))
        }
        _ => Ok(db.clone()),
    }
}
