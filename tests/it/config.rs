//! Configuration (issue 9): dbtool.toml < .env < environment < flags, `dbtool config` with
//! sources and masked passwords, unknown keys, `--schema` on PostgreSQL, `sslmode`, and
//! `-v` / `-vv` / `-q`. Every run uses the real binary in a scratch working directory with a
//! clean environment (`dbtool_bare`).

use crate::common::{dbtool_bare, Backend, Run, TestDb};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs dbtool in `dir` with only the given configuration variables set.
fn run_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = dbtool_bare(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(
        c.args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dbtool"),
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write test file");
}

/// `(value, source)` of one setting in the `config --json` document.
fn setting(doc: &Value, key: &str) -> (Value, String) {
    let s = &doc["settings"][key];
    (
        s["value"].clone(),
        s["source"].as_str().unwrap_or("?").to_owned(),
    )
}

#[test]
fn defaults_when_nothing_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let doc = run_in(dir.path(), &[], &["config", "--json"]).ok().json();
    for key in [
        "database_url",
        "app",
        "schema",
        "lock_timeout",
        "wait",
        "wait_timeout",
    ] {
        assert_eq!(setting(&doc, key).1, "default", "{key}: {doc}");
    }
    assert_eq!(
        setting(&doc, "database_url").0,
        "sqlite://dbtool.db",
        "{doc}"
    );
    assert_eq!(setting(&doc, "app").0, "avatar");
    let text = run_in(dir.path(), &[], &["config"]).ok().stdout.clone();
    assert!(
        text.contains("recognised from the database (default: avatar)"),
        "with no app given, config says the database decides: {text}"
    );
    let given = run_in(dir.path(), &[], &["--app", "neurachar", "config"]);
    assert!(
        !given.ok().stdout.contains("recognised from"),
        "{}",
        given.stdout
    );
    assert_eq!(setting(&doc, "lock_timeout").0, 60);
    assert_eq!(doc["config_file"], Value::Null);
    assert_eq!(doc["dotenv_file"], Value::Null);
    // `config` never connects, so it creates no database file either.
    assert!(!dir.path().join("dbtool.db").exists());
}

#[test]
fn precedence_file_then_dotenv_then_env_then_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "dbtool.toml",
        r#"# team defaults
database_url = "postgres://app:filepw@filehost:5432/avatar"
app = "neurachar"
schema = "from_file"
lock_timeout = 11
wait = true
wait_timeout = 21
"#,
    );
    let doc = run_in(d, &[], &["config", "--json"]).ok().json();
    assert_eq!(
        setting(&doc, "database_url"),
        (
            Value::from("postgres://app:***@filehost:5432/avatar"),
            "dbtool.toml".into()
        )
    );
    assert_eq!(
        setting(&doc, "app"),
        (Value::from("neurachar"), "dbtool.toml".into())
    );
    assert_eq!(
        setting(&doc, "schema"),
        (Value::from("from_file"), "dbtool.toml".into())
    );
    assert_eq!(
        setting(&doc, "lock_timeout"),
        (Value::from(11), "dbtool.toml".into())
    );
    assert_eq!(
        setting(&doc, "wait"),
        (Value::from(true), "dbtool.toml".into())
    );
    assert_eq!(
        setting(&doc, "wait_timeout"),
        (Value::from(21), "dbtool.toml".into())
    );
    assert_eq!(doc["config_file"], "./dbtool.toml");

    // .env beats the file; keys of other tools in it are left alone.
    write(
        d,
        ".env",
        "SECRET_KEY=flask-secret\nDATABASE_URL=postgres://app:dotpw@dothost/avatar\nDBTOOL_LOCK_TIMEOUT=12\nDBTOOL_SCHEMA=from_dotenv\nexport DBTOOL_WAIT=false\n",
    );
    let doc = run_in(d, &[], &["config", "--json"]).ok().json();
    assert_eq!(
        setting(&doc, "database_url"),
        (
            Value::from("postgres://app:***@dothost/avatar"),
            ".env".into()
        )
    );
    assert_eq!(
        setting(&doc, "lock_timeout"),
        (Value::from(12), ".env".into())
    );
    assert_eq!(
        setting(&doc, "schema"),
        (Value::from("from_dotenv"), ".env".into())
    );
    assert_eq!(setting(&doc, "wait"), (Value::from(false), ".env".into()));
    assert_eq!(
        setting(&doc, "app"),
        (Value::from("neurachar"), "dbtool.toml".into())
    );
    assert_eq!(doc["dotenv_file"], "./.env");

    // The environment beats .env.
    let env = [
        ("DATABASE_URL", "postgres://app:envpw@envhost/avatar"),
        ("DBTOOL_LOCK_TIMEOUT", "13"),
        ("DBTOOL_APP", "avatar"),
    ];
    let doc = run_in(d, &env, &["config", "--json"]).ok().json();
    assert_eq!(
        setting(&doc, "database_url"),
        (
            Value::from("postgres://app:***@envhost/avatar"),
            "env".into()
        )
    );
    assert_eq!(
        setting(&doc, "lock_timeout"),
        (Value::from(13), "env".into())
    );
    assert_eq!(setting(&doc, "app"), (Value::from("avatar"), "env".into()));
    assert_eq!(
        setting(&doc, "schema"),
        (Value::from("from_dotenv"), ".env".into())
    );

    // Flags beat everything, before or after the subcommand.
    let r = run_in(
        d,
        &env,
        &[
            "--database-url",
            "postgres://app:flagpw@flaghost/avatar",
            "--lock-timeout",
            "14",
            "config",
            "--json",
            "--schema",
            "from_flag",
            "--app",
            "neurachar",
        ],
    );
    let doc = r.ok().json();
    assert_eq!(
        setting(&doc, "database_url"),
        (
            Value::from("postgres://app:***@flaghost/avatar"),
            "flag".into()
        )
    );
    assert_eq!(
        setting(&doc, "lock_timeout"),
        (Value::from(14), "flag".into())
    );
    assert_eq!(
        setting(&doc, "schema"),
        (Value::from("from_flag"), "flag".into())
    );
    assert_eq!(
        setting(&doc, "app"),
        (Value::from("neurachar"), "flag".into())
    );
    assert_eq!(
        setting(&doc, "wait_timeout"),
        (Value::from(21), "dbtool.toml".into())
    );

    // The same in text: one row per setting with its source.
    let r = run_in(d, &env, &["--lock-timeout", "14", "config"]);
    let text = &r.ok().stdout;
    let row = |key: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {key} ")))
            .unwrap_or_else(|| panic!("no row for {key}:\n{text}"))
            .to_owned()
    };
    assert!(row("lock_timeout").contains("14s") && row("lock_timeout").contains("flag"));
    assert!(row("database_url").contains("envhost") && row("database_url").contains("env"));
    assert!(row("schema").contains("from_dotenv") && row("schema").contains(".env"));
    assert!(row("wait_timeout").contains("21s") && row("wait_timeout").contains("dbtool.toml"));
    assert!(text.contains("config file: ./dbtool.toml"), "{text}");
    for pw in ["filepw", "dotpw", "envpw", "flagpw", "flask-secret"] {
        assert!(!text.contains(pw), "{pw} leaked:\n{text}");
    }
}

#[test]
fn passwords_are_masked_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    // Percent-encoded: neither the encoded nor the decoded form may appear.
    let url = "postgres://admin:p%40ss%3Aw0rd-xyz@db.example.com:5432/avatar";
    for args in [&["config"][..], &["config", "--json"][..]] {
        let r = run_in(dir.path(), &[("DATABASE_URL", url)], args);
        r.ok();
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(all.contains("admin:***@db.example.com"), "{all}");
        assert!(
            !all.contains("p%40ss") && !all.contains("p@ss") && !all.contains("w0rd-xyz"),
            "password leaked: {all}"
        );
    }
    // From the file as well.
    write(
        dir.path(),
        "dbtool.toml",
        "database_url = \"mysql://root:file-secret-42@localhost/avatar\"\n",
    );
    let r = run_in(dir.path(), &[], &["config", "--json"]);
    let doc = r.ok().json();
    assert_eq!(
        setting(&doc, "database_url").0,
        "mysql://root:***@localhost/avatar"
    );
    assert_eq!(doc["backend"], "mysql");
    assert!(!r.stdout.contains("file-secret-42"));
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "dbtool.toml",
        "app = \"avatar\"\ncolour = \"red\"\ndatbase_url = \"sqlite://x.db\"\n",
    );
    for args in [&["config"][..], &["upgrade"][..]] {
        let r = run_in(d, &[], args);
        r.expect_code(2);
        assert!(
            r.stderr.contains("`colour`") && r.stderr.contains("`datbase_url`"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("dbtool.toml"), "{}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    }
    assert!(!d.join("dbtool.db").exists() && !d.join("x.db").exists());
    let r = run_in(d, &[], &["config", "--json"]);
    let doc = r.expect_code(2).json();
    assert_eq!(doc["error"]["code"], 2);
    assert!(doc["error"]["message"].as_str().unwrap().contains("colour"));
}

#[test]
fn bad_values_and_missing_files_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    write(d, "dbtool.toml", "lock_timeout = \"soon\"\n");
    let r = run_in(d, &[], &["config"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("line 1") && r.stderr.contains("lock_timeout"),
        "{}",
        r.stderr
    );

    write(d, "dbtool.toml", "app = \"blog\"\n");
    let r = run_in(d, &[], &["status"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("'blog'") && r.stderr.contains("neurachar"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(d.join("dbtool.toml")).unwrap();

    write(d, ".env", "DBTOOL_LOCK_TIMEOUT=abc\n");
    let r = run_in(d, &[], &["config"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("DBTOOL_LOCK_TIMEOUT") && r.stderr.contains(".env"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(d.join(".env")).unwrap();

    let r = run_in(d, &[], &["--config", "nope.toml", "config"]);
    r.expect_code(2);
    assert!(r.stderr.contains("nope.toml"), "{}", r.stderr);
    let r = run_in(d, &[("DBTOOL_CONFIG", "gone.toml")], &["config"]);
    r.expect_code(2);
    assert!(r.stderr.contains("gone.toml"), "{}", r.stderr);

    // An explicit file replaces ./dbtool.toml.
    write(d, "dbtool.toml", "lock_timeout = 1\n");
    write(d, "ci.toml", "lock_timeout = 2\n");
    let doc = run_in(d, &[], &["--config", "ci.toml", "config", "--json"])
        .ok()
        .json();
    assert_eq!(setting(&doc, "lock_timeout").0, 2);
    assert_eq!(doc["config_file"], "./ci.toml");
    let doc = run_in(d, &[("DBTOOL_CONFIG", "ci.toml")], &["config", "--json"])
        .ok()
        .json();
    assert_eq!(setting(&doc, "lock_timeout").0, 2);
}

/// The configured values are the ones commands use, not only the ones `config` shows.
#[test]
fn commands_use_the_file_and_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "dbtool.toml",
        "database_url = \"sqlite://team.db?mode=rwc\"\napp = \"neurachar\"\n",
    );
    let r = run_in(d, &[], &["upgrade"]);
    assert!(r.ok().stdout.contains("neurachar: now at"), "{}", r.stdout);
    assert!(d.join("team.db").exists() && !d.join("dbtool.db").exists());

    // The avatar app named in .env contradicts the NeuraChar database: refused, and the
    // command that fits is named.
    write(d, ".env", "DBTOOL_APP=avatar\n");
    let r = run_in(d, &[], &["status", "--json"]);
    let doc = r.expect_code(11).json();
    assert_eq!(doc["error"]["kind"], "wrong_app");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--app neurachar"),
        "{doc}"
    );
}

fn pg_url_with_password(db: &TestDb, password: &str) -> String {
    db.url
        .replacen("postgres@", &format!("postgres:{password}@"), 1)
}

async fn tables_in_schema(db: &TestDb, schema: &str) -> Vec<String> {
    db.strings(&format!(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = '{schema}' ORDER BY 1"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_holds_the_tables_and_the_tracking_table() {
    let db = TestDb::new(Backend::Postgres, "schema_holds_tables");
    // A name that needs quoting: upper case and a space, kept exactly in double quotes.
    let r = db.run(&["--schema", "\"Avatar Data\"", "upgrade"]);
    r.ok();
    assert_eq!(
        tables_in_schema(&db, "Avatar Data").await,
        [
            "dbtool_audit",
            "dbtool_state",
            "seaql_migrations",
            "settings",
            "users"
        ]
    );
    assert!(tables_in_schema(&db, "public").await.is_empty());
    let doc = db
        .run(&["--schema", "\"Avatar Data\"", "status", "--json"])
        .ok()
        .json();
    assert_eq!(doc["pending"], 0);
    // Without --schema the database looks empty: search_path is public.
    let doc = db.run(&["status", "--json"]).ok().json();
    assert_eq!(doc["pending"], avatar_steps());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_in_two_schemas_of_one_database() {
    let db = TestDb::new(Backend::Postgres, "two_apps_two_schemas");
    // Schema from the file for one app, from the environment for the other.
    write(db.dir(), "dbtool.toml", "schema = \"avatar\"\n");
    db.run(&["upgrade"]).ok();
    let mut c = db.cmd();
    c.env("DBTOOL_SCHEMA", "neurachar")
        .env("DBTOOL_APP", "neurachar")
        .arg("upgrade")
        .stdin(Stdio::null());
    Run::from(c.output().unwrap()).ok();
    assert_eq!(
        tables_in_schema(&db, "avatar").await,
        [
            "dbtool_audit",
            "dbtool_state",
            "seaql_migrations",
            "settings",
            "users"
        ]
    );
    assert_eq!(
        tables_in_schema(&db, "neurachar").await,
        [
            "characters",
            "chats",
            "dbtool_audit",
            "dbtool_state",
            "email_login_codes",
            "messages",
            "seaql_migrations",
            "users"
        ]
    );
    db.run(&["status", "--check"]).expect_code(0);
    db.run(&[
        "--schema",
        "neurachar",
        "--app",
        "neurachar",
        "status",
        "--check",
    ])
    .expect_code(0);
    assert_eq!(
        db.count("SELECT count(*) FROM avatar.seaql_migrations")
            .await,
        avatar_steps() as i64
    );
    assert_eq!(
        db.count("SELECT count(*) FROM neurachar.seaql_migrations")
            .await,
        <migration::neurachar::Migrator as migration::AppMigrator>::infos().len() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_schema_reads_as_empty_and_is_not_created_by_reads() {
    let db = TestDb::new(Backend::Postgres, "missing_schema_reads");
    let doc = db
        .run(&["--schema", "ghost", "status", "--json"])
        .ok()
        .json();
    assert_eq!(doc["pending"], avatar_steps(), "{doc}");
    db.run(&["--schema", "ghost", "history"]).ok();
    assert_eq!(
        db.count("SELECT count(*) FROM pg_namespace WHERE nspname = 'ghost'")
            .await,
        0
    );
    // A dry run is a write command: it may create the schema, but no table.
    db.run(&["--schema", "ghost", "upgrade", "--dry-run"]).ok();
    assert!(tables_in_schema(&db, "ghost").await.is_empty());
}

#[test]
fn schema_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let long = "s".repeat(64);
    let r = run_in(dir.path(), &[], &["--schema", &long, "config"]);
    r.expect_code(2);
    assert!(r.stderr.contains("63"), "{}", r.stderr);
}

/// Runs a slow migration and asks the server whether dbtool's connection uses TLS.
async fn connection_uses_tls(db: &TestDb, sslmode: &str) -> bool {
    let url = format!("{}?sslmode={sslmode}", db.url);
    let child = dbtool_bare(db.dir())
        .env("DATABASE_URL", &url)
        .env("DBTOOL_FIXTURE_SLEEP_MS", "4000")
        .args(["--app", "fixture", "upgrade"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbtool");
    let sql = format!(
        "SELECT s.ssl::text FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
         WHERE a.datname = '{}' AND a.application_name = 'dbtool'",
        db.name
    );
    let started = Instant::now();
    let ssl = loop {
        if let Some(v) = db.strings(&sql).await.first() {
            break v == "true";
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "dbtool never showed up in pg_stat_activity"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = Run::from(child.wait_with_output().unwrap());
    out.ok();
    ssl
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_in_the_url_is_respected() {
    let db = TestDb::new(Backend::Postgres, "sslmode_respected");
    assert!(connection_uses_tls(&db, "require").await);
    db.run(&["--app", "fixture", "downgrade", "base", "--yes"])
        .ok();
    assert!(!connection_uses_tls(&db, "disable").await);
    // Certificate checking is not silently skipped: the test server's certificate is
    // self-signed, so verify-full fails with a TLS hint (exit 6).
    let r = run_in(
        db.dir(),
        &[("DATABASE_URL", &format!("{}?sslmode=verify-full", db.url))],
        &["status"],
    );
    r.expect_code(6);
    assert!(r.stderr.contains("sslmode"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_shows_steps_and_sql_but_never_the_password() {
    let db = TestDb::new(Backend::Postgres, "verbose_sql_no_password");
    let url = pg_url_with_password(&db, "Pw-do-not-print-77");
    let env = [("DATABASE_URL", url.as_str())];

    // Without -v stderr has the step's start and end lines (progress) and nothing else.
    let quiet = run_in(db.dir(), &env, &["upgrade", "+1"]);
    let lines: Vec<&str> = quiet.ok().stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", quiet.stderr);
    assert!(lines[0].starts_with("applying "), "{}", quiet.stderr);
    assert!(lines[1].starts_with("applied "), "{}", quiet.stderr);

    let v = run_in(db.dir(), &env, &["-v", "upgrade", "+1"]);
    v.ok();
    assert!(
        v.stderr.contains(
            "migration::engine::run: up m20260130_113328_create_settings_table in a transaction"
        ),
        "{}",
        v.stderr
    );
    assert!(!v.stderr.contains("CREATE TABLE"), "{}", v.stderr);

    db.run(&["downgrade", "base", "--yes"]).ok();
    let vv = run_in(db.dir(), &env, &["-vv", "upgrade"]);
    vv.ok();
    assert!(
        vv.stderr.contains("sql: CREATE TABLE \"users\""),
        "{}",
        vv.stderr
    );
    assert!(vv.stderr.contains("INSERT INTO \"seaql_migrations\""));
    assert!(vv.stderr.contains("postgres:***@"), "{}", vv.stderr);
    for out in [&v.stdout, &v.stderr, &vv.stdout, &vv.stderr] {
        assert!(
            !out.contains("Pw-do-not-print-77"),
            "password leaked:\n{out}"
        );
    }
    // Stdout carries the same result lines with or without -vv.
    assert!(vv.stdout.contains("avatar: now at"), "{}", vv.stdout);
}

#[test]
fn quiet_prints_errors_only() {
    let dir = tempfile::tempdir().unwrap();
    let loud = run_in(dir.path(), &[], &["upgrade"]);
    assert!(
        loud.ok().stderr.contains("creating SQLite database"),
        "{}",
        loud.stderr
    );
    std::fs::remove_file(dir.path().join("dbtool.db")).unwrap();
    let quiet = run_in(dir.path(), &[], &["-q", "upgrade"]);
    assert_eq!(quiet.ok().stderr, "");
    let err = run_in(dir.path(), &[], &["-q", "upgrade", "nosuchmigration"]);
    err.expect_code(2);
    assert!(err.stderr.starts_with("error: "), "{}", err.stderr);
}

/// How many migrations Avatar has (all pending on an empty database).
fn avatar_steps() -> usize {
    <migration::avatar::Migrator as migration::AppMigrator>::infos().len()
}

/// `.env` lines of other tools never make dbtool fail, dbtool's own lines take shell-like
/// quoting and `${VAR}`, and the last definition wins.
#[test]
fn dotenv_is_parsed_like_a_shell_for_dbtools_lines_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        ".env",
        "OTHER=${UNDEFINED\nBROKEN='unterminated\nJSON={\"a\": 1}\nDBTOOL_LOCK_TIMEOUT=5\n\
         export DBTOOL_SCHEMA=\"two words\" # a comment\nDATABASE_URL=postgres://app:${DB_PW}@dothost/avatar\n\
         DBTOOL_LOCK_TIMEOUT=7\n",
    );
    let r = run_in(d, &[("DB_PW", "Env-Subst-9")], &["config", "--json"]);
    let doc = r.ok().json();
    assert_eq!(
        setting(&doc, "lock_timeout"),
        (Value::from(7), ".env".into())
    );
    assert_eq!(setting(&doc, "schema").0, "two words");
    assert_eq!(
        setting(&doc, "database_url").0,
        "postgres://app:***@dothost/avatar"
    );
    assert!(!r.stdout.contains("Env-Subst-9") && !r.stderr.contains("Env-Subst-9"));
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

/// Another tool's quoted value may span lines (docker compose and dotenv read it so): a line
/// inside it that looks like one of dbtool's variables is part of that value, not dbtool's.
#[test]
fn dotenv_multiline_values_of_other_tools_are_skipped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        ".env",
        "FOO=\"line1\nDATABASE_URL=sqlite://evil.db\n\"\nCERT='-----BEGIN\nDBTOOL_LOCK_TIMEOUT=1\n-----END'\n\
         DBTOOL_APP=neurachar\n",
    );
    let r = run_in(d, &[], &["config", "--json"]);
    let doc = r.ok().json();
    assert_eq!(
        setting(&doc, "database_url"),
        (Value::from("sqlite://dbtool.db"), "default".into())
    );
    assert_eq!(setting(&doc, "lock_timeout").1, "default");
    assert_eq!(
        setting(&doc, "app"),
        (Value::from("neurachar"), ".env".into())
    );
    assert!(!d.join("evil.db").exists());
}

/// A FIFO as `DATABASE_URL_FILE` would block the read forever: refused before opening.
#[test]
fn database_url_file_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("url.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let r = run_in(
        d,
        &[("DATABASE_URL_FILE", fifo.to_str().unwrap())],
        &["config"],
    );
    r.expect_code(2);
    assert!(
        r.stderr.contains("url.fifo") && r.stderr.contains("a FIFO"),
        "{}",
        r.stderr
    );
}

/// `DBTOOL_WAIT` / `wait` take the same spellings in the environment, `.env` and the file.
#[test]
fn one_set_of_boolean_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (text, expected) in [
        ("yes", true),
        ("on", true),
        ("1", true),
        ("TRUE", true),
        ("y", true),
        ("no", false),
        ("off", false),
        ("0", false),
        ("false", false),
        ("", false),
    ] {
        let env = run_in(d, &[("DBTOOL_WAIT", text)], &["config", "--json"]);
        assert_eq!(
            setting(&env.ok().json(), "wait"),
            (Value::from(expected), "env".into()),
            "env {text:?}"
        );
        write(d, ".env", &format!("DBTOOL_WAIT={text}\n"));
        let dotenv = run_in(d, &[], &["config", "--json"]);
        assert_eq!(
            setting(&dotenv.ok().json(), "wait"),
            (Value::from(expected), ".env".into()),
            ".env {text:?}"
        );
        std::fs::remove_file(d.join(".env")).unwrap();
        if !text.is_empty() {
            write(d, "dbtool.toml", &format!("wait = \"{text}\"\n"));
            let file = run_in(d, &[], &["config", "--json"]);
            assert_eq!(
                setting(&file.ok().json(), "wait"),
                (Value::from(expected), "dbtool.toml".into()),
                "toml {text:?}"
            );
            std::fs::remove_file(d.join("dbtool.toml")).unwrap();
        }
    }
    let r = run_in(d, &[("DBTOOL_WAIT", "maybe")], &["status"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("DBTOOL_WAIT (environment)") && !r.stderr.contains("--wait"),
        "{}",
        r.stderr
    );
}

/// `DATABASE_URL_FILE`: the URL from a mounted secret, below `DATABASE_URL` of the same layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_url_file_is_read_trimmed_and_masked() {
    let db = TestDb::new(Backend::Postgres, "url_file");
    let url = pg_url_with_password(&db, "File-Secret-5");
    let secret = db.dir().join("db-url");
    std::fs::write(&secret, format!("{url}\n")).unwrap();
    let path = secret.display().to_string();
    let env = [("DATABASE_URL_FILE", path.as_str())];
    let r = run_in(db.dir(), &env, &["config", "--json"]);
    let doc = r.ok().json();
    assert_eq!(setting(&doc, "database_url").1, "env DATABASE_URL_FILE");
    assert_eq!(doc["database_url_file"], path.as_str());
    let r = run_in(db.dir(), &env, &["upgrade"]);
    assert!(r.ok().stdout.contains("avatar: now at"), "{}", r.stdout);
    let s = run_in(db.dir(), &env, &["--json", "status"]);
    assert_eq!(s.ok().json()["pending"], 0);
    for out in [&r.stdout, &r.stderr, &s.stdout, &s.stderr] {
        assert!(!out.contains("File-Secret-5"), "{out}");
    }
    // In .env too; DATABASE_URL in the same layer wins, with a warning.
    write(db.dir(), ".env", &format!("DATABASE_URL_FILE={path}\n"));
    let doc = run_in(db.dir(), &[], &["config", "--json"]).ok().json();
    assert_eq!(setting(&doc, "database_url").1, ".env DATABASE_URL_FILE");
    let both = [
        ("DATABASE_URL_FILE", path.as_str()),
        ("DATABASE_URL", "sqlite://other.db"),
    ];
    let r = run_in(db.dir(), &both, &["config", "--json"]);
    assert_eq!(
        setting(&r.ok().json(), "database_url").0,
        "sqlite://other.db"
    );
    assert!(
        r.stderr
            .contains("warning: DATABASE_URL_FILE (environment) is ignored"),
        "{}",
        r.stderr
    );
}

/// libpq's conventions: PG* variables select and complete a PostgreSQL URL, `~/.pgpass` and
/// service files work, and every password they give is masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libpq_variables_pgpass_and_services() {
    let db = TestDb::new(Backend::Postgres, "libpq_conventions");
    let host = std::env::var("DBTOOL_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let pw = "Libpq-Secret-3";
    let env = [
        ("PGHOST", host.as_str()),
        ("PGUSER", "postgres"),
        ("PGDATABASE", db.name.as_str()),
        ("PGPASSWORD", pw),
    ];
    // No URL at all: PostgreSQL, as psql would connect.
    let r = run_in(db.dir(), &env, &["config", "--json"]);
    let doc = r.ok().json();
    assert_eq!(setting(&doc, "database_url").1, "libpq env");
    assert_eq!(doc["backend"], "postgres");
    let notes = doc["libpq"].to_string();
    assert!(
        notes.contains("PGHOST") && notes.contains("PGPASSWORD"),
        "{notes}"
    );
    let up = run_in(db.dir(), &env, &["upgrade"]);
    assert!(up.ok().stdout.contains("avatar: now at"));
    let st = run_in(db.dir(), &env, &["-v", "--json", "status"]);
    let doc = st.ok().json();
    assert_eq!(doc["pending"], 0);
    assert!(
        doc["database"].as_str().unwrap().contains("postgres:***@"),
        "{doc}"
    );
    let text = run_in(db.dir(), &env, &["config"]);
    assert!(text.ok().stdout.contains("libpq:"), "{}", text.stdout);
    for out in [&up.stdout, &up.stderr, &st.stdout, &st.stderr, &text.stdout] {
        assert!(!out.contains(pw), "{out}");
    }
    // A URL without a database takes PGDATABASE; what the URL says wins over PGUSER.
    let url = format!("postgres://postgres@{host}:5432");
    let r = run_in(
        db.dir(),
        &[
            ("DATABASE_URL", &url),
            ("PGDATABASE", &db.name),
            ("PGUSER", "nobody"),
        ],
        &["--json", "status"],
    );
    assert_eq!(r.ok().json()["pending"], 0);

    // ~/.pgpass (private) gives the password; a readable one is ignored with a warning.
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("*:*:{}:postgres:Pgpass-Secret-8\n", db.name),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let h = home.path().display().to_string();
    let url = format!("postgres://postgres@{host}:5432/{}", db.name);
    let env = [("HOME", h.as_str()), ("DATABASE_URL", url.as_str())];
    let r = run_in(db.dir(), &env, &["config"]);
    assert!(
        r.ok().stdout.contains("password from ~/.pgpass"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("postgres:***@"), "{}", r.stdout);
    let r = run_in(db.dir(), &env, &["-v", "status"]);
    r.ok();
    assert!(!r.stdout.contains("Pgpass-Secret-8") && !r.stderr.contains("Pgpass-Secret-8"));
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run_in(db.dir(), &env, &["config"]);
    assert!(
        r.ok()
            .stderr
            .contains("warning: password file ~/.pgpass is ignored"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("password from"), "{}", r.stdout);

    // A service in ~/.pg_service.conf, named by PGSERVICE or service= in the URL.
    std::fs::write(
        home.path().join(".pg_service.conf"),
        format!("[other]\nhost=nowhere\n[avatar]\nhost={host}\nport=5432\nuser=postgres\ndbname={}\npassword=Service-Secret-4\n", db.name),
    )
    .unwrap();
    let r = run_in(
        db.dir(),
        &[("HOME", h.as_str()), ("PGSERVICE", "avatar")],
        &["--json", "status"],
    );
    assert_eq!(r.ok().json()["pending"], 0, "{}", r.stderr);
    assert!(!r.stdout.contains("Service-Secret-4"));
    let r = run_in(
        db.dir(),
        &[
            ("HOME", h.as_str()),
            ("DATABASE_URL", "postgres://?service=avatar"),
        ],
        &["config"],
    );
    assert!(
        r.ok()
            .stdout
            .contains("service avatar from ~/.pg_service.conf"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Service-Secret-4"));
}

/// Every credential form in the URL is masked on every channel: `password=`,
/// `sslpassword=`, percent-encoded userinfo with characters that need encoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_encoded_passwords_are_masked_everywhere() {
    let db = TestDb::new(Backend::Postgres, "query_password");
    let base = db.url.clone();
    let url = format!("{base}?password=Query-Secret-1&sslmode=prefer");
    let env = [("DATABASE_URL", url.as_str())];
    let runs = [
        run_in(db.dir(), &env, &["config"]),
        run_in(db.dir(), &env, &["config", "--json"]),
        run_in(db.dir(), &env, &["-vv", "upgrade"]),
        run_in(db.dir(), &env, &["--json", "status"]),
    ];
    for r in &runs {
        r.ok();
        assert!(
            !r.stdout.contains("Query-Secret-1") && !r.stderr.contains("Query-Secret-1"),
            "{}{}",
            r.stdout,
            r.stderr
        );
    }
    assert_eq!(
        runs[3].json()["database"],
        format!("{base}?password=***&sslmode=prefer")
    );
    // A password that needs percent-encoding, given encoded: it connects and never shows.
    let url = db
        .url
        .replacen("postgres@", "postgres:p%40ss%2Fw%23rd%3FX9@", 1);
    let r = run_in(
        db.dir(),
        &[("DATABASE_URL", &url)],
        &["-v", "--json", "status"],
    );
    r.ok();
    for form in ["p%40ss%2Fw%23rd%3FX9", "p@ss/w#rd?X9"] {
        assert!(
            !r.stdout.contains(form) && !r.stderr.contains(form),
            "{form}: {}{}",
            r.stdout,
            r.stderr
        );
    }
}

/// `--wait-timeout N` keeps trying for the full N seconds, with a last attempt at the end.
#[test]
fn wait_timeout_waits_the_full_time() {
    let dir = tempfile::tempdir().unwrap();
    // A port that refuses at once: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/x");
    for secs in [1u64, 3] {
        let started = Instant::now();
        let r = run_in(
            dir.path(),
            &[("DATABASE_URL", &url)],
            &["--wait", "--wait-timeout", &secs.to_string(), "status"],
        );
        let took = started.elapsed();
        r.expect_code(6);
        assert!(
            took >= Duration::from_secs(secs),
            "gave up after {took:?} of {secs}s"
        );
        assert!(
            took < Duration::from_secs(secs) + Duration::from_millis(1500),
            "took {took:?}"
        );
        assert!(
            r.stderr.contains(&format!("--wait-timeout ({secs}s)")),
            "{}",
            r.stderr
        );
    }
}

/// Read commands on a SQLite file that does not exist say so, and create nothing; in-memory
/// and `mode=ro` databases can be read.
#[test]
fn sqlite_reads_that_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [&["status"][..], &["history"], &["upgrade", "--dry-run"]] {
        let r = run_in(d, &[("DATABASE_URL", "sqlite://nothing-here.db")], args);
        r.ok();
        assert!(
            r.stderr.contains("no SQLite database at ./nothing-here.db")
                && r.stderr.contains("nothing was created"),
            "{}",
            r.stderr
        );
        // One warning, and its hint works as printed: with the URL from the environment
        // `dbtool upgrade` finds it again.
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("`dbtool upgrade`"), "{}", r.stderr);
        assert!(!d.join("nothing-here.db").exists());
    }
    // A URL given as a flag is repeated in the hint (following `dbtool upgrade` would
    // create ./dbtool.db instead), never printed.
    for args in [&["status"][..], &["history"]] {
        let mut full = vec!["--database-url", "sqlite://flag-db.db"];
        full.extend_from_slice(args);
        let r = run_in(d, &[], &full);
        r.ok();
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("`dbtool --database-url <url> upgrade` creates it"),
            "{}",
            r.stderr
        );
    }
    // A no-op on a file that does not exist creates nothing (no file, no lock file).
    for args in [
        &["upgrade", "base"][..],
        &["stamp", "base"],
        &["stamp", "head", "--dry-run"],
    ] {
        let r = run_in(d, &[("DATABASE_URL", "sqlite://noop.db")], args);
        r.ok();
        let listing: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("noop"))
            .collect();
        assert!(listing.is_empty(), "{args:?} created {listing:?}");
    }
    // A verified stamp cannot succeed on a new file: refused before creating it (exit 9);
    // with --force, stamp creates the file as the README says.
    let r = run_in(
        d,
        &[("DATABASE_URL", "sqlite://stamped.db")],
        &["stamp", "head"],
    );
    r.expect_code(9);
    assert!(r.error_line().contains("--force"), "{}", r.stderr);
    assert!(!d.join("stamped.db").exists());
    run_in(
        d,
        &[("DATABASE_URL", "sqlite://stamped.db")],
        &["stamp", "head", "--force"],
    )
    .ok();
    let r = run_in(
        d,
        &[("DATABASE_URL", "sqlite://stamped.db")],
        &["--json", "status"],
    );
    assert_eq!(r.ok().json()["pending"], 0);
    let r = run_in(
        d,
        &[("DATABASE_URL", "sqlite::memory:")],
        &["--json", "status"],
    );
    assert_eq!(r.ok().json()["pending"], avatar_steps());
    run_in(d, &[("DATABASE_URL", "sqlite://ro.db")], &["upgrade"]).ok();
    let r = run_in(
        d,
        &[("DATABASE_URL", "sqlite://ro.db?mode=ro")],
        &["--json", "status"],
    );
    assert_eq!(r.ok().json()["pending"], 0);
    let r = run_in(
        d,
        &[("DATABASE_URL", "sqlite://ro.db?mode=ro")],
        &["downgrade", "--yes"],
    );
    r.expect_code(17);
    assert!(
        r.stderr.contains("mode=ro") && r.stderr.contains("./ro.db"),
        "{}",
        r.stderr
    );
    let r = run_in(
        d,
        &[("DATABASE_URL", "sqlite://ro.db")],
        &["--json", "status"],
    );
    assert_eq!(
        r.ok().json()["pending"],
        0,
        "the refused downgrade changed nothing"
    );
}

/// A `dbname=` parameter names the database as libpq has it (it wins over the path), and
/// `check` builds its scratch schema elsewhere, never in the checked database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbname_parameter_is_the_database_and_check_leaves_it_alone() {
    let db = TestDb::new(Backend::Postgres, "dbname_param");
    let url = db.url.replacen(
        &format!("/{}", db.name),
        &format!("/postgres?dbname={}", db.name),
        1,
    );
    let env = [("DATABASE_URL", url.as_str())];
    run_in(db.dir(), &env, &["upgrade"]).ok();
    assert_eq!(db.tables().await, ["seaql_migrations", "settings", "users"]);
    let before = crate::common::badinput::snapshot(&db).await;
    let r = run_in(db.dir(), &env, &["check"]);
    assert!(r.ok().stdout.contains("no drift"), "{}", r.stdout);
    assert_eq!(crate::common::badinput::snapshot(&db).await, before);
}

/// A hint repeats a relative `--config` as an absolute path, so that it works from any
/// directory (it repeated `cfg/x.toml` as typed; found by a hostile run).
#[test]
fn a_relative_config_file_is_named_absolutely_in_hints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("cfg")).unwrap();
    let db = d.join("x.db");
    write(
        d,
        "cfg/x.toml",
        &format!("database_url = \"sqlite://{}\"\n", db.display()),
    );
    let r = run_in(d, &[], &["--config", "cfg/x.toml", "status"]);
    let hint = r.ok().hint();
    let file = d.join("cfg/x.toml");
    assert_eq!(
        hint,
        format!("dbtool --config {} upgrade", file.display()),
        "{}",
        r.stderr
    );
    // As printed, from elsewhere: it creates the database the file names.
    let away = tempfile::tempdir().unwrap();
    let args: Vec<&str> = hint.split_whitespace().skip(1).collect();
    run_in(away.path(), &[], &args).ok();
    assert!(db.exists(), "{hint}");
    assert!(!away.path().join("dbtool.db").exists());
}
