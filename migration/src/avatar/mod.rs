//! Avatar Data Generator: the two Alembic revisions as SeaORM migrations.
use crate::{upcast, AppMigrator, Step};
use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        upcast(Self::steps())
    }
}

impl AppMigrator for Migrator {
    const APP: &'static str = "avatar";
    fn steps() -> Vec<Box<dyn Step>> {
        vec![]
    }
}
