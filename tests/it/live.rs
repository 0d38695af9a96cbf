//! A live database (issue 16): a migration step that needs a table lock waits at most
//! `--ddl-lock-timeout`, is rolled back and retried `--ddl-retries` times, then stops with
//! exit 12 having changed nothing, naming the sessions in its way; other readers of the
//! table are never held up for longer than that timeout (plus a margin) in any attempt.

use crate::common::{Backend, Run, TestDb};
use crate::migrate::recorded;
use crate::on_all_backends;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use std::time::{Duration, Instant};

on_all_backends!(a_blocked_step_retries_then_stops_having_changed_nothing);

/// Holds a lock on `settings` that a `DROP TABLE settings` has to wait for, in an open
/// transaction (PostgreSQL, MySQL: a read; SQLite: the database's write lock).
async fn block_settings(db: &TestDb, c: &DatabaseConnection) -> sea_orm::DatabaseTransaction {
    let tx = match db.backend {
        Backend::Sqlite => {
            let tx = c
                .begin_with_options(sea_orm::TransactionOptions {
                    sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await
                .unwrap();
            tx.execute_unprepared("UPDATE settings SET value = value WHERE 1 = 0")
                .await
                .unwrap();
            tx
        }
        _ => {
            let tx = c.begin().await.unwrap();
            if db.backend == Backend::Postgres {
                tx.execute_unprepared("SET application_name = 'blocking-report'")
                    .await
                    .unwrap();
            }
            tx.execute_unprepared("SELECT COUNT(*) FROM settings")
                .await
                .unwrap();
            tx
        }
    };
    tx
}

async fn a_blocked_step_retries_then_stops_having_changed_nothing(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let before = recorded(&db).await;
    let blocker = db.connect().await;
    let tx = block_settings(&db, &blocker).await;

    // Dropping settings needs the lock the open transaction holds.
    let started = Instant::now();
    let r = db.run(&[
        "--ddl-lock-timeout",
        "1",
        "--ddl-retries",
        "2",
        "downgrade",
        "25698f3f906f",
        "--yes",
    ]);
    let took = started.elapsed();
    let line = r.expect_code(12).error_line().to_owned();
    // PostgreSQL: the widening step is a no-op and goes; the settings step waits. MySQL
    // (ALTER of the column) and SQLite (every step takes the write lock) wait at the widening.
    let blocked = match db.backend {
        Backend::Postgres => "m20260130_113328_create_settings_table",
        _ => "m20261201_000001_widen_settings_value",
    };
    assert!(
        line.contains(blocked)
            && line.contains("3 attempts")
            && line.contains("--ddl-lock-timeout"),
        "{line}"
    );
    match db.backend {
        Backend::Postgres => assert!(
            line.contains("application 'blocking-report'") && line.contains("idle in transaction"),
            "the blocker is named exactly: {line}"
        ),
        Backend::MySql => assert!(line.contains("pid "), "candidates are named: {line}"),
        Backend::Sqlite => assert!(line.contains("another process"), "{line}"),
    }
    assert_eq!(
        r.stderr.matches("retrying in").count(),
        2,
        "two retries: {}",
        r.stderr
    );
    // Three attempts of about a second each and the backoff between them.
    assert!(took >= Duration::from_secs(3), "took {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // The blocked step changed nothing (on PostgreSQL the widening before it completed).
    assert!(db.tables().await.contains(&"settings".to_string()));
    let after = recorded(&db).await;
    let done_before = usize::from(db.backend == Backend::Postgres);
    assert_eq!(after.len(), before.len() - done_before, "{after:?}");
    assert!(after.contains(&blocked.to_string()));
    let st = db.run(&["--json", "status"]).ok().json();
    let kinds: Vec<&str> = st["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    if db.backend == Backend::MySql {
        // DDL outside a transaction: the step was marked before it started, so it reads as
        // half-done (and the same command finishes it) rather than as done or not done.
        assert!(line.contains("half-done"), "{line}");
        assert_eq!(kinds, ["half_done"], "{st}");
    } else {
        assert!(line.contains("it changed nothing"), "{line}");
        assert!(
            kinds.iter().all(|k| *k == "pending"),
            "no half-done step: {st}"
        );
    }

    // Once the session ends, the same command finishes the job.
    tx.rollback().await.unwrap();
    blocker.close().await.ok();
    db.run(&["downgrade", "25698f3f906f", "--yes"]).ok();
    assert!(!db.tables().await.contains(&"settings".to_string()));
    db.run(&["check"]).ok();
}

/// While a downgrade waits for `settings`, PostgreSQL queues every later reader of the
/// table behind it: with the DDL lock timeout no reader waits much longer than that, in
/// any attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_wait_no_longer_than_the_ddl_lock_timeout() {
    let db = TestDb::new(Backend::Postgres, "live_readers");
    db.run(&["upgrade"]).ok();
    let blocker = db.connect().await;
    let tx = block_settings(&db, &blocker).await;

    let url = db.url.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut opt = sea_orm::ConnectOptions::new(url);
            opt.sqlx_logging(false)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            let c = sea_orm::Database::connect(opt).await.unwrap();
            let mut worst = Duration::ZERO;
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let t = Instant::now();
                let _ = c.execute_unprepared("SELECT COUNT(*) FROM settings").await;
                worst = worst.max(t.elapsed());
                reads += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (worst, reads)
        })
    };
    let mut cmd = db.cmd();
    cmd.args([
        "--ddl-lock-timeout",
        "1",
        "--ddl-retries",
        "2",
        "downgrade",
        "25698f3f906f",
        "--yes",
    ])
    .stdin(std::process::Stdio::null());
    let r = tokio::task::spawn_blocking(move || Run::from(cmd.output().unwrap()))
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (worst, reads) = reader.await.unwrap();
    r.expect_code(12);
    assert!(reads > 10, "the reader kept reading: {reads}");
    assert!(
        worst <= Duration::from_millis(1500),
        "a reader waited {worst:?}, more than the DDL lock timeout (1 s) plus 0.5 s"
    );
    tx.rollback().await.unwrap();
}

/// `--statement-timeout` bounds each statement of a step: a step that runs longer fails
/// (and, in its transaction, leaves nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_bounds_a_step() {
    let db = TestDb::new(Backend::Postgres, "live_stmt_timeout");
    let r = db.run_with(
        &["--app", "fixture", "--statement-timeout", "0.3", "upgrade"],
        &[("DBTOOL_FIXTURE_SLOW_SQL_MS", "2000")],
    );
    let line = r.expect_code(5).error_line();
    assert!(
        line.contains("f002_create_beta_slowly") && line.contains("statement timeout"),
        "{line}"
    );
    assert!(line.contains("rolled back"), "{line}");
    assert_eq!(recorded(&db).await, vec!["f001_create_alpha"]);
    assert!(!db.tables().await.contains(&"beta".to_string()));
}

/// MariaDB bounds the step's statements with `max_statement_time`; the step's marker
/// stays, so the failure is reported where it happened and the next run finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_bounds_a_step_on_mariadb() {
    let db = TestDb::new(Backend::MySql, "live_stmt_timeout");
    let upgrade = |slow: &str| {
        Run::from(
            db.cmd()
                .args(["--app", "fixture", "--statement-timeout", "0.3", "upgrade"])
                .env("DBTOOL_FIXTURE_SLOW_SQL_MS", slow)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let started = Instant::now();
    let r = upgrade("5000");
    let line = r.expect_code(5).error_line().to_owned();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the limit did not apply: {:?}",
        started.elapsed()
    );
    assert!(
        line.contains("f002_create_beta_slowly") && line.contains("max_statement_time"),
        "{line}"
    );
    assert_eq!(recorded(&db).await, vec!["f001_create_alpha"]);
    // The hint does not repeat the limit that cancelled the step, and works as printed.
    let hint = line
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in: {line}"));
    assert_eq!(hint, "dbtool --app fixture upgrade", "{line}");
    assert!(line.contains("without the statement timeout"), "{line}");
    let args: Vec<&str> = hint.split_whitespace().skip(1).collect();
    let again = Run::from(
        db.cmd()
            .args(&args)
            .env("DBTOOL_FIXTURE_SLOW_SQL_MS", "0")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    // The session's limit does not outlive the step: bookkeeping and the rerun are fine.
    again.ok();
    assert_eq!(recorded(&db).await.len(), 3);
}
