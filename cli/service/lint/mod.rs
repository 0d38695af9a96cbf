//! `dbtool lint`: finds operations in SQL that are risky on a database serving traffic
//! (blocking index builds, table rewrites, validations under strong locks, data loss,
//! renames that break running code, locks held across data changes, DDL that may queue
//! forever for its lock). The vocabulary follows squawk's rule names; beyond squawk the
//! severity follows the live size of each table where a database is reachable (see
//! [`sizes`]), so an index built on an empty table is a note and the same index on a table of
//! millions of rows is an error.
//!
//! Entry points: [`lint_script`] for a script as written (every rule, the lock-timeout rule
//! included), [`lint_steps`] / [`lint_statements`] for dbtool's own migration steps (they
//! always run with a lock timeout, so that rule is off). Nothing here connects or prints;
//! [`sizes::table_sizes`] reads the sizes the rules use.

mod rules;
pub mod sizes;
mod split;

use sea_orm::DbBackend;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; harmless at the table's current size.
    Info,
    /// Risky: blocks or breaks something, though not for long at the table's size.
    Warning,
    /// Expect an outage, a failure or lost data on a live database.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Where a table's row count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeSource {
    /// The catalog's estimate: `pg_class.reltuples`, `information_schema.TABLES.TABLE_ROWS`,
    /// SQLite's `sqlite_stat1`.
    Estimate,
    /// Counted exactly.
    Count,
    /// Counted up to a limit that was reached: the table has at least this many rows.
    AtLeast,
}

/// The size of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableSize {
    pub rows: i64,
    pub source: SizeSource,
}

impl TableSize {
    /// `1000000`, `~1000000` (an estimate) or `>=1000001` (a capped count).
    pub fn display(&self) -> String {
        match self.source {
            SizeSource::Count => self.rows.to_string(),
            SizeSource::Estimate => format!("~{}", self.rows),
            SizeSource::AtLeast => format!(">={}", self.rows),
        }
    }
}

/// The row counts the rules know. Without a database ([`Sizes::offline`]) every existing
/// table counts as large, as squawk assumes; tables a script creates itself count as new.
#[derive(Debug, Clone, Default)]
pub struct Sizes {
    /// True when the sizes were read from a database.
    pub live: bool,
    tables: BTreeMap<String, TableSize>,
}

impl Sizes {
    pub fn offline() -> Sizes {
        Sizes::default()
    }

    /// Sizes read from a database, by table name as the catalog spells it.
    pub fn live(tables: BTreeMap<String, TableSize>) -> Sizes {
        Sizes { live: true, tables }
    }

    /// The size of `table`: exact name first, then ignoring letter case.
    pub fn get(&self, table: &str) -> Option<TableSize> {
        self.tables.get(table).copied().or_else(|| {
            self.tables
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(table))
                .map(|(_, v)| *v)
        })
    }
}

/// Tables of at least this many rows are large by default: building an index on one or
/// rewriting it takes long enough (about a second and more) to stall an application.
pub const DEFAULT_LARGE_TABLE: i64 = 100_000;

/// What the rules apply to.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub dialect: DbBackend,
    /// Rows from which a table is large (size-dependent rules are errors there).
    pub large_table: i64,
    /// A script as written (hand-written SQL): the lock-timeout rule applies. False for
    /// dbtool's own steps, which always run with a lock timeout.
    pub script: bool,
}

impl Config {
    pub fn new(dialect: DbBackend, script: bool) -> Config {
        Config {
            dialect,
            large_table: DEFAULT_LARGE_TABLE,
            script,
        }
    }
}

/// One statement to lint and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub sql: String,
    /// The line of a script it starts on.
    pub line: Option<usize>,
    /// The migration it belongs to.
    pub migration: Option<String>,
}

impl Input {
    pub fn new(sql: impl Into<String>) -> Input {
        Input {
            sql: sql.into(),
            line: None,
            migration: None,
        }
    }
}

/// One migration step's statements, as the engine runs them.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// Runs inside one transaction (false for `CREATE INDEX CONCURRENTLY` steps, and on
    /// MySQL/MariaDB, where DDL commits at once).
    pub transactional: bool,
    pub statements: Vec<String>,
}

/// One risky operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's id (squawk's name where squawk has the rule).
    pub rule: &'static str,
    pub severity: Severity,
    /// The statement as written.
    pub statement: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    /// The table the operation concerns.
    pub table: Option<String>,
    /// Its rows, when known (null: no database, or the table is not in it).
    pub rows: Option<i64>,
    pub rows_source: Option<SizeSource>,
    /// What goes wrong on a live database.
    pub why: String,
    /// The safer way.
    pub instead: String,
}

/// A rule as the README and `--help` describe it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    pub what: &'static str,
}

/// Every rule, in the README's order.
pub const RULES: &[Rule] = &[
    Rule { id: "require-concurrent-index-creation", what: "CREATE INDEX without CONCURRENTLY (PostgreSQL); any index build on SQLite; ALGORITHM=COPY or a blocking LOCK on MySQL" },
    Rule { id: "disallowed-unique-constraint", what: "ADD UNIQUE / PRIMARY KEY that builds its index under ACCESS EXCLUSIVE (PostgreSQL)" },
    Rule { id: "adding-required-field", what: "ADD COLUMN … NOT NULL without a default" },
    Rule { id: "adding-field-with-default", what: "ADD COLUMN with a volatile default, serial, identity or stored generated column (a rewrite); SQLite: any non-constant default" },
    Rule { id: "adding-not-nullable-field", what: "ALTER COLUMN … SET NOT NULL (a full scan under ACCESS EXCLUSIVE, PostgreSQL)" },
    Rule { id: "changing-column-type", what: "ALTER COLUMN … TYPE (PostgreSQL), MODIFY / CHANGE COLUMN (MySQL): the table is rewritten" },
    Rule { id: "constraint-missing-not-valid", what: "ADD FOREIGN KEY / CHECK validated at once under a strong lock" },
    Rule { id: "ban-drop-table", what: "DROP TABLE of a table that holds rows" },
    Rule { id: "ban-drop-column", what: "DROP COLUMN of a table that holds rows" },
    Rule { id: "renaming-table", what: "renaming a table that running code uses" },
    Rule { id: "renaming-column", what: "renaming a column that running code uses" },
    Rule { id: "ddl-and-data-in-one-transaction", what: "a transaction that changes a table's schema and also rewrites rows (PostgreSQL)" },
    Rule { id: "require-timeout-settings", what: "DDL on an existing table with no lock timeout set before it (scripts only)" },
    Rule { id: "unparsed-statement", what: "a statement dbtool cannot parse, so it was not checked" },
];

/// Splits a script into statements, each with its line.
pub fn script_inputs(text: &str, dialect: DbBackend) -> Vec<Input> {
    split::split(text, dialect)
        .into_iter()
        .map(|p| Input {
            sql: p.sql,
            line: Some(p.line),
            migration: None,
        })
        .collect()
}

/// The statements of migration steps in order, each transactional step between `BEGIN` and
/// `COMMIT` as the engine runs it.
pub fn step_inputs(steps: &[Step]) -> Vec<Input> {
    let mut out = Vec::new();
    for s in steps {
        let input = |sql: &str| Input {
            sql: sql.to_owned(),
            line: None,
            migration: Some(s.name.clone()),
        };
        if s.transactional {
            out.push(input("BEGIN"));
        }
        out.extend(s.statements.iter().map(|q| input(q)));
        if s.transactional {
            out.push(input("COMMIT"));
        }
    }
    out
}

/// Lints `statements` with every rule `config` enables.
pub fn lint(statements: &[Input], config: &Config, sizes: &Sizes) -> Vec<Finding> {
    rules::run(statements, config, sizes)
}

/// Lints a script as written: the lock-timeout rule included.
pub fn lint_script(text: &str, config: &Config, sizes: &Sizes) -> Vec<Finding> {
    let config = Config {
        script: true,
        ..*config
    };
    lint(&script_inputs(text, config.dialect), &config, sizes)
}

/// Lints statements dbtool itself runs (a migration step's, as `upgrade` is about to run
/// them; `BEGIN`/`COMMIT` included where they run in a transaction): every rule except the
/// lock-timeout one, with the default large-table threshold. `sizes` is
/// [`Sizes::offline`] when no database is at hand.
pub fn lint_statements(statements: &[Input], dialect: DbBackend, sizes: &Sizes) -> Vec<Finding> {
    lint(statements, &Config::new(dialect, false), sizes)
}

/// [`lint_statements`] for whole migration steps, with their transactions.
pub fn lint_steps(steps: &[Step], dialect: DbBackend, sizes: &Sizes) -> Vec<Finding> {
    lint_statements(&step_inputs(steps), dialect, sizes)
}

/// The existing tables whose sizes the rules would use (tables the statements create
/// themselves are left out): what [`sizes::table_sizes`] should read.
pub fn tables_to_size(statements: &[Input], dialect: DbBackend) -> BTreeSet<String> {
    rules::tables(statements, dialect)
}

/// The number of findings of each severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub error: usize,
    pub warning: usize,
    pub info: usize,
}

pub fn counts(findings: &[Finding]) -> Counts {
    let mut c = Counts::default();
    for f in findings {
        match f.severity {
            Severity::Error => c.error += 1,
            Severity::Warning => c.warning += 1,
            Severity::Info => c.info += 1,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_documents_every_rule() {
        let readme = include_str!("../../../README.md");
        for r in RULES {
            assert!(
                readme.contains(&format!("| `{}` |", r.id)),
                "README's lint table lacks {}",
                r.id
            );
        }
    }

    #[test]
    fn sizes_match_names_ignoring_case() {
        let s = Sizes::live(BTreeMap::from([(
            "Users".to_owned(),
            TableSize {
                rows: 5,
                source: SizeSource::AtLeast,
            },
        )]));
        assert_eq!(s.get("users").map(|t| t.display()), Some(">=5".into()));
        assert_eq!(s.get("other"), None);
        assert!(!Sizes::offline().live);
    }
}
