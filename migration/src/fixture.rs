//! A test-only app (feature `fixtures`): three small tables, one migration that can be made
//! slow and one that can be made to fail halfway, so the test suite can interrupt, kill and
//! break real runs of the real binary. Controlled by `DBTOOL_FIXTURE_SLEEP_MS`,
//! `DBTOOL_FIXTURE_SLOW_SQL_MS`, `DBTOOL_FIXTURE_FAIL` and `DBTOOL_FIXTURE_INDEX`.

use crate::{AppMigrator, Step, StepInfo};
use sea_orm_migration::prelude::*;

pub struct Migrator;

// `up`/`down` (and refresh, reset, fresh) go through the engine: see `engine::migrator`.
crate::engine_migrator!(Migrator, crate::App::Fixture);

impl AppMigrator for Migrator {
    const APP: &'static str = "fixture";
    fn steps() -> Vec<Box<dyn Step>> {
        vec![Box::new(Alpha), Box::new(Beta), Box::new(Gamma)]
    }
}

#[derive(DeriveIden)]
enum T {
    Id,
    Note,
}

/// Every statement is guarded, as migrations must be where DDL does not roll back (MySQL):
/// a step interrupted halfway completes when it runs again.
fn table(name: &str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(name))
        .if_not_exists()
        .col(ColumnDef::new(T::Id).integer().not_null().primary_key())
        .col(ColumnDef::new(T::Note).text().null())
        .to_owned()
}

async fn drop(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned())
        .await
}

pub struct Alpha;
pub const ALPHA: StepInfo = StepInfo {
    name: "f001_create_alpha",
    alias: None,
    description: "Create table alpha",
    creates_tables: &["alpha"],
};
crate::step_name!(Alpha, ALPHA);

#[async_trait::async_trait]
impl MigrationTrait for Alpha {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(table("alpha")).await
    }
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, "alpha").await
    }
}

pub struct Beta;
pub const BETA: StepInfo = StepInfo {
    name: "f002_create_beta_slowly",
    alias: None,
    description: "Create table beta, then wait DBTOOL_FIXTURE_SLEEP_MS before finishing",
    creates_tables: &["beta"],
};
crate::step_name!(Beta, BETA);

#[async_trait::async_trait]
impl MigrationTrait for Beta {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(table("beta")).await?;
        // Capturing the statements offline (checksums, --sql) must not wait.
        let offline = matches!(
            manager.get_connection(),
            sea_orm::DatabaseExecutor::Connection(c) if sea_orm::ConnectionTrait::is_mock_connection(*c)
        );
        let ms: u64 = std::env::var("DBTOOL_FIXTURE_SLEEP_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            * u64::from(!offline);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        // A slow statement on the server, for the statement timeout.
        let slow_sql: u64 = std::env::var("DBTOOL_FIXTURE_SLOW_SQL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let sleep = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => Some("pg_sleep"),
            sea_orm::DbBackend::MySql => Some("SLEEP"),
            _ => None,
        };
        if let (true, Some(sleep)) = (slow_sql > 0 && !offline, sleep) {
            manager
                .get_connection()
                .execute_unprepared(&format!("SELECT {sleep}({})", slow_sql as f64 / 1000.0))
                .await?;
        }
        let insert = match manager.get_database_backend() {
            sea_orm::DbBackend::MySql => {
                "INSERT IGNORE INTO beta (id, note) VALUES (1, 'written after the wait')"
            }
            _ => "INSERT INTO beta (id, note) VALUES (1, 'written after the wait') ON CONFLICT DO NOTHING",
        };
        manager.get_connection().execute_unprepared(insert).await?;
        Ok(())
    }
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, "beta").await
    }
}

pub struct Gamma;
pub const GAMMA: StepInfo = StepInfo {
    name: "f003_create_gamma_or_fail",
    alias: None,
    description: "Create table gamma, then fail if DBTOOL_FIXTURE_FAIL is set",
    creates_tables: &["gamma"],
};
crate::step_name!(Gamma, GAMMA);

#[async_trait::async_trait]
impl MigrationTrait for Gamma {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(table("gamma")).await?;
        // A plain index build on an existing table, for lint's review of a run.
        if std::env::var_os("DBTOOL_FIXTURE_INDEX").is_some() {
            manager
                .get_connection()
                .execute_unprepared("CREATE INDEX IF NOT EXISTS ix_alpha_note ON alpha (note)")
                .await?;
        }
        if std::env::var_os("DBTOOL_FIXTURE_FAIL").is_some() {
            manager
                .get_connection()
                .execute_unprepared("INSERT INTO no_such_table_fixture VALUES (1)")
                .await?;
        }
        Ok(())
    }
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, "gamma").await
    }
}
