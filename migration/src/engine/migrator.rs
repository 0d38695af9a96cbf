//! SeaORM's own entry points made safe: the apps' `MigratorTrait::up`/`down` (and `refresh`,
//! `reset`, `fresh`) go through the engine, so `migration::neurachar::Migrator::up(&db, None)`
//! in an application's start-up takes the lock, runs each step in its own transaction with
//! its record, and builds exactly the schema the CLI builds.
//!
//! What differs from sea-orm-migration's own versions, on purpose:
//! - a transaction cannot be passed in (the engine needs the connection to hold the lock
//!   across steps and to commit each one): passing one is an error, never a silent unlocked run;
//! - `reset` rolls everything back but keeps `seaql_migrations` (empty) and dbtool's own
//!   tables; `fresh` is `reset` then `up`: objects the migrations did not create stay.

use super::app::App;
use super::error::Error;
use super::report::NoHooks;
use super::run::{Command, Engine, Options};
use super::target::Target;
use sea_orm::{DatabaseExecutor, DbErr};

fn db_err(e: Error) -> DbErr {
    match e {
        Error::Db(e) => e,
        other => DbErr::Migration(other.to_string()),
    }
}

fn connection<'c>(exec: DatabaseExecutor<'c>) -> Result<&'c sea_orm::DatabaseConnection, DbErr> {
    match exec {
        DatabaseExecutor::Connection(c) => Ok(c),
        _ => Err(DbErr::Migration(
            "pass the DatabaseConnection, not a transaction: the migration engine runs each migration in its own transaction and holds the migration lock on its connection".into(),
        )),
    }
}

async fn run(
    app: App,
    exec: DatabaseExecutor<'_>,
    up: bool,
    steps: Option<u32>,
) -> Result<(), DbErr> {
    let db = connection(exec)?;
    let opts = Options {
        allow_data_loss: true,
        ..Options::for_app(app)
    };
    let target = match (up, steps) {
        (true, None) => Target::Head,
        (false, None) => Target::Base,
        (_, Some(0)) => return Ok(()),
        (true, Some(n)) => {
            let probe = Engine::new(db, opts.clone()).await.map_err(db_err)?;
            let pending = probe.status().await.map_err(db_err)?.overview.pending();
            Target::Relative((n as usize).min(pending) as i32)
        }
        (false, Some(n)) => {
            let probe = Engine::new(db, opts.clone()).await.map_err(db_err)?;
            let applied = probe.status().await.map_err(db_err)?.overview.position();
            Target::Relative(-((n as usize).min(applied) as i32))
        }
    };
    if target == Target::Relative(0) {
        return Ok(());
    }
    let cmd = if up {
        Command::Upgrade(target)
    } else {
        Command::Downgrade(target)
    };
    let engine = Engine::new(db, opts).await.map_err(db_err)?;
    engine
        .run(&cmd, &mut NoHooks)
        .await
        .map(|_| ())
        .map_err(db_err)
}

/// `MigratorTrait::up` through the engine.
pub async fn up(app: App, exec: DatabaseExecutor<'_>, steps: Option<u32>) -> Result<(), DbErr> {
    run(app, exec, true, steps).await
}

/// `MigratorTrait::down` through the engine (it drops tables with their rows, as SeaORM's
/// `down` does).
pub async fn down(app: App, exec: DatabaseExecutor<'_>, steps: Option<u32>) -> Result<(), DbErr> {
    run(app, exec, false, steps).await
}

/// Implements `MigratorTrait` for an app's migrator so that every entry point that changes
/// the schema goes through the engine.
#[macro_export]
macro_rules! engine_migrator {
    ($ty:ty, $app:expr) => {
        #[$crate::sea_orm_migration::async_trait::async_trait]
        impl $crate::sea_orm_migration::MigratorTrait for $ty {
            fn migrations() -> Vec<Box<dyn $crate::sea_orm_migration::MigrationTrait>> {
                $crate::upcast(<$ty as $crate::AppMigrator>::steps())
            }

            async fn up<'c, C>(
                db: C,
                steps: Option<u32>,
            ) -> Result<(), $crate::sea_orm_migration::DbErr>
            where
                C: $crate::sea_orm_migration::IntoSchemaManagerConnection<'c>,
            {
                $crate::engine::migrator::up($app, db.into_database_executor(), steps).await
            }

            async fn down<'c, C>(
                db: C,
                steps: Option<u32>,
            ) -> Result<(), $crate::sea_orm_migration::DbErr>
            where
                C: $crate::sea_orm_migration::IntoSchemaManagerConnection<'c>,
            {
                $crate::engine::migrator::down($app, db.into_database_executor(), steps).await
            }

            async fn refresh<'c, C>(db: C) -> Result<(), $crate::sea_orm_migration::DbErr>
            where
                C: $crate::sea_orm_migration::IntoSchemaManagerConnection<'c>,
            {
                let exec = db.into_database_executor();
                let conn = match &exec {
                    $crate::sea_orm_migration::sea_orm::DatabaseExecutor::Connection(c) => *c,
                    _ => return $crate::engine::migrator::down($app, exec, None).await,
                };
                $crate::engine::migrator::down($app, conn.into(), None).await?;
                $crate::engine::migrator::up($app, conn.into(), None).await
            }

            async fn reset<'c, C>(db: C) -> Result<(), $crate::sea_orm_migration::DbErr>
            where
                C: $crate::sea_orm_migration::IntoSchemaManagerConnection<'c>,
            {
                $crate::engine::migrator::down($app, db.into_database_executor(), None).await
            }

            async fn fresh<'c, C>(db: C) -> Result<(), $crate::sea_orm_migration::DbErr>
            where
                C: $crate::sea_orm_migration::IntoSchemaManagerConnection<'c>,
            {
                Self::refresh(db).await
            }
        }
    };
}
