//! The schema history of both applications as reversible sea-orm-migration steps.
//!
//! Each migration carries a static [`StepInfo`] (explicit name, Alembic alias, one-line
//! description, the tables it creates) so that the CLI never has to guess from file stems.

pub mod avatar;
pub mod neurachar;

pub use sea_orm_migration;
use sea_orm_migration::prelude::*;

/// Static facts about one migration: the single source of its name, alias and description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepInfo {
    /// The version recorded in `seaql_migrations`.
    pub name: &'static str,
    /// The Alembic revision id this migration mirrors, if any.
    pub alias: Option<&'static str>,
    /// One line saying what the migration does.
    pub description: &'static str,
    /// Tables that `up` creates and `down` drops, in creation order.
    pub creates_tables: &'static [&'static str],
}

/// A migration that knows its own [`StepInfo`].
pub trait Step: MigrationTrait {
    fn info(&self) -> &'static StepInfo;
}

/// A migrator whose steps carry [`StepInfo`]; `migrations()` is derived from `steps()`.
pub trait AppMigrator: MigratorTrait {
    /// The application this migrator belongs to, as spelled on the command line.
    const APP: &'static str;
    fn steps() -> Vec<Box<dyn Step>>;
    fn infos() -> Vec<&'static StepInfo> {
        Self::steps().iter().map(|s| s.info()).collect()
    }
}

/// Implements `MigrationName` from a migration's `INFO` constant.
#[macro_export]
macro_rules! step_name {
    ($ty:ty, $info:expr) => {
        impl $crate::sea_orm_migration::MigrationName for $ty {
            fn name(&self) -> &str {
                $info.name
            }
        }
        impl $crate::Step for $ty {
            fn info(&self) -> &'static $crate::StepInfo {
                &$info
            }
        }
    };
}

/// `Box<dyn Step>` → `Box<dyn MigrationTrait>` for `MigratorTrait::migrations`.
pub fn upcast(steps: Vec<Box<dyn Step>>) -> Vec<Box<dyn MigrationTrait>> {
    steps
        .into_iter()
        .map(|s| s as Box<dyn MigrationTrait>)
        .collect()
}
