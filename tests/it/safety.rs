//! Safety under concurrency, failure and interruption, through the real binary: 16
//! concurrent upgrades, lock timeouts that name the holder, failing and killed migrations,
//! SIGINT, --wait, the destructive-downgrade guard and password masking.

use crate::common::{Backend, Run, TestDb};
use crate::migrate::recorded;
use crate::on_all_backends;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const F1: &str = "f001_create_alpha";
const F2: &str = "f002_create_beta_slowly";
const F3: &str = "f003_create_gamma_or_fail";

on_all_backends!(
    concurrent_upgrades_apply_each_migration_once,
    lock_timeout_names_the_holder,
    failing_migration_rolls_back,
    sigkill_mid_migration_leaves_consistent_state,
    sigint_stops_between_migrations,
    second_signal_aborts_at_once,
    destructive_downgrade_needs_confirmation,
);

/// Starts `dbtool --app fixture ARGS` with piped output.
fn spawn_fixture(db: &TestDb, args: &[&str], sleep_ms: u64) -> Child {
    db.cmd()
        .args(["--app", "fixture"])
        .args(args)
        .env("DBTOOL_FIXTURE_SLEEP_MS", sleep_ms.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbtool")
}

/// Reads the child's stderr (where step lines go) until a line contains `needle`. The rest
/// is read in the background (so the child never blocks on a full pipe) and handed to
/// [`finish_watched`], which returns the whole stderr.
fn wait_for_line(child: &mut Child, needle: &str) -> Watched {
    let out = child.stderr.take().expect("piped stderr");
    let mut reader = BufReader::new(out);
    let mut lines = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        lines.push_str(&line);
        if line.contains(needle) {
            let rest = std::thread::spawn(move || {
                let mut rest = String::new();
                let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
                rest
            });
            return Watched { lines, rest };
        }
        line.clear();
    }
    panic!("the child ended without printing {needle:?}; got {lines:?}");
}

/// stderr of a child being watched by [`wait_for_line`].
struct Watched {
    lines: String,
    rest: std::thread::JoinHandle<String>,
}

/// Waits for a watched child; its `stderr` is everything it wrote there.
fn finish_watched(child: Child, watched: Watched) -> Run {
    let mut r = finish(child);
    r.stderr = watched.lines + &watched.rest.join().expect("stderr reader");
    r
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} failed");
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait"))
}

/// A fixture upgrade sent SIGINT while its slow second step runs: it stops after that step
/// (exit 130).
fn sigint_during_f2(db: &TestDb) -> Run {
    let mut child = spawn_fixture(db, &["upgrade"], 1500);
    let watched = wait_for_line(&mut child, &format!("applying {F2}"));
    signal(&child, "-INT");
    let r = finish_watched(child, watched);
    r.expect_code(130);
    r
}

/// Every fixture table exists exactly when its migration is recorded.
async fn assert_consistent(db: &TestDb) {
    let tables = db.tables().await;
    let rec = recorded(db).await;
    for (table, version) in [("alpha", F1), ("beta", F2), ("gamma", F3)] {
        assert_eq!(
            tables.contains(&table.to_string()),
            rec.contains(&version.to_string()),
            "table {table} vs record {version}: tables {tables:?}, recorded {rec:?}"
        );
    }
}

async fn concurrent_upgrades_apply_each_migration_once(db: TestDb) {
    let children: Vec<Child> = (0..16)
        .map(|_| {
            db.cmd()
                .args(["--app", "neurachar", "upgrade"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    for r in &runs {
        r.ok();
    }
    let applied_lines: usize = runs
        .iter()
        .map(|r| r.stderr.matches("applied ").count())
        .sum();
    assert_eq!(
        applied_lines, 6,
        "each migration applied by exactly one process"
    );
    let rec = recorded(&db).await;
    assert_eq!(rec.len(), 6, "{rec:?}");
    assert_eq!(
        db.tables().await.len(),
        6,
        "five tables and the tracking table"
    );
}

async fn lock_timeout_names_the_holder(db: TestDb) {
    let mut holder = spawn_fixture(&db, &["upgrade"], 6000);
    let watched = wait_for_line(&mut holder, &format!("applying {F2}"));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let r = db.run(&["--app", "fixture", "--lock-timeout", "1", "upgrade"]);
    r.expect_code(4);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up in time"
    );
    assert!(r.stderr.contains("waiting"), "says it waits: {}", r.stderr);
    assert!(r.stderr.contains("held by"), "{}", r.stderr);
    if db.backend != Backend::Sqlite {
        assert!(r.stderr.contains("pid "), "names the holder: {}", r.stderr);
    }
    if db.backend == Backend::Postgres {
        assert!(r.stderr.contains("application 'dbtool'"), "{}", r.stderr);
        assert!(r.stderr.contains("since "), "{}", r.stderr);
    }
    // read-only commands never wait for the lock
    let started = Instant::now();
    db.run(&["--app", "fixture", "status"]).ok();
    assert!(started.elapsed() < Duration::from_secs(3));
    finish_watched(holder, watched).ok();
    assert_eq!(recorded(&db).await.len(), 3);
}

async fn failing_migration_rolls_back(db: TestDb) {
    let r = db.run_with(
        &["--app", "fixture", "upgrade"],
        &[("DBTOOL_FIXTURE_FAIL", "1")],
    );
    r.expect_code(5);
    assert!(r.stderr.contains(F3), "names the migration: {}", r.stderr);
    assert!(
        r.stderr.contains("no_such_table_fixture"),
        "carries the database's message: {}",
        r.stderr
    );
    // The step lines of the migrations that succeeded, then one error line.
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", r.stderr);
    assert!(r.stderr.trim_end().ends_with(errors[0]), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(recorded(&db).await, vec![F1, F2], "earlier migrations stay");
    if db.backend == Backend::MySql {
        // DDL cannot be rolled back: the step is marked half-done, `status --check` says so,
        // and the next run finishes it (below).
        assert!(r.stderr.contains("half-done"), "{}", r.stderr);
        let st = db.run(&["--app", "fixture", "status", "--check"]);
        assert!(st.expect_code(13).stderr.contains(F3), "{}", st.stderr);
    } else {
        assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
        assert_consistent(&db).await;
    }
    // The same failure for a pipeline: which step, how it ended, and the report.
    let r = db.run_with(
        &["--app", "fixture", "--json", "upgrade"],
        &[("DBTOOL_FIXTURE_FAIL", "1")],
    );
    r.expect_code(5);
    let doc = r.json();
    let failed = &doc["error"]["failed"];
    assert_eq!(failed["step"], F3, "{doc}");
    assert_eq!(failed["direction"], "up", "{doc}");
    let mysql = db.backend == Backend::MySql;
    assert_eq!(failed["rolled_back"], !mysql, "{doc}");
    assert_eq!(failed["resumable"], mysql, "{doc}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("no_such_table_fixture"),
        "{doc}"
    );
    assert_eq!(doc["error"]["report"]["to"], F2, "{doc}");
    db.run(&["--app", "fixture", "upgrade"]).ok();
    assert_eq!(recorded(&db).await, vec![F1, F2, F3]);
}

async fn sigkill_mid_migration_leaves_consistent_state(db: TestDb) {
    let mut child = spawn_fixture(&db, &["upgrade"], 20_000);
    wait_for_line(&mut child, &format!("applying {F2}"));
    std::thread::sleep(Duration::from_millis(500)); // inside f002, after CREATE TABLE beta
    signal(&child, "-KILL");
    let _ = child.wait();
    if db.backend == Backend::MySql {
        // MySQL committed beta's DDL; the step was marked before it started, so the record
        // does not lie: it is half-done, and the next run finishes it first.
        let st = db.run(&["--app", "fixture", "--json", "status"]);
        let doc = st.ok().json();
        assert_eq!(doc["migrations"][1]["state"], "half_done", "{doc}");
    } else {
        assert!(!recorded(&db).await.contains(&F2.to_string()));
        assert_consistent(&db).await;
    }
    // The lock died with the connection: the next run is not blocked and completes.
    db.run(&["--app", "fixture", "--lock-timeout", "5", "upgrade"])
        .ok();
    assert_eq!(recorded(&db).await, vec![F1, F2, F3]);
    assert_consistent(&db).await;
}

async fn sigint_stops_between_migrations(db: TestDb) {
    let r = sigint_during_f2(&db);
    assert!(
        r.stderr.contains("stopping after the current migration"),
        "{}",
        r.stderr
    );
    assert_eq!(
        recorded(&db).await,
        vec![F1, F2],
        "the current one finished, the next did not start"
    );
    assert_consistent(&db).await;
    // The log agrees: the next step never started, even where its transaction and entry
    // are begun with the current one's commit (PostgreSQL), and taking that entry back
    // worked (no warning that the log keeps it).
    assert!(!r.stderr.contains("keeps an entry"), "{}", r.stderr);
    let log = db.run(&["--app", "fixture", "--json", "log"]).ok().json();
    let mut entries: Vec<(String, String)> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("migration"), s("outcome"))
        })
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            (F1.to_owned(), "ok".to_owned()),
            (F2.to_owned(), "ok".to_owned())
        ],
        "{:?}: {log}",
        db.backend
    );
    db.run(&["--app", "fixture", "upgrade"]).ok();
    assert_eq!(recorded(&db).await.len(), 3);
}

async fn second_signal_aborts_at_once(db: TestDb) {
    let mut child = spawn_fixture(&db, &["upgrade"], 30_000);
    let watched = wait_for_line(&mut child, &format!("applying {F2}"));
    let started = Instant::now();
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "-TERM");
    let r = finish_watched(child, watched);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "aborted at once"
    );
    r.expect_code(143);
    assert!(
        r.stderr.contains("error: terminated by SIGTERM"),
        "one error line says why: {}",
        r.stderr
    );
    assert!(!recorded(&db).await.contains(&F2.to_string()));
    if db.backend == Backend::MySql {
        db.exec("DROP TABLE IF EXISTS beta").await;
    } else {
        assert_consistent(&db).await;
    }
    db.run(&["--app", "fixture", "--lock-timeout", "5", "upgrade"])
        .ok();
    assert_eq!(recorded(&db).await.len(), 3);
}

async fn destructive_downgrade_needs_confirmation(db: TestDb) {
    db.run(&["upgrade"]).ok();
    // The last step (widening settings.value) drops nothing: no confirmation needed.
    db.run(&["downgrade"]).ok();
    assert_eq!(db.count("SELECT COUNT(*) FROM settings").await, 4);
    let r = db.run(&["downgrade", "--dry-run"]);
    r.ok();
    assert!(
        r.stdout.contains("settings") && r.stdout.contains("4 row"),
        "{}",
        r.stdout
    );
    let r = db.run(&["downgrade"]);
    r.expect_code(7);
    assert!(r.stderr.contains("settings (4 rows)"), "{}", r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(
        db.tables().await.contains(&"settings".to_string()),
        "nothing changed"
    );
    let doc = db.run(&["--json", "downgrade"]).expect_code(7).json();
    assert_eq!(doc["error"]["kind"], "not_confirmed");
    db.run(&["downgrade", "--yes"]).ok();
    assert!(!db.tables().await.contains(&"settings".to_string()));
    // users is empty: no confirmation needed
    db.run(&["downgrade"]).ok();
    assert_eq!(recorded(&db).await, Vec::<String>::new());
}

/// A TCP port that starts forwarding to PostgreSQL only after a delay.
fn late_proxy(delay: Duration) -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind late port");
        for conn in listener.incoming().flatten() {
            let upstream = std::net::TcpStream::connect("127.0.0.1:5432").expect("upstream");
            let (mut a, mut b) = (conn.try_clone().unwrap(), upstream.try_clone().unwrap());
            let (mut c, mut d) = (conn, upstream);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut a, &mut b);
                let _ = b.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut d, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_a_server_that_comes_up_late() {
    let db = TestDb::new(Backend::Postgres, "wait_late");
    // Without --wait an unreachable server fails at once.
    let port = late_proxy(Duration::from_secs(60));
    let url = format!("postgres://postgres@127.0.0.1:{port}/{}", db.name);
    let started = Instant::now();
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .arg("status")
            .output()
            .unwrap(),
    );
    r.expect_code(6);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(r.stderr.contains("--wait"), "{}", r.stderr);

    let port = late_proxy(Duration::from_millis(1500));
    let url = format!("postgres://postgres@127.0.0.1:{port}/{}", db.name);
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .args(["--wait", "--wait-timeout", "30", "upgrade"])
            .output()
            .unwrap(),
    );
    r.ok();
    assert!(
        r.stderr.contains("waiting for the database"),
        "{}",
        r.stderr
    );
    assert_eq!(
        recorded(&db).await.len(),
        <migration::avatar::Migrator as migration::AppMigrator>::infos().len()
    );

    // --wait gives up after --wait-timeout with the connection exit code.
    let port = late_proxy(Duration::from_secs(60));
    let url = format!("postgres://postgres@127.0.0.1:{port}/{}", db.name);
    let started = Instant::now();
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .args(["--wait", "--wait-timeout", "2", "status"])
            .output()
            .unwrap(),
    );
    r.expect_code(6);
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_appear() {
    let db = TestDb::new(Backend::Postgres, "no_password");
    let secret = "Sup3r-S3cret-pw";
    let check = |r: &Run| {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "password leaked:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    };
    let cases: Vec<(String, Vec<&str>, i32)> = vec![
        // trust auth ignores the password: a working connection
        (
            format!("postgres://postgres:{secret}@127.0.0.1:5432/{}", db.name),
            vec!["--json", "status"],
            0,
        ),
        (
            format!("postgres://postgres:{secret}@127.0.0.1:5432/{}", db.name),
            vec!["upgrade"],
            0,
        ),
        // a missing database
        (
            format!("postgres://postgres:{secret}@127.0.0.1:5432/no_such_db_xyz"),
            vec!["status"],
            6,
        ),
        (
            format!("postgres://postgres:{secret}@127.0.0.1:5432/no_such_db_xyz"),
            vec!["--json", "upgrade"],
            6,
        ),
        // nothing listening
        (
            format!("postgres://postgres:{secret}@127.0.0.1:1/x"),
            vec!["status"],
            6,
        ),
        (
            format!("mysql://root:{secret}@127.0.0.1:1/x"),
            vec!["--json", "status"],
            6,
        ),
        // an unparsable URL
        (
            format!("postgres://postgres:{secret}@127.0.0.1:notaport/x"),
            vec!["status"],
            2,
        ),
        (
            format!("postgres://postgres:{secret}@127.0.0.1:notaport/x"),
            vec!["--json", "status"],
            2,
        ),
        // an unknown scheme
        (
            format!("oracle://scott:{secret}@127.0.0.1/x"),
            vec!["status"],
            2,
        ),
    ];
    for (url, args, code) in cases {
        let r = Run::from(
            db.cmd()
                .env("DATABASE_URL", &url)
                .args(&args)
                .output()
                .unwrap(),
        );
        r.expect_code(code);
        check(&r);
        if code != 0 {
            assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
            assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        }
        if args.contains(&"--json") {
            r.json();
        }
    }
    // Wrong credentials on MariaDB (it checks passwords): one line, exit 6, no secret.
    let r = Run::from(
        db.cmd()
            .env(
                "DATABASE_URL",
                format!("mysql://nosuchuser:{secret}@127.0.0.1:3306/mysql"),
            )
            .arg("status")
            .output()
            .unwrap(),
    );
    r.expect_code(6);
    check(&r);
    assert!(r.stderr.contains("user name and password"), "{}", r.stderr);
}

/// PostgreSQL: the next step, begun by the current step's commit, is rolled back at a stop
/// between steps and its audit entry removed; where the audit table keeps every row (a
/// trigger refuses DELETE), the run says that the log keeps an entry for a step that never
/// started (it said nothing; found by a hostile run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_stop_says_when_the_audit_log_keeps_an_unstarted_step() {
    let db = TestDb::new(Backend::Postgres, "appendonly");
    // Refused loudly, or skipped quietly (a trigger that returns NULL: found by a hostile
    // run, it gave no warning).
    for body in ["RAISE EXCEPTION 'append only'", "RETURN NULL"] {
        db.run(&["--app", "fixture", "downgrade", "base", "--yes"])
            .ok();
        db.run(&["--app", "fixture", "upgrade", F1]).ok();
        db.exec(&format!(
            "CREATE OR REPLACE FUNCTION no_delete() RETURNS trigger LANGUAGE plpgsql AS \
             $$BEGIN {body}; END$$; \
             CREATE OR REPLACE TRIGGER no_delete BEFORE DELETE ON dbtool_audit \
             FOR EACH ROW EXECUTE FUNCTION no_delete()"
        ))
        .await;
        let r = sigint_during_f2(&db);
        assert!(
            r.stderr.contains(&format!(
                "keeps an entry for {F3} although it never started"
            )),
            "{body}: {}",
            r.stderr
        );
        assert_eq!(recorded(&db).await, vec![F1, F2], "{body}");
        assert_consistent(&db).await;
    }
}
