//! dbtool through a real PgBouncer (session and transaction pooling) in front of the test
//! PostgreSQL: read and admin commands work through both, `--schema` included; migration
//! commands refuse transaction pooling (exit 18) unless a direct URL is given, with which the
//! migration lock is real; session pooling works for everything. Each PgBouncer is started
//! without `ignore_startup_parameters`, so a rejected start-up parameter would fail the test.

use crate::common::pgbouncer::{PgBouncer, PoolMode};
use crate::common::{dbtool_bare, run_with_stdin, Backend, Run, TestDb};
use crate::migrate::recorded;
use std::process::{Child, Command, Stdio};

/// `dbtool ARGS` with `DATABASE_URL=url`, in `db`'s directory.
fn cmd_at(db: &TestDb, url: &str, args: &[&str]) -> Command {
    let mut c = dbtool_bare(db.dir());
    c.env("DATABASE_URL", url).args(args).stdin(Stdio::null());
    c
}

fn run_at(db: &TestDb, url: &str, args: &[&str]) -> Run {
    Run::from(cmd_at(db, url, args).output().expect("run dbtool"))
}

fn spawn_at(db: &TestDb, url: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut c = cmd_at(db, url, args);
    c.envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().expect("spawn dbtool")
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait dbtool"))
}

/// The error of a refused run: exactly one line on stderr, naming what it must.
#[track_caller]
fn one_error_line<'a>(r: &'a Run, needles: &[&str]) -> &'a str {
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", r.stderr);
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from: {}", lines[0]);
    }
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    lines[0]
}

/// Both ways a URL can reach the pooler: as is (dbtool notices the pooler itself) and with
/// Prisma's explicit `pgbouncer=true`.
fn pooler_urls(pgb: &PgBouncer, db: &TestDb) -> [String; 2] {
    let plain = pgb.url_for(db);
    [plain.clone(), format!("{plain}?pgbouncer=true")]
}

#[test]
fn transaction_pooling_serves_read_and_admin_commands() {
    let db = TestDb::new(Backend::Postgres, "pgb_tx_admin");
    let pgb = PgBouncer::start(PoolMode::Transaction);
    db.run(&["upgrade"]).ok();
    for (n, url) in pooler_urls(&pgb, &db).iter().enumerate() {
        // Each run is several statements over a few reused server connections: the second
        // statement on a reused one used to fail ("prepared statement sqlx_s_1 exists").
        for _ in 0..3 {
            let r = run_at(&db, url, &["status"]);
            assert!(r.ok().stdout.contains("0 pending"), "{}", r.stdout);
        }
        run_at(&db, url, &["history"]).ok();
        let key = format!("pooled_{n}");
        let r = run_at(
            &db,
            url,
            &["settings", "set", &key, "through the pooler", "--create"],
        );
        assert!(r.ok().stdout.contains("created"), "{}", r.stdout);
        run_at(&db, url, &["settings", "set", &key, "updated", "--create"]).ok();
        for _ in 0..3 {
            let r = run_at(&db, url, &["settings", "get", &key]);
            assert_eq!(r.ok().stdout, "updated");
        }
        let r = run_at(&db, url, &["settings", "list"]);
        assert!(r.ok().stdout.contains(&key), "{}", r.stdout);
        let export = run_at(&db, url, &["settings", "export"]);
        let file = db.dir().join(format!("settings-{n}.json"));
        std::fs::write(&file, &export.ok().stdout).unwrap();
        let r = run_at(
            &db,
            url,
            &["settings", "import", file.to_str().unwrap(), "--dry-run"],
        );
        assert!(r.ok().stdout.contains("unchanged"), "{}", r.stdout);
        run_at(&db, url, &["settings", "import", file.to_str().unwrap()]).ok();
        run_at(&db, url, &["settings", "unset", &key, "--yes"]).ok();
        run_at(&db, url, &["settings", "get", &key]).expect_code(8);

        let email = format!("pooled{n}@example.com");
        let add = ["users", "add", &email, "--cost", "4", "--password-stdin"];
        run_with_stdin(&mut cmd_at(&db, url, &add), "correct horse\n").ok();
        let check = ["users", "check-password", &email, "--password-stdin"];
        run_with_stdin(&mut cmd_at(&db, url, &check), "correct horse\n").ok();
        run_with_stdin(&mut cmd_at(&db, url, &check), "wrong horse!\n").expect_code(10);
        let passwd = ["users", "passwd", &email, "--cost", "4", "--password-stdin"];
        run_with_stdin(&mut cmd_at(&db, url, &passwd), "battery staple\n").ok();
        run_with_stdin(&mut cmd_at(&db, url, &check), "battery staple\n").ok();
        run_at(&db, url, &["users", "deactivate", &email]).ok();
        let r = run_at(&db, url, &["--json", "users", "list"]);
        let users = r.ok().json();
        let me = users["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{email} not listed: {}", r.stdout));
        assert_eq!(me["is_active"], false, "{me}");
        run_at(&db, url, &["users", "activate", &email]).ok();

        let r = run_at(&db, url, &["docs"]);
        assert!(r.ok().stdout.contains("settings"), "{}", r.stdout);
        run_at(&db, url, &["check"]).ok();
        // A dry run reads only, so it works through the pooler too.
        run_at(&db, url, &["downgrade", "--dry-run"]).ok();
    }
}

#[test]
fn transaction_pooling_serves_concurrent_clients() {
    // Several clients at once, so server connections really are shared between them: every
    // statement must run whole on one server connection, and none may be left prepared.
    let db = TestDb::new(Backend::Postgres, "pgb_tx_concurrent");
    let pgb = PgBouncer::start(PoolMode::Transaction);
    db.run(&["upgrade"]).ok();
    let url = pgb.url_for(&db);
    for round in 0..3 {
        let children: Vec<(String, Child)> = (0..6)
            .map(|i| {
                let key = format!("k_{round}_{i}");
                let child = spawn_at(&db, &url, &[], &["settings", "set", &key, &key, "--create"]);
                (key, child)
            })
            .collect();
        for (key, child) in children {
            finish(child).ok();
            assert_eq!(
                run_at(&db, &url, &["settings", "get", &key]).ok().stdout,
                key
            );
        }
        let readers: Vec<Child> = (0..6)
            .map(|_| spawn_at(&db, &url, &[], &["--json", "status"]))
            .collect();
        for child in readers {
            assert_eq!(finish(child).ok().json()["pending"], 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_pooling_serves_neurachar_admin_commands() {
    let db = TestDb::new(Backend::Postgres, "pgb_tx_neurachar");
    let pgb = PgBouncer::start(PoolMode::Transaction);
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    db.exec(
        "INSERT INTO users (id, email) VALUES ('00000000-0000-0000-0000-0000000000a1', 'nc@example.com');
         INSERT INTO characters (id, name, system_prompt, is_public, creator_id)
           VALUES ('00000000-0000-0000-0000-0000000000c1', 'Aria', 'be kind', false, '00000000-0000-0000-0000-0000000000a1');
         INSERT INTO chats (chat_id, user_id, character_id)
           VALUES ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000c1');
         INSERT INTO messages (id, chat_id, role, content)
           VALUES ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000d1', 'user', 'hi');
         INSERT INTO email_login_codes (email, code_hash, expires_at)
           VALUES ('nc@example.com', 'x', now() - interval '1 day');",
    )
    .await;
    let url = format!("{}?pgbouncer=true", pgb.url_for(&db));
    let nc = |args: &[&str]| {
        let mut a = vec!["--app", "neurachar"];
        a.extend_from_slice(args);
        run_at(&db, &url, &a)
    };
    let character = "00000000-0000-0000-0000-0000000000c1";
    nc(&["characters", "publish", character]).ok();
    let r = nc(&["--json", "characters", "list", "--public"]);
    assert_eq!(
        r.ok().json()["characters"][0]["name"],
        "Aria",
        "{}",
        r.stdout
    );
    nc(&["characters", "unpublish", character]).ok();
    let r = nc(&["login-codes", "purge", "--dry-run"]);
    assert!(r.ok().stdout.contains('1'), "{}", r.stdout);
    nc(&["login-codes", "purge"]).ok();
    assert_eq!(db.count("SELECT count(*) FROM email_login_codes").await, 0);
    nc(&[
        "chats",
        "delete",
        "00000000-0000-0000-0000-0000000000d1",
        "--yes",
    ])
    .ok();
    assert_eq!(db.count("SELECT count(*) FROM messages").await, 0);
    nc(&["users", "list"]).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_pooling_refuses_migrations_without_a_direct_url() {
    let db = TestDb::new(Backend::Postgres, "pgb_tx_refuse");
    let pgb = PgBouncer::start(PoolMode::Transaction);
    db.run(&["upgrade", "25698f3f906f"]).ok();
    let before = recorded(&db).await;
    assert_eq!(before.len(), 1);
    for url in pooler_urls(&pgb, &db) {
        for args in [
            &["upgrade"][..],
            &["downgrade", "--yes"],
            &["stamp", "head"],
            &["stamp", "base"],
            &["--schema", "elsewhere", "upgrade"],
        ] {
            let r = run_at(&db, &url, args);
            r.expect_code(18);
            let line = one_error_line(
                &r,
                &[
                    "refusing to migrate through",
                    "--direct-url",
                    "nothing was changed",
                ],
            );
            assert!(line.contains(&format!(":{}/", pgb.port)), "{line}");
            if url.contains("pgbouncer=true") {
                assert!(line.contains("pgbouncer=true"), "{line}");
            } else {
                assert!(line.contains("transaction mode"), "{line}");
            }
        }
        let r = run_at(&db, &url, &["--json", "upgrade"]);
        r.expect_code(18);
        assert_eq!(r.json()["error"]["kind"], "pooler");
        assert_eq!(r.json()["error"]["code"], 18);
        // Dry runs only read, and say what a real run would do.
        let r = run_at(&db, &url, &["upgrade", "--dry-run"]);
        assert!(r.ok().stdout.contains("would apply 2"), "{}", r.stdout);
    }
    assert_eq!(recorded(&db).await, before, "nothing changed");
    let schemas = db
        .strings("SELECT nspname::text FROM pg_namespace WHERE nspname = 'elsewhere'")
        .await;
    assert!(schemas.is_empty(), "no schema created: {schemas:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_url_carries_the_migrations() {
    let db = TestDb::new(Backend::Postgres, "pgb_tx_direct");
    let pgb = PgBouncer::start(PoolMode::Transaction);
    let pooled = pgb.url_for(&db);
    let flagged = format!("{pooled}?pgbouncer=true");

    // As a flag, from the environment and from dbtool.toml.
    let r = run_at(&db, &pooled, &["--direct-url", &db.url, "upgrade"]);
    assert!(r.ok().stdout.contains("now at"), "{}", r.stdout);
    assert_eq!(recorded(&db).await.len(), 3);
    let r = Run::from(
        cmd_at(&db, &flagged, &["downgrade", "--yes"])
            .env("DBTOOL_DIRECT_URL", &db.url)
            .output()
            .unwrap(),
    );
    r.ok();
    assert_eq!(recorded(&db).await.len(), 2);
    std::fs::write(
        db.dir().join("dbtool.toml"),
        format!("direct_url = \"{}\"\n", db.url),
    )
    .unwrap();
    run_at(&db, &flagged, &["upgrade"]).ok();
    run_at(&db, &flagged, &["stamp", "25698f3f906f"]).ok();
    run_at(&db, &flagged, &["stamp", "head"]).ok();
    assert_eq!(recorded(&db).await.len(), 3);
    let r = run_at(&db, &flagged, &["--json", "config"]);
    let cfg = r.ok().json();
    assert_eq!(cfg["settings"]["direct_url"]["source"], "dbtool.toml");
    assert_eq!(cfg["settings"]["direct_url"]["value"], db.url.as_str());
    std::fs::remove_file(db.dir().join("dbtool.toml")).unwrap();

    // Read and admin commands keep the pooled URL: a direct URL that reaches nothing does
    // not stop them, while migrations fail on it (exit 6, naming it).
    let nowhere = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        crate::common::as_postgres::free_port(),
        db.name
    );
    let with_nowhere = |args: &[&str]| {
        let mut a = vec!["--direct-url", &nowhere];
        a.extend_from_slice(args);
        run_at(&db, &pooled, &a)
    };
    assert!(with_nowhere(&["status"]).ok().stdout.contains("0 pending"));
    with_nowhere(&["settings", "set", "via_pooler", "yes", "--create"]).ok();
    assert_eq!(
        with_nowhere(&["settings", "get", "via_pooler"]).ok().stdout,
        "yes"
    );
    let r = with_nowhere(&["downgrade", "--yes"]);
    r.expect_code(6);
    one_error_line(&r, &[&nowhere]);
    assert_eq!(recorded(&db).await.len(), 3);

    // A direct URL that is itself a transaction pooler is no way around the rule.
    let r = run_at(
        &db,
        &pooled,
        &["--direct-url", &pooled, "downgrade", "--yes"],
    );
    r.expect_code(18);
    one_error_line(&r, &["refusing to migrate through", "transaction mode"]);
    let r = run_at(&db, &pooled, &["--direct-url", &flagged, "upgrade"]);
    r.expect_code(2);
    one_error_line(&r, &["direct_url", "pgbouncer=true"]);
    assert_eq!(recorded(&db).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upgrades_through_the_pooler_with_a_direct_url_apply_each_migration_once() {
    let db = TestDb::new(Backend::Postgres, "pgb_tx_lock");
    let pgb = PgBouncer::start(PoolMode::Transaction);
    let url = format!("{}?pgbouncer=true", pgb.url_for(&db));
    let children: Vec<Child> = (0..8)
        .map(|_| {
            spawn_at(
                &db,
                &url,
                &[("DBTOOL_DIRECT_URL", &db.url)],
                &["--app", "neurachar", "upgrade"],
            )
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    for r in &runs {
        r.ok();
    }
    let applied: usize = runs
        .iter()
        .map(|r| r.stderr.matches("applied ").count())
        .sum();
    assert_eq!(applied, 6, "each migration applied by exactly one process");
    assert_eq!(recorded(&db).await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_pooling_works_for_everything() {
    let db = TestDb::new(Backend::Postgres, "pgb_session");
    let pgb = PgBouncer::start(PoolMode::Session);
    let url = pgb.url_for(&db);
    run_at(&db, &url, &["upgrade", "25698f3f906f"]).ok();
    run_at(&db, &url, &["upgrade"]).ok();
    assert_eq!(recorded(&db).await.len(), 3);
    run_at(&db, &url, &["downgrade", "25698f3f906f", "--yes"]).ok();
    run_at(&db, &url, &["stamp", "base"]).ok();
    run_at(&db, &url, &["stamp", "25698f3f906f"]).ok();
    run_at(&db, &url, &["upgrade"]).ok();
    assert!(run_at(&db, &url, &["status"])
        .ok()
        .stdout
        .contains("0 pending"));
    run_at(&db, &url, &["settings", "set", "s", "session", "--create"]).ok();
    assert_eq!(
        run_at(&db, &url, &["settings", "get", "s"]).ok().stdout,
        "session"
    );

    // With --schema: the session-level search_path, set once the pooler is known to keep
    // sessions; the tables land in the schema.
    let r = run_at(
        &db,
        &url,
        &["--schema", "nc", "--app", "neurachar", "upgrade"],
    );
    r.ok();
    let nc_tables = db
        .strings("SELECT tablename::text FROM pg_tables WHERE schemaname = 'nc' ORDER BY 1")
        .await;
    assert_eq!(
        nc_tables.len(),
        8,
        "five tables, the tracking table and dbtool's two: {nc_tables:?}"
    );
    let r = run_at(
        &db,
        &url,
        &["--schema", "nc", "--app", "neurachar", "status"],
    );
    assert!(r.ok().stdout.contains("0 pending"), "{}", r.stdout);

    // The session lock is real through session pooling.
    let fresh = TestDb::new(Backend::Postgres, "pgb_session_lock");
    let fresh_url = pgb.url_for(&fresh);
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_at(&fresh, &fresh_url, &[], &["--app", "neurachar", "upgrade"]))
        .collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    for r in &runs {
        r.ok();
    }
    let applied: usize = runs
        .iter()
        .map(|r| r.stderr.matches("applied ").count())
        .sum();
    assert_eq!(applied, 6, "each migration applied by exactly one process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_is_set_per_transaction_directly_and_through_transaction_pooling() {
    let db = TestDb::new(Backend::Postgres, "pgb_tx_schema");
    let pgb = PgBouncer::start(PoolMode::Transaction);
    let pooled = pgb.url_for(&db);
    let r = run_at(
        &db,
        &pooled,
        &["--direct-url", &db.url, "--schema", "app", "upgrade"],
    );
    r.ok();
    let [plain, flagged] = pooler_urls(&pgb, &db);
    for url in [plain, flagged, db.url.clone()] {
        let app = |args: &[&str]| {
            let mut a = vec!["--schema", "app"];
            a.extend_from_slice(args);
            run_at(&db, &url, &a)
        };
        for _ in 0..3 {
            assert!(app(&["status"]).ok().stdout.contains("0 pending"));
        }
        app(&["settings", "set", "in_app", "schema app", "--create"]).ok();
        assert_eq!(
            app(&["settings", "get", "in_app"]).ok().stdout,
            "schema app"
        );
        let r = app(&["--json", "docs"]);
        assert_eq!(r.ok().json()["tables"], 2, "{}", r.stdout);
        app(&["check"]).ok();
        // Another schema through the same server connections reads as empty.
        let r = run_at(&db, &url, &["--schema", "other", "--json", "status"]);
        assert_eq!(r.ok().json()["pending"], 3, "{}", r.stdout);
        run_at(
            &db,
            &url,
            &["--schema", "other", "settings", "get", "in_app"],
        )
        .expect_code(6);
        app(&["settings", "unset", "in_app", "--yes"]).ok();
    }
    app_rows_only(&db).await;
    // No server connection was left with dbtool's search_path for the next client.
    for _ in 0..6 {
        assert_eq!(pgb.psql(&db, "SHOW search_path"), "\"$user\", public");
    }
}

/// The settings table exists in schema `app` only.
async fn app_rows_only(db: &TestDb) {
    let where_ = db
        .strings("SELECT schemaname::text FROM pg_tables WHERE tablename = 'settings'")
        .await;
    assert_eq!(where_, vec!["app".to_string()]);
}

#[test]
fn direct_url_is_configured_like_every_global_option() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = dbtool_bare(d);
        c.env(
            "DATABASE_URL",
            "postgres://app@pooler:6432/app?pgbouncer=true",
        )
        .envs(extra.iter().copied())
        .args(args)
        .stdin(Stdio::null());
        Run::from(c.output().unwrap())
    };
    let doc = config(&[], &["--json", "config"]).ok().json();
    assert_eq!(
        doc["settings"]["direct_url"]["value"],
        serde_json::Value::Null
    );
    assert_eq!(doc["settings"]["direct_url"]["source"], "default");

    std::fs::write(
        d.join("dbtool.toml"),
        "direct_url = \"postgres://owner:file-pw@db/app\"\n",
    )
    .unwrap();
    let doc = config(&[], &["--json", "config"]).ok().json();
    assert_eq!(
        doc["settings"]["direct_url"]["value"],
        "postgres://owner:***@db/app"
    );
    assert_eq!(doc["settings"]["direct_url"]["source"], "dbtool.toml");
    std::fs::write(
        d.join(".env"),
        "DBTOOL_DIRECT_URL=postgres://owner:dotenv-pw@db/app\n",
    )
    .unwrap();
    let doc = config(&[], &["--json", "config"]).ok().json();
    assert_eq!(doc["settings"]["direct_url"]["source"], ".env");
    let env = [("DBTOOL_DIRECT_URL", "postgres://owner:env-pw@db/app")];
    let doc = config(&env, &["--json", "config"]).ok().json();
    assert_eq!(doc["settings"]["direct_url"]["source"], "env");
    let r = config(
        &env,
        &["--direct-url", "postgres://owner:flag-pw@db/app", "config"],
    );
    let row = r
        .ok()
        .stdout
        .lines()
        .find(|l| l.contains("direct_url"))
        .unwrap()
        .to_owned();
    assert!(
        row.contains("postgres://owner:***@db/app") && row.contains("flag"),
        "{row}"
    );
    for pw in ["file-pw", "dotenv-pw", "env-pw", "flag-pw"] {
        assert!(
            !r.stdout.contains(pw) && !r.stderr.contains(pw),
            "{pw} shown"
        );
    }

    // Wrong values name where they come from and never echo the URL.
    std::fs::remove_file(d.join(".env")).unwrap();
    std::fs::write(d.join("dbtool.toml"), "direct_url = 5\n").unwrap();
    let r = config(&[], &["config"]);
    r.expect_code(2);
    one_error_line(&r, &["dbtool.toml", "direct_url"]);
    std::fs::write(
        d.join("dbtool.toml"),
        "direct_url = \"mysql://root:file-pw@db/app\"\n",
    )
    .unwrap();
    let r = config(&[], &["status"]);
    r.expect_code(2);
    let line = one_error_line(&r, &["direct_url", "dbtool.toml", "not the same kind"]);
    assert!(!line.contains("file-pw"), "{line}");
    let r = config(&[], &["--direct-url", "oracle://x", "status"]);
    r.expect_code(2);
    one_error_line(&r, &["direct_url from flag", "oracle"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_mode_is_told_apart_with_a_single_server_connection() {
    // One server connection per pool: in session mode dbtool's session holds it, so the
    // second client of the mode question gets none (and must not hang dbtool); in
    // transaction mode the second client gets exactly dbtool's server connection.
    let db = TestDb::new(Backend::Postgres, "pgb_single");
    let session = PgBouncer::with_pool_size(PoolMode::Session, 1);
    let started = std::time::Instant::now();
    run_at(&db, &session.url_for(&db), &["upgrade"]).ok();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(recorded(&db).await.len(), 3);
    drop(session);
    let transaction = PgBouncer::with_pool_size(PoolMode::Transaction, 1);
    let r = run_at(&db, &transaction.url_for(&db), &["downgrade", "--yes"]);
    r.expect_code(18);
    one_error_line(&r, &["transaction mode"]);
    assert_eq!(recorded(&db).await.len(), 3);
}
