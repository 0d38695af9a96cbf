//! What a database's schema looks like, read with SeaQL's `sea-schema` discovery into one
//! backend-neutral model (tables, columns, primary keys, indexes, foreign keys, checks), and
//! the differences between two such models. `check` compares a live database with a scratch
//! database built by the migrations; `docs` renders the model.
//!
//! sea-schema 0.18 is blind in three places, filled here with one small catalog query each:
//! non-unique indexes on PostgreSQL (it only discovers unique ones) and check constraints on
//! MySQL/MariaDB. SQLite keeps check constraints only inside the CREATE TABLE text, so
//! they are not compared there; its declared types and defaults come back normalised by
//! sea-schema (`integer` and `bigint` look alike, quotes around default strings are gone).

use super::app::App;
use super::state::{ALEMBIC_TABLE, TRACKING_TABLE};
use sea_orm::sea_query::{ColumnType, StringLen};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use sea_orm_migration::SchemaManager;
use sea_schema::{mysql, postgres, sqlite};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bookkeeping tables of the migration tools: never part of the compared schema.
pub const IGNORED_TABLES: &[&str] = &[
    TRACKING_TABLE,
    ALEMBIC_TABLE,
    super::record::STATE_TABLE,
    super::record::AUDIT_TABLE,
];

/// The schema of one database (its current PostgreSQL schema or MySQL database), without
/// the migration tools' own tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    /// In the table's column order.
    pub columns: Vec<Column>,
    pub primary_key: Option<PrimaryKey>,
    /// Every index except the primary key's, unique constraints included; sorted by name.
    pub indexes: Vec<Index>,
    /// Sorted by [`ForeignKey::key`].
    pub foreign_keys: Vec<ForeignKey>,
    /// Sorted by name.
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type in the backend's own spelling (`varchar(255)`, `timestamp`, `int(11)`).
    pub data_type: String,
    pub nullable: bool,
    /// The default expression; string literals in single quotes.
    pub default: Option<String>,
    /// PostgreSQL identity, MySQL `AUTO_INCREMENT`, SQLite `AUTOINCREMENT` (PostgreSQL
    /// `serial` columns show as their `nextval(...)` default instead).
    pub auto_increment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryKey {
    /// None on SQLite, which keeps no constraint names.
    pub name: Option<String>,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    pub columns: Vec<String>,
    /// False for a PostgreSQL index marked INVALID (`pg_index.indisvalid`), e.g. left by a
    /// failed `CREATE INDEX CONCURRENTLY`: it is kept up to date but never used.
    pub valid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// None on SQLite, which keeps no constraint names.
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// `NO ACTION`, `RESTRICT`, `CASCADE`, `SET NULL` or `SET DEFAULT`.
    pub on_update: String,
    pub on_delete: String,
}

impl ForeignKey {
    /// What identifies the key across two databases: its name, or where there is none its
    /// columns and target.
    pub fn key(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => self.target(),
        }
    }

    /// `(a, b) -> table(x, y)`
    pub fn target(&self) -> String {
        format!(
            "({}) -> {}({})",
            self.columns.join(", "),
            self.ref_table,
            self.ref_columns.join(", ")
        )
    }

    pub fn describe(&self) -> String {
        format!(
            "{} ON UPDATE {} ON DELETE {}",
            self.target(),
            self.on_update,
            self.on_delete
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub expression: String,
}

impl Column {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {}",
            self.data_type,
            if self.nullable { "NULL" } else { "NOT NULL" }
        );
        if let Some(d) = &self.default {
            s += &format!(" DEFAULT {d}");
        }
        if self.auto_increment {
            s += " AUTO_INCREMENT";
        }
        s
    }
}

impl Index {
    pub fn describe(&self) -> String {
        format!(
            "{}({})",
            if self.unique { "UNIQUE " } else { "" },
            self.columns.join(", ")
        )
    }
}

fn discovery_err(what: &str, e: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("reading the schema ({what}): {e}"))
}

async fn one_string<C: ConnectionTrait>(db: &C, sql: &str) -> Result<String, DbErr> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("no row from {sql}")))?;
    row.try_get_by_index::<String>(0)
}

async fn rows<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    ncols: usize,
) -> Result<Vec<Vec<String>>, DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await?;
    rows.iter()
        .map(|r| {
            (0..ncols)
                .map(|i| {
                    r.try_get_by_index::<Option<String>>(i)
                        .map(Option::unwrap_or_default)
                })
                .collect()
        })
        .collect()
}

/// Reads the schema of the database behind `db` (read-only).
pub async fn introspect(db: &DatabaseConnection) -> Result<Schema, DbErr> {
    let tables = match db.get_database_backend() {
        DbBackend::Postgres => introspect_postgres(db).await?,
        DbBackend::MySql => introspect_mysql(db).await?,
        DbBackend::Sqlite => introspect_sqlite(db).await?,
        #[allow(unreachable_patterns)]
        other => {
            return Err(DbErr::BackendNotSupported {
                db: other.as_str(),
                ctx: "schema introspection",
            })
        }
    };
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    let mut tables: BTreeMap<String, Table> = tables
        .into_iter()
        .filter(|t| !IGNORED_TABLES.contains(&t.name.as_str()))
        // SQLite's own tables (`sqlite_stat1` after ANALYZE, `sqlite_sequence`): no
        // application object, and names users cannot create.
        .filter(|t| !(sqlite && t.name.starts_with("sqlite_")))
        .map(|t| (t.name.clone(), t))
        .collect();
    for t in tables.values_mut() {
        t.indexes.sort_by(|a, b| a.name.cmp(&b.name));
        t.indexes.dedup_by(|a, b| a.name == b.name);
        t.foreign_keys.sort_by_key(ForeignKey::key);
        t.checks.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(Schema { tables })
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

async fn introspect_postgres(db: &DatabaseConnection) -> Result<Vec<Table>, DbErr> {
    use postgres::def::ColumnDefault;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_schema()::text, current_setting('search_path')".to_owned(),
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no row for the current schema".into()))?;
    // NULL when no schema of the search_path exists: say so, not "a column holds NULL".
    let Some(schema) = row.try_get_by_index::<Option<String>>(0)? else {
        let path: String = row.try_get_by_index(1)?;
        return Err(DbErr::Custom(format!(
            "no schema of the search_path ({path}) exists; create it, or name the schema with --schema"
        )));
    };
    let found = postgres::discovery::SchemaDiscovery::new_no_exec(&schema)
        .discover_with(&WithoutConstraintQuery(db))
        .await
        .map_err(|e| discovery_err("PostgreSQL", e))?;
    // sea-schema only discovers unique indexes, and does not say which are INVALID.
    let sep = '\u{1f}';
    let plain = rows(
        db,
        "SELECT t.relname::text, i.relname::text, \
                (SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true), E'\\x1f' ORDER BY k) \
                 FROM generate_series(1, ix.indnkeyatts::int) k), \
                ix.indisunique::text, ix.indisvalid::text \
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND NOT ix.indisprimary \
           AND (NOT ix.indisunique OR NOT ix.indisvalid)",
        5,
    )
    .await?;
    // Primary and foreign keys from pg_constraint: sea-schema reads them from
    // information_schema, which hides the constraints of tables the user may only SELECT from
    // (a read-only user would see every key as missing).
    let keys = rows(
        db,
        "SELECT t.relname::text, c.conname::text, c.contype::text, \
                (SELECT string_agg(a.attname::text, E'\\x1f' ORDER BY k.i) \
                 FROM unnest(c.conkey) WITH ORDINALITY k(n, i) \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n), \
                rt.relname::text, \
                (SELECT string_agg(a.attname::text, E'\\x1f' ORDER BY k.i) \
                 FROM unnest(c.confkey) WITH ORDINALITY k(n, i) \
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n), \
                c.confupdtype::text, c.confdeltype::text, \
                CASE WHEN c.contype = 'c' THEN pg_get_expr(c.conbin, c.conrelid) END \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         LEFT JOIN pg_class rt ON rt.oid = c.confrelid \
         WHERE n.nspname = current_schema() AND c.contype IN ('p', 'f', 'c') \
         ORDER BY t.relname, c.conname",
        9,
    )
    .await?;
    let mut out = Vec::new();
    for t in found.tables {
        let name = t.info.name.clone();
        let columns = t
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                data_type: pg_type(&c.col_type),
                nullable: c.not_null.is_none(),
                default: c.default.as_ref().map(|d| match d {
                    ColumnDefault::Int(i) => i.to_string(),
                    ColumnDefault::Real(r) => r.to_string(),
                    ColumnDefault::String(s) => quote(s),
                    ColumnDefault::Bool(b) => b.to_string(),
                    ColumnDefault::CurrentTimestamp => "now()".to_owned(),
                    ColumnDefault::AutoIncrement(e) => e.clone(),
                    ColumnDefault::Expression(e) => strip_literal_cast(e),
                }),
                auto_increment: c.is_identity,
            })
            .collect();
        let mut indexes: Vec<Index> = t
            .unique_constraints
            .iter()
            .map(|u| Index {
                name: u.name.clone(),
                unique: true,
                columns: u.columns.clone(),
                valid: true,
            })
            .collect();
        for r in plain.iter().filter(|r| r[0] == name) {
            match indexes.iter_mut().find(|i| i.name == r[1]) {
                Some(known) => known.valid = r[4] == "true",
                None => indexes.push(Index {
                    name: r[1].clone(),
                    unique: r[3] == "true",
                    columns: r[2].split(sep).map(str::to_owned).collect(),
                    valid: r[4] == "true",
                }),
            }
        }
        out.push(Table {
            columns,
            primary_key: keys
                .iter()
                .find(|r| r[0] == name && r[2] == "p")
                .map(|r| PrimaryKey {
                    name: Some(r[1].clone()),
                    columns: r[3].split(sep).map(str::to_owned).collect(),
                }),
            indexes,
            foreign_keys: keys
                .iter()
                .filter(|r| r[0] == name && r[2] == "f")
                .map(|r| ForeignKey {
                    name: Some(r[1].clone()),
                    columns: r[3].split(sep).map(str::to_owned).collect(),
                    ref_table: r[4].clone(),
                    ref_columns: r[5].split(sep).map(str::to_owned).collect(),
                    on_update: pg_action(&r[6]),
                    on_delete: pg_action(&r[7]),
                })
                .collect(),
            // PostgreSQL (before 18) lists every NOT NULL as a check named after object ids
            // (`2200_16385_2_not_null`); nullability is compared on the columns instead.
            checks: keys
                .iter()
                .filter(|r| r[0] == name && r[2] == "c" && !is_pg_not_null_check(&r[1]))
                .map(|r| Check {
                    name: r[1].clone(),
                    expression: r[8].clone(),
                })
                .collect(),
            name,
        });
    }
    Ok(out)
}

/// `pg_constraint.confupdtype` / `confdeltype` spelled out.
fn pg_action(code: &str) -> String {
    match code {
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        "r" => "RESTRICT",
        _ => "NO ACTION",
    }
    .to_owned()
}

/// The connection for sea-schema's PostgreSQL discovery, without its per-table query of
/// `information_schema.table_constraints`: that view costs ~20 ms a table (most of `check`'s
/// time) and hides the constraints of tables a read-only user may only SELECT from. Keys and
/// checks come from `pg_constraint` instead; unique constraints, columns and their
/// nullability from sea-schema's other queries.
struct WithoutConstraintQuery<'a>(&'a DatabaseConnection);

#[sea_orm_migration::async_trait::async_trait]
impl sea_schema::Connection for WithoutConstraintQuery<'_> {
    async fn query_all(
        &self,
        select: sea_orm::sea_query::SelectStatement,
    ) -> Result<Vec<sea_schema::sqlx_types::SqlxRow>, sea_schema::sqlx_types::SqlxError> {
        let sql = select.to_string(sea_orm::sea_query::PostgresQueryBuilder);
        if sql.contains("\"table_constraints\"") {
            return Ok(Vec::new());
        }
        <DatabaseConnection as sea_schema::Connection>::query_all(self.0, select).await
    }

    async fn query_all_raw(
        &self,
        sql: String,
    ) -> Result<Vec<sea_schema::sqlx_types::SqlxRow>, sea_schema::sqlx_types::SqlxError> {
        <DatabaseConnection as sea_schema::Connection>::query_all_raw(self.0, sql).await
    }
}

fn is_pg_not_null_check(name: &str) -> bool {
    name.strip_suffix("_not_null").is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('_').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn pg_type(t: &postgres::def::Type) -> String {
    use postgres::def::Type as T;
    let len = |n: Option<u16>, base: &str| match n {
        Some(n) => format!("{base}({n})"),
        None => base.to_owned(),
    };
    // 6 is PostgreSQL's default precision for times, so it is not spelled out.
    let time = |p: Option<u16>, base: &str| match p {
        Some(p) if p != 6 => format!("{base}({p})"),
        _ => base.to_owned(),
    };
    match t {
        T::SmallInt => "smallint".into(),
        T::Integer => "integer".into(),
        T::BigInt => "bigint".into(),
        T::Decimal(a) | T::Numeric(a) => match (a.precision, a.scale) {
            (Some(p), Some(s)) => format!("numeric({p},{s})"),
            (Some(p), None) => format!("numeric({p})"),
            _ => "numeric".into(),
        },
        T::Real => "real".into(),
        T::DoublePrecision => "double precision".into(),
        T::SmallSerial => "smallserial".into(),
        T::Serial => "serial".into(),
        T::BigSerial => "bigserial".into(),
        T::Money => "money".into(),
        T::Varchar(a) => len(a.length, "varchar"),
        T::Char(a) => len(a.length, "char"),
        T::Text => "text".into(),
        T::Bytea => "bytea".into(),
        T::Timestamp(a) => time(a.precision, "timestamp"),
        T::TimestampWithTimeZone(a) => time(a.precision, "timestamptz"),
        T::Date => "date".into(),
        T::Time(a) => time(a.precision, "time"),
        T::TimeWithTimeZone(a) => time(a.precision, "timetz"),
        T::Interval(_) => "interval".into(),
        T::Boolean => "boolean".into(),
        T::Uuid => "uuid".into(),
        T::Json => "json".into(),
        T::JsonBinary => "jsonb".into(),
        T::Array(a) => match &a.col_type {
            Some(inner) => format!("{}[]", pg_type(inner)),
            None => "array".into(),
        },
        T::Enum(e) => e.typename.clone(),
        T::Unknown(s) => s.clone(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// `'email_qq'::character varying` → `'email_qq'`: PostgreSQL spells a string default with
/// the column's type; the literal is what the migration wrote.
fn strip_literal_cast(expr: &str) -> String {
    let Some(body) = expr.strip_prefix('\'') else {
        return expr.to_owned();
    };
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            continue;
        }
        if chars.peek().is_some_and(|(_, n)| *n == '\'') {
            chars.next();
            continue;
        }
        let rest = &body[i + 1..];
        let is_type = |ty: &str| {
            !ty.is_empty()
                && ty.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '(' | ')' | ',' | '"')
                })
        };
        return match rest.strip_prefix("::") {
            Some(ty) if is_type(ty) => expr[..i + 2].to_owned(),
            _ => expr.to_owned(),
        };
    }
    expr.to_owned()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

async fn introspect_mysql(db: &DatabaseConnection) -> Result<Vec<Table>, DbErr> {
    use mysql::def::{ColumnDefault, ForeignKeyAction as A};
    let schema = one_string(db, "SELECT CAST(DATABASE() AS CHAR)").await?;
    let found = mysql::discovery::SchemaDiscovery::new_no_exec(&schema)
        .discover_with(db)
        .await
        .map_err(|e| discovery_err("MySQL", e))?;
    // sea-schema does not discover check constraints on MySQL; servers without
    // CHECK_CONSTRAINTS (MySQL < 8.0.16) have none to compare.
    let checks = rows(
        db,
        "SELECT CAST(t.TABLE_NAME AS CHAR), CAST(t.CONSTRAINT_NAME AS CHAR), CAST(c.CHECK_CLAUSE AS CHAR) \
         FROM information_schema.TABLE_CONSTRAINTS t JOIN information_schema.CHECK_CONSTRAINTS c \
           ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME \
         WHERE t.CONSTRAINT_TYPE = 'CHECK' AND t.TABLE_SCHEMA = DATABASE()",
        3,
    )
    .await
    .unwrap_or_default();
    let action = |a: &A| {
        match a {
            A::Cascade => "CASCADE",
            A::SetNull => "SET NULL",
            A::SetDefault => "SET DEFAULT",
            A::Restrict => "RESTRICT",
            A::NoAction => "NO ACTION",
        }
        .to_owned()
    };
    let mut out = Vec::new();
    for t in found.tables {
        let name = t.info.name.clone();
        let columns = t
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                data_type: mysql_type(&c.col_type),
                nullable: c.null,
                default: c.default.as_ref().and_then(|d| match d {
                    ColumnDefault::Null => None,
                    ColumnDefault::Int(i) => Some(i.to_string()),
                    ColumnDefault::Real(r) => Some(r.to_string()),
                    ColumnDefault::String(s) => Some(quote(s)),
                    ColumnDefault::CustomExpr(e) => Some(e.clone()),
                    ColumnDefault::CurrentTimestamp => Some("current_timestamp()".into()),
                }),
                auto_increment: c.extra.auto_increment,
            })
            .collect();
        let cols = |ix: &mysql::def::IndexInfo| -> Vec<String> {
            ix.parts.iter().map(|p| p.column.clone()).collect()
        };
        out.push(Table {
            columns,
            primary_key: t
                .indexes
                .iter()
                .find(|i| i.name == "PRIMARY")
                .map(|i| PrimaryKey {
                    name: Some(i.name.clone()),
                    columns: cols(i),
                }),
            indexes: t
                .indexes
                .iter()
                .filter(|i| i.name != "PRIMARY")
                .map(|i| Index {
                    name: i.name.clone(),
                    unique: i.unique,
                    columns: cols(i),
                    valid: true,
                })
                .collect(),
            foreign_keys: t
                .foreign_keys
                .iter()
                .map(|f| ForeignKey {
                    name: Some(f.name.clone()),
                    columns: f.columns.clone(),
                    ref_table: f.referenced_table.clone(),
                    ref_columns: f.referenced_columns.clone(),
                    on_update: action(&f.on_update),
                    on_delete: action(&f.on_delete),
                })
                .collect(),
            checks: checks
                .iter()
                .filter(|r| r[0] == name)
                .map(|r| Check {
                    name: r[1].clone(),
                    expression: r[2].clone(),
                })
                .collect(),
            name,
        });
    }
    Ok(out)
}

fn mysql_type(t: &mysql::def::Type) -> String {
    use mysql::def::{NumericAttr, Type as T};
    let num = |base: &str, a: &NumericAttr| {
        let mut s = base.to_owned();
        match (a.maximum, a.decimal) {
            (Some(m), Some(d)) => s += &format!("({m},{d})"),
            (Some(m), None) => s += &format!("({m})"),
            _ => {}
        }
        if a.unsigned == Some(true) {
            s += " unsigned";
        }
        if a.zero_fill == Some(true) {
            s += " zerofill";
        }
        s
    };
    let len = |base: &str, n: Option<u32>| match n {
        Some(n) => format!("{base}({n})"),
        None => base.to_owned(),
    };
    let time = |base: &str, f: Option<u32>| match f {
        Some(f) if f > 0 => format!("{base}({f})"),
        _ => base.to_owned(),
    };
    let list = |base: &str, v: &[String]| {
        format!(
            "{base}({})",
            v.iter().map(|x| quote(x)).collect::<Vec<_>>().join(",")
        )
    };
    match t {
        T::Serial => "serial".into(),
        T::Bit(a) => num("bit", a),
        T::TinyInt(a) => num("tinyint", a),
        T::Bool => "bool".into(),
        T::SmallInt(a) => num("smallint", a),
        T::MediumInt(a) => num("mediumint", a),
        T::Int(a) => num("int", a),
        T::BigInt(a) => num("bigint", a),
        T::Decimal(a) => num("decimal", a),
        T::Float(a) => num("float", a),
        T::Double(a) => num("double", a),
        T::Date => "date".into(),
        T::Time(a) => time("time", a.fractional),
        T::DateTime(a) => time("datetime", a.fractional),
        T::Timestamp(a) => time("timestamp", a.fractional),
        T::Year => "year".into(),
        T::Char(a) => len("char", a.length),
        T::NChar(a) => len("nchar", a.length),
        T::Varchar(a) => len("varchar", a.length),
        T::NVarchar(a) => len("nvarchar", a.length),
        T::Binary(a) => len("binary", a.length),
        T::Varbinary(a) => len("varbinary", a.length),
        T::Text(_) => "text".into(),
        T::TinyText(_) => "tinytext".into(),
        T::MediumText(_) => "mediumtext".into(),
        T::LongText(_) => "longtext".into(),
        T::Blob(a) => len("blob", a.length),
        T::TinyBlob => "tinyblob".into(),
        T::MediumBlob => "mediumblob".into(),
        T::LongBlob => "longblob".into(),
        T::Enum(e) => list("enum", &e.values),
        T::Set(s) => list("set", &s.members),
        T::Json => "json".into(),
        T::Unknown(s) => s.clone(),
        other => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or_default()
            .to_lowercase(),
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite

async fn introspect_sqlite(db: &DatabaseConnection) -> Result<Vec<Table>, DbErr> {
    use sqlite::def::{DefaultType, ForeignKeyAction as A};
    let found = sqlite::discovery::SchemaDiscovery::discover_with(db)
        .await
        .map_err(|e| discovery_err("SQLite", format!("{e:?}")))?
        .merge_indexes_into_table();
    let action = |a: &A| {
        match a {
            A::Cascade => "CASCADE",
            A::SetNull => "SET NULL",
            A::SetDefault => "SET DEFAULT",
            A::Restrict => "RESTRICT",
            A::NoAction => "NO ACTION",
        }
        .to_owned()
    };
    let mut out = Vec::new();
    for t in found.tables {
        let columns = t
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                data_type: sqlite_type(&c.r#type),
                nullable: !c.not_null,
                default: match &c.default_value {
                    DefaultType::Unspecified | DefaultType::Null => None,
                    DefaultType::Integer(i) => Some(i.to_string()),
                    DefaultType::Float(f) => Some(f.to_string()),
                    DefaultType::CurrentTimestamp => Some("CURRENT_TIMESTAMP".into()),
                    // sea-schema strips the quotes; keywords and expressions had none.
                    DefaultType::String(s) => Some(if is_sqlite_bare_default(s) {
                        s.clone()
                    } else {
                        quote(s)
                    }),
                },
                auto_increment: t.auto_increment && c.primary_key,
            })
            .collect();
        let pk: Vec<String> = t
            .columns
            .iter()
            .filter(|c| c.primary_key)
            .map(|c| c.name.clone())
            .collect();
        // Unique constraints (origin `u`) and CREATE INDEX indexes (origin `c`); the
        // primary key's own index (origin `pk`) is the primary key.
        let indexes = t
            .constraints
            .iter()
            .chain(t.indexes.iter())
            .filter(|i| i.origin != "pk")
            .map(|i| Index {
                name: i.index_name.clone(),
                unique: i.unique,
                columns: i.columns.clone(),
                valid: true,
            })
            .collect();
        out.push(Table {
            name: t.name.clone(),
            columns,
            primary_key: (!pk.is_empty()).then_some(PrimaryKey {
                name: None,
                columns: pk,
            }),
            indexes,
            foreign_keys: t
                .foreign_keys
                .iter()
                .map(|f| ForeignKey {
                    name: None,
                    columns: f.from.clone(),
                    ref_table: f.table.clone(),
                    ref_columns: f.to.clone(),
                    on_update: action(&f.on_update),
                    on_delete: action(&f.on_delete),
                })
                .collect(),
            checks: Vec::new(),
        });
    }
    Ok(out)
}

fn is_sqlite_bare_default(s: &str) -> bool {
    matches!(
        s.to_ascii_uppercase().as_str(),
        "TRUE" | "FALSE" | "CURRENT_DATE" | "CURRENT_TIME"
    ) || s.contains('(')
}

/// SQLite's declared types as SeaORM writes them (sea-schema maps them back to sea-query
/// column types; every integer type comes back as `BigInteger`).
fn sqlite_type(t: &ColumnType) -> String {
    let len = |base: &str, n: Option<u32>| match n {
        Some(n) => format!("{base}({n})"),
        None => base.to_owned(),
    };
    let strlen = |l: &StringLen| match l {
        StringLen::N(n) => Some(*n),
        _ => None,
    };
    match t {
        ColumnType::Char(n) => len("char", *n),
        ColumnType::String(l) => len("varchar", strlen(l)),
        ColumnType::Text => "text".into(),
        ColumnType::TinyInteger => "tinyint".into(),
        ColumnType::SmallInteger => "smallint".into(),
        ColumnType::Integer | ColumnType::BigInteger => "integer".into(),
        ColumnType::Float => "float".into(),
        ColumnType::Double => "double".into(),
        ColumnType::Decimal(Some((p, s))) => format!("decimal({p},{s})"),
        ColumnType::Decimal(None) => "decimal".into(),
        ColumnType::DateTime => "datetime_text".into(),
        ColumnType::Timestamp => "timestamp_text".into(),
        ColumnType::TimestampWithTimeZone => "timestamp_with_timezone_text".into(),
        ColumnType::Time => "time_text".into(),
        ColumnType::Date => "date_text".into(),
        ColumnType::Binary(n) => format!("blob({n})"),
        ColumnType::Blob => "blob".into(),
        ColumnType::VarBinary(l) => len("varbinary_blob", strlen(l)),
        ColumnType::Boolean => "boolean".into(),
        ColumnType::Money(Some((p, s))) => format!("real_money({p},{s})"),
        ColumnType::Money(None) => "real_money".into(),
        ColumnType::Json => "json_text".into(),
        ColumnType::JsonBinary => "jsonb_text".into(),
        ColumnType::Uuid => "uuid_text".into(),
        ColumnType::Custom(name) => name.to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

// ---------------------------------------------------------------------------------------------
// The expected schema

static SCRATCH_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database name for a scratch copy that no other process picks.
pub fn scratch_name() -> String {
    format!(
        "dbtool_check_{}_{}",
        std::process::id(),
        SCRATCH_COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// `url` with its database replaced by `name` (PostgreSQL and MySQL URLs).
pub fn scratch_url(url: &str, name: &str) -> Result<String, url::ParseError> {
    let mut u = url::Url::parse(url)?;
    u.set_path(&format!("/{name}"));
    // A `dbname=` parameter would win over the path and send the scratch migrations into
    // the checked database.
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "dbname")
        .collect();
    u.set_query(None);
    if !kept.is_empty() {
        u.query_pairs_mut().extend_pairs(kept);
    }
    Ok(u.to_string())
}

/// Creates the scratch database `name` on the server behind `db` (same character set and
/// collation as the current database on MySQL). Nothing in the current database changes.
pub async fn create_scratch(db: &DatabaseConnection, name: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!("CREATE DATABASE \"{name}\""),
        DbBackend::MySql => {
            let r = rows(
                db,
                "SELECT CAST(DEFAULT_CHARACTER_SET_NAME AS CHAR), CAST(DEFAULT_COLLATION_NAME AS CHAR) \
                 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
                2,
            )
            .await?;
            match r.first() {
                Some(r) if !r[0].is_empty() && !r[1].is_empty() => format!(
                    "CREATE DATABASE `{name}` CHARACTER SET {} COLLATE {}",
                    r[0], r[1]
                ),
                _ => format!("CREATE DATABASE `{name}`"),
            }
        }
        _ => return Ok(()),
    };
    db.execute_raw(Statement::from_string(backend, sql)).await?;
    Ok(())
}

/// PostgreSQL: whether the server is a hot standby (`pg_is_in_recovery()`).
pub async fn in_recovery(db: &DatabaseConnection) -> Result<bool, DbErr> {
    let r = rows(db, "SELECT pg_is_in_recovery()::text", 1).await?;
    Ok(r.first().is_some_and(|r| r[0] == "true"))
}

/// Drops the scratch database `name` (forcibly on PostgreSQL, so a stray connection cannot
/// keep it alive).
pub async fn drop_scratch(db: &DatabaseConnection, name: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        DbBackend::MySql => format!("DROP DATABASE IF EXISTS `{name}`"),
        _ => return Ok(()),
    };
    db.execute_raw(Statement::from_string(backend, sql)).await?;
    Ok(())
}

/// Applies the migrations `names` of `app`, in the app's order, to the empty database behind
/// `scratch` and reads the schema they produce.
pub async fn expected(
    app: App,
    names: &BTreeSet<&str>,
    scratch: &DatabaseConnection,
) -> Result<Schema, DbErr> {
    let manager = SchemaManager::new(scratch);
    for step in app.objects() {
        let info = step.info();
        if names.contains(info.name) {
            step.up(&manager).await.map_err(|e| {
                DbErr::Custom(format!(
                    "applying {} to the scratch database: {e}",
                    info.name
                ))
            })?;
        }
    }
    introspect(scratch).await
}

// ---------------------------------------------------------------------------------------------
// Differences

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// The migrations create it; the database does not have it.
    Missing,
    /// Both have it, with different properties.
    Altered,
    /// The database has it; the migrations do not create it.
    Extra,
    /// An INVALID index (PostgreSQL): it exists but is never used; drop or rebuild it.
    Invalid,
}

impl DiffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Missing => "missing",
            DiffKind::Altered => "altered",
            DiffKind::Extra => "extra",
            DiffKind::Invalid => "invalid",
        }
    }
}

/// One difference between the expected and the actual schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `table users`, `column users.email`, `index users.ix_users_email`, ...
    pub object: String,
    pub expected: String,
    pub actual: String,
    pub kind: DiffKind,
}

const ABSENT: &str = "(absent)";

/// Everything that differs between `expected` and `actual`, table by table (in name order).
/// A missing or extra table is one difference, not one per column.
pub fn diff(expected: &Schema, actual: &Schema) -> Vec<Difference> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = expected.tables.keys().chain(actual.tables.keys()).collect();
    for name in names {
        match (expected.tables.get(name), actual.tables.get(name)) {
            (Some(e), None) => out.push(Difference {
                object: format!("table {name}"),
                expected: table_summary(e),
                actual: ABSENT.into(),
                kind: DiffKind::Missing,
            }),
            (None, Some(a)) => out.push(Difference {
                object: format!("table {name}"),
                expected: ABSENT.into(),
                actual: table_summary(a),
                kind: DiffKind::Extra,
            }),
            (Some(e), Some(a)) => diff_table(e, a, &mut out),
            (None, None) => {}
        }
    }
    out
}

fn table_summary(t: &Table) -> String {
    format!("{} column(s)", t.columns.len())
}

fn diff_table(e: &Table, a: &Table, out: &mut Vec<Difference>) {
    let t = &e.name;
    let mut push = |object: String, expected: String, actual: String, kind: DiffKind| {
        out.push(Difference {
            object,
            expected,
            actual,
            kind,
        })
    };

    for ec in &e.columns {
        let object = format!("column {t}.{}", ec.name);
        let Some(ac) = a.columns.iter().find(|c| c.name == ec.name) else {
            push(object, ec.describe(), ABSENT.into(), DiffKind::Missing);
            continue;
        };
        if ec.data_type != ac.data_type {
            push(
                object.clone(),
                format!("type {}", ec.data_type),
                format!("type {}", ac.data_type),
                DiffKind::Altered,
            );
        }
        if ec.nullable != ac.nullable {
            let n = |c: &Column| if c.nullable { "NULL" } else { "NOT NULL" }.to_owned();
            push(object.clone(), n(ec), n(ac), DiffKind::Altered);
        }
        if ec.default != ac.default {
            let d = |c: &Column| match &c.default {
                Some(d) => format!("DEFAULT {d}"),
                None => "no default".to_owned(),
            };
            push(object.clone(), d(ec), d(ac), DiffKind::Altered);
        }
        if ec.auto_increment != ac.auto_increment {
            let d = |c: &Column| {
                if c.auto_increment {
                    "auto increment"
                } else {
                    "no auto increment"
                }
                .to_owned()
            };
            push(object, d(ec), d(ac), DiffKind::Altered);
        }
    }
    for ac in &a.columns {
        if !e.columns.iter().any(|c| c.name == ac.name) {
            push(
                format!("column {t}.{}", ac.name),
                ABSENT.into(),
                ac.describe(),
                DiffKind::Extra,
            );
        }
    }

    let pk = |p: &Option<PrimaryKey>| match p {
        Some(p) => match &p.name {
            Some(n) => format!("{n} ({})", p.columns.join(", ")),
            None => format!("({})", p.columns.join(", ")),
        },
        None => ABSENT.to_owned(),
    };
    if e.primary_key != a.primary_key {
        let kind = match (&e.primary_key, &a.primary_key) {
            (Some(_), None) => DiffKind::Missing,
            (None, Some(_)) => DiffKind::Extra,
            _ => DiffKind::Altered,
        };
        push(
            format!("primary key {t}"),
            pk(&e.primary_key),
            pk(&a.primary_key),
            kind,
        );
    }

    // An INVALID index is reported as that, whether the migrations create it or not, and
    // not compared otherwise.
    let invalid: BTreeSet<&str> = a
        .indexes
        .iter()
        .filter(|i| !i.valid)
        .map(|i| i.name.as_str())
        .collect();
    for ai in a.indexes.iter().filter(|i| !i.valid) {
        let expected = e.indexes.iter().find(|i| i.name == ai.name);
        push(
            format!("index {t}.{}", ai.name),
            expected.map_or_else(|| ABSENT.into(), Index::describe),
            format!(
                "{} INVALID (a failed CREATE INDEX CONCURRENTLY?): {}",
                ai.describe(),
                if expected.is_some() {
                    "rebuild it (REINDEX INDEX CONCURRENTLY)"
                } else {
                    "run `dbtool upgrade` if a failed migration left it (that rebuilds it), or drop it"
                }
            ),
            DiffKind::Invalid,
        );
    }
    let usable = |is: &[Index]| -> Vec<Index> {
        is.iter()
            .filter(|i| !invalid.contains(i.name.as_str()))
            .cloned()
            .collect()
    };
    keyed(
        &usable(&e.indexes),
        &usable(&a.indexes),
        |i| i.name.clone(),
        Index::describe,
        |k| format!("index {t}.{k}"),
        &mut push,
    );
    keyed(
        &e.foreign_keys,
        &a.foreign_keys,
        ForeignKey::key,
        ForeignKey::describe,
        |k| format!("foreign key {t}.{k}"),
        &mut push,
    );
    keyed(
        &e.checks,
        &a.checks,
        |c| c.name.clone(),
        |c| c.expression.clone(),
        |k| format!("check {t}.{k}"),
        &mut push,
    );
}

/// Compares two lists of named objects: missing, altered (same key, other description),
/// extra.
fn keyed<T>(
    expected: &[T],
    actual: &[T],
    key: impl Fn(&T) -> String,
    describe: impl Fn(&T) -> String,
    object: impl Fn(&str) -> String,
    push: &mut impl FnMut(String, String, String, DiffKind),
) {
    let e: BTreeMap<String, String> = expected.iter().map(|x| (key(x), describe(x))).collect();
    let a: BTreeMap<String, String> = actual.iter().map(|x| (key(x), describe(x))).collect();
    for (k, ed) in &e {
        match a.get(k) {
            None => push(object(k), ed.clone(), ABSENT.into(), DiffKind::Missing),
            Some(ad) if ad != ed => push(object(k), ed.clone(), ad.clone(), DiffKind::Altered),
            _ => {}
        }
    }
    for (k, ad) in &a {
        if !e.contains_key(k) {
            push(object(k), ABSENT.into(), ad.clone(), DiffKind::Extra);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            nullable,
            default: None,
            auto_increment: false,
        }
    }

    fn schema(tables: Vec<Table>) -> Schema {
        Schema {
            tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
    }

    #[test]
    fn reports_missing_altered_and_extra() {
        let users = Table {
            name: "users".into(),
            columns: vec![
                col("id", "integer", false),
                col("email", "varchar(255)", false),
            ],
            indexes: vec![Index {
                name: "ix_users_email".into(),
                unique: true,
                columns: vec!["email".into()],
                valid: true,
            }],
            ..Table::default()
        };
        let mut live = users.clone();
        live.columns[1] = col("email", "text", true);
        live.indexes.clear();
        let extra = Table {
            name: "audit".into(),
            ..Table::default()
        };
        let d = diff(&schema(vec![users.clone()]), &schema(vec![live, extra]));
        let got: Vec<(&str, DiffKind)> = d.iter().map(|x| (x.object.as_str(), x.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("table audit", DiffKind::Extra),
                ("column users.email", DiffKind::Altered),
                ("column users.email", DiffKind::Altered),
                ("index users.ix_users_email", DiffKind::Missing),
            ]
        );
        assert_eq!(d[1].expected, "type varchar(255)");
        assert_eq!(d[2].actual, "NULL");
        assert!(diff(&schema(vec![users.clone()]), &schema(vec![users])).is_empty());
    }

    #[test]
    fn invalid_indexes_are_reported_as_invalid_only() {
        let index = |name: &str, valid: bool| Index {
            name: name.into(),
            unique: true,
            columns: vec!["email".into()],
            valid,
        };
        let expected = Table {
            name: "users".into(),
            indexes: vec![index("ix_users_email", true)],
            ..Table::default()
        };
        let live = Table {
            indexes: vec![index("ix_leftover", false), index("ix_users_email", false)],
            ..expected.clone()
        };
        let d = diff(&schema(vec![expected]), &schema(vec![live]));
        let got: Vec<(&str, DiffKind)> = d.iter().map(|x| (x.object.as_str(), x.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("index users.ix_leftover", DiffKind::Invalid),
                ("index users.ix_users_email", DiffKind::Invalid),
            ]
        );
        assert_eq!(d[0].expected, ABSENT);
        assert!(d[0].actual.contains("INVALID") && d[0].actual.contains("drop it"));
        assert_eq!(d[1].expected, "UNIQUE (email)");
        assert!(d[1].actual.contains("REINDEX"), "{}", d[1].actual);
    }

    #[test]
    fn strips_casts_of_literals_only() {
        assert_eq!(
            strip_literal_cast("'email_qq'::character varying"),
            "'email_qq'"
        );
        assert_eq!(strip_literal_cast("'it''s'::text"), "'it''s'");
        assert_eq!(strip_literal_cast("'a'::character varying(20)"), "'a'");
        assert_eq!(
            strip_literal_cast("nextval('s'::regclass)"),
            "nextval('s'::regclass)"
        );
        assert_eq!(strip_literal_cast("'a' || 'b'"), "'a' || 'b'");
    }

    #[test]
    fn recognises_postgres_not_null_checks() {
        assert!(is_pg_not_null_check("2200_16385_2_not_null"));
        assert!(!is_pg_not_null_check("price_not_null"));
        assert!(!is_pg_not_null_check("a_b_c_not_null"));
    }
}
