//! Configuration → connection: which database (URL, backend, default SQLite file), which
//! app, how long to wait for the server and for the migration lock. What may stand between
//! dbtool and a PostgreSQL server (a pooler) and what kind of server it is (a standby) is
//! `postgres`'s business.

use crate::exit::{coded, Exit};
use crate::output::{add_secret, Output};
use anyhow::{Context as _, Result};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The file used when no database URL is configured at all.
pub const DEFAULT_SQLITE_FILE: &str = "dbtool.db";

/// What a command intends to do with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Never creates or changes anything, not even the SQLite file.
    ReadOnly,
    /// May create the SQLite file and write.
    Write,
}

/// A database location, validated, with its secret registered for masking.
#[derive(Debug, Clone)]
pub struct DbLocation {
    url: String,
    /// The URL with its password replaced by `***`, for messages.
    pub display: String,
    pub backend: DbBackend,
    /// The SQLite file, when the backend is SQLite and the database is a file.
    pub sqlite_file: Option<PathBuf>,
    /// True when no URL was configured and the default SQLite file is used.
    pub implicit: bool,
    /// PostgreSQL through a transaction-pooling connection pooler, as the URL says with
    /// `pgbouncer=true` (Prisma's convention): migrations refuse it.
    pub pooled: bool,
}

impl DbLocation {
    /// Parses a configured URL (or none: the default SQLite file in `cwd`).
    pub fn parse(url: Option<&str>) -> Result<DbLocation> {
        let Some(raw) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            let file = PathBuf::from(DEFAULT_SQLITE_FILE);
            return Ok(DbLocation {
                url: format!("sqlite://{DEFAULT_SQLITE_FILE}"),
                display: format!("sqlite://{DEFAULT_SQLITE_FILE}"),
                backend: DbBackend::Sqlite,
                sqlite_file: Some(file),
                implicit: true,
                pooled: false,
            });
        };
        let parsed = url::Url::parse(raw).map_err(|e| {
            coded(
                Exit::Usage,
                format!(
                    "invalid database URL '{}': {e}; expected e.g. postgres://user:password@host:5432/dbname, mysql://user@host/dbname or sqlite://path/to/file.db",
                    mask_unparsed(raw)
                ),
            )
        })?;
        if let Some(pw) = parsed.password() {
            add_secret(pw);
        }
        let mut url = raw.to_owned();
        let backend = match parsed.scheme() {
            "postgres" | "postgresql" => DbBackend::Postgres,
            "mysql" => DbBackend::MySql,
            "mariadb" => {
                url = format!("mysql{}", &raw["mariadb".len()..]);
                DbBackend::MySql
            }
            "sqlite" => DbBackend::Sqlite,
            other => {
                return Err(coded(
                    Exit::Usage,
                    format!("unsupported database URL scheme '{other}': use postgres://, postgresql://, mysql://, mariadb:// or sqlite://"),
                ))
            }
        };
        let display = mask_url(&parsed);
        let sqlite_file = (backend == DbBackend::Sqlite)
            .then(|| sqlite_path(raw))
            .flatten();
        let (url, pooled) = take_pgbouncer_flag(&url, &parsed, backend, &display)?;
        Ok(DbLocation {
            url,
            display,
            backend,
            sqlite_file,
            implicit: false,
            pooled,
        })
    }

    /// The real URL, password included: only for the driver.
    pub fn secret_url(&self) -> &str {
        &self.url
    }
}

/// `pgbouncer=true|false` in a PostgreSQL URL says whether it goes through a transaction
/// pooler (Prisma's convention); the driver does not know the parameter, so it is removed.
fn take_pgbouncer_flag(
    url: &str,
    parsed: &url::Url,
    backend: DbBackend,
    display: &str,
) -> Result<(String, bool)> {
    let Some((_, value)) = parsed.query_pairs().find(|(k, _)| k == "pgbouncer") else {
        return Ok((url.to_owned(), false));
    };
    if backend != DbBackend::Postgres {
        return Err(coded(
            Exit::Usage,
            format!("pgbouncer={value} in the database URL {display} is only for PostgreSQL URLs; remove it"),
        ));
    }
    let pooled = match value.as_ref() {
        "true" => true,
        "false" => false,
        other => {
            return Err(coded(
                Exit::Usage,
                format!("pgbouncer={other} in the database URL {display}: use pgbouncer=true (a transaction-pooling PgBouncer) or leave it out"),
            ))
        }
    };
    let mut stripped = parsed.clone();
    let rest: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "pgbouncer")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if rest.is_empty() {
        stripped.set_query(None);
    } else {
        stripped.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok((stripped.to_string(), pooled))
}

/// The URL as shown to people: the password replaced by `***`.
pub fn mask_url(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// For a URL that did not parse: hide everything between `:` and `@` of the authority.
fn mask_unparsed(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &raw[s + 3..at];
            match auth.find(':') {
                Some(c) => format!("{}{}:***{}", &raw[..s + 3], &auth[..c], &raw[at..]),
                None => raw.to_owned(),
            }
        }
        _ => raw.to_owned(),
    }
}

/// The file behind a `sqlite:` URL, or None for in-memory databases.
fn sqlite_path(raw: &str) -> Option<PathBuf> {
    let rest = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Connection settings shared by every command.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    pub schema: Option<String>,
    pub wait: Option<Duration>,
    pub verbose: u8,
}

/// Opens a one-connection pool. Returns None for a read-only open of a SQLite file that does
/// not exist yet. A write on a PostgreSQL hot standby is refused here (exit 17).
pub async fn connect(
    loc: &DbLocation,
    access: Access,
    settings: &ConnectSettings,
    out: &Output,
) -> Result<Option<DatabaseConnection>> {
    open(loc, access, settings, out, false).await
}

/// The connection that runs migrations and holds the migration lock, a session lock: it needs
/// a server session of its own, so a transaction pooler is refused (exit 18), whether the URL
/// says so (`pgbouncer=true`) or the pooler shows it (`postgres::check`).
pub async fn connect_migrate(
    loc: &DbLocation,
    settings: &ConnectSettings,
    out: &Output,
) -> Result<DatabaseConnection> {
    if loc.pooled {
        return Err(crate::postgres::pooler_refusal(
            loc,
            "it is marked as one (pgbouncer=true)",
        ));
    }
    let db = open(loc, Access::Write, settings, out, true).await?;
    db.context("no connection was opened")
}

/// `session`: the connection is a migration session (see `postgres::options`).
async fn open(
    loc: &DbLocation,
    access: Access,
    settings: &ConnectSettings,
    out: &Output,
    session: bool,
) -> Result<Option<DatabaseConnection>> {
    if let Some(file) = &loc.sqlite_file {
        if access == Access::ReadOnly && !file.exists() {
            return Ok(None);
        }
        if loc.implicit && access == Access::Write && !file.exists() {
            out.info(&format!(
                "creating SQLite database {} (no DATABASE_URL configured)",
                show_path(file)
            ));
        } else if loc.implicit {
            out.info(&format!(
                "using SQLite database {} (no DATABASE_URL configured)",
                show_path(file)
            ));
        }
    }
    let observed = Arc::new(crate::postgres::Observed::default());
    let mut opt = ConnectOptions::new(loc.secret_url().to_owned());
    opt.max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        // The pool's only connection holds the session migration lock: sqlx must never retire
        // it (by default after 10 min idle, e.g. at a prompt, or 30 min of age).
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(settings.verbose >= 2)
        .sqlx_logging_level(log::LevelFilter::Info);
    match loc.backend {
        DbBackend::Postgres => {
            opt.set_application_name("dbtool");
            crate::postgres::options(&mut opt, access, settings, session, &observed);
        }
        DbBackend::Sqlite => {
            let write = access == Access::Write;
            opt.map_sqlx_sqlite_opts(move |o| o.create_if_missing(write).read_only(!write));
        }
        _ => {}
    }
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut said_waiting = false;
    tracing::info!("connecting to {} ({access:?})", loc.display);
    // sqlx's pool retries a refused connection until its acquire timeout; a bare TCP probe
    // (it sends nothing, which PostgreSQL deliberately does not log) fails fast instead,
    // and is what --wait polls.
    if let Some((host, port)) = tcp_endpoint(loc) {
        loop {
            match probe(&host, port).await {
                Ok(()) => break,
                Err(e) => {
                    let waiting_allowed =
                        settings.wait.is_some_and(|w| started.elapsed() + delay < w);
                    if !waiting_allowed {
                        let hint = if settings.wait.is_some() {
                            "the server did not come up within --wait-timeout"
                        } else {
                            "is the server running and the host/port right? Use --wait to wait for it"
                        };
                        return Err(coded(
                            Exit::Connection,
                            format!("cannot connect to {}: {e}; {hint}", loc.display),
                        ));
                    }
                    if !said_waiting {
                        out.info(&format!(
                            "waiting for the database at {} to accept connections ({e})",
                            loc.display
                        ));
                        said_waiting = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
    loop {
        match Database::connect(opt.clone()).await {
            Ok(db) => {
                tracing::info!(
                    "connected in {:.1} ms",
                    started.elapsed().as_secs_f64() * 1000.0
                );
                let db = match loc.backend {
                    DbBackend::Postgres => {
                        crate::postgres::check(db, loc, access, settings, session, &observed)
                            .await?
                    }
                    _ => db,
                };
                if let (DbBackend::Postgres, Access::Write, Some(schema)) =
                    (loc.backend, access, &settings.schema)
                {
                    ensure_schema(&db, schema).await?;
                }
                return Ok(Some(db));
            }
            Err(e) => {
                let failure = classify(&e);
                let waiting_allowed = settings.wait.is_some_and(|w| started.elapsed() + delay < w);
                if failure.retryable() && waiting_allowed {
                    if !said_waiting {
                        out.info(&format!(
                            "waiting for the database at {} to accept connections ({})",
                            loc.display,
                            failure.short()
                        ));
                        said_waiting = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    continue;
                }
                return Err(connect_error(loc, &e, failure, settings));
            }
        }
    }
}

/// `--schema` on a write command: the schema must exist before the lock (whose key is the
/// schema) and the tracking table can go into it. Read-only commands leave a missing schema
/// missing: `search_path` then names no schema and the database reads as empty.
async fn ensure_schema(db: &DatabaseConnection, schema: &str) -> Result<()> {
    use sea_orm::ConnectionTrait;
    let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
    tracing::info!("ensuring schema {quoted} exists");
    db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
        .await
        .map_err(|e| {
            let detail = match sqlx_error(&e) {
                Some(sea_orm::sqlx::Error::Database(d)) => d.message().to_owned(),
                _ => e.to_string(),
            };
            coded(
                Exit::Failure,
                format!("cannot create schema {quoted}: {detail}; create it first (CREATE SCHEMA {quoted}) or use a user that may"),
            )
        })?;
    Ok(())
}

/// Host and port of a TCP server URL; None for SQLite and Unix sockets.
fn tcp_endpoint(loc: &DbLocation) -> Option<(String, u16)> {
    let u = url::Url::parse(loc.secret_url()).ok()?;
    if u.query_pairs().any(|(k, _)| k == "host" || k == "socket") {
        return None;
    }
    let host = u.host_str().filter(|h| !h.is_empty())?.to_owned();
    let port = u.port().unwrap_or(match loc.backend {
        DbBackend::Postgres => 5432,
        _ => 3306,
    });
    match loc.backend {
        DbBackend::Postgres | DbBackend::MySql => {
            Some((host.trim_matches(['[', ']']).to_owned(), port))
        }
        _ => None,
    }
}

/// Opens and closes a TCP connection, with a short timeout.
async fn probe(host: &str, port: u16) -> std::result::Result<(), String> {
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{host}:{port}: {e}")),
        Err(_) => Err(format!("{host}:{port}: no answer within 5s")),
    }
}

fn show_path(p: &Path) -> String {
    if p.is_relative() && !p.starts_with(".") {
        format!("./{}", p.display())
    } else {
        p.display().to_string()
    }
}

/// Why a connection attempt failed, as far as the operator needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnFailure {
    Unreachable,
    Starting,
    /// The TLS handshake failed (sslmode, certificates): retrying cannot help.
    Tls,
    Auth,
    MissingDatabase,
    Other,
}

impl ConnFailure {
    fn retryable(self) -> bool {
        matches!(self, ConnFailure::Unreachable | ConnFailure::Starting)
    }
    fn short(self) -> &'static str {
        match self {
            ConnFailure::Unreachable => "not reachable yet",
            ConnFailure::Starting => "starting up",
            ConnFailure::Tls => "TLS failed",
            ConnFailure::Auth => "authentication failed",
            ConnFailure::MissingDatabase => "database does not exist",
            ConnFailure::Other => "error",
        }
    }
}

fn sqlx_error(e: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e.as_ref()),
        _ => None,
    }
}

pub fn classify(e: &DbErr) -> ConnFailure {
    use sea_orm::sqlx::Error as S;
    match sqlx_error(e) {
        Some(S::Tls(_)) => ConnFailure::Tls,
        // rustls reports a rejected certificate as an I/O error during the handshake.
        Some(S::Io(io)) if io.to_string().contains("certificate") => ConnFailure::Tls,
        Some(S::Io(_)) | Some(S::PoolTimedOut) | Some(S::PoolClosed) => ConnFailure::Unreachable,
        Some(S::Database(db)) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                "57P03" => ConnFailure::Starting,
                "28P01" | "28000" | "1045" | "1044" => ConnFailure::Auth,
                "3D000" | "1049" => ConnFailure::MissingDatabase,
                _ => {
                    let m = db.message();
                    if m.contains("unable to open database file") {
                        ConnFailure::MissingDatabase
                    } else {
                        ConnFailure::Other
                    }
                }
            }
        }
        _ => ConnFailure::Other,
    }
}

fn connect_error(
    loc: &DbLocation,
    e: &DbErr,
    failure: ConnFailure,
    settings: &ConnectSettings,
) -> anyhow::Error {
    let detail = match sqlx_error(e) {
        Some(sea_orm::sqlx::Error::Database(db)) => db.message().to_owned(),
        Some(other) => other.to_string(),
        None => e.to_string(),
    };
    let hint = match failure {
        ConnFailure::Unreachable | ConnFailure::Starting if settings.wait.is_some() => {
            "the server did not come up within --wait-timeout".to_owned()
        }
        ConnFailure::Unreachable | ConnFailure::Starting => {
            "is the server running and the host/port right? Use --wait to wait for it".to_owned()
        }
        ConnFailure::Auth => "check the user name and password in the URL".to_owned(),
        ConnFailure::Tls => "check sslmode in the URL (disable, prefer, require, verify-ca, verify-full); verify-ca and verify-full need the server's CA as sslrootcert=/path/to/ca.pem".to_owned(),
        ConnFailure::MissingDatabase => match &loc.sqlite_file {
            Some(f) => format!(
                "check that the directory of {} exists and is writable",
                f.display()
            ),
            None => {
                "create the database first (e.g. createdb NAME / CREATE DATABASE NAME)".to_owned()
            }
        },
        ConnFailure::Other => "check the URL and the server's log".to_owned(),
    };
    coded(
        Exit::Connection,
        format!("cannot connect to {}: {detail}; {hint}", loc.display),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_and_finds_sqlite_files() {
        let loc = DbLocation::parse(Some("postgres://bob:s3cret@db:5432/app")).unwrap();
        assert_eq!(loc.display, "postgres://bob:***@db:5432/app");
        assert_eq!(loc.backend, DbBackend::Postgres);
        let loc = DbLocation::parse(Some("sqlite://data/app.db?mode=rwc")).unwrap();
        assert_eq!(loc.sqlite_file.as_deref(), Some(Path::new("data/app.db")));
        let loc = DbLocation::parse(None).unwrap();
        assert!(loc.implicit);
        assert!(DbLocation::parse(Some("oracle://x")).is_err());
        assert_eq!(
            mask_unparsed("postgres://u:p w@h:x/d"),
            "postgres://u:***@h:x/d"
        );
    }

    #[test]
    fn pgbouncer_flag_marks_the_url_and_is_not_passed_on() {
        let loc = DbLocation::parse(Some(
            "postgres://bob:pw@db:6432/app?sslmode=require&pgbouncer=true",
        ))
        .unwrap();
        assert!(loc.pooled);
        assert_eq!(
            loc.secret_url(),
            "postgres://bob:pw@db:6432/app?sslmode=require"
        );
        assert!(loc.display.contains("pgbouncer=true") && !loc.display.contains("pw"));
        let loc = DbLocation::parse(Some("postgres://db/app?pgbouncer=true")).unwrap();
        assert_eq!(loc.secret_url(), "postgres://db/app");
        let loc = DbLocation::parse(Some("postgres://db/app?pgbouncer=false")).unwrap();
        assert!(!loc.pooled);
        assert!(!DbLocation::parse(Some("postgres://db/app")).unwrap().pooled);
        let e = DbLocation::parse(Some("postgres://db/app?pgbouncer=yes")).unwrap_err();
        assert!(e.to_string().contains("pgbouncer=yes"), "{e}");
        let e = DbLocation::parse(Some("mysql://db/app?pgbouncer=true")).unwrap_err();
        assert!(e.to_string().contains("only for PostgreSQL"), "{e}");
    }
}
