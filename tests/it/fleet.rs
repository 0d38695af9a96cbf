//! `dbtool fleet`: many databases at once on all three backends, with broken targets of each
//! kind (the other app's, locked, unreachable, half-applied, newer history, unset `${VAR}`),
//! reruns that finish the rest without touching the others, concurrent runs and shards that
//! migrate each database exactly once, canaries, and bad input.

use crate::common::{dbtool_bare, Run};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

const HEAD: &str = "m20251212_000006_add_foreign_key_indexes";

/// Databases made for one test, named `<prefix><i>` (a prefix no other test uses, so
/// `--match` sees only these), dropped when the value goes.
struct Group {
    mysql: bool,
    prefix: String,
    names: Vec<String>,
}

impl Group {
    fn new(mysql: bool, test: &str, n: usize) -> Group {
        let prefix = format!("fl{}_{test}_", std::process::id());
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i:02}")).collect();
        let statements: Vec<String> = names
            .iter()
            .map(|n| format!("CREATE DATABASE {n}"))
            .collect();
        admin(mysql, &statements);
        Group {
            mysql,
            prefix,
            names,
        }
    }

    fn url(&self, i: usize) -> String {
        if self.mysql {
            format!("mysql://root@127.0.0.1:3306/{}", self.names[i])
        } else {
            format!("postgres://postgres@127.0.0.1:5432/{}", self.names[i])
        }
    }

    /// The LIKE pattern of exactly these databases (`_` escaped).
    fn pattern(&self) -> String {
        format!("{}%", self.prefix.replace('_', "\\_"))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.mysql {
            let statements: Vec<String> = self
                .names
                .iter()
                .map(|n| format!("DROP DATABASE IF EXISTS {n}"))
                .collect();
            admin(true, &statements);
            return;
        }
        // Each DROP DATABASE waits for a checkpoint, seconds on a busy server: sessions that
        // drop at the same time share one.
        std::thread::scope(|s| {
            for chunk in self.names.chunks(4) {
                s.spawn(move || {
                    for n in chunk {
                        admin(
                            false,
                            &[format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)")],
                        );
                    }
                });
            }
        });
    }
}

/// Runs statements one by one as the server's administrator (PostgreSQL: each outside a
/// transaction, as CREATE DATABASE needs).
fn admin(mysql: bool, statements: &[String]) {
    let out = if mysql {
        Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-uroot", "-e", &statements.join(";")])
            .output()
            .expect("mariadb client")
    } else {
        let mut c = Command::new("psql");
        c.args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qAtX",
        ]);
        for s in statements {
            c.args(["-c", s]);
        }
        c.output().expect("psql")
    };
    assert!(
        out.status.success(),
        "{statements:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn connect(url: &str) -> DatabaseConnection {
    let mut opt = sea_orm::ConnectOptions::new(url.to_owned());
    opt.sqlx_logging(false)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None);
    Database::connect(opt).await.expect("connect")
}

/// Each row's columns as text joined by `|` (cast on the server side).
async fn rows(url: &str, sql: &str) -> Vec<String> {
    let c = connect(url).await;
    let out = rows_on(&c, sql).await;
    c.close().await.ok();
    out
}

async fn rows_on(c: &DatabaseConnection, sql: &str) -> Vec<String> {
    let rows = c
        .query_all_raw(Statement::from_string(
            c.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| {
            (0..)
                .map_while(|i| r.try_get_by_index::<Option<String>>(i).ok())
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

async fn exec(url: &str, sql: &str) {
    let c = connect(url).await;
    c.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    c.close().await.ok();
}

/// What a database records: its tracking rows (version and applied_at) and how many step
/// audit rows it has per direction. Unchanged between two reads means nothing touched it.
async fn footprint(url: &str) -> (Vec<String>, Vec<String>) {
    let text = if url.starts_with("mysql") {
        "CHAR"
    } else {
        "TEXT"
    };
    let tracking = rows(
        url,
        &format!(
            "SELECT version, CAST(applied_at AS {text}) FROM seaql_migrations ORDER BY version"
        ),
    )
    .await;
    let audit = rows(
        url,
        &format!("SELECT direction, CAST(COUNT(*) AS {text}) FROM dbtool_audit WHERE version IS NOT NULL GROUP BY direction ORDER BY direction"),
    )
    .await;
    (tracking, audit)
}

/// The versions a database records, in order.
async fn versions(url: &str) -> Vec<String> {
    rows(url, "SELECT version FROM seaql_migrations ORDER BY version").await
}

/// `dbtool ARGS` in `dir`, with `env` set.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = dbtool_bare(dir);
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().expect("run dbtool"))
}

fn spawn_in(dir: &Path, args: &[&str]) -> std::process::Child {
    dbtool_bare(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbtool")
}

/// The rows of a `--json` fleet report by target name.
fn by_target(report: &Value) -> BTreeMap<String, Value> {
    report["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| (t["target"].as_str().unwrap().to_owned(), t.clone()))
        .collect()
}

/// The advisory lock dbtool takes for schema `public` (see migration's `lock.rs`).
fn pg_lock_sql() -> String {
    let mut h: u32 = 0x811c9dc5;
    for b in b"public" {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    format!(
        "SELECT pg_advisory_lock({}, {})",
        0x6462_746f,
        h & 0x7fff_ffff
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_targets_are_named_and_a_rerun_finishes_the_rest() {
    let pg = Group::new(false, "broken", 50);
    let my = Group::new(true, "broken", 10);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let var = format!("FLEET_PW_{}", std::process::id());
    let secret = "Fl33t-s3cret-pw";

    // The breakages.
    let wrong_app = pg.url(0);
    run_in(
        dir.path(),
        &["--database-url", &wrong_app, "--app", "avatar", "upgrade"],
        &[],
    )
    .ok();
    let locked = pg.url(1);
    let holder = connect(&locked).await;
    holder.execute_unprepared(&pg_lock_sql()).await.unwrap();
    let half = pg.url(2);
    run_in(
        dir.path(),
        &[
            "--database-url",
            &half,
            "--app",
            "neurachar",
            "upgrade",
            "m20251212_000003",
        ],
        &[],
    )
    .ok();
    // chats exists while its migration is not recorded: what a crash between DDL and record
    // leaves on a backend without transactional DDL.
    exec(&half, "CREATE TABLE chats (id serial PRIMARY KEY)").await;
    let newer = my.url(0);
    run_in(
        dir.path(),
        &["--database-url", &newer, "--app", "neurachar", "upgrade"],
        &[],
    )
    .ok();
    exec(&newer, "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)").await;

    let mut toml = String::new();
    let mut add = |name: &str, url: &str, extra: &str| {
        toml.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nurl = \"{url}\"\napp = \"neurachar\"\n{extra}\n"
        ));
    };
    for i in 0..pg.names.len() {
        let extra = if i == 1 { "lock_timeout = 1" } else { "" };
        if i == 3 {
            // A password from a variable that is not set yet.
            let u = pg
                .url(3)
                .replace("postgres@", &format!("postgres:${{{var}}}@"));
            add(&format!("pg-{i:02}"), &u, "");
        } else {
            add(&format!("pg-{i:02}"), &pg.url(i), extra);
        }
    }
    for i in 0..my.names.len() {
        add(&format!("my-{i:02}"), &my.url(i), "");
    }
    for i in 0..20 {
        add(
            &format!("lite-{i:02}"),
            &format!("sqlite://data/s{i:02}.db"),
            "",
        );
    }
    add("down", "postgres://postgres@127.0.0.1:1/nowhere", "");
    std::fs::write(dir.path().join("dbtool-fleet.toml"), &toml).unwrap();

    let broken = ["pg-00", "pg-01", "pg-02", "pg-03", "my-00", "down"];
    let first = run_in(
        dir.path(),
        &["--json", "fleet", "upgrade", "--keep-going", "-j", "8"],
        &[],
    );
    first.expect_code(20);
    let report = first.json();
    let t = by_target(&report);
    assert_eq!(t.len(), 81, "{report}");
    let expect = |name: &str, outcome: &str, kind: &str, words: &str| {
        let r = &t[name];
        assert_eq!(r["outcome"], outcome, "{name}: {r}");
        assert_eq!(r["kind"], kind, "{name}: {r}");
        let m = r["message"].as_str().unwrap();
        assert!(m.contains(words), "{name}: {m}");
    };
    expect("pg-00", "refused", "wrong_app", "belongs to avatar");
    expect("pg-01", "refused", "lock_timeout", "migration lock");
    expect("pg-02", "failed", "error", "chats");
    expect(
        "pg-03",
        "refused",
        "usage",
        &format!("${{{var}}} is not set"),
    );
    expect(
        "my-00",
        "refused",
        "unknown_recorded",
        "m20991231_000001_from_the_future",
    );
    expect("down", "refused", "connection", "127.0.0.1:1");
    // Failures first in the report, then the rest.
    let order: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(order[0], "failed", "{order:?}");
    assert!(order[1..6].iter().all(|o| *o == "refused"), "{order:?}");
    assert!(order[6..].iter().all(|o| *o == "ok"), "{order:?}");
    assert_eq!(report["counts"]["ok"], 75);
    assert_eq!(report["exit_code"], 20);
    // Every healthy target is at head.
    for (name, r) in &t {
        if !broken.contains(&name.as_str()) {
            assert_eq!(r["to"], HEAD, "{name}: {r}");
        }
    }
    for i in 4..pg.names.len() {
        assert_eq!(versions(&pg.url(i)).await.len(), 6, "{}", pg.names[i]);
    }
    for i in 1..my.names.len() {
        assert_eq!(versions(&my.url(i)).await.len(), 6, "{}", my.names[i]);
    }
    for i in 0..20 {
        let f = dir.path().join(format!("data/s{i:02}.db"));
        assert_eq!(
            versions(&format!("sqlite://{}", f.display())).await.len(),
            6
        );
    }
    // The broken ones were not changed.
    let tables = rows(
        &pg.url(1),
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .await;
    assert!(
        tables.is_empty(),
        "the locked one was not changed: {tables:?}"
    );
    assert_eq!(versions(&half).await.len(), 3);

    // The same in text: a table with failures first, a line per target on stderr.
    let text = run_in(dir.path(), &["fleet", "upgrade", "--keep-going"], &[]);
    text.expect_code(20);
    let table: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| l.starts_with("| "))
        .collect();
    assert!(
        table[0].contains("| target") && table[0].contains("| outcome"),
        "{}",
        text.stdout
    );
    assert!(
        table[1].contains("| pg-02 ") && table[1].contains("| failed "),
        "{}",
        text.stdout
    );
    for name in broken {
        assert!(
            text.stderr.contains(&format!("fleet: {name} ")),
            "{name}: {}",
            text.stderr
        );
    }
    assert!(
        text.stdout
            .contains("75 ok, 1 failed, 5 refused of 81 targets"),
        "{}",
        text.stdout
    );

    // Healthy targets as they are now, to see that the rerun leaves them alone.
    let mut before = Vec::new();
    for i in 4..pg.names.len() {
        before.push(footprint(&pg.url(i)).await);
    }
    for i in 1..my.names.len() {
        before.push(footprint(&my.url(i)).await);
    }

    // Fix every breakage and run again.
    exec(
        &wrong_app,
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
    )
    .await;
    holder.close().await.unwrap();
    exec(&half, "DROP TABLE chats").await;
    exec(
        &newer,
        "DELETE FROM seaql_migrations WHERE version = 'm20991231_000001_from_the_future'",
    )
    .await;
    let toml = toml.replace("postgres://postgres@127.0.0.1:1/nowhere", &pg.url(4));
    std::fs::write(dir.path().join("dbtool-fleet.toml"), toml).unwrap();
    // The password comes from .env this time, and is never shown.
    std::fs::write(dir.path().join(".env"), format!("{var}={secret}\n")).unwrap();
    let second = run_in(
        dir.path(),
        &["--json", "fleet", "upgrade", "--keep-going", "-j", "8"],
        &[],
    );
    second.ok();
    assert!(!second.stdout.contains(secret) && !second.stderr.contains(secret));
    let t = by_target(&second.json());
    for (name, r) in &t {
        assert_eq!(r["outcome"], "ok", "{name}: {r}");
        assert_eq!(r["to"], HEAD, "{name}: {r}");
        let expected = if broken.contains(&name.as_str()) && name != "my-00" && name != "down" {
            "migrations applied"
        } else {
            "nothing to do"
        };
        assert!(
            r["message"].as_str().unwrap().contains(expected),
            "{name}: {r}"
        );
    }
    assert_eq!(
        t["pg-03"]["database"]
            .as_str()
            .unwrap()
            .matches("***")
            .count(),
        1
    );
    for i in 0..4 {
        assert_eq!(versions(&pg.url(i)).await.len(), 6, "{}", pg.names[i]);
    }
    let mut after = Vec::new();
    for i in 4..pg.names.len() {
        after.push(footprint(&pg.url(i)).await);
    }
    for i in 1..my.names.len() {
        after.push(footprint(&my.url(i)).await);
    }
    assert_eq!(before, after, "the rerun touched a finished target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_and_shards_migrate_each_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = "postgres://postgres@127.0.0.1:5432/postgres";

    // Two whole runs over the same set at the same time.
    let both = Group::new(false, "twice", 24);
    let pattern = both.pattern();
    let args = [
        "--app",
        "neurachar",
        "--json",
        "fleet",
        "upgrade",
        "--server",
        server,
        "--match",
        &pattern,
        "-j",
        "6",
    ];
    let children = [spawn_in(dir.path(), &args), spawn_in(dir.path(), &args)];
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect();
    let mut applied = 0;
    for r in &runs {
        r.ok();
        let t = by_target(&r.json());
        assert_eq!(t.len(), 24);
        applied += t
            .values()
            .filter(|r| r["message"].as_str().unwrap().contains("applied"))
            .count();
    }
    assert_eq!(
        applied, 24,
        "each database migrated by exactly one of the two runs"
    );
    for i in 0..24 {
        let (tracking, audit) = footprint(&both.url(i)).await;
        assert_eq!(tracking.len(), 6, "{}", both.names[i]);
        assert_eq!(
            audit,
            vec!["up|6".to_string()],
            "{}: each step ran once",
            both.names[i]
        );
    }

    // Three shards at the same time, plus a full run racing them.
    let shards = Group::new(false, "shards", 30);
    let pattern = shards.pattern();
    let mut children = Vec::new();
    for s in ["1/3", "2/3", "3/3"] {
        children.push(spawn_in(
            dir.path(),
            &[
                "--app",
                "neurachar",
                "--json",
                "fleet",
                "upgrade",
                "--server",
                server,
                "--match",
                &pattern,
                "--shard",
                s,
            ],
        ));
    }
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for r in &runs {
        r.ok();
        let report = r.json();
        assert_eq!(report["total"], 30);
        let names: Vec<String> = by_target(&report).into_keys().collect();
        assert!(!names.is_empty(), "a share of 30 is not empty: {report}");
        total += names.len();
        seen.extend(names);
    }
    assert_eq!(total, 30, "the shards overlap");
    assert_eq!(
        seen,
        shards.names.iter().cloned().collect(),
        "the shards cover the set"
    );
    for i in 0..30 {
        let (tracking, audit) = footprint(&shards.url(i)).await;
        assert_eq!(tracking.len(), 6, "{}", shards.names[i]);
        assert_eq!(audit, vec!["up|6".to_string()], "{}", shards.names[i]);
    }
    // The same shard twice is the same share.
    let again = run_in(
        dir.path(),
        &[
            "--app",
            "neurachar",
            "--json",
            "fleet",
            "status",
            "--server",
            server,
            "--match",
            &pattern,
            "--shard",
            "2/3",
        ],
        &[],
    );
    let names: Vec<String> = by_target(&again.ok().json()).into_keys().collect();
    let first: Vec<String> = by_target(&runs[1].json()).into_keys().collect();
    assert_eq!(names, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_and_the_first_failure_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // a.db records a migration this build does not know; the others are fresh files.
    run_in(
        dir.path(),
        &["--database-url", "sqlite://data/a.db", "upgrade"],
        &[],
    )
    .ok();
    exec(&format!("sqlite://{}", data.join("a.db").display()), "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)").await;
    for n in ["b", "c", "d", "e"] {
        std::fs::File::create(data.join(format!("{n}.db"))).unwrap();
    }
    let r = run_in(
        dir.path(),
        &[
            "--json",
            "fleet",
            "upgrade",
            "--sqlite-glob",
            "./data/*.db",
            "--canary",
            "1",
            "--keep-going",
        ],
        &[],
    );
    r.expect_code(21);
    let t = by_target(&r.json());
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        [
            "data/a.db",
            "data/b.db",
            "data/c.db",
            "data/d.db",
            "data/e.db"
        ]
    );
    assert_eq!(t["data/a.db"]["outcome"], "refused");
    assert_eq!(t["data/a.db"]["canary"], true);
    for n in ["b", "c", "d", "e"] {
        let row = &t[&format!("data/{n}.db")];
        assert_eq!(row["outcome"], "skipped", "{row}");
        assert!(
            row["message"]
                .as_str()
                .unwrap()
                .contains("canary data/a.db refused"),
            "{row}"
        );
        assert_eq!(
            std::fs::metadata(data.join(format!("{n}.db")))
                .unwrap()
                .len(),
            0,
            "{n} untouched"
        );
    }
    // Without canaries and --keep-going, nothing new starts after the first failure.
    let r = run_in(
        dir.path(),
        &[
            "--json",
            "fleet",
            "upgrade",
            "--sqlite-glob",
            "data/*.db",
            "-j",
            "1",
        ],
        &[],
    );
    r.expect_code(21);
    let t = by_target(&r.json());
    assert_eq!(t["data/b.db"]["outcome"], "skipped");
    // --keep-going runs the rest; the rerun then has nothing left to do on them.
    run_in(
        dir.path(),
        &[
            "fleet",
            "upgrade",
            "--sqlite-glob",
            "data/*.db",
            "--keep-going",
        ],
        &[],
    )
    .expect_code(21);
    let r = run_in(
        dir.path(),
        &["--json", "fleet", "status", "--sqlite-glob", "data/*.db"],
        &[],
    );
    let t = by_target(&r.ok().json());
    assert!(
        t["data/a.db"]["message"]
            .as_str()
            .unwrap()
            .contains("needs attention"),
        "{}",
        t["data/a.db"]
    );
    assert_eq!(
        t["data/e.db"]["to"],
        "m20261201_000001_widen_settings_value"
    );
    assert_eq!(t["data/e.db"]["message"], "up to date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_of_one_database_are_a_fleet() {
    let g = Group::new(false, "schemas", 1);
    exec(
        &g.url(0),
        "CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b; CREATE SCHEMA other",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        &[
            "--app",
            "neurachar",
            "--database-url",
            &g.url(0),
            "--json",
            "fleet",
            "upgrade",
            "--match-schemas",
            "tenant\\_%",
        ],
        &[],
    );
    let t = by_target(&r.ok().json());
    assert_eq!(t.keys().collect::<Vec<_>>(), ["tenant_a", "tenant_b"]);
    for s in ["tenant_a", "tenant_b"] {
        let n = rows(
            &g.url(0),
            &format!("SELECT version FROM {s}.seaql_migrations"),
        )
        .await;
        assert_eq!(n.len(), 6, "{s}");
    }
    let other = rows(
        &g.url(0),
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'other'",
    )
    .await;
    assert!(other.is_empty(), "{other:?}");
    // Downgrade: an absolute target and --yes.
    let r = run_in(
        dir.path(),
        &[
            "--database-url",
            &g.url(0),
            "fleet",
            "downgrade",
            "base",
            "--yes",
            "--match-schemas",
            "tenant\\_%",
        ],
        &[],
    );
    r.ok();
    assert!(r.stdout.contains("2 ok of 2 targets"), "{}", r.stdout);
    let n = rows(&g.url(0), "SELECT version FROM tenant_a.seaql_migrations").await;
    assert!(n.is_empty(), "{n:?}");
}

#[test]
fn bad_input_is_one_line_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let one = |args: &[&str], code: i32, words: &[&str]| {
        let r = run_in(d, args, &[]);
        r.expect_code(code);
        let line = r.error_line().to_owned();
        for w in words {
            assert!(line.contains(w), "{args:?}: {line}");
        }
        assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    };
    one(
        &["fleet", "status"],
        2,
        &["dbtool-fleet.toml", "does not exist"],
    );
    one(
        &["fleet", "status", "--file", "nope.toml"],
        2,
        &["./nope.toml", "does not exist"],
    );
    std::fs::write(
        d.join("bad.toml"),
        "[[target]]\nname = \"a\"\nurl = \"postgres://u:hunter2@h/db\n",
    )
    .unwrap();
    one(
        &["fleet", "status", "--file", "bad.toml"],
        2,
        &["bad.toml", "line 3"],
    );
    std::fs::write(
        d.join("key.toml"),
        "[[target]]\nname = \"a\"\nurl = \"postgres://u:hunter2@h/db\"\nregion = \"eu\"\n",
    )
    .unwrap();
    one(
        &["fleet", "status", "--file", "key.toml"],
        2,
        &["region", "line 4", "the keys of a [[target]]"],
    );
    std::fs::write(
        d.join("app.toml"),
        "[[target]]\nname = \"a\"\nurl = \"sqlite://a.db\"\napp = \"blog\"\n",
    )
    .unwrap();
    one(
        &["fleet", "status", "--file", "app.toml"],
        2,
        &["target 'a'", "blog"],
    );
    one(
        &["fleet", "status", "--file", "key.toml", "--shard", "4/3"],
        2,
        &["4/3", "I/N"],
    );
    one(
        &["fleet", "status", "--file", "key.toml", "--shard", "one"],
        2,
        &["one"],
    );
    one(
        &["fleet", "downgrade", "-1", "--yes", "--file", "key.toml"],
        2,
        &["relative target -1"],
    );
    one(
        &["fleet", "downgrade", "--yes", "--file", "key.toml"],
        2,
        &["absolute target"],
    );
    one(
        &["fleet", "upgrade", "+1", "--file", "key.toml"],
        2,
        &["relative target +1"],
    );
    one(
        &["fleet", "downgrade", "base", "--file", "key.toml"],
        7,
        &["--yes", "nothing was changed"],
    );
    one(
        &["fleet", "upgrade", "--sqlite-glob", "none/*.db"],
        2,
        &["none/*.db", "matches no file"],
    );
    one(
        &[
            "fleet",
            "upgrade",
            "--server",
            "postgres://u:hunter2@127.0.0.1:1/postgres",
        ],
        2,
        &["--match"],
    );
    one(
        &[
            "fleet",
            "upgrade",
            "--server",
            "postgres://u:hunter2@127.0.0.1:1/postgres",
            "--match",
            "x%",
        ],
        6,
        &["127.0.0.1:1"],
    );
    one(
        &["fleet", "status", "--file", "key.toml", "-j", "0"],
        2,
        &["0"],
    );
    // The --json form of a bad input is one error document.
    let r = run_in(d, &["--json", "fleet", "status", "--file", "key.toml"], &[]);
    r.expect_code(2);
    assert_eq!(r.json()["error"]["code"], 2);
    // help with examples
    let h = run_in(d, &["fleet", "--help"], &[]);
    assert!(
        h.ok().stdout.contains("Examples:") && h.stdout.contains("[[target]]"),
        "{}",
        h.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_stops_every_target_between_steps() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["a", "b", "c", "d"] {
        std::fs::File::create(dir.path().join(format!("{n}.db"))).unwrap();
    }
    let child = dbtool_bare(dir.path())
        .args([
            "--app",
            "fixture",
            "--json",
            "fleet",
            "upgrade",
            "--sqlite-glob",
            "*.db",
            "-j",
            "2",
            "--keep-going",
        ])
        .env("DBTOOL_FIXTURE_SLEEP_MS", "3000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbtool");
    // The first two are in their slow second step once their first one is committed.
    for n in ["a", "b"] {
        let url = format!(
            "sqlite://{}?mode=ro",
            dir.path().join(format!("{n}.db")).display()
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let c = connect(&url).await;
            let found = rows_on(&c, "SELECT name FROM sqlite_master WHERE name = 'alpha'").await;
            c.close().await.ok();
            if !found.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{n} never got to its first step"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let r = Run::from(child.wait_with_output().unwrap());
    r.expect_code(130);
    let t = by_target(&r.json());
    for n in ["a.db", "b.db"] {
        assert_eq!(t[n]["outcome"], "interrupted", "{}", t[n]);
        // It finished the step it was in, and stopped before the next.
        assert_eq!(t[n]["to"], "f002_create_beta_slowly", "{}", t[n]);
    }
    for n in ["c.db", "d.db"] {
        assert_eq!(t[n]["outcome"], "skipped", "{}", t[n]);
        assert!(
            t[n]["message"].as_str().unwrap().contains("SIGINT"),
            "{}",
            t[n]
        );
        assert_eq!(std::fs::metadata(dir.path().join(n)).unwrap().len(), 0);
    }
}

#[test]
fn tags_select_and_each_finished_target_is_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("dbtool-fleet.toml"),
        "[[target]]\nname = \"eu-1\"\nurl = \"sqlite://${FLEET_DIR:-.}/eu1.db\"\ntags = [\"eu\"]\n\n\
         [[target]]\nname = \"us-1\"\nurl = \"sqlite://us1.db\"\ntags = [\"us\"]\n\n\
         [[target]]\nname = \"eu-2\"\nurl = \"sqlite://eu2.db\"\ntags = [\"eu\", \"canary\"]\n",
    )
    .unwrap();
    let r = run_in(d, &["fleet", "upgrade", "--tag", "eu"], &[]);
    r.ok();
    assert!(d.join("eu1.db").exists() && d.join("eu2.db").exists());
    assert!(!d.join("us1.db").exists(), "us-1 is not selected");
    // A line per finished target on stderr (no terminal), the canary first.
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("fleet: "))
        .collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert!(
        lines[0].starts_with("fleet: eu-2 ok: base -> "),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("2 ok of 2 targets"), "{}", r.stdout);
    // --progress json: one event per target, nothing else.
    let r = run_in(d, &["--progress", "json", "fleet", "status"], &[]);
    r.ok();
    let events: Vec<Value> = r
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.len(), 3, "{}", r.stderr);
    assert!(events.iter().all(|e| e["event"] == "target_finished"));
    let us = events.iter().find(|e| e["target"] == "us-1").unwrap();
    assert_eq!(
        us["message"], "3 migrations pending",
        "a missing file reads as empty: {us}"
    );
    assert!(!d.join("us1.db").exists(), "status created nothing");
    // -q: only the result.
    let r = run_in(d, &["-q", "fleet", "status", "--tag", "us"], &[]);
    assert!(r.ok().stderr.is_empty(), "{}", r.stderr);
    let r = run_in(d, &["fleet", "status", "--tag", "asia"], &[]);
    r.expect_code(2);
    assert!(r.error_line().contains("asia"), "{}", r.stderr);
}
