//! Avatar Data Generator: the two Alembic revisions as SeaORM migrations, then dbtool's own
//! steps (not Alembic revisions: an adopted database has them pending).
use crate::{AppMigrator, Step};

pub mod m20260130_093115_initial_migration;
pub mod m20260130_113328_create_settings_table;
pub mod m20261201_000001_widen_settings_value;

pub use m20260130_113328_create_settings_table::DEFAULT_PROMPTS;
pub use m20261201_000001_widen_settings_value::MYSQL_TEXT_MAX_BYTES;

pub struct Migrator;

// `up`/`down` (and refresh, reset, fresh) go through the engine: see `engine::migrator`.
crate::engine_migrator!(Migrator, crate::App::Avatar);

impl AppMigrator for Migrator {
    const APP: &'static str = "avatar";
    fn steps() -> Vec<Box<dyn Step>> {
        vec![
            Box::new(m20260130_093115_initial_migration::Migration),
            Box::new(m20260130_113328_create_settings_table::Migration),
            Box::new(m20261201_000001_widen_settings_value::Migration),
        ]
    }
}
