//! Layered configuration, lowest to highest precedence: built-in defaults, `dbtool.toml`
//! (or `--config PATH`), `.env` in the working directory, environment variables, flags.
//! clap already handles the top two layers; `Given` records which options it filled, and
//! `Config::resolve` fills the rest from `.env` and the file, remembering every value's source.

use crate::app::App;
use crate::args::{AppArg, GlobalArgs};
use crate::exit::{coded, Exit};
use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, ValueEnum};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The configuration file looked for in the working directory.
pub const FILE_NAME: &str = "dbtool.toml";
/// The dotenv file looked for in the working directory.
pub const DOTENV_NAME: &str = ".env";

pub const DEFAULT_LOCK_TIMEOUT: u64 = 60;
pub const DEFAULT_WAIT_TIMEOUT: u64 = 60;

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
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => FILE_NAME,
            Source::DotEnv => DOTENV_NAME,
            Source::Env => "env",
            Source::Flag => "flag",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which global options clap filled, and from where (flag or environment variable).
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub database_url: Option<Source>,
    pub direct_url: Option<Source>,
    pub app: Option<Source>,
    pub schema: Option<Source>,
    pub lock_timeout: Option<Source>,
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
    /// The URL migrations use instead of `database_url` (a pooler's), password included.
    pub direct_url: Setting<Option<String>>,
    pub app: Setting<App>,
    pub schema: Setting<Option<String>>,
    pub lock_timeout: Setting<u64>,
    pub wait: Setting<bool>,
    pub wait_timeout: Setting<u64>,
    /// The configuration file that was read, if any.
    pub file: Option<PathBuf>,
    /// The `.env` file that was read, if any.
    pub dotenv: Option<PathBuf>,
    pub verbose: u8,
}

/// The keys a `dbtool.toml` may hold (every global option that makes sense in a file).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    direct_url: Option<String>,
    app: Option<String>,
    schema: Option<String>,
    lock_timeout: Option<u64>,
    wait: Option<bool>,
    wait_timeout: Option<u64>,
}

pub const FILE_KEYS: [&str; 7] = [
    "database_url",
    "direct_url",
    "app",
    "schema",
    "lock_timeout",
    "wait",
    "wait_timeout",
];

/// The environment variable behind each key (also the name used in `.env`).
pub const ENV_VARS: [(&str, &str); 7] = [
    ("database_url", "DATABASE_URL"),
    ("direct_url", "DBTOOL_DIRECT_URL"),
    ("app", "DBTOOL_APP"),
    ("schema", "DBTOOL_SCHEMA"),
    ("lock_timeout", "DBTOOL_LOCK_TIMEOUT"),
    ("wait", "DBTOOL_WAIT"),
    ("wait_timeout", "DBTOOL_WAIT_TIMEOUT"),
];

const CONFIG_VAR: &str = "DBTOOL_CONFIG";

impl Config {
    /// Built-in defaults only: for commands that must work whatever the configuration
    /// (completions, man page).
    pub fn defaults(g: &GlobalArgs) -> Config {
        Config {
            database_url: Setting::new(None, Source::Default),
            direct_url: Setting::new(None, Source::Default),
            app: Setting::new(App::Avatar, Source::Default),
            schema: Setting::new(None, Source::Default),
            lock_timeout: Setting::new(DEFAULT_LOCK_TIMEOUT, Source::Default),
            wait: Setting::new(false, Source::Default),
            wait_timeout: Setting::new(DEFAULT_WAIT_TIMEOUT, Source::Default),
            file: None,
            dotenv: None,
            verbose: g.verbose,
        }
    }

    /// Layers flags and environment (already parsed by clap) over `.env`, the configuration
    /// file and the defaults. Relative paths are taken from the working directory.
    pub fn resolve(g: &GlobalArgs, given: &Given) -> Result<Config> {
        let dotenv = DotEnv::read(Path::new(DOTENV_NAME))?;
        let (file_path, explicit) = match (&g.config, dotenv.get(CONFIG_VAR)) {
            (Some(p), _) => (p.clone(), true),
            (_, Some(p)) => (PathBuf::from(p), true),
            _ => (PathBuf::from(FILE_NAME), false),
        };
        let file = read_file(&file_path, explicit)?;
        let (fc, file) = match file {
            Some(fc) => (fc, Some(file_path.clone())),
            None => (FileConfig::default(), None),
        };

        let database_url = match given.database_url {
            Some(src) => Setting::new(g.database_url.clone(), src),
            None => layer(
                dotenv.value("DATABASE_URL", |v| Ok(Some(v.to_owned())))?,
                fc.database_url.map(Some),
                None,
            ),
        };
        let direct_url = match given.direct_url {
            Some(src) => Setting::new(g.direct_url.clone(), src),
            None => layer(
                dotenv.value("DBTOOL_DIRECT_URL", |v| Ok(Some(v.to_owned())))?,
                fc.direct_url.map(Some),
                None,
            ),
        };
        let app = match (given.app, g.app) {
            (Some(src), Some(a)) => Setting::new(App::from(a), src),
            _ => layer(
                dotenv.value("DBTOOL_APP", parse_app)?,
                fc.app
                    .as_deref()
                    .map(|v| parse_app(v).map_err(|e| in_file(&file_path, "app", e)))
                    .transpose()?,
                App::Avatar,
            ),
        };
        let schema = match given.schema {
            Some(src) => Setting::new(g.schema.clone(), src),
            None => layer(
                dotenv.value("DBTOOL_SCHEMA", |v| Ok(Some(v.to_owned())))?,
                fc.schema.map(Some),
                None,
            ),
        };
        if let Some(name) = &schema.value {
            check_schema_name(name, schema.source)?;
        }
        let lock_timeout = match (given.lock_timeout, g.lock_timeout) {
            (Some(src), Some(v)) => Setting::new(v, src),
            _ => layer(
                dotenv.value("DBTOOL_LOCK_TIMEOUT", parse_seconds)?,
                fc.lock_timeout,
                DEFAULT_LOCK_TIMEOUT,
            ),
        };
        let wait = match given.wait {
            Some(src) => Setting::new(g.wait, src),
            None => layer(dotenv.value("DBTOOL_WAIT", parse_bool)?, fc.wait, false),
        };
        let wait_timeout = match (given.wait_timeout, g.wait_timeout) {
            (Some(src), Some(v)) => Setting::new(v, src),
            _ => layer(
                dotenv.value("DBTOOL_WAIT_TIMEOUT", parse_seconds)?,
                fc.wait_timeout,
                DEFAULT_WAIT_TIMEOUT,
            ),
        };
        let shown = |p: &Option<PathBuf>| p.as_deref().map(show_path);
        tracing::debug!(
            "configuration file: {}, .env: {}",
            shown(&file).unwrap_or_else(|| "none".into()),
            shown(&dotenv.path).unwrap_or_else(|| "none".into())
        );
        Ok(Config {
            database_url,
            direct_url,
            app,
            schema,
            lock_timeout,
            wait,
            wait_timeout,
            file,
            dotenv: dotenv.path,
            verbose: g.verbose,
        })
    }
}

/// The highest of `.env`, file and default.
fn layer<T>(dotenv: Option<T>, file: Option<T>, default: T) -> Setting<T> {
    match (dotenv, file) {
        (Some(v), _) => Setting::new(v, Source::DotEnv),
        (None, Some(v)) => Setting::new(v, Source::File),
        (None, None) => Setting::new(default, Source::Default),
    }
}

fn parse_app(v: &str) -> Result<App, String> {
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

fn parse_seconds(v: &str) -> Result<u64, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("'{v}' is not a whole number of seconds"))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("'{v}' is not a boolean; use true or false")),
    }
}

fn in_file(path: &Path, key: &str, msg: String) -> anyhow::Error {
    coded(Exit::Usage, format!("{}: key {key}: {msg}", path.display()))
}

/// PostgreSQL truncates longer identifiers silently, which would put the tables elsewhere.
fn check_schema_name(name: &str, source: Source) -> Result<()> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > 63 {
        Some("is longer than 63 bytes (PostgreSQL's limit)")
    } else if name.contains('\0') {
        Some("contains a NUL character")
    } else {
        None
    };
    match problem {
        Some(p) => Err(coded(
            Exit::Usage,
            format!(
                "schema name '{name}' (from {source}) {p}; give a valid PostgreSQL schema name"
            ),
        )),
        None => Ok(()),
    }
}

/// The settings of a `.env` file that concern dbtool (other keys are other tools' business).
struct DotEnv {
    path: Option<PathBuf>,
    vars: HashMap<String, String>,
}

impl DotEnv {
    /// Reads `.env` without touching the process environment; a missing file is no error.
    fn read(path: &Path) -> Result<DotEnv> {
        let mut vars = HashMap::new();
        let iter = match dotenvy::from_path_iter(path) {
            Ok(it) => it,
            Err(e) if e.not_found() => return Ok(DotEnv { path: None, vars }),
            Err(e) => {
                return Err(coded(
                    Exit::Usage,
                    format!("cannot read {}: {e}", path.display()),
                ))
            }
        };
        let wanted = |k: &str| k == CONFIG_VAR || ENV_VARS.iter().any(|(_, v)| *v == k);
        for item in iter {
            let (k, v) = item.map_err(|e| dotenv_error(path, e))?;
            // Like dotenvy's own loader: the first definition of a name wins.
            if wanted(&k) && !vars.contains_key(&k) {
                vars.insert(k, v);
            }
        }
        Ok(DotEnv {
            path: Some(path.to_path_buf()),
            vars,
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The parsed value of `key`, if the file sets it.
    fn value<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>> {
        self.get(key)
            .map(|v| {
                parse(v).map_err(|e| {
                    coded(
                        Exit::Usage,
                        format!("{key} in {}: {e}", self.display_path()),
                    )
                })
            })
            .transpose()
    }

    fn display_path(&self) -> String {
        self.path
            .as_deref()
            .map(show_path)
            .unwrap_or_else(|| DOTENV_NAME.into())
    }
}

/// A line that does not parse may hold a password, so only its key is quoted.
fn dotenv_error(path: &Path, e: dotenvy::Error) -> anyhow::Error {
    let detail = match &e {
        dotenvy::Error::LineParse(line, at) => {
            let key = line.split('=').next().unwrap_or("").trim();
            format!("cannot parse the line for `{key}` (at character {at}); check its quoting")
        }
        other => other.to_string(),
    };
    coded(Exit::Usage, format!("{}: {detail}", show_path(path)))
}

/// Reads and checks the configuration file. None when the implicit `dbtool.toml` is absent.
fn read_file(path: &Path, explicit: bool) -> Result<Option<FileConfig>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(coded(
                Exit::Usage,
                format!(
                    "configuration file {} does not exist; check --config / DBTOOL_CONFIG",
                    path.display()
                ),
            ))
        }
        Err(e) => {
            return Err(coded(
                Exit::Usage,
                format!("cannot read configuration file {}: {e}", path.display()),
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
    toml::from_str(text).map_err(|e| toml_error(text, &e))
}

/// One line instead of toml's multi-line report: the line number, the line and the message.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_no = text[..start].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            let line = if line.starts_with("database_url") {
                // Never echo a URL that may carry a password.
                "database_url = …"
            } else if line.starts_with("direct_url") {
                "direct_url = …"
            } else {
                line
            };
            format!("line {line_no} (`{line}`): {msg}")
        }
        None => msg.to_owned(),
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
        assert_eq!(fc.lock_timeout, Some(5));
        assert_eq!(fc.wait, Some(true));
        let err = parse_file("colour = 1\napp = \"avatar\"\ndatbase_url = \"x\"\n").unwrap_err();
        assert!(
            err.contains("`colour`") && err.contains("`datbase_url`"),
            "{err}"
        );
        let err = parse_file("lock_timeout = \"soon\"\n").unwrap_err();
        assert!(err.starts_with("line 1"), "{err}");
        let err = parse_file("database_url = \"postgres://u:pw@h/d\"\nwait = 3\n").unwrap_err();
        assert!(err.contains("line 2") && !err.contains("pw"), "{err}");
    }

    #[test]
    fn values_from_text() {
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_seconds(" 30 "), Ok(30));
        assert!(parse_seconds("-1").is_err());
        assert_eq!(parse_app("NeuraChar"), Ok(App::Neurachar));
        assert!(parse_app("blog").unwrap_err().contains("avatar, neurachar"));
    }
}
