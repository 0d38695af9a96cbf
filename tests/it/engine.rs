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
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
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
