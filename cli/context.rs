//! Configuration → connection: which database (URL, backend, default SQLite file), checked
//! before anything connects (a URL that would silently go elsewhere is refused), with every
//! credential registered for masking; then connecting, with `--wait` and one-line errors.

use crate::config::io_reason;
use crate::dberror::{self, sqlx_error, Described};
use crate::exit::{coded, Exit};
use crate::output::{add_secret, Output};
use anyhow::{Context as _, Result};
use migration::engine::SessionFacts;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};
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

/// A database location, validated, with its secrets registered for masking.
#[derive(Debug, Clone)]
pub struct DbLocation {
    url: String,
    /// The URL with every credential replaced by `***`, for messages.
    pub display: String,
    pub backend: DbBackend,
    /// The SQLite file, when the backend is SQLite and the database is a file.
    pub sqlite_file: Option<PathBuf>,
    /// An in-memory SQLite database (`sqlite::memory:`, `sqlite://`, `mode=memory`): gone
    /// when dbtool exits, so write commands refuse it.
    pub memory: bool,
    /// The `mode=` of a SQLite URL (`ro`, `rw`, `rwc`).
    pub sqlite_mode: Option<String>,
    /// `immutable=1` in a SQLite URL: SQLite assumes nobody changes the file, so dbtool
    /// writes nothing to it (and creates nothing).
    pub sqlite_immutable: bool,
    /// True when no URL was configured and the default SQLite file is used.
    pub implicit: bool,
    /// PostgreSQL: the parts libpq's conventions filled in (`user from PGUSER`, ...).
    pub libpq: Vec<String>,
    /// Said once on stderr before connecting.
    pub warnings: Vec<String>,
    /// When the URL as typed has `#`, `/`, `?` or a second `@` in its userinfo: how to
    /// percent-encode them (added to connection errors).
    pub encoding_hint: Option<String>,
    /// PostgreSQL through a transaction-pooling connection pooler, as the URL says with
    /// `pgbouncer=true` (Prisma's convention): migrations refuse it.
    pub pooled: bool,
}

/// `pgbouncer=true|false` in a PostgreSQL URL says whether it goes through a transaction
/// pooler (Prisma's convention); the driver does not know the parameter, so it is removed.
fn take_pgbouncer_flag(
    parsed: &url::Url,
    backend: DbBackend,
    display: &str,
) -> Result<(String, bool)> {
    let Some((_, value)) = parsed.query_pairs().find(|(k, _)| k == "pgbouncer") else {
        return Ok((parsed.to_string(), false));
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

/// Query parameters whose value is a credential.
fn is_secret_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k == "pass" || k == "pwd" || k.contains("secret")
}

const SQLITE_PARAMS: [&str; 4] = ["mode", "cache", "immutable", "vfs"];

impl DbLocation {
    /// Parses a configured URL (or none: the default SQLite file in the working directory).
    pub fn parse(url: Option<&str>) -> Result<DbLocation> {
        let Some(raw) = url.map(str::trim) else {
            let file = PathBuf::from(DEFAULT_SQLITE_FILE);
            return Ok(DbLocation {
                url: format!("sqlite://{DEFAULT_SQLITE_FILE}"),
                display: format!("sqlite://{DEFAULT_SQLITE_FILE}"),
                backend: DbBackend::Sqlite,
                sqlite_file: Some(file),
                memory: false,
                sqlite_mode: None,
                sqlite_immutable: false,
                implicit: true,
                libpq: Vec::new(),
                warnings: Vec::new(),
                encoding_hint: None,
                pooled: false,
            });
        };
        register_secrets(raw);
        if raw.is_empty() {
            return Err(coded(
                Exit::Usage,
                "the database URL is empty; give e.g. postgres://user@host/dbname or sqlite://file.db",
            ));
        }
        let scheme = raw.split(':').next().unwrap_or("").to_ascii_lowercase();
        let backend = match scheme.as_str() {
            "postgres" | "postgresql" => DbBackend::Postgres,
            "mysql" | "mariadb" => DbBackend::MySql,
            "sqlite" => DbBackend::Sqlite,
            _ if !raw.contains(':') || raw.ends_with(".db") || raw.ends_with(".sqlite") => {
                return Err(coded(
                    Exit::Usage,
                    format!(
                        "invalid database URL '{}': it has no scheme; for a SQLite file write sqlite://{}, for a server postgres://user@host/dbname or mysql://user@host/dbname",
                        mask_loose(raw),
                        mask_loose(raw)
                    ),
                ))
            }
            other => {
                return Err(coded(
                    Exit::Usage,
                    format!("unsupported database URL scheme '{other}': use postgres://, postgresql://, mysql://, mariadb:// or sqlite://"),
                ))
            }
        };
        if backend == DbBackend::Sqlite {
            return parse_sqlite(raw);
        }
        let typed_scheme = &raw[..scheme.len()];
        let example = match backend {
            DbBackend::Postgres => format!("{typed_scheme}://user:***@host:5432/dbname"),
            _ => format!("{typed_scheme}://user:***@host:3306/dbname"),
        };
        // `postgres:/u:pw@h/d` or `postgres:u:pw@h/d` would parse as a path: the driver
        // then connects with default credentials somewhere else.
        if !raw[scheme.len() + 1..].starts_with("//") {
            return Err(coded(
                Exit::Usage,
                format!(
                    "invalid database URL '{}': '{typed_scheme}:' must be followed by '//'; write {example}",
                    mask_unparsed(raw)
                ),
            ));
        }
        if raw.contains('\0') {
            return Err(coded(
                Exit::Usage,
                format!(
                    "invalid database URL '{}': it contains a NUL byte, which no server accepts; remove it",
                    crate::output::escape_controls(&mask_unparsed(raw))
                ),
            ));
        }
        let parsed = url::Url::parse(raw).map_err(|e| {
            let hint = special_char_hint(raw)
                .unwrap_or_else(|| "expected e.g. postgres://user:password@host:5432/dbname or mysql://user@host/dbname".into());
            coded(
                Exit::Usage,
                format!("invalid database URL '{}': {e}; {hint}", mask_unparsed(raw)),
            )
        })?;
        if let Some(frag) = parsed.fragment() {
            let hint = if frag.contains('@') {
                special_char_hint(raw).unwrap_or_default()
            } else {
                "remove it".into()
            };
            return Err(coded(
                Exit::Usage,
                format!(
                    "invalid database URL '{}': a database URL has no #fragment; {hint}",
                    mask_unparsed(raw)
                ),
            ));
        }
        if parsed.host_str().unwrap_or("").is_empty() && parsed.path().contains('@') {
            return Err(coded(
                Exit::Usage,
                format!(
                    "invalid database URL '{}': it has more than two slashes after '{typed_scheme}:', so the user and host read as the database name; write {example}",
                    mask_unparsed(raw)
                ),
            ));
        }
        if let Some(part) = control_char_part(&parsed) {
            return Err(coded(
                Exit::Usage,
                format!(
                    "invalid database URL '{}': {part} contains a control character (such as %00, a NUL byte), which no server accepts; remove it",
                    mask_unparsed(raw)
                ),
            ));
        }
        let mut url = parsed.clone();
        if scheme == "mariadb" {
            url = url::Url::parse(&format!("mysql{}", &raw["mariadb".len()..]))
                .unwrap_or(parsed.clone());
        }
        let mut libpq = Vec::new();
        let mut warnings = Vec::new();
        match backend {
            DbBackend::Postgres => {
                let done = crate::libpq::complete(&url).map_err(|e| coded(Exit::Usage, e))?;
                for s in &done.secrets {
                    add_secret(s);
                }
                url = done.url;
                libpq = done.notes;
                warnings = done.warnings;
            }
            _ => {
                if url.path().trim_matches('/').is_empty() {
                    let mut with_db = url.clone();
                    with_db.set_path("/avatar");
                    return Err(coded(
                        Exit::Usage,
                        format!(
                            "the database URL {} names no database; MySQL/MariaDB needs one: add it as the path, e.g. {} (create it first with CREATE DATABASE)",
                            mask(url.as_str()),
                            mask(with_db.as_str())
                        ),
                    ));
                }
            }
        }
        check_tls_params(&url, backend)?;
        register_secrets(url.as_str());
        let display = mask(url.as_str());
        let (url, pooled) = take_pgbouncer_flag(&url, backend, &display)?;
        Ok(DbLocation {
            display,
            url,
            backend,
            sqlite_file: None,
            memory: false,
            sqlite_mode: None,
            sqlite_immutable: false,
            implicit: false,
            libpq,
            warnings,
            encoding_hint: special_char_hint(raw),
            pooled,
        })
    }

    /// The real URL, password included: only for the driver.
    pub fn secret_url(&self) -> &str {
        &self.url
    }

    /// The host and port a TCP connection goes to; None for SQLite and Unix sockets.
    pub fn tcp_endpoint(&self) -> Option<(String, u16)> {
        let u = url::Url::parse(self.secret_url()).ok()?;
        if u.query_pairs().any(|(k, _)| k == "host" || k == "socket") {
            return None;
        }
        let host = u.host_str().filter(|h| !h.is_empty())?.to_owned();
        let port = u.port().unwrap_or(match self.backend {
            DbBackend::Postgres => 5432,
            _ => 3306,
        });
        match self.backend {
            DbBackend::Postgres | DbBackend::MySql => {
                Some((host.trim_matches(['[', ']']).to_owned(), port))
            }
            _ => None,
        }
    }
}

/// SQLite URLs are parsed as sqlx parses them (`sqlite://PATH?params`, `sqlite:PATH`), so the
/// file checked here is the file opened there. What sqlx (or SeaORM before it) would reject
/// or misread is refused here, before anything is created.
fn parse_sqlite(raw: &str) -> Result<DbLocation> {
    let bad = |why: String| {
        coded(
            Exit::Usage,
            format!(
                "invalid database URL '{}': {why}",
                crate::output::escape_controls(&mask(raw))
            ),
        )
    };
    let rest = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
        .unwrap_or("");
    if let Some((_, frag)) = rest.split_once('#') {
        return Err(bad(format!(
            "a database URL has no #fragment (#{frag}); remove it, or write a '#' in the file name as %23"
        )));
    }
    let (path, params) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    // SeaORM checks every URL with a URL parser first: `sqlite://file:x.db` reads as host
    // `file` with port `x.db` and is refused there.
    // (`sqlite://:memory:` is sqlx's own spelling of an in-memory database, refused or
    // read as empty below.)
    if !matches!(path, "" | ":memory:") {
        if let Err(e) = url::Url::parse(raw) {
            return Err(bad(format!(
                "{e} (the text after sqlite:// reads as host:port); write sqlite://file.db, sqlite:///absolute/path.db, and a ':' in a file name as %3A"
            )));
        }
    }
    let mut mode = None;
    let mut memory_vfs = false;
    let mut immutable = false;
    for (k, v) in url::form_urlencoded::parse(params.unwrap_or("").as_bytes()) {
        if !SQLITE_PARAMS.contains(&k.as_ref()) {
            let shown = if is_secret_param(&k) {
                "***".into()
            } else {
                v.to_string()
            };
            return Err(bad(format!(
                "SQLite URLs take no parameter '{k}' (given as {k}={shown}); they take {}",
                SQLITE_PARAMS.join(", ")
            )));
        }
        match k.as_ref() {
            "mode" => {
                if !["ro", "rw", "rwc", "memory"].contains(&v.as_ref()) {
                    return Err(bad(format!(
                        "mode={v} is not a SQLite mode; use ro, rw, rwc or memory"
                    )));
                }
                mode = Some(v.into_owned());
            }
            "cache" if !["private", "shared"].contains(&v.as_ref()) => {
                return Err(bad(format!("cache={v}: use cache=private or cache=shared")));
            }
            "immutable" => match v.as_ref() {
                "true" | "1" => immutable = true,
                "false" | "0" => immutable = false,
                _ => {
                    return Err(bad(format!(
                        "immutable={v}: use immutable=1 or leave it out"
                    )))
                }
            },
            // SQLite's `memdb` VFS keeps the database in memory, like mode=memory.
            "vfs" => memory_vfs = v == "memdb",
            _ => {}
        }
    }
    // As sqlx decodes it: percent-escapes only (`+` stays a plus).
    let bytes: Vec<u8> = {
        let b = path.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = (b[i] == b'%')
                .then(|| b.get(i + 1..i + 3))
                .flatten()
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => {
                    out.push(v);
                    i += 3;
                }
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        }
        out
    };
    let Ok(decoded) = String::from_utf8(bytes) else {
        return Err(bad(
            "the file name is not valid UTF-8 once its %-escapes are decoded; fix the path".into(),
        ));
    };
    // sqlx opens with SQLITE_OPEN_URI: a name starting with `file:` is read as a URI and
    // opens another file than the one checked here.
    if decoded
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("file:"))
    {
        return Err(bad(format!(
            "SQLite reads a file name that starts with 'file:' as a URI of its own; write the path itself, e.g. sqlite://{}",
            decoded[5..].trim_start_matches("//")
        )));
    }
    if decoded.chars().any(char::is_control) {
        return Err(bad(
            "the file name contains a control character (such as %00, a NUL byte), which no file name may hold; remove it".into(),
        ));
    }
    let memory = decoded.is_empty()
        || decoded == ":memory:"
        || mode.as_deref() == Some("memory")
        || memory_vfs;
    Ok(DbLocation {
        // Every in-memory spelling opens as the one SeaORM's URL check accepts.
        url: if memory {
            "sqlite::memory:".to_owned()
        } else {
            raw.to_owned()
        },
        display: mask(raw),
        backend: DbBackend::Sqlite,
        sqlite_file: (!memory).then(|| PathBuf::from(decoded)),
        memory,
        sqlite_mode: mode,
        sqlite_immutable: immutable,
        implicit: false,
        libpq: Vec::new(),
        warnings: Vec::new(),
        encoding_hint: None,
        pooled: false,
    })
}

const PG_SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];
const MYSQL_SSL_MODES: [&str; 5] = [
    "DISABLED",
    "PREFERRED",
    "REQUIRED",
    "VERIFY_CA",
    "VERIFY_IDENTITY",
];

/// The other backend's name for a TLS mode (`require` <-> `REQUIRED`), if it has one.
fn other_ssl_mode(mode: &str, to: DbBackend) -> Option<&'static str> {
    let pairs = [
        ("disable", "DISABLED"),
        ("allow", "PREFERRED"),
        ("prefer", "PREFERRED"),
        ("require", "REQUIRED"),
        ("verify-ca", "VERIFY_CA"),
        ("verify-full", "VERIFY_IDENTITY"),
    ];
    let m = mode.to_ascii_lowercase().replace('_', "-");
    match to {
        DbBackend::MySql => pairs.iter().find(|(pg, _)| *pg == m).map(|(_, my)| *my),
        _ => pairs
            .iter()
            .find(|(_, my)| my.to_ascii_lowercase().replace('_', "-") == m)
            .map(|(pg, _)| *pg),
    }
}

/// TLS parameters in the backend's own names and values, checked before connecting: the
/// driver names its internal `ssl_mode` field, and MySQL silently ignores PostgreSQL's
/// `sslrootcert` (so a missing CA file would go unnoticed).
fn check_tls_params(u: &url::Url, backend: DbBackend) -> Result<()> {
    for (k, v) in u.query_pairs() {
        let bad = |msg: String| Err(coded(Exit::Usage, msg));
        match (backend, k.as_ref()) {
            (DbBackend::Postgres, "sslmode" | "ssl-mode")
                if !PG_SSL_MODES.contains(&v.to_ascii_lowercase().as_str()) =>
            {
                let hint = other_ssl_mode(&v, DbBackend::Postgres)
                    .map(|m| format!(" (MySQL's {v} is sslmode={m} here)"))
                    .unwrap_or_default();
                return bad(format!(
                    "{k}={v} in the database URL is not a PostgreSQL TLS mode{hint}; use sslmode= one of {}",
                    PG_SSL_MODES.join(", ")
                ));
            }
            (DbBackend::MySql, "sslmode" | "ssl-mode")
                if !MYSQL_SSL_MODES.contains(&v.to_ascii_uppercase().as_str()) =>
            {
                let hint = other_ssl_mode(&v, DbBackend::MySql)
                    .map(|m| format!(": write ssl-mode={m}"))
                    .unwrap_or_default();
                return bad(format!(
                    "{k}={v} in the database URL is not a MySQL/MariaDB TLS mode{hint} (MySQL's modes: {})",
                    MYSQL_SSL_MODES.join(", ")
                ));
            }
            (DbBackend::MySql, "sslrootcert" | "ssl-root-cert") => {
                return bad(format!(
                    "{k}= in the database URL is PostgreSQL's name, which MySQL/MariaDB ignores; write ssl-ca={v} (with ssl-mode=VERIFY_CA or VERIFY_IDENTITY)"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Registers every credential of a URL (userinfo password, `password=`, `sslpassword=`)
/// for redaction, before anything could print it. Works on unparsable text too.
fn register_secrets(raw: &str) {
    if let Ok(u) = url::Url::parse(raw) {
        if let Some(pw) = u.password() {
            add_secret(pw);
        }
        for (k, v) in u.query_pairs() {
            if is_secret_param(&k) {
                add_secret(&v);
            }
        }
    }
    if let Some(pw) = unparsed_password(raw) {
        add_secret(pw);
    }
    if let Some((_, query)) = raw.split_once('?') {
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if is_secret_param(k) {
                    add_secret(v.split('#').next().unwrap_or(v));
                    add_secret(v);
                }
            }
        }
    }
}

/// Where the authority (userinfo and host) of a server URL starts: after `scheme:` and any
/// number of slashes, so that a URL typed with one slash or three is masked all the same.
/// None for text without a scheme and for SQLite URLs (they hold paths, not credentials).
fn authority_start(raw: &str) -> Option<usize> {
    let colon = raw.find(':')?;
    let scheme = &raw[..colon];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        || scheme.eq_ignore_ascii_case("sqlite")
    {
        return None;
    }
    let rest = &raw[colon + 1..];
    Some(colon + 1 + rest.len() - rest.trim_start_matches('/').len())
}

/// The text between the user's `:` and the last `@` of a URL, as typed.
fn unparsed_password(raw: &str) -> Option<&str> {
    let s = authority_start(raw)?;
    let at = raw.rfind('@').filter(|at| *at > s)?;
    let auth = &raw[s..at];
    let c = auth.find(':')?;
    Some(&auth[c + 1..])
}

/// The URL as shown to people: the userinfo password and credential parameters as `***`.
pub fn mask(u: &str) -> String {
    let (before_query, query) = match u.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (u, None),
    };
    let mut out = match (authority_start(before_query), before_query.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &before_query[s..at];
            match auth.find(':') {
                Some(c) => format!(
                    "{}{}:***{}",
                    &before_query[..s],
                    &auth[..c],
                    &before_query[at..]
                ),
                None => before_query.to_owned(),
            }
        }
        _ => before_query.to_owned(),
    };
    if let Some(q) = query {
        let masked: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&masked.join("&"));
    }
    out
}

/// For a URL that did not parse: hide everything between the user's `:` and the last `@`
/// (whatever the number of slashes after the scheme), and credential parameters.
fn mask_unparsed(raw: &str) -> String {
    if let (Some(s), Some(pw)) = (authority_start(raw), unparsed_password(raw)) {
        if !pw.is_empty() {
            let at = raw.rfind('@').unwrap_or(raw.len());
            let user_end = s + raw[s..at].find(':').unwrap_or(0);
            return mask(&format!("{}:***{}", &raw[..user_end], &raw[at..]));
        }
    }
    mask(raw)
}

/// For text without a recognisable scheme (`user:pw@host.db`): everything between the
/// first `:` and the last `@` may be a password.
fn mask_loose(raw: &str) -> String {
    match (raw.find(':'), raw.rfind('@')) {
        (Some(c), Some(at)) if c < at => format!("{}:***{}", &raw[..c], &raw[at..]),
        _ => mask(raw),
    }
}

/// Which part of a parsed server URL holds a control character (a NUL byte, typed or as
/// `%00`): no server takes one, and each reports it differently (or not at all).
fn control_char_part(u: &url::Url) -> Option<String> {
    let has = |s: &str| {
        s.chars().any(char::is_control) || {
            let b = s.as_bytes();
            (0..b.len().saturating_sub(2)).any(|i| {
                b[i] == b'%'
                    && std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .is_some_and(|v| v < 0x20 || v == 0x7f)
            })
        }
    };
    if has(u.username()) {
        return Some("the user name".into());
    }
    if u.password().is_some_and(has) {
        return Some("the password".into());
    }
    if u.host_str().is_some_and(has) {
        return Some("the host".into());
    }
    if has(u.path()) {
        return Some("the database name".into());
    }
    u.query()
        .unwrap_or("")
        .split('&')
        .find(|pair| has(pair))
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or(pair);
            format!("the parameter {}", crate::output::escape_controls(key))
        })
}

/// A hint when the user name or password of a URL holds a character that ends the
/// userinfo (`#`, `/`, `?`, or a second `@`): it must be percent-encoded.
pub fn special_char_hint(raw: &str) -> Option<String> {
    let s = raw.find("://")? + 3;
    let at = raw.rfind('@').filter(|at| *at > s)?;
    let userinfo = &raw[s..at];
    let codes = [('#', "%23"), ('/', "%2F"), ('?', "%3F"), ('@', "%40")];
    let found: Vec<String> = codes
        .iter()
        .filter(|(c, _)| userinfo.contains(*c))
        .map(|(c, e)| format!("{c} as {e}"))
        .collect();
    if found.is_empty() {
        return None;
    }
    Some(format!(
        "if the password (or user name) contains these characters, percent-encode them in the URL: {}",
        found.join(", ")
    ))
}

/// Connection settings shared by every command.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// The PostgreSQL schema put into `search_path`. Nothing here creates it: the engine
    /// does, under the migration lock, so concurrent first runs cannot race.
    pub schema: Option<String>,
    pub wait: Option<Duration>,
    /// `--lock-timeout`: how long a write waits for a SQLite file another process holds
    /// (SQLite's busy timeout while connecting and for administration commands).
    pub lock_timeout: Duration,
    pub verbose: u8,
}

/// `-rw-r--r--` from a Unix mode.
fn mode_string(mode: u32) -> String {
    let mut s = String::from("-");
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Why an existing SQLite file cannot be written, if it cannot.
fn sqlite_not_writable(file: &Path) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(file).ok()?;
    let mode = meta.permissions().mode() & 0o7777;
    let perms = format!("{} (owner uid {})", mode_string(mode), meta.uid());
    if meta.permissions().readonly() {
        return Some(format!("its permissions are {perms}: no one may write it"));
    }
    match std::fs::OpenOptions::new().write(true).open(file) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "it cannot be opened for writing ({}); its permissions are {perms}",
            io_reason(&e)
        )),
    }
}

/// The files a URL's TLS parameters name (`sslrootcert=`, `ssl-ca=`, ...) must exist: a
/// missing one would otherwise surface as an unexplained "No such file or directory".
fn check_tls_files(loc: &DbLocation) -> Result<()> {
    let Ok(u) = url::Url::parse(loc.secret_url()) else {
        return Ok(());
    };
    let keys: &[&str] = match loc.backend {
        DbBackend::Postgres => &[
            "sslrootcert",
            "ssl-root-cert",
            "ssl-ca",
            "sslcert",
            "ssl-cert",
            "sslkey",
            "ssl-key",
        ],
        DbBackend::MySql => &[
            "sslca", "ssl-ca", "sslcert", "ssl-cert", "sslkey", "ssl-key",
        ],
        _ => return Ok(()),
    };
    let mut named: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| keys.contains(&k.as_ref()))
        .map(|(k, v)| (format!("{k}= in the URL"), v.into_owned()))
        .collect();
    if loc.backend == DbBackend::Postgres {
        for (var, key) in [
            ("PGSSLROOTCERT", "sslrootcert"),
            ("PGSSLCERT", "sslcert"),
            ("PGSSLKEY", "sslkey"),
        ] {
            if !u.query_pairs().any(|(k, _)| k == key) {
                if let Ok(v) = std::env::var(var) {
                    named.push((var.to_owned(), v));
                }
            }
        }
    }
    for (from, path) in named {
        // sqlx also takes the PEM text itself instead of a path.
        if path.trim_start().starts_with("-----BEGIN") || path.is_empty() {
            continue;
        }
        if let Err(e) = std::fs::File::open(&path) {
            return Err(coded(
                Exit::Connection,
                format!(
                    "cannot connect to {}: the TLS file {path} ({from}) cannot be read: {}; give the path of an existing PEM file",
                    loc.display,
                    io_reason(&e)
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that must pass before a SQLite database is opened; Ok(false) means "read-only
/// and the file does not exist": there is nothing to open.
fn sqlite_preflight(loc: &DbLocation, access: Access, out: &Output) -> Result<bool> {
    let write = access == Access::Write;
    if loc.memory {
        if write {
            return Err(coded(
                Exit::ReadOnly,
                format!(
                    "{} is an in-memory SQLite database, which is gone when dbtool exits, so write commands refuse it; give a file instead, e.g. sqlite://dbtool.db",
                    loc.display
                ),
            ));
        }
        return Ok(true);
    }
    let Some(file) = &loc.sqlite_file else {
        return Ok(true);
    };
    let shown = show_path(file);
    let exists = file.exists();
    if write && loc.sqlite_immutable {
        return Err(coded(
            Exit::ReadOnly,
            format!(
                "{} is opened as immutable (immutable=1 in the URL: SQLite assumes no one changes the file), so write commands refuse it and nothing was {}; remove immutable=1 to write to {shown}",
                loc.display,
                if exists { "changed" } else { "created" }
            ),
        ));
    }
    if write && loc.sqlite_mode.as_deref() == Some("ro") {
        return Err(coded(
            Exit::ReadOnly,
            format!(
                "{} is opened read-only (mode=ro in the URL), so write commands refuse it and nothing was {}; remove mode=ro to write to {shown}",
                loc.display,
                if exists { "changed" } else { "created" }
            ),
        ));
    }
    if file.is_dir() {
        return Err(coded(
            Exit::Connection,
            format!(
                "cannot open {}: {shown} is a directory, not a SQLite file",
                loc.display
            ),
        ));
    }
    if !exists {
        if !write {
            // The caller says so (`Ctx::connect_read`), with a hint that names where the
            // URL came from.
            return Ok(false);
        }
        if loc.sqlite_mode.as_deref() == Some("rw") {
            return Err(coded(
                Exit::Connection,
                format!(
                    "the SQLite database {shown} does not exist, and mode=rw in the URL forbids creating it; create it with mode=rwc (or no mode), or fix the path"
                ),
            ));
        }
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(coded(
                    Exit::Connection,
                    format!(
                        "cannot create the SQLite database {shown}: the directory {} does not exist; create it first (mkdir -p {})",
                        show_path(dir),
                        dir.display()
                    ),
                ));
            }
        }
        if loc.implicit {
            out.info(&format!(
                "creating SQLite database {shown} (no DATABASE_URL configured)"
            ));
        }
        return Ok(true);
    }
    if write {
        if let Some(why) = sqlite_not_writable(file) {
            return Err(coded(
                Exit::ReadOnly,
                format!(
                    "the SQLite database {shown} is read-only: {why}; nothing was changed; make it writable (chmod u+w {}) or use a copy",
                    file.display()
                ),
            ));
        }
    }
    if loc.implicit {
        out.info(&format!(
            "using SQLite database {shown} (no DATABASE_URL configured)"
        ));
    }
    Ok(true)
}

/// Opens a one-connection pool (the connection that also holds the migration lock).
/// Returns None for a read-only open of a SQLite file that does not exist yet.
pub async fn connect(
    loc: &DbLocation,
    access: Access,
    settings: &ConnectSettings,
    out: &Output,
) -> Result<Option<DatabaseConnection>> {
    let observed = Arc::new(crate::postgres::Observed::default());
    open(loc, access, settings, out, false, &observed).await
}

/// The connection that runs migrations and holds the migration lock, a session lock: it needs
/// a server session of its own, so a transaction pooler is refused (exit 18), whether the URL
/// says so (`pgbouncer=true`) or the pooler shows it (`postgres::check`).
///
/// On PostgreSQL it also returns what the session said about itself right after connecting,
/// for the engine (`migration::engine::Options::session`), which would ask again otherwise.
pub async fn connect_migrate(
    loc: &DbLocation,
    settings: &ConnectSettings,
    out: &Output,
) -> Result<(DatabaseConnection, Option<SessionFacts>)> {
    if loc.pooled {
        return Err(crate::postgres::pooler_refusal(
            loc,
            "it is marked as one (pgbouncer=true)",
        ));
    }
    let observed = Arc::new(crate::postgres::Observed::default());
    let db = open(loc, Access::Write, settings, out, true, &observed).await?;
    Ok((db.context("no connection was opened")?, observed.session()))
}

/// A writer killed mid-transaction leaves a hot rollback journal beside the database, which a
/// read-only connection cannot roll back (SQLITE_READONLY_ROLLBACK): every read command would
/// fail as "read-only" until the next write. Any writable open makes SQLite roll it back to
/// the last committed state, as the next writer would; so one is made here, briefly and
/// without creating anything, when a journal is there. Best effort: the read-only open that
/// follows reports whatever is still wrong.
async fn roll_back_hot_journal(file: &Path) {
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _, Executor as _};
    let mut journal = file.as_os_str().to_owned();
    journal.push("-journal");
    let hot = std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0);
    if !hot || sqlite_not_writable(file).is_some() {
        return;
    }
    let opts = sea_orm::sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(false)
        .read_only(false)
        .busy_timeout(Duration::from_secs(1));
    if let Ok(mut conn) = opts.connect().await {
        let _ = conn.execute("SELECT count(*) FROM sqlite_master").await;
        let _ = conn.close().await;
    }
}

/// `session`: the connection is a migration session (see `postgres::options`).
async fn open(
    loc: &DbLocation,
    access: Access,
    settings: &ConnectSettings,
    out: &Output,
    session: bool,
    observed: &Arc<crate::postgres::Observed>,
) -> Result<Option<DatabaseConnection>> {
    dberror::set_location(loc);
    if loc.backend == DbBackend::Sqlite && !sqlite_preflight(loc, access, out)? {
        return Ok(None);
    }
    if let (DbBackend::Sqlite, Access::ReadOnly, Some(file)) =
        (loc.backend, access, &loc.sqlite_file)
    {
        if loc.sqlite_mode.as_deref() != Some("ro") {
            roll_back_hot_journal(file).await;
        }
    }
    check_tls_files(loc)?;
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
            crate::postgres::options(&mut opt, access, settings, session, observed);
        }
        DbBackend::Sqlite => {
            let write = access == Access::Write;
            let create = write && loc.sqlite_mode.as_deref() != Some("rw");
            // A write waits as long for another process's lock on the file as for the
            // migration lock (sqlx's default is 5 s, whatever --lock-timeout says).
            let busy = if write {
                settings.lock_timeout
            } else {
                Duration::from_secs(5)
            };
            opt.map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(create)
                    .read_only(!write)
                    .busy_timeout(busy)
            });
        }
        DbBackend::MySql => {
            // The one connection holds the session (GET_LOCK): lost, it is not replaced.
            opt.map_sqlx_mysql_pool_opts(|p| p.replace_lost_connections(false));
        }
        _ => {}
    }
    let started = Instant::now();
    let deadline = settings.wait.map(|w| started + w);
    let mut delay = Duration::from_millis(100);
    let mut said_waiting = false;
    // Sleeps before the next attempt if --wait allows one; the last attempt is made at the
    // deadline itself, so the full --wait-timeout is used.
    let mut may_retry = |why: &str| {
        let now = Instant::now();
        let deadline = deadline.filter(|d| now < *d)?;
        if !said_waiting {
            out.info(&format!(
                "waiting for the database at {} to accept connections ({why}; for up to {}s)",
                loc.display,
                settings.wait.unwrap_or_default().as_secs()
            ));
            said_waiting = true;
        }
        let pause = delay.min(deadline - now);
        delay = (delay * 2).min(Duration::from_secs(2));
        Some(pause)
    };
    tracing::info!("connecting to {} ({access:?})", loc.display);
    // A bare TCP probe (it sends nothing, which PostgreSQL deliberately does not log) says
    // fast why a server cannot be reached, and is what --wait polls. MySQL is probed first
    // (its greeting also tells a server that is not MySQL apart). PostgreSQL is connected to
    // at once (its pool gives up on a refused connection instead of retrying it) and probed
    // only when that fails: the probe costs the server a backend process of its own.
    let mut probe_now = loc.backend != DbBackend::Postgres;
    'connect: loop {
        if let (true, Some((host, port))) = (probe_now, loc.tcp_endpoint()) {
            loop {
                let limit = match deadline {
                    Some(d) => d
                        .saturating_duration_since(Instant::now())
                        .clamp(Duration::from_secs(1), Duration::from_secs(5)),
                    None => Duration::from_secs(5),
                };
                match probe(&host, port, loc.backend, limit).await {
                    Ok(()) => break,
                    Err(Probe::WrongServer(what)) => {
                        return Err(coded(
                            Exit::Connection,
                            format!("cannot connect to {}: {what}", loc.display),
                        ))
                    }
                    Err(Probe::Down(e)) => match may_retry(&e) {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => {
                            let hint = if settings.wait.is_some() {
                                format!(
                                    "the server did not come up within --wait-timeout ({}s)",
                                    settings.wait.unwrap_or_default().as_secs()
                                )
                            } else {
                                "is the server running and the host/port right? Use --wait to wait for it".into()
                            };
                            let extra = loc
                                .encoding_hint
                                .as_ref()
                                .map(|h| format!("; {h}"))
                                .unwrap_or_default();
                            return Err(coded(
                                Exit::Connection,
                                format!("cannot connect to {}: {e}; {hint}{extra}", loc.display),
                            ));
                        }
                    },
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
                            crate::postgres::check(db, loc, access, settings, session, observed)
                                .await?
                        }
                        _ => db,
                    };
                    return Ok(Some(db));
                }
                Err(e) => {
                    let failure = classify(&e);
                    // A connect that timed out already waited its full time: probing and
                    // connecting again would double it.
                    let timed_out =
                        matches!(sqlx_error(&e), Some(sea_orm::sqlx::Error::PoolTimedOut));
                    if failure == ConnFailure::Unreachable
                        && !probe_now
                        && !timed_out
                        && loc.tcp_endpoint().is_some()
                    {
                        // The probe says why (or waits for the server, with --wait).
                        probe_now = true;
                        continue 'connect;
                    }
                    if failure.retryable() {
                        if let Some(pause) = may_retry(failure.short()) {
                            tokio::time::sleep(pause).await;
                            continue;
                        }
                    }
                    return Err(connect_error(loc, &e, failure, settings).await);
                }
            }
        }
    }
}

enum Probe {
    /// Not reachable (yet): worth waiting for.
    Down(String),
    /// Something answers, but not the server the URL's scheme expects.
    WrongServer(String),
}

/// Opens and closes a TCP connection, with a timeout. For MySQL/MariaDB it also reads the
/// server's greeting (which it sends at once): silence there usually means PostgreSQL.
async fn probe(
    host: &str,
    port: u16,
    backend: DbBackend,
    limit: Duration,
) -> std::result::Result<(), Probe> {
    let connect = tokio::net::TcpStream::connect((host, port));
    let stream = match tokio::time::timeout(limit, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Probe::Down(format!("{host}:{port}: {}", io_reason(&e)))),
        Err(_) => {
            return Err(Probe::Down(format!(
                "{host}:{port}: no answer within {}s",
                limit.as_secs()
            )))
        }
    };
    if backend == DbBackend::MySql {
        if let Some(what) = sniff_not_mysql(stream).await {
            return Err(Probe::WrongServer(format!(
                "the server at {host}:{port} {what}, not MySQL/MariaDB; use a postgres:// URL for it, or MySQL's port (3306 by default)"
            )));
        }
    }
    Ok(())
}

/// What answers on a MySQL URL's port, when it is not MySQL (None: MySQL, or unknown).
async fn sniff_not_mysql(mut stream: tokio::net::TcpStream) -> Option<&'static str> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 8];
    match tokio::time::timeout(Duration::from_millis(1500), stream.read(&mut buf)).await {
        Ok(_) => None,
        Err(_) => {
            // No greeting: ask the PostgreSQL way (SSLRequest); it answers 'S' or 'N'.
            let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
            stream.write_all(&ssl_request).await.ok()?;
            let mut b = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_millis(1000), stream.read(&mut b))
                .await
                .ok()?
                .ok()?;
            (n == 1 && (b[0] == b'S' || b[0] == b'N')).then_some("speaks PostgreSQL")
        }
    }
}

/// What answers on a PostgreSQL URL's port, when it greets like MySQL/MariaDB.
async fn sniff_mysql(host: &str, port: u16) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .ok()?
    .ok()?;
    let mut buf = vec![0u8; 128];
    let n = tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    // Protocol 10 greeting: 3-byte length, sequence 0, then 0x0a and the version string.
    if n > 5 && buf[3] == 0 && buf[4] == 0x0a {
        let version: String = buf[5..n]
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| *b as char)
            .collect();
        return Some(version);
    }
    None
}

pub fn show_path(p: &Path) -> String {
    crate::config::show_path(p)
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
    /// The server speaks another protocol than the URL's scheme.
    Protocol,
    /// SQLite: another process holds the file locked (SQLITE_BUSY / SQLITE_LOCKED).
    Locked,
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
            ConnFailure::Protocol => "unexpected protocol",
            ConnFailure::Locked => "locked by another process",
            ConnFailure::Other => "error",
        }
    }
}

pub fn classify(e: &DbErr) -> ConnFailure {
    use sea_orm::sqlx::Error as S;
    match sqlx_error(e) {
        Some(S::Tls(_)) => ConnFailure::Tls,
        // rustls reports a rejected certificate as an I/O error during the handshake.
        Some(S::Io(io)) if io.to_string().contains("certificate") => ConnFailure::Tls,
        Some(S::Io(_)) | Some(S::PoolTimedOut) | Some(S::PoolClosed) => ConnFailure::Unreachable,
        Some(S::Protocol(_)) => ConnFailure::Protocol,
        Some(S::Database(_)) => {
            let d = dberror::describe(e);
            match d.sqlstate.as_deref().unwrap_or("") {
                "57P03" => ConnFailure::Starting,
                "28P01" | "28000" => ConnFailure::Auth,
                "3D000" => ConnFailure::MissingDatabase,
                _ => match dberror::mysql_number(e) {
                    Some(1045 | 1044 | 1698) => ConnFailure::Auth,
                    Some(1049) => ConnFailure::MissingDatabase,
                    _ if d.message.contains("unable to open database file") => {
                        ConnFailure::MissingDatabase
                    }
                    _ if d.exit == Exit::LockTimeout => ConnFailure::Locked,
                    _ => ConnFailure::Other,
                },
            }
        }
        _ => ConnFailure::Other,
    }
}

async fn connect_error(
    loc: &DbLocation,
    e: &DbErr,
    failure: ConnFailure,
    settings: &ConnectSettings,
) -> anyhow::Error {
    let Described { message, exit, .. } = dberror::describe(e);
    let mysql = loc.backend == DbBackend::MySql;
    let hint = match failure {
        ConnFailure::Unreachable | ConnFailure::Starting if settings.wait.is_some() => {
            format!(
                "the server did not come up within --wait-timeout ({}s)",
                settings.wait.unwrap_or_default().as_secs()
            )
        }
        ConnFailure::Unreachable | ConnFailure::Starting => {
            "is the server running and the host/port right? Use --wait to wait for it".to_owned()
        }
        ConnFailure::Auth => {
            let mut h = if loc.backend == DbBackend::Postgres {
                "check the user name and password (in the URL, or PGUSER / PGPASSWORD / ~/.pgpass)"
                    .to_owned()
            } else {
                "check the user name and password in the URL".to_owned()
            };
            if let Some(s) = &loc.encoding_hint {
                h = format!("{h}; {s}");
            }
            h
        }
        ConnFailure::Tls if mysql => {
            if message.contains("does not support TLS") {
                "the server offers no TLS: use ssl-mode=PREFERRED or DISABLED in the URL, or enable TLS on the server".to_owned()
            } else {
                "check ssl-mode in the URL (DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY); VERIFY_CA and VERIFY_IDENTITY need the server's CA as ssl-ca=/path/to/ca.pem".to_owned()
            }
        }
        ConnFailure::Tls => {
            if message.contains("does not support TLS") {
                "the server offers no TLS: use sslmode=prefer or disable in the URL, or enable TLS on the server".to_owned()
            } else {
                "check sslmode in the URL (disable, prefer, require, verify-ca, verify-full); verify-ca and verify-full need the server's CA as sslrootcert=/path/to/ca.pem".to_owned()
            }
        }
        ConnFailure::MissingDatabase => match &loc.sqlite_file {
            Some(f) => format!(
                "check that the directory of {} exists and is writable",
                f.display()
            ),
            None => {
                "create the database first (e.g. createdb NAME / CREATE DATABASE NAME)".to_owned()
            }
        },
        ConnFailure::Protocol => {
            if let Some((host, port)) = loc.tcp_endpoint() {
                if loc.backend == DbBackend::Postgres {
                    if let Some(version) = sniff_mysql(&host, port).await {
                        return coded(
                            Exit::Connection,
                            format!(
                                "cannot connect to {}: the server at {host}:{port} is MySQL/MariaDB ({version}), not PostgreSQL; use a mysql:// URL for it, or PostgreSQL's port (5432 by default)",
                                loc.display
                            ),
                        );
                    }
                }
            }
            "the server does not speak the protocol of the URL's scheme: check the host, the port and the scheme".to_owned()
        }
        ConnFailure::Locked => {
            // The database's own message already says who holds it and what to do.
            return coded(
                Exit::LockTimeout,
                format!(
                    "cannot open {} for writing within --lock-timeout ({}s): {message}",
                    loc.display,
                    settings.lock_timeout.as_secs()
                ),
            );
        }
        ConnFailure::Other => match exit {
            Exit::Usage => "fix the URL".to_owned(),
            _ if loc.backend == DbBackend::Sqlite => {
                "check the path in the URL and that the file is a SQLite database".to_owned()
            }
            _ => "check the URL and the server's log".to_owned(),
        },
    };
    let exit = match exit {
        Exit::Usage | Exit::PermissionDenied | Exit::ReadOnly => exit,
        _ => Exit::Connection,
    };
    coded(
        exit,
        format!("cannot connect to {}: {message}; {hint}", loc.display),
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
    fn every_credential_form_is_masked() {
        assert_eq!(
            mask("postgres://u@h/d?password=S3cret&sslmode=require&sslpassword=k%20ey"),
            "postgres://u@h/d?password=***&sslmode=require&sslpassword=***"
        );
        assert_eq!(
            mask_unparsed("postgres://u:p#w@h/d"),
            "postgres://u:***@h/d"
        );
        for m in [
            "sqlite::memory:",
            "sqlite://",
            "sqlite:",
            "sqlite://:memory:",
            "sqlite://x.db?mode=memory",
        ] {
            assert!(DbLocation::parse(Some(m)).unwrap().memory, "{m}");
        }
        let ro = DbLocation::parse(Some("sqlite://a%20b.db?mode=ro")).unwrap();
        assert_eq!(ro.sqlite_file.as_deref(), Some(Path::new("a b.db")));
        assert_eq!(ro.sqlite_mode.as_deref(), Some("ro"));
        assert!(DbLocation::parse(Some("mysql://root@127.0.0.1:3306")).is_err());
        assert!(DbLocation::parse(Some("mysql://root@127.0.0.1:3306/")).is_err());
        assert!(special_char_hint("postgres://u:a#b@h/d")
            .unwrap()
            .contains("%23"));
        assert!(special_char_hint("postgres://u:ab@h/d").is_none());
    }

    #[test]
    fn odd_url_forms_are_refused_and_masked() {
        for raw in [
            "postgres:/u:Leak1@h:5432/d",
            "postgresql:u:Leak1@h:5432/d",
            "mysql:/root:Leak1@h:3306/d",
            "postgres:///u:Leak1@h/d",
            "mysql:////root:Leak1@h/d",
            "postgres://u:Leak1@h/d%00x",
            "postgres://u:Le ak1@[::1/d",
            "u:Leak1@host.db",
            "postgres:\\u:Leak1@h/d",
        ] {
            let e = DbLocation::parse(Some(raw)).unwrap_err();
            let code = e.downcast_ref::<crate::exit::Coded>().map(|c| c.exit);
            assert_eq!(code, Some(Exit::Usage), "{raw}: {e}");
            assert!(!e.to_string().contains("Leak1"), "{raw}: {e}");
        }
        assert_eq!(mask("postgres:/u:pw@h/d"), "postgres:/u:***@h/d");
        assert_eq!(mask("postgres:///u:pw@h/d"), "postgres:///u:***@h/d");
        assert_eq!(mask("sqlite://a:b@c.db"), "sqlite://a:b@c.db");
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
