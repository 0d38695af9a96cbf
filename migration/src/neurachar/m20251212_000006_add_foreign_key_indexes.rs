//! NeuraChar: indexes for the foreign keys on the hot paths. Without them opening a chat (its
//! messages in order) and deleting a chat (the cascade into `messages`) scan all of
//! `messages`, and deleting a user or character scans `chats`/`characters`.
//!
//! PostgreSQL builds them `CONCURRENTLY`, so a live table keeps taking writes; that cannot run
//! in a transaction, hence `use_transaction() == Some(false)`. The migration lock stays held
//! (it is a session lock on the same connection). A failed concurrent build leaves an INVALID
//! index behind, so `up` first drops invalid indexes of these names and then creates whatever
//! is missing: re-running `upgrade` after any failure repairs the state. A name taken by
//! anything else (another index, a table) refuses the step before it changes anything:
//! `IF NOT EXISTS` would skip the index and the step would be recorded without it.
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

/// PostgreSQL: does anything in the current schema carry one of `names`? One look-up by name
/// for all of them, without reading a catalog table: on a first run none exists and nothing
/// more is asked. The column is called `has_index` like sea-schema's existence probes, which
/// `upgrade --sql` answers offline.
async fn pg_any_named(manager: &SchemaManager<'_>, names: &[&str]) -> Result<bool, DbErr> {
    let any = (1..=names.len())
        .map(|i| {
            format!("to_regclass(quote_ident(current_schema()) || '.' || quote_ident(${i})) IS NOT NULL")
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT ({any}) AS has_index"),
            names.iter().map(|n| (*n).into()),
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no row from the index-name probe".into()))?;
    row.try_get("", "has_index")
}

/// What carries the name of one of [`INDEXES`] already.
struct Found {
    name: String,
    /// "index", or what else the name is taken by ("table", "view", ...).
    kind: String,
    table: String,
    /// Key columns in order, comma-separated.
    columns: String,
    /// Not unique, not partial, not on expressions, a B-tree: what `create` builds.
    plain: bool,
    /// False for a PostgreSQL index left INVALID by a failed concurrent build.
    valid: bool,
    /// The server's own text of it (`pg_get_indexdef`, SQLite's `sql`), where there is one.
    definition: Option<String>,
}

impl Found {
    fn is(&self, ix: &FkIndex) -> bool {
        self.kind == "index"
            && self.plain
            && self.table == ix.table
            && self.columns == ix.columns.join(",")
    }

    /// The refusal when the name is taken by something else: `IF NOT EXISTS` would skip
    /// the index and record the step as done without it.
    fn refusal(&self) -> DbErr {
        let what = match (self.kind.as_str(), &self.definition) {
            // What makes it special is best said by the server's own text.
            ("index", Some(def)) if !self.plain => format!("an index ({def})"),
            ("index", _) => format!(
                "an index on {}({}){}",
                self.table,
                self.columns.replace(',', ", "),
                if self.plain {
                    ""
                } else {
                    " that is unique, partial, descending, with another collation, on expressions, with included columns or not a B-tree"
                }
            ),
            (other, _) => format!("a {other}"),
        };
        DbErr::Migration(format!(
            "{} already exists and is not this migration's index: it is {what}; nothing was \
             changed; rename or drop it, then run the upgrade again",
            self.name
        ))
    }
}

/// Everything that carries one of `INDEXES`' names, with what it is.
async fn existing(manager: &SchemaManager<'_>) -> Result<Vec<Found>, DbErr> {
    let backend = manager.get_database_backend();
    let conn = manager.get_connection();
    let mut found = Vec::new();
    match backend {
        DbBackend::Postgres => {
            let params = (1..=INDEXES.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT c.relname::text AS name, c.relkind::text AS kind, \
                 COALESCE(t.relname::text, '') AS tab, \
                 COALESCE((SELECT string_agg(COALESCE(a.attname::text, '<expression>'), ',' ORDER BY k.n) \
                   FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
                   LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                   WHERE k.n <= i.indnkeyatts), '') AS cols, \
                 COALESCE(NOT i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL \
                   AND i.indnatts = i.indnkeyatts AND am.amname = 'btree' \
                   AND NOT EXISTS (SELECT 1 FROM unnest(i.indoption::int2[]) AS o(v) WHERE o.v <> 0), \
                   false) AS plain, \
                 COALESCE(i.indisvalid, true) AS valid, \
                 CASE WHEN c.relkind = 'i' THEN pg_catalog.pg_get_indexdef(c.oid) END AS def \
                 FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid \
                 LEFT JOIN pg_catalog.pg_class t ON t.oid = i.indrelid \
                 LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam \
                 WHERE n.nspname = current_schema() AND c.relname IN ({params})"
            );
            let rows = conn
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    sql,
                    INDEXES.iter().map(|ix| ix.name.into()),
                ))
                .await?;
            for r in rows {
                let kind: String = r.try_get("", "kind")?;
                found.push(Found {
                    name: r.try_get("", "name")?,
                    kind: match kind.as_str() {
                        "i" => "index",
                        "r" | "p" => "table",
                        "v" => "view",
                        "m" => "materialized view",
                        "S" => "sequence",
                        "f" => "foreign table",
                        "I" => "partitioned index",
                        _ => "relation",
                    }
                    .to_owned(),
                    table: r.try_get("", "tab")?,
                    columns: r.try_get("", "cols")?,
                    plain: r.try_get("", "plain")?,
                    valid: r.try_get("", "valid")?,
                    definition: r.try_get("", "def")?,
                });
            }
        }
        DbBackend::MySql => {
            for ix in INDEXES {
                // Index names are per table here: only `ix.table` can hold a clash.
                if !manager.has_index(ix.table, ix.name).await? {
                    continue;
                }
                let row = conn
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        "SELECT CAST(GROUP_CONCAT(column_name ORDER BY seq_in_index SEPARATOR ',') AS CHAR) AS cols, \
                         CAST(MIN(non_unique) = 1 AND MAX(index_type) = 'BTREE' AND MAX(sub_part) IS NULL \
                           AND SUM(COALESCE(collation, '') <> 'A') = 0 AS SIGNED) AS plain \
                         FROM information_schema.statistics \
                         WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
                        [ix.table.into(), ix.name.into()],
                    ))
                    .await?;
                let (columns, plain) = match row {
                    Some(r) => (
                        r.try_get::<Option<String>>("", "cols")?.unwrap_or_default(),
                        r.try_get::<Option<i64>>("", "plain")?.unwrap_or(0) == 1,
                    ),
                    None => (String::new(), false),
                };
                found.push(Found {
                    name: ix.name.to_owned(),
                    kind: "index".to_owned(),
                    table: ix.table.to_owned(),
                    columns,
                    plain,
                    valid: true,
                    definition: None,
                });
            }
        }
        _ => {
            for ix in INDEXES {
                // One namespace, without regard to case, for the tables, indexes and views of
                // the file (triggers have their own).
                let taken = conn
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        "SELECT COUNT(*) > 0 AS has_index FROM sqlite_master \
                         WHERE name = ? COLLATE NOCASE AND type <> 'trigger'",
                        [ix.name.into()],
                    ))
                    .await?
                    .map(|r| r.try_get::<bool>("", "has_index"))
                    .transpose()?
                    .unwrap_or(false);
                if !taken {
                    continue;
                }
                let row = conn
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        "SELECT m.type AS kind, m.tbl_name AS tab, \
                         COALESCE((SELECT group_concat(COALESCE(name, '<expression>'), ',') FROM \
                           (SELECT name FROM pragma_index_info(m.name) ORDER BY seqno)), '') AS cols, \
                         COALESCE((SELECT NOT \"unique\" AND NOT partial \
                           FROM pragma_index_list(m.tbl_name) WHERE name = m.name), 0) \
                         AND NOT EXISTS (SELECT 1 FROM pragma_index_xinfo(m.name) \
                           WHERE \"key\" = 1 AND (\"desc\" <> 0 OR coll <> 'BINARY')) AS plain, \
                         m.sql AS def \
                         FROM sqlite_master m WHERE m.name = ? COLLATE NOCASE AND m.type <> 'trigger'",
                        [ix.name.into()],
                    ))
                    .await?
                    .ok_or_else(|| DbErr::Custom(format!("{} vanished while looked at", ix.name)))?;
                found.push(Found {
                    name: ix.name.to_owned(),
                    kind: row.try_get("", "kind")?,
                    table: row.try_get("", "tab")?,
                    columns: row.try_get("", "cols")?,
                    plain: row.try_get("", "plain")?,
                    valid: true,
                    definition: row.try_get("", "def")?,
                });
            }
        }
    }
    Ok(found)
}

/// Refuses, before anything changes, when one of the names is taken by something that is
/// not this migration's index (valid). Returns the names of INVALID leftovers to build again.
async fn check_names(manager: &SchemaManager<'_>) -> Result<Vec<&'static str>, DbErr> {
    let found = existing(manager).await?;
    let mut invalid = Vec::new();
    for ix in INDEXES {
        if let Some(f) = found.iter().find(|f| f.name == ix.name) {
            // An INVALID index serves no query: whatever its definition, it is what a
            // failed build of this name leaves, and is built again.
            if f.kind == "index" && !f.valid {
                invalid.push(ix.name);
            } else if !f.is(ix) {
                return Err(f.refusal());
            }
        }
    }
    Ok(invalid)
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
                // A name taken already is rare (a half-done run, or someone else's object):
                // only then is each one looked at.
                let names: Vec<&str> = INDEXES.iter().map(|ix| ix.name).collect();
                let invalid = match pg_any_named(manager, &names).await? {
                    true => check_names(manager).await?,
                    false => Vec::new(),
                };
                for ix in INDEXES {
                    if invalid.contains(&ix.name) {
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
                check_names(manager).await?;
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
                check_names(manager).await?;
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
