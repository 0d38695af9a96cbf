//! The bad-input harness (issue 12): a case is one run of the real binary that must fail
//! cleanly. [`run_cases`] asserts, for every case, the exit code; that stderr holds exactly
//! one `error:` line, last, naming the offending value or its source (only warnings and
//! progress may precede it); that no secret appears on stdout or stderr in any form; that
//! stdout is empty (one JSON error document with `--json`); that the database is unchanged
//! (catalog and data, [`snapshot`]); and that nothing was created in the working directory.
//! Add cases for other areas in their own test files with [`case`] and the same runner.

use super::introspect::{columns, dump, tables};
use super::{Backend, Run, TestDb};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use std::path::{Path, PathBuf};

/// The password every case's URL carries where the backend accepts one; it must never be
/// printed.
pub const SECRET: &str = "Pw-S3cret";

/// One bad input and what dbtool must answer.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub args: Vec<String>,
    /// Extra environment; `DATABASE_URL` here replaces the fixture's.
    pub env: Vec<(String, String)>,
    /// Run without `DATABASE_URL`.
    pub no_url: bool,
    /// Files written into the (fresh) working directory first.
    pub files: Vec<(String, Vec<u8>)>,
    pub stdin: String,
    pub code: i32,
    /// Substrings of the error line: the offending value, or where it came from.
    pub names: Vec<String>,
    /// Further secrets besides [`SECRET`] that must not appear.
    pub secrets: Vec<String>,
    /// The backends the case applies to (None: every backend).
    pub only: Option<Vec<Backend>>,
    /// `chmod` modes applied to written files (`(name, mode)`).
    pub modes: Vec<(String, u32)>,
}

/// A case running `dbtool ARGS` in a fresh working directory with the fixture's URL.
/// Placeholders in arguments, environment and files: `{url}` (the fixture's URL, with
/// [`SECRET`] as its password where possible), `{dir}` (the working directory), `{db}` (the
/// database name), `{file}` (the SQLite file), `{secret}`.
pub fn case(name: &str, args: &[&str]) -> Case {
    Case {
        name: name.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        no_url: false,
        files: Vec::new(),
        stdin: String::new(),
        code: 2,
        names: Vec::new(),
        secrets: Vec::new(),
        only: None,
        modes: Vec::new(),
    }
}

impl Case {
    pub fn code(mut self, code: i32) -> Case {
        self.code = code;
        self
    }
    pub fn names(mut self, names: &[&str]) -> Case {
        self.names.extend(names.iter().map(|s| s.to_string()));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Case {
        self.env.push((k.into(), v.into()));
        self
    }
    /// `DATABASE_URL` for this case instead of the fixture's.
    pub fn url(self, url: &str) -> Case {
        self.env("DATABASE_URL", url)
    }
    pub fn no_url(mut self) -> Case {
        self.no_url = true;
        self
    }
    pub fn file(mut self, name: &str, text: impl AsRef<[u8]>) -> Case {
        self.files.push((name.into(), text.as_ref().to_vec()));
        self
    }
    pub fn mode(mut self, name: &str, mode: u32) -> Case {
        self.modes.push((name.into(), mode));
        self
    }
    pub fn stdin(mut self, s: &str) -> Case {
        self.stdin = s.into();
        self
    }
    pub fn secret(mut self, s: &str) -> Case {
        self.secrets.push(s.into());
        self
    }
    pub fn only(mut self, backends: &[Backend]) -> Case {
        self.only = Some(backends.to_vec());
        self
    }
    fn applies_to(&self, b: Backend) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&b))
    }
}

/// What the cases run against: a database and the URL to reach it.
pub struct Fixture<'a> {
    pub db: &'a TestDb,
    /// With [`SECRET`] as the password where the backend's test server accepts one.
    pub url: String,
}

impl<'a> Fixture<'a> {
    /// The test database with [`SECRET`] in its URL: PostgreSQL's trust authentication
    /// accepts any password; MariaDB's root has none, so its URL stays as it is there.
    pub fn new(db: &'a TestDb) -> Fixture<'a> {
        let url = match db.backend {
            Backend::Postgres => db
                .url
                .replacen("postgres@", &format!("postgres:{SECRET}@"), 1),
            _ => db.url.clone(),
        };
        Fixture { db, url }
    }

    pub fn with_url(db: &'a TestDb, url: String) -> Fixture<'a> {
        Fixture { db, url }
    }

    fn sqlite_file(&self) -> PathBuf {
        self.db.dir().join("test.db")
    }
}

fn substitute(s: &str, fx: &Fixture, dir: &Path) -> String {
    s.replace("{url}", &fx.url)
        .replace("{dir}", &dir.display().to_string())
        .replace("{db}", &fx.db.name)
        .replace("{file}", &fx.sqlite_file().display().to_string())
        .replace("{secret}", SECRET)
}

/// The forms a secret may be printed in.
fn forms(secret: &str) -> Vec<String> {
    let mut enc = String::new();
    for b in secret.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    vec![secret.to_owned(), enc]
}

/// Progress and diagnostics that may precede the error line.
/// Progress lines the engine's renderer writes on stderr (step starts and ends, finishing a
/// half-done step, adoption).
const PROGRESS: &[&str] = &[
    "applying ",
    "applied ",
    "rolling back ",
    "rolled back ",
    "finishing ",
    "adopted ",
    "recorded the checksums ",
    "created schema ",
    "recognised ",
];

fn allowed_before_error(line: &str, verbose: bool) -> bool {
    line.starts_with("warning: ")
        || line.starts_with("waiting for ")
        || PROGRESS.iter().any(|p| line.starts_with(p))
        || (verbose
            && ["TRACE ", "DEBUG ", " INFO ", " WARN ", "ERROR "]
                .iter()
                .any(|p| line.starts_with(p)))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs every case that applies to the fixture's backend, then panics with all failures.
pub async fn run_cases(fx: &Fixture<'_>, cases: &[Case]) {
    let before = snapshot(fx.db).await;
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cases.iter().filter(|c| c.applies_to(fx.db.backend)) {
        ran += 1;
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in &c.files {
            let text = substitute(&String::from_utf8_lossy(text), fx, dir.path());
            let bytes = if text.contains('\u{fffd}') {
                // Not UTF-8 on purpose: written as given.
                c.files.iter().find(|(n, _)| n == name).unwrap().1.clone()
            } else {
                text.into_bytes()
            };
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&path, bytes).expect("write case file");
        }
        for (name, mode) in &c.modes {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path().join(name),
                std::fs::Permissions::from_mode(*mode),
            )
            .expect("chmod case file");
        }
        let files_before = listing(dir.path());
        let mut cmd = super::dbtool_bare(dir.path());
        if !c.no_url {
            cmd.env("DATABASE_URL", &fx.url);
        }
        for (k, v) in &c.env {
            cmd.env(k, substitute(v, fx, dir.path()));
        }
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| substitute(a, fx, dir.path()))
            .collect();
        cmd.args(&args);
        let run = super::run_with_stdin(&mut cmd, &c.stdin);
        let problems = check(c, &run, &args);
        let files_after = listing(dir.path());
        let mut problems = problems;
        if files_after != files_before {
            problems.push(format!(
                "the working directory changed: {files_before:?} -> {files_after:?}"
            ));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case `{}` ({:?}, dbtool {}):\n  {}\n  --- stdout\n{}\n  --- stderr\n{}",
                c.name,
                fx.db.backend,
                args.join(" "),
                problems.join("\n  "),
                run.stdout,
                run.stderr
            ));
        }
        let after = snapshot(fx.db).await;
        if after != before {
            failures.push(format!(
                "case `{}` ({:?}) changed the database:\n--- before\n{before}\n--- after\n{after}",
                c.name, fx.db.backend
            ));
            break;
        }
    }
    assert!(ran > 0, "no case applies to {:?}", fx.db.backend);
    assert!(
        failures.is_empty(),
        "{} of {ran} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// What is wrong with one run, as a list of sentences.
fn check(c: &Case, run: &Run, args: &[String]) -> Vec<String> {
    let mut p = Vec::new();
    if run.code != c.code {
        p.push(format!("exit {} instead of {}", run.code, c.code));
    }
    let verbose = args.iter().any(|a| a.starts_with("-v"));
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
    if errors.len() != 1 {
        p.push(format!(
            "{} `error:` lines on stderr instead of 1",
            errors.len()
        ));
    }
    match lines.last() {
        Some(last) if last.starts_with("error: ") => {
            for n in &c.names {
                if !last.contains(n.as_str()) {
                    p.push(format!("the error line does not name `{n}`"));
                }
            }
        }
        _ => p.push("the last stderr line is not the error".into()),
    }
    for l in &lines[..lines.len().saturating_sub(1)] {
        if !allowed_before_error(l, verbose) {
            p.push(format!(
                "stderr line before the error is not a warning or progress: {l}"
            ));
        }
    }
    for s in std::iter::once(SECRET.to_owned()).chain(c.secrets.iter().cloned()) {
        for f in forms(&s) {
            if run.stdout.contains(&f) || run.stderr.contains(&f) {
                p.push(format!("the secret leaked as `{f}`"));
            }
        }
    }
    if args.iter().any(|a| a == "--json") {
        match serde_json::from_str::<serde_json::Value>(&run.stdout) {
            Ok(doc) => {
                if doc["error"]["code"] != c.code {
                    p.push(format!(
                        "the JSON error code is {} instead of {}",
                        doc["error"]["code"], c.code
                    ));
                }
                let msg = doc["error"]["message"].as_str().unwrap_or("");
                if !lines.last().is_some_and(|l| l.ends_with(msg)) {
                    p.push("the JSON message differs from the error line".into());
                }
            }
            Err(e) => p.push(format!("stdout is not one JSON document: {e}")),
        }
    } else if !run.stdout.is_empty() {
        p.push("stdout is not empty".into());
    }
    p
}

/// A connection that cannot create or change anything (SQLite: read-only).
async fn inspect(db: &TestDb) -> Option<DatabaseConnection> {
    let url = match db.backend {
        Backend::Sqlite => {
            let f = db.dir().join("test.db");
            if !f.exists() {
                return None;
            }
            format!("sqlite://{}?mode=ro", f.display())
        }
        _ => db.url.clone(),
    };
    let mut opt = ConnectOptions::new(url);
    opt.sqlx_logging(false)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None);
    Some(
        Database::connect(opt)
            .await
            .expect("connect for the snapshot"),
    )
}

/// The application's objects and data: schemas (PostgreSQL), tables with columns, indexes
/// and foreign keys, and every row (the tracking table's rows included). dbtool's own
/// bookkeeping may change: an empty tracking table reads as none, and `dbtool_*` tables are
/// left out. A SQLite file that does not exist reads as such.
pub async fn snapshot(db: &TestDb) -> String {
    let Some(c) = inspect(db).await else {
        return "no database file".into();
    };
    let backend = c.get_database_backend();
    let mut out = String::new();
    if backend == DbBackend::Postgres {
        for r in super::rows_on(
            &c,
            "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1",
            1,
        )
        .await
        {
            out += &format!("schema {}\n", r[0].clone().unwrap_or_default());
        }
    }
    out += &dump(&c).await;
    for t in tables(&c).await {
        if t.starts_with("dbtool_") {
            continue;
        }
        let cols = columns(&c, &t).await;
        let q = |n: &str| match backend {
            DbBackend::MySql => format!("`{n}`"),
            _ => format!("\"{n}\""),
        };
        let cell = |n: &str| match backend {
            DbBackend::Postgres => format!("coalesce({}::text, 'NULL')", q(n)),
            DbBackend::MySql => format!("coalesce(hex({}), 'NULL')", q(n)),
            _ => format!("coalesce(hex({}), 'NULL')", q(n)),
        };
        let row = match backend {
            DbBackend::Sqlite => cols
                .iter()
                .map(|col| cell(&col.name))
                .collect::<Vec<_>>()
                .join(" || '|' || "),
            _ => format!(
                "concat_ws('|', {})",
                cols.iter()
                    .map(|col| cell(&col.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let sql = format!("SELECT {row} FROM {} ORDER BY 1", q(&t));
        let rows = c
            .query_all_raw(Statement::from_string(backend, sql.clone()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if t == "seaql_migrations" && rows.is_empty() {
            continue;
        }
        out += &format!("rows of {t}:\n");
        for r in rows {
            let v: String = r
                .try_get_by_index(0)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            out += &format!("  {v}\n");
        }
    }
    c.close().await.ok();
    out
}
