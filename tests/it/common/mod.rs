//! Test support: a fresh, uniquely named database per test on each backend (dropped
//! afterwards), and a way to run the real `dbtool` binary against it.
#![allow(dead_code)]

pub mod as_postgres;
pub mod badinput;
pub mod introspect;
pub mod pgbouncer;
pub mod pgrole;
pub mod standby;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
    MySql,
}

/// Where the admin connections go; override for a non-default machine.
fn pg_host() -> String {
    std::env::var("DBTOOL_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}
fn mysql_host() -> String {
    std::env::var("DBTOOL_TEST_MYSQL_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One database that lives as long as the value. PostgreSQL and MariaDB databases are
/// created through the `psql` / `mariadb` clients and dropped on `Drop`; SQLite lives in a
/// temporary directory.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub name: String,
    dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new(backend: Backend, test: &str) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let mut name: String = format!("t_{}_{}_{}", std::process::id(), n, test)
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        name.truncate(63);
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Postgres => {
                admin_pg(&format!("CREATE DATABASE {name}"));
                format!("postgres://postgres@{}:5432/{name}", pg_host())
            }
            Backend::MySql => {
                admin_mysql(&format!(
                    "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ));
                format!("mysql://root@{}:3306/{name}", mysql_host())
            }
            Backend::Sqlite => {
                format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display())
            }
        };
        TestDb {
            backend,
            url,
            name,
            dir,
        }
    }

    /// A scratch directory belonging to this test (the working directory of `dbtool`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn connect(&self) -> DatabaseConnection {
        let mut opt = sea_orm::ConnectOptions::new(self.url.clone());
        // No idle or lifetime limits: sqlx's pool maintenance task then never runs (after 10
        // minutes in a long test process it can spin on a miscounted idle queue).
        opt.sqlx_logging(false)
            .max_connections(2)
            .idle_timeout(None)
            .max_lifetime(None);
        Database::connect(opt)
            .await
            .expect("connect to test database")
    }

    pub fn db_backend(&self) -> DbBackend {
        match self.backend {
            Backend::Postgres => DbBackend::Postgres,
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::MySql => DbBackend::MySql,
        }
    }

    /// A `dbtool` command aimed at this database, isolated from the caller's environment.
    pub fn cmd(&self) -> Command {
        let mut c = dbtool_bare(self.dir());
        c.env("DATABASE_URL", &self.url);
        c
    }

    /// Runs `dbtool ARGS` against this database with no standard input.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// [`TestDb::run`] with extra environment variables (the fixture app's switches).
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd();
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

    /// Starts `dbtool ARGS` in the background, with no standard input and both outputs piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dbtool")
    }

    /// Runs `dbtool ARGS` with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        run_with_stdin(self.cmd().args(args), input)
    }

    /// Executes one statement through a short-lived connection.
    pub async fn exec(&self, sql: &str) {
        let c = self.connect().await;
        c.execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.close().await.ok();
    }

    /// The first column of every row, as text (via CAST on the server side where needed).
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        let c = self.connect().await;
        let rows = c
            .query_all_raw(Statement::from_string(self.db_backend(), sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let out = rows
            .iter()
            .map(|r| {
                r.try_get_by_index::<Option<String>>(0)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .unwrap_or_else(|| "NULL".into())
            })
            .collect();
        c.close().await.ok();
        out
    }

    /// The first `ncols` columns of every row, as text (`None` for SQL NULL). Cast on the server
    /// side where a column is not text (`::text`, `CAST(... AS CHAR)`, `CAST(... AS TEXT)`).
    pub async fn rows(&self, sql: &str, ncols: usize) -> Vec<Vec<Option<String>>> {
        let c = self.connect().await;
        let out = rows_on(&c, sql, ncols).await;
        c.close().await.ok();
        out
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let c = self.connect().await;
        let row = c
            .query_one_raw(Statement::from_string(self.db_backend(), sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .expect("one row");
        let n = row
            .try_get_by_index::<i64>(0)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.close().await.ok();
        n
    }

    /// Names of the user tables in this database, sorted.
    pub async fn tables(&self) -> Vec<String> {
        introspect::tables(self).await
    }
}

/// [`TestDb::rows`] on a connection you already hold (or a transaction).
pub async fn rows_on(
    conn: &impl ConnectionTrait,
    sql: &str,
    ncols: usize,
) -> Vec<Vec<Option<String>>> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| {
            (0..ncols)
                .map(|i| {
                    r.try_get_by_index::<Option<String>>(i)
                        .unwrap_or_else(|e| panic!("{sql}: column {i}: {e}"))
                })
                .collect()
        })
        .collect()
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self.backend {
            Backend::Postgres => admin_pg(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )),
            Backend::MySql => admin_mysql(&format!("DROP DATABASE IF EXISTS {}", self.name)),
            Backend::Sqlite => {}
        }
    }
}

fn admin_pg(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            &pg_host(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qAtX",
            "-c",
            sql,
        ])
        .output()
        .expect("psql must be installed for the PostgreSQL tests");
    assert!(
        out.status.success(),
        "PostgreSQL admin command failed (is the server up? .ci/run starts it): {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn admin_mysql(sql: &str) {
    let out = Command::new("mariadb")
        .args(["-h", &mysql_host(), "-uroot", "-e", sql])
        .output()
        .expect("the mariadb client must be installed for the MariaDB tests");
    assert!(
        out.status.success(),
        "MariaDB admin command failed (is the server up? .ci/run starts it): {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dbtool"))
}

/// `dbtool` with a clean environment: no inherited configuration, no colour, run in `cwd`.
pub fn dbtool_bare(cwd: &Path) -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars() {
        // libpq's variables too: dbtool follows them (PGHOST, PGPASSWORD, PGSERVICE, ...).
        if k.starts_with("DBTOOL_")
            || k.starts_with("DATABASE_URL")
            || k.starts_with("PG")
            || k == "RUST_LOG"
        {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1").current_dir(cwd);
    c
}

pub fn run_with_stdin(cmd: &mut Command, input: &str) -> Run {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbtool");
    // dbtool may stop before it reads its input (a bad argument): a closed pipe is fine.
    if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    Run::from(child.wait_with_output().expect("wait dbtool"))
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
    #[track_caller]
    pub fn ok(&self) -> &Run {
        self.expect_code(0)
    }
    /// The one `error:` line on stderr, which comes last (progress lines may precede it);
    /// stdout stays empty.
    #[track_caller]
    pub fn error_line(&self) -> &str {
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert!(
            errors.len() == 1 && self.stderr.trim_end().lines().last() == Some(errors[0]),
            "one error line, last, expected:\n{}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "nothing on stdout: {}", self.stdout);
        errors[0]
    }

    /// The first command in backticks on stderr (a hint), panicking when there is none.
    #[track_caller]
    pub fn hint(&self) -> String {
        self.stderr
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no hint: {}", self.stderr))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Defines one `#[tokio::test]` per backend for each scenario `async fn name(db: TestDb)`.
#[macro_export]
macro_rules! on_all_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use $crate::common::{Backend, TestDb};
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(TestDb::new(Backend::Postgres, stringify!($scenario))).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(TestDb::new(Backend::Sqlite, stringify!($scenario))).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    super::$scenario(TestDb::new(Backend::MySql, stringify!($scenario))).await
                }
            }
        )*
    };
}
