//! Small DDL helpers shared by the migrations: the per-backend differences in one place.
//! Public so that the test suite can run the generated steps' helpers twice on MySQL.
//!
//! Everything here must keep producing the same SQL for the migrations that already use it;
//! add a new helper rather than changing what an existing one emits.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

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
pub async fn drop_index<T>(manager: &SchemaManager<'_>, name: &str, table: T) -> Result<(), DbErr>
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

// ---------------------------------------------------------------------------------------------
// Helpers for the steps `dbtool new --autogenerate` writes: each statement guarded on
// MySQL/MariaDB (which commits DDL as it goes, so a half-done step must be re-runnable), and
// SQLite's table rebuild for what it cannot change in place.

/// Whether the probe `sql` (one row, one column `has_index`, as `upgrade --sql` answers
/// offline) says yes. MySQL gives the answer as a number.
async fn probe(manager: &SchemaManager<'_>, sql: String) -> Result<bool, DbErr> {
    let backend = manager.get_database_backend();
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(row.is_some_and(|r| {
        r.try_get::<i64>("", "has_index")
            .map(|n| n > 0)
            .or_else(|_| r.try_get::<bool>("", "has_index"))
            .unwrap_or(false)
    }))
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `CREATE [UNIQUE] INDEX <name> ON <table> (<columns>)`; on MySQL only when it is missing.
pub async fn create_index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    columns: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::MySql && manager.has_index(table, name).await? {
        return Ok(());
    }
    let mut stmt = Index::create();
    stmt.name(name).table(Alias::new(table));
    for c in columns {
        stmt.col(Alias::new(*c));
    }
    if unique {
        stmt.unique();
    }
    manager.create_index(stmt).await
}

/// `ALTER TABLE <table> ADD COLUMN ...`; on MySQL only when the column is missing.
pub async fn add_column(
    manager: &SchemaManager<'_>,
    table: &str,
    mut column: ColumnDef,
) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::MySql
        && manager.has_column(table, column.get_column_name()).await?
    {
        return Ok(());
    }
    manager
        .alter_table(
            Table::alter()
                .table(Alias::new(table))
                .add_column(&mut column)
                .to_owned(),
        )
        .await
}

/// [`add_column`] where it was: MySQL places it `AFTER` the column before it (so a `down` that
/// puts a dropped column back restores the table exactly); PostgreSQL cannot place a column
/// and adds it at the end.
pub async fn add_column_after(
    manager: &SchemaManager<'_>,
    table: &str,
    mut column: ColumnDef,
    after: &str,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::MySql {
        return add_column(manager, table, column).await;
    }
    if manager.has_column(table, column.get_column_name()).await? {
        return Ok(());
    }
    let stmt = DbBackend::MySql.build(
        Table::alter()
            .table(Alias::new(table))
            .add_column(&mut column),
    );
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "{} AFTER `{}`",
            stmt.sql,
            after.replace('`', "``")
        ))
        .await?;
    Ok(())
}

/// `ALTER TABLE <table> DROP COLUMN <column>`; on MySQL only when it is still there.
pub async fn drop_column(
    manager: &SchemaManager<'_>,
    table: &str,
    column: &str,
) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::MySql
        && !manager.has_column(table, column).await?
    {
        return Ok(());
    }
    manager
        .alter_table(
            Table::alter()
                .table(Alias::new(table))
                .drop_column(Alias::new(column))
                .to_owned(),
        )
        .await
}

/// Gives `column` of `table` exactly the type, nullability and default of `column` on
/// PostgreSQL (`ALTER COLUMN ... TYPE / SET|DROP NOT NULL / SET|DROP DEFAULT`) and MySQL
/// (`MODIFY COLUMN` with the whole definition, which a re-run repeats harmlessly). SQLite
/// cannot: there the step rebuilds the table ([`sqlite_rebuild`]).
pub async fn alter_column(
    manager: &SchemaManager<'_>,
    table: &str,
    mut column: ColumnDef,
) -> Result<(), DbErr> {
    let name = column.get_column_name();
    let no_default = column.get_column_spec().default.is_none();
    manager
        .alter_table(
            Table::alter()
                .table(Alias::new(table))
                .modify_column(&mut column)
                .to_owned(),
        )
        .await?;
    if no_default && manager.get_database_backend() == DbBackend::Postgres {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE \"{table}\" ALTER COLUMN \"{name}\" DROP DEFAULT"
            ))
            .await?;
    }
    Ok(())
}

async fn has_foreign_key(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
) -> Result<bool, DbErr> {
    probe(
        manager,
        format!(
            "SELECT COUNT(*) > 0 AS has_index FROM information_schema.TABLE_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = {} AND CONSTRAINT_NAME = {} \
             AND CONSTRAINT_TYPE = 'FOREIGN KEY'",
            lit(table),
            lit(name)
        ),
    )
    .await
}

/// `ALTER TABLE ... ADD CONSTRAINT <name> FOREIGN KEY ...` (PostgreSQL, MySQL; on MySQL only
/// when the constraint is missing). SQLite cannot: there the step rebuilds the table.
pub async fn add_foreign_key(
    manager: &SchemaManager<'_>,
    table: &str,
    foreign_key: ForeignKeyCreateStatement,
) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::MySql {
        let name = foreign_key.get_foreign_key().get_name().unwrap_or_default();
        if has_foreign_key(manager, table, name).await? {
            return Ok(());
        }
    }
    manager.create_foreign_key(foreign_key).await
}

/// `ALTER TABLE <table> DROP CONSTRAINT <name>` / MySQL `DROP FOREIGN KEY` (only when it is
/// still there), then MySQL's implicit index of the same name, which the server created with
/// the constraint when no other index served it, so the table is exactly as before the key.
pub async fn drop_foreign_key(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
) -> Result<(), DbErr> {
    let mysql = manager.get_database_backend() == DbBackend::MySql;
    if !mysql || has_foreign_key(manager, table, name).await? {
        manager
            .drop_foreign_key(
                ForeignKey::drop()
                    .name(name)
                    .table(Alias::new(table))
                    .to_owned(),
            )
            .await?;
    }
    if mysql && manager.has_index(table, name).await? {
        manager
            .drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned())
            .await?;
    }
    Ok(())
}

/// Names of the rows `sql` returns in its column `name` (none from `upgrade --sql`'s mock).
async fn names(manager: &SchemaManager<'_>, sql: String) -> Result<Vec<String>, DbErr> {
    let rows = manager
        .get_connection()
        .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", "name").ok())
        .collect())
}

/// SQLite's documented table rebuild (<https://www.sqlite.org/lang_altertable.html#otheralter>)
/// for what it cannot change in place (a column's type, nullability or default, a foreign key):
/// create the new form under a temporary name, copy the `keep` columns, drop the old table,
/// rename the new one, create its `indexes`, then check the foreign keys.
///
/// The step runs in a transaction, where `PRAGMA foreign_keys = OFF` (the procedure's first
/// step) has no effect; dropping a table that others reference would then delete or refuse
/// their rows (`ON DELETE CASCADE` / `NO ACTION`). So the rows of every table that depends on
/// this one are set aside in temporary tables, removed child-first, and put back unchanged
/// after the rebuild. Views and triggers are not recreated (the schema has none).
pub async fn sqlite_rebuild(
    manager: &SchemaManager<'_>,
    table: &str,
    mut create: TableCreateStatement,
    keep: &[&str],
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    let fk_on = probe(
        manager,
        "SELECT foreign_keys AS has_index FROM pragma_foreign_keys()".to_owned(),
    )
    .await?;
    let mut dependents: Vec<String> = Vec::new();
    if fk_on {
        let mut queue = vec![table.to_owned()];
        while let Some(parent) = queue.pop() {
            let children = names(
                manager,
                format!(
                    "SELECT DISTINCT m.name AS name FROM sqlite_master m \
                     JOIN pragma_foreign_key_list(m.name) f \
                     WHERE m.type = 'table' AND f.\"table\" = {} AND m.name <> {} ORDER BY m.name",
                    lit(&parent),
                    lit(&parent)
                ),
            )
            .await?;
            for c in children {
                if c != table && !dependents.contains(&c) {
                    dependents.push(c.clone());
                    queue.push(c);
                }
            }
        }
    }
    for d in &dependents {
        conn.execute_unprepared(&format!(
            "CREATE TEMP TABLE \"_dbtool_keep_{d}\" AS SELECT * FROM \"{d}\""
        ))
        .await?;
    }
    for d in dependents.iter().rev() {
        conn.execute_unprepared(&format!("DELETE FROM \"{d}\""))
            .await?;
    }
    let tmp = format!("_dbtool_new_{table}");
    create.table(Alias::new(&tmp));
    manager.create_table(create).await?;
    let cols = keep
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if !keep.is_empty() {
        conn.execute_unprepared(&format!(
            "INSERT INTO \"{tmp}\" ({cols}) SELECT {cols} FROM \"{table}\""
        ))
        .await?;
    }
    conn.execute_unprepared(&format!("DROP TABLE \"{table}\""))
        .await?;
    conn.execute_unprepared(&format!("ALTER TABLE \"{tmp}\" RENAME TO \"{table}\""))
        .await?;
    for ix in indexes {
        manager.create_index(ix).await?;
    }
    for d in &dependents {
        conn.execute_unprepared(&format!(
            "INSERT INTO \"{d}\" SELECT * FROM temp.\"_dbtool_keep_{d}\""
        ))
        .await?;
        conn.execute_unprepared(&format!("DROP TABLE temp.\"_dbtool_keep_{d}\""))
            .await?;
    }
    if fk_on {
        let broken = names(
            manager,
            "SELECT DISTINCT \"table\" AS name FROM pragma_foreign_key_check()".to_owned(),
        )
        .await?;
        if !broken.is_empty() {
            return Err(DbErr::Migration(format!(
                "rebuilding {table}: rows of {} no longer satisfy a foreign key; nothing was changed",
                broken.join(", ")
            )));
        }
    }
    Ok(())
}
