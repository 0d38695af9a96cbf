//! `dbtool new --autogenerate`: the difference between an app's entities (the `entity` crate
//! compiled into this binary, completed by `entity::schema`) and the schema its migrations
//! make, written as the `up` and `down` of a new migration with sea-query builders.
//!
//! Both sides are built in in-memory SQLite databases and read back with the engine's
//! introspection, so they are compared in one spelling whatever the backend: the migrations
//! applied one by one, the entities created from their definitions. SQLite keeps every
//! distinction SeaORM's column types make except integer widths (`integer` and `bigint` are
//! one type there) and constraint names, so a change between `i32` and `i64` is not seen and
//! foreign keys are matched by their columns and target.
//!
//! The code works on all three backends: PostgreSQL and MySQL change tables in place (guarded
//! on MySQL, which commits DDL as it goes: see the `ddl` helpers in the migration crate);
//! SQLite rebuilds a table for what it cannot change in place (a column's type, nullability or
//! default, a dropped column, a foreign key) and adds plain columns in place.

use anyhow::{Context as _, Result};
use entity::schema::TableDef;
use migration::engine::schema::{self, Column, ForeignKey, Index, Schema, Table};
use migration::App;
use sea_orm::sea_query::{ColumnType, StringLen};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// What `new --autogenerate` writes into the migration file.
#[derive(Debug, Default)]
pub struct Generated {
    /// The body of `up`, indented for the impl.
    pub up: String,
    /// The body of `down`.
    pub down: String,
    /// Functions the bodies call (table definitions for SQLite's rebuild).
    pub helpers: String,
    /// Tables `up` creates.
    pub creates_tables: Vec<String>,
    /// One line per change, for the description and the command's output.
    pub changes: Vec<String>,
    /// What could not be inferred and is left as a commented placeholder.
    pub placeholders: Vec<String>,
}

impl Generated {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The entities of `app` in their completed form.
pub fn entity_tables(app: App) -> Result<Vec<TableDef>> {
    match app {
        App::Avatar => Ok(entity::avatar::tables()),
        App::Neurachar => Ok(entity::neurachar::tables()),
        #[allow(unreachable_patterns)]
        other => anyhow::bail!("app {other} has no entities"),
    }
}

/// A private in-memory SQLite database (also `check`'s scratch database on SQLite).
pub async fn memory() -> Result<DatabaseConnection> {
    let mut opt = ConnectOptions::new("sqlite::memory:");
    // One connection: every in-memory connection is a database of its own.
    opt.max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    Database::connect(opt)
        .await
        .context("opening an in-memory SQLite database")
}

/// What the migrations of `app` make, read from an in-memory SQLite database.
pub async fn migrated_schema(app: App) -> Result<Schema> {
    let db = memory().await?;
    let names: BTreeSet<&str> = app.steps().iter().map(|s| s.name).collect();
    let s = schema::expected(app, &names, &db)
        .await
        .context("applying the migrations to an in-memory SQLite database")?;
    db.close().await.ok();
    Ok(s)
}

/// What the entities describe, created in an in-memory SQLite database and read back the
/// same way as the migrations' schema.
pub async fn entity_schema(tables: &[TableDef]) -> Result<Schema> {
    let db = memory().await?;
    let b = sea_orm::DbBackend::Sqlite;
    for t in tables {
        db.execute(&create_statement(t))
            .await
            .with_context(|| format!("creating table {} from its entity", t.name))?;
        for ix in &t.indexes {
            let mut stmt = sea_orm::sea_query::Index::create();
            stmt.name(&ix.name)
                .table(sea_orm::sea_query::Alias::new(&t.name));
            for c in &ix.columns {
                stmt.col(sea_orm::sea_query::Alias::new(c));
            }
            if ix.unique {
                stmt.unique();
            }
            db.execute(&stmt)
                .await
                .with_context(|| format!("creating index {} from the entities", ix.name))?;
        }
    }
    let _ = b;
    let s = schema::introspect(&db)
        .await
        .context("reading the entities' schema")?;
    db.close().await.ok();
    Ok(s)
}

fn create_statement(t: &TableDef) -> sea_orm::sea_query::TableCreateStatement {
    use sea_orm::sea_query::{Alias, ColumnDef, ForeignKey, Table};
    let mut stmt = Table::create();
    stmt.table(Alias::new(&t.name));
    for c in &t.columns {
        let mut d = ColumnDef::new_with_type(Alias::new(&c.name), c.col_type.clone());
        if c.nullable {
            d.null();
        } else {
            d.not_null();
        }
        if let Some(e) = &c.default {
            d.default(e.clone());
        }
        if c.auto_increment {
            d.auto_increment();
        }
        if c.primary_key && t.primary_key.len() == 1 {
            d.primary_key();
        }
        if c.unique {
            d.unique_key();
        }
        stmt.col(d);
    }
    if t.primary_key.len() > 1 {
        let mut pk = sea_orm::sea_query::Index::create();
        for c in &t.primary_key {
            pk.col(Alias::new(c));
        }
        stmt.primary_key(&mut pk);
    }
    for f in &t.foreign_keys {
        let mut fk = ForeignKey::create();
        fk.name(&f.name)
            .from_tbl(Alias::new(&t.name))
            .to_tbl(Alias::new(&f.ref_table));
        for c in &f.columns {
            fk.from_col(Alias::new(c));
        }
        for c in &f.ref_columns {
            fk.to_col(Alias::new(c));
        }
        if let Some(a) = f.on_delete {
            fk.on_delete(a);
        }
        if let Some(a) = f.on_update {
            fk.on_update(a);
        }
        stmt.foreign_key(&mut fk);
    }
    stmt
}

/// Compares the entities of `app` with its migrations and writes the code for the
/// difference (empty when they agree).
pub async fn generate(app: App) -> Result<Generated> {
    let defs = entity_tables(app)?;
    let old = migrated_schema(app).await?;
    let new = entity_schema(&defs).await?;
    Ok(diff_code(&defs, &old, &new))
}

// ---------------------------------------------------------------------------------------------
// Code

fn q(s: &str) -> String {
    format!("{s:?}")
}

/// The builder call for a column type as SeaORM declares it.
fn type_code(t: &ColumnType) -> Option<String> {
    Some(match t {
        ColumnType::Char(Some(n)) => format!(".char_len({n})"),
        ColumnType::Char(None) => ".char()".into(),
        ColumnType::String(StringLen::N(n)) => format!(".string_len({n})"),
        ColumnType::String(_) => ".string()".into(),
        ColumnType::Text => ".text()".into(),
        ColumnType::TinyInteger => ".tiny_integer()".into(),
        ColumnType::SmallInteger => ".small_integer()".into(),
        ColumnType::Integer => ".integer()".into(),
        ColumnType::BigInteger => ".big_integer()".into(),
        ColumnType::TinyUnsigned => ".tiny_unsigned()".into(),
        ColumnType::SmallUnsigned => ".small_unsigned()".into(),
        ColumnType::Unsigned => ".unsigned()".into(),
        ColumnType::BigUnsigned => ".big_unsigned()".into(),
        ColumnType::Float => ".float()".into(),
        ColumnType::Double => ".double()".into(),
        ColumnType::Decimal(Some((p, s))) => format!(".decimal_len({p}, {s})"),
        ColumnType::Decimal(None) => ".decimal()".into(),
        ColumnType::DateTime => ".date_time()".into(),
        ColumnType::Timestamp => ".timestamp()".into(),
        ColumnType::TimestampWithTimeZone => ".timestamp_with_time_zone()".into(),
        ColumnType::Time => ".time()".into(),
        ColumnType::Date => ".date()".into(),
        ColumnType::Binary(n) => format!(".binary_len({n})"),
        ColumnType::VarBinary(StringLen::N(n)) => format!(".var_binary({n})"),
        ColumnType::Blob => ".blob()".into(),
        ColumnType::Boolean => ".boolean()".into(),
        ColumnType::Json => ".json()".into(),
        ColumnType::JsonBinary => ".json_binary()".into(),
        ColumnType::Uuid => ".uuid()".into(),
        ColumnType::Custom(name) => format!(".custom(Alias::new({}))", q(&name.to_string())),
        _ => return None,
    })
}

/// The builder call for a type as SQLite spells it (the migrations' side, read back).
fn sqlite_type_code(t: &str) -> String {
    let arg = |prefix: &str| -> Option<String> {
        t.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
            .map(str::to_owned)
    };
    if let Some(n) = arg("varchar") {
        return format!(".string_len({n})");
    }
    if let Some(n) = arg("char") {
        return format!(".char_len({n})");
    }
    if let Some(n) = arg("blob") {
        return format!(".binary_len({n})");
    }
    if let Some(ps) = arg("decimal") {
        return format!(".decimal_len({ps})");
    }
    match t {
        "varchar" => ".string()",
        "text" => ".text()",
        "tinyint" => ".tiny_integer()",
        "smallint" => ".small_integer()",
        "integer" => ".integer()",
        "float" => ".float()",
        "double" => ".double()",
        "decimal" => ".decimal()",
        "datetime_text" => ".date_time()",
        "timestamp_text" => ".timestamp()",
        "timestamp_with_timezone_text" => ".timestamp_with_time_zone()",
        "time_text" => ".time()",
        "date_text" => ".date()",
        "blob" => ".blob()",
        "boolean" => ".boolean()",
        "json_text" => ".json()",
        "jsonb_text" => ".json_binary()",
        "uuid_text" => ".uuid()",
        other => return format!(".custom(Alias::new({}))", q(other)),
    }
    .to_owned()
}

/// `.default(...)` for a default as the engine reads it back from SQLite.
fn default_code(d: &str) -> String {
    let up = d.to_ascii_uppercase();
    if up == "CURRENT_TIMESTAMP" {
        // `now()` on PostgreSQL, as the existing migrations write it.
        return ".default(ddl::now(manager))".into();
    }
    if up == "TRUE" || up == "FALSE" {
        return format!(".default({})", up.to_ascii_lowercase());
    }
    if d.parse::<i64>().is_ok() || d.parse::<f64>().is_ok() {
        return format!(".default({d})");
    }
    if let Some(s) = d.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return format!(".default({})", q(&s.replace("''", "'")));
    }
    format!(".default(Expr::cust({}))", q(d))
}

/// A column's full definition: type from the entity when there is one (exact), else from the
/// SQLite spelling; nullability and default as read back.
fn column_code(c: &Column, def: Option<&entity::schema::ColumnDef>, single_pk: bool) -> String {
    let ty = def
        .and_then(|d| type_code(&d.col_type))
        .unwrap_or_else(|| sqlite_type_code(&c.data_type));
    let mut s = format!("ColumnDef::new(Alias::new({})){ty}", q(&c.name));
    s += if c.nullable { ".null()" } else { ".not_null()" };
    if let Some(d) = &c.default {
        s += &default_code(d);
    }
    if c.auto_increment {
        s += ".auto_increment()";
    }
    if single_pk {
        s += ".primary_key()";
    }
    if def.is_some_and(|d| d.unique) {
        s += ".unique_key()";
    }
    s
}

fn action_code(a: &str) -> &'static str {
    match a {
        "CASCADE" => "ForeignKeyAction::Cascade",
        "SET NULL" => "ForeignKeyAction::SetNull",
        "SET DEFAULT" => "ForeignKeyAction::SetDefault",
        "RESTRICT" => "ForeignKeyAction::Restrict",
        _ => "ForeignKeyAction::NoAction",
    }
}

/// The constraint name of foreign key `f` of `table`: the entity's, else PostgreSQL's.
fn fk_name(table: &str, f: &ForeignKey, def: Option<&TableDef>) -> String {
    def.and_then(|d| {
        d.foreign_keys
            .iter()
            .find(|k| k.columns == f.columns && k.ref_table == f.ref_table)
    })
    .map(|k| k.name.clone())
    .or_else(|| f.name.clone())
    .unwrap_or_else(|| format!("{table}_{}_fkey", f.columns.join("_")))
}

fn fk_code(table: &str, f: &ForeignKey, def: Option<&TableDef>) -> String {
    let cols = |cs: &[String]| {
        cs.iter()
            .map(|c| format!("Alias::new({})", q(c)))
            .collect::<Vec<_>>()
    };
    let mut s = format!(
        "ForeignKey::create()\n    .name({})\n    .from_tbl(Alias::new({}))\n    .to_tbl(Alias::new({}))",
        q(&fk_name(table, f, def)),
        q(table),
        q(&f.ref_table)
    );
    for c in cols(&f.columns) {
        let _ = write!(s, "\n    .from_col({c})");
    }
    for c in cols(&f.ref_columns) {
        let _ = write!(s, "\n    .to_col({c})");
    }
    let _ = write!(
        s,
        "\n    .on_update({})\n    .on_delete({})\n    .to_owned()",
        action_code(&f.on_update),
        action_code(&f.on_delete)
    );
    s
}

/// Indents every line of `code` by `n` spaces.
fn indent(code: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    code.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Indexes a statement creates itself (SQLite's inline UNIQUE) are not created again.
fn own_indexes(t: &Table) -> Vec<&Index> {
    t.indexes
        .iter()
        .filter(|i| !i.name.starts_with("sqlite_autoindex_"))
        .collect()
}

/// `fn <table>_<which>(manager) -> TableCreateStatement` and `fn ..._indexes()`: the whole
/// table, for creating it and for SQLite's rebuild.
fn table_fns(
    t: &Table,
    def: Option<&TableDef>,
    which: &str,
    with_indexes: bool,
) -> (String, String) {
    let f = format!("{}_{which}", ident(&t.name));
    let single_pk = t.primary_key.as_ref().map_or(0, |p| p.columns.len()) == 1;
    let mut body = format!("ddl::create_table(manager, Alias::new({}))", q(&t.name));
    for c in &t.columns {
        let cdef = def.and_then(|d| d.columns.iter().find(|x| x.name == c.name));
        let in_pk = t
            .primary_key
            .as_ref()
            .is_some_and(|p| p.columns.contains(&c.name));
        let mut code = column_code(c, cdef, single_pk && in_pk);
        // Inline UNIQUE read back from SQLite (no entity at hand).
        if cdef.is_none()
            && t.indexes.iter().any(|i| {
                i.unique && i.name.starts_with("sqlite_autoindex_") && i.columns == [c.name.clone()]
            })
        {
            code += ".unique_key()";
        }
        let _ = write!(body, "\n    .col({code})");
    }
    if let Some(p) = t.primary_key.as_ref().filter(|p| p.columns.len() > 1) {
        let _ = write!(body, "\n    .primary_key(Index::create()");
        for c in &p.columns {
            let _ = write!(body, ".col(Alias::new({}))", q(c));
        }
        body += ")";
    }
    for fk in &t.foreign_keys {
        let _ = write!(
            body,
            "\n    .foreign_key(&mut {})",
            indent(&fk_code(&t.name, fk, def), 4).trim_start()
        );
    }
    body += "\n    .to_owned()";
    let table_fn = format!(
        "/// `{}` as it is {}.\nfn {f}(manager: &SchemaManager) -> TableCreateStatement {{\n{}\n}}\n",
        t.name,
        if which == "after" { "after this step" } else { "before this step" },
        indent(&body, 4)
    );
    let mut ix = String::from("vec![");
    for i in own_indexes(t) {
        let cols: String = i
            .columns
            .iter()
            .map(|c| format!("\n        .col(Alias::new({}))", q(c)))
            .collect();
        let _ = write!(
            ix,
            "\n    Index::create()\n        .name({})\n        .table(Alias::new({})){cols}{}\n        .to_owned(),",
            q(&i.name),
            q(&t.name),
            if i.unique { "\n        .unique()" } else { "" }
        );
    }
    ix += "\n]";
    let index_fn =
        format!(
        "/// The indexes of `{}` {}.\nfn {f}_indexes() -> Vec<IndexCreateStatement> {{\n{}\n}}\n",
        t.name,
        if which == "after" { "after this step" } else { "before this step" },
        indent(&ix, 4)
    );
    if !with_indexes {
        return (f, table_fn);
    }
    (f, format!("{table_fn}\n{index_fn}"))
}

fn index_cols(i: &Index) -> String {
    format!(
        "&[{}]",
        i.columns
            .iter()
            .map(|c| q(c))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn create_index_code(t: &str, i: &Index) -> String {
    format!(
        "ddl::create_index(manager, {}, {}, {}, {}).await?;",
        q(&i.name),
        q(t),
        index_cols(i),
        i.unique
    )
}

fn drop_index_code(t: &str, i: &Index) -> String {
    format!(
        "ddl::drop_index(manager, {}, Alias::new({})).await?;",
        q(&i.name),
        q(t)
    )
}

/// Whether SQLite can add `c` in place: `ADD COLUMN` takes no UNIQUE or PRIMARY KEY, no
/// non-constant default, and NOT NULL only with a default.
fn sqlite_addable(c: &Column, def: Option<&entity::schema::ColumnDef>) -> bool {
    let constant_default = c
        .default
        .as_ref()
        .is_none_or(|d| !d.eq_ignore_ascii_case("CURRENT_TIMESTAMP") && !d.contains('('));
    constant_default
        && (c.nullable || c.default.is_some())
        && !def.is_some_and(|d| d.unique || d.primary_key)
}

/// What changed in one table that exists on both sides.
#[derive(Default)]
struct TableChange<'a> {
    added: Vec<&'a Column>,
    dropped: Vec<&'a Column>,
    /// (before, after)
    altered: Vec<(&'a Column, &'a Column)>,
    ix_added: Vec<&'a Index>,
    ix_dropped: Vec<&'a Index>,
    fk_added: Vec<&'a ForeignKey>,
    fk_dropped: Vec<&'a ForeignKey>,
    pk_changed: bool,
}

impl TableChange<'_> {
    fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.dropped.is_empty()
            && self.altered.is_empty()
            && self.ix_added.is_empty()
            && self.ix_dropped.is_empty()
            && self.fk_added.is_empty()
            && self.fk_dropped.is_empty()
            && !self.pk_changed
    }
}

fn fk_key(f: &ForeignKey) -> String {
    f.describe()
}

fn compare<'a>(o: &'a Table, n: &'a Table) -> TableChange<'a> {
    let mut ch = TableChange::default();
    for nc in &n.columns {
        match o.columns.iter().find(|c| c.name == nc.name) {
            None => ch.added.push(nc),
            Some(oc)
                if oc.data_type != nc.data_type
                    || oc.nullable != nc.nullable
                    || oc.default != nc.default =>
            {
                ch.altered.push((oc, nc))
            }
            Some(oc) if oc.auto_increment != nc.auto_increment => ch.pk_changed = true,
            Some(_) => {}
        }
    }
    for oc in &o.columns {
        if !n.columns.iter().any(|c| c.name == oc.name) {
            ch.dropped.push(oc);
        }
    }
    // Inline UNIQUE constraints carry SQLite's own names: compared by their columns.
    let key = |i: &Index| {
        if i.name.starts_with("sqlite_autoindex_") {
            format!("unique constraint ({})", i.columns.join(", "))
        } else {
            i.name.clone()
        }
    };
    for ni in &n.indexes {
        match o.indexes.iter().find(|i| key(i) == key(ni)) {
            Some(oi) if oi.columns == ni.columns && oi.unique == ni.unique => {}
            Some(oi) => {
                ch.ix_dropped.push(oi);
                ch.ix_added.push(ni);
            }
            None => ch.ix_added.push(ni),
        }
    }
    for oi in &o.indexes {
        if !n.indexes.iter().any(|i| key(i) == key(oi)) {
            ch.ix_dropped.push(oi);
        }
    }
    for nf in &n.foreign_keys {
        if !o.foreign_keys.iter().any(|f| fk_key(f) == fk_key(nf)) {
            ch.fk_added.push(nf);
        }
    }
    for of in &o.foreign_keys {
        if !n.foreign_keys.iter().any(|f| fk_key(f) == fk_key(of)) {
            ch.fk_dropped.push(of);
        }
    }
    if o.primary_key.as_ref().map(|p| &p.columns) != n.primary_key.as_ref().map(|p| &p.columns) {
        ch.pk_changed = true;
    }
    ch
}

/// The code for everything that differs between `old` (the migrations) and `new` (the
/// entities, whose definitions are `defs`).
pub fn diff_code(defs: &[TableDef], old: &Schema, new: &Schema) -> Generated {
    let mut g = Generated::default();
    let mut up: Vec<String> = Vec::new();
    let mut down: Vec<String> = Vec::new();
    let mut helpers: Vec<String> = Vec::new();
    let def_of = |t: &str| defs.iter().find(|d| d.name == t);
    let order: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();

    // New tables, in the entities' order (referenced tables first).
    let created: Vec<&Table> = order
        .iter()
        .filter(|t| !old.tables.contains_key(**t))
        .filter_map(|t| new.tables.get(*t))
        .collect();
    // Dropped tables, children before the tables they reference.
    let mut left: Vec<&Table> = old
        .tables
        .values()
        .filter(|t| !new.tables.contains_key(&t.name))
        .collect();
    let mut dropped: Vec<&Table> = Vec::new();
    while !left.is_empty() {
        let i = left
            .iter()
            .position(|t| {
                !left.iter().any(|o| {
                    o.name != t.name && o.foreign_keys.iter().any(|f| f.ref_table == t.name)
                })
            })
            .unwrap_or(0);
        dropped.push(left.remove(i));
    }
    for t in &created {
        let (f, code) = table_fns(t, def_of(&t.name), "after", false);
        helpers.push(code);
        g.changes.push(format!("create table {}", t.name));
        g.creates_tables.push(t.name.clone());
        let mut code = format!(
            "// New table {}.\nmanager.create_table({f}(manager)).await?;",
            t.name
        );
        for i in own_indexes(t) {
            code += "\n";
            code += &create_index_code(&t.name, i);
        }
        up.push(code);
    }

    // Tables on both sides.
    let mut up_alter: Vec<String> = Vec::new();
    let mut down_alter: Vec<String> = Vec::new();
    for name in &order {
        let (Some(o), Some(n)) = (old.tables.get(*name), new.tables.get(*name)) else {
            continue;
        };
        let ch = compare(o, n);
        if ch.is_empty() {
            continue;
        }
        let def = def_of(name);
        let cdef = |c: &str| def.and_then(|d| d.columns.iter().find(|x| x.name == c));
        let t = *name;
        let mut summary = Vec::new();
        for c in &ch.added {
            summary.push(format!("add column {t}.{} {}", c.name, c.describe()));
            if !c.nullable && c.default.is_none() {
                g.placeholders.push(format!(
                    "{t}.{} is NOT NULL without a default: existing rows need a value (give it a default, or add it nullable, backfill, then make it NOT NULL)",
                    c.name
                ));
            }
        }
        for c in &ch.dropped {
            summary.push(format!("drop column {t}.{}", c.name));
        }
        for (a, b) in &ch.altered {
            summary.push(format!(
                "alter column {t}.{}: {} -> {}",
                a.name,
                a.describe(),
                b.describe()
            ));
            if a.data_type != b.data_type {
                g.placeholders.push(format!(
                    "{t}.{}: {} -> {}: check that every stored value converts (PostgreSQL may need a USING clause)",
                    a.name, a.data_type, b.data_type
                ));
            }
            if a.nullable && !b.nullable {
                g.placeholders.push(format!(
                    "{t}.{} becomes NOT NULL: rows holding NULL must get a value first (a data migration)",
                    a.name
                ));
            }
        }
        for i in &ch.ix_added {
            summary.push(format!("add index {t}.{} {}", i.name, i.describe()));
        }
        for i in &ch.ix_dropped {
            summary.push(format!("drop index {t}.{}", i.name));
        }
        for f in &ch.fk_added {
            summary.push(format!(
                "add foreign key {t}{}",
                f.describe().trim_start_matches(|c| c != '(')
            ));
        }
        for f in &ch.fk_dropped {
            summary.push(format!("drop foreign key {t} {}", f.describe()));
        }
        if ch.pk_changed {
            summary.push(format!("primary key of {t} changed (not generated)"));
            g.placeholders.push(format!(
                "the primary key of {t} changed: not generated; write it by hand"
            ));
        }
        // Possible renames: a column dropped and one of the same type added.
        for d in &ch.dropped {
            if let Some(a) = ch.added.iter().find(|a| a.data_type == d.data_type) {
                g.placeholders.push(format!(
                    "{t}.{} dropped and {t}.{} added with the same type: if that is a rename, replace both with `Table::alter().rename_column(...)` so the values are kept",
                    d.name, a.name
                ));
            }
        }
        g.changes.extend(summary.iter().cloned());

        // SQLite: in place only for plain new columns and index changes.
        let in_place = ch.dropped.is_empty()
            && ch.altered.is_empty()
            && ch.fk_added.is_empty()
            && ch.fk_dropped.is_empty()
            && ch.added.iter().all(|c| sqlite_addable(c, cdef(&c.name)));

        // PostgreSQL and MySQL/MariaDB, in place.
        let mut pg_up: Vec<String> = Vec::new();
        let mut pg_down: Vec<String> = Vec::new();
        for f in &ch.fk_dropped {
            pg_up.push(format!(
                "ddl::drop_foreign_key(manager, {}, {}).await?;",
                q(t),
                q(&fk_name(t, f, None))
            ));
        }
        for i in &ch.ix_dropped {
            if !i.name.starts_with("sqlite_autoindex_") {
                pg_up.push(drop_index_code(t, i));
            }
        }
        for c in &ch.dropped {
            pg_up.push(format!(
                "ddl::drop_column(manager, {}, {}).await?;",
                q(t),
                q(&c.name)
            ));
        }
        for c in &ch.added {
            pg_up.push(format!(
                "ddl::add_column(manager, {}, {}.to_owned()).await?;",
                q(t),
                column_code(c, cdef(&c.name), false)
            ));
        }
        for (_, b) in &ch.altered {
            let mut code = column_code(b, cdef(&b.name), false);
            // The column's own constraints stay as they are.
            code = code.replace(".unique_key()", "");
            pg_up.push(format!(
                "ddl::alter_column(manager, {}, {}.to_owned()).await?;",
                q(t),
                code
            ));
        }
        for i in &ch.ix_added {
            if !i.name.starts_with("sqlite_autoindex_") {
                pg_up.push(create_index_code(t, i));
            }
        }
        for f in &ch.fk_added {
            pg_up.push(format!(
                "ddl::add_foreign_key(manager, {}, {}).await?;",
                q(t),
                indent(&fk_code(t, f, def), 4).trim_start()
            ));
        }
        // down: the reverse, in reverse order.
        for f in &ch.fk_added {
            pg_down.push(format!(
                "ddl::drop_foreign_key(manager, {}, {}).await?;",
                q(t),
                q(&fk_name(t, f, def))
            ));
        }
        for i in &ch.ix_added {
            if !i.name.starts_with("sqlite_autoindex_") {
                pg_down.push(drop_index_code(t, i));
            }
        }
        for (a, _) in &ch.altered {
            let code = column_code(a, None, false);
            pg_down.push(format!(
                "ddl::alter_column(manager, {}, {}.to_owned()).await?;",
                q(t),
                code
            ));
        }
        for c in &ch.added {
            pg_down.push(format!(
                "ddl::drop_column(manager, {}, {}).await?;",
                q(t),
                q(&c.name)
            ));
        }
        for c in &ch.dropped {
            let before = o
                .columns
                .iter()
                .position(|x| x.name == c.name)
                .filter(|i| *i > 0)
                .map(|i| &o.columns[i - 1].name);
            pg_down.push(match before {
                Some(prev) => format!(
                    "ddl::add_column_after(manager, {}, {}.to_owned(), {}).await?;",
                    q(t),
                    column_code(c, None, false),
                    q(prev)
                ),
                None => format!(
                    "ddl::add_column(manager, {}, {}.to_owned()).await?;",
                    q(t),
                    column_code(c, None, false)
                ),
            });
        }
        for i in &ch.ix_dropped {
            if !i.name.starts_with("sqlite_autoindex_") {
                pg_down.push(create_index_code(t, i));
            }
        }
        for f in &ch.fk_dropped {
            pg_down.push(format!(
                "ddl::add_foreign_key(manager, {}, {}).await?;",
                q(t),
                indent(&fk_code(t, f, None), 4).trim_start()
            ));
        }

        let (sqlite_up, sqlite_down) = if in_place {
            let mut su = Vec::new();
            let mut sd = Vec::new();
            for i in &ch.ix_dropped {
                su.push(drop_index_code(t, i));
            }
            for c in &ch.added {
                su.push(format!(
                    "ddl::add_column(manager, {}, {}.to_owned()).await?;",
                    q(t),
                    column_code(c, cdef(&c.name), false)
                ));
            }
            for i in &ch.ix_added {
                su.push(create_index_code(t, i));
            }
            for i in &ch.ix_added {
                sd.push(drop_index_code(t, i));
            }
            for c in &ch.added {
                sd.push(format!(
                    "ddl::drop_column(manager, {}, {}).await?;",
                    q(t),
                    q(&c.name)
                ));
            }
            for i in &ch.ix_dropped {
                sd.push(create_index_code(t, i));
            }
            (su, sd)
        } else {
            let (fa, after) = table_fns(n, def, "after", true);
            let (fb, before) = table_fns(o, None, "before", true);
            helpers.push(after);
            helpers.push(before);
            let kept: Vec<String> = n
                .columns
                .iter()
                .filter(|c| o.columns.iter().any(|x| x.name == c.name))
                .map(|c| q(&c.name))
                .collect();
            let keep = format!("&[{}]", kept.join(", "));
            (
                vec![format!(
                    "ddl::sqlite_rebuild(manager, {}, {fa}(manager), {keep}, {fa}_indexes()).await?;",
                    q(t)
                )],
                vec![format!(
                    "ddl::sqlite_rebuild(manager, {}, {fb}(manager), {keep}, {fb}_indexes()).await?;",
                    q(t)
                )],
            )
        };
        let comment = summary
            .iter()
            .map(|s| format!("// {s}"))
            .collect::<Vec<_>>()
            .join("\n");
        let branch = |sqlite: &[String], other: &[String]| {
            if sqlite == other {
                return format!("{comment}\n{}", other.join("\n"));
            }
            format!(
                "{comment}\nif manager.get_database_backend() == DbBackend::Sqlite {{\n{}\n}} else {{\n{}\n}}",
                indent(&sqlite.join("\n"), 4),
                indent(&other.join("\n"), 4)
            )
        };
        up_alter.push(branch(&sqlite_up, &pg_up));
        down_alter.insert(0, branch(&sqlite_down, &pg_down));
    }
    up.extend(up_alter);

    for t in &dropped {
        g.changes.push(format!("drop table {}", t.name));
        up.push(format!(
            "// Table {} is no longer in the entities: its rows go with it.\nddl::drop_table(manager, Alias::new({})).await?;",
            t.name,
            q(&t.name)
        ));
    }
    for t in dropped.iter().rev() {
        let (f, code) = table_fns(t, None, "before", false);
        helpers.push(code);
        let mut code = format!(
            "// Table {} as it was (without its rows).\nmanager.create_table({f}(manager)).await?;",
            t.name
        );
        for i in own_indexes(t) {
            code += "\n";
            code += &create_index_code(&t.name, i);
        }
        down.push(code);
    }
    if !created.is_empty() && !dropped.is_empty() {
        g.placeholders.push(format!(
            "tables {} dropped and {} created: if that is a rename, replace both with `manager.rename_table(...)` so the rows are kept",
            dropped.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
            created.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    down.extend(down_alter);
    for t in created.iter().rev() {
        down.push(format!(
            "ddl::drop_table(manager, Alias::new({})).await?;",
            q(&t.name)
        ));
    }
    if !g.placeholders.is_empty() {
        let mut p = String::from("// Not generated (review before applying):");
        for x in &g.placeholders {
            let _ = write!(p, "\n// - {x}");
        }
        p += "\n// A data migration goes here, e.g.:\n// manager.get_connection().execute_unprepared(\"UPDATE ... SET ... WHERE ...\").await?;";
        up.push(p);
    }
    g.up = up.join("\n\n");
    g.down = down.join("\n\n");
    g.helpers = helpers.join("\n");
    g
}
