//! The migrations themselves, driven through the migrators (no binary): step-by-step upgrade
//! and downgrade of both applications on every backend, checked against the catalog; on
//! PostgreSQL against the spec files byte for byte.
use crate::common::introspect::{self, Catalog, Column, Fk, Index};
use crate::common::{Backend, TestDb};
use crate::on_all_backends;
use migration::sea_orm_migration::SchemaManager;
use migration::{avatar, neurachar, AppMigrator, StepInfo};
use sea_orm::DatabaseConnection;
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------------
// The expected schema, backend-neutral.

#[derive(Debug, Clone, Copy)]
enum Ty {
    /// `serial` on PostgreSQL, `int AUTO_INCREMENT` on MySQL, `integer ... AUTOINCREMENT` on SQLite.
    Serial,
    Varchar(u32),
    Text,
    Timestamp,
    Bool,
    Uuid,
    Jsonb,
}

#[derive(Debug, Clone, Copy)]
enum Def {
    None,
    Now,
    False,
    Str(&'static str),
}

struct Col(&'static str, Ty, bool, Def);

struct TableSpec {
    name: &'static str,
    /// Index into the app's steps of the migration that creates it.
    step: usize,
    pk: &'static [&'static str],
    cols: &'static [Col],
    /// Named unique indexes created with CREATE UNIQUE INDEX.
    unique_indexes: &'static [(&'static str, &'static str)],
    /// Columns with an inline UNIQUE (PostgreSQL names the constraint `<table>_<col>_key`).
    unique_cols: &'static [&'static str],
    /// `(name, column, ref_table, ref_column, on_delete)`
    fks: &'static [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )],
}

use Def as D;
use Ty as T;

const AVATAR: &[TableSpec] = &[
    TableSpec {
        name: "users",
        step: 0,
        pk: &["id"],
        cols: &[
            Col("id", T::Serial, false, D::None),
            Col("email", T::Varchar(255), false, D::None),
            Col("password_hash", T::Varchar(255), false, D::None),
            Col("created_at", T::Timestamp, false, D::None),
            Col("last_login", T::Timestamp, true, D::None),
            Col("is_active", T::Bool, false, D::None),
        ],
        unique_indexes: &[("ix_users_email", "email")],
        unique_cols: &[],
        fks: &[],
    },
    TableSpec {
        name: "settings",
        step: 1,
        pk: &["id"],
        cols: &[
            Col("id", T::Serial, false, D::None),
            Col("key", T::Varchar(255), false, D::None),
            Col("value", T::Text, false, D::None),
            Col("created_at", T::Timestamp, false, D::Now),
            Col("updated_at", T::Timestamp, false, D::Now),
        ],
        unique_indexes: &[("ix_settings_key", "key")],
        unique_cols: &[],
        fks: &[],
    },
];

const NEURACHAR: &[TableSpec] = &[
    TableSpec {
        name: "users",
        step: 0,
        pk: &["id"],
        cols: &[
            Col("id", T::Uuid, false, D::None),
            Col("email", T::Varchar(255), false, D::None),
            Col("username", T::Varchar(50), true, D::None),
            Col("avatar_url", T::Text, true, D::None),
            Col("created_at", T::Timestamp, false, D::Now),
            Col("last_login_at", T::Timestamp, true, D::None),
            Col("provider", T::Varchar(50), false, D::Str("email_qq")),
        ],
        unique_indexes: &[],
        unique_cols: &["email"],
        fks: &[],
    },
    TableSpec {
        name: "email_login_codes",
        step: 1,
        pk: &["id"],
        cols: &[
            Col("id", T::Serial, false, D::None),
            Col("email", T::Varchar(255), false, D::None),
            Col("code_hash", T::Varchar(255), false, D::None),
            Col("created_at", T::Timestamp, false, D::Now),
            Col("expires_at", T::Timestamp, false, D::None),
            Col("used_at", T::Timestamp, true, D::None),
            Col("ip_address", T::Varchar(45), true, D::None),
        ],
        unique_indexes: &[],
        unique_cols: &[],
        fks: &[],
    },
    TableSpec {
        name: "characters",
        step: 2,
        pk: &["id"],
        cols: &[
            Col("id", T::Uuid, false, D::None),
            Col("name", T::Varchar(100), false, D::None),
            Col("system_prompt", T::Text, false, D::None),
            Col("greeting_message", T::Text, true, D::None),
            Col("avatar_url", T::Text, true, D::None),
            Col("tags", T::Jsonb, true, D::None),
            Col("is_public", T::Bool, false, D::False),
            Col("creator_id", T::Uuid, true, D::None),
        ],
        unique_indexes: &[],
        unique_cols: &[],
        fks: &[(
            "characters_creator_id_fkey",
            "creator_id",
            "users",
            "id",
            "NO ACTION",
        )],
    },
    TableSpec {
        name: "chats",
        step: 3,
        pk: &["chat_id"],
        cols: &[
            Col("chat_id", T::Uuid, false, D::None),
            Col("user_id", T::Uuid, false, D::None),
            Col("character_id", T::Uuid, false, D::None),
            Col("created_at", T::Timestamp, false, D::Now),
        ],
        unique_indexes: &[],
        unique_cols: &[],
        fks: &[
            (
                "chats_character_id_fkey",
                "character_id",
                "characters",
                "id",
                "NO ACTION",
            ),
            ("chats_user_id_fkey", "user_id", "users", "id", "NO ACTION"),
        ],
    },
    TableSpec {
        name: "messages",
        step: 4,
        pk: &["id"],
        cols: &[
            Col("id", T::Uuid, false, D::None),
            Col("chat_id", T::Uuid, false, D::None),
            Col("role", T::Varchar(20), false, D::None),
            Col("content", T::Text, false, D::None),
            Col("created_at", T::Timestamp, false, D::Now),
        ],
        unique_indexes: &[],
        unique_cols: &[],
        fks: &[(
            "messages_chat_id_fkey",
            "chat_id",
            "chats",
            "chat_id",
            "CASCADE",
        )],
    },
];

/// Plain indexes a later migration adds to tables of the spec: `(table, name, columns)`.
type LaterIndex = (&'static str, &'static str, &'static [&'static str]);

/// What the migrations after the spec file's position (dbtool's own steps, past what the
/// original applications created) change in the spec's tables.
struct Later {
    /// Plain indexes they add.
    indexes: &'static [LaterIndex],
    /// `(table, column)` they widen from `text` to `longtext`, on MySQL/MariaDB only.
    longtext: &'static [(&'static str, &'static str)],
}

/// Nothing changed yet: the schema at or before the spec's position.
const UNCHANGED: Later = Later {
    indexes: &[],
    longtext: &[],
};

/// Avatar's third migration: `settings.value` as `LONGTEXT` on MySQL/MariaDB (TEXT holds only
/// 64 KiB there); nothing elsewhere. The spec file mirrors the Alembic head, the second.
const AVATAR_LATER: Later = Later {
    indexes: &[],
    longtext: &[("settings", "value")],
};

/// NeuraChar's sixth migration: the foreign keys' indexes (not part of the original app's
/// schema, which the spec file mirrors at the fifth migration).
const NEURACHAR_LATER: Later = Later {
    indexes: NEURACHAR_FK_INDEXES,
    longtext: &[],
};

const NEURACHAR_FK_INDEXES: &[LaterIndex] = &[
    (
        "messages",
        "ix_messages_chat_id_created_at",
        &["chat_id", "created_at"],
    ),
    ("chats", "ix_chats_user_id", &["user_id"]),
    ("chats", "ix_chats_character_id", &["character_id"]),
    ("characters", "ix_characters_creator_id", &["creator_id"]),
];

/// The column type as each backend's catalog spells it. MariaDB stores `json` as `longtext`
/// (with a `json_valid` check); MySQL proper keeps `json`.
fn type_ok(b: Backend, ty: Ty, actual: &str) -> bool {
    // SQLite keeps declared types verbatim, except that it upper-cases the standard names
    // (`text` → `TEXT`, `integer` → `INTEGER`).
    let actual = actual.to_lowercase();
    let actual = actual.as_str();
    let expected: &[&str] = match (b, ty) {
        (Backend::Postgres, T::Serial) => &["integer"],
        (Backend::MySql, T::Serial) => &["int(11)", "int"],
        (Backend::Sqlite, T::Serial) => &["integer"],
        (Backend::Postgres, T::Varchar(n)) => {
            return actual == format!("character varying({n})");
        }
        (_, T::Varchar(n)) => return actual == format!("varchar({n})"),
        (_, T::Text) => &["text"],
        (Backend::Postgres, T::Timestamp) => &["timestamp without time zone"],
        (Backend::MySql, T::Timestamp) => &["datetime"],
        (Backend::Sqlite, T::Timestamp) => &["datetime_text"],
        (Backend::Postgres, T::Bool) => &["boolean"],
        (Backend::MySql, T::Bool) => &["tinyint(1)"],
        (Backend::Sqlite, T::Bool) => &["boolean"],
        (Backend::Postgres, T::Uuid) => &["uuid"],
        (Backend::MySql, T::Uuid) => &["binary(16)"],
        (Backend::Sqlite, T::Uuid) => &["uuid_text"],
        (Backend::Postgres, T::Jsonb) => &["jsonb"],
        (Backend::MySql, T::Jsonb) => &["longtext", "json"],
        (Backend::Sqlite, T::Jsonb) => &["jsonb_text"],
    };
    expected.contains(&actual)
}

fn expected_default(b: Backend, table: &str, col: &Col) -> Option<String> {
    let Col(name, ty, _, def) = col;
    match (b, ty, def) {
        (Backend::Postgres, T::Serial, _) => {
            Some(format!("nextval('{table}_{name}_seq'::regclass)"))
        }
        (_, _, D::None) => None,
        (Backend::Postgres, _, D::Now) => Some("now()".into()),
        (Backend::MySql, _, D::Now) => Some("current_timestamp()".into()),
        (Backend::Sqlite, _, D::Now) => Some("CURRENT_TIMESTAMP".into()),
        (Backend::Postgres, _, D::False) => Some("false".into()),
        (Backend::MySql, _, D::False) => Some("0".into()),
        (Backend::Sqlite, _, D::False) => Some("FALSE".into()),
        (Backend::Postgres, _, D::Str(s)) => Some(format!("'{s}'::character varying")),
        (_, _, D::Str(s)) => Some(format!("'{s}'")),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

async fn check_table(conn: &DatabaseConnection, b: Backend, spec: &TableSpec, changes: &Later) {
    let t = spec.name;
    let later: Vec<&LaterIndex> = changes.indexes.iter().filter(|l| l.0 == t).collect();
    let cols: Vec<Column> = introspect::columns(conn, t).await;
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    let want: Vec<&str> = spec.cols.iter().map(|c| c.0).collect();
    assert_eq!(names, want, "{b:?} {t}: columns and their order");
    for (actual, col) in cols.iter().zip(spec.cols) {
        let Col(name, ty, nullable, _) = col;
        if b == Backend::MySql && changes.longtext.contains(&(t, *name)) {
            assert_eq!(
                actual.data_type.to_lowercase(),
                "longtext",
                "{b:?} {t}.{name}: widened"
            );
        } else {
            assert!(
                type_ok(b, *ty, &actual.data_type),
                "{b:?} {t}.{name}: type {} is not {ty:?}",
                actual.data_type
            );
        }
        assert_eq!(actual.nullable, *nullable, "{b:?} {t}.{name}: nullability");
        assert_eq!(
            actual.default,
            expected_default(b, t, col),
            "{b:?} {t}.{name}: default"
        );
        assert_eq!(
            actual.auto_increment,
            matches!(ty, T::Serial),
            "{b:?} {t}.{name}: auto increment"
        );
    }
    assert_eq!(
        introspect::primary_key(conn, t).await,
        spec.pk,
        "{b:?} {t}: primary key"
    );

    let idx: Vec<Index> = introspect::indexes(conn, t).await;
    for (name, col) in spec.unique_indexes {
        let i = idx
            .iter()
            .find(|i| i.name == *name)
            .unwrap_or_else(|| panic!("{b:?} {t}: no index {name} in {idx:#?}"));
        assert!(
            i.unique && !i.primary,
            "{b:?} {t}: {name} must be UNIQUE: {i:?}"
        );
        assert_eq!(i.columns, [*col], "{b:?} {t}: {name} columns");
    }
    for (_, name, cols) in &later {
        let i = idx
            .iter()
            .find(|i| i.name == *name)
            .unwrap_or_else(|| panic!("{b:?} {t}: no index {name} in {idx:#?}"));
        assert!(
            !i.unique && !i.primary,
            "{b:?} {t}: {name} must be a plain index: {i:?}"
        );
        assert_eq!(i.columns, *cols, "{b:?} {t}: {name} columns, in order");
    }
    for col in spec.unique_cols {
        let found = idx
            .iter()
            .find(|i| i.unique && !i.primary && i.columns == [*col])
            .unwrap_or_else(|| panic!("{b:?} {t}: no unique index on ({col}) in {idx:#?}"));
        if b == Backend::Postgres {
            assert_eq!(
                found.name,
                format!("{t}_{col}_key"),
                "{b:?} {t}: unique name"
            );
        }
    }
    // Nothing unique beyond what the spec lists (MySQL also indexes every FK column, SQLite
    // indexes non-integer primary keys: those are not unique or are primary).
    let unique: BTreeSet<Vec<String>> = idx
        .iter()
        .filter(|i| i.unique && !i.primary)
        .map(|i| i.columns.clone())
        .filter(|c| c.as_slice() != spec.pk)
        .collect();
    let want: BTreeSet<Vec<String>> = spec
        .unique_indexes
        .iter()
        .map(|(_, c)| *c)
        .chain(spec.unique_cols.iter().copied())
        .map(|c| vec![c.to_owned()])
        .collect();
    assert_eq!(unique, want, "{b:?} {t}: unique indexes: {idx:#?}");
    if b == Backend::Postgres {
        let names: BTreeSet<&str> = idx.iter().map(|i| i.name.as_str()).collect();
        let want: BTreeSet<String> = std::iter::once(format!("{t}_pkey"))
            .chain(spec.unique_indexes.iter().map(|(n, _)| n.to_string()))
            .chain(spec.unique_cols.iter().map(|c| format!("{t}_{c}_key")))
            .chain(later.iter().map(|l| l.1.to_string()))
            .collect();
        assert_eq!(
            names,
            want.iter().map(String::as_str).collect(),
            "{b:?} {t}: index names"
        );
    }

    let fks: Vec<Fk> = introspect::foreign_keys(conn, t).await;
    let mut want: Vec<Fk> = spec
        .fks
        .iter()
        .map(|(name, col, rt, rc, del)| Fk {
            name: (b != Backend::Sqlite).then(|| name.to_string()),
            columns: vec![col.to_string()],
            ref_table: rt.to_string(),
            ref_columns: vec![rc.to_string()],
            on_update: "NO ACTION".into(),
            on_delete: del.to_string(),
        })
        .collect();
    want.sort_by(|a, b| (&a.name, &a.columns).cmp(&(&b.name, &b.columns)));
    assert_eq!(fks, want, "{b:?} {t}: foreign keys");
}

/// The recorded versions, sorted.
async fn versions(conn: &DatabaseConnection) -> Vec<String> {
    let mut v: Vec<String> = conn
        .rows("SELECT version FROM seaql_migrations", 1)
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    v.sort();
    v
}

/// The tables that steps `0..applied` create, plus `seaql_migrations` once anything ran.
fn expected_tables(specs: &[TableSpec], infos: &[&StepInfo], applied: usize) -> Vec<String> {
    let mut t: Vec<String> = specs
        .iter()
        .filter(|s| s.step < applied)
        .map(|s| s.name.to_owned())
        .collect();
    let from_infos: BTreeSet<&str> = infos[..applied]
        .iter()
        .flat_map(|i| i.creates_tables.iter().copied())
        .collect();
    assert_eq!(
        t.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        from_infos,
        "StepInfo::creates_tables disagrees with the expected schema"
    );
    t.push("seaql_migrations".into());
    t.sort();
    t
}

/// PostgreSQL: the block of every existing table equals the spec file's block for it.
async fn check_pg_blocks(
    conn: &DatabaseConnection,
    spec_text: &str,
    specs: &[TableSpec],
    applied: usize,
) {
    for s in specs.iter().filter(|s| s.step < applied) {
        let live = introspect::pg_table_snapshot(conn, s.name).await;
        let want = spec_block(spec_text, s.name);
        assert_eq!(
            live, want,
            "PostgreSQL table {} differs from the spec",
            s.name
        );
    }
}

/// The `table <name>` block of a spec file, through its last line.
fn spec_block(spec: &str, table: &str) -> String {
    let start = spec
        .find(&format!("\ntable {table}\n"))
        .unwrap_or_else(|| panic!("spec has no table {table}"))
        + 1;
    let rest = &spec[start..];
    let end = rest.find("\n\n").map(|e| e + 1).unwrap_or(rest.len());
    rest[..end].to_owned()
}

const AVATAR_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/spec/avatar.postgres.schema.txt"
);
const NEURACHAR_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/spec/neurachar.postgres.schema.txt"
);

fn read_spec(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the schema spec {path} must exist (it is the contract): {e}"))
}

/// Upgrades one step at a time, then downgrades one step at a time, checking everything after
/// each step; `down` must restore exactly the schema from before the matching `up`. The
/// PostgreSQL spec file describes the schema at position `spec_at`; the migrations after it
/// make the `later` changes. When those add no index they touch nothing but MySQL's column
/// types, so elsewhere the schema after them is exactly the one at `spec_at`.
async fn up_and_down<M: AppMigrator>(
    db: &TestDb,
    specs: &[TableSpec],
    spec_path: &str,
    spec_at: usize,
    later: &Later,
    after_full_up: impl AsyncFnOnce(&DatabaseConnection),
) {
    let b = db.backend;
    let conn = db.connect().await;
    let infos = M::infos();
    let n = infos.len();
    assert_eq!(introspect::tables(&conn).await, Vec::<String>::new());
    let spec_text = (b == Backend::Postgres).then(|| read_spec(spec_path));

    let mut dumps = vec![introspect::dump(&conn).await];
    for k in 1..=n {
        M::up(&conn, Some(1))
            .await
            .unwrap_or_else(|e| panic!("{b:?} {}: up: {e}", infos[k - 1].name));
        assert_eq!(
            introspect::tables(&conn).await,
            expected_tables(specs, &infos, k),
            "{b:?}: tables after up to {}",
            infos[k - 1].name
        );
        let mut want: Vec<String> = infos[..k].iter().map(|i| i.name.to_owned()).collect();
        want.sort();
        assert_eq!(versions(&conn).await, want, "{b:?}: recorded versions");
        let present = if k > spec_at { later } else { &UNCHANGED };
        for s in specs.iter().filter(|s| s.step < k) {
            check_table(&conn, b, s, present).await;
        }
        let like_spec = k <= spec_at || later.indexes.is_empty();
        if let (Some(text), true) = (&spec_text, like_spec) {
            check_pg_blocks(&conn, text, specs, k).await;
        }
        if let (Some(text), true) = (&spec_text, k == spec_at || (k > spec_at && like_spec)) {
            assert_eq!(
                introspect::pg_snapshot(&conn).await,
                *text,
                "the PostgreSQL schema at {} differs from {spec_path}",
                infos[k - 1].name
            );
        }
        let dump = introspect::dump(&conn).await;
        if k > spec_at && like_spec && b != Backend::MySql {
            assert_eq!(
                dump,
                dumps[spec_at],
                "{b:?}: {} must not change the schema here",
                infos[k - 1].name
            );
        }
        if k > spec_at && !later.longtext.is_empty() && b == Backend::MySql {
            assert_ne!(dump, dumps[spec_at], "{b:?}: {} widens", infos[k - 1].name);
        }
        dumps.push(dump);
    }

    // Everything applied; nothing more to do.
    M::up(&conn, None).await.expect("up with nothing pending");
    assert_eq!(versions(&conn).await.len(), n);
    // Every live table and column is documented, the columns in table order.
    for t in introspect::tables(&conn).await {
        if t == "seaql_migrations" {
            continue;
        }
        assert!(
            migration::describe_table(M::APP, &t).is_some(),
            "{} {t}: no description",
            M::APP
        );
        let live: Vec<String> = introspect::columns(&conn, &t)
            .await
            .into_iter()
            .map(|c| c.name)
            .collect();
        for c in &live {
            assert!(
                migration::describe_column(M::APP, &t, c).is_some(),
                "{} {t}.{c}: no description",
                M::APP
            );
        }
        let documented: Vec<&str> = migration::table_doc(M::APP, &t)
            .unwrap()
            .columns
            .iter()
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(live, documented, "{} {t}: documented columns", M::APP);
    }
    after_full_up(&conn).await;

    for k in (0..n).rev() {
        M::down(&conn, Some(1))
            .await
            .unwrap_or_else(|e| panic!("{b:?} {}: down: {e}", infos[k].name));
        assert_eq!(
            introspect::tables(&conn).await,
            expected_tables(specs, &infos, k),
            "{b:?}: tables after down of {}",
            infos[k].name
        );
        let mut want: Vec<String> = infos[..k].iter().map(|i| i.name.to_owned()).collect();
        want.sort();
        assert_eq!(versions(&conn).await, want, "{b:?}: recorded versions");
        assert_eq!(
            introspect::dump(&conn).await,
            dumps[k],
            "{b:?}: down of {} did not restore the previous schema",
            infos[k].name
        );
    }
    assert_eq!(introspect::tables(&conn).await, ["seaql_migrations"]);
    conn.close().await.ok();
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// Where the Alembic history ends in Avatar's steps: the spec file's position.
fn avatar_alembic_head() -> usize {
    avatar::Migrator::infos()
        .iter()
        .position(|i| i.alias == Some("d8cfd3cb4083"))
        .expect("the Alembic head is a step")
        + 1
}

async fn avatar_up_down(db: TestDb) {
    let at = avatar_alembic_head();
    assert_eq!(at, 2);
    assert!(
        avatar::Migrator::infos().len() > at,
        "dbtool's own step follows the Alembic head"
    );
    up_and_down::<avatar::Migrator>(&db, AVATAR, AVATAR_SPEC, at, &AVATAR_LATER, async |conn| {
        let q = if db_is_mysql(conn) { "`key`" } else { "\"key\"" };
        let mut rows: Vec<(String, String)> = conn
            .rows(&format!("SELECT {q}, value FROM settings"), 2)
            .await
            .into_iter()
            .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
            .collect();
        rows.sort();
        let mut want: Vec<(String, String)> = avatar::DEFAULT_PROMPTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        assert_eq!(rows, want, "default bio prompts");
        let keys: BTreeSet<&str> = avatar::DEFAULT_PROMPTS.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "bio_prompt_facebook",
                "bio_prompt_instagram",
                "bio_prompt_x",
                "bio_prompt_tiktok"
            ])
        );
        // The server defaults fill the timestamps of the inserted rows.
        let n = conn
            .rows(
                "SELECT value FROM settings WHERE created_at IS NOT NULL AND updated_at IS NOT NULL",
                1,
            )
            .await
            .len();
        assert_eq!(n, 4);
        avatar_entities(conn).await;
    })
    .await;
}

/// The avatar entities agree with the migrated schema.
async fn avatar_entities(conn: &DatabaseConnection) {
    use entity::avatar::{setting, user};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryOrder};

    let settings = setting::Entity::find()
        .order_by_asc(setting::Column::Key)
        .all(conn)
        .await
        .expect("read settings through the entity");
    let mut want: Vec<(&str, &str)> = avatar::DEFAULT_PROMPTS.to_vec();
    want.sort();
    let got: Vec<(&str, &str)> = settings
        .iter()
        .map(|s| (s.key.as_str(), s.value.as_str()))
        .collect();
    assert_eq!(got, want);

    let u = user::ActiveModel {
        email: Set("grace@example.com".into()),
        password_hash: Set("$2b$12$abcdefghijklmnopqrstuu".into()),
        created_at: Set(chrono::Utc::now().naive_utc()),
        last_login: Set(None),
        is_active: Set(true),
        ..Default::default()
    }
    .insert(conn)
    .await
    .expect("insert user (serial id)");
    assert!(u.id >= 1);
    assert_eq!(
        user::Entity::find_by_id(u.id).one(conn).await.unwrap(),
        Some(u.clone())
    );
    user::Entity::delete_by_id(u.id).exec(conn).await.unwrap();
}

fn db_is_mysql(conn: &DatabaseConnection) -> bool {
    conn.backend() == Backend::MySql
}

async fn neurachar_up_down(db: TestDb) {
    up_and_down::<neurachar::Migrator>(
        &db,
        NEURACHAR,
        NEURACHAR_SPEC,
        5,
        &NEURACHAR_LATER,
        async |conn| {
            entity_roundtrip(conn).await;
        },
    )
    .await;
}

/// The entities agree with the migrated schema: insert one of each, read it back through the
/// relations, and deleting a chat deletes its messages (ON DELETE CASCADE).
async fn entity_roundtrip(conn: &DatabaseConnection) {
    use entity::neurachar::{character, chat, message, user};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, ModelTrait, PaginatorTrait};

    let now = chrono::Utc::now().naive_utc();
    let u = user::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        email: Set("ada@example.com".into()),
        username: Set(Some("ada".into())),
        avatar_url: Set(None),
        created_at: Set(now),
        last_login_at: Set(None),
        provider: Set("email_qq".into()),
    }
    .insert(conn)
    .await
    .expect("insert user");
    let c = character::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        name: Set("Nova".into()),
        system_prompt: Set("You are Nova.".into()),
        greeting_message: Set(Some("Hi!".into())),
        avatar_url: Set(None),
        tags: Set(Some(serde_json::json!(["friendly"]))),
        is_public: Set(true),
        creator_id: Set(Some(u.id)),
    }
    .insert(conn)
    .await
    .expect("insert character");
    let ch = chat::ActiveModel {
        chat_id: Set(uuid::Uuid::new_v4()),
        user_id: Set(u.id),
        character_id: Set(c.id),
        created_at: Set(now),
    }
    .insert(conn)
    .await
    .expect("insert chat");
    for (role, content) in [("user", "Hello"), ("assistant", "Hi there")] {
        message::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            chat_id: Set(ch.chat_id),
            role: Set(role.into()),
            content: Set(content.into()),
            created_at: Set(now),
        }
        .insert(conn)
        .await
        .expect("insert message");
    }
    let created = u
        .find_related(character::Entity)
        .all(conn)
        .await
        .expect("user -> characters");
    assert_eq!(created, vec![c.clone()]);
    assert_eq!(created[0].tags, Some(serde_json::json!(["friendly"])));
    assert_eq!(
        ch.find_related(message::Entity).count(conn).await.unwrap(),
        2
    );
    assert_eq!(c.find_related(chat::Entity).count(conn).await.unwrap(), 1);

    chat::Entity::delete_by_id(ch.chat_id)
        .exec(conn)
        .await
        .expect("delete chat");
    assert_eq!(
        message::Entity::find().count(conn).await.unwrap(),
        0,
        "cascade"
    );
    // Leave the tables empty for the downgrade.
    character::Entity::delete_by_id(c.id)
        .exec(conn)
        .await
        .unwrap();
    user::Entity::delete_by_id(u.id).exec(conn).await.unwrap();
}

on_all_backends!(avatar_up_down, neurachar_up_down);

/// MySQL commits DDL as it goes: every `up` and `down` must be re-runnable after a failure
/// halfway. Running each one twice in a row is the harshest form of that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_steps_rerun() {
    let db = TestDb::new(Backend::MySql, "mysql_steps_rerun");
    // A database default other than ours: the tables must carry their own options.
    db.exec(&format!(
        "ALTER DATABASE {} CHARACTER SET latin1 COLLATE latin1_swedish_ci",
        db.name
    ))
    .await;
    let conn = db.connect().await;
    let manager = SchemaManager::new(&conn);
    for steps in [avatar::Migrator::steps(), neurachar::Migrator::steps()] {
        for s in &steps {
            for _ in 0..2 {
                s.up(&manager)
                    .await
                    .unwrap_or_else(|e| panic!("{} up: {e}", s.info().name));
            }
        }
        for s in steps.iter().rev() {
            for _ in 0..2 {
                s.down(&manager)
                    .await
                    .unwrap_or_else(|e| panic!("{} down: {e}", s.info().name));
            }
        }
        assert_eq!(introspect::tables(&conn).await, Vec::<String>::new());
    }
    // The default prompts are inserted once, not twice.
    let avatar = avatar::Migrator::steps();
    for s in &avatar {
        s.up(&manager).await.unwrap();
        s.up(&manager).await.unwrap();
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM settings").await, 4);
    check_mysql_table_options(&conn, 2).await;
    // Widened twice, and still in the table's character set, not the database's latin1.
    assert_eq!(
        conn.rows(
            "SELECT CAST(DATA_TYPE AS CHAR), CAST(COLLATION_NAME AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'settings' AND COLUMN_NAME = 'value'",
            2,
        )
        .await,
        [[Some("longtext".to_owned()), Some("utf8mb4_unicode_ci".to_owned())]]
    );
    for s in avatar.iter().rev() {
        s.down(&manager).await.unwrap();
    }
    for s in neurachar::Migrator::steps() {
        s.up(&manager).await.unwrap();
    }
    check_mysql_table_options(&conn, 5).await;
    conn.close().await.ok();
}

/// Every table is InnoDB with collation utf8mb4_unicode_ci, whatever the database default.
async fn check_mysql_table_options(conn: &DatabaseConnection, n: usize) {
    let tables = conn
        .rows(
            "SELECT CAST(TABLE_NAME AS CHAR), CAST(ENGINE AS CHAR), CAST(TABLE_COLLATION AS CHAR) \
             FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1",
            3,
        )
        .await;
    assert_eq!(tables.len(), n, "{tables:?}");
    for t in &tables {
        assert_eq!(
            t[1..],
            [
                Some("InnoDB".to_owned()),
                Some("utf8mb4_unicode_ci".to_owned())
            ],
            "{t:?}"
        );
    }
}

fn check_infos<M: AppMigrator>() {
    let infos = M::infos();
    let names: Vec<&str> = infos.iter().map(|i| i.name).collect();
    let migrations: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(
        names,
        migrations,
        "{}: steps() and migrations() order",
        M::APP
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        names,
        sorted,
        "{}: versions must sort in application order",
        M::APP
    );
    for i in &infos {
        assert!(!i.description.is_empty(), "{}: empty description", i.name);
        // The original schemas' migrations each create a table; later steps (dbtool's own,
        // and those `dbtool new` writes) may change existing ones only.
        let original = i.alias.is_some() || i.name.starts_with("m20251212_00000");
        assert!(
            !i.creates_tables.is_empty()
                || !original
                || i.name == neurachar::m20251212_000006_add_foreign_key_indexes::INFO.name,
            "{}: creates no table",
            i.name
        );
        for t in i.creates_tables {
            assert!(
                migration::describe_table(M::APP, t).is_some(),
                "{} {t}: no description",
                M::APP
            );
        }
    }
}

#[test]
fn step_infos() {
    check_infos::<avatar::Migrator>();
    check_infos::<neurachar::Migrator>();
    let all: Vec<&StepInfo> = avatar::Migrator::infos()
        .into_iter()
        .chain(neurachar::Migrator::infos())
        .collect();
    let names: BTreeSet<&str> = all.iter().map(|i| i.name).collect();
    assert_eq!(names.len(), all.len(), "StepInfo names must be unique");
    let aliases: Vec<Option<&str>> = avatar::Migrator::infos().iter().map(|i| i.alias).collect();
    // The two Alembic revisions, then dbtool's own step past them.
    assert_eq!(aliases, [Some("25698f3f906f"), Some("d8cfd3cb4083"), None]);
    assert!(neurachar::Migrator::infos()
        .iter()
        .all(|i| i.alias.is_none()));
    assert_eq!(
        migration::describe_column("avatar", "users", "email"),
        Some("User email address for login")
    );
    assert_eq!(migration::describe_column("avatar", "users", "nope"), None);
    assert_eq!(migration::describe_table("nope", "users"), None);
    // The docs name exactly the tables the migrations create.
    for (app, infos) in [
        ("avatar", avatar::Migrator::infos()),
        ("neurachar", neurachar::Migrator::infos()),
    ] {
        let created: BTreeSet<&str> = infos
            .iter()
            .flat_map(|i| i.creates_tables.iter().copied())
            .collect();
        let documented: BTreeSet<&str> = migration::TABLE_DOCS
            .iter()
            .filter(|d| d.app == app)
            .map(|d| d.table)
            .collect();
        assert_eq!(created, documented, "{app}: documented tables");
    }
}

#[test]
fn strip_literal_cast() {
    use introspect::strip_literal_cast as s;
    assert_eq!(s("'email_qq'::character varying"), "'email_qq'");
    assert_eq!(s("'it''s'::text"), "'it''s'");
    assert_eq!(
        s("nextval('users_id_seq'::regclass)"),
        "nextval('users_id_seq'::regclass)"
    );
    assert_eq!(s("now()"), "now()");
    assert_eq!(s("'a'::text || 'b'::text"), "'a'::text || 'b'::text");
    assert_eq!(s("false"), "false");
}
