//! `dbtool check`: clean right after an upgrade; each kind of drift (dropped index, changed
//! column type, nullability flip, removed foreign key, extra table) is reported as the right
//! row with exit 9; the checked database is left as it was and the scratch database goes.

use crate::common::introspect;
use crate::common::pgrole::{psql_in, PgRole};
use crate::common::{dbtool_bare, Backend, Run, TestDb};
use crate::on_all_backends;
use serde_json::Value;
use std::process::Stdio;

on_all_backends!(
    clean_right_after_upgrade,
    dropped_index_is_missing,
    changed_column_type_is_altered,
    nullable_flip_is_altered,
    removed_foreign_key_is_missing,
    extra_table_is_reported_separately,
);

/// `dbtool [--app APP] --json check`: exit code and document.
fn check(db: &TestDb, app: &str) -> (i32, Value) {
    let r = db.run(&["--app", app, "--json", "check"]);
    assert!(
        r.code == 0 || r.code == 9,
        "check failed: {}\n{}",
        r.stdout,
        r.stderr
    );
    (r.code, r.json())
}

/// `(object, expected, actual, kind)` of every entry of `list` ("differences" or "extra").
fn entries(doc: &Value, list: &str) -> Vec<(String, String, String, String)> {
    doc[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {doc}"))
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (s("object"), s("expected"), s("actual"), s("kind"))
        })
        .collect()
}

async fn clean_right_after_upgrade(db: TestDb) {
    for app in ["avatar", "neurachar"] {
        let db = TestDb::new(db.backend, &format!("check_clean_{app}"));
        db.run(&["--app", app, "upgrade"]).ok();
        let before = introspect::dump(&db).await;
        let rows = db
            .strings("SELECT version FROM seaql_migrations ORDER BY version")
            .await;

        let r = db.run(&["--app", app, "check"]);
        r.ok();
        assert!(r.stdout.contains("no drift"), "{}", r.stdout);
        assert_eq!(r.stdout.lines().count(), 1, "one line: {}", r.stdout);
        let (code, doc) = check(&db, app);
        assert_eq!(code, 0);
        assert_eq!(doc["clean"], true);
        assert_eq!(doc["applied"].as_array().map(Vec::len), Some(rows.len()));

        // Read-only: the checked database is exactly as it was.
        assert_eq!(introspect::dump(&db).await, before);
        assert_eq!(
            db.strings("SELECT version FROM seaql_migrations ORDER BY version")
                .await,
            rows
        );
    }
    // Half-way is clean too: only the applied migrations are expected.
    db.run(&["upgrade", "+1"]).ok();
    let (code, doc) = check(&db, "avatar");
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["applied"].as_array().map(Vec::len), Some(1));
    // Statistics are no drift: ANALYZE makes SQLite's own sqlite_stat1 (and PostgreSQL and
    // MariaDB keep theirs out of the schema).
    db.exec(match db.backend {
        crate::common::Backend::MySql => "ANALYZE TABLE users",
        _ => "ANALYZE",
    })
    .await;
    let (code, doc) = check(&db, "avatar");
    assert_eq!(code, 0, "{doc}");
}

async fn dropped_index_is_missing(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.exec(match db.backend {
        Backend::MySql => "DROP INDEX ix_users_email ON users",
        _ => "DROP INDEX ix_users_email",
    })
    .await;
    let (code, doc) = check(&db, "avatar");
    assert_eq!(code, 9);
    assert_eq!(doc["clean"], false);
    assert_eq!(
        entries(&doc, "differences"),
        vec![(
            "index users.ix_users_email".into(),
            "UNIQUE (email)".into(),
            "(absent)".into(),
            "missing".into()
        )]
    );
    assert!(entries(&doc, "extra").is_empty());

    // The text form: a table with the same row, and the exit code.
    let r = db.run(&["check"]);
    r.expect_code(9);
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("index users.ix_users_email"))
        .unwrap_or_else(|| panic!("no row in {}", r.stdout));
    assert!(
        row.contains("UNIQUE (email)") && row.contains("missing"),
        "{row}"
    );
    assert!(r.stdout.contains("| object"), "{}", r.stdout);
}

async fn changed_column_type_is_altered(db: TestDb) {
    db.run(&["upgrade"]).ok();
    match db.backend {
        Backend::Postgres => {
            db.exec("ALTER TABLE users ALTER COLUMN last_login TYPE text")
                .await
        }
        Backend::MySql => {
            db.exec("ALTER TABLE users MODIFY last_login text NULL")
                .await
        }
        // SQLite cannot change a column's type; the column is replaced by one that differs
        // only in its type (nullable, no default, like the original).
        Backend::Sqlite => {
            db.exec("ALTER TABLE users DROP COLUMN last_login").await;
            db.exec("ALTER TABLE users ADD COLUMN last_login text")
                .await;
        }
    }
    let (code, doc) = check(&db, "avatar");
    assert_eq!(code, 9);
    let d = entries(&doc, "differences");
    assert_eq!(d.len(), 1, "{d:?}");
    let (object, expected, actual, kind) = &d[0];
    assert_eq!(object, "column users.last_login");
    assert_eq!(kind, "altered");
    let expected_type = match db.backend {
        Backend::Postgres => "type timestamp",
        Backend::MySql => "type datetime",
        Backend::Sqlite => "type datetime_text",
    };
    assert_eq!(expected, expected_type);
    assert_eq!(actual, "type text");
}

async fn nullable_flip_is_altered(db: TestDb) {
    db.run(&["upgrade"]).ok();
    match db.backend {
        Backend::Postgres => {
            db.exec("ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL")
                .await
        }
        Backend::MySql => {
            db.exec("ALTER TABLE users MODIFY password_hash varchar(255) NULL")
                .await
        }
        // SQLite cannot change nullability in place: the same column, nullable.
        Backend::Sqlite => {
            db.exec("ALTER TABLE users DROP COLUMN password_hash").await;
            db.exec("ALTER TABLE users ADD COLUMN password_hash varchar(255)")
                .await;
        }
    }
    let (code, doc) = check(&db, "avatar");
    assert_eq!(code, 9);
    assert_eq!(
        entries(&doc, "differences"),
        vec![(
            "column users.password_hash".into(),
            "NOT NULL".into(),
            "NULL".into(),
            "altered".into()
        )]
    );
}

async fn removed_foreign_key_is_missing(db: TestDb) {
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    match db.backend {
        Backend::MySql => {
            db.exec("ALTER TABLE chats DROP FOREIGN KEY chats_user_id_fkey")
                .await
        }
        Backend::Postgres => {
            db.exec("ALTER TABLE chats DROP CONSTRAINT chats_user_id_fkey")
                .await
        }
        Backend::Sqlite => {
            // SQLite cannot drop a foreign key: the way to remove one is to rebuild the table
            // without it, which is what this does.
            let create = db
                .strings("SELECT sql FROM sqlite_master WHERE name = 'chats'")
                .await
                .remove(0);
            let fk = r#", FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE NO ACTION ON UPDATE NO ACTION"#;
            assert!(create.contains(fk), "{create}");
            let indexes = db
                .strings("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'chats' AND sql IS NOT NULL")
                .await
                .join("; ");
            let rebuilt = create
                .replace(fk, "")
                .replacen(r#""chats""#, r#""chats_rebuilt""#, 1);
            db.exec(&format!(
                "PRAGMA foreign_keys = OFF; {rebuilt}; INSERT INTO chats_rebuilt SELECT * FROM chats; \
                 DROP TABLE chats; ALTER TABLE chats_rebuilt RENAME TO chats; {indexes}; PRAGMA foreign_keys = ON;"
            ))
            .await;
        }
    }
    let (code, doc) = check(&db, "neurachar");
    assert_eq!(code, 9, "{doc}");
    let diffs = entries(&doc, "differences");
    assert_eq!(diffs.len(), 1, "{doc}");
    let (object, expected, actual, kind) = &diffs[0];
    // SQLite keeps no constraint names, so the object is named by its column there.
    assert!(
        object.starts_with("foreign key chats.") && object.contains("user_id"),
        "{object}"
    );
    assert_eq!(
        expected,
        "(user_id) -> users(id) ON UPDATE NO ACTION ON DELETE NO ACTION"
    );
    assert_eq!(actual, "(absent)");
    assert_eq!(kind, "missing");
}

async fn extra_table_is_reported_separately(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.exec("CREATE TABLE audit_log (id integer PRIMARY KEY, note text)")
        .await;
    let (code, doc) = check(&db, "avatar");
    assert_eq!(code, 9);
    assert!(entries(&doc, "differences").is_empty(), "{doc}");
    assert_eq!(
        entries(&doc, "extra"),
        vec![(
            "table audit_log".into(),
            "(absent)".into(),
            "2 column(s)".into(),
            "extra".into()
        )]
    );
    let r = db.run(&["check"]);
    r.expect_code(9);
    assert!(
        r.stdout.contains("Objects the migrations do not create"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("Differences from the applied migrations"),
        "{}",
        r.stdout
    );
}

/// The scratch database is named after the checking process and is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_databases_are_dropped() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let db = TestDb::new(backend, "check_scratch");
        db.run(&["upgrade"]).ok();
        let child = db
            .cmd()
            .args(["check"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dbtool");
        let pid = child.id();
        Run::from(child.wait_with_output().expect("wait")).ok();
        let prefix = format!("dbtool_check_{pid}_");
        let left = match backend {
            Backend::Postgres => {
                db.strings(&format!(
                    "SELECT datname::text FROM pg_database WHERE datname LIKE '{prefix}%'"
                ))
                .await
            }
            _ => {
                db.strings(&format!(
                    "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
                     WHERE SCHEMA_NAME LIKE '{prefix}%'"
                ))
                .await
            }
        };
        assert!(left.is_empty(), "{backend:?}: {left:?}");
    }
}

#[test]
fn a_missing_sqlite_file_is_an_error_and_stays_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = Run::from(
        dbtool_bare(dir.path())
            .args(["check"])
            .stdin(Stdio::null())
            .output()
            .expect("run dbtool"),
    );
    r.expect_code(6);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(!dir.path().join("dbtool.db").exists());
}

/// PostgreSQL: an INVALID index (a failed `CREATE INDEX CONCURRENTLY`) is reported as
/// invalid, both one the migrations do not create and one they do, and not also as extra or
/// altered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_indexes_are_reported_as_invalid() {
    let db = TestDb::new(Backend::Postgres, "check_invalid_index");
    db.run(&["upgrade"]).ok();
    let conn = db.connect().await;
    // The default prompts are inserted in one transaction: they share created_at.
    let failed = sea_orm::ConnectionTrait::execute_unprepared(
        &conn,
        "CREATE UNIQUE INDEX CONCURRENTLY ix_settings_created_at ON settings (created_at)",
    )
    .await;
    conn.close().await.ok();
    assert!(
        failed.is_err(),
        "duplicate values make the unique build fail"
    );
    // What a failed REINDEX INDEX CONCURRENTLY leaves on an index the migrations create.
    db.exec(
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_settings_key'::regclass",
    )
    .await;

    let (code, doc) = check(&db, "avatar");
    assert_eq!(code, 9, "{doc}");
    let invalid: Vec<_> = entries(&doc, "differences")
        .into_iter()
        .filter(|e| e.3 == "invalid")
        .collect();
    assert_eq!(invalid.len(), 2, "{doc}");
    assert_eq!(invalid[0].0, "index settings.ix_settings_created_at");
    assert_eq!(invalid[0].1, "(absent)");
    assert!(invalid[0].2.contains("INVALID"), "{:?}", invalid[0]);
    assert_eq!(invalid[1].0, "index settings.ix_settings_key");
    assert_eq!(invalid[1].1, "UNIQUE (key)");
    assert!(invalid[1].2.contains("REINDEX"), "{:?}", invalid[1]);
    assert_eq!(entries(&doc, "differences").len(), 2, "nothing else: {doc}");
    assert!(entries(&doc, "extra").is_empty(), "not also extra: {doc}");

    let r = db.run(&["check"]);
    r.expect_code(9);
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("ix_settings_created_at"))
        .unwrap();
    assert!(row.contains("invalid"), "{row}");
}

on_all_backends!(every_kind_of_drift_is_found);

/// The kinds of drift the README names that the scenarios above do not: a missing table, a
/// missing and an extra column, a changed default, a changed primary key, a foreign key with
/// another action, and (PostgreSQL, MySQL/MariaDB: SQLite keeps checks only in the table's
/// text) an extra check constraint.
async fn every_kind_of_drift_is_found(db: TestDb) {
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    let statements: &[&str] = match db.backend {
        Backend::Postgres => &[
            "DROP TABLE messages",
            "ALTER TABLE email_login_codes ALTER COLUMN created_at DROP DEFAULT",
            "ALTER TABLE email_login_codes DROP COLUMN ip_address",
            "ALTER TABLE email_login_codes ADD COLUMN note text",
            "ALTER TABLE email_login_codes DROP CONSTRAINT email_login_codes_pkey",
            "ALTER TABLE email_login_codes ADD CONSTRAINT email_login_codes_pkey PRIMARY KEY (id, email)",
            "ALTER TABLE chats DROP CONSTRAINT chats_user_id_fkey",
            "ALTER TABLE chats ADD CONSTRAINT chats_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE",
            "ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email <> '')",
        ],
        Backend::MySql => &[
            "DROP TABLE messages",
            "ALTER TABLE email_login_codes ALTER created_at DROP DEFAULT",
            "ALTER TABLE email_login_codes DROP COLUMN ip_address",
            "ALTER TABLE email_login_codes ADD COLUMN note text",
            "ALTER TABLE email_login_codes DROP PRIMARY KEY, ADD PRIMARY KEY (id, email)",
            "ALTER TABLE chats DROP FOREIGN KEY chats_user_id_fkey",
            "ALTER TABLE chats ADD CONSTRAINT chats_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE",
            "ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email <> '')",
        ],
        Backend::Sqlite => &[
            "DROP TABLE messages",
            "DROP TABLE email_login_codes",
            "CREATE TABLE email_login_codes (id integer NOT NULL, email varchar(255) NOT NULL, \
             code_hash varchar(255) NOT NULL, created_at datetime_text NOT NULL, \
             expires_at datetime_text NOT NULL, used_at datetime_text NULL, note text NULL, \
             PRIMARY KEY (id, email))",
            "DROP TABLE chats",
            "CREATE TABLE chats (chat_id uuid_text NOT NULL PRIMARY KEY, user_id uuid_text NOT NULL, \
             character_id uuid_text NOT NULL, created_at datetime_text NOT NULL DEFAULT CURRENT_TIMESTAMP, \
             FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE ON UPDATE NO ACTION, \
             FOREIGN KEY (character_id) REFERENCES characters (id) ON DELETE NO ACTION ON UPDATE NO ACTION)",
            "CREATE INDEX ix_chats_user_id ON chats (user_id)",
            "CREATE INDEX ix_chats_character_id ON chats (character_id)",
        ],
    };
    for s in statements {
        db.exec(s).await;
    }
    let (code, doc) = check(&db, "neurachar");
    assert_eq!(code, 9, "{doc}");
    let found: Vec<(String, String)> = entries(&doc, "differences")
        .into_iter()
        .chain(entries(&doc, "extra"))
        .map(|(o, _, _, k)| (o, k))
        .collect();
    let fk = match db.backend {
        Backend::Sqlite => "foreign key chats.(user_id) -> users(id)",
        _ => "foreign key chats.chats_user_id_fkey",
    };
    let mut want = vec![
        ("table messages", "missing"),
        ("column email_login_codes.ip_address", "missing"),
        ("column email_login_codes.note", "extra"),
        ("column email_login_codes.created_at", "altered"),
        ("primary key email_login_codes", "altered"),
        (fk, "altered"),
    ];
    if db.backend != Backend::Sqlite {
        want.push(("check users.users_email_check", "extra"));
    }
    for (object, kind) in want {
        assert!(
            found.iter().any(|(o, k)| o == object && k == kind),
            "{:?}: no {kind} {object} in {found:?}",
            db.backend
        );
    }
    let fk_row = entries(&doc, "differences")
        .into_iter()
        .find(|e| e.0 == fk)
        .unwrap();
    assert!(
        fk_row.1.contains("ON DELETE NO ACTION") && fk_row.2.contains("ON DELETE CASCADE"),
        "{fk_row:?}"
    );
}

/// PostgreSQL: a user who may only read the app's tables (no CREATEDB) checks the database
/// against the stored snapshot; no scratch database appears and the database is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_user_without_createdb_checks_and_leaves_nothing() {
    let db = TestDb::new(Backend::Postgres, "check_nocreatedb");
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    let name = format!("check_ro_{}", std::process::id());
    let role = PgRole::create(&db, &name, "NOCREATEDB NOSUPERUSER");
    let role = role.name.as_str();
    let psql = |sql: &str| psql_in(&db.name, sql);
    psql(&format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
    ));
    // Other tests create databases meanwhile: only those of this role count.
    let owned = || {
        psql(&format!(
            "SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = '{role}'"
        ))
    };
    let schema_before = introspect::dump(&db).await;

    let url = format!("postgres://{role}@127.0.0.1:5432/{}", db.name);
    let r = Run::from(
        dbtool_bare(db.dir())
            .env("DATABASE_URL", &url)
            .args(["--app", "neurachar", "--json", "check"])
            .stdin(Stdio::null())
            .output()
            .expect("run dbtool"),
    );
    r.ok();
    let doc = r.json();
    assert_eq!(doc["clean"], true, "{doc}");
    assert_eq!(doc["expected_from"], "snapshot", "{doc}");
    assert_eq!(owned().trim(), "0", "no scratch database");
    assert_eq!(introspect::dump(&db).await, schema_before);
}

/// MariaDB hides foreign keys and check constraints in `information_schema` from a user with
/// SELECT only: that is a missing privilege (22), never drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_read_only_user_gets_no_false_drift() {
    let db = TestDb::new(Backend::MySql, "check_my_ro");
    db.run(&["--app", "neurachar", "-q", "upgrade"]).ok();
    let user = format!("ro_{}", std::process::id());
    let admin = |sql: &str| {
        let out = std::process::Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-uroot", "-e", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    admin(&format!("DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%'; GRANT SELECT ON {}.* TO '{user}'@'%'", db.name));
    let url = format!("mysql://{user}@127.0.0.1:3306/{}", db.name);
    let check = || {
        Run::from(
            dbtool_bare(db.dir())
                .env("DATABASE_URL", &url)
                .args(["--app", "neurachar", "check"])
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let r = check();
    let granted = format!("GRANT REFERENCES ON {}.* TO '{user}'@'%'", db.name);
    admin(&granted);
    let after = check();
    admin(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    r.expect_code(22);
    assert!(r.error_line().contains("GRANT REFERENCES"), "{}", r.stderr);
    after.ok();
}
