//! dbtool: schema migrations and administration for the Avatar Data Generator and NeuraChar
//! databases. `run` builds the context once and dispatches to one module per subcommand.

pub mod args;
pub mod commands;
pub mod config;
pub mod context;
pub mod dberror;
pub mod engine;
pub mod exit;
pub mod interrupt;
pub mod libpq;
pub mod logging;
pub mod output;
pub mod postgres;
pub mod prompt;
pub mod service;
pub mod version;

use crate::context::{Access, ConnectSettings, DbLocation};
use crate::exit::Exit;
use crate::interrupt::Interrupt;
use crate::output::Output;
use anyhow::{Context as _, Result};
use migration::App;
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
    /// How migration progress is shown (`--progress`).
    pub progress: args::ProgressMode,
    /// The command hints repeat, when it is not the one typed (a fleet target's).
    pub invocation: Option<String>,
    /// What the migration connection's session said about itself, until the engine on it
    /// takes it (see [`Ctx::connect_migrate`]).
    pub(crate) session: std::sync::Mutex<Option<migration::engine::SessionFacts>>,
}

impl Ctx {
    /// Builds the context from the resolved configuration (see `config::Config::resolve`).
    pub fn from_args(c: config::Config, out: Output) -> Result<Ctx> {
        for w in &c.warnings {
            out.warn(w);
        }
        let loc = match (&c.database_url.value, c.database_url.source) {
            (None, config::Source::Libpq) => DbLocation::parse(Some("postgres://"))
                .context("building a PostgreSQL URL from PGHOST / PGDATABASE / PGSERVICE")?,
            (url, _) => {
                DbLocation::parse(url.as_deref()).with_context(|| c.database_url_origin.clone())?
            }
        };
        for w in &loc.warnings {
            out.warn(w);
        }
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
                lock_timeout: Duration::from_secs(c.lock_timeout.value),
                verbose: c.verbose,
            },
            loc,
            direct,
            lock_timeout: Duration::from_secs(c.lock_timeout.value),
            interrupt: Interrupt::new(),
            config: c,
            progress: args::ProgressMode::Auto,
            invocation: None,
            session: Default::default(),
        })
    }

    /// The app named by a flag, the environment or a file; None when the default applies
    /// (then the app is recognised from the database).
    pub fn app_given(&self) -> Option<migration::App> {
        (self.config.app.source != config::Source::Default).then_some(self.app)
    }

    /// A connection for commands that write; creates the SQLite file if needed.
    pub async fn connect_write(&self) -> Result<DatabaseConnection> {
        let db = context::connect(&self.loc, Access::Write, &self.settings, &self.out).await?;
        db.context("no connection was opened")
    }

    /// A connection for read-only commands; None when the SQLite file does not exist yet.
    pub async fn connect_read(&self) -> Result<Option<DatabaseConnection>> {
        let db = context::connect(&self.loc, Access::ReadOnly, &self.settings, &self.out).await?;
        if db.is_none() {
            // Said once, here: the hint repeats `--database-url <url>` when the URL was a
            // flag, so following it never creates ./dbtool.db instead.
            let file = self
                .loc
                .sqlite_file
                .as_deref()
                .map(config::show_path)
                .unwrap_or_else(|| self.loc.display.clone());
            let why = if self.loc.implicit {
                " (no DATABASE_URL configured)"
            } else {
                ""
            };
            self.out.warn(&format!(
                "no SQLite database at {file}{why}: reading it as empty; nothing was created (`{}` creates it)",
                self.hint("upgrade")
            ));
        }
        Ok(db)
    }

    /// The connection of migration commands (anything that takes the migration lock): the
    /// direct URL when one is configured; a transaction pooler is refused (exit 18).
    pub async fn connect_migrate(&self) -> Result<DatabaseConnection> {
        let (db, session) =
            context::connect_migrate(self.migration_loc(), &self.settings, &self.out).await?;
        if let Ok(mut slot) = self.session.lock() {
            *slot = session;
        }
        Ok(db)
    }

    /// [`Ctx::connect_migrate`] for a database that must exist already: a missing SQLite
    /// file is exit 6 and is not created, and so is a missing `--schema` when `schema` (a
    /// downgrade has nothing to roll back there; a stamp may create it, under the lock).
    pub async fn connect_migrate_existing(
        &self,
        what: &str,
        schema: bool,
    ) -> Result<DatabaseConnection> {
        self.require_sqlite_file(what)?;
        let db = self.connect_migrate().await?;
        if schema {
            self.require_schema(&db, what).await?;
        }
        Ok(db)
    }

    /// Where migrations run: the direct URL, or the database URL.
    pub fn migration_loc(&self) -> &DbLocation {
        self.direct.as_ref().unwrap_or(&self.loc)
    }

    /// A connection for a write command that needs the database to exist already (a
    /// downgrade, an administration command): a missing SQLite file is "cannot
    /// connect" (exit 6) and is not created.
    pub async fn connect_write_existing(&self, what: &str) -> Result<DatabaseConnection> {
        self.require_sqlite_file(what)?;
        let db = context::connect(&self.loc, Access::Write, &self.settings, &self.out)
            .await?
            .context("no connection was opened")?;
        self.require_schema(&db, what).await?;
        Ok(db)
    }

    fn require_sqlite_file(&self, what: &str) -> Result<()> {
        match self.loc.sqlite_file.as_ref().filter(|f| !f.exists()) {
            Some(f) => Err(exit::coded(
                Exit::Connection,
                format!(
                    "the SQLite database {} does not exist, so there is nothing to {what}; nothing was created; create it with `{}`, or fix the path",
                    config::show_path(f),
                    commands::dbtool_cmd(self, "upgrade")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A read-only connection to a database that must exist already: a missing SQLite file
    /// is "cannot connect" (exit 6) and is not created; so is a missing `--schema`.
    /// `what` completes "there is nothing to ...".
    pub async fn connect_existing(&self, what: &str) -> Result<DatabaseConnection> {
        self.require_sqlite_file(what)?;
        let db = self
            .connect_read()
            .await?
            .context("no connection was opened")?;
        self.require_schema(&db, what).await?;
        Ok(db)
    }

    /// `--schema NAME` on PostgreSQL names a schema that exists (read-only commands do not
    /// create it; reading a missing one would otherwise fail obscurely or look empty).
    pub async fn require_schema(&self, db: &DatabaseConnection, what: &str) -> Result<()> {
        use sea_orm::{ConnectionTrait, Statement};
        let Some(schema) = &self.settings.schema else {
            return Ok(());
        };
        let found = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                [schema.clone().into()],
            ))
            .await
            .context("looking up the schema")?;
        if found.is_none() {
            return Err(exit::coded(
                Exit::Connection,
                format!(
                    "schema \"{schema}\" (from {}) does not exist in {}, so there is nothing to {what}; check --schema, or create it (and its tables) with `{}`",
                    self.config.schema.source,
                    self.loc.display,
                    self.hint("upgrade")
                ),
            ));
        }
        Ok(())
    }
}

/// What a signal that stopped the command at once did. A step that cannot roll back (a
/// concurrent index build) may go on on the server: then it is half-done, not rolled back.
fn aborted(exit: Exit, interrupt: &interrupt::Interrupt) -> String {
    let signal = if exit == Exit::Terminated {
        "terminated by SIGTERM"
    } else {
        "interrupted by SIGINT"
    };
    format!(
        "{signal} before the command finished: it was stopped at once{}; {}",
        interrupt.trace_summary(),
        interrupt.abort_effect()
    )
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
    let mut ctx = Ctx::from_args(config, out)?;
    // Once, for this command line (a fleet's targets have contexts of their own).
    crate::dberror::set_hint_base(&ctx.hint(""));
    ctx.progress = cli.global.progress;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async {
        let abort = interrupt::abort_signal(ctx.interrupt.clone(), |m| out.info(m));
        tokio::select! {
            r = commands::dispatch(&ctx, cli.command) => r,
            // Reported as an error, so that it is one line on stderr and, with --json, the
            // run's one document (with what the run had done, when one had started).
            exit = abort => Err(match ctx.interrupt.trace_details() {
                Some(details) => exit::coded_with(exit, aborted(exit, &ctx.interrupt), details),
                None => exit::coded(exit, aborted(exit, &ctx.interrupt)),
            }),
        }
    });
    // Work on the blocking pool (a bcrypt hash at cost 31 takes hours) must not keep an
    // aborted command alive: the process exits without waiting for it.
    rt.shutdown_background();
    result
}
