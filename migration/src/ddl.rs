//! Small DDL helpers shared by the migrations: the per-backend differences in one place.
//!
//! Everything here must keep producing the same SQL for the migrations that already use it;
//! add a new helper rather than changing what an existing one emits.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// `CREATE TABLE <name>` with the options every table of ours gets.
///
/// On MySQL/MariaDB only: `IF NOT EXISTS` (MySQL cannot roll DDL back, so a migration that
/// failed halfway must be re-runnable) and `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
/// COLLATE=utf8mb4_unicode_ci`. sea-query would print those options for every backend, so they
/// are only added when the connection is MySQL.
pub(crate) fn create_table<T: IntoIden + 'static>(
    manager: &SchemaManager,
    name: T,
) -> TableCreateStatement {
    let mut stmt = Table::create();
    stmt.table(name);
    if manager.get_database_backend() == DbBackend::MySql {
        stmt.if_not_exists()
            .engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_unicode_ci");
    }
    stmt
}

/// `DROP TABLE <name>`; `IF EXISTS` on MySQL so that a half-done `down` can be re-run.
pub(crate) async fn drop_table<T: IntoIden + 'static>(
    manager: &SchemaManager<'_>,
    name: T,
) -> Result<(), DbErr> {
    let mut stmt = Table::drop();
    stmt.table(name);
    if manager.get_database_backend() == DbBackend::MySql {
        stmt.if_exists();
    }
    manager.drop_table(stmt).await
}

/// The server-side "current time" default: `now()` on PostgreSQL (what SQLAlchemy's
/// `server_default=sa.func.now()` left there; `CURRENT_TIMESTAMP` would be kept verbatim by
/// PostgreSQL), `CURRENT_TIMESTAMP` on MySQL/MariaDB and SQLite.
pub(crate) fn now(manager: &SchemaManager) -> Expr {
    match manager.get_database_backend() {
        DbBackend::Postgres => Expr::cust("now()"),
        _ => Expr::current_timestamp(),
    }
}

/// `CREATE UNIQUE INDEX <name> ON <table> (<column>)`.
///
/// MySQL ignores `IF NOT EXISTS` on indexes, so there the index is only created when it is not
/// there yet (re-running a half-failed migration).
pub(crate) async fn create_unique_index<T, C>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    column: C,
) -> Result<(), DbErr>
where
    T: IntoIden + 'static,
    C: IntoIden + 'static,
{
    let table = table.into_iden();
    if manager.get_database_backend() == DbBackend::MySql
        && manager.has_index(table.to_string(), name).await?
    {
        return Ok(());
    }
    manager
        .create_index(
            Index::create()
                .name(name)
                .table(table)
                .col(column)
                .unique()
                .to_owned(),
        )
        .await
}

/// `DROP INDEX <name>` (`... ON <table>` where the backend needs it); on MySQL only when the
/// index still exists, so that a half-done `down` can be re-run.
pub(crate) async fn drop_index<T>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
) -> Result<(), DbErr>
where
    T: IntoIden + 'static,
{
    let table = table.into_iden();
    if manager.get_database_backend() == DbBackend::MySql
        && !manager.has_index(table.to_string(), name).await?
    {
        return Ok(());
    }
    manager
        .drop_index(Index::drop().name(name).table(table).to_owned())
        .await
}
