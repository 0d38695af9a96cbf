//! NeuraChar: indexes for the foreign keys on the hot paths. Without them opening a chat (its
//! messages in order) and deleting a chat (the cascade into `messages`) scan all of
//! `messages`, and deleting a user or character scans `chats`/`characters`.
//!
//! PostgreSQL builds them `CONCURRENTLY`, so a live table keeps taking writes; that cannot run
//! in a transaction, hence `use_transaction() == Some(false)`. The migration lock stays held
//! (it is a session lock on the same connection). A failed concurrent build leaves an INVALID
//! index behind, so `up` first drops invalid indexes of these names and then creates whatever
//! is missing: re-running `upgrade` after any failure repairs the state.
//!
//! MySQL/MariaDB already index every foreign key column implicitly (an index named after the
//! constraint) and drop that index once another one can serve the key; it then refuses to
//! drop ours ("needed in a foreign key constraint"). `down` therefore puts the constraint-named
//! index back in the same `ALTER TABLE` that drops ours, which restores the schema exactly.
use crate::StepInfo;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

pub struct Migration;

pub const INFO: StepInfo = StepInfo {
    name: "m20251212_000006_add_foreign_key_indexes",
    alias: None,
    description: "Index the foreign keys: messages(chat_id, created_at), chats(user_id), \
                  chats(character_id), characters(creator_id)",
    creates_tables: &[],
};

crate::step_name!(Migration, INFO);

/// One index of this migration and the foreign key it serves.
pub struct FkIndex {
    pub name: &'static str,
    pub table: &'static str,
    /// In index order.
    pub columns: &'static [&'static str],
    /// The foreign key constraint (and MySQL's implicit index of the same name).
    pub constraint: &'static str,
    pub constraint_column: &'static str,
}

/// The indexes, in the order they are built (the largest table first).
pub const INDEXES: &[FkIndex] = &[
    FkIndex {
        name: "ix_messages_chat_id_created_at",
        table: "messages",
        columns: &["chat_id", "created_at"],
        constraint: "messages_chat_id_fkey",
        constraint_column: "chat_id",
    },
    FkIndex {
        name: "ix_chats_user_id",
        table: "chats",
        columns: &["user_id"],
        constraint: "chats_user_id_fkey",
        constraint_column: "user_id",
    },
    FkIndex {
        name: "ix_chats_character_id",
        table: "chats",
        columns: &["character_id"],
        constraint: "chats_character_id_fkey",
        constraint_column: "character_id",
    },
    FkIndex {
        name: "ix_characters_creator_id",
        table: "characters",
        columns: &["creator_id"],
        constraint: "characters_creator_id_fkey",
        constraint_column: "creator_id",
    },
];

fn create(ix: &FkIndex) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(ix.name).table(Alias::new(ix.table));
    for c in ix.columns {
        stmt.col(Alias::new(*c));
    }
    stmt
}

fn drop_stmt(ix: &FkIndex) -> IndexDropStatement {
    Index::drop()
        .name(ix.name)
        .table(Alias::new(ix.table))
        .if_exists()
        .to_owned()
}

/// PostgreSQL: does the current schema hold an INVALID index named one of `names` (what a
/// failed or cancelled `CREATE INDEX CONCURRENTLY` leaves)? The column is called `has_index`
/// like sea-schema's existence probes, which `upgrade --sql` answers offline.
async fn pg_has_invalid_index(manager: &SchemaManager<'_>, names: &[&str]) -> Result<bool, DbErr> {
    let params = (1..=names.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT COUNT(*) > 0 AS has_index FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relname IN ({params}) \
                 AND NOT i.indisvalid"
            ),
            names.iter().map(|n| (*n).into()),
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no row from the invalid-index probe".into()))?;
    row.try_get("", "has_index")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// `CREATE/DROP INDEX CONCURRENTLY` refuse to run inside a transaction. The engine still
    /// runs this step in one on SQLite, whose DDL rolls back; MySQL has no transactional DDL.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                // One probe for all of them: a leftover is rare, and then each is looked at.
                let names: Vec<&str> = INDEXES.iter().map(|ix| ix.name).collect();
                let leftovers = pg_has_invalid_index(manager, &names).await?;
                for ix in INDEXES {
                    if leftovers && pg_has_invalid_index(manager, &[ix.name]).await? {
                        manager
                            .drop_index(drop_stmt(ix).concurrently().to_owned())
                            .await?;
                    }
                    manager
                        .create_index(create(ix).concurrently().if_not_exists().to_owned())
                        .await?;
                }
            }
            // MySQL ignores IF NOT EXISTS on indexes: look first, so a half-done run can be
            // re-run. The server drops its own implicit index of a key once ours serves it,
            // but not one that `down` created explicitly: that goes here, once ours exists
            // (otherwise upgrade -> downgrade -> upgrade leaves both).
            DbBackend::MySql => {
                for ix in INDEXES {
                    if !manager.has_index(ix.table, ix.name).await? {
                        manager.create_index(create(ix)).await?;
                    }
                    if manager.has_index(ix.table, ix.constraint).await? {
                        manager
                            .drop_index(
                                Index::drop()
                                    .name(ix.constraint)
                                    .table(Alias::new(ix.table))
                                    .to_owned(),
                            )
                            .await?;
                    }
                }
            }
            _ => {
                for ix in INDEXES {
                    manager
                        .create_index(create(ix).if_not_exists().to_owned())
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                for ix in INDEXES.iter().rev() {
                    manager
                        .drop_index(drop_stmt(ix).concurrently().to_owned())
                        .await?;
                }
            }
            DbBackend::MySql => {
                for ix in INDEXES.iter().rev() {
                    if !manager.has_index(ix.table, ix.name).await? {
                        continue;
                    }
                    // One statement, so the foreign key is never without an index.
                    let restore = format!(
                        "ALTER TABLE `{}` ADD INDEX `{}` (`{}`), DROP INDEX `{}`",
                        ix.table, ix.constraint, ix.constraint_column, ix.name
                    );
                    match manager.get_connection().execute_unprepared(&restore).await {
                        Ok(_) => {}
                        // The server kept its own index next to ours: ours can simply go.
                        Err(e) if e.to_string().contains("Duplicate key name") => {
                            manager
                                .drop_index(
                                    Index::drop()
                                        .name(ix.name)
                                        .table(Alias::new(ix.table))
                                        .to_owned(),
                                )
                                .await?;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            _ => {
                for ix in INDEXES.iter().rev() {
                    manager.drop_index(drop_stmt(ix)).await?;
                }
            }
        }
        Ok(())
    }
}
