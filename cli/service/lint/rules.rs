//! The rules: one pass over the parsed statements that keeps what a reader of the script
//! would keep in mind (tables created so far, whether a lock timeout is set, the open
//! transaction) and reports each risky operation with its table's size.

use super::{Config, Finding, Input, Severity, Sizes, TableSize};
use sea_orm::DbBackend;
use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableAlgorithm, AlterTableLock, AlterTableOperation,
    ColumnDef, ColumnOption, ContextModifier, CreateIndex, Expr, FromTable, FunctionArg,
    FunctionArgExpr, FunctionArguments, GeneratedAs, ObjectName, ObjectType, Reset, Set, SetExpr,
    Statement, TableConstraint, TableFactor,
};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use std::collections::{BTreeSet, HashSet};

const PG: DbBackend = DbBackend::Postgres;
const MYSQL: DbBackend = DbBackend::MySql;
const SQLITE: DbBackend = DbBackend::Sqlite;

fn parser_dialect(d: DbBackend) -> Box<dyn Dialect> {
    match d {
        DbBackend::Postgres => Box::new(PostgreSqlDialect {}),
        DbBackend::MySql => Box::new(MySqlDialect {}),
        _ => Box::new(SQLiteDialect {}),
    }
}

/// The statements of one input, or why they could not be parsed.
fn parse(sql: &str, dialect: &dyn Dialect) -> Result<Vec<Statement>, String> {
    // sqlparser 0.64 does not know `DROP INDEX CONCURRENTLY`, the safe way to drop an index
    // on PostgreSQL: nothing to report about it.
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    if words == ["DROP", "INDEX", "CONCURRENTLY"] {
        return Ok(Vec::new());
    }
    if sql.len() > MAX_STATEMENT {
        return Err(format!(
            "too long to analyse ({} bytes; the limit is {MAX_STATEMENT})",
            sql.len()
        ));
    }
    Parser::parse_sql(dialect, sql).map_err(|e| {
        e.to_string()
            .trim_start_matches("sql parser error: ")
            .to_owned()
    })
}

/// The parser's message with its position (relative to the statement) made relative to the
/// script: `… at Line: 2, Column: 5` → `… at line 13, column 5`.
fn locate(message: &str, first_line: Option<usize>) -> String {
    let Some(at) = message.rfind(" at Line: ") else {
        return message.to_owned();
    };
    let pos = &message[at + " at Line: ".len()..];
    let Some((line, column)) = pos.split_once(", Column: ") else {
        return message.to_owned();
    };
    match (line.parse::<usize>(), first_line) {
        (Ok(l), Some(first)) => format!(
            "{} at line {}, column {column}",
            &message[..at],
            first + l - 1
        ),
        _ => message[..at].to_owned(),
    }
}

/// A table's name as the database spells it: the last part of a qualified name; unquoted
/// names folded to lower case where the backend folds them (PostgreSQL, SQLite).
fn table_name(name: &ObjectName, dialect: DbBackend) -> String {
    let Some(ident) = name.0.last().and_then(|p| p.as_ident()) else {
        return name.to_string();
    };
    match (ident.quote_style, dialect) {
        (None, PG | SQLITE) => ident.value.to_lowercase(),
        _ => ident.value.clone(),
    }
}

/// `SET LOCAL` lasts until the end of the transaction, a session setting until reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Session,
    Local,
}

/// What the open transaction did so far (PostgreSQL).
#[derive(Default)]
struct Tx {
    /// Existing tables whose schema it changed (their locks are held until COMMIT).
    ddl: Vec<String>,
    /// Data changes on existing tables: (input index, table).
    data: Vec<(usize, String)>,
}

struct Linter<'a> {
    cfg: &'a Config,
    sizes: &'a Sizes,
    inputs: &'a [Input],
    created: HashSet<String>,
    timeout: Option<Scope>,
    timeout_reported: bool,
    tx: Option<Tx>,
    findings: Vec<Finding>,
}

pub fn run(inputs: &[Input], cfg: &Config, sizes: &Sizes) -> Vec<Finding> {
    on_deep_stack(|| run_here(inputs, cfg, sizes))
}

/// A long chain of operators (`a = 1 OR a = 2 OR …`, thousands of terms) parses into a tree
/// as deep as it is long, and walking or dropping it recurses that deep: it gets a stack to
/// match. Statements longer than [`MAX_STATEMENT`] are not parsed at all.
fn on_deep_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .stack_size(1 << 30)
            .spawn_scoped(scope, f)
        {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => panic!("cannot start the lint thread: {e}"),
        }
    })
}

/// The longest statement lint parses (bytes); a longer one is reported as not analysed.
const MAX_STATEMENT: usize = 1 << 20;

fn run_here(inputs: &[Input], cfg: &Config, sizes: &Sizes) -> Vec<Finding> {
    let dialect = parser_dialect(cfg.dialect);
    let mut l = Linter {
        cfg,
        sizes,
        inputs,
        created: HashSet::new(),
        timeout: None,
        timeout_reported: false,
        tx: None,
        findings: Vec::new(),
    };
    for (i, input) in inputs.iter().enumerate() {
        match parse(&input.sql, dialect.as_ref()) {
            Ok(statements) => {
                for s in &statements {
                    l.statement(i, s);
                }
            }
            Err(e) => l.push(
                i,
                "unparsed-statement",
                Severity::Warning,
                None,
                format!(
                    "dbtool could not parse this statement ({}), so it was not checked",
                    locate(&e, input.line)
                ),
                "check it by hand (or split it so that the rest parses)".into(),
            ),
        }
    }
    l.end_transaction();
    l.findings
}

/// The existing tables the rules look at.
pub fn tables(inputs: &[Input], dialect: DbBackend) -> BTreeSet<String> {
    on_deep_stack(|| tables_here(inputs, dialect))
}

fn tables_here(inputs: &[Input], dialect: DbBackend) -> BTreeSet<String> {
    let parser = parser_dialect(dialect);
    let mut created = HashSet::new();
    let mut out = BTreeSet::new();
    for input in inputs {
        let Ok(statements) = parse(&input.sql, parser.as_ref()) else {
            continue;
        };
        for s in &statements {
            if let Statement::CreateTable(ct) = s {
                created.insert(table_name(&ct.name, dialect));
            }
            for t in touched(s, dialect) {
                if !created.contains(&t) {
                    out.insert(t);
                }
            }
        }
    }
    out
}

/// Tables a statement changes the schema or the rows of.
fn touched(s: &Statement, d: DbBackend) -> Vec<String> {
    let mut v = Vec::new();
    match s {
        Statement::CreateIndex(ci) => v.push(table_name(&ci.table_name, d)),
        Statement::AlterTable(at) => v.push(table_name(&at.name, d)),
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => v.extend(names.iter().map(|n| table_name(n, d))),
        Statement::RenameTable(r) => v.extend(r.iter().map(|r| table_name(&r.old_name, d))),
        _ => v.extend(data_change(s, d)),
    }
    v
}

/// The table whose rows a statement rewrites in bulk (UPDATE, DELETE, INSERT … SELECT,
/// MERGE); INSERT … VALUES writes what it lists and is not counted.
fn data_change(s: &Statement, d: DbBackend) -> Option<String> {
    match s {
        Statement::Update(u) => relation(&u.table.relation, d),
        Statement::Delete(del) => {
            let from = match &del.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            del.tables
                .first()
                .map(|n| table_name(n, d))
                .or_else(|| from.first().and_then(|t| relation(&t.relation, d)))
        }
        Statement::Insert(ins) => {
            let bulk = ins
                .source
                .as_ref()
                .is_some_and(|q| !matches!(*q.body, SetExpr::Values(_)));
            match (&ins.table, bulk) {
                (sqlparser::ast::TableObject::TableName(n), true) => Some(table_name(n, d)),
                _ => None,
            }
        }
        Statement::Merge(m) => relation(&m.table, d),
        _ => None,
    }
}

fn relation(t: &TableFactor, d: DbBackend) -> Option<String> {
    match t {
        TableFactor::Table { name, .. } => Some(table_name(name, d)),
        _ => None,
    }
}

/// A default PostgreSQL can add without touching the rows: constants and the functions
/// that are fixed for the statement (`now()` and friends). Anything else may be volatile.
fn pg_stable(e: &Expr) -> bool {
    const STABLE: &[&str] = &[
        "now",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtime",
        "localtimestamp",
        "transaction_timestamp",
        "statement_timestamp",
        "current_user",
        "session_user",
        "current_schema",
    ];
    match e {
        Expr::Value(_) | Expr::TypedString(_) | Expr::Interval(_) => true,
        Expr::Identifier(i) => STABLE.contains(&i.value.to_lowercase().as_str()),
        Expr::Cast { expr, .. } | Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => {
            pg_stable(expr)
        }
        Expr::BinaryOp { left, right, .. } => pg_stable(left) && pg_stable(right),
        Expr::Array(a) => a.elem.iter().all(pg_stable),
        Expr::Tuple(t) => t.iter().all(pg_stable),
        Expr::Function(f) => {
            let name = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.to_lowercase())
                .unwrap_or_default();
            STABLE.contains(&name.as_str())
                && match &f.args {
                    FunctionArguments::None => true,
                    FunctionArguments::List(l) => l.args.iter().all(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => pg_stable(e),
                        _ => false,
                    }),
                    FunctionArguments::Subquery(_) => false,
                }
        }
        _ => false,
    }
}

/// SQLite's `ADD COLUMN` accepts only a constant default (not even `CURRENT_TIMESTAMP`).
fn sqlite_constant(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => sqlite_constant(expr),
        _ => false,
    }
}

fn column_names(ids: &[sqlparser::ast::Ident]) -> String {
    ids.iter()
        .map(|i| i.value.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Linter<'_> {
    fn size(&self, table: &str) -> Option<TableSize> {
        self.sizes.get(table)
    }

    /// Created by these statements (and not already in the database with rows): nobody
    /// else uses it yet, so nothing about it is risky.
    fn is_new(&self, table: &str) -> bool {
        self.created.contains(table) && self.size(table).is_none_or(|s| s.rows == 0)
    }

    /// The usual scale: unknown size counts as large (error), empty is a note, below the
    /// large-table threshold a warning, from it an error.
    fn by_size(&self, table: &str) -> Severity {
        match self.size(table) {
            None => Severity::Error,
            Some(s) if s.rows == 0 => Severity::Info,
            Some(s) if s.rows < self.cfg.large_table => Severity::Warning,
            Some(_) => Severity::Error,
        }
    }

    /// Data loss: any rows (or an unknown number) make it an error.
    fn by_rows(&self, table: &str) -> Severity {
        match self.size(table) {
            Some(s) if s.rows == 0 => Severity::Info,
            _ => Severity::Error,
        }
    }

    fn push(
        &mut self,
        i: usize,
        rule: &'static str,
        severity: Severity,
        table: Option<&str>,
        why: String,
        instead: String,
    ) {
        let input = &self.inputs[i];
        let size = table.and_then(|t| self.size(t));
        self.findings.push(Finding {
            rule,
            severity,
            statement: input.sql.clone(),
            line: input.line,
            migration: input.migration.clone(),
            table: table.map(str::to_owned),
            rows: size.map(|s| s.rows),
            rows_source: size.map(|s| s.source),
            why,
            instead,
        });
    }

    fn statement(&mut self, i: usize, s: &Statement) {
        let d = self.cfg.dialect;
        match s {
            Statement::StartTransaction { .. } => {
                self.end_transaction();
                self.tx = Some(Tx::default());
            }
            Statement::Commit { .. }
            | Statement::Rollback {
                savepoint: None, ..
            } => self.end_transaction(),
            Statement::Set(set) => self.set(set),
            Statement::Reset(r) => {
                let off = match &r.reset {
                    Reset::ALL => true,
                    Reset::ConfigurationParameter(n) => is_timeout_name(n, d),
                    _ => false,
                };
                if off {
                    self.timeout = None;
                }
            }
            Statement::CreateTable(ct) => {
                self.created.insert(table_name(&ct.name, d));
            }
            Statement::CreateIndex(ci) => self.create_index(i, ci),
            Statement::AlterTable(at) => self.alter_table(i, at),
            Statement::RenameTable(renames) => {
                for r in renames {
                    let old = table_name(&r.old_name, d);
                    let new = table_name(&r.new_name, d);
                    self.rename_table(i, &old, &new);
                    self.ddl(i, &old);
                }
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            } => {
                for n in names {
                    let t = table_name(n, d);
                    if !self.is_new(&t) {
                        let sev = self.by_rows(&t);
                        let holds = match self.size(&t) {
                            Some(s) if s.rows == 0 => "holds no rows".to_owned(),
                            Some(s) => format!(
                                "holds {} {}, which are lost",
                                s.display(),
                                rows_word(s.rows)
                            ),
                            None => "may hold rows (size unknown), which would be lost".to_owned(),
                        };
                        self.push(
                            i,
                            "ban-drop-table",
                            sev,
                            Some(&t),
                            format!("DROP TABLE {t}: the table {holds}, and running code that still uses it fails"),
                            "deploy code that no longer uses the table first, keep a backup (or rename it aside), and drop it in a later release".into(),
                        );
                        self.ddl(i, &t);
                    }
                    self.created.remove(&t);
                }
            }
            Statement::Drop {
                object_type: ObjectType::Index,
                table,
                ..
            } => {
                // The index's table is named only on MySQL; PostgreSQL's DROP INDEX (not
                // CONCURRENTLY) takes an ACCESS EXCLUSIVE lock on a table we cannot name.
                let t = table.as_ref().map(|n| table_name(n, d));
                if !t.as_ref().is_some_and(|t| self.is_new(t)) {
                    self.require_timeout(i, t.as_deref());
                }
            }
            Statement::Truncate(tr) => {
                for n in &tr.table_names {
                    let t = table_name(&n.name, d);
                    self.ddl(i, &t);
                }
            }
            other => {
                if let Some(t) = data_change(other, d) {
                    if !self.is_new(&t) {
                        if let Some(tx) = &mut self.tx {
                            tx.data.push((i, t));
                        }
                    }
                }
            }
        }
    }

    /// A statement that locks an existing table: it needs a lock timeout and, in a
    /// transaction, holds its lock until COMMIT.
    fn ddl(&mut self, i: usize, table: &str) {
        if self.is_new(table) {
            return;
        }
        self.require_timeout(i, Some(table));
        if let Some(tx) = &mut self.tx {
            if !tx.ddl.iter().any(|t| t == table) {
                tx.ddl.push(table.to_owned());
            }
        }
    }

    fn require_timeout(&mut self, i: usize, table: Option<&str>) {
        if !self.cfg.script || self.timeout.is_some() || self.timeout_reported {
            return;
        }
        let (setting, example) = match self.cfg.dialect {
            PG => ("lock_timeout", "SET lock_timeout = '5s';"),
            MYSQL => ("lock_wait_timeout", "SET SESSION lock_wait_timeout = 5;"),
            // SQLite: a waiting writer does not queue others behind it (and the sqlite3
            // shell does not wait at all unless told to).
            _ => return,
        };
        self.timeout_reported = true;
        let on = table.unwrap_or("its table");
        self.push(
            i,
            "require-timeout-settings",
            Severity::Warning,
            table,
            format!("no {setting} is set before this DDL: it waits for its lock on {on} without limit, and every later query on {on} queues behind it (reported once per script)"),
            format!("put `{example}` at the top of the script and retry when it times out"),
        );
    }

    fn set(&mut self, set: &Set) {
        let d = self.cfg.dialect;
        let mut apply = |scope: Option<&ContextModifier>, name: &ObjectName, value: &Expr| {
            if !is_timeout_name(name, d) {
                return;
            }
            let v = value.to_string();
            let v = v.trim_matches('\'').trim();
            let off = v == "0" || v.eq_ignore_ascii_case("default");
            let local = matches!(scope, Some(ContextModifier::Local));
            self.timeout = if off || local && self.tx.is_none() {
                None
            } else if local {
                Some(Scope::Local)
            } else {
                Some(Scope::Session)
            };
        };
        match set {
            Set::SingleAssignment {
                scope,
                variable,
                values,
                ..
            } => {
                if let Some(v) = values.first() {
                    apply(scope.as_ref(), variable, v);
                }
            }
            Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    apply(a.scope.as_ref(), &a.name, &a.value);
                }
            }
            _ => {}
        }
    }

    fn end_transaction(&mut self) {
        if self.timeout == Some(Scope::Local) {
            self.timeout = None;
        }
        let Some(tx) = self.tx.take() else {
            return;
        };
        // MySQL commits before every DDL statement, and on SQLite every write transaction
        // holds the one database lock anyway: the rule is PostgreSQL's.
        if self.cfg.dialect != PG || tx.ddl.is_empty() || tx.data.is_empty() {
            return;
        }
        // Report the data change on the largest table (unknown counts as largest).
        let rows = |t: &str| self.size(t).map_or(i64::MAX, |s| s.rows);
        let (i, table) = tx
            .data
            .iter()
            .max_by_key(|(_, t)| rows(t))
            .cloned()
            .expect("data is not empty");
        let sev = self.by_size(&table);
        let locked = tx.ddl.join(", ");
        self.push(
            i,
            "ddl-and-data-in-one-transaction",
            sev,
            Some(&table),
            format!("this transaction changes the schema of {locked} and also rewrites rows of {table}: the DDL's locks are held until COMMIT, so every query on {locked} waits for the data change"),
            "commit the schema change on its own, then change the data in separate transactions, in batches".into(),
        );
    }

    fn create_index(&mut self, i: usize, ci: &CreateIndex) {
        let d = self.cfg.dialect;
        let t = table_name(&ci.table_name, d);
        if self.is_new(&t) {
            return;
        }
        let name = ci
            .name
            .as_ref()
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        match d {
            PG if ci.concurrently => {
                // Its SHARE UPDATE EXCLUSIVE lock lets reads and writes go on while it waits.
                return;
            }
            PG => {
                let sev = self.by_size(&t);
                self.push(
                    i,
                    "require-concurrent-index-creation",
                    sev,
                    Some(&t),
                    format!("CREATE INDEX{name} without CONCURRENTLY blocks every write to {t} (SHARE lock) until the index is built"),
                    "CREATE INDEX CONCURRENTLY, outside a transaction block; if it fails, drop the INVALID index it leaves and run it again".into(),
                );
            }
            MYSQL => {
                if let Some(how) = mysql_blocking(&ci.alter_options) {
                    self.mysql_blocking_index(i, &t, &how);
                }
            }
            _ => {
                let sev = match self.size(&t) {
                    Some(s) if s.rows < self.cfg.large_table => Severity::Info,
                    _ => Severity::Warning,
                };
                self.push(
                    i,
                    "require-concurrent-index-creation",
                    sev,
                    Some(&t),
                    format!("SQLite builds the index{name} while holding the database's write lock: every writer waits until it is done"),
                    "SQLite has no online index build: run it while the application is quiet".into(),
                );
            }
        }
        self.ddl(i, &t);
    }

    fn mysql_blocking_index(&mut self, i: usize, t: &str, how: &str) {
        let sev = self.by_size(t);
        self.push(
            i,
            "require-concurrent-index-creation",
            sev,
            Some(t),
            format!("{how} makes MySQL/MariaDB block writes to {t} while the index is built"),
            "leave ALGORITHM and LOCK out (InnoDB builds secondary indexes in place, with LOCK=NONE), or write ALGORITHM=INPLACE, LOCK=NONE".into(),
        );
    }

    fn rename_table(&mut self, i: usize, old: &str, new: &str) {
        if self.is_new(old) {
            self.created.insert(new.to_owned());
            return;
        }
        self.push(
            i,
            "renaming-table",
            Severity::Error,
            Some(old),
            format!("running code that uses {old} fails the moment it is renamed to {new}"),
            format!("create {new} (or a view named {new}), move the code over, then drop {old}; or rename in a maintenance window together with the code"),
        );
    }

    fn alter_table(&mut self, i: usize, at: &AlterTable) {
        let d = self.cfg.dialect;
        let t = table_name(&at.name, d);
        if self.is_new(&t) {
            for op in &at.operations {
                if let AlterTableOperation::RenameTable { table_name: kind } = op {
                    let (sqlparser::ast::RenameTableNameKind::To(n)
                    | sqlparser::ast::RenameTableNameKind::As(n)) = kind;
                    self.created.insert(table_name(n, d));
                }
            }
            return;
        }
        let blocking = if d == MYSQL {
            mysql_blocking(&at.operations)
        } else {
            None
        };
        for op in &at.operations {
            match op {
                AlterTableOperation::AddColumn { column_def, .. } => {
                    self.add_column(i, &t, column_def)
                }
                AlterTableOperation::AlterColumn { column_name, op } => match op {
                    AlterColumnOperation::SetNotNull if d == PG => {
                        let sev = self.by_size(&t);
                        self.push(
                            i,
                            "adding-not-nullable-field",
                            sev,
                            Some(&t),
                            format!("SET NOT NULL on {t}.{column_name} scans the whole table for NULLs under an ACCESS EXCLUSIVE lock: reads and writes wait"),
                            format!("ADD CONSTRAINT … CHECK ({column_name} IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT it, then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the check"),
                        );
                    }
                    AlterColumnOperation::SetDataType { data_type, .. } => {
                        self.type_change(i, &t, &column_name.value, &data_type.to_string())
                    }
                    _ => {}
                },
                AlterTableOperation::ModifyColumn {
                    col_name,
                    data_type,
                    ..
                } => self.type_change(i, &t, &col_name.value, &data_type.to_string()),
                AlterTableOperation::ChangeColumn {
                    old_name,
                    new_name,
                    data_type,
                    ..
                } => {
                    if old_name.value != new_name.value {
                        self.rename_column(i, &t, &old_name.value, &new_name.value);
                    }
                    self.type_change(i, &t, &old_name.value, &data_type.to_string());
                }
                AlterTableOperation::AddConstraint {
                    constraint,
                    not_valid,
                } => self.add_constraint(i, &t, constraint, *not_valid, blocking.as_deref()),
                AlterTableOperation::DropColumn { column_names, .. } => {
                    for c in column_names {
                        let sev = self.by_rows(&t);
                        let data = match self.size(&t) {
                            Some(s) if s.rows == 0 => "(the table holds no rows)".to_owned(),
                            Some(s) => {
                                format!("with its values in {} {}", s.display(), rows_word(s.rows))
                            }
                            None => "with its values (table size unknown)".to_owned(),
                        };
                        self.push(
                            i,
                            "ban-drop-column",
                            sev,
                            Some(&t),
                            format!("drops {t}.{} {data}; running code that reads or writes it fails", c.value),
                            "deploy code that no longer uses the column first (ORMs: mark it ignored), then drop it in a later release".into(),
                        );
                    }
                }
                AlterTableOperation::RenameColumn {
                    old_column_name,
                    new_column_name,
                } => self.rename_column(i, &t, &old_column_name.value, &new_column_name.value),
                AlterTableOperation::RenameTable { table_name: kind } => {
                    let (sqlparser::ast::RenameTableNameKind::To(n)
                    | sqlparser::ast::RenameTableNameKind::As(n)) = kind;
                    let new = table_name(n, d);
                    self.rename_table(i, &t, &new);
                }
                _ => {}
            }
        }
        self.ddl(i, &t);
    }

    fn rename_column(&mut self, i: usize, t: &str, old: &str, new: &str) {
        self.push(
            i,
            "renaming-column",
            Severity::Error,
            Some(t),
            format!("running code that uses {t}.{old} fails the moment it is renamed to {new}"),
            format!("add {new}, write both columns, backfill {new}, move the reads over, then drop {old}"),
        );
    }

    fn type_change(&mut self, i: usize, t: &str, column: &str, new_type: &str) {
        let d = self.cfg.dialect;
        let (why, instead) = match d {
            PG => (
                format!("changing {t}.{column} to {new_type} rewrites the table and its indexes under an ACCESS EXCLUSIVE lock (only binary-compatible changes such as widening a varchar skip that)"),
                "add a new column, backfill it in batches, move the code over, then drop the old column",
            ),
            MYSQL => (
                format!("MODIFY/CHANGE of {t}.{column} ({new_type}) copies the table when the type or nullability changes, blocking writes while it does"),
                "add a new column, backfill it in batches, move the code over, then drop the old one (or use an online schema change tool such as gh-ost or pt-online-schema-change)",
            ),
            _ => return,
        };
        let sev = self.by_size(t);
        self.push(i, "changing-column-type", sev, Some(t), why, instead.into());
    }

    fn add_column(&mut self, i: usize, t: &str, c: &ColumnDef) {
        let d = self.cfg.dialect;
        let col = &c.name.value;
        let options: Vec<&ColumnOption> = c.options.iter().map(|o| &o.option).collect();
        let not_null = options
            .iter()
            .any(|o| matches!(o, ColumnOption::NotNull | ColumnOption::PrimaryKey(_)));
        let default = options.iter().find_map(|o| match o {
            ColumnOption::Default(e) => Some(e),
            _ => None,
        });
        let generated = options.iter().find_map(|o| match o {
            ColumnOption::Generated { generated_as, .. } => Some(match generated_as {
                GeneratedAs::ExpStored => "a stored generated column",
                _ => "an identity column",
            }),
            ColumnOption::Identity(_) => Some("an identity column"),
            _ => None,
        });
        let ty = c.data_type.to_string().to_lowercase();
        let serial = d == PG
            && matches!(
                ty.as_str(),
                "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
            );
        let auto_increment = options.iter().any(|o| {
            matches!(o, ColumnOption::DialectSpecific(_))
                && o.to_string().to_ascii_uppercase().contains("AUTO")
        });

        let rewrite = match d {
            PG if serial => Some(format!("a {ty} column fills every row from a sequence")),
            PG => generated
                .map(|g| format!("{g} fills every row"))
                .or_else(|| {
                    default.filter(|e| !pg_stable(e)).map(|e| {
                        format!("the default {e} is volatile (or dbtool cannot tell that it is not), so every row gets its own value")
                    })
                }),
            _ => None,
        };
        if let Some(what) = rewrite {
            let sev = self.by_size(t);
            self.push(
                i,
                "adding-field-with-default",
                sev,
                Some(t),
                format!("adding {t}.{col}: {what}: PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE lock"),
                "add the column without a default (or with a constant one), set the default afterwards, and fill the existing rows in batches".into(),
            );
            return;
        }
        if d == SQLITE {
            if let Some(e) = default.filter(|e| !sqlite_constant(e)) {
                self.push(
                    i,
                    "adding-field-with-default",
                    Severity::Error,
                    Some(t),
                    format!("SQLite refuses to add {t}.{col} with the non-constant default {e} (CURRENT_TIMESTAMP and expressions included)"),
                    "add it with a constant default (or none) and fill it with an UPDATE, or rebuild the table".into(),
                );
                return;
            }
        }
        if !not_null || default.is_some() || generated.is_some() || serial || auto_increment {
            return;
        }
        let (sev, why, instead) = match d {
            PG => {
                let sev = match self.size(t) {
                    Some(s) if s.rows == 0 => Severity::Warning,
                    _ => Severity::Error,
                };
                (
                    sev,
                    format!("{t}.{col} is NOT NULL without a default: adding it fails when {t} has rows, and inserts from running code that do not set it fail"),
                    format!("add it nullable (or with a constant DEFAULT), backfill, then ADD CONSTRAINT … CHECK ({col} IS NOT NULL) NOT VALID, VALIDATE it and SET NOT NULL"),
                )
            }
            MYSQL => (
                Severity::Warning,
                format!("{t}.{col} is NOT NULL without a default: existing rows silently get the type's implicit default ('', 0, …), and inserts from running code that do not set it fail"),
                "give it an explicit DEFAULT, or add it nullable and backfill".to_owned(),
            ),
            _ => (
                Severity::Error,
                format!("SQLite refuses to add the NOT NULL column {t}.{col} without a non-NULL default"),
                "give it a constant DEFAULT, or add it nullable".to_owned(),
            ),
        };
        self.push(i, "adding-required-field", sev, Some(t), why, instead);
    }

    fn add_constraint(
        &mut self,
        i: usize,
        t: &str,
        c: &TableConstraint,
        not_valid: bool,
        mysql_blocking: Option<&str>,
    ) {
        let d = self.cfg.dialect;
        match (d, c) {
            (PG, TableConstraint::ForeignKey(fk)) if !not_valid => {
                let r = table_name(&fk.foreign_table, d);
                let sev = self.by_size(t);
                self.push(
                    i,
                    "constraint-missing-not-valid",
                    sev,
                    Some(t),
                    format!("adding the foreign key ({}) → {r} checks every row of {t} while holding SHARE ROW EXCLUSIVE locks on {t} and {r}: writes to both wait", column_names(&fk.columns)),
                    "ADD CONSTRAINT … NOT VALID, then ALTER TABLE … VALIDATE CONSTRAINT … in a separate transaction (it takes a weaker lock)".into(),
                );
            }
            (PG, TableConstraint::Check(_)) if !not_valid => {
                let sev = self.by_size(t);
                self.push(
                    i,
                    "constraint-missing-not-valid",
                    sev,
                    Some(t),
                    format!("adding a CHECK constraint scans every row of {t} under an ACCESS EXCLUSIVE lock: reads and writes wait"),
                    "ADD CONSTRAINT … NOT VALID, then ALTER TABLE … VALIDATE CONSTRAINT … in a separate transaction (it takes a weaker lock)".into(),
                );
            }
            (PG, TableConstraint::Unique(_) | TableConstraint::PrimaryKey(_)) => {
                let kind = if matches!(c, TableConstraint::Unique(_)) {
                    "UNIQUE"
                } else {
                    "PRIMARY KEY"
                };
                let sev = self.by_size(t);
                self.push(
                    i,
                    "disallowed-unique-constraint",
                    sev,
                    Some(t),
                    format!("ADD {kind} builds its index on {t} under an ACCESS EXCLUSIVE lock: reads and writes wait until it is built"),
                    format!("CREATE UNIQUE INDEX CONCURRENTLY first, then ALTER TABLE … ADD CONSTRAINT … {kind} USING INDEX …"),
                );
            }
            (MYSQL, TableConstraint::ForeignKey(fk)) => {
                let r = table_name(&fk.foreign_table, d);
                let sev = self.by_size(t);
                self.push(
                    i,
                    "constraint-missing-not-valid",
                    sev,
                    Some(t),
                    format!("with foreign_key_checks on, MySQL/MariaDB add the foreign key ({}) → {r} by copying {t}, blocking writes while they do", column_names(&fk.columns)),
                    "check the existing rows with a query, then add it with SET foreign_key_checks = 0 for that statement (built in place, not re-checked)".into(),
                );
            }
            (MYSQL, TableConstraint::Check(_)) => {
                let sev = self.by_size(t);
                self.push(
                    i,
                    "constraint-missing-not-valid",
                    sev,
                    Some(t),
                    format!("MySQL/MariaDB copy {t} to add a CHECK constraint and check every row, blocking writes (there is no NOT VALID)"),
                    "add it while the table is small or in a maintenance window, or enforce the rule in the application".into(),
                );
            }
            (
                MYSQL,
                TableConstraint::Index(_)
                | TableConstraint::Unique(_)
                | TableConstraint::PrimaryKey(_)
                | TableConstraint::FulltextOrSpatial(_),
            ) => {
                if let Some(how) = mysql_blocking {
                    self.mysql_blocking_index(i, t, how);
                }
            }
            _ => {}
        }
    }
}

/// `ALGORITHM=COPY` or `LOCK=SHARED|EXCLUSIVE` among MySQL ALTER options, as written.
fn mysql_blocking(ops: &[AlterTableOperation]) -> Option<String> {
    ops.iter().find_map(|op| match op {
        AlterTableOperation::Algorithm {
            algorithm: AlterTableAlgorithm::Copy,
            ..
        }
        | AlterTableOperation::Lock {
            lock: AlterTableLock::Shared | AlterTableLock::Exclusive,
            ..
        } => Some(op.to_string()),
        _ => None,
    })
}

/// `lock_timeout` (PostgreSQL) or `lock_wait_timeout` (MySQL), however qualified
/// (`@@session.lock_wait_timeout`).
fn is_timeout_name(n: &ObjectName, d: DbBackend) -> bool {
    let last =
        n.0.last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.trim_start_matches('@').to_lowercase())
            .unwrap_or_default();
    match d {
        PG => last == "lock_timeout",
        MYSQL => last == "lock_wait_timeout",
        _ => false,
    }
}

#[cfg(test)]
mod tests;

fn rows_word(n: i64) -> &'static str {
    if n == 1 {
        "row"
    } else {
        "rows"
    }
}
