//! `dbtool lint`: a script's findings with the live table sizes (exit 19 and one JSON
//! document), `--fail-on` thresholds, a 1,000,000-row PostgreSQL table whose size shows in the
//! finding (counted, then estimated after ANALYZE, unknown offline), the pending migrations of
//! empty and partly migrated databases, and bad input.

use crate::common::{dbtool_bare, run_with_stdin, Backend, Run, TestDb};
use crate::on_all_backends;
use serde_json::Value;
use std::process::Stdio;

on_all_backends!(
    script_findings_use_the_live_sizes,
    pending_migrations_of_an_empty_database_are_clean,
    foreign_key_index_step_on_a_database_with_rows,
);

/// Writes `sql` to a file in the test's directory and returns its path.
fn script(db: &TestDb, name: &str, sql: &str) -> String {
    let path = db.dir().join(name);
    std::fs::write(&path, sql).expect("write script");
    path.to_str().expect("utf-8 path").to_owned()
}

/// `(rule, severity, table)` of every finding of a `--json` document.
fn findings(doc: &Value) -> Vec<(String, String, Option<String>)> {
    doc["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {doc}"))
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["severity"].as_str().unwrap_or_default().to_owned(),
                f["table"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn finding<'a>(doc: &'a Value, rule: &str) -> &'a Value {
    doc["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["rule"] == rule))
        .unwrap_or_else(|| panic!("no {rule} finding in {doc:#}"))
}

async fn script_findings_use_the_live_sizes(db: TestDb) {
    db.exec("CREATE TABLE t (id int PRIMARY KEY, a int)").await;
    db.exec("INSERT INTO t (id, a) VALUES (1, 1), (2, 2), (3, 3)")
        .await;
    let file = script(
        &db,
        "change.sql",
        "-- drop a column that holds data\nALTER TABLE t DROP COLUMN a;\nCREATE TABLE fresh (id int);\nDROP TABLE fresh;\n",
    );

    let r = db.run(&["--json", "lint", "--file", &file]);
    r.expect_code(19);
    let doc = r.json();
    assert_eq!(doc["source"], "file");
    assert_eq!(doc["file"], file.as_str());
    assert_eq!(doc["sizes"], true, "{doc:#}");
    assert_eq!(doc["statements"], 3);
    assert_eq!(doc["failed"], true);
    assert_eq!(doc["fail_on"], "error");
    let drop = finding(&doc, "ban-drop-column");
    assert_eq!(drop["severity"], "error");
    assert_eq!(drop["table"], "t");
    assert_eq!(drop["rows"], 3);
    assert_eq!(drop["rows_source"], "count");
    assert_eq!(drop["line"], 2);
    assert_eq!(drop["statement"], "ALTER TABLE t DROP COLUMN a");
    assert!(drop["why"].as_str().unwrap().contains("3 rows"), "{drop}");
    assert!(!drop["instead"].as_str().unwrap().is_empty());
    // The table the script creates and drops itself is nobody's yet; only the servers that
    // queue DDL behind a lock want a lock timeout.
    let mut expected = vec![(
        "ban-drop-column".to_owned(),
        "error".to_owned(),
        Some("t".to_owned()),
    )];
    if db.backend != Backend::Sqlite {
        expected.push((
            "require-timeout-settings".to_owned(),
            "warning".to_owned(),
            Some("t".to_owned()),
        ));
    }
    let mut got = findings(&doc);
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(doc["counts"]["error"], 1);
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    // Text: a table with the finding, and the summary line.
    let r = db.run(&["lint", "--file", &file]);
    r.expect_code(19);
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("| ban-drop-column "))
        .unwrap_or_else(|| panic!("no row:\n{}", r.stdout));
    assert!(
        row.contains("| error ") && row.contains("| line 2 ") && row.contains("| 3 "),
        "{row}"
    );
    let summary = r.stdout.lines().last().unwrap_or_default();
    assert!(summary.contains("fails --fail-on error"), "{summary}");
    assert!(summary.contains("table sizes from"), "{summary}");

    // The safe form of the script: the column is kept.
    let safe = script(
        &db,
        "safe.sql",
        "SET lock_timeout = '5s';\nALTER TABLE t ADD COLUMN b int;\n",
    );
    let dialect_safe = if db.backend == Backend::MySql {
        script(
            &db,
            "safe.sql",
            "SET SESSION lock_wait_timeout = 5;\nALTER TABLE t ADD COLUMN b int;\n",
        )
    } else {
        safe
    };
    let r = db.run(&["lint", "--file", &dialect_safe]);
    r.ok();
    assert!(
        r.stdout.contains("no findings in 2 statements"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_thresholds() {
    let db = TestDb::new(Backend::Postgres, "lint_fail_on");
    db.exec("CREATE TABLE small (a int)").await;
    db.exec("INSERT INTO small SELECT generate_series(1, 10)")
        .await;
    db.exec("CREATE TABLE empty (a int)").await;
    let warning_and_info = script(
        &db,
        "w.sql",
        "SET lock_timeout = '2s';\nCREATE INDEX ix_small ON small (a);\nDROP TABLE empty;\n",
    );
    let info_only = script(
        &db,
        "i.sql",
        "SET lock_timeout = '2s';\nDROP TABLE empty;\n",
    );
    let code = |file: &str, fail_on: &[&str]| {
        let mut args = vec!["lint", "--file", file];
        args.extend_from_slice(fail_on);
        db.run(&args).code
    };
    assert_eq!(code(&warning_and_info, &[]), 0, "default: error");
    assert_eq!(code(&warning_and_info, &["--fail-on", "error"]), 0);
    assert_eq!(code(&warning_and_info, &["--fail-on", "warning"]), 19);
    assert_eq!(code(&warning_and_info, &["--fail-on", "info"]), 19);
    assert_eq!(code(&info_only, &["--fail-on", "warning"]), 0);
    assert_eq!(code(&info_only, &["--fail-on", "info"]), 19);

    let r = db.run(&["--json", "lint", "--file", &warning_and_info]);
    r.ok();
    let doc = r.json();
    assert_eq!(
        findings(&doc),
        vec![
            (
                "require-concurrent-index-creation".into(),
                "warning".into(),
                Some("small".into())
            ),
            ("ban-drop-table".into(), "info".into(), Some("empty".into())),
        ]
    );
    assert_eq!(doc["failed"], false);
    assert_eq!(doc["counts"]["warning"], 1);
    assert_eq!(doc["counts"]["info"], 1);

    let r = db.run(&["lint", "--file", &warning_and_info, "--fail-on", "bogus"]);
    r.expect_code(2);
    assert!(r.stderr.contains("bogus"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_table_shows_its_size() {
    let db = TestDb::new(Backend::Postgres, "lint_million");
    db.exec("CREATE TABLE events (id bigint PRIMARY KEY, kind int NOT NULL)")
        .await;
    db.exec("INSERT INTO events SELECT g, g % 7 FROM generate_series(1, 1000000) g")
        .await;
    let file = script(
        &db,
        "index.sql",
        "SET lock_timeout = '5s';\nCREATE INDEX ix_events_kind ON events (kind);\n",
    );
    let lint = |extra: &[&str]| -> Value {
        let mut args = vec!["--json", "lint", "--file", &file];
        args.extend_from_slice(extra);
        let r = db.run(&args);
        assert!(r.code == 0 || r.code == 19, "{}\n{}", r.stdout, r.stderr);
        r.json()
    };

    // Never analysed (reltuples = -1): counted.
    let doc = lint(&[]);
    let f = finding(&doc, "require-concurrent-index-creation");
    assert_eq!(f["rows"], 1_000_000);
    assert_eq!(f["rows_source"], "count");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["table"], "events");
    let text = db.run(&["lint", "--file", &file]);
    text.expect_code(19);
    let row = text
        .stdout
        .lines()
        .find(|l| l.starts_with("| require-concurrent-index-creation "))
        .unwrap_or_else(|| panic!("{}", text.stdout));
    assert!(
        row.contains("| events ") && row.contains("| 1000000 "),
        "{row}"
    );

    // Analysed: the catalog's estimate, without counting.
    db.exec("ANALYZE events").await;
    let doc = lint(&[]);
    let f = finding(&doc, "require-concurrent-index-creation");
    assert_eq!(f["rows_source"], "estimate");
    let rows = f["rows"].as_i64().expect("rows");
    assert!((950_000..=1_050_000).contains(&rows), "{rows}");

    // The threshold decides between warning and error.
    let doc = lint(&["--large-table", "2000000"]);
    assert_eq!(
        finding(&doc, "require-concurrent-index-creation")["severity"],
        "warning"
    );

    // Offline: no size, and the table counts as large.
    let doc = lint(&["--offline"]);
    let f = finding(&doc, "require-concurrent-index-creation");
    assert_eq!(f["rows"], Value::Null);
    assert_eq!(f["severity"], "error");
    assert_eq!(doc["sizes"], false);
    assert_eq!(doc["offline_reason"], "--offline");
    assert_eq!(doc["database"], Value::Null);

    // The safe form is silent at any size.
    let safe = script(
        &db,
        "safe.sql",
        "SET lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY ix_events_kind ON events (kind);\n",
    );
    let r = db.run(&["--json", "lint", "--file", &safe]);
    r.ok();
    assert_eq!(r.json()["findings"], Value::Array(Vec::new()));
}

async fn pending_migrations_of_an_empty_database_are_clean(db: TestDb) {
    for app in ["avatar", "neurachar"] {
        let db = TestDb::new(db.backend, &format!("lint_pending_{app}"));
        let r = db.run(&["--app", app, "--json", "lint"]);
        r.ok();
        let doc = r.json();
        assert_eq!(doc["source"], "pending");
        assert_eq!(doc["app"], app);
        let names: Vec<&str> = migration::App::steps(match app {
            "avatar" => migration::App::Avatar,
            _ => migration::App::Neurachar,
        })
        .iter()
        .map(|s| s.name)
        .collect();
        assert_eq!(doc["migrations"], serde_json::json!(names));
        assert_eq!(doc["findings"], Value::Array(Vec::new()), "{doc:#}");
        assert!(doc["statements"].as_u64().unwrap() > names.len() as u64);
        // Linting created nothing.
        assert!(db.tables().await.is_empty(), "{:?}", db.tables().await);

        let r = db.run(&["--app", app, "lint"]);
        r.ok();
        assert!(
            r.stdout
                .contains(&format!("{} pending migrations: no findings", names.len())),
            "{}",
            r.stdout
        );

        db.run(&["--app", app, "upgrade"]).ok();
        let r = db.run(&["--app", app, "lint"]);
        r.ok();
        assert_eq!(
            r.stdout.trim(),
            format!("{app}: nothing pending, nothing to lint")
        );
    }
}

/// The uuid literal of each backend's mapping (uuid, binary(16), SQLite's blob).
fn uuid_literal(b: Backend) -> &'static str {
    match b {
        Backend::Postgres => "'00000000-0000-0000-0000-000000000001'",
        _ => "X'00000000000000000000000000000001'",
    }
}

async fn foreign_key_index_step_on_a_database_with_rows(db: TestDb) {
    db.run(&["--app", "neurachar", "upgrade", "m20251212_000005"])
        .ok();
    db.exec(&format!(
        "INSERT INTO characters (id, name, system_prompt) VALUES ({}, 'Ada', 'be kind')",
        uuid_literal(db.backend)
    ))
    .await;
    let r = db.run(&["--app", "neurachar", "--json", "lint"]);
    r.ok();
    let doc = r.json();
    assert_eq!(
        doc["migrations"],
        serde_json::json!(["m20251212_000006_add_foreign_key_indexes"])
    );
    let got = findings(&doc);
    match db.backend {
        // CREATE INDEX CONCURRENTLY keeps the tables writable; InnoDB builds in place.
        Backend::Postgres | Backend::MySql => assert_eq!(got, vec![], "{doc:#}"),
        // SQLite has no online build: a note per index, sized by its table.
        Backend::Sqlite => {
            let tables: Vec<_> = got
                .iter()
                .map(|(rule, sev, t)| {
                    assert_eq!(
                        (rule.as_str(), sev.as_str()),
                        ("require-concurrent-index-creation", "info")
                    );
                    t.clone().unwrap_or_default()
                })
                .collect();
            assert_eq!(tables, ["messages", "chats", "chats", "characters"]);
            let f = finding(&doc, "require-concurrent-index-creation");
            assert_eq!(f["migration"], "m20251212_000006_add_foreign_key_indexes");
            let characters = doc["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["table"] == "characters")
                .unwrap();
            assert_eq!(characters["rows"], 1);
        }
    }
}

#[test]
fn scripts_from_standard_input_and_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = dbtool_bare(dir.path());
    cmd.args([
        "--json",
        "lint",
        "--file",
        "-",
        "--dialect",
        "postgres",
        "--offline",
    ]);
    let r = run_with_stdin(&mut cmd, "ALTER TABLE users RENAME COLUMN email TO mail;\n");
    r.expect_code(19);
    let doc = r.json();
    assert_eq!(doc["source"], "stdin");
    assert_eq!(doc["dialect"], "postgres");
    assert_eq!(
        findings(&doc),
        vec![
            (
                "renaming-column".into(),
                "error".into(),
                Some("users".into())
            ),
            (
                "require-timeout-settings".into(),
                "warning".into(),
                Some("users".into())
            ),
        ]
    );
    // Nothing was created in the working directory (no ./dbtool.db).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let run = |args: &[&str]| -> Run {
        Run::from(
            dbtool_bare(dir.path())
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run dbtool"),
        )
    };
    let r = run(&["lint", "--file", "missing.sql"]);
    r.expect_code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: cannot read --file missing.sql"),
        "{}",
        r.stderr
    );
    std::fs::write(dir.path().join("bin.sql"), [0x66, 0xff, 0x3b]).unwrap();
    let r = run(&["lint", "--file", "bin.sql"]);
    r.expect_code(2);
    assert!(r.stderr.contains("bin.sql is not UTF-8"), "{}", r.stderr);
    let r = run(&["lint", "--large-table", "0"]);
    r.expect_code(2);
}

#[test]
fn an_unreachable_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("x.sql"), "CREATE INDEX ix ON t (a);\n").unwrap();
    let run = |args: &[&str]| -> Run {
        Run::from(
            dbtool_bare(dir.path())
                // Nothing listens on port 1; the password must not show anywhere.
                .env("DATABASE_URL", "postgres://app:s3cret@127.0.0.1:1/db")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run dbtool"),
        )
    };
    // A script is linted without sizes, and says so.
    let r = run(&["--json", "lint", "--file", "x.sql"]);
    r.expect_code(19);
    assert!(
        r.stderr.starts_with("warning: linting without table sizes"),
        "{}",
        r.stderr
    );
    let doc = r.json();
    assert_eq!(doc["sizes"], false);
    assert!(
        doc["offline_reason"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{doc}"
    );
    assert_eq!(
        finding(&doc, "require-concurrent-index-creation")["severity"],
        "error"
    );
    // Pending migrations cannot be known: exit 6, with the way out.
    let r = run(&["lint"]);
    r.expect_code(6);
    assert!(r.stderr.contains("--offline"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    // --offline: every migration, as on an empty database.
    let r = run(&["--app", "neurachar", "lint", "--offline"]);
    r.ok();
    assert!(
        r.stdout.contains("6 pending migrations: no findings"),
        "{}",
        r.stdout
    );
    for out in [&r.stdout, &r.stderr] {
        assert!(!out.contains("s3cret"), "{out}");
    }
}

#[test]
fn long_operator_chains_neither_crash_nor_hang() {
    let dir = tempfile::tempdir().unwrap();
    // Deep trees: a 60,000-term OR parses into a tree 60,000 levels deep; the 2 MB one is
    // over the length lint parses at all.
    let deep = format!(
        "DELETE FROM t WHERE a = 0 {};\n",
        (1..60_000)
            .map(|i| format!("OR a = {i}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let long = format!("SELECT {};\n", vec!["1"; 1_000_000].join("+"));
    for (sql, unparsed) in [(deep, false), (long, true)] {
        std::fs::write(dir.path().join("s.sql"), &sql).unwrap();
        let r = Run::from(
            dbtool_bare(dir.path())
                .args([
                    "lint",
                    "--dialect",
                    "postgres",
                    "--offline",
                    "--json",
                    "--file",
                    "s.sql",
                ])
                .output()
                .unwrap(),
        );
        r.ok();
        let doc = r.json();
        let rules: Vec<String> = findings(&doc).into_iter().map(|f| f.0).collect();
        assert_eq!(
            rules.contains(&"unparsed-statement".to_owned()),
            unparsed,
            "{rules:?}"
        );
    }
}
