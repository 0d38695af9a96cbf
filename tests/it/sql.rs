//! `upgrade --sql` / `downgrade --sql`: the printed script, applied with the backend's own
//! client (`psql`, `sqlite3`, `mariadb`), leaves the database exactly as `dbtool upgrade` /
//! `dbtool downgrade` would, tracking rows included; and no database is needed to get it.

use crate::common::introspect::{self, pg_snapshot};
use crate::common::{dbtool_bare, Backend, Run, TestDb};
use crate::on_all_backends;
use sea_orm::{DbBackend, Statement};
use std::process::{Command, Stdio};

on_all_backends!(
    script_equals_upgrade_and_downgrade_returns_to_base,
    script_starts_from_the_database_state,
    inlined_values_survive_the_clients,
);

/// Applies `script` to `db` with the backend's command-line client, stopping at the first error.
pub fn apply(db: &TestDb, script: &str) {
    let out = try_apply(db, script);
    assert!(
        out.status.success(),
        "applying the script failed: {}\n--- script\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` through the backend's command-line client (stopping at the first error) and
/// returns what the client did.
pub fn try_apply(db: &TestDb, script: &str) -> std::process::Output {
    let file = db.dir().join(format!("script-{}.sql", rand_suffix()));
    std::fs::write(&file, script).expect("write script");
    let host = |var: &str| std::env::var(var).unwrap_or_else(|_| "127.0.0.1".into());
    match db.backend {
        Backend::Postgres => Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(host("DBTOOL_TEST_PG_HOST"))
            .args(["-U", "postgres", "-d", &db.name, "-f"])
            .arg(&file)
            .stdin(Stdio::null())
            .output(),
        Backend::Sqlite => Command::new("sqlite3")
            .arg("-bail")
            .arg(db.dir().join("test.db"))
            .stdin(std::fs::File::open(&file).expect("open script"))
            .output(),
        Backend::MySql => Command::new("mariadb")
            .arg("-h")
            .arg(host("DBTOOL_TEST_MYSQL_HOST"))
            .args(["-uroot", &db.name])
            .stdin(std::fs::File::open(&file).expect("open script"))
            .output(),
    }
    .expect("the database's command-line client must be installed")
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// `dbtool ARGS` aimed at `db`, expected to succeed; its stdout.
fn sql(db: &TestDb, args: &[&str]) -> String {
    let r = db.run(args);
    r.ok();
    r.stdout
}

/// Everything the catalog says about the schema (and on PostgreSQL the spec snapshot too).
async fn schema_of(db: &TestDb) -> String {
    let mut s = introspect::dump(db).await;
    if db.backend == Backend::Postgres {
        s += &pg_snapshot(db).await;
    }
    s
}

async fn versions(db: &TestDb) -> Vec<String> {
    if !db.tables().await.contains(&"seaql_migrations".to_owned()) {
        return Vec::new();
    }
    db.strings("SELECT version FROM seaql_migrations ORDER BY version")
        .await
}

async fn settings_rows(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.rows(
        "SELECT \"key\", \"value\" FROM settings ORDER BY \"key\"",
        2,
    )
    .await
}

async fn script_equals_upgrade_and_downgrade_returns_to_base(db: TestDb) {
    for app in ["avatar", "neurachar"] {
        let by_dbtool = TestDb::new(db.backend, &format!("sql_ref_{app}"));
        by_dbtool.run(&["--app", app, "upgrade"]).ok();
        let by_script = TestDb::new(db.backend, &format!("sql_script_{app}"));
        let empty = schema_of(&by_script).await;

        let up = sql(&by_script, &["--app", app, "upgrade", "--sql", "base:head"]);
        assert!(up.contains("CREATE TABLE IF NOT EXISTS"), "{up}");
        assert_eq!(
            up.contains("BEGIN;"),
            db.backend != Backend::MySql,
            "transactions on PostgreSQL and SQLite only:\n{up}"
        );
        // Generating the script touched nothing.
        assert_eq!(by_script.tables().await, Vec::<String>::new());
        apply(&by_script, &up);

        assert_eq!(
            schema_of(&by_script).await,
            schema_of(&by_dbtool).await,
            "{app}"
        );
        assert_eq!(versions(&by_script).await, versions(&by_dbtool).await);
        assert!(!versions(&by_script).await.is_empty());
        if app == "avatar" {
            let rows = settings_rows(&by_script).await;
            assert_eq!(rows.len(), 4);
            assert_eq!(
                rows,
                settings_rows(&by_dbtool).await,
                "prompts byte for byte"
            );
        }
        // status agrees that the scripted database is at head.
        let st = by_script.run(&["--app", app, "--json", "status"]);
        st.ok();
        assert_eq!(st.json()["pending"], 0);

        let down = sql(
            &by_script,
            &["--app", app, "downgrade", "--sql", "head:base"],
        );
        assert!(down.contains("DROP TABLE"), "{down}");
        apply(&by_script, &down);
        by_dbtool
            .run(&["--app", app, "downgrade", "base", "--yes"])
            .ok();
        assert_eq!(schema_of(&by_script).await, schema_of(&by_dbtool).await);
        assert_eq!(versions(&by_script).await, Vec::<String>::new());
        // Back where it started, apart from the tracking table the script creates first.
        let mut tables = by_script.tables().await;
        tables.retain(|t| t != "seaql_migrations");
        assert!(tables.is_empty(), "{tables:?}");
        assert_eq!(
            schema_of(&by_script)
                .await
                .replace("table seaql_migrations\n", ""),
            empty.replace("table seaql_migrations\n", "")
        );
    }
}

async fn script_starts_from_the_database_state(db: TestDb) {
    db.run(&["upgrade", "+1"]).ok();
    let first = "m20260130_093115_initial_migration";
    let second = "m20260130_113328_create_settings_table";
    let third = "m20261201_000001_widen_settings_value";
    let script = sql(&db, &["upgrade", "--sql", "head"]);
    assert!(
        !script.contains(&format!("-- {first}")),
        "the applied migration is not in the script:\n{script}"
    );
    assert!(
        script.contains(&format!("-- {second} (d8cfd3cb4083)")),
        "{script}"
    );
    assert!(script.contains(&format!("-- {third}: ")), "{script}");
    // The widening is MySQL/MariaDB's alone: elsewhere its block holds only its tracking row.
    let block = &script[script.find(&format!("-- {third}: ")).unwrap()..];
    assert_eq!(
        block.contains("ALTER TABLE `settings` MODIFY `value` LONGTEXT NOT NULL;"),
        db.backend == Backend::MySql,
        "{block}"
    );
    assert!(
        !block.contains("ALTER") || db.backend == Backend::MySql,
        "{block}"
    );
    assert!(
        script.contains("the plan starts from the state of"),
        "{script}"
    );
    apply(&db, &script);
    assert_eq!(
        versions(&db).await,
        vec![first.to_owned(), second.to_owned(), third.to_owned()]
    );
    assert_eq!(db.run(&["--json", "status"]).json()["pending"], 0);

    // A downgrade without FROM starts from the database too.
    let down = sql(&db, &["downgrade", "--sql", "-2"]);
    assert!(down.contains(&format!("-- {third}")), "{down}");
    assert!(down.contains(&format!("-- {second}")), "{down}");
    assert!(!down.contains(&format!("-- {first}")), "{down}");
    apply(&db, &down);
    assert_eq!(versions(&db).await, vec![first.to_owned()]);
    assert!(!db.tables().await.contains(&"settings".to_owned()));
}

/// Strings with quotes, backslashes and line breaks, inlined into the dialect's literal
/// syntax the way the scripts inline the bio prompts, read back unchanged through the real
/// clients.
async fn inlined_values_survive_the_clients(db: TestDb) {
    let nasty = "it's a \"quoted\" line\nand a second line\twith a tab, a backslash \\ and 100%";
    let backend = db.db_backend();
    db.exec("CREATE TABLE t (v TEXT)").await;
    let placeholder = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let stmt = Statement::from_sql_and_values(
        backend,
        format!("INSERT INTO t (v) VALUES ({placeholder})"),
        [nasty.into()],
    );
    apply(&db, &format!("{stmt};\n"));
    assert_eq!(db.strings("SELECT v FROM t").await, vec![nasty.to_owned()]);
}

#[test]
fn no_database_is_contacted_with_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing listens on port 1; the password must not show anywhere.
    let run = |args: &[&str]| -> Run {
        Run::from(
            dbtool_bare(dir.path())
                .env("DATABASE_URL", "postgres://bob:s3cr3t@127.0.0.1:1/nowhere")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run dbtool"),
        )
    };
    let r = run(&["upgrade", "--sql", "base:head"]);
    r.ok();
    assert!(r.stdout.contains("CREATE TABLE \"users\""), "{}", r.stdout);
    assert!(r.stdout.contains("E'"), "PostgreSQL literals: {}", r.stdout);
    assert!(!r.stdout.contains("s3cr3t") && !r.stderr.contains("s3cr3t"));

    let r = run(&[
        "--json",
        "--app",
        "neurachar",
        "downgrade",
        "--sql",
        "head:base",
        "--dialect",
        "mysql",
    ]);
    r.ok();
    let doc = r.json();
    assert_eq!(doc["backend"], "mysql");
    assert_eq!(doc["direction"], "down");
    let blocks = doc["blocks"].as_array().expect("blocks");
    let steps = <migration::neurachar::Migrator as migration::AppMigrator>::infos();
    assert_eq!(blocks.len(), steps.len());
    assert_eq!(
        blocks[0]["name"],
        steps.last().unwrap().name,
        "newest first"
    );
    // The block ends with its bookkeeping: the tracking row, then dbtool's state row.
    let statements = blocks[0]["statements"].as_array().unwrap();
    let tail: Vec<&str> = statements[statements.len() - 2..]
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        tail[0].starts_with("DELETE FROM `seaql_migrations`")
            && tail[1].starts_with("DELETE FROM `dbtool_state`"),
        "{tail:?}"
    );
    assert!(!doc["sql"].as_str().unwrap().contains("BEGIN;"));

    // Without FROM the database is needed: a connection error, the password masked.
    let r = run(&["upgrade", "--sql", "head"]);
    r.expect_code(6);
    assert!(r.stderr.contains("FROM:TARGET"), "{}", r.stderr);
    assert!(!r.stderr.contains("s3cr3t"));

    // A dialect other than the database's: an upgrade starts from base without connecting.
    let r = run(&["upgrade", "--sql", "head", "--dialect", "sqlite"]);
    r.ok();
    assert!(r.stdout.contains("AUTOINCREMENT"), "{}", r.stdout);
    let r = run(&["downgrade", "--sql", "base", "--dialect", "sqlite"]);
    r.expect_code(2);
    assert!(r.stderr.contains("FROM"), "{}", r.stderr);
}

#[test]
fn bad_sql_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| -> Run {
        Run::from(
            dbtool_bare(dir.path())
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run dbtool"),
        )
    };
    for args in [
        &["upgrade", "--sql", ":head"][..],
        &["upgrade", "--sql", "base:nope_no_such_migration"],
        &["upgrade", "head", "--sql", "base:head"],
        &["upgrade", "--dialect", "postgres"],
        &["upgrade", "--sql", "head:base"],
        &["downgrade", "--sql", "base:head"],
        &["upgrade", "--sql", "base:head", "--dialect", "oracle"],
    ] {
        let r = run(args);
        r.expect_code(2);
        assert_eq!(r.stdout, "", "{args:?}");
        assert!(r.stderr.starts_with("error"), "{args:?}: {}", r.stderr);
    }
    // Nothing was created: no database file appeared.
    assert!(!dir.path().join("dbtool.db").exists());
}
