//! The applications dbtool manages, and the one place that dispatches to their migrators.

use crate::{AppMigrator, StepInfo};
use sea_orm::DbErr;
use sea_orm_migration::{IntoSchemaManagerConnection, MigratorTrait};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    Avatar,
    Neurachar,
    #[cfg(feature = "fixtures")]
    Fixture,
}

/// Expands `$body` with `$m` bound to the migrator type of `$app`.
macro_rules! with_migrator {
    ($app:expr, $m:ident => $body:expr) => {
        match $app {
            App::Avatar => {
                type $m = $crate::avatar::Migrator;
                $body
            }
            App::Neurachar => {
                type $m = $crate::neurachar::Migrator;
                $body
            }
            #[cfg(feature = "fixtures")]
            App::Fixture => {
                type $m = $crate::fixture::Migrator;
                $body
            }
        }
    };
}

impl App {
    /// The applications a database can belong to (fixtures excluded).
    pub const REAL: [App; 2] = [App::Avatar, App::Neurachar];

    pub fn name(self) -> &'static str {
        with_migrator!(self, M => <M as AppMigrator>::APP)
    }

    /// The application's name as people write it.
    pub fn title(self) -> &'static str {
        match self {
            App::Avatar => "Avatar Data Generator",
            App::Neurachar => "NeuraChar",
            #[cfg(feature = "fixtures")]
            App::Fixture => "the test fixture",
        }
    }

    /// The app called `name` (as on the command line).
    pub fn from_name(name: &str) -> Option<App> {
        App::REAL.into_iter().find(|a| a.name() == name).or({
            #[cfg(feature = "fixtures")]
            {
                (name == "fixture").then_some(App::Fixture)
            }
            #[cfg(not(feature = "fixtures"))]
            {
                None
            }
        })
    }

    /// Every migration of the app, in order.
    pub fn steps(self) -> Vec<&'static StepInfo> {
        with_migrator!(self, M => M::infos())
    }

    /// The migration objects of the app, in order (for offline SQL and scratch databases).
    pub fn objects(self) -> Vec<Box<dyn crate::Step>> {
        with_migrator!(self, M => M::steps())
    }

    /// The Alembic revision ids the app knows, if it came from Alembic.
    pub fn has_aliases(self) -> bool {
        self.steps().iter().any(|s| s.alias.is_some())
    }

    /// Applies the first pending migration through sea-orm-migration (its transaction and
    /// bookkeeping row included).
    pub async fn up_one<'c, C: IntoSchemaManagerConnection<'c>>(self, c: C) -> Result<(), DbErr> {
        with_migrator!(self, M => M::up(c, Some(1)).await)
    }

    /// Rolls back the last applied migration through sea-orm-migration.
    pub async fn down_one<'c, C: IntoSchemaManagerConnection<'c>>(self, c: C) -> Result<(), DbErr> {
        with_migrator!(self, M => M::down(c, Some(1)).await)
    }
}

impl std::fmt::Display for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
