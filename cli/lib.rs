//! dbtool: schema migrations and administration for the Avatar Data Generator and NeuraChar
//! databases. `run` builds the context once and dispatches to one module per subcommand.

pub mod app;
pub mod args;
pub mod commands;
pub mod config;
pub mod context;
pub mod exit;
pub mod interrupt;
pub mod logging;
pub mod output;
pub mod postgres;
pub mod prompt;
pub mod service;
pub mod target;
pub mod version;

use crate::app::App;
use crate::context::{Access, ConnectSettings, DbLocation};
use crate::exit::Exit;
use crate::interrupt::Interrupt;
use crate::output::Output;
use anyhow::{Context as _, Result};
use sea_orm::{DatabaseConnection, DbBackend};
use std::sync::Arc;
use std::time::Duration;

/// Everything a command needs, built once from the global options.
pub struct Ctx {
    pub out: Output,
    pub app: App,
    pub loc: DbLocation,
    /// Where migrations go when `loc` is a transaction pooler (`direct_url`).
    pub direct: Option<DbLocation>,
    pub settings: ConnectSettings,
    pub lock_timeout: Duration,
    pub interrupt: Arc<Interrupt>,
    /// The effective configuration with the source of each value (`dbtool config`).
    pub config: config::Config,
}

impl Ctx {
    /// Builds the context from the resolved configuration (see `config::Config::resolve`).
    pub fn from_args(c: config::Config, out: Output) -> Result<Ctx> {
        let loc = DbLocation::parse(c.database_url.value.as_deref())
            .with_context(|| format!("database_url from {}", c.database_url.source))?;
        let direct = direct_location(&c, &loc)?;
        if c.schema.value.is_some() && loc.backend != DbBackend::Postgres {
            out.warn(&format!(
                "schema (from {}) is ignored: only PostgreSQL has schemas",
                c.schema.source
            ));
        }
        Ok(Ctx {
            out,
            app: c.app.value,
            settings: ConnectSettings {
                schema: c
                    .schema
                    .value
                    .clone()
                    .filter(|_| loc.backend == DbBackend::Postgres),
                wait: c
                    .wait
                    .value
                    .then(|| Duration::from_secs(c.wait_timeout.value)),
                verbose: c.verbose,
            },
            loc,
            direct,
            lock_timeout: Duration::from_secs(c.lock_timeout.value),
            interrupt: Interrupt::new(),
            config: c,
        })
    }

    /// A connection for commands that write; creates the SQLite file if needed.
    pub async fn connect_write(&self) -> Result<DatabaseConnection> {
        let db = context::connect(&self.loc, Access::Write, &self.settings, &self.out).await?;
        db.context("no connection was opened")
    }

    /// A connection for read-only commands; None when the SQLite file does not exist yet.
    pub async fn connect_read(&self) -> Result<Option<DatabaseConnection>> {
        context::connect(&self.loc, Access::ReadOnly, &self.settings, &self.out).await
    }

    /// The connection of migration commands (anything that takes the migration lock): the
    /// direct URL when one is configured; a transaction pooler is refused (exit 18).
    pub async fn connect_migrate(&self) -> Result<DatabaseConnection> {
        context::connect_migrate(self.migration_loc(), &self.settings, &self.out).await
    }

    /// Where migrations run: the direct URL, or the database URL.
    pub fn migration_loc(&self) -> &DbLocation {
        self.direct.as_ref().unwrap_or(&self.loc)
    }

    /// What the migration lock is scoped to: the PostgreSQL schema or the MySQL database.
    pub fn lock_key(&self) -> String {
        match self.loc.backend {
            DbBackend::Postgres => self.settings.schema.clone().unwrap_or_default(),
            DbBackend::MySql => url::Url::parse(self.migration_loc().secret_url())
                .map(|u| u.path().trim_start_matches('/').to_owned())
                .unwrap_or_default(),
            _ => String::new(),
        }
    }
}

/// `direct_url`, Prisma's `directUrl`: migrations use this URL, which reaches the same kind
/// of server without a transaction pooler; everything else keeps the database URL.
fn direct_location(c: &config::Config, loc: &DbLocation) -> Result<Option<DbLocation>> {
    let Some(raw) = c.direct_url.value.as_deref() else {
        return Ok(None);
    };
    let source = c.direct_url.source;
    let direct =
        DbLocation::parse(Some(raw)).with_context(|| format!("direct_url from {source}"))?;
    if direct.backend != loc.backend {
        return Err(exit::coded(
            Exit::Usage,
            format!(
                "direct_url {} (from {source}) is not the same kind of database as database_url {}; the direct URL reaches the same database without the pooler",
                direct.display, loc.display
            ),
        ));
    }
    if direct.pooled {
        return Err(exit::coded(
            Exit::Usage,
            format!(
                "direct_url {} (from {source}) says pgbouncer=true; the direct URL must reach the server without a transaction pooler",
                direct.display
            ),
        ));
    }
    Ok(Some(direct))
}

/// Runs a parsed command line. Signals: see `interrupt`.
pub fn run(cli: args::Cli, out: Output) -> Result<Exit> {
    logging::init(cli.global.verbose);
    // Completions and the man page must work whatever the configuration says.
    let config = match cli.command {
        args::Command::Completions(_) | args::Command::Man(_) => {
            config::Config::defaults(&cli.global)
        }
        _ => config::Config::resolve(&cli.global, &cli.given)?,
    };
    let ctx = Ctx::from_args(config, out)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let abort = interrupt::abort_signal(ctx.interrupt.clone(), |m| out.info(m));
        tokio::select! {
            r = commands::dispatch(&ctx, cli.command) => r,
            exit = abort => {
                out.info("aborted: the connection is closed, so the server rolls back any unfinished migration and releases the lock");
                Ok(exit)
            }
        }
    })
}
