//! What a fleet run lists on a server: the databases (PostgreSQL, MySQL/MariaDB) or the
//! schemas of one PostgreSQL database whose names match a LIKE pattern. System databases and
//! schemas never match.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// The databases on the server whose names match `pattern` (SQL LIKE), sorted.
pub async fn databases(db: &DatabaseConnection, pattern: &str) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 AND datallowconn AND NOT datistemplate ORDER BY datname"
        }
        _ => {
            "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? AND SCHEMA_NAME NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') ORDER BY SCHEMA_NAME"
        }
    };
    names(db, backend, sql, pattern).await
}

/// The schemas of a PostgreSQL database whose names match `pattern` (SQL LIKE), sorted.
pub async fn schemas(db: &DatabaseConnection, pattern: &str) -> Result<Vec<String>, DbErr> {
    names(
        db,
        DbBackend::Postgres,
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE $1 AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY nspname",
        pattern,
    )
    .await
}

async fn names(
    db: &DatabaseConnection,
    backend: DbBackend,
    sql: &str,
    pattern: &str,
) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [pattern.to_owned().into()],
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect()
}
