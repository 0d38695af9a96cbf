//! Catalog introspection for assertions, one implementation per backend.
//!
//! Every function takes a [`Catalog`]: a [`TestDb`] (one short-lived connection per call) or a
//! `DatabaseConnection` you already hold (cheaper when a test asks many questions; on
//! PostgreSQL each new connection pays for a TLS handshake).
//!
//! - PostgreSQL: `pg_catalog`, the current schema only.
//! - MySQL/MariaDB: `information_schema`, the current database only.
//! - SQLite: the `pragma_*` table-valued functions.
//!
//! [`pg_snapshot`] renders a PostgreSQL schema in the text format of
//! `shared/spec/*.postgres.schema.txt`.
use super::{rows_on, Backend, TestDb};
use sea_orm::{DatabaseConnection, DbBackend};

/// Something the catalog can be queried through.
#[allow(async_fn_in_trait)]
pub trait Catalog {
    fn backend(&self) -> Backend;
    /// See [`TestDb::rows`].
    async fn rows(&self, sql: &str, ncols: usize) -> Vec<Vec<Option<String>>>;
}

impl Catalog for TestDb {
    fn backend(&self) -> Backend {
        self.backend
    }
    async fn rows(&self, sql: &str, ncols: usize) -> Vec<Vec<Option<String>>> {
        TestDb::rows(self, sql, ncols).await
    }
}

impl Catalog for DatabaseConnection {
    fn backend(&self) -> Backend {
        match self.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            DbBackend::MySql => Backend::MySql,
            DbBackend::Sqlite => Backend::Sqlite,
            other => panic!("unsupported backend {other:?}"),
        }
    }
    async fn rows(&self, sql: &str, ncols: usize) -> Vec<Vec<Option<String>>> {
        rows_on(self, sql, ncols).await
    }
}

/// One column, in table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// As the catalog spells it: PostgreSQL `format_type` (`character varying(255)`), MySQL
    /// `COLUMN_TYPE` (`varchar(255)`, `int(11)`), SQLite the declared type (`varchar(255)`).
    pub data_type: String,
    pub nullable: bool,
    /// The default expression as the catalog shows it (PostgreSQL `'x'::character varying`,
    /// MariaDB `current_timestamp()`, SQLite `CURRENT_TIMESTAMP`); `None` when there is none
    /// (MariaDB's `NULL` for a nullable column without default counts as none).
    pub default: Option<String>,
    /// PostgreSQL: a `nextval(...)` default or an identity column; MySQL: `auto_increment`;
    /// SQLite: an `INTEGER PRIMARY KEY` of a table declared with `AUTOINCREMENT`.
    pub auto_increment: bool,
}

/// One index, including those behind primary keys and unique constraints (SQLite's
/// `sqlite_autoindex_*`, MySQL's `PRIMARY`). SQLite's rowid primary key has no index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    pub primary: bool,
    pub columns: Vec<String>,
}

/// One foreign key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fk {
    /// `None` on SQLite, which does not keep constraint names.
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// `NO ACTION`, `CASCADE`, `RESTRICT`, `SET NULL` or `SET DEFAULT`.
    pub on_update: String,
    pub on_delete: String,
}

/// A string literal for the catalog queries below.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn split_list(s: &Option<String>) -> Vec<String> {
    match s {
        Some(s) if !s.is_empty() => s.split(',').map(str::to_owned).collect(),
        _ => vec![],
    }
}

fn get(row: &[Option<String>], i: usize) -> String {
    row[i].clone().unwrap_or_default()
}

/// `pg_class.oid` of `table` in the current schema.
fn pg_oid(table: &str) -> String {
    format!(
        "(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relname = {})",
        lit(table)
    )
}

/// dbtool's own bookkeeping beside `seaql_migrations` (state and audit log): not part of an
/// app's schema, so [`tables`] leaves them out.
pub const DBTOOL_TABLES: &[&str] = &["dbtool_audit", "dbtool_state"];

/// Names of the user tables (including `seaql_migrations`, without dbtool's own state and
/// audit tables), sorted.
pub async fn tables(db: &impl Catalog) -> Vec<String> {
    all_tables(db)
        .await
        .into_iter()
        .filter(|t| !DBTOOL_TABLES.contains(&t.as_str()))
        .collect()
}

/// Names of every table, dbtool's own included, sorted.
pub async fn all_tables(db: &impl Catalog) -> Vec<String> {
    let sql = match db.backend() {
        Backend::Postgres => "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
        Backend::MySql => "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1",
    };
    let mut out: Vec<String> = db.rows(sql, 1).await.iter().map(|r| get(r, 0)).collect();
    out.sort();
    out
}

/// The columns of `table` in ordinal order (empty if there is no such table).
pub async fn columns(db: &impl Catalog, table: &str) -> Vec<Column> {
    match db.backend() {
        Backend::Postgres => {
            let sql = format!(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                        CASE WHEN a.attnotnull THEN 'no' ELSE 'yes' END, \
                        pg_get_expr(d.adbin, d.adrelid), \
                        CASE WHEN a.attidentity <> '' THEN 'yes' ELSE 'no' END \
                 FROM pg_attribute a \
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid = {} AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                pg_oid(table)
            );
            db.rows(&sql, 5)
                .await
                .iter()
                .map(|r| Column {
                    name: get(r, 0),
                    data_type: get(r, 1),
                    nullable: get(r, 2) == "yes",
                    auto_increment: get(r, 4) == "yes"
                        || r[3].as_deref().is_some_and(|d| d.starts_with("nextval(")),
                    default: r[3].clone(),
                })
                .collect()
        }
        Backend::MySql => {
            let sql = format!(
                "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
                        CAST(IS_NULLABLE AS CHAR), CAST(COLUMN_DEFAULT AS CHAR), CAST(EXTRA AS CHAR) \
                 FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {} \
                 ORDER BY ORDINAL_POSITION",
                lit(table)
            );
            db.rows(&sql, 5)
                .await
                .iter()
                .map(|r| Column {
                    name: get(r, 0),
                    data_type: get(r, 1),
                    nullable: get(r, 2) == "YES",
                    default: r[3].clone().filter(|d| d != "NULL"),
                    auto_increment: get(r, 4).to_lowercase().contains("auto_increment"),
                })
                .collect()
        }
        Backend::Sqlite => {
            let autoinc = db
                .rows(
                    &format!(
                        "SELECT CASE WHEN upper(sql) LIKE '%AUTOINCREMENT%' THEN 'yes' ELSE 'no' END \
                         FROM sqlite_master WHERE type = 'table' AND name = {}",
                        lit(table)
                    ),
                    1,
                )
                .await
                .first()
                .is_some_and(|r| get(r, 0) == "yes");
            let sql = format!(
                "SELECT name, type, CAST(\"notnull\" AS TEXT), dflt_value, CAST(pk AS TEXT) \
                 FROM pragma_table_info({}) ORDER BY cid",
                lit(table)
            );
            db.rows(&sql, 5)
                .await
                .iter()
                .map(|r| Column {
                    name: get(r, 0),
                    data_type: get(r, 1),
                    nullable: get(r, 2) == "0",
                    default: r[3].clone(),
                    auto_increment: autoinc
                        && get(r, 4) != "0"
                        && get(r, 1).eq_ignore_ascii_case("integer"),
                })
                .collect()
        }
    }
}

/// The indexes of `table`, sorted by name; columns in index order.
pub async fn indexes(db: &impl Catalog, table: &str) -> Vec<Index> {
    let mut out: Vec<Index> = match db.backend() {
        Backend::Postgres => {
            let sql = format!(
                "SELECT i.relname::text, ix.indisunique::text, ix.indisprimary::text, \
                        (SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true), ',' ORDER BY k) \
                         FROM generate_series(1, ix.indnkeyatts::int) k) \
                 FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
                 WHERE ix.indrelid = {}",
                pg_oid(table)
            );
            db.rows(&sql, 4)
                .await
                .iter()
                .map(|r| Index {
                    name: get(r, 0),
                    unique: get(r, 1) == "true",
                    primary: get(r, 2) == "true",
                    columns: split_list(&r[3]),
                })
                .collect()
        }
        Backend::MySql => {
            let sql = format!(
                "SELECT CAST(INDEX_NAME AS CHAR), CAST(NON_UNIQUE AS CHAR), CAST(COLUMN_NAME AS CHAR) \
                 FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {} \
                 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                lit(table)
            );
            let mut out: Vec<Index> = Vec::new();
            for r in db.rows(&sql, 3).await {
                let name = get(&r, 0);
                match out.last_mut() {
                    Some(ix) if ix.name == name => ix.columns.push(get(&r, 2)),
                    _ => out.push(Index {
                        primary: name == "PRIMARY",
                        unique: get(&r, 1) == "0",
                        columns: vec![get(&r, 2)],
                        name,
                    }),
                }
            }
            out
        }
        Backend::Sqlite => {
            let sql = format!(
                "SELECT il.name, CAST(il.\"unique\" AS TEXT), il.origin, ii.name \
                 FROM pragma_index_list({}) il JOIN pragma_index_info(il.name) ii \
                 ORDER BY il.name, ii.seqno",
                lit(table)
            );
            let mut out: Vec<Index> = Vec::new();
            for r in db.rows(&sql, 4).await {
                let name = get(&r, 0);
                match out.last_mut() {
                    Some(ix) if ix.name == name => ix.columns.push(get(&r, 3)),
                    _ => out.push(Index {
                        unique: get(&r, 1) == "1",
                        primary: get(&r, 2) == "pk",
                        columns: vec![get(&r, 3)],
                        name,
                    }),
                }
            }
            out
        }
    };
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The primary key columns of `table`, in key order (empty if none).
pub async fn primary_key(db: &impl Catalog, table: &str) -> Vec<String> {
    match db.backend() {
        Backend::Sqlite => db
            .rows(
                &format!(
                    "SELECT name FROM pragma_table_info({}) WHERE pk > 0 ORDER BY pk",
                    lit(table)
                ),
                1,
            )
            .await
            .iter()
            .map(|r| get(r, 0))
            .collect(),
        _ => indexes(db, table)
            .await
            .into_iter()
            .find(|i| i.primary)
            .map(|i| i.columns)
            .unwrap_or_default(),
    }
}

const PG_ACTION: &str = "'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' \
                         WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END";

/// `string_agg` of the column names of `attnums` (an array column) of relation `rel`.
fn pg_cols(attnums: &str, rel: &str) -> String {
    format!(
        "(SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) \
          FROM unnest({attnums}) WITH ORDINALITY k(attnum, ord) \
          JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.attnum)"
    )
}

/// The foreign keys of `table`, sorted by name (SQLite: by columns).
pub async fn foreign_keys(db: &impl Catalog, table: &str) -> Vec<Fk> {
    let mut out: Vec<Fk> = match db.backend() {
        Backend::Postgres => {
            let sql = format!(
                "SELECT c.conname::text, {}, rt.relname::text, {}, \
                        CASE c.confupdtype WHEN {PG_ACTION}, CASE c.confdeltype WHEN {PG_ACTION} \
                 FROM pg_constraint c JOIN pg_class rt ON rt.oid = c.confrelid \
                 WHERE c.contype = 'f' AND c.conrelid = {}",
                pg_cols("c.conkey", "c.conrelid"),
                pg_cols("c.confkey", "c.confrelid"),
                pg_oid(table)
            );
            db.rows(&sql, 6)
                .await
                .iter()
                .map(|r| Fk {
                    name: r[0].clone(),
                    columns: split_list(&r[1]),
                    ref_table: get(r, 2),
                    ref_columns: split_list(&r[3]),
                    on_update: get(r, 4),
                    on_delete: get(r, 5),
                })
                .collect()
        }
        Backend::MySql => {
            let sql = format!(
                "SELECT CAST(k.CONSTRAINT_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), \
                        CAST(k.REFERENCED_TABLE_NAME AS CHAR), CAST(k.REFERENCED_COLUMN_NAME AS CHAR), \
                        CAST(r.UPDATE_RULE AS CHAR), CAST(r.DELETE_RULE AS CHAR) \
                 FROM information_schema.KEY_COLUMN_USAGE k \
                 JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
                   ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
                  AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
                 WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = {} \
                   AND k.REFERENCED_TABLE_NAME IS NOT NULL \
                 ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
                lit(table)
            );
            let mut out: Vec<Fk> = Vec::new();
            for r in db.rows(&sql, 6).await {
                match out.last_mut() {
                    Some(fk) if fk.name == r[0] => {
                        fk.columns.push(get(&r, 1));
                        fk.ref_columns.push(get(&r, 3));
                    }
                    _ => out.push(Fk {
                        name: r[0].clone(),
                        columns: vec![get(&r, 1)],
                        ref_table: get(&r, 2),
                        ref_columns: vec![get(&r, 3)],
                        on_update: get(&r, 4),
                        on_delete: get(&r, 5),
                    }),
                }
            }
            out
        }
        Backend::Sqlite => {
            let sql = format!(
                "SELECT CAST(id AS TEXT), \"from\", \"table\", \"to\", on_update, on_delete \
                 FROM pragma_foreign_key_list({}) ORDER BY id, seq",
                lit(table)
            );
            let mut out: Vec<(String, Fk)> = Vec::new();
            for r in db.rows(&sql, 6).await {
                let id = get(&r, 0);
                match out.last_mut() {
                    Some((i, fk)) if *i == id => {
                        fk.columns.push(get(&r, 1));
                        fk.ref_columns.push(get(&r, 3));
                    }
                    _ => out.push((
                        id,
                        Fk {
                            name: None,
                            columns: vec![get(&r, 1)],
                            ref_table: get(&r, 2),
                            ref_columns: vec![get(&r, 3)],
                            on_update: get(&r, 4),
                            on_delete: get(&r, 5),
                        },
                    )),
                }
            }
            out.into_iter().map(|(_, fk)| fk).collect()
        }
    };
    out.sort_by(|a, b| (&a.name, &a.columns).cmp(&(&b.name, &b.columns)));
    out
}

/// The tables `pg_snapshot` leaves out: the migration tools' bookkeeping.
pub const SNAPSHOT_EXCLUDED: &[&str] = &["alembic_version", "seaql_migrations"];

/// The live PostgreSQL schema (current schema) in the text format of
/// `shared/spec/*.postgres.schema.txt`, so that a test can compare it byte for byte.
///
/// Format (two-space indents, sections always present, `(none)` when empty, every list sorted
/// by name in byte order):
/// ```text
/// # schema_snapshot v1 | schema=<schema> | names=shown | excluded tables=<excluded,...>
/// tables: <t1>, <t2>
/// extensions: <ext, ...>            (plpgsql, always there, is not listed)
///
/// table <t>
///   columns:
///     <attnum> <name> <format_type> null|not null[ default <expr>]
///   primary key: <name> (<cols>)
///   unique constraints:
///     <name>: (<cols>)
///   indexes:                        (those not behind a constraint)
///     <name>: [UNIQUE ]<am> (<cols>)[ WHERE <predicate>]
///   foreign keys:
///     <name>: (<cols>) -> <table>(<cols>) on update <A> on delete <A> match <M>
///   check constraints:
///     <name>: <pg_get_constraintdef>
///   sequences:                      (owned by a column of the table)
///     <name>: owned by column <col>: <type> start <n> increment <n> min <n> max <n>
/// ```
/// A default that is a cast literal (`'email_qq'::character varying`) is shown without the cast.
pub async fn pg_snapshot(db: &impl Catalog) -> String {
    assert_eq!(
        db.backend(),
        Backend::Postgres,
        "pg_snapshot needs PostgreSQL"
    );
    let schema = get(&db.rows("SELECT current_schema()::text", 1).await[0], 0);
    let mut tables: Vec<String> = db
        .rows(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
            1,
        )
        .await
        .iter()
        .map(|r| get(r, 0))
        .filter(|t| !SNAPSHOT_EXCLUDED.contains(&t.as_str()))
        // dbtool's own bookkeeping is no part of the applications' schemas.
        .filter(|t| !DBTOOL_TABLES.contains(&t.as_str()))
        .collect();
    tables.sort();
    let mut extensions: Vec<String> = db
        .rows(
            "SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql'",
            1,
        )
        .await
        .iter()
        .map(|r| get(r, 0))
        .collect();
    extensions.sort();

    let mut out = format!(
        "# schema_snapshot v1 | schema={schema} | names=shown | excluded tables={}\n",
        SNAPSHOT_EXCLUDED.join(",")
    );
    out += &format!("tables: {}\n", list_or_none(&tables, ", "));
    out += &format!("extensions: {}\n", list_or_none(&extensions, ", "));
    for t in &tables {
        out.push('\n');
        out += &pg_table_snapshot(db, t).await;
    }
    out
}

fn list_or_none(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(sep)
    }
}

/// `  <title>: (none)` or `  <title>:` followed by the lines, four-space indented.
fn section(title: &str, mut lines: Vec<String>) -> String {
    if lines.is_empty() {
        return format!("  {title}: (none)\n");
    }
    lines.sort();
    let mut s = format!("  {title}:\n");
    for l in lines {
        s += &format!("    {l}\n");
    }
    s
}

/// One `table ...` block of [`pg_snapshot`].
pub async fn pg_table_snapshot(db: &impl Catalog, table: &str) -> String {
    let oid = pg_oid(table);
    let mut out = format!("table {table}\n  columns:\n");
    let attnums = db
        .rows(
            &format!(
                "SELECT a.attnum::text FROM pg_attribute a \
                 WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
            ),
            1,
        )
        .await;
    for (c, n) in columns(db, table).await.iter().zip(attnums) {
        out += &format!(
            "    {} {} {} {}",
            get(&n, 0),
            c.name,
            c.data_type,
            if c.nullable { "null" } else { "not null" }
        );
        if let Some(d) = &c.default {
            out += &format!(" default {}", strip_literal_cast(d));
        }
        out.push('\n');
    }

    let cons = db
        .rows(
            &format!(
                "SELECT c.contype::text, c.conname::text, {}, pg_get_constraintdef(c.oid) \
                 FROM pg_constraint c WHERE c.conrelid = {oid}",
                pg_cols("c.conkey", "c.conrelid")
            ),
            4,
        )
        .await;
    let of = |ty: &str| -> Vec<(String, String, String)> {
        cons.iter()
            .filter(|r| get(r, 0) == ty)
            .map(|r| (get(r, 1), split_list(&r[2]).join(", "), get(r, 3)))
            .collect()
    };
    let pk = of("p");
    match pk.first() {
        Some((name, cols, _)) => out += &format!("  primary key: {name} ({cols})\n"),
        None => out += "  primary key: (none)\n",
    }
    out += &section(
        "unique constraints",
        of("u")
            .into_iter()
            .map(|(n, cols, _)| format!("{n}: ({cols})"))
            .collect(),
    );

    let idx = db
        .rows(
            &format!(
                "SELECT i.relname::text, ix.indisunique::text, am.amname::text, \
                        (SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true), ', ' ORDER BY k) \
                         FROM generate_series(1, ix.indnkeyatts::int) k), \
                        pg_get_expr(ix.indpred, ix.indrelid) \
                 FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
                 JOIN pg_am am ON am.oid = i.relam \
                 WHERE ix.indrelid = {oid} \
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid \
                                   AND c.conrelid = ix.indrelid)"
            ),
            5,
        )
        .await;
    out += &section(
        "indexes",
        idx.iter()
            .map(|r| {
                let mut l = format!(
                    "{}: {}{} ({})",
                    get(r, 0),
                    if get(r, 1) == "true" { "UNIQUE " } else { "" },
                    get(r, 2),
                    get(r, 3)
                );
                if let Some(p) = &r[4] {
                    l += &format!(" WHERE {p}");
                }
                l
            })
            .collect(),
    );

    let fks = db
        .rows(
            &format!(
                "SELECT c.conname::text, {}, rt.relname::text, {}, \
                        CASE c.confupdtype WHEN {PG_ACTION}, CASE c.confdeltype WHEN {PG_ACTION}, \
                        CASE c.confmatchtype WHEN 's' THEN 'SIMPLE' WHEN 'f' THEN 'FULL' \
                                             WHEN 'p' THEN 'PARTIAL' END \
                 FROM pg_constraint c JOIN pg_class rt ON rt.oid = c.confrelid \
                 WHERE c.contype = 'f' AND c.conrelid = {oid}",
                pg_cols("c.conkey", "c.conrelid"),
                pg_cols("c.confkey", "c.confrelid"),
            ),
            7,
        )
        .await;
    out += &section(
        "foreign keys",
        fks.iter()
            .map(|r| {
                format!(
                    "{}: ({}) -> {}({}) on update {} on delete {} match {}",
                    get(r, 0),
                    split_list(&r[1]).join(", "),
                    get(r, 2),
                    split_list(&r[3]).join(", "),
                    get(r, 4),
                    get(r, 5),
                    get(r, 6)
                )
            })
            .collect(),
    );
    out += &section(
        "check constraints",
        of("c")
            .into_iter()
            .map(|(n, _, def)| format!("{n}: {def}"))
            .collect(),
    );

    let seqs = db
        .rows(
            &format!(
                "SELECT s.relname::text, a.attname::text, format_type(q.seqtypid, NULL), \
                        q.seqstart::text, q.seqincrement::text, q.seqmin::text, q.seqmax::text \
                 FROM pg_depend d \
                 JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
                 JOIN pg_sequence q ON q.seqrelid = s.oid \
                 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
                 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
                   AND d.refobjid = {oid} AND d.deptype IN ('a', 'i')"
            ),
            7,
        )
        .await;
    out += &section(
        "sequences",
        seqs.iter()
            .map(|r| {
                format!(
                    "{}: owned by column {}: {} start {} increment {} min {} max {}",
                    get(r, 0),
                    get(r, 1),
                    get(r, 2),
                    get(r, 3),
                    get(r, 4),
                    get(r, 5),
                    get(r, 6)
                )
            })
            .collect(),
    );
    out
}

/// `'text'::some type` → `'text'`; anything else unchanged (`nextval('s'::regclass)` keeps its
/// inner cast, since the whole expression is not a cast literal).
pub fn strip_literal_cast(expr: &str) -> String {
    let b = expr.as_bytes();
    if b.first() != Some(&b'\'') {
        return expr.to_owned();
    }
    // Find the closing quote ('' is an escaped quote).
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            break;
        }
        i += 1;
    }
    if i >= b.len() {
        return expr.to_owned();
    }
    let (literal, rest) = expr.split_at(i + 1);
    match rest.strip_prefix("::") {
        Some(ty)
            if !ty.is_empty()
                && ty.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, ' ' | '_' | '(' | ')' | ',' | '[' | ']' | '"')
                }) =>
        {
            literal.to_owned()
        }
        _ => expr.to_owned(),
    }
}

/// Everything [`columns`], [`indexes`] and [`foreign_keys`] say about every table except
/// `seaql_migrations`, as one comparable text: for checking that a `down` leaves the schema
/// exactly as it was before the matching `up`.
pub async fn dump(db: &impl Catalog) -> String {
    let mut out = String::new();
    for t in tables(db).await {
        if t == "seaql_migrations" {
            continue;
        }
        out += &format!("table {t}\n");
        for c in columns(db, &t).await {
            out += &format!("  {c:?}\n");
        }
        for i in indexes(db, &t).await {
            out += &format!("  {i:?}\n");
        }
        for f in foreign_keys(db, &t).await {
            out += &format!("  {f:?}\n");
        }
    }
    out
}
