//! The one place that turns a database error (`sea_orm::DbErr`, and the sqlx error inside
//! it) into what the user reads: one line with the server's message (and SQLSTATE where
//! there is one) and what to do, plus the exit code it calls for. Driver wrappers repeat the
//! message and add source positions or Rust type names; none of that reaches the user.
//! `render` applies the same to a whole `anyhow` chain (`what dbtool was doing: what the
//! database said; what to do`).

use crate::context::DbLocation;
use crate::exit::{Coded, Exit};
use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr};
use std::path::PathBuf;
use std::sync::Mutex;

/// A database error as the user should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// One line: the database's message, its SQLSTATE where there is one, and a hint.
    pub message: String,
    /// PostgreSQL's and MySQL's SQLSTATE (`42501`, `3D000`); None for SQLite and for errors
    /// that did not come from the server.
    pub sqlstate: Option<String>,
    pub exit: Exit,
}

impl Described {
    fn new(message: impl Into<String>, sqlstate: Option<String>, exit: Exit) -> Described {
        Described {
            message: message.into(),
            sqlstate,
            exit,
        }
    }
}

/// The database dbtool is working on, so that SQLite errors can name the file.
static LOCATION: Mutex<Option<(String, Option<PathBuf>)>> = Mutex::new(None);

/// Remembers the database being opened (`context::connect` calls it).
pub fn set_location(loc: &DbLocation) {
    let mut l = LOCATION.lock().unwrap_or_else(|p| p.into_inner());
    *l = Some((loc.display.clone(), loc.sqlite_file.clone()));
}

/// `dbtool` with the flags a hint must repeat (see `Ctx::hint`), for hints made where no
/// context is at hand.
static HINT_BASE: Mutex<Option<String>> = Mutex::new(None);

/// Remembers how hints start (`run` calls it for the command line).
pub fn set_hint_base(base: &str) {
    let mut b = HINT_BASE.lock().unwrap_or_else(|p| p.into_inner());
    *b = Some(base.trim_end().to_owned());
}

/// `dbtool ... ARGS`, as `Ctx::hint` would print it.
pub fn command(args: &str) -> String {
    let b = HINT_BASE.lock().unwrap_or_else(|p| p.into_inner());
    format!("{} {args}", b.as_deref().unwrap_or("dbtool"))
}

fn sqlite_file() -> Option<PathBuf> {
    let l = LOCATION.lock().unwrap_or_else(|p| p.into_inner());
    l.as_ref().and_then(|(_, f)| f.clone())
}

/// The sqlx error inside a `DbErr`, if there is one.
pub fn sqlx_error(e: &DbErr) -> Option<&sqlx::Error> {
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e.as_ref()),
        _ => None,
    }
}

/// MySQL's error number (1045, 1142, ...), when the error is one of MySQL's.
pub fn mysql_number(e: &DbErr) -> Option<u16> {
    match sqlx_error(e)? {
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// Describes a `DbErr` in one line, with its exit code.
pub fn describe(e: &DbErr) -> Described {
    describe_in(e, None)
}

/// [`describe`], knowing what dbtool was doing (`reading the setting`): it names the
/// privilege a permission error is about.
pub fn describe_in(e: &DbErr, doing: Option<&str>) -> Described {
    match e {
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => match r {
            RuntimeErr::SqlxError(s) => describe_sqlx_in(s, doing),
            RuntimeErr::Internal(m) => Described::new(clean(m), None, Exit::Failure),
        },
        DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::ConnectionClosed) => {
            Described::new(
                "the connection to the database was lost (the server ended the session or went away), and dbtool does not carry on with a new one; run the command again",
                None,
                Exit::Connection,
            )
        }
        DbErr::ConnectionAcquire(_) => Described::new(
            "no database connection became available in time",
            None,
            Exit::Connection,
        ),
        DbErr::RecordNotFound(m) => Described::new(clean(m), None, Exit::NotFound),
        DbErr::Type(m) => Described::new(type_message(m), None, Exit::Failure),
        DbErr::Custom(m) | DbErr::Migration(m) | DbErr::Json(m) => {
            Described::new(clean(m), None, Exit::Failure)
        }
        DbErr::TryIntoErr { source, .. } => {
            Described::new(type_message(&source.to_string()), None, Exit::Failure)
        }
        other => Described::new(clean(&other.to_string()), None, Exit::Failure),
    }
}

/// Describes an sqlx error in one line, with its exit code.
pub fn describe_sqlx(e: &sqlx::Error) -> Described {
    describe_sqlx_in(e, None)
}

fn describe_sqlx_in(e: &sqlx::Error, doing: Option<&str>) -> Described {
    use sqlx::Error as S;
    match e {
        S::Database(d) => describe_database(d.as_ref(), doing),
        S::Configuration(c) => Described::new(
            format!(
                "invalid connection parameter: {}",
                clean(&c.to_string()).trim_start_matches("error with configuration: ")
            ),
            None,
            Exit::Usage,
        ),
        S::Io(io) => Described::new(crate::config::io_reason(io), None, Exit::Connection),
        S::Tls(t) => Described::new(
            format!("TLS failed: {}", clean(&t.to_string())),
            None,
            Exit::Connection,
        ),
        S::Protocol(p) => Described::new(
            format!("unexpected answer from the server: {}", clean(p)),
            None,
            Exit::Connection,
        ),
        S::PoolTimedOut => Described::new(
            "no connection within the connect timeout (10s)",
            None,
            Exit::Connection,
        ),
        S::PoolClosed => Described::new(
            "the connection to the database was lost (the server ended the session or went away), and dbtool does not carry on with a new one; run the command again",
            None,
            Exit::Connection,
        ),
        S::WorkerCrashed => Described::new("the connection was closed", None, Exit::Connection),
        S::RowNotFound => Described::new("no such row", None, Exit::NotFound),
        S::ColumnDecode { index, source } => Described::new(
            decode_message(index, &source.to_string()),
            None,
            Exit::Failure,
        ),
        S::ColumnNotFound(c) => Described::new(
            format!("the table has no column {c} where dbtool expects one"),
            None,
            Exit::Failure,
        ),
        S::Encode(m) | S::Decode(m) => {
            Described::new(type_message(&m.to_string()), None, Exit::Failure)
        }
        other => Described::new(clean(&other.to_string()), None, Exit::Failure),
    }
}

fn describe_database(d: &dyn sqlx::error::DatabaseError, doing: Option<&str>) -> Described {
    if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return describe_pg(pg, doing);
    }
    if let Some(my) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return describe_mysql(my);
    }
    if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        let code: i32 = d.code().and_then(|c| c.parse().ok()).unwrap_or(0);
        return describe_sqlite(code, d.message());
    }
    Described::new(
        clean(d.message()),
        d.code().map(|c| c.into_owned()),
        Exit::Failure,
    )
}

/// The user the URL connects as, for GRANT suggestions.
fn db_user() -> String {
    let l = LOCATION.lock().unwrap_or_else(|p| p.into_inner());
    l.as_ref()
        .and_then(|(display, _)| url::Url::parse(display).ok())
        .map(|u| u.username().to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "the_user".into())
}

/// The privilege a step needs, from what dbtool was doing (`reading the setting`, ...).
fn privilege_for(doing: &str) -> Option<&'static str> {
    let first = doing.split_whitespace().next()?.to_ascii_lowercase();
    Some(match first.as_str() {
        "reading" | "looking" | "listing" | "checking" | "exporting" | "counting" => "SELECT",
        "saving" | "updating" | "setting" | "importing" | "creating" | "publishing"
        | "unpublishing" | "activating" | "deactivating" => "INSERT and UPDATE",
        "deleting" | "purging" | "removing" => "DELETE",
        _ => return None,
    })
}

/// What PostgreSQL's "permission denied for table settings" means and how to fix it.
fn pg_privilege_hint(message: &str, doing: Option<&str>) -> String {
    let user = db_user();
    let creating = doing.is_some_and(|d| d.to_ascii_lowercase().contains("creat"));
    if let Some(rest) = message.strip_prefix("permission denied for ") {
        let (kind, name) = rest.split_once(' ').unwrap_or((rest, ""));
        let (privilege, on) = match kind {
            "table" | "relation" | "view" => (
                doing
                    .and_then(privilege_for)
                    .unwrap_or("one of SELECT, INSERT, UPDATE, DELETE"),
                name.to_owned(),
            ),
            "schema" if creating => ("CREATE", format!("SCHEMA {name}")),
            "schema" => (
                "USAGE (and CREATE to create tables)",
                format!("SCHEMA {name}"),
            ),
            "sequence" => ("USAGE", format!("SEQUENCE {name}")),
            "database" if creating => ("CREATE", format!("DATABASE {name}")),
            "database" => ("CONNECT", format!("DATABASE {name}")),
            _ => ("the needed privileges", format!("{kind} {name}")),
        };
        let grant = privilege
            .split(" (")
            .next()
            .unwrap_or(privilege)
            .trim_start_matches("one of ")
            .replace(" and ", ", ");
        return format!(
            "user {user} lacks {privilege} on {kind} {name}; have the owner run GRANT {grant} ON {on} TO {user}, or use a user that has it"
        );
    }
    if message.contains("to create database") {
        return format!("user {user} lacks the CREATEDB privilege; have it granted (ALTER ROLE {user} CREATEDB), or use a user that has it");
    }
    if message.starts_with("must be owner of ") {
        return format!("only the owner may do this, and {user} is not; run it as the owner, or transfer ownership");
    }
    format!("user {user} lacks a privilege this command needs; have it granted, or use a user that has it")
}

fn describe_pg(pg: &sqlx::postgres::PgDatabaseError, doing: Option<&str>) -> Described {
    let code = pg.code().to_owned();
    let mut message = format!("{} (SQLSTATE {code})", clean(pg.message()));
    if let Some(detail) = pg.detail() {
        message = format!("{message}: {}", clean(detail));
    }
    let (exit, hint) = match code.as_str() {
        "42501" => (Exit::PermissionDenied, Some(pg_privilege_hint(pg.message(), doing))),
        "25006" => (
            Exit::ReadOnly,
            Some("the server accepts no writes (a hot standby, or default_transaction_read_only): point the URL at the primary".into()),
        ),
        "22021" | "22P05" if pg.message().contains("0x00") || pg.message().contains("\\u0000") => (
            Exit::Usage,
            Some("the value contains a NUL byte, which PostgreSQL text cannot hold; remove it".into()),
        ),
        c if c.starts_with("22") => (Exit::Usage, Some("fix the value".into())),
        c if c.starts_with("23") => (Exit::Usage, pg.hint().map(clean)),
        "53100" => (
            Exit::Failure,
            Some("the database server's disk is full; free space there and run the command again (nothing was changed)".into()),
        ),
        "53300" | "57P03" => (Exit::Connection, None),
        "3D000" | "28P01" | "28000" => (Exit::Connection, None),
        "3F000" => (
            Exit::Connection,
            Some("the schema does not exist: check --schema, or the search_path of the user or database".into()),
        ),
        c if c.starts_with("08") => (Exit::Connection, None),
        "42703" if pg.message().contains("seaql_migrations") => {
            (Exit::Failure, Some(TRACKING_SHAPE.to_owned()))
        }
        "42P01" => (
            Exit::Failure,
            Some(format!(
                "a table dbtool expects is missing; `{}` compares the schema with the migrations",
                command("check")
            )),
        ),
        _ => (Exit::Failure, pg.hint().map(clean)),
    };
    if let Some(h) = hint {
        message = format!("{message}; {h}");
    }
    Described::new(message, Some(code), exit)
}

fn describe_mysql(my: &sqlx::mysql::MySqlDatabaseError) -> Described {
    let n = my.number();
    let state = my.code().map(str::to_owned);
    let mut message = format!(
        "{} (MySQL error {n}{})",
        clean(my.message()),
        state
            .as_deref()
            .map(|s| format!(", SQLSTATE {s}"))
            .unwrap_or_default()
    );
    let (exit, hint): (Exit, Option<&str>) = match n {
        1142 | 1143 | 1227 | 1370 | 1044 => (
            Exit::PermissionDenied,
            Some("the database user lacks this privilege; have it granted (GRANT ... ON db.table TO user), or use a user that has it"),
        ),
        1045 | 1698 | 1049 | 1040 | 1129 | 1130 | 2002 | 2003 | 2006 | 2013 => {
            (Exit::Connection, None)
        }
        1046 => (
            Exit::Usage,
            Some("the URL names no database: add it as the path, e.g. mysql://user@host/avatar"),
        ),
        1290 | 1792 | 1836 => (
            Exit::ReadOnly,
            Some("the server accepts no writes (read_only, a replica): point the URL at the primary"),
        ),
        1021 | 1114 => (
            Exit::Failure,
            Some("the database server's disk (or the table) is full; free space there and run the command again"),
        ),
        1054 if my.message().contains("seaql_migrations") => (Exit::Failure, Some(TRACKING_SHAPE)),
        // The statement (a value in it) is larger than the server accepts in one packet.
        1153 | 1301 => (
            Exit::Usage,
            Some("the value is larger than the server's max_allowed_packet: shorten it, or have the server's max_allowed_packet raised (SET GLOBAL max_allowed_packet = 1073741824, or in its configuration) and run the command again"),
        ),
        1048 | 1062 | 1264 | 1265 | 1292 | 1366 | 1406 | 3140 | 4025 => {
            (Exit::Usage, Some("fix the value"))
        }
        _ => (Exit::Failure, None),
    };
    if let Some(h) = hint {
        message = format!("{message}; {h}");
    }
    Described::new(message, state, exit)
}

/// SQLite's primary result codes (the low byte of the extended code).
fn describe_sqlite(code: i32, msg: &str) -> Described {
    let file = sqlite_file();
    let shown = file
        .as_deref()
        .map(crate::config::show_path)
        .unwrap_or_else(|| "the SQLite database".into());
    let base = format!("{} (SQLite error {code})", clean(msg));
    let (exit, hint) = match code & 0xff {
        8 => {
            let perms = file.as_deref().and_then(permissions).unwrap_or_default();
            (
                Exit::ReadOnly,
                format!("{shown} is read-only{perms}: make it (and its directory) writable, or use a copy"),
            )
        }
        13 => (
            Exit::Failure,
            format!("the disk holding {shown} is full; free space and run the command again (the transaction was rolled back)"),
        ),
        14 => (
            Exit::Connection,
            format!("{shown} cannot be opened: check that it exists, that its directory exists and that both are accessible"),
        ),
        26 => (
            Exit::Connection,
            format!("{shown} is not a SQLite database: check the path in the URL"),
        ),
        11 => (
            Exit::Failure,
            format!("{shown} is damaged: restore it from a backup"),
        ),
        // Reported after SQLite's busy timeout (--lock-timeout for writes) has run out.
        5 | 6 => (
            Exit::LockTimeout,
            format!("another process holds the database {shown} locked; try again when it is done (or raise --lock-timeout)"),
        ),
        19 | 20 | 25 => (Exit::Usage, "fix the value".into()),
        _ => (Exit::Failure, String::new()),
    };
    let message = if hint.is_empty() {
        base
    } else {
        format!("{base}; {hint}")
    };
    Described::new(message, None, exit)
}

/// ` (permissions -r--r--r--, owner uid 0)` for a file, if it can be read.
fn permissions(p: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = std::fs::metadata(p).ok()?;
    let mode = m.permissions().mode();
    let mut s = String::new();
    for shift in [6, 3, 0] {
        let b = (mode >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    Some(format!(" (permissions -{s}, owner uid {})", m.uid()))
}

/// SeaORM's tracking table has two columns; a table of that name with others is someone
/// else's (or damaged), and every command that reads the migration state stops on it.
const TRACKING_SHAPE: &str = "seaql_migrations does not have the shape of SeaORM's tracking table (version varchar primary key, applied_at bigint, both NOT NULL): if another tool created it, use another database (or --schema on PostgreSQL), or rename that table";

/// Adds [`TRACKING_SHAPE`] when the error is about the tracking table's columns.
fn with_tracking_hint(message: String, column: Option<&str>) -> String {
    let about_tracking = message.contains("seaql_migrations")
        || column
            .is_some_and(|c| matches!(c.trim_matches(['"', '`', '\'']), "version" | "applied_at"));
    if about_tracking {
        format!("{message}; {TRACKING_SHAPE}")
    } else {
        message
    }
}

/// `mismatched types; Rust type `core::option::Option<alloc::string::String>` (as SQL type
/// `TEXT`) is not compatible with SQL type `INT4`` → the two SQL types, no Rust names.
fn decode_message(column: &str, source: &str) -> String {
    let column = column.trim_matches('"');
    let sql_types: Vec<&str> = source
        .split("SQL type `")
        .skip(1)
        .filter_map(|s| s.split('`').next())
        .collect();
    let m = match sql_types.as_slice() {
        [expected, .., actual] => {
            format!("column {column} is of type {actual}, where dbtool expects {expected}")
        }
        _ => format!(
            "column {column} holds a value dbtool cannot read ({})",
            type_message(source)
        ),
    };
    with_tracking_hint(m, Some(column))
}

/// A type error without Rust type names.
fn type_message(m: &str) -> String {
    let m = clean(m);
    if m.contains("A null value was encountered")
        || m.contains("unexpected null")
        || m.starts_with("Missing value for column")
    {
        let col = m
            .split(['"', '\''])
            .nth(1)
            .unwrap_or("a column")
            .rsplit('.')
            .next()
            .unwrap_or("a column")
            .to_owned();
        return with_tracking_hint(
            format!("column {col} holds NULL where dbtool expects a value"),
            Some(&col),
        );
    }
    if m.contains("SQL type `") {
        return decode_message("?", &m);
    }
    // Rust paths (`alloc::string::String`) mean nothing to the reader.
    m.split_whitespace()
        .map(|w| {
            let bare = w.trim_matches(|c: char| !c.is_alphanumeric() && c != ':' && c != '_');
            if bare.contains("::") {
                w.replace(bare, bare.rsplit("::").next().unwrap_or(bare))
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes driver decoration: wrapper prefixes, `(sqlx_postgres::connection::tls:95)`
/// source positions, ` at line 3655`, trailing newlines.
pub fn clean(m: &str) -> String {
    let mut s = m.replace('\n', " ");
    for prefix in [
        "Execution Error: ",
        "Query Error: ",
        "Connection Error: ",
        "Custom Error: ",
        "Type Error: ",
        "error returned from database: ",
        "encountered unexpected or invalid data: ",
    ] {
        while let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_owned();
        }
    }
    // `(crate::module:123)` as sqlx's err_protocol! appends.
    while let Some(start) = s.find(" (sqlx_") {
        match s[start..].find(')') {
            Some(end) => s.replace_range(start..start + end + 1, ""),
            None => break,
        }
    }
    s.trim().to_owned()
}

/// One line for a whole error chain, and its exit code: the contexts (what dbtool was
/// doing), then the first decisive error, described once. The outermost `Coded` decides the
/// code; a database error decides it when nothing else does.
pub fn render(err: &anyhow::Error) -> (String, Exit) {
    let mut parts: Vec<String> = Vec::new();
    let mut exit = None;
    for cause in err.chain() {
        let described = if let Some(c) = cause.downcast_ref::<Coded>() {
            exit.get_or_insert(c.exit);
            parts.push(c.message.clone());
            break;
        } else if let Some(d) = cause.downcast_ref::<DbErr>() {
            Some(describe_in(d, parts.last().map(String::as_str)))
        } else if let Some(r) = cause.downcast_ref::<RuntimeErr>() {
            Some(match r {
                RuntimeErr::SqlxError(s) => describe_sqlx_in(s, parts.last().map(String::as_str)),
                other => Described::new(clean(&other.to_string()), None, Exit::Failure),
            })
        } else {
            cause
                .downcast_ref::<sqlx::Error>()
                .map(|s| describe_sqlx_in(s, parts.last().map(String::as_str)))
        };
        if let Some(d) = described {
            // A wrapper before it (thiserror's `transparent`) printed the raw text already.
            let raw = clean(&cause.to_string());
            if parts
                .last()
                .is_some_and(|p| !raw.is_empty() && clean(p).contains(&raw))
            {
                parts.pop();
            }
            exit.get_or_insert(d.exit);
            parts.push(d.message);
            break;
        }
        let s = cause.to_string();
        if parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    let line = parts.join(": ").replace(['\n', '\r'], " ");
    (line, exit.unwrap_or(Exit::Failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_decoration_is_removed() {
        assert_eq!(
            clean(
                "Query Error: error returned from database: permission denied for table settings"
            ),
            "permission denied for table settings"
        );
        assert_eq!(
            clean("unexpected response from SSLRequest: 0x64 (sqlx_postgres::connection::tls:95)"),
            "unexpected response from SSLRequest: 0x64"
        );
        let m = decode_message(
            "\"applied_at\"",
            "mismatched types; Rust type `core::option::Option<alloc::string::String>` (as SQL type `TEXT`) is not compatible with SQL type `INT4`",
        );
        assert_eq!(
            m.split(';').next().unwrap(),
            "column applied_at is of type INT4, where dbtool expects TEXT"
        );
        assert!(!m.contains("alloc"));
    }

    #[test]
    fn chains_print_each_message_once() {
        let e = anyhow::Error::new(DbErr::Custom("boom".into())).context("reading the setting");
        assert_eq!(
            render(&e),
            ("reading the setting: boom".into(), Exit::Failure)
        );
        let coded = crate::exit::coded(Exit::NotFound, "no such key").context("getting");
        assert_eq!(
            render(&coded),
            ("getting: no such key".into(), Exit::NotFound)
        );
    }
}
