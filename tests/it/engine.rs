//! The engine as a library: in-process runs interleaved deterministically through a per-step
//! hook (the lock is keyed on the effective schema, steps commit one by one, a stop is
//! reported truthfully), the documented embedding example started many times at once, and
//! the CLI under random kills and server-side disconnects: what was reported is what the
//! database holds, and every hint works as printed.

use crate::common::{bin, introspect, Backend, Run, TestDb};
use crate::migrate::recorded;
use migration::engine::{Command, Direction, Engine, Error, Hooks, Options};
use migration::sea_orm_migration::async_trait::async_trait;
use migration::{App, StepInfo, Target};
use sea_orm::{ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

crate::on_all_backends!(
    a_blocked_run_holds_the_lock_for_every_spelling,
    a_stop_between_steps_is_reported_as_the_database_says,
    the_example_migrates_in_parallel_to_the_clis_schema,
    untracked_databases_are_recognised_and_every_hint_works,
);

/// Holds a run right before step `at` until the test releases it.
struct Gate {
    at: &'static str,
    reached: Option<oneshot::Sender<()>>,
    release: Option<oneshot::Receiver<()>>,
}

#[async_trait]
impl Hooks for Gate {
    async fn before_step(&mut self, step: &'static StepInfo, _: Direction) {
        if step.name == self.at {
            if let Some(tx) = self.reached.take() {
                let _ = tx.send(());
            }
            if let Some(rx) = self.release.take() {
                let _ = rx.await;
            }
        }
    }
}

/// Stops the run once `after` steps have started.
struct StopAfter {
    after: usize,
    started: usize,
}

#[async_trait]
impl Hooks for StopAfter {
    fn should_stop(&self) -> bool {
        self.started >= self.after
    }
    async fn before_step(&mut self, _: &'static StepInfo, _: Direction) {
        self.started += 1;
    }
}

/// An application's connection: a pool of several, as applications have.
async fn app_pool(db: &TestDb) -> DatabaseConnection {
    let mut opt = ConnectOptions::new(db.url.clone());
    opt.sqlx_logging(false)
        .max_connections(4)
        .idle_timeout(None)
        .max_lifetime(None);
    Database::connect(opt).await.expect("connect")
}

fn names(app: App) -> Vec<String> {
    app.steps().iter().map(|s| s.name.to_owned()).collect()
}

async fn a_blocked_run_holds_the_lock_for_every_spelling(db: TestDb) {
    let app = App::Neurachar;
    let steps = names(app);
    let conn = app_pool(&db).await;
    let (reached_tx, reached) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    let mut gate = Gate {
        at: app.steps()[1].name,
        reached: Some(reached_tx),
        release: Some(release_rx),
    };
    let first = Engine::new(&conn, Options::for_app(app)).await.unwrap();
    let running =
        tokio::spawn(async move { first.run(&Command::Upgrade(Target::Head), &mut gate).await });
    reached
        .await
        .expect("the first run reaches its second step");

    // The first step is committed before the second starts (SQLite too).
    assert_eq!(recorded(&db).await, steps[..1].to_vec());

    // No other run gets in, whichever way it names the same schema.
    let mut spellings = vec![None];
    if db.backend == Backend::Postgres {
        spellings.push(Some("public".to_owned()));
    }
    for schema in spellings {
        let opts = Options {
            schema: schema.clone(),
            lock_timeout: Duration::from_millis(300),
            ..Options::for_app(app)
        };
        let other = Engine::new(&conn, opts).await.unwrap();
        let r = other
            .run(
                &Command::Upgrade(Target::Head),
                &mut migration::engine::NoHooks,
            )
            .await;
        assert!(
            matches!(r, Err(Error::Locked { .. })),
            "schema {schema:?}: another run must wait for the lock, got {r:?}"
        );
    }
    assert_eq!(recorded(&db).await, steps[..1].to_vec(), "nothing else ran");

    release.send(()).unwrap();
    let report = running.await.unwrap().expect("the first run completes");
    assert_eq!(report.done.len(), steps.len());
    assert_eq!(report.to, Some(app.steps().last().unwrap().name));
    let again = Engine::new(&conn, Options::for_app(app)).await.unwrap();
    let report = again
        .run(
            &Command::Upgrade(Target::Head),
            &mut migration::engine::NoHooks,
        )
        .await
        .unwrap();
    assert!(report.done.is_empty(), "each migration ran once");
    assert_eq!(recorded(&db).await, steps);
}

async fn a_stop_between_steps_is_reported_as_the_database_says(db: TestDb) {
    let app = App::Avatar;
    let steps = names(app);
    let conn = app_pool(&db).await;
    let engine = Engine::new(&conn, Options::for_app(app)).await.unwrap();
    let mut hooks = StopAfter {
        after: 1,
        started: 0,
    };
    let report = match engine
        .run(&Command::Upgrade(Target::Head), &mut hooks)
        .await
    {
        Err(Error::Interrupted(report)) => report,
        other => panic!("a stop between steps ends the run as interrupted: {other:?}"),
    };
    assert!(report.interrupted);
    assert_eq!(report.done.len(), 1);
    assert!(report.to_known);
    assert_eq!(report.to, Some(app.steps()[0].name));
    assert_eq!(recorded(&db).await, steps[..1].to_vec());
}

/// The example, built on its own (`-p migration`, without the workspace's features, so that
/// a feature only the CLI enables would be missing here too), once per test process.
fn example() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap();
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "migration",
            "--example",
            "migrate_at_startup",
        ])
        .current_dir(&root)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build -p migration --example migrate_at_startup:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let path = target.join("debug/examples/migrate_at_startup");
    assert!(path.exists(), "{} was built", path.display());
    *built = Some(path.clone());
    path
}

/// Everything about the schema that two databases of the same app and backend must share:
/// on PostgreSQL the full catalog snapshot (sequences, defaults, constraint names), elsewhere
/// tables, columns, indexes and foreign keys; plus the tracking rows.
async fn schema_of(db: &TestDb) -> String {
    let conn = db.connect().await;
    let mut out = if db.backend == Backend::Postgres {
        introspect::pg_snapshot(&conn).await
    } else {
        introspect::dump(&conn).await
    };
    conn.close().await.ok();
    // `version` is the key: a migration recorded twice would have failed the run instead.
    out += &format!("recorded {:?}\n", recorded(db).await);
    out
}

async fn the_example_migrates_in_parallel_to_the_clis_schema(db: TestDb) {
    let example = example();
    for app in ["avatar", "neurachar"] {
        let reference = TestDb::new(db.backend, &format!("cli_{app}"));
        reference.run(&["--app", app, "-q", "upgrade"]).ok();
        let expected = schema_of(&reference).await;
        for n in [8, 32] {
            let target = TestDb::new(db.backend, &format!("ex{n}_{app}"));
            let children: Vec<Child> = (0..n)
                .map(|_| {
                    std::process::Command::new(&example)
                        .arg(app)
                        .env("DATABASE_URL", &target.url)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("spawn the example")
                })
                .collect();
            let mut applied = 0;
            for child in children {
                let r = Run::from(child.wait_with_output().unwrap());
                r.ok();
                let line = r.stdout.trim();
                assert!(
                    line.starts_with(&format!("{app}: ")) && line.lines().count() == 1,
                    "one summary line: {line:?}"
                );
                applied += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("a count of applied steps in {line:?}"));
            }
            assert_eq!(
                applied,
                App::from_name(app).unwrap().steps().len(),
                "{n} parallel start-ups apply each migration exactly once between them"
            );
            assert_eq!(
                schema_of(&target).await,
                expected,
                "{n} parallel start-ups of {app} build the CLI's schema"
            );
        }
    }
}

/// Runs every `dbtool ...` command quoted in backticks on stderr, exactly as printed, by a
/// shell that finds the binary under test as `dbtool`. Returns how many there were.
fn follow_hints(db: &TestDb, stderr: &str) -> usize {
    let hints: Vec<&str> = stderr
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|h| h.starts_with("dbtool "))
        .collect();
    let dir = bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for hint in &hints {
        let mut c = std::process::Command::new("sh");
        for (k, _) in std::env::vars() {
            if k.starts_with("DBTOOL_") || k.starts_with("DATABASE_URL") || k.starts_with("PG") {
                c.env_remove(k);
            }
        }
        let r = Run::from(
            c.args(["-c", hint])
                .env("PATH", &path)
                .env("DATABASE_URL", &db.url)
                .env("NO_COLOR", "1")
                .current_dir(db.dir())
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "`{hint}` works as printed: {}", r.stderr);
    }
    hints.len()
}

async fn untracked_databases_are_recognised_and_every_hint_works(db: TestDb) {
    untracked_is_recognised(&db, "neurachar").await;
    untracked_is_recognised(&TestDb::new(db.backend, "untracked_avatar"), "avatar").await;
}

async fn untracked_is_recognised(db: &TestDb, app: &str) {
    db.run(&["--app", app, "-q", "upgrade"]).ok();
    for t in db.tables().await {
        if t == "seaql_migrations" || t.starts_with("dbtool_") {
            db.exec(&format!("DROP TABLE {t}")).await;
        }
    }
    // No --app anywhere: the database says which app it is.
    let status = db.run(&["status", "--json"]);
    let doc = status.ok().json();
    assert_eq!(doc["app"], app, "{doc}");
    assert_eq!(doc["app_chosen"]["how"], "recognised", "{doc}");
    let r = db.run(&["upgrade"]);
    assert_ne!(
        r.code, 0,
        "an untracked schema is not migrated over blindly"
    );
    assert!(follow_hints(db, &r.stderr) > 0, "a hint: {}", r.stderr);
    db.run(&["upgrade"]).ok();
    let c = db.run(&["check"]);
    c.ok();
    assert!(c.stdout.starts_with(&format!("{app}: ")), "{}", c.stdout);
    assert_eq!(recorded(db).await, names(App::from_name(app).unwrap()));
}

const F1: &str = "f001_create_alpha";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_run_dropped_mid_step_leaves_no_transaction_behind_in_a_caller_pool() {
    for shared in [true, false] {
        let db = TestDb::new(
            Backend::Postgres,
            if shared { "dropshared" } else { "dropown" },
        );
        let app = App::Neurachar;
        // A pool of exactly one connection. Set up as the CLI's is (never replaced when
        // lost), the engine shares it; a default one it does not (it opens its own).
        let mut opt = ConnectOptions::new(db.url.clone());
        opt.sqlx_logging(false)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .map_sqlx_postgres_pool_opts(move |p| p.replace_lost_connections(!shared));
        let conn = Database::connect(opt).await.expect("connect");
        let (reached_tx, reached) = oneshot::channel();
        let (_release, release_rx) = oneshot::channel::<()>();
        let mut gate = Gate {
            at: app.steps()[1].name,
            reached: Some(reached_tx),
            release: Some(release_rx),
        };
        let engine = Engine::new(&conn, Options::for_app(app)).await.unwrap();
        {
            let run = engine.run(&Command::Upgrade(Target::Head), &mut gate);
            tokio::select! {
                _ = run => panic!("the gate holds the run before its second step"),
                // Dropping the run here abandons the second step's open transaction.
                r = reached => r.expect("the run reaches its second step"),
            }
        }
        // The caller's pool never hands out a connection inside the abandoned transaction
        // (where this table would vanish with a later rollback): shared, it is closed.
        let r = conn
            .execute_unprepared("CREATE TABLE dropped_probe (x int)")
            .await;
        assert_eq!(r.is_err(), shared, "shared {shared}: {r:?}");
        drop(conn);
        assert_eq!(recorded(&db).await, names(app)[..1].to_vec());
        // The abandoned session is gone with its lock: the next run finishes the job.
        let conn = app_pool(&db).await;
        let engine = Engine::new(&conn, Options::for_app(app)).await.unwrap();
        engine
            .run(
                &Command::Upgrade(Target::Head),
                &mut StopAfter {
                    after: 99,
                    started: 0,
                },
            )
            .await
            .expect("the next run completes");
        assert_eq!(recorded(&db).await, names(app));
        let probe = db
            .strings(
                "SELECT table_name::text FROM information_schema.tables WHERE table_name = 'dropped_probe'",
            )
            .await;
        assert_eq!(probe.len(), usize::from(!shared), "shared {shared}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_status_tells_a_step_running_now_from_an_interrupted_one() {
    use sea_orm::TransactionTrait as _;
    let db = TestDb::new(Backend::Postgres, "running");
    let steps = names(App::Neurachar);
    db.run(&["--app", "neurachar", "upgrade", &steps[4]]).ok();
    // Another session holds a lock that the index build (outside a transaction, marked in
    // progress while it runs) waits for.
    let blocker = app_pool(&db).await;
    let txn = blocker.begin().await.unwrap();
    txn.execute_unprepared("LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let child = db.spawn(&["--app", "neurachar", "--ddl-lock-timeout", "60", "upgrade"]);
    let marked = format!(
        "SELECT in_progress FROM dbtool_state WHERE version = '{}'",
        steps[5]
    );
    for _ in 0..300 {
        if db.strings(&marked).await == ["up"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        db.strings(&marked).await,
        ["up"],
        "the step is marked while it runs"
    );
    // `status --check` exits 13 on the half-done step; its first problem's message.
    let problem = || {
        let r = db.run(&["--app", "neurachar", "--json", "status", "--check"]);
        r.expect_code(13);
        r.json()["problems"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let message = problem();
    assert!(
        message.contains("right now") && !message.contains("interrupted"),
        "{message}"
    );
    txn.rollback().await.unwrap();
    Run::from(child.wait_with_output().unwrap()).ok();
    db.run(&["--app", "neurachar", "status", "--check"]).ok();
    // Interrupted, the same marker reads as such.
    db.exec(&format!(
        "UPDATE dbtool_state SET in_progress = 'up' WHERE version = '{}'",
        steps[5]
    ))
    .await;
    let message = problem();
    assert!(message.contains("interrupted halfway"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_lost_session_is_not_replaced_mid_run() {
    let db = TestDb::new(Backend::Postgres, "lostsession");
    db.run(&["--app", "fixture", "-q", "upgrade"]).ok();
    db.run(&["--app", "fixture", "-q", "downgrade", "base", "--yes"])
        .ok();
    // Every audit entry's start takes a while on the server: a moment to cut the session in.
    db.exec(
        "CREATE FUNCTION slow_audit() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END$$; \
         CREATE TRIGGER slow_audit BEFORE INSERT ON dbtool_audit \
         FOR EACH ROW EXECUTE FUNCTION slow_audit()",
    )
    .await;
    let child = db.spawn(&["--app", "fixture", "upgrade"]);
    let in_audit = format!(
        "SELECT pid::text FROM pg_stat_activity WHERE datname = '{}' \
         AND application_name = 'dbtool' AND query LIKE 'BEGIN; SET LOCAL synchronous_commit%'",
        db.name
    );
    let mut pid = Vec::new();
    for _ in 0..500 {
        pid = db.strings(&in_audit).await;
        if !pid.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!pid.is_empty(), "the run reached its first audit entry");
    db.exec(&format!("SELECT pg_terminate_backend({})", pid[0]))
        .await;
    let r = Run::from(child.wait_with_output().unwrap());
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("connection to the database was lost"),
        "{}",
        r.stderr
    );
    // Nothing ran after the cut, on any session: the first step's entry was being written.
    assert!(recorded(&db).await.is_empty(), "{:?}", recorded(&db).await);
    db.exec("DROP TRIGGER slow_audit ON dbtool_audit").await;
    db.run(&["--app", "fixture", "-q", "upgrade"]).ok();
    db.run(&["--app", "fixture", "check"]).ok();
}

/// `dbtool --app neurachar ARGS`.
fn neurachar(db: &TestDb, args: &[&str]) -> Run {
    let mut all = vec!["--app", "neurachar"];
    all.extend_from_slice(args);
    db.run(&all)
}

/// NeuraChar up and back to base: the record's tables and an audit log exist, no table of
/// the app does.
fn audit_table_made(db: &TestDb) {
    neurachar(db, &["-q", "upgrade"]).ok();
    neurachar(db, &["-q", "downgrade", "base", "--yes"]).ok();
}

/// `upgrade` of NeuraChar while another session holds `lock` on the audit table: the run
/// gives up on its log after a moment, warns, and migrates.
async fn upgrade_past_a_locked_audit_table(db: &TestDb, lock: &str) {
    let t = std::time::Instant::now();
    let r = db.run(&["--app", "neurachar", "upgrade"]);
    r.ok();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "{lock}: {:?}",
        t.elapsed()
    );
    assert!(
        r.stderr.contains("cannot be written"),
        "{lock}: {}",
        r.stderr
    );
    assert_eq!(recorded(db).await, names(App::Neurachar), "{lock}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_audit_table_never_holds_a_migration_up() {
    use sea_orm::TransactionTrait as _;
    let db = TestDb::new(Backend::Postgres, "auditblock");
    let nc = |args: &[&str]| neurachar(&db, args);
    audit_table_made(&db);
    // A lock on the audit table held by someone else, in both strengths: the run gives up
    // on its log after a moment, warns, and migrates.
    let other = app_pool(&db).await;
    for mode in ["EXCLUSIVE", "ACCESS EXCLUSIVE"] {
        let txn = other.begin().await.unwrap();
        txn.execute_unprepared(&format!("LOCK TABLE dbtool_audit IN {mode} MODE"))
            .await
            .unwrap();
        upgrade_past_a_locked_audit_table(&db, mode).await;
        txn.rollback().await.unwrap();
        nc(&["check"]).ok();
        nc(&["-q", "downgrade", "base", "--yes"]).ok();
    }
    // A deferred trigger that fails every end of an entry: it fires inside the savepoint
    // (constraints are made immediate first), so no step's COMMIT fails over it.
    db.exec(
        "CREATE FUNCTION no_audit_end() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION 'no'; END$$; \
         CREATE CONSTRAINT TRIGGER no_audit_end AFTER UPDATE ON dbtool_audit \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION no_audit_end()",
    )
    .await;
    let r = nc(&["upgrade"]);
    r.ok();
    assert!(r.stderr.contains("not logged"), "{}", r.stderr);
    assert_eq!(recorded(&db).await, names(App::Neurachar));
    nc(&["check"]).ok();
    nc(&["status", "--check"]).ok();
}

/// MySQL/MariaDB: a lock on the audit table held by someone else (the table itself, or its
/// rows) makes the run give up on its log after a second, warn, and migrate. The servers'
/// own waits are 50 s for a row and a day for a table lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_the_audit_table_never_holds_a_migration_up() {
    use sea_orm::sqlx::{Connection as _, Executor as _};
    let db = TestDb::new(Backend::MySql, "auditblock");
    let nc = |args: &[&str]| neurachar(&db, args);
    audit_table_made(&db);
    for lock in [
        "LOCK TABLES dbtool_audit WRITE",
        "START TRANSACTION; SELECT * FROM dbtool_audit FOR UPDATE",
    ] {
        // A session of its own: both kinds of lock belong to it.
        let mut other = sea_orm::sqlx::MySqlConnection::connect(&db.url)
            .await
            .expect("connect");
        for sql in lock.split("; ") {
            other.execute(sql).await.expect(sql);
        }
        upgrade_past_a_locked_audit_table(&db, lock).await;
        other.close().await.expect("close");
        nc(&["check"]).ok();
        nc(&["-q", "downgrade", "base", "--yes"]).ok();
    }
}

/// The index step's audit entry and marker go in one message. When the marker fails there
/// after the entry committed, the entry is the step's still: it ends with the step's outcome,
/// and the audit log is not blamed. (Found by a hostile run: the entry stayed "running" and
/// the run warned that the audit log could not be written.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_failed_marker_leaves_the_audit_entry_true() {
    let db = TestDb::new(Backend::Postgres, "markfail");
    let steps = names(App::Neurachar);
    let nc = |args: &[&str]| {
        let mut all = vec!["--app", "neurachar"];
        all.extend_from_slice(args);
        db.run(&all)
    };
    nc(&["-q", "upgrade", &steps[4]]).ok();
    let index_step = steps[5].as_str();
    // Once: the marker fails in the combined message, then succeeds on its own.
    db.exec(
        "CREATE SEQUENCE once_seq; \
         CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN IF nextval('once_seq') = 1 THEN RAISE EXCEPTION 'state write failed once'; END IF; \
         RETURN NEW; END$$; \
         CREATE TRIGGER fail_once BEFORE INSERT ON dbtool_state FOR EACH ROW EXECUTE FUNCTION fail_once()",
    )
    .await;
    let r = nc(&["upgrade"]);
    r.ok();
    assert!(!r.stderr.contains("audit log"), "{}", r.stderr);
    assert_eq!(recorded(&db).await, steps);
    // The index step's entries, newest first, as (outcome, error).
    let entries = || {
        let log = nc(&["--json", "log"]).ok().json();
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["migration"] == index_step)
            .map(|e| (text(&e["outcome"]), text(&e["error"])))
            .collect::<Vec<_>>()
    };
    let log = entries();
    assert_eq!(log.first().map(|e| e.0.as_str()), Some("ok"), "{log:?}");
    // Always: the step fails before it starts, its entry says so, and the log is not blamed.
    nc(&["-q", "downgrade", "-1", "--yes"]).ok();
    db.exec(
        "CREATE OR REPLACE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION 'state write failed'; END$$",
    )
    .await;
    let r = nc(&["upgrade"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("state write failed"), "{}", r.stderr);
    assert!(!r.stderr.contains("audit log"), "{}", r.stderr);
    let log = entries();
    let outcomes: Vec<&str> = log.iter().map(|e| e.0.as_str()).collect();
    assert!(outcomes.contains(&"failed"), "{log:?}");
    assert!(!outcomes.contains(&"running"), "{log:?}");
    assert!(!outcomes.contains(&"interrupted"), "{log:?}");
    // The server's message, as the user reads errors: no driver wrapping, no source line.
    let error = log.iter().find(|e| e.0 == "failed").map(|e| e.1.as_str());
    assert!(
        error.is_some_and(|e| e.starts_with("state write failed (SQLSTATE P0001)")),
        "{log:?}"
    );
    db.exec("DROP TRIGGER fail_once ON dbtool_state").await;
    nc(&["-q", "upgrade"]).ok();
    nc(&["check"]).ok();
}

/// How long the slowest of these uncut runs takes on this machine (ms), so that cuts at
/// `random_ms(i) % (span + 1)` land inside runs whether the machine is quiet (runs of a few
/// milliseconds) or loaded.
fn run_span(db: &TestDb, runs: &[&[&str]]) -> u64 {
    let mut span = 0;
    for args in runs {
        let t = std::time::Instant::now();
        db.run(args).ok();
        span = span.max(t.elapsed().as_millis() as u64);
    }
    span
}

/// A pseudo-random delay in 0..300 ms that differs between iterations and runs.
fn random_ms(i: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 300
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_mixed_schema_spellings_never_collide() {
    for round in 0..25 {
        let db = TestDb::new(Backend::Postgres, &format!("mixed{round}"));
        let children: Vec<Child> = (0..16)
            .map(|i| {
                let mut args = vec!["--app", "neurachar", "-q", "--lock-timeout", "120"];
                if i % 2 == 0 {
                    args.extend(["--schema", "public"]);
                }
                args.push("upgrade");
                db.spawn(&args)
            })
            .collect();
        for child in children {
            Run::from(child.wait_with_output().unwrap()).ok();
        }
        assert_eq!(recorded(&db).await, names(App::Neurachar), "round {round}");
        db.run(&["--app", "neurachar", "check"]).ok();
        let defaults = db
            .strings(
                "SELECT column_default FROM information_schema.columns \
                 WHERE table_name = 'email_login_codes' AND column_name = 'id'",
            )
            .await;
        assert_eq!(
            defaults,
            vec!["nextval('email_login_codes_id_seq'::regclass)".to_owned()],
            "round {round}: one sequence, made once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_first_runs_on_a_schema_that_does_not_exist_yet() {
    let db = TestDb::new(Backend::Postgres, "newschema");
    let children: Vec<Child> = (0..16)
        .map(|_| db.spawn(&["--app", "avatar", "--schema", "tenant_new", "-q", "upgrade"]))
        .collect();
    for child in children {
        Run::from(child.wait_with_output().unwrap()).ok();
    }
    let tables = db
        .strings(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'tenant_new' AND table_name = 'seaql_migrations'",
        )
        .await;
    assert_eq!(tables.len(), 1, "the schema and its tracking table exist");
    let versions = db
        .strings("SELECT version FROM tenant_new.seaql_migrations ORDER BY version")
        .await;
    assert_eq!(versions, names(App::Avatar));
    db.run(&["--app", "avatar", "--schema", "tenant_new", "check"])
        .ok();
}

/// The position a run reports (its document on success, the error's report otherwise), or
/// None when the run said it could not know it.
fn reported_position(r: &Run) -> Option<Option<String>> {
    let doc = r.json();
    let report = if r.code == 0 {
        &doc
    } else {
        &doc["error"]["report"]
    };
    if report.is_null() {
        // Failed before any step: nothing moved, and the error says so by having no report.
        return Some(None).filter(|_| false);
    }
    (report["to_known"] == true).then(|| report["to"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_terminated_at_random_moments_report_the_real_position() {
    let db = TestDb::new(Backend::Postgres, "terminated");
    let up: &[&str] = &["--app", "neurachar", "--json", "upgrade"];
    let down: &[&str] = &["--app", "neurachar", "--json", "downgrade", "base", "--yes"];
    let span = run_span(&db, &[up, down]);
    let (mut interrupted, mut i) = (0, 0u64);
    // At least 16 cuts, and at least 4 that hit a run (bounded, so a dbtool that never
    // notices a terminated connection still fails below).
    while i < 16 || (interrupted < 4 && i < 96) {
        let is_down = i % 2 == 1;
        let args = if is_down { down } else { up };
        let before = recorded(&db).await;
        let child = db.spawn(args);
        tokio::time::sleep(Duration::from_millis(random_ms(i) % (span + 1))).await;
        db.exec(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid() AND application_name = 'dbtool'",
            db.name
        ))
        .await;
        let r = Run::from(child.wait_with_output().unwrap());
        let now = recorded(&db).await;
        if r.code != 0 {
            interrupted += 1;
        }
        match reported_position(&r) {
            Some(to) => assert_eq!(
                to.as_deref(),
                now.last().map(String::as_str),
                "iteration {i}: the reported position is the database's\n{}\n{}",
                r.stdout,
                r.stderr
            ),
            None => assert!(
                r.code != 0
                    && (r.json()["error"]["report"].is_null() && before == now
                        || r.stderr.contains("unknown")
                        || r.stdout.contains("unknown")
                        || r.stdout.contains("could not be read back")),
                "iteration {i}: a run that cannot read its position back says so\n{}\n{}",
                r.stdout,
                r.stderr
            ),
        }
        // The next command finishes the job whatever happened.
        let finish: &[&str] = if is_down {
            &["--app", "neurachar", "-q", "downgrade", "base", "--yes"]
        } else {
            &["--app", "neurachar", "-q", "upgrade"]
        };
        db.run(finish).ok();
        db.run(&["--app", "neurachar", "check"]).ok();
        i += 1;
    }
    assert!(
        interrupted >= 4,
        "some runs were cut off by the server ({interrupted} of {i}, runs take {span} ms)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kills_at_random_moments_keep_every_step_reported_applied() {
    let db = TestDb::new(Backend::Sqlite, "killed");
    let span = run_span(
        &db,
        &[
            &["--app", "neurachar", "upgrade"],
            &["--app", "neurachar", "downgrade", "base", "--yes"],
        ],
    );
    let mut cut = 0;
    for i in 0..24u64 {
        let down = i % 4 >= 2;
        let args: &[&str] = if down {
            &["--app", "neurachar", "downgrade", "base", "--yes"]
        } else {
            &["--app", "neurachar", "upgrade"]
        };
        let before = recorded(&db).await;
        let child = db.spawn(args);
        tokio::time::sleep(Duration::from_millis(random_ms(i) % (span + 1))).await;
        let sig = if i % 2 == 0 { "-KILL" } else { "-INT" };
        let _ = std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status();
        let r = Run::from(child.wait_with_output().unwrap());
        if r.code != 0 {
            cut += 1;
        }
        let now = recorded(&db).await;
        for line in r.stderr.lines() {
            if let Some(rest) = line.strip_prefix("applied ") {
                let step = rest.split_whitespace().next().unwrap();
                assert!(
                    now.iter().any(|s| s == step),
                    "iteration {i} ({sig}): {step} was reported applied but is not recorded\n{}",
                    r.stderr
                );
            }
            if let Some(rest) = line.strip_prefix("rolled back ") {
                let step = rest.split_whitespace().next().unwrap();
                assert!(
                    before.iter().any(|s| s == step) && !now.iter().any(|s| s == step),
                    "iteration {i} ({sig}): {step} was reported rolled back but is recorded\n{}",
                    r.stderr
                );
            }
        }
        // A signal before dbtool has installed its handlers (the first milliseconds) ends
        // the process the default way, before anything started; after that SIGINT is 130.
        let default_death = r.code == -1 && !r.stderr.contains("applying");
        if sig == "-INT" && r.code != 0 && !default_death {
            assert_eq!(r.code, 130, "SIGINT exits 130: {}", r.stderr);
        }
        // Each step is one transaction on SQLite: whatever was cut off left nothing behind.
        db.run(&["--app", "neurachar", "check"]).ok();
        if i % 2 == 1 {
            // Every other time, the same command finishes the job before the next direction.
            db.run(args).ok();
            db.run(&["--app", "neurachar", "check"]).ok();
        }
    }
    assert!(cut > 0, "some runs were cut short");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sigterm_exits_143() {
    let db = TestDb::new(Backend::Sqlite, "sigterm");
    let child = db
        .cmd()
        .args(["--app", "fixture", "upgrade"])
        .env("DBTOOL_FIXTURE_SLEEP_MS", "3000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The fixture's second step sleeps; wait until the first is recorded.
    for _ in 0..200 {
        if recorded(&db).await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded(&db).await.len(), 1, "the first step committed");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    r.expect_code(143);
    assert!(
        r.error_line()
            .starts_with("error: terminated by SIGTERM after 2 of 3"),
        "{}",
        r.stderr
    );
}

#[test]
fn schema_on_sqlite_and_mysql_warns_that_it_is_ignored() {
    for backend in [Backend::Sqlite, Backend::MySql] {
        let db = TestDb::new(backend, "schema_warn");
        let r = db.run(&["--schema", "tenant", "status"]);
        r.ok();
        assert!(
            r.stderr.contains("is ignored: only PostgreSQL has schemas"),
            "{backend:?}: {}",
            r.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_rerun_of_a_half_done_downgrade_rolls_back_nothing_more() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let db = TestDb::new(Backend::MySql, "halfdown");
    db.run(&["--app", "avatar", "-q", "upgrade"]).ok();
    let steps = names(App::Avatar);
    // An open transaction that has read `settings` holds its metadata lock: the widening
    // step's downgrade times out on it, marked half-done (MySQL's DDL cannot roll back).
    let conn = db.connect().await;
    let txn = conn.begin().await.unwrap();
    txn.execute_unprepared("SELECT COUNT(*) FROM settings")
        .await
        .unwrap();
    let r = db.run(&[
        "--app",
        "avatar",
        "--ddl-lock-timeout",
        "0.5",
        "--ddl-retries",
        "0",
        "downgrade",
        "--yes",
    ]);
    r.expect_code(12);
    txn.commit().await.unwrap();
    let status = db.run(&["--app", "avatar", "status", "--json"]).ok().json();
    let halfdone = status.to_string();
    assert!(
        halfdone.contains("half"),
        "status shows the half-done step: {halfdone}"
    );

    // The same command finishes that one step and stops there.
    let r = db.run(&["--app", "avatar", "downgrade", "--yes"]);
    r.ok();
    assert_eq!(recorded(&db).await, steps[..2].to_vec(), "{}", r.stdout);
    assert!(
        r.stdout.contains("(1 migration rolled back)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM settings").await,
        4,
        "the prompts are still there"
    );
    db.run(&["--app", "avatar", "check"]).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_while_waiting_for_the_lock_stops_at_once_and_changes_nothing() {
    for (cmd, sig, code) in [
        (&["stamp", "head"][..], "-TERM", 143),
        (&["upgrade"][..], "-INT", 130),
        (&["--json", "downgrade", "base", "--yes"][..], "-TERM", 143),
    ] {
        let db = TestDb::new(Backend::Postgres, "sigwait");
        if cmd.contains(&"downgrade") {
            db.run(&["--app", "fixture", "-q", "upgrade", "+1"]).ok();
        }
        let before = recorded(&db).await;
        // Another run holds the lock, inside its slow second step.
        let mut holder = db
            .cmd()
            .args(["--app", "fixture", "upgrade"])
            .env("DBTOOL_FIXTURE_SLEEP_MS", "20000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut held = std::io::BufReader::new(holder.stderr.take().unwrap());
        loop {
            let mut line = String::new();
            assert!(
                std::io::BufRead::read_line(&mut held, &mut line).unwrap() > 0,
                "the holder reaches its slow step"
            );
            if line.starts_with("applying f002") {
                break;
            }
        }
        let mut waiter = db
            .cmd()
            .args(["--app", "fixture", "--lock-timeout", "60"])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = std::io::BufReader::new(waiter.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            assert!(
                std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0,
                "the waiter says it waits for the lock: {seen}"
            );
            seen.push_str(&line);
            if line.contains("waiting up to") {
                break;
            }
        }
        let sent = std::time::Instant::now();
        std::process::Command::new("kill")
            .args([sig, &waiter.id().to_string()])
            .status()
            .unwrap();
        let out = waiter.wait_with_output().unwrap();
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{cmd:?}: stopped at once, not when the lock came free"
        );
        assert_eq!(out.status.code(), Some(code), "{cmd:?}");
        if cmd.contains(&"--json") {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(doc["error"]["code"], code, "{doc}");
        } else {
            assert!(
                out.stdout.is_empty(),
                "{cmd:?}: nothing done, nothing said on stdout"
            );
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &holder.id().to_string()])
            .status();
        let _ = holder.wait_with_output();
        // The holder committed its first step at most; the waiter changed nothing.
        let now = recorded(&db).await;
        assert_eq!(now, vec![F1.to_owned()], "{cmd:?}: {before:?} -> {now:?}");
    }
}

#[test]
fn a_signal_stops_a_long_password_hash() {
    let db = TestDb::new(Backend::Sqlite, "bcrypt31");
    db.run(&["--app", "avatar", "-q", "upgrade"]).ok();
    let mut child = db
        .cmd()
        .args([
            "users",
            "add",
            "slow@example.com",
            "--password-stdin",
            "--cost",
            "31",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"correct horse battery\n").unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let sent = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "the hash does not hold the exit"
    );
    r.expect_code(143);
}

#[test]
fn a_hard_abort_still_reports_what_the_run_did() {
    let db = TestDb::new(Backend::Postgres, "hardabort");
    let mut child = db
        .cmd()
        .args(["--app", "fixture", "--json", "upgrade"])
        .env("DBTOOL_FIXTURE_SLEEP_MS", "20000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0);
        if line.starts_with("applying f002") {
            break;
        }
    }
    for _ in 0..2 {
        std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &doc["error"];
    assert_eq!(e["report"]["done"][0]["name"], F1, "{doc}");
    assert_eq!(e["report"]["to"], F1, "{doc}");
    assert_eq!(e["report"]["to_known"], true, "{doc}");
    assert_eq!(e["failed"]["step"], "f002_create_beta_slowly", "{doc}");
    assert_eq!(e["failed"]["rolled_back"], true, "{doc}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("after 1 of 3 migrations (the database is at f001_create_alpha)"),
        "{doc}"
    );
}

#[test]
fn schema_spellings_fold_as_postgresql_folds_identifiers() {
    let db = TestDb::new(Backend::Postgres, "fold");
    db.run(&["--app", "avatar", "--schema", "Tenant_A", "-q", "upgrade"])
        .ok();
    // Unquoted spellings are the same schema: nothing left to do.
    for spelling in ["TENANT_A", "tenant_a", "\"tenant_a\""] {
        let doc = db
            .run(&["--app", "avatar", "--schema", spelling, "status", "--json"])
            .ok()
            .json();
        assert_eq!(doc["pending"], 0, "{spelling}: {doc}");
    }
    // Quoted, the case is kept: another schema.
    let doc = db
        .run(&[
            "--app",
            "avatar",
            "--schema",
            "\"Tenant_A\"",
            "status",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(doc["pending"], names(App::Avatar).len(), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_app_refusal_hints_a_command_that_works() {
    let db = TestDb::new(Backend::Postgres, "wrongapp_hint");
    db.run(&["--app", "neurachar", "-q", "upgrade"]).ok();
    for args in [
        &["--app", "avatar", "stamp", "25698f3f906f"][..],
        &["--app", "avatar", "upgrade"][..],
        &[
            "--app",
            "avatar",
            "--schema",
            "public",
            "downgrade",
            "base",
            "--yes",
        ][..],
    ] {
        let r = db.run(args);
        r.expect_code(11);
        assert!(
            !r.stderr.contains("--yes"),
            "a hint never confirms data loss for the user: {}",
            r.stderr
        );
        if args.contains(&"downgrade") {
            // Executed as printed it asks first (here: no rows, so nothing to ask about).
            assert!(follow_hints(&db, &r.stderr) > 0, "{args:?}: {}", r.stderr);
            assert!(recorded(&db).await.is_empty());
        } else {
            assert!(follow_hints(&db, &r.stderr) > 0, "{args:?}: {}", r.stderr);
            assert_eq!(
                recorded(&db).await,
                names(App::Neurachar),
                "nothing changed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_spell_a_quoted_schema_so_that_it_folds_back() {
    let db = TestDb::new(Backend::Postgres, "schema_hint");
    db.run(&[
        "--app",
        "avatar",
        "--schema",
        "\"Mixed Case\"",
        "-q",
        "upgrade",
    ])
    .ok();
    db.exec("DROP TABLE \"Mixed Case\".seaql_migrations").await;
    db.exec("DROP TABLE \"Mixed Case\".dbtool_state").await;
    let r = db.run(&["--app", "avatar", "--schema", "\"Mixed Case\"", "upgrade"]);
    assert_ne!(r.code, 0);
    assert!(follow_hints(&db, &r.stderr) > 0, "{}", r.stderr);
    let doc = db
        .run(&[
            "--app",
            "avatar",
            "--schema",
            "\"Mixed Case\"",
            "status",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(doc["pending"], 0, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_password_is_masked_without_mangling_the_rest() {
    let db = TestDb::new(Backend::Postgres, "shortpw");
    db.run(&["--app", "avatar", "-q", "upgrade"]).ok();
    // Trust authentication ignores the password; dbtool still must never print it.
    let url = db.url.replacen("postgres@", "postgres:at@", 1);
    let mut c = db.cmd();
    let out = c
        .env("DATABASE_URL", &url)
        .args(["--app", "avatar", "status"])
        .output()
        .unwrap();
    let r = Run::from(out);
    r.ok();
    assert!(r.stdout.contains("applied at"), "{}", r.stdout);
    assert!(
        r.stdout.contains("m20260130_093115_initial_migration"),
        "{}",
        r.stdout
    );
    let out = db
        .cmd()
        .env("DATABASE_URL", &url)
        .args(["--app", "avatar", "status", "--json"])
        .output()
        .unwrap();
    let doc = Run::from(out).ok().json();
    let shown = doc["database"].as_str().unwrap();
    assert!(
        shown.contains(":***@") && !shown.contains(":at@"),
        "{shown}"
    );
    assert_eq!(doc["app"], "avatar", "{doc}");
}

#[test]
fn a_fleet_stops_a_target_that_waits_for_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("locked.db");
    let run = |args: &[&str]| {
        crate::common::dbtool_bare(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let url = format!("sqlite://{}", db.display());
    assert!(run(&["--database-url", &url, "-q", "upgrade"])
        .status
        .success());
    std::fs::write(
        dir.path().join("dbtool-fleet.toml"),
        format!("[[target]]\nname = \"locked\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    // Another process holds the run lock (the side file) for longer than the test waits.
    let lockfile = format!("{}-dbtool.lock", db.display());
    let mut holder = std::process::Command::new("flock")
        .args([&lockfile, "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let child = crate::common::dbtool_bare(dir.path())
        .args(["fleet", "upgrade", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let sent = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "stopped while waiting, not when the lock came free"
    );
    r.expect_code(130);
    let doc = r.json();
    assert!(doc.to_string().contains("interrupted"), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_a_half_done_rollback_asks_before_it_drops_rows() {
    for backend in [Backend::MySql, Backend::Postgres] {
        let db = TestDb::new(backend, "halfdrop");
        db.run(&["--app", "avatar", "-q", "upgrade", "+2"]).ok();
        let settings = names(App::Avatar)[1].clone();
        // What a kill leaves between the marker and the DROP of the settings step's rollback.
        db.exec(&format!(
            "UPDATE dbtool_state SET in_progress = 'down', in_progress_since = 1 WHERE version = '{settings}'"
        ))
        .await;
        for args in [
            &["--app", "avatar", "upgrade"][..],
            &["--app", "avatar", "downgrade"][..],
        ] {
            let r = db.run(args);
            r.expect_code(7);
            assert!(r.error_line().contains("settings (4 rows)"), "{}", r.stderr);
            assert_eq!(
                db.count("SELECT COUNT(*) FROM settings").await,
                4,
                "{backend:?}"
            );
        }
        // Confirmed, the same downgrade finishes it.
        db.run(&["--app", "avatar", "downgrade", "--yes"]).ok();
        assert_eq!(recorded(&db).await, names(App::Avatar)[..1].to_vec());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stamp_force_adopts_a_half_made_alembic_database() {
    let db = TestDb::new(Backend::Postgres, "alembic_force");
    db.run(&["--app", "avatar", "-q", "upgrade", "+1"]).ok();
    for t in ["seaql_migrations", "dbtool_state", "dbtool_audit"] {
        db.exec(&format!("DROP TABLE {t}")).await;
    }
    db.exec("DROP INDEX ix_users_email").await;
    db.exec("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)")
        .await;
    db.exec("INSERT INTO alembic_version VALUES ('25698f3f906f')")
        .await;
    let r = db.run(&["--app", "avatar", "upgrade"]);
    r.expect_code(9);
    assert!(r.stderr.contains("ix_users_email"), "{}", r.stderr);
    // The stamp it suggests works as printed (check, also suggested, then shows the drift).
    let stamp: String = r
        .stderr
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|h| h.contains("stamp") && h.contains("--force"))
        .map(|h| format!("`{h}`"))
        .collect();
    assert_eq!(follow_hints(&db, &stamp), 1, "{}", r.stderr);
    assert_eq!(recorded(&db).await, names(App::Avatar)[..1].to_vec());
    db.run(&["--app", "avatar", "check"]).expect_code(9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_order_target_is_named_as_such() {
    let db = TestDb::new(Backend::Sqlite, "ooo_target");
    db.run(&["--app", "avatar", "-q", "upgrade", "+1"]).ok();
    let steps = names(App::Avatar);
    // The third step recorded while the second is not (widening does nothing on SQLite).
    db.exec(&format!(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('{}', 0)",
        steps[2]
    ))
    .await;
    let r = db.run(&["--app", "avatar", "upgrade", "d8cfd3cb4083"]);
    r.expect_code(16);
    assert!(r.error_line().contains(&steps[1]), "{}", r.stderr);
    assert!(!r.stderr.contains("other direction"), "{}", r.stderr);
    db.run(&[
        "--app",
        "avatar",
        "upgrade",
        "d8cfd3cb4083",
        "--out-of-order",
    ])
    .ok();
    assert_eq!(recorded(&db).await, steps);
}

/// A table the migrations made is gone: the error's advice to compare the schema repeats
/// the flags of the command (it said `dbtool check`, which checked ./dbtool.db with the
/// default app; found by a hostile run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_missing_table_hint_repeats_the_flags() {
    let db = TestDb::new(Backend::Postgres, "missinghint");
    let nc = |args: &[&str]| {
        let mut all = vec!["--app", "neurachar"];
        all.extend_from_slice(args);
        db.run(&all)
    };
    nc(&["-q", "upgrade"]).ok();
    db.exec("DROP TABLE messages").await;
    let r = nc(&["downgrade", "base", "--yes"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    let line = r.error_line();
    assert!(
        line.contains("`dbtool --app neurachar check` compares the schema"),
        "{line}"
    );
}

/// PostgreSQL: a stop between the last table step and the index step leaves nothing of the
/// index step behind: no marker (nothing reads as half-done), no entry for a step that
/// never started, and the session's timeouts as they were. (Its marker, entry and timeouts
/// once rode on the previous step's commit; a second signal during that commit then left
/// the step marked though it never started, found by a hostile run: they are sent by the
/// step itself again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_stop_before_the_index_step_leaves_nothing_of_it() {
    let db = TestDb::new(Backend::Postgres, "stopbeforeindex");
    let app = App::Neurachar;
    let steps = names(app);
    // Shared with the engine, as the CLI's connection is.
    let mut opt = ConnectOptions::new(db.url.clone());
    opt.sqlx_logging(false)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .map_sqlx_postgres_pool_opts(|p| p.replace_lost_connections(false));
    let conn = Database::connect(opt).await.expect("connect");
    let engine = Engine::new(&conn, Options::for_app(app)).await.unwrap();
    let mut hooks = StopAfter {
        after: 5,
        started: 0,
    };
    match engine
        .run(&Command::Upgrade(Target::Head), &mut hooks)
        .await
    {
        Err(Error::Interrupted(report)) => assert_eq!(report.done.len(), 5),
        other => panic!("a stop between steps ends the run as interrupted: {other:?}"),
    }
    assert_eq!(recorded(&db).await, steps[..5]);
    let index_step = &steps[5];
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM dbtool_state WHERE version = '{index_step}'"
        ))
        .await,
        0,
        "no marker, no row"
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM dbtool_audit WHERE version = '{index_step}'"
        ))
        .await,
        0,
        "no entry for a step that never started"
    );
    let timeout = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT current_setting('lock_timeout')".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(0)
        .unwrap();
    assert_eq!(timeout, "0", "the session's lock_timeout is back");
    db.run(&["--app", "neurachar", "status", "--check"])
        .expect_code(3);
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    db.run(&["--app", "neurachar", "check"]).ok();
}

/// PostgreSQL: a search_path none of whose schemas exists is named as such by `check`
/// (it said "a column holds NULL where dbtool expects a value"; found by a hostile run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_search_path_of_missing_schemas_is_named() {
    let db = TestDb::new(Backend::Postgres, "nosearchpath");
    neurachar(&db, &["-q", "upgrade"]).ok();
    let name = db
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    db.exec(&format!(
        "ALTER DATABASE \"{name}\" SET search_path = nosuch"
    ))
    .await;
    let r = neurachar(&db, &["check"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    let line = r.error_line();
    assert!(
        line.contains("no schema of the search_path (nosuch) exists"),
        "{line}"
    );
}

/// PostgreSQL: a search_path that starts with pg_temp would migrate into the session's
/// temporary schema, gone with the connection; the run refuses instead of reporting the
/// migrations applied (found by a hostile run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_temporary_schema_is_refused() {
    let db = TestDb::new(Backend::Postgres, "pgtempschema");
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20search_path%3Dpg_temp", db.url);
    let r = db.run(&["--database-url", &url, "--app", "avatar", "upgrade"]);
    r.expect_code(6);
    assert!(
        r.error_line().contains("the session's temporary schema"),
        "{}",
        r.stderr
    );
    let doc = db.run(&["--app", "avatar", "--json", "status"]).ok().json();
    assert_eq!(doc["pending"], 3, "{doc}");
}
