//! Each rule fires on a minimal example and stays silent on its safe form; severities follow
//! the table sizes.

use super::super::{
    lint_script, lint_statements, lint_steps, script_inputs, tables_to_size, Config, Finding,
    Input, Severity, SizeSource, Sizes, Step, TableSize,
};
use sea_orm::DbBackend;
use std::collections::BTreeMap;

use Severity::{Error, Info, Warning};

const PG: DbBackend = DbBackend::Postgres;
const MY: DbBackend = DbBackend::MySql;
const LITE: DbBackend = DbBackend::Sqlite;

fn sizes(tables: &[(&str, i64)]) -> Sizes {
    Sizes::live(
        tables
            .iter()
            .map(|(t, n)| {
                (
                    t.to_string(),
                    TableSize {
                        rows: *n,
                        source: SizeSource::Count,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    )
}

/// Findings of a script as `dbtool lint --file` sees it, with a lock timeout set first so
/// that only the rule under test speaks.
fn script(d: DbBackend, sql: &str, s: &Sizes) -> Vec<Finding> {
    let timeout = match d {
        MY => "SET SESSION lock_wait_timeout = 5;\n",
        _ => "SET lock_timeout = '5s';\n",
    };
    lint_script(&format!("{timeout}{sql}"), &Config::new(d, true), s)
}

fn rules(findings: &[Finding]) -> Vec<(&'static str, Severity)> {
    findings.iter().map(|f| (f.rule, f.severity)).collect()
}

/// The rules that fire on `sql` with `t` holding `rows` rows (None: no database).
fn fire(d: DbBackend, sql: &str, rows: Option<i64>) -> Vec<(&'static str, Severity)> {
    let s = match rows {
        Some(n) => sizes(&[("t", n), ("u", n)]),
        None => Sizes::offline(),
    };
    rules(&script(d, sql, &s))
}

#[track_caller]
fn one(d: DbBackend, sql: &str, rows: Option<i64>, rule: &str, severity: Severity) {
    assert_eq!(
        fire(d, sql, rows),
        vec![(rule, severity)],
        "{sql} with {rows:?} rows"
    );
}

#[track_caller]
fn silent(d: DbBackend, sql: &str) {
    assert_eq!(fire(d, sql, Some(1_000_000)), vec![], "{sql}");
}

#[test]
fn index_without_concurrently_depends_on_the_size() {
    let sql = "CREATE INDEX ix ON t (a);";
    let rule = "require-concurrent-index-creation";
    one(PG, sql, None, rule, Error);
    one(PG, sql, Some(0), rule, Info);
    one(PG, sql, Some(500), rule, Warning);
    one(PG, sql, Some(100_000), rule, Error);
    one(
        PG,
        "CREATE UNIQUE INDEX ix ON t (a);",
        Some(5),
        rule,
        Warning,
    );
    silent(PG, "CREATE INDEX CONCURRENTLY ix ON t (a);");
    silent(
        PG,
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"ix\" ON \"t\" (\"a\");",
    );
    // A table the script creates has no readers yet.
    silent(PG, "CREATE TABLE t2 (a int); CREATE INDEX ix ON t2 (a);");
    // SQLite has no online build: a warning at most. InnoDB builds in place unless told not to.
    one(LITE, sql, Some(500), rule, Info);
    one(LITE, sql, Some(1_000_000), rule, Warning);
    silent(MY, sql);
    silent(MY, "ALTER TABLE t ADD INDEX ix (a);");
    one(
        MY,
        "CREATE INDEX ix ON t (a) ALGORITHM=COPY;",
        Some(10),
        rule,
        Warning,
    );
    one(
        MY,
        "ALTER TABLE t ADD INDEX ix (a), LOCK=SHARED;",
        None,
        rule,
        Error,
    );
    silent(
        MY,
        "ALTER TABLE t ADD INDEX ix (a), ALGORITHM=INPLACE, LOCK=NONE;",
    );
}

#[test]
fn unique_constraints_need_an_index_built_first() {
    let rule = "disallowed-unique-constraint";
    one(
        PG,
        "ALTER TABLE t ADD CONSTRAINT u UNIQUE (a);",
        Some(200_000),
        rule,
        Error,
    );
    one(
        PG,
        "ALTER TABLE t ADD PRIMARY KEY (a);",
        Some(3),
        rule,
        Warning,
    );
    silent(PG, "ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX ix;");
    silent(
        PG,
        "ALTER TABLE t ADD CONSTRAINT p PRIMARY KEY USING INDEX ix;",
    );
}

#[test]
fn required_fields() {
    let sql = "ALTER TABLE t ADD COLUMN c text NOT NULL;";
    let rule = "adding-required-field";
    one(PG, sql, None, rule, Error);
    one(PG, sql, Some(1), rule, Error);
    one(PG, sql, Some(0), rule, Warning);
    one(MY, sql, Some(1), rule, Warning);
    one(LITE, sql, Some(0), rule, Error);
    for safe in [
        "ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT 'x';",
        "ALTER TABLE t ADD COLUMN c text;",
        "ALTER TABLE t ADD COLUMN c text NULL;",
    ] {
        silent(PG, safe);
        silent(MY, safe);
        silent(LITE, safe);
    }
    silent(
        MY,
        "ALTER TABLE t ADD COLUMN c int NOT NULL AUTO_INCREMENT;",
    );
}

#[test]
fn volatile_defaults_rewrite_the_table() {
    let rule = "adding-field-with-default";
    let volatile = "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid();";
    one(PG, volatile, None, rule, Error);
    one(PG, volatile, Some(0), rule, Info);
    one(PG, volatile, Some(10), rule, Warning);
    one(
        PG,
        "ALTER TABLE t ADD COLUMN c float NOT NULL DEFAULT random();",
        Some(100_000),
        rule,
        Error,
    );
    one(
        PG,
        "ALTER TABLE t ADD COLUMN id bigserial;",
        Some(10),
        rule,
        Warning,
    );
    one(
        PG,
        "ALTER TABLE t ADD COLUMN n int GENERATED ALWAYS AS IDENTITY;",
        Some(10),
        rule,
        Warning,
    );
    one(
        PG,
        "ALTER TABLE t ADD COLUMN d int GENERATED ALWAYS AS (a * 2) STORED;",
        Some(10),
        rule,
        Warning,
    );
    for safe in [
        "ALTER TABLE t ADD COLUMN c timestamp NOT NULL DEFAULT now();",
        "ALTER TABLE t ADD COLUMN c timestamp DEFAULT CURRENT_TIMESTAMP;",
        "ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT 'x';",
        "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT -1;",
        "ALTER TABLE t ADD COLUMN c jsonb DEFAULT '{}'::jsonb;",
        "ALTER TABLE t ADD COLUMN c boolean NOT NULL DEFAULT (false);",
    ] {
        silent(PG, safe);
    }
    // SQLite refuses any non-constant default in ADD COLUMN.
    one(
        LITE,
        "ALTER TABLE t ADD COLUMN c datetime NOT NULL DEFAULT CURRENT_TIMESTAMP;",
        Some(0),
        rule,
        Error,
    );
    silent(LITE, "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;");
}

#[test]
fn set_not_null_scans_the_table() {
    let rule = "adding-not-nullable-field";
    one(
        PG,
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        Some(100_000),
        rule,
        Error,
    );
    one(
        PG,
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        Some(0),
        rule,
        Info,
    );
    silent(
        PG,
        "ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID;",
    );
    silent(PG, "ALTER TABLE t ALTER COLUMN a DROP NOT NULL;");
}

#[test]
fn type_changes_rewrite_the_table() {
    let rule = "changing-column-type";
    one(
        PG,
        "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
        None,
        rule,
        Error,
    );
    one(
        PG,
        "ALTER TABLE t ALTER COLUMN a SET DATA TYPE text;",
        Some(7),
        rule,
        Warning,
    );
    one(
        MY,
        "ALTER TABLE t MODIFY COLUMN a bigint NOT NULL;",
        Some(100_000),
        rule,
        Error,
    );
    silent(PG, "ALTER TABLE t ADD COLUMN a_new bigint;");
    silent(PG, "ALTER TABLE t ALTER COLUMN a SET DEFAULT 0;");
    // MySQL's CHANGE renames and retypes in one go.
    assert_eq!(
        fire(MY, "ALTER TABLE t CHANGE COLUMN a b bigint;", Some(5)),
        vec![("renaming-column", Error), (rule, Warning)]
    );
}

#[test]
fn constraints_without_not_valid() {
    let rule = "constraint-missing-not-valid";
    let fk = "ALTER TABLE t ADD CONSTRAINT t_u_fkey FOREIGN KEY (u_id) REFERENCES u (id)";
    one(PG, &format!("{fk};"), None, rule, Error);
    one(PG, &format!("{fk};"), Some(3), rule, Warning);
    one(
        PG,
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);",
        Some(100_000),
        rule,
        Error,
    );
    silent(PG, &format!("{fk} NOT VALID;"));
    silent(
        PG,
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;",
    );
    silent(PG, "ALTER TABLE t VALIDATE CONSTRAINT c;");
    one(MY, &format!("{fk};"), Some(100_000), rule, Error);
    one(
        MY,
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);",
        Some(0),
        rule,
        Info,
    );
}

#[test]
fn drops_of_tables_and_columns_with_rows() {
    one(PG, "DROP TABLE t;", Some(12), "ban-drop-table", Error);
    one(PG, "DROP TABLE IF EXISTS t;", None, "ban-drop-table", Error);
    one(PG, "DROP TABLE t;", Some(0), "ban-drop-table", Info);
    one(
        LITE,
        "ALTER TABLE t DROP COLUMN a;",
        Some(1),
        "ban-drop-column",
        Error,
    );
    one(
        MY,
        "ALTER TABLE t DROP COLUMN a;",
        Some(0),
        "ban-drop-column",
        Info,
    );
    silent(PG, "CREATE TABLE scratch (a int); DROP TABLE scratch;");
    silent(
        PG,
        "CREATE TABLE scratch (a int, b int); ALTER TABLE scratch DROP COLUMN b;",
    );
    silent(PG, "DROP VIEW t_view;");
}

#[test]
fn renames_break_running_code() {
    one(
        PG,
        "ALTER TABLE t RENAME TO t2;",
        Some(0),
        "renaming-table",
        Error,
    );
    one(
        MY,
        "RENAME TABLE t TO t2;",
        Some(5),
        "renaming-table",
        Error,
    );
    one(
        PG,
        "ALTER TABLE t RENAME COLUMN a TO b;",
        Some(0),
        "renaming-column",
        Error,
    );
    one(
        LITE,
        "ALTER TABLE t RENAME COLUMN a TO b;",
        None,
        "renaming-column",
        Error,
    );
    // The safe way: a new column (or a view under the new name), the old one kept.
    silent(PG, "ALTER TABLE t ADD COLUMN b int;");
    silent(PG, "CREATE VIEW t2 AS SELECT * FROM t;");
    silent(
        PG,
        "CREATE TABLE n (a int); ALTER TABLE n RENAME TO n2; ALTER TABLE n2 RENAME COLUMN a TO b;",
    );
}

#[test]
fn ddl_and_data_in_one_transaction() {
    let rule = "ddl-and-data-in-one-transaction";
    let mixed = "BEGIN; ALTER TABLE t ADD COLUMN c int; UPDATE t SET c = a; COMMIT;";
    one(PG, mixed, Some(100_000), rule, Error);
    one(PG, mixed, Some(10), rule, Warning);
    // Without COMMIT the transaction still ends with the script.
    one(PG, "START TRANSACTION; CREATE INDEX CONCURRENTLY ix ON u (a); ALTER TABLE u ADD COLUMN c int; DELETE FROM t WHERE a < 0;", None, rule, Error);
    one(
        PG,
        "BEGIN; ALTER TABLE t ADD COLUMN c int; INSERT INTO u SELECT * FROM t; COMMIT;",
        Some(5),
        rule,
        Warning,
    );
    // The safe form: the schema change committed first.
    silent(
        PG,
        "BEGIN; ALTER TABLE t ADD COLUMN c int; COMMIT; BEGIN; UPDATE t SET c = a; COMMIT;",
    );
    silent(PG, "ALTER TABLE t ADD COLUMN c int; UPDATE t SET c = a;");
    // Inserting listed rows (tracking rows, seed data) is not a long data change.
    silent(
        PG,
        "BEGIN; ALTER TABLE t ADD COLUMN c int; INSERT INTO u (a) VALUES (1), (2); COMMIT;",
    );
    // MySQL commits before DDL; nothing is held across the UPDATE.
    silent(MY, mixed);
}

#[test]
fn lock_timeouts_in_scripts() {
    let rule = "require-timeout-settings";
    let ddl = "ALTER TABLE t ADD COLUMN c int";
    let bare = |d, sql: &str| {
        rules(&lint_script(
            sql,
            &Config::new(d, true),
            &sizes(&[("t", 10)]),
        ))
    };
    assert_eq!(
        bare(PG, &format!("{ddl}; {ddl}2;")),
        vec![(rule, Warning)],
        "once per script"
    );
    assert_eq!(bare(MY, &format!("{ddl};")), vec![(rule, Warning)]);
    assert_eq!(
        bare(PG, &format!("SET lock_timeout = '5s'; {ddl};")),
        vec![]
    );
    assert_eq!(
        bare(PG, &format!("SET SESSION lock_timeout TO 5000; {ddl};")),
        vec![]
    );
    assert_eq!(
        bare(MY, &format!("SET SESSION lock_wait_timeout = 5; {ddl};")),
        vec![]
    );
    assert_eq!(
        bare(
            MY,
            &format!("SET lock_wait_timeout = 5, sql_mode = ''; {ddl};")
        ),
        vec![]
    );
    // Switched off again, or set only for a transaction that is over.
    assert_eq!(
        bare(PG, &format!("SET lock_timeout = 0; {ddl};")),
        vec![(rule, Warning)]
    );
    assert_eq!(
        bare(
            PG,
            &format!("SET lock_timeout = '5s'; RESET lock_timeout; {ddl};")
        ),
        vec![(rule, Warning)]
    );
    assert_eq!(
        bare(PG, &format!("SET LOCAL lock_timeout = '5s'; {ddl};")),
        vec![(rule, Warning)]
    );
    assert_eq!(
        bare(
            PG,
            &format!("BEGIN; SET LOCAL lock_timeout = '5s'; {ddl}; COMMIT;")
        ),
        vec![]
    );
    assert_eq!(
        bare(
            PG,
            &format!("BEGIN; SET LOCAL lock_timeout = '5s'; COMMIT; {ddl};")
        ),
        vec![(rule, Warning)]
    );
    // Not needed: new tables, concurrent builds, SQLite; nor in dbtool's own steps.
    assert_eq!(
        bare(PG, "CREATE TABLE n (a int); CREATE INDEX ix ON n (a);"),
        vec![]
    );
    assert_eq!(bare(PG, "CREATE INDEX CONCURRENTLY ix ON t (a);"), vec![]);
    assert_eq!(bare(LITE, &format!("{ddl};")), vec![]);
    let steps = lint_statements(&[Input::new(ddl)], PG, &sizes(&[("t", 10)]));
    assert_eq!(rules(&steps), vec![]);
}

#[test]
fn unparsed_statements_are_reported_not_fatal() {
    let f = lint_script(
        "SET lock_timeout = '1s';\nDO $$ BEGIN PERFORM 1; END $$;\nDROP TABLE t;",
        &Config::new(PG, true),
        &Sizes::offline(),
    );
    assert_eq!(
        rules(&f),
        vec![("unparsed-statement", Warning), ("ban-drop-table", Error)]
    );
    assert_eq!(f[0].line, Some(2));
    assert!(f[0].why.contains("at line 2, column 1"), "{}", f[0].why);
    silent(PG, "DROP INDEX CONCURRENTLY ix_t_a;");
}

#[test]
fn findings_carry_statement_table_size_and_advice() {
    let f = script(
        PG,
        "\n\nCREATE INDEX ix ON \"T\" (a);\nCREATE INDEX iy ON Public.U (b);",
        &Sizes::live(BTreeMap::from([
            (
                "T".to_owned(),
                TableSize {
                    rows: 1_000_000,
                    source: SizeSource::Estimate,
                },
            ),
            (
                "u".to_owned(),
                TableSize {
                    rows: 42,
                    source: SizeSource::Count,
                },
            ),
        ])),
    );
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].statement, "CREATE INDEX ix ON \"T\" (a)");
    assert_eq!(f[0].line, Some(4), "after the SET line and two blank lines");
    assert_eq!(f[0].table.as_deref(), Some("T"));
    assert_eq!(f[0].rows, Some(1_000_000));
    assert_eq!(f[0].rows_source, Some(SizeSource::Estimate));
    assert!(f[0].instead.contains("CONCURRENTLY"));
    assert!(!f[0].why.is_empty());
    // Unquoted names fold to lower case, schema qualification is dropped.
    assert_eq!(f[1].table.as_deref(), Some("u"));
    assert_eq!((f[1].rows, f[1].severity), (Some(42), Warning));
}

#[test]
fn steps_are_linted_in_their_transactions() {
    let steps = [
        Step {
            name: "m1".into(),
            transactional: true,
            statements: vec![
                "CREATE TABLE a (id int)".into(),
                "CREATE INDEX ix_a ON a (id)".into(),
                "INSERT INTO seaql_migrations (version) VALUES ('m1')".into(),
            ],
        },
        Step {
            name: "m2".into(),
            transactional: true,
            statements: vec![
                "ALTER TABLE b ADD COLUMN c int".into(),
                "UPDATE b SET c = 1".into(),
            ],
        },
    ];
    let f = lint_steps(&steps, PG, &sizes(&[("b", 5)]));
    assert_eq!(
        rules(&f),
        vec![("ddl-and-data-in-one-transaction", Warning)]
    );
    assert_eq!(f[0].migration.as_deref(), Some("m2"));
    assert_eq!(f[0].line, None);
}

#[test]
fn only_existing_tables_are_sized() {
    let inputs = script_inputs(
        "CREATE TABLE n (a int); CREATE INDEX ON n (a); CREATE INDEX ON t (a); UPDATE u SET a = 1; INSERT INTO v VALUES (1); DROP TABLE w;",
        PG,
    );
    let t: Vec<String> = tables_to_size(&inputs, PG).into_iter().collect();
    assert_eq!(t, ["t", "u", "w"]);
}

#[test]
fn dropping_an_index_needs_a_lock_timeout_too() {
    let f = lint_script(
        "DROP INDEX ix_t_a;",
        &Config::new(PG, true),
        &Sizes::offline(),
    );
    assert_eq!(rules(&f), vec![("require-timeout-settings", Warning)]);
    assert_eq!(f[0].table, None);
    assert!(f[0].why.contains("its table"), "{}", f[0].why);
    let f = lint_script(
        "DROP INDEX ix ON t;",
        &Config::new(MY, true),
        &Sizes::offline(),
    );
    assert_eq!(f[0].table.as_deref(), Some("t"));
    assert!(lint_script(
        "DROP INDEX CONCURRENTLY ix;",
        &Config::new(PG, true),
        &Sizes::offline()
    )
    .is_empty());
}
