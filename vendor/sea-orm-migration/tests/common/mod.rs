pub mod migration;
pub mod migrator;
