//! NeuraChar: one migration per table, in foreign-key order, then the foreign keys' indexes,
//! as SeaORM migrations.
use crate::{AppMigrator, Step};

pub mod m20251212_000001_create_users;
pub mod m20251212_000002_create_email_login_codes;
pub mod m20251212_000003_create_characters;
pub mod m20251212_000004_create_chats;
pub mod m20251212_000005_create_messages;
pub mod m20251212_000006_add_foreign_key_indexes;

pub struct Migrator;

// `up`/`down` (and refresh, reset, fresh) go through the engine: see `engine::migrator`.
crate::engine_migrator!(Migrator, crate::App::Neurachar);

impl AppMigrator for Migrator {
    const APP: &'static str = "neurachar";
    fn steps() -> Vec<Box<dyn Step>> {
        vec![
            Box::new(m20251212_000001_create_users::Migration),
            Box::new(m20251212_000002_create_email_login_codes::Migration),
            Box::new(m20251212_000003_create_characters::Migration),
            Box::new(m20251212_000004_create_chats::Migration),
            Box::new(m20251212_000005_create_messages::Migration),
            Box::new(m20251212_000006_add_foreign_key_indexes::Migration),
        ]
    }
}
