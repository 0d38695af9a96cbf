//! `dbtool config`: the effective configuration and where each value came from. It never
//! connects, so it also explains a configuration that cannot connect.

use crate::config::{show_path, Setting, Source};
use crate::exit::Exit;
use crate::output::{Column, Tone};
use crate::Ctx;
use anyhow::Result;
use clap::Args;
use migration::App;
use sea_orm::DbBackend;
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Precedence, lowest first: default, dbtool.toml (or --config PATH), .env, environment
variables (DATABASE_URL or DATABASE_URL_FILE, DBTOOL_DIRECT_URL, DBTOOL_APP, DBTOOL_SCHEMA,
DBTOOL_LOCK_TIMEOUT, DBTOOL_WAIT, DBTOOL_WAIT_TIMEOUT), command-line flags. With no URL
at all, PGHOST / PGDATABASE / PGSERVICE select PostgreSQL; parts a PostgreSQL URL leaves
out come from PGUSER, PGPASSWORD, ~/.pgpass and the like, as in psql. Passwords are
shown as ***.

Examples:
  dbtool config                          every setting, its value and its source
  dbtool --app neurachar config --json   the same as one JSON document
  dbtool --config ci.toml config         with another configuration file")]
pub struct ConfigArgs {}

/// The document `dbtool config` prints.
#[derive(Serialize)]
struct ConfigView {
    /// The configuration file that was read, or null.
    config_file: Option<String>,
    /// The `.env` file that was read, or null.
    dotenv_file: Option<String>,
    backend: &'static str,
    /// The file the URL was read from (`DATABASE_URL_FILE`), or null.
    database_url_file: Option<String>,
    /// PostgreSQL: the parts of the URL that libpq's conventions filled in.
    libpq: Vec<String>,
    settings: Settings,
}

#[derive(Serialize)]
struct Settings {
    /// Masked: the password is `***`.
    database_url: Setting<String>,
    /// Masked; null when none is configured.
    direct_url: Setting<Option<String>>,
    app: Setting<App>,
    schema: Setting<Option<String>>,
    lock_timeout: Setting<u64>,
    ddl_lock_timeout: Setting<f64>,
    ddl_retries: Setting<u32>,
    statement_timeout: Setting<Option<f64>>,
    wait: Setting<bool>,
    wait_timeout: Setting<u64>,
}

pub async fn run(ctx: &Ctx, _args: ConfigArgs) -> Result<Exit> {
    let c = &ctx.config;
    let view = ConfigView {
        config_file: c.file.as_deref().map(show_path),
        dotenv_file: c.dotenv.as_deref().map(show_path),
        backend: match ctx.loc.backend {
            DbBackend::Postgres => "postgres",
            DbBackend::MySql => "mysql",
            _ => "sqlite",
        },
        database_url_file: c.database_url_file.as_deref().map(show_path),
        libpq: ctx.loc.libpq.clone(),
        settings: Settings {
            database_url: Setting {
                value: ctx.loc.display.clone(),
                source: c.database_url.source,
            },
            direct_url: Setting {
                value: ctx.direct.as_ref().map(|d| d.display.clone()),
                source: c.direct_url.source,
            },
            app: c.app.clone(),
            schema: c.schema.clone(),
            lock_timeout: c.lock_timeout.clone(),
            ddl_lock_timeout: c.ddl_lock_timeout.clone(),
            ddl_retries: c.ddl_retries.clone(),
            statement_timeout: c.statement_timeout.clone(),
            wait: c.wait.clone(),
            wait_timeout: c.wait_timeout.clone(),
        },
    };
    ctx.out.emit(&view, |o| {
        let s = &view.settings;
        let row = |key: &str, value: String, source: Source| {
            let tone = match source {
                Source::Default => Tone::Plain,
                _ => Tone::Good,
            };
            vec![
                (key.to_owned(), Tone::Plain),
                (value, Tone::Plain),
                (source.to_string(), tone),
            ]
        };
        let mut url = s.database_url.value.clone();
        match s.database_url.source {
            Source::Default => url.push_str(" (no DATABASE_URL configured)"),
            Source::Libpq => url.push_str(" (no DATABASE_URL; from PGHOST/PGDATABASE/PGSERVICE)"),
            _ => {}
        }
        let rows = vec![
            row("database_url", url, s.database_url.source),
            row(
                "direct_url",
                s.direct_url
                    .value
                    .clone()
                    .unwrap_or_else(|| "(none: migrations use database_url)".into()),
                s.direct_url.source,
            ),
            row(
                "app",
                if s.app.source == Source::Default {
                    // Nothing names an app: commands that connect take the database's own.
                    format!("recognised from the database (default: {})", s.app.value)
                } else {
                    s.app.value.to_string()
                },
                s.app.source,
            ),
            row(
                "schema",
                s.schema.value.clone().unwrap_or_else(|| "(none)".into()),
                s.schema.source,
            ),
            row(
                "lock_timeout",
                format!("{}s", s.lock_timeout.value),
                s.lock_timeout.source,
            ),
            row(
                "ddl_lock_timeout",
                format!("{}s", s.ddl_lock_timeout.value),
                s.ddl_lock_timeout.source,
            ),
            row(
                "ddl_retries",
                s.ddl_retries.value.to_string(),
                s.ddl_retries.source,
            ),
            row(
                "statement_timeout",
                s.statement_timeout
                    .value
                    .map(|v| format!("{v}s"))
                    .unwrap_or_else(|| "(none)".into()),
                s.statement_timeout.source,
            ),
            row("wait", s.wait.value.to_string(), s.wait.source),
            row(
                "wait_timeout",
                format!("{}s", s.wait_timeout.value),
                s.wait_timeout.source,
            ),
        ];
        o.table(
            &[
                Column::id("setting"),
                Column::id("value"),
                Column::id("source"),
            ],
            rows,
        );
        o.line(&format!(
            "config file: {}",
            view.config_file
                .clone()
                .unwrap_or_else(|| format!("none (no ./{})", crate::config::FILE_NAME))
        ));
        if let Some(f) = &view.database_url_file {
            o.line(&format!("url file:    {f} (DATABASE_URL_FILE)"));
        }
        if !view.libpq.is_empty() {
            o.line(&format!("libpq:       {}", view.libpq.join(", ")));
        }
        o.line(&format!(
            ".env file:   {}",
            view.dotenv_file
                .clone()
                .unwrap_or_else(|| format!("none (no ./{})", crate::config::DOTENV_NAME))
        ));
    });
    Ok(Exit::Ok)
}
