//! Avatar: `settings.value` holds as much on MySQL/MariaDB as PostgreSQL's `text` does.
//!
//! The settings table (d8cfd3cb4083) declares `value` as `text`, which is unlimited on
//! PostgreSQL and SQLite but only 65,535 bytes on MySQL/MariaDB, so a long prompt that the
//! other backends take (and an export from them) fails there. This step widens the column to
//! `LONGTEXT` (4 GiB) on MySQL/MariaDB and does nothing elsewhere. It is not an Alembic
//! revision: an adopted database at d8cfd3cb4083 has it pending.
//!
//! `up` is idempotent (modifying a `LONGTEXT` column to `LONGTEXT` changes nothing). `down`
//! narrows the column back to `TEXT` only when every value fits: it refuses, naming the keys,
//! instead of letting the server truncate a value. On MariaDB the `ALTER` itself runs in
//! strict mode, so a value written meanwhile, or an offline `downgrade --sql` script (which
//! cannot look at the data), fails on the server instead of losing bytes.
use crate::StepInfo;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

pub struct Migration;

pub const INFO: StepInfo = StepInfo {
    name: "m20261201_000001_widen_settings_value",
    alias: None,
    description: "Widen settings.value to LONGTEXT on MySQL/MariaDB (TEXT holds 64 KiB there); \
                  no change on PostgreSQL and SQLite",
    creates_tables: &[],
};

crate::step_name!(Migration, INFO);

/// The most bytes MySQL/MariaDB's `TEXT` holds.
pub const MYSQL_TEXT_MAX_BYTES: usize = 65_535;

const WIDEN: &str = "ALTER TABLE `settings` MODIFY `value` LONGTEXT NOT NULL";
/// Narrowing in strict mode, so that the server refuses to truncate (without it MySQL only
/// warns). One statement, because a pool may run each statement on another connection:
/// MariaDB's `SET STATEMENT ... FOR`, in an executable comment that MySQL skips (MySQL is
/// strict by default since 5.7; there `down`'s own check stands alone).
const NARROW: &str = "/*M!100301 SET STATEMENT sql_mode='STRICT_ALL_TABLES' FOR */ \
                      ALTER TABLE `settings` MODIFY `value` TEXT NOT NULL";

/// Keys whose value is longer than `TEXT` holds, with their length in bytes, by key.
///
/// `upgrade --sql` runs this against a mock connection whose rows carry no `key` column; such
/// a row reads as "nothing too long" (the script cannot know the data it will meet).
async fn too_long_for_text(manager: &SchemaManager<'_>) -> Result<Vec<(String, i64)>, DbErr> {
    let rows = manager
        .get_connection()
        .query_all_raw(Statement::from_string(
            DbBackend::MySql,
            format!(
                "SELECT `key`, LENGTH(`value`) AS bytes FROM `settings` \
                 WHERE LENGTH(`value`) > {MYSQL_TEXT_MAX_BYTES} ORDER BY `key`"
            ),
        ))
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let key: Option<String> = row.try_get("", "key")?;
        let bytes: Option<i64> = row.try_get("", "bytes")?;
        if let (Some(key), Some(bytes)) = (key, bytes) {
            out.push((key, bytes));
        }
    }
    Ok(out)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::MySql {
            manager.get_connection().execute_unprepared(WIDEN).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::MySql {
            return Ok(());
        }
        let long = too_long_for_text(manager).await?;
        if !long.is_empty() {
            let list = long
                .iter()
                .map(|(k, n)| format!("setting '{}' holds {n} bytes", k.escape_debug()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(DbErr::Migration(format!(
                "settings.value cannot go back to TEXT, which holds at most \
                 {MYSQL_TEXT_MAX_BYTES} bytes on MySQL/MariaDB: {list}; nothing was changed; \
                 shorten or remove {} first (`dbtool settings set KEY --file PATH` or \
                 `dbtool settings unset KEY`)",
                if long.len() == 1 { "it" } else { "them" },
            )));
        }
        manager.get_connection().execute_unprepared(NARROW).await?;
        Ok(())
    }
}
