//! Layered configuration, lowest to highest precedence: built-in defaults, `dbtool.toml`
//! (or `--config PATH`), `.env` in the working directory, environment variables, flags.
//! clap parses the flags only (see `args::parse_command`); the environment, `.env` and the
//! file are read here, so that a bad value names the variable and where it came from.
//! `DATABASE_URL_FILE` is `DATABASE_URL` read from a file, at the same layer; with no URL at
//! all, libpq's `PGHOST` / `PGDATABASE` / `PGSERVICE` select PostgreSQL (see `libpq`).

use crate::args::{AppArg, GlobalArgs};
use crate::exit::{coded, Exit};
use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, ValueEnum};
use migration::App;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The configuration file looked for in the working directory.
pub const FILE_NAME: &str = "dbtool.toml";
/// The dotenv file looked for in the working directory.
pub const DOTENV_NAME: &str = ".env";

pub const DEFAULT_LOCK_TIMEOUT: u64 = 60;
pub const DEFAULT_DDL_LOCK_TIMEOUT: f64 = 5.0;
pub const DEFAULT_DDL_RETRIES: u32 = 3;
pub const DEFAULT_WAIT_TIMEOUT: u64 = 60;

/// `DATABASE_URL` from a file (a secret mounted as a file, as in Kubernetes).
pub const URL_FILE_VAR: &str = "DATABASE_URL_FILE";

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    #[serde(rename = "default")]
    Default,
    #[serde(rename = "dbtool.toml")]
    File,
    #[serde(rename = ".env")]
    DotEnv,
    #[serde(rename = "env")]
    Env,
    #[serde(rename = "flag")]
    Flag,
    /// The file named by `DATABASE_URL_FILE` in the environment.
    #[serde(rename = "env DATABASE_URL_FILE")]
    UrlFileEnv,
    /// The file named by `DATABASE_URL_FILE` in `.env`.
    #[serde(rename = ".env DATABASE_URL_FILE")]
    UrlFileDotEnv,
    /// No URL configured; built from libpq's variables (`PGHOST`, `PGDATABASE`, `PGSERVICE`).
    #[serde(rename = "libpq env")]
    Libpq,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => FILE_NAME,
            Source::DotEnv => DOTENV_NAME,
            Source::Env => "env",
            Source::Flag => "flag",
            Source::UrlFileEnv => "env DATABASE_URL_FILE",
            Source::UrlFileDotEnv => ".env DATABASE_URL_FILE",
            Source::Libpq => "libpq env",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which global options were given as flags.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub database_url: Option<Source>,
    pub direct_url: Option<Source>,
    pub app: Option<Source>,
    pub schema: Option<Source>,
    pub lock_timeout: Option<Source>,
    pub ddl_lock_timeout: Option<Source>,
    pub ddl_retries: Option<Source>,
    pub statement_timeout: Option<Source>,
    pub wait: Option<Source>,
    pub wait_timeout: Option<Source>,
}

impl Given {
    /// Reads the value sources of the global options from clap's matches.
    pub fn from_matches(m: &ArgMatches) -> Given {
        let src = |id: &str| {
            // An id this build does not define reads as "not given" instead of panicking.
            m.try_contains_id(id).ok().filter(|present| *present)?;
            match m.value_source(id)? {
                ValueSource::CommandLine => Some(Source::Flag),
                ValueSource::EnvVariable => Some(Source::Env),
                _ => None,
            }
        };
        Given {
            database_url: src("database_url"),
            direct_url: src("direct_url"),
            app: src("app"),
            schema: src("schema"),
            lock_timeout: src("lock_timeout"),
            ddl_lock_timeout: src("ddl_lock_timeout"),
            ddl_retries: src("ddl_retries"),
            statement_timeout: src("statement_timeout"),
            wait: src("wait"),
            wait_timeout: src("wait_timeout"),
        }
    }
}

/// One effective value and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Setting<T> {
    fn new(value: T, source: Source) -> Setting<T> {
        Setting { value, source }
    }
}

/// The effective configuration: every global option that can be configured, with its source.
#[derive(Debug, Clone)]
pub struct Config {
    /// The raw URL (password included); show it only through `DbLocation::display`.
    pub database_url: Setting<Option<String>>,
    /// Where the URL came from, for messages: `--database-url`, `DATABASE_URL in ./.env
    /// (line 3)`, ...
    pub database_url_origin: String,
    /// The file the URL was read from (`DATABASE_URL_FILE`), if any.
    pub database_url_file: Option<PathBuf>,
    /// The URL migrations use instead of `database_url` (a pooler's), password included.
    pub direct_url: Setting<Option<String>>,
    pub app: Setting<App>,
    pub schema: Setting<Option<String>>,
    pub lock_timeout: Setting<u64>,
    /// Seconds a migration step may wait for a table lock before it is retried.
    pub ddl_lock_timeout: Setting<f64>,
    /// How often a step that timed out on a table lock is retried.
    pub ddl_retries: Setting<u32>,
    /// Seconds any one statement of a step may run; None: no limit.
    pub statement_timeout: Setting<Option<f64>>,
    pub wait: Setting<bool>,
    pub wait_timeout: Setting<u64>,
    /// The configuration file that was read, if any.
    pub file: Option<PathBuf>,
    /// The file was named with `--config` (hints repeat it; from the environment or `.env`
    /// the same command finds it again).
    pub file_from_flag: bool,
    /// The `.env` file that was read, if any.
    pub dotenv: Option<PathBuf>,
    /// Things worth a warning (a shadowed `DATABASE_URL_FILE`), printed once by the caller.
    pub warnings: Vec<String>,
    pub verbose: u8,
}

/// A boolean as written in `dbtool.toml`: `true`, or a spelling also accepted in `.env`
/// and the environment (`"yes"`, `1`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BoolLike {
    Bool(bool),
    Int(i64),
    Text(String),
}

/// The keys a `dbtool.toml` may hold (every global option that makes sense in a file).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    direct_url: Option<String>,
    app: Option<String>,
    schema: Option<String>,
    // Numbers are checked by dbtool, not serde, so that a wrong one is named in words
    // (`-1 is not a whole number of seconds`), never as a Rust type (`expected u64`).
    lock_timeout: Option<toml::Value>,
    ddl_lock_timeout: Option<toml::Value>,
    ddl_retries: Option<toml::Value>,
    statement_timeout: Option<toml::Value>,
    wait: Option<BoolLike>,
    wait_timeout: Option<toml::Value>,
    /// The line each key is on, for messages.
    #[serde(skip)]
    lines: HashMap<String, usize>,
}

/// `an array`, `a table`.
fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

/// A number from `dbtool.toml` as the text it would be in the environment (`60`, `0.5`),
/// so that both go through the same parser; a string is taken as written.
fn toml_number(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "{} is not a number",
            with_article(other.type_str())
        )),
    }
}

pub const FILE_KEYS: [&str; 10] = [
    "database_url",
    "direct_url",
    "app",
    "schema",
    "lock_timeout",
    "ddl_lock_timeout",
    "ddl_retries",
    "statement_timeout",
    "wait",
    "wait_timeout",
];

/// The environment variable behind each key (also the name used in `.env`).
pub const ENV_VARS: [(&str, &str); 10] = [
    ("database_url", "DATABASE_URL"),
    ("direct_url", "DBTOOL_DIRECT_URL"),
    ("app", "DBTOOL_APP"),
    ("schema", "DBTOOL_SCHEMA"),
    ("lock_timeout", "DBTOOL_LOCK_TIMEOUT"),
    ("ddl_lock_timeout", "DBTOOL_DDL_LOCK_TIMEOUT"),
    ("ddl_retries", "DBTOOL_DDL_RETRIES"),
    ("statement_timeout", "DBTOOL_STATEMENT_TIMEOUT"),
    ("wait", "DBTOOL_WAIT"),
    ("wait_timeout", "DBTOOL_WAIT_TIMEOUT"),
];

const CONFIG_VAR: &str = "DBTOOL_CONFIG";

/// dbtool's own variables: the only lines of `.env` it parses.
fn is_own_var(k: &str) -> bool {
    k == CONFIG_VAR || k == URL_FILE_VAR || ENV_VARS.iter().any(|(_, v)| *v == k)
}

/// One raw value and where it was found, for parsing and error messages.
struct Raw {
    value: String,
    source: Source,
    /// `DBTOOL_WAIT (environment)`, `DBTOOL_WAIT in ./.env (line 4)`, ...
    origin: String,
}

/// The process environment's value of one of dbtool's variables.
fn env_raw(var: &str) -> Result<Option<Raw>> {
    match std::env::var(var) {
        Ok(value) => Ok(Some(Raw {
            value,
            source: Source::Env,
            origin: format!("{var} (environment)"),
        })),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(coded(
            Exit::Usage,
            format!("the environment variable {var} is not valid UTF-8; fix or unset it"),
        )),
    }
}

impl Config {
    /// Built-in defaults only: for commands that must work whatever the configuration
    /// (completions, man page).
    pub fn defaults(g: &GlobalArgs) -> Config {
        Config {
            database_url: Setting::new(None, Source::Default),
            database_url_origin: "the default".into(),
            database_url_file: None,
            direct_url: Setting::new(None, Source::Default),
            app: Setting::new(App::Avatar, Source::Default),
            schema: Setting::new(None, Source::Default),
            lock_timeout: Setting::new(DEFAULT_LOCK_TIMEOUT, Source::Default),
            ddl_lock_timeout: Setting::new(DEFAULT_DDL_LOCK_TIMEOUT, Source::Default),
            ddl_retries: Setting::new(DEFAULT_DDL_RETRIES, Source::Default),
            statement_timeout: Setting::new(None, Source::Default),
            wait: Setting::new(false, Source::Default),
            wait_timeout: Setting::new(DEFAULT_WAIT_TIMEOUT, Source::Default),
            file: None,
            file_from_flag: false,
            dotenv: None,
            warnings: Vec::new(),
            verbose: g.verbose,
        }
    }

    /// Layers flags over the environment, `.env`, the configuration file and the defaults.
    /// Relative paths are taken from the working directory.
    pub fn resolve(g: &GlobalArgs, given: &Given) -> Result<Config> {
        let dotenv = DotEnv::read(Path::new(DOTENV_NAME))?;
        let layers = Layers { dotenv: &dotenv };
        let mut config_origin: Option<String> = None;
        let (file_path, explicit) = match &g.config {
            Some(p) => (p.clone(), true),
            None => match layers.raw(CONFIG_VAR)? {
                Some(r) if r.value.trim().is_empty() => {
                    return Err(coded(
                        Exit::Usage,
                        format!(
                            "{} is empty; name a configuration file or unset it",
                            r.origin
                        ),
                    ))
                }
                Some(r) => {
                    config_origin = Some(r.origin);
                    (PathBuf::from(r.value), true)
                }
                None => (PathBuf::from(FILE_NAME), false),
            },
        };
        if g.config.is_some() {
            config_origin = Some("--config".into());
        }
        let fc = read_file(&file_path, explicit, config_origin.as_deref())?;
        let file = fc.is_some().then(|| file_path.clone());
        let fc = fc.unwrap_or_default();
        let file_label = show_path(&file_path);
        let in_file = |key: &str, msg: String| {
            let line = fc
                .lines
                .get(key)
                .map(|n| format!(" (line {n})"))
                .unwrap_or_default();
            coded(Exit::Usage, format!("{file_label}: key {key}{line}: {msg}"))
        };

        let mut warnings = Vec::new();
        let url = resolve_url(g, given, &layers, &fc, &file_label, &mut warnings)?;

        let direct_url = match given.direct_url {
            Some(src) => Setting::new(g.direct_url.clone(), src),
            None => layers.pick(
                "DBTOOL_DIRECT_URL",
                |v| Ok(Some(v.to_owned())),
                fc.direct_url.clone().map(Some),
                None,
            )?,
        };
        if direct_url
            .value
            .as_deref()
            .is_some_and(|v| v.trim().is_empty())
        {
            let origin = match direct_url.source {
                Source::Flag => "--direct-url".to_owned(),
                Source::File => format!("direct_url in {file_label}"),
                _ => layers
                    .raw("DBTOOL_DIRECT_URL")?
                    .map(|r| r.origin)
                    .unwrap_or_else(|| "DBTOOL_DIRECT_URL".into()),
            };
            return Err(coded(
                Exit::Usage,
                format!(
                    "the direct URL from {origin} is empty; give the URL that reaches the server directly, or remove it"
                ),
            ));
        }
        let app = match (given.app, g.app) {
            (Some(src), Some(a)) => Setting::new(App::from(a), src),
            _ => layers.pick(
                "DBTOOL_APP",
                parse_app,
                fc.app
                    .as_deref()
                    .map(|v| parse_app(v).map_err(|e| in_file("app", e)))
                    .transpose()?,
                App::Avatar,
            )?,
        };
        let schema = match given.schema {
            Some(src) => {
                if let Some(p) = g.schema.as_deref().and_then(schema_problem) {
                    return Err(coded(Exit::Usage, format!("invalid --schema: {p}")));
                }
                Setting::new(g.schema.clone(), src)
            }
            None => {
                if let Some(p) = fc.schema.as_deref().and_then(schema_problem) {
                    return Err(in_file("schema", p));
                }
                layers.pick(
                    "DBTOOL_SCHEMA",
                    |v| match schema_problem(v) {
                        Some(p) => Err(p),
                        None => Ok(Some(v.to_owned())),
                    },
                    fc.schema.map(Some),
                    None,
                )?
            }
        };
        let schema = Setting {
            value: schema.value.as_deref().map(fold_identifier),
            ..schema
        };
        let lock_timeout = match (given.lock_timeout, g.lock_timeout) {
            (Some(src), Some(v)) => Setting::new(v, src),
            _ => layers.pick(
                "DBTOOL_LOCK_TIMEOUT",
                parse_seconds,
                file_value(&fc.lock_timeout, parse_seconds)
                    .map_err(|e| in_file("lock_timeout", e))?,
                DEFAULT_LOCK_TIMEOUT,
            )?,
        };
        let ddl_lock_timeout = match (given.ddl_lock_timeout, &g.ddl_lock_timeout) {
            (Some(src), Some(v)) => Setting::new(
                parse_positive_seconds(v)
                    .map_err(|e| coded(Exit::Usage, format!("invalid --ddl-lock-timeout: {e}")))?,
                src,
            ),
            _ => layers.pick(
                "DBTOOL_DDL_LOCK_TIMEOUT",
                parse_positive_seconds,
                file_value(&fc.ddl_lock_timeout, parse_positive_seconds)
                    .map_err(|e| in_file("ddl_lock_timeout", e))?,
                DEFAULT_DDL_LOCK_TIMEOUT,
            )?,
        };
        let ddl_retries = match (given.ddl_retries, g.ddl_retries) {
            (Some(src), Some(v)) => Setting::new(v, src),
            _ => layers.pick(
                "DBTOOL_DDL_RETRIES",
                parse_count,
                file_value(&fc.ddl_retries, parse_count).map_err(|e| in_file("ddl_retries", e))?,
                DEFAULT_DDL_RETRIES,
            )?,
        };
        let statement_timeout = match (given.statement_timeout, &g.statement_timeout) {
            (Some(src), Some(v)) => Setting::new(
                Some(parse_positive_seconds(v).map_err(|e| {
                    coded(Exit::Usage, format!("invalid --statement-timeout: {e}"))
                })?),
                src,
            ),
            _ => layers.pick(
                "DBTOOL_STATEMENT_TIMEOUT",
                |v| parse_positive_seconds(v).map(Some),
                file_value(&fc.statement_timeout, parse_positive_seconds)
                    .map_err(|e| in_file("statement_timeout", e))?
                    .map(Some),
                None,
            )?,
        };
        let file_wait = match fc.wait {
            None => None,
            Some(BoolLike::Bool(b)) => Some(b),
            Some(BoolLike::Int(i)) => {
                Some(parse_bool(&i.to_string()).map_err(|e| in_file("wait", e))?)
            }
            Some(BoolLike::Text(t)) => Some(parse_bool(&t).map_err(|e| in_file("wait", e))?),
        };
        let wait = match given.wait {
            Some(src) if g.wait => Setting::new(true, src),
            _ => layers.pick("DBTOOL_WAIT", parse_bool, file_wait, false)?,
        };
        let wait_timeout = match (given.wait_timeout, g.wait_timeout) {
            (Some(src), Some(v)) => Setting::new(v, src),
            _ => layers.pick(
                "DBTOOL_WAIT_TIMEOUT",
                parse_seconds,
                file_value(&fc.wait_timeout, parse_seconds)
                    .map_err(|e| in_file("wait_timeout", e))?,
                DEFAULT_WAIT_TIMEOUT,
            )?,
        };
        let shown = |p: &Option<PathBuf>| p.as_deref().map(show_path);
        tracing::debug!(
            "configuration file: {}, .env: {}",
            shown(&file).unwrap_or_else(|| "none".into()),
            shown(&dotenv.path).unwrap_or_else(|| "none".into())
        );
        Ok(Config {
            database_url: url.setting,
            database_url_origin: url.origin,
            database_url_file: url.file,
            direct_url,
            app,
            schema,
            lock_timeout,
            ddl_lock_timeout,
            ddl_retries,
            statement_timeout,
            wait,
            wait_timeout,
            file,
            file_from_flag: g.config.is_some(),
            dotenv: dotenv.path,
            warnings,
            verbose: g.verbose,
        })
    }
}

/// The environment over `.env`, for one variable at a time.
struct Layers<'a> {
    dotenv: &'a DotEnv,
}

impl Layers<'_> {
    /// The highest raw value of `var`: environment, then `.env`.
    fn raw(&self, var: &str) -> Result<Option<Raw>> {
        if let Some(r) = env_raw(var)? {
            return Ok(Some(r));
        }
        Ok(self.dotenv.raw(var))
    }

    /// The highest of environment, `.env`, file and default; a value that does not parse
    /// names the variable and where it was set.
    fn pick<T>(
        &self,
        var: &str,
        parse: impl Fn(&str) -> Result<T, String>,
        file: Option<T>,
        default: T,
    ) -> Result<Setting<T>> {
        if let Some(r) = self.raw(var)? {
            let v = parse(&r.value)
                .map_err(|e| coded(Exit::Usage, format!("invalid {}: {e}", r.origin)))?;
            return Ok(Setting::new(v, r.source));
        }
        Ok(match file {
            Some(v) => Setting::new(v, Source::File),
            None => Setting::new(default, Source::Default),
        })
    }
}

/// The database URL, its source and where it came from, before it is parsed.
struct UrlSetting {
    setting: Setting<Option<String>>,
    origin: String,
    file: Option<PathBuf>,
}

/// `--database-url` > `DATABASE_URL` / `DATABASE_URL_FILE` in the environment > the same in
/// `.env` > `database_url` in the file > libpq's variables > the default SQLite file. An
/// explicit empty value is an error: it would otherwise silently mean `./dbtool.db`.
fn resolve_url(
    g: &GlobalArgs,
    given: &Given,
    layers: &Layers,
    fc: &FileConfig,
    file_label: &str,
    warnings: &mut Vec<String>,
) -> Result<UrlSetting> {
    let empty = |origin: &str| {
        coded(
            Exit::Usage,
            format!(
                "{origin} is empty; give a database URL (postgres://user@host/dbname, mysql://user@host/dbname or sqlite://path/to/file.db), or remove it to use ./dbtool.db"
            ),
        )
    };
    let done = |value: String, source: Source, origin: String, file: Option<PathBuf>| {
        if value.trim().is_empty() {
            return Err(empty(&origin));
        }
        Ok(UrlSetting {
            setting: Setting::new(Some(value), source),
            origin,
            file,
        })
    };
    if let (Some(src), Some(v)) = (given.database_url, &g.database_url) {
        return done(v.clone(), src, "--database-url".into(), None);
    }
    // Within one layer DATABASE_URL wins over DATABASE_URL_FILE.
    let from_env = (env_raw("DATABASE_URL")?, env_raw(URL_FILE_VAR)?);
    let from_dotenv = (
        layers.dotenv.raw("DATABASE_URL"),
        layers.dotenv.raw(URL_FILE_VAR),
    );
    for (url, url_file, file_source) in [
        (from_env.0, from_env.1, Source::UrlFileEnv),
        (from_dotenv.0, from_dotenv.1, Source::UrlFileDotEnv),
    ] {
        match (url, url_file) {
            (Some(u), shadowed) => {
                if let Some(f) = shadowed {
                    warnings.push(format!(
                        "{} is ignored: DATABASE_URL is set there too, and wins",
                        f.origin
                    ));
                }
                return done(u.value, u.source, u.origin, None);
            }
            (None, Some(f)) => {
                let path = PathBuf::from(f.value.trim());
                if f.value.trim().is_empty() {
                    return Err(coded(
                        Exit::Usage,
                        format!(
                            "{} is empty; name the file that holds the database URL, or unset it",
                            f.origin
                        ),
                    ));
                }
                let text = read_url_file(&path).map_err(|why| {
                    coded(
                        Exit::Usage,
                        format!(
                            "{} names {}, which {why}; mount or create the file, or unset {URL_FILE_VAR}",
                            f.origin,
                            show_path(&path),
                        ),
                    )
                })?;
                // A mounted secret usually ends with a newline; a URL never does.
                let url = text.trim().to_owned();
                let origin = format!("the file {} ({})", show_path(&path), f.origin);
                if url.contains('\n') {
                    return Err(coded(
                        Exit::Usage,
                        format!(
                            "{origin} holds more than one line; it must hold only the database URL"
                        ),
                    ));
                }
                return done(url, file_source, origin, Some(path));
            }
            (None, None) => {}
        }
    }
    if let Some(v) = &fc.database_url {
        return done(
            v.clone(),
            Source::File,
            format!("database_url in {file_label}"),
            None,
        );
    }
    if crate::libpq::selects_postgres() {
        return Ok(UrlSetting {
            setting: Setting::new(None, Source::Libpq),
            origin: "libpq's environment variables".into(),
            file: None,
        });
    }
    Ok(UrlSetting {
        setting: Setting::new(None, Source::Default),
        origin: "the default".into(),
        file: None,
    })
}

/// The most a `DATABASE_URL_FILE` may hold: a URL is short, and `/dev/zero` is endless.
const URL_FILE_MAX: u64 = 64 * 1024;

/// The text of a `DATABASE_URL_FILE`: a regular file (a symlink to one, as Kubernetes
/// mounts secrets, is fine) of at most [`URL_FILE_MAX`] bytes. A FIFO or device is refused
/// before it is opened, so nothing blocks or reads forever. The error completes "which ...".
fn read_url_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {}", io_reason(&e)))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            if t.is_fifo() {
                "a FIFO"
            } else if t.is_char_device() || t.is_block_device() {
                "a device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a file"
            }
        };
        return Err(format!(
            "is {kind}, not a regular file holding the database URL"
        ));
    }
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot be read: {}", io_reason(&e)))?;
    let mut bytes = Vec::new();
    file.take(URL_FILE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {}", io_reason(&e)))?;
    if bytes.len() as u64 > URL_FILE_MAX {
        return Err(format!(
            "is larger than {} KiB, far more than a database URL",
            URL_FILE_MAX / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_owned())
}

/// The reason of an I/O error without Rust's `(os error N)` suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_owned(),
                None => s,
            }
        }
    }
}

pub(crate) fn parse_app(v: &str) -> Result<App, String> {
    AppArg::from_str(v.trim(), true)
        .map(App::from)
        .map_err(|_| {
            let names: Vec<String> = AppArg::value_variants()
                .iter()
                .filter_map(|a| a.to_possible_value())
                .filter(|p| !p.is_hide_set())
                .map(|p| p.get_name().to_owned())
                .collect();
            format!("unknown app '{v}'; use one of: {}", names.join(", "))
        })
}

/// The longest any timeout may be: a day. Longer waits are no timeout at all, and a
/// deadline that far out can overflow the clock (`Instant + Duration` panics).
pub const MAX_SECONDS: u64 = 86_400;

/// A key of `dbtool.toml` through the parser of its environment variable.
fn file_value<T>(
    v: &Option<toml::Value>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    v.as_ref()
        .map(|v| toml_number(v).and_then(|text| parse(&text)))
        .transpose()
}

/// Seconds as a number that may have a fraction (`5`, `0.5`), more than zero and at most
/// a day. The error echoes the value as typed.
pub fn parse_positive_seconds(v: &str) -> Result<f64, String> {
    let n: f64 = v
        .trim()
        .parse()
        .map_err(|_| format!("'{v}' is not a number of seconds (e.g. 5 or 0.5)"))?;
    if n.is_finite() && n > 0.0 && n <= MAX_SECONDS as f64 {
        Ok(n)
    } else if n > 0.0 {
        Err(format!(
            "'{v}' is out of range: at most {MAX_SECONDS} seconds (a day)"
        ))
    } else {
        Err(format!("'{v}' is not a number of seconds above 0"))
    }
}

/// A whole number of retries (0 to 100).
fn parse_count(v: &str) -> Result<u32, String> {
    v.trim()
        .parse()
        .ok()
        .filter(|n| *n <= 100)
        .ok_or_else(|| format!("'{v}' is not a whole number of retries from 0 to 100"))
}

/// A whole number of seconds from 0 to a day (`--lock-timeout`, `--wait-timeout` and their
/// variables); also clap's parser for the flags, so every source says the same.
pub fn parse_seconds(v: &str) -> Result<u64, String> {
    let t = v.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return t.parse().ok().filter(|n| *n <= MAX_SECONDS).ok_or_else(|| {
            format!("'{v}' is out of range: at most {MAX_SECONDS} seconds (a day)")
        });
    }
    if t.parse::<f64>().is_ok_and(|f| f.is_finite() && f >= 0.0) {
        return Err(format!(
            "'{v}' is not a whole number of seconds: this setting takes whole seconds (e.g. 1 or 60)"
        ));
    }
    Err(format!("'{v}' is not a whole number of seconds (e.g. 60)"))
}

/// The one set of spellings for a boolean, in the environment, `.env` and `dbtool.toml`.
/// Empty means false, as an unset variable does.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "n" | "off" => Ok(false),
        _ => Err(format!(
            "'{v}' is not a boolean; use true or false (also yes/no, on/off, 1/0)"
        )),
    }
}

/// A schema name as PostgreSQL reads an identifier: in double quotes (`"Avatar Data"`)
/// exactly, otherwise folded to lower case, so that `PUBLIC`, `Public` and `public` name one
/// schema, and take one migration lock.
pub fn fold_identifier(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() => inner.replace("\"\"", "\""),
        _ => name.to_ascii_lowercase(),
    }
}

/// What is wrong with a schema name, if anything. PostgreSQL truncates longer identifiers
/// silently, which would put the tables elsewhere.
fn schema_problem(name: &str) -> Option<String> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.len() > 63 {
        "is longer than 63 bytes (PostgreSQL's limit)"
    } else if name.contains('\0') {
        "contains a NUL character"
    } else {
        return None;
    };
    Some(format!(
        "schema name '{}' {problem}; give a valid PostgreSQL schema name",
        name.escape_debug()
    ))
}

/// dbtool's own settings from a `.env` file. Only its own variables are parsed, with
/// shell-like quoting: lines of other tools (whatever their syntax) are left alone, and the
/// last definition of a variable wins, as in shells and docker compose.
struct DotEnv {
    path: Option<PathBuf>,
    /// Value and line number of each of dbtool's variables.
    vars: HashMap<String, (String, usize)>,
}

impl DotEnv {
    /// Reads `.env` without touching the process environment; a missing file is no error.
    fn read(path: &Path) -> Result<DotEnv> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DotEnv {
                    path: None,
                    vars: HashMap::new(),
                })
            }
            Err(e) => {
                return Err(coded(
                    Exit::Usage,
                    format!("cannot read {}: {}", show_path(path), io_reason(&e)),
                ))
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let vars = parse_dotenv(&text, &|k| std::env::var(k).ok(), &is_own_var)
            .map_err(|e| coded(Exit::Usage, format!("{}: {e}", show_path(path))))?;
        Ok(DotEnv {
            path: Some(path.to_path_buf()),
            vars,
        })
    }

    fn raw(&self, var: &str) -> Option<Raw> {
        let (value, line) = self.vars.get(var)?;
        Some(Raw {
            value: value.clone(),
            source: Source::DotEnv,
            origin: format!("{var} in {} (line {line})", self.display_path()),
        })
    }

    fn display_path(&self) -> String {
        self.path
            .as_deref()
            .map(show_path)
            .unwrap_or_else(|| DOTENV_NAME.into())
    }
}

/// Parses the lines of a `.env` text that set one of dbtool's variables. `lookup` gives
/// the process environment for `$NAME` / `${NAME}` (it comes first, as in dotenvy and docker
/// compose), then earlier lines of the file. An error names the variable and line, never
/// the value (it may hold a password).
fn parse_dotenv(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    is_own_var: &dyn Fn(&str) -> bool,
) -> Result<HashMap<String, (String, usize)>, String> {
    let mut ours = HashMap::new();
    // Every line that parses, for substitution; other tools' lines that do not are skipped.
    let mut seen: HashMap<String, String> = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut next = 0;
    while next < lines.len() {
        let i = next;
        next += 1;
        let line_no = i + 1;
        let l = lines[i].trim_start_matches('\u{feff}').trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map(str::trim_start)
            .unwrap_or(l);
        let Some(eq) = l.find('=') else {
            continue;
        };
        let key = l[..eq].trim();
        // A value that starts with a quote may go on over the next lines (docker compose and
        // dotenv read it so): those lines belong to it, whoever's variable it is, and are
        // never read as lines of their own. An opening quote that never closes stays a
        // one-line value (an error for dbtool's own variables, skipped for others).
        let mut raw = std::borrow::Cow::Borrowed(&l[eq + 1..]);
        let first = raw.trim_start();
        if let Some(q) = first.chars().next().filter(|c| *c == '"' || *c == '\'') {
            if closing_quote(&first[1..], q).is_none() {
                let mut joined = first.to_owned();
                let mut j = i + 1;
                while j < lines.len() {
                    joined.push('\n');
                    joined.push_str(lines[j]);
                    if closing_quote(&joined[1..], q).is_some() {
                        raw = std::borrow::Cow::Owned(joined);
                        next = j + 1;
                        break;
                    }
                    j += 1;
                }
            }
        }
        let value = {
            let lookup_all = |k: &str| lookup(k).or_else(|| seen.get(k).cloned());
            parse_value(&raw, &lookup_all)
        };
        if is_own_var(key) {
            let v = value.map_err(|e| format!("line {line_no} ({key}): {e}"))?;
            seen.insert(key.to_owned(), v.clone());
            ours.insert(key.to_owned(), (v, line_no));
        } else if let Ok(v) = value {
            seen.insert(key.to_owned(), v);
        }
    }
    Ok(ours)
}

/// The values `.env` in the working directory gives the variables `names` (those a fleet
/// file's `${VAR}`s name, which count as dbtool's own there), parsed as dbtool's own lines
/// are; a missing file gives none.
pub fn dotenv_vars(names: &[String]) -> Result<HashMap<String, String>> {
    let path = Path::new(DOTENV_NAME);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => {
            return Err(coded(
                Exit::Usage,
                format!("cannot read {}: {}", show_path(path), io_reason(&e)),
            ))
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let wanted = |k: &str| names.iter().any(|n| n == k);
    let vars = parse_dotenv(&text, &|k| std::env::var(k).ok(), &wanted)
        .map_err(|e| coded(Exit::Usage, format!("{}: {e}", show_path(path))))?;
    Ok(vars.into_iter().map(|(k, (v, _))| (k, v)).collect())
}

/// Where the quote `q` opened before `rest` closes (a `\"` inside double quotes does not
/// close it).
fn closing_quote(rest: &str, q: char) -> Option<usize> {
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' && q == '"' {
            chars.next();
        } else if c == q {
            return Some(i);
        }
    }
    None
}

/// One value: `'single'` (literal), `"double"` (with `\` escapes and `$` substitution) or
/// bare (substitution, `\` escapes, a ` #` starts a comment); quoted and bare parts may
/// follow each other as in a shell.
fn parse_value(raw: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = raw.trim().chars().peekable();
    // `#` starts a comment only at the start of a word, as in a shell.
    let mut last_was_space = raw.starts_with([' ', '\t']);
    // Trailing blanks of a bare part are not part of the value.
    let mut bare_blank_run = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                bare_blank_run = 0;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => out.push(c),
                        None => return Err("unterminated single quote; close it with '".into()),
                    }
                }
            }
            '"' => {
                bare_blank_run = 0;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => out.push('\n'),
                            Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                            Some(c) => {
                                out.push('\\');
                                out.push(c);
                            }
                            None => {
                                return Err("unterminated double quote; close it with \"".into())
                            }
                        },
                        Some('$') => substitute(&mut chars, &mut out, lookup)?,
                        Some(c) => out.push(c),
                        None => return Err("unterminated double quote; close it with \"".into()),
                    }
                }
            }
            '#' if last_was_space => break,
            '\\' => {
                bare_blank_run = 0;
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '$' => {
                bare_blank_run = 0;
                substitute(&mut chars, &mut out, lookup)?
            }
            c if c.is_whitespace() => {
                bare_blank_run += 1;
                out.push(c);
            }
            c => {
                bare_blank_run = 0;
                out.push(c);
            }
        }
        last_was_space = c.is_whitespace();
    }
    out.truncate(out.len() - trailing_bytes(&out, bare_blank_run));
    Ok(out)
}

/// The byte length of the last `n` characters of `s`.
fn trailing_bytes(s: &str, n: usize) -> usize {
    s.chars().rev().take(n).map(char::len_utf8).sum()
}

/// `$NAME` or `${NAME}` (the `$` already read); an unset name is empty, as in a shell. A `$`
/// not followed by a name stays as it is.
fn substitute(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let is_name = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    if chars.peek() == Some(&'{') {
        chars.next();
        let mut name = String::new();
        loop {
            match chars.next() {
                Some('}') => break,
                Some(c) => name.push(c),
                None => return Err("unterminated ${...}; close it with }".into()),
            }
        }
        // ${NAME:-default}, as docker compose has it.
        let (name, default) = match name.split_once(":-") {
            Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
            None => (name, None),
        };
        if name.is_empty() || !name.chars().all(|c| is_name(&c)) {
            return Err(format!("${{{name}}} is not a variable name"));
        }
        match (lookup(&name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(&d),
            (None, None) => out.push_str(&lookup(&name).unwrap_or_default()),
        }
        return Ok(());
    }
    match chars.peek() {
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            let mut name = String::new();
            while let Some(c) = chars.peek().copied().filter(is_name) {
                name.push(c);
                chars.next();
            }
            out.push_str(&lookup(&name).unwrap_or_default());
        }
        _ => out.push('$'),
    }
    Ok(())
}

/// Reads and checks the configuration file. None when the implicit `dbtool.toml` is absent.
/// `origin`: where an explicit path came from (`--config`, `DBTOOL_CONFIG in ./.env (line
/// 2)`), named when the file is missing.
fn read_file(path: &Path, explicit: bool, origin: Option<&str>) -> Result<Option<FileConfig>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(coded(
                Exit::Usage,
                format!(
                    "configuration file {}, named by {}, does not exist; fix the path or unset it",
                    path.display(),
                    origin.unwrap_or("--config / DBTOOL_CONFIG")
                ),
            ))
        }
        Err(e) => {
            return Err(coded(
                Exit::Usage,
                format!(
                    "cannot read configuration file {}: {}",
                    path.display(),
                    io_reason(&e)
                ),
            ))
        }
    };
    parse_file(&text)
        .map(Some)
        .map_err(|msg| coded(Exit::Usage, format!("{}: {msg}", show_path(path))))
}

/// Parses the file text; every unknown key is named (serde alone reports only the first).
fn parse_file(text: &str) -> Result<FileConfig, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    let unknown: Vec<&str> = table
        .keys()
        .map(String::as_str)
        .filter(|k| !FILE_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown key{} {}; the keys are {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            FILE_KEYS.join(", ")
        ));
    }
    let mut fc: FileConfig = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    for (i, line) in text.lines().enumerate() {
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim().trim_matches('"');
            if FILE_KEYS.contains(&key) {
                fc.lines.entry(key.to_owned()).or_insert(i + 1);
            }
        }
    }
    Ok(fc)
}

/// One line instead of toml's multi-line report: the line number, the line and the message.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let mut msg = e.message().trim().replace('\n', " ");
    // toml's wording for an integer beyond 64 bits names Rust's `i128`.
    if msg.contains(" as i128") {
        let number = msg.split('`').nth(1).unwrap_or("the number").to_owned();
        msg = format!("{number} is too large a number");
    }
    match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_no = text[..start].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            let line = if line.contains("database_url") || line.contains("://") {
                // Never echo a URL that may carry a password.
                "database_url = …"
            } else if line.starts_with("direct_url") {
                "direct_url = …"
            } else {
                line
            };
            format!("line {line_no} (`{line}`): {msg}")
        }
        None => msg,
    }
}

/// `./name` for a relative path, as people type it.
pub fn show_path(p: &Path) -> String {
    if p.is_relative() && !p.starts_with(".") && !p.starts_with("..") {
        format!("./{}", p.display())
    } else {
        p.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_checked_and_typed() {
        let fc = parse_file("app = \"neurachar\"\nlock_timeout = 5\nwait = true\n").unwrap();
        assert_eq!(fc.app.as_deref(), Some("neurachar"));
        assert_eq!(fc.lock_timeout, Some(toml::Value::Integer(5)));
        assert!(matches!(fc.wait, Some(BoolLike::Bool(true))));
        let err = parse_file("colour = 1\napp = \"avatar\"\ndatbase_url = \"x\"\n").unwrap_err();
        assert!(
            err.contains("`colour`") && err.contains("`datbase_url`"),
            "{err}"
        );
        let err = parse_file("database_url = \"postgres://u:pw@h/d\"\nwait = [3]\n").unwrap_err();
        assert!(err.contains("line 2") && !err.contains("pw"), "{err}");
    }

    #[test]
    fn values_from_text() {
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_seconds(" 30 "), Ok(30));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("0.5").unwrap_err().contains("whole seconds"));
        for big in ["86401", "18446744073709551615", "99999999999999999999999"] {
            assert!(
                parse_seconds(big).unwrap_err().contains("out of range"),
                "{big}"
            );
        }
        let e = parse_positive_seconds("18446744073709551615").unwrap_err();
        assert!(e.contains("'18446744073709551615'"), "{e}");
        assert_eq!(parse_app("NeuraChar"), Ok(App::Neurachar));
        assert!(parse_app("blog").unwrap_err().contains("avatar, neurachar"));
    }

    fn dotenv(text: &str) -> Result<HashMap<String, String>, String> {
        let env = |k: &str| (k == "FROM_ENV").then(|| "env-value".to_owned());
        parse_dotenv(text, &env, &is_own_var)
            .map(|m| m.into_iter().map(|(k, (v, _))| (k, v)).collect())
    }

    #[test]
    fn dotenv_parses_only_its_own_lines_with_shell_quoting() {
        // Another tool's multi-line quoted value is skipped as a whole.
        let m = dotenv(
            "FOO=\"line1\nDATABASE_URL=sqlite://evil.db\n\"\nBAR='x\nDBTOOL_SCHEMA=evil\n'\n\
             BAZ=\"a \\\" b\nDBTOOL_WAIT=1\nc\"\nDBTOOL_APP=neurachar\n",
        )
        .unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m["DBTOOL_APP"], "neurachar");
        let m = dotenv("DBTOOL_SCHEMA=\"a\nb\"\nDBTOOL_APP=avatar\n").unwrap();
        assert_eq!(m["DBTOOL_SCHEMA"], "a\nb");
        assert_eq!(m["DBTOOL_APP"], "avatar");
        let m = dotenv(
            "OTHER=${UNDEFINED\nBROKEN='x\nDBTOOL_APP=avatar # a comment\nDBTOOL_APP=neurachar\n\
             export DBTOOL_SCHEMA=\"it\"\"s\"\nDATABASE_URL=\"postgres://u:p#w@h/${FROM_ENV}\"\n\
             PW=s3cret\nDBTOOL_CONFIG=${PW}.toml\nDBTOOL_WAIT=\ndbtool_app=x\n",
        )
        .unwrap();
        assert_eq!(m["DBTOOL_APP"], "neurachar", "the last definition wins");
        assert_eq!(m["DBTOOL_SCHEMA"], "its");
        assert_eq!(m["DATABASE_URL"], "postgres://u:p#w@h/env-value");
        assert_eq!(m["DBTOOL_CONFIG"], "s3cret.toml");
        assert_eq!(m["DBTOOL_WAIT"], "");
        assert_eq!(m.len(), 5);
        let m = dotenv("DATABASE_URL=sqlite://a b.db   \nDBTOOL_SCHEMA=a\\ b#c\n").unwrap();
        assert_eq!(m["DATABASE_URL"], "sqlite://a b.db");
        assert_eq!(m["DBTOOL_SCHEMA"], "a b#c");
        let e = dotenv("X=1\nDATABASE_URL=\"postgres://u:secret@h/d\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("DATABASE_URL"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        assert!(dotenv("DBTOOL_APP=${UNDEFINED\n").is_err());
    }
}
