//! What exists in the database: one query for the table names of the current schema.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use std::collections::BTreeSet;

/// Names of the tables in the current schema (PostgreSQL `current_schema()`, MySQL
/// `DATABASE()`, SQLite `main`).
pub async fn table_names<C: ConnectionTrait>(db: &C) -> Result<BTreeSet<String>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             WHERE c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = current_schema()) AND c.relkind IN ('r', 'p')"
        }
        DbBackend::MySql => {
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        }
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        other => {
            return Err(DbErr::BackendNotSupported {
                db: other.as_str(),
                ctx: "table_names",
            })
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect()
}

/// Names of the columns of `table` in the current schema.
pub async fn column_names<C: ConnectionTrait>(
    db: &C,
    table: &str,
) -> Result<BTreeSet<String>, DbErr> {
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<sea_orm::Value>) = match backend {
        DbBackend::Postgres => (
            "SELECT a.attname::text FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             WHERE c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = current_schema()) \
             AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped",
            vec![table.into()],
        ),
        DbBackend::MySql => (
            "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = ?",
            vec![table.into()],
        ),
        DbBackend::Sqlite => ("SELECT name FROM pragma_table_info(?)", vec![table.into()]),
        other => {
            return Err(DbErr::BackendNotSupported {
                db: other.as_str(),
                ctx: "column_names",
            })
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect()
}
