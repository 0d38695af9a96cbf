//! The one place that changes a schema: [`Engine`]. A write run takes the migration lock,
//! creates the PostgreSQL schema if needed, reads the state under the lock, recognises the
//! app, finishes a half-done step, adopts an Alembic database, back-fills checksums, plans,
//! guards (out-of-order history, tables that exist unrecorded, data a downgrade would drop)
//! and then applies each step in its own transaction together with its tracking row and
//! state row, writing an audit entry around it. What it reports is read back from the
//! database.
//!
//! Each migration's own `up`/`down` stays the unit of work; this loop replaces
//! `MigratorTrait`'s (the apps' migrators route `up`/`down` here), so there is one loop, with
//! the lock.

use super::app::App;
use super::catalog;
use super::conn;
use super::error::{Blocker, Error, LockTimeoutFailure, StepFailure};
use super::lock::{self, Holder, LockError, LockKey};
use super::offline;
use super::pg_step::{
    abandon, in_transaction_pg, pg_begin, pg_commit, pg_fast_path, pg_mark, AuditEnd, Logged, Next,
    PgTxn,
};
use super::plan::{Direction, Plan, StampPlan};
use super::recognise::{self, AppChoice, Chosen};
use super::record::{self, Actor, AuditEntry, Origin, Settle};
use super::repair::{self, ChecksumRepair, MarkerRepair, RepairPlan};
use super::report::{Adoption, Event, Hooks, Report, StepDone, TableEstimate, TableRows};
use super::schema;
use super::snapshot;
use super::state::{self, read_state, Alembic, DbState, Overview};
use super::target::Target;
use super::verify::{self, Missing};
use crate::{Step, StepInfo};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, RuntimeErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, SchemaManager};
use std::time::{Duration, Instant};

/// How a run behaves. `Default` is what an application migrating at start-up wants.
#[derive(Debug, Clone)]
pub struct Options {
    pub app: AppChoice,
    /// The PostgreSQL schema to work in (created under the lock by write runs, and the key
    /// of the lock). None: the connection's `current_schema()`.
    pub schema: Option<String>,
    /// Put `schema` into the connection's `search_path` (`SET search_path`). Off when the
    /// caller's connection sets it already (the CLI does, per transaction through a pooler).
    pub set_search_path: bool,
    /// How long to wait for another run's migration lock.
    pub lock_timeout: Duration,
    /// How long a step may wait for a table lock before it is rolled back and retried.
    pub ddl_lock_timeout: Duration,
    /// How often a step that timed out on a table lock is retried.
    pub ddl_retries: u32,
    /// A limit on each statement of a step (PostgreSQL, MariaDB).
    pub statement_timeout: Option<Duration>,
    /// Run a whole upgrade or downgrade in one transaction (PostgreSQL, SQLite).
    pub atomic: bool,
    /// Apply pending migrations that come before applied ones.
    pub out_of_order: bool,
    /// Drop tables that hold rows without asking [`Hooks::confirm_data_loss`].
    pub allow_data_loss: bool,
    /// Who runs, for the audit log (`dbtool 0.1.0`, or the application's name).
    pub client: String,
    /// PostgreSQL: the answer to [`SESSION_SQL`] on the connection given to [`Engine::new`],
    /// from a caller that asked it already (the CLI does, right after connecting), so that
    /// the run does not ask again. Used only when the engine works on that connection
    /// itself (a pool of one); on a connection of its own it asks.
    pub session: Option<SessionFacts>,
}

/// What a PostgreSQL session says about itself: the columns of [`SESSION_SQL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    /// `pg_is_in_recovery()`: a hot standby.
    pub in_recovery: bool,
    /// `transaction_read_only` is on (`default_transaction_read_only`).
    pub read_only: bool,
    pub pid: i64,
    /// `current_schema()` (None: nothing on the `search_path` exists).
    pub schema: Option<String>,
    pub user: Option<String>,
}

/// The one query that asks a PostgreSQL session for its [`SessionFacts`].
pub const SESSION_SQL: &str = "SELECT pg_is_in_recovery(), \
    current_setting('transaction_read_only') = 'on', pg_backend_pid()::int8, \
    current_schema()::text, current_user::text";

impl Default for Options {
    fn default() -> Options {
        Options {
            app: AppChoice::Recognise {
                default: App::Avatar,
            },
            schema: None,
            set_search_path: true,
            lock_timeout: Duration::from_secs(60),
            ddl_lock_timeout: Duration::from_secs(5),
            ddl_retries: 3,
            statement_timeout: None,
            atomic: false,
            out_of_order: false,
            allow_data_loss: false,
            session: None,
            client: concat!("migration ", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl Options {
    /// Defaults for one app, as the caller names it.
    pub fn for_app(app: App) -> Options {
        Options {
            app: AppChoice::Given(app),
            ..Options::default()
        }
    }
}

/// What a write run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Upgrade(Target),
    Downgrade(Target),
    /// Record the database as being at the target without running anything. `force` skips
    /// the check that the recorded migrations' objects exist.
    Stamp {
        target: Target,
        force: bool,
    },
    /// Make the record true again without running a migration: settle a stuck in-progress
    /// marker by what the schema shows (refused when it is partial unless `force`) and
    /// re-record changed checksums. `confirmed` skips [`Hooks::confirm_repair`].
    Repair {
        force: bool,
        confirmed: bool,
    },
}

impl Command {
    pub fn direction(&self) -> Option<Direction> {
        match self {
            Command::Upgrade(_) => Some(Direction::Up),
            Command::Downgrade(_) => Some(Direction::Down),
            Command::Stamp { .. } | Command::Repair { .. } => None,
        }
    }
    fn operation(&self) -> &'static str {
        match self {
            Command::Upgrade(_) => "upgrade",
            Command::Downgrade(_) => "downgrade",
            Command::Stamp { .. } => "stamp",
            Command::Repair { .. } => "repair",
        }
    }
}

/// A checksum comparison for one applied migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Checksum {
    Match {
        origin: Origin,
    },
    /// The migration's statements changed after it was applied.
    Mismatch {
        stored: String,
        current: String,
        origin: Origin,
    },
    /// Applied before checksums existed; the next write run records it.
    NotRecorded,
}

/// Something `status --check` fails on, in the order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    HalfDone {
        step: &'static StepInfo,
        direction: Direction,
        /// Who holds the migration lock: then the step is running right now, not
        /// interrupted.
        running: Option<Holder>,
    },
    ChecksumMismatch {
        steps: Vec<&'static StepInfo>,
    },
    UnknownRecorded {
        versions: Vec<String>,
    },
    OutOfOrder {
        pending: Vec<&'static StepInfo>,
    },
    Pending {
        count: usize,
    },
}

/// The read-only state of a database for one app, as `status` shows it.
#[derive(Debug, Clone)]
pub struct Status {
    pub app: App,
    pub chosen: Chosen,
    pub overview: Overview,
    pub state: DbState,
    /// Per step of the app: the checksum comparison of applied steps (None: not applied).
    pub checksums: Vec<Option<Checksum>>,
    /// When a step is half-done and a run holds the migration lock: that run, which is
    /// doing the step right now.
    pub running: Option<Holder>,
}

impl Status {
    /// The status of a database that does not exist yet (an absent SQLite file).
    pub fn empty(app: App) -> Status {
        let state = DbState::default();
        let overview = Overview::new(app, &state);
        Status {
            app,
            chosen: Chosen::Default,
            checksums: vec![None; overview.steps.len()],
            overview,
            state,
            running: None,
        }
    }

    /// What `status --check` fails on, most serious first.
    pub fn problems(&self) -> Vec<Problem> {
        let ov = &self.overview;
        let mut out = Vec::new();
        if let Some((i, direction)) = ov.half_done {
            out.push(Problem::HalfDone {
                step: ov.steps[i],
                direction,
                running: self.running.clone(),
            });
        }
        let changed: Vec<&'static StepInfo> = self
            .checksums
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, Some(Checksum::Mismatch { .. })))
            .map(|(i, _)| ov.steps[i])
            .collect();
        if !changed.is_empty() {
            out.push(Problem::ChecksumMismatch { steps: changed });
        }
        let mut unknown: Vec<String> = ov.unknown.iter().map(|r| r.version.clone()).collect();
        if let Some(Alembic::Unknown { revision }) = &ov.alembic {
            unknown.push(format!("alembic revision {revision}"));
        }
        if !unknown.is_empty() {
            out.push(Problem::UnknownRecorded { versions: unknown });
        }
        let ooo = ov.out_of_order();
        if !ooo.is_empty() {
            out.push(Problem::OutOfOrder { pending: ooo });
        }
        if ov.pending() > 0 {
            out.push(Problem::Pending {
                count: ov.pending(),
            });
        }
        out
    }
}

/// What a write command would do, computed read-only (no lock, nothing created).
#[derive(Debug, Clone)]
pub struct Preview {
    pub app: App,
    pub chosen: Chosen,
    /// The overview as the run would see it after finishing a half-done step.
    pub overview: Overview,
    pub resume: Option<(&'static StepInfo, Direction)>,
    pub adopt: Option<Adoption>,
    pub plan: Option<Plan>,
    pub stamp: Option<StampPlan>,
    pub repair: Option<RepairPlan>,
    pub risk: Vec<TableRows>,
}

/// The audit log as `dbtool log` shows it: newest first. Entries still `running` while
/// nobody holds the migration lock read as `interrupted` (their run was killed).
#[derive(Debug, Clone)]
pub struct AuditLog {
    /// False when the audit table does not exist (nothing was ever logged here).
    pub exists: bool,
    pub entries: Vec<AuditEntry>,
}

/// The migration engine for one database.
pub struct Engine {
    db: DatabaseConnection,
    backend: DbBackend,
    opts: Options,
    /// The server process of the connection (PostgreSQL), for watching its steps; set by
    /// `run`.
    pid: Option<i64>,
    /// The database user, for the audit log; set by `run`.
    db_user: Option<String>,
}

/// See [`Engine::session`].
struct Session {
    key: LockKey,
    pid: Option<i64>,
    user: Option<String>,
    /// Why the session cannot write (PostgreSQL).
    read_only: Option<&'static str>,
}

impl Engine {
    /// An engine on `db`: on its own single connection (see `conn`), with `search_path` set
    /// to `opts.schema` on PostgreSQL. Reads nothing yet.
    pub async fn new(db: &DatabaseConnection, mut opts: Options) -> Result<Engine, Error> {
        let (db, reused) = conn::dedicated(db).await?;
        if !reused {
            opts.session = None;
        }
        let backend = db.get_database_backend();
        if let (DbBackend::Postgres, Some(s), true) = (backend, &opts.schema, opts.set_search_path)
        {
            db.execute_unprepared(&format!("SET search_path TO {}", quote_pg(s)))
                .await?;
        }
        Ok(Engine {
            db,
            backend,
            opts,
            pid: None,
            db_user: None,
        })
    }

    /// What the migration lock of this database is keyed on.
    async fn lock_key(&self) -> Result<LockKey, Error> {
        Ok(self.session().await?.key)
    }

    /// What a write run needs to know about its session before it takes the lock, in one
    /// round trip: the lock's key (the schema or database), the server process and the
    /// database user (for the audit log), and on PostgreSQL whether the session can write
    /// at all (a write run refuses a standby or a read-only session before anything else).
    async fn session(&self) -> Result<Session, Error> {
        let query = |sql: &str| {
            self.db
                .query_one_raw(Statement::from_string(self.backend, sql.to_owned()))
        };
        match self.backend {
            DbBackend::Postgres => {
                let facts = match &self.opts.session {
                    Some(f) => f.clone(),
                    None => {
                        let row = query(SESSION_SQL).await?.ok_or_else(|| {
                            DbErr::Custom("the server returned no session row".into())
                        })?;
                        SessionFacts {
                            in_recovery: row.try_get_by_index(0)?,
                            read_only: row.try_get_by_index(1)?,
                            pid: row.try_get_by_index(2)?,
                            schema: row.try_get_by_index(3)?,
                            user: row.try_get_by_index(4)?,
                        }
                    }
                };
                let read_only = if facts.in_recovery {
                    Some("the server is a read-only standby (in recovery); point at the primary")
                } else if facts.read_only {
                    Some("the session is read-only (default_transaction_read_only is on)")
                } else {
                    None
                };
                Ok(Session {
                    key: LockKey::Postgres {
                        schema: match &self.opts.schema {
                            Some(s) => s.clone(),
                            None => facts.schema.unwrap_or_default(),
                        },
                    },
                    pid: Some(facts.pid),
                    user: facts.user,
                    read_only,
                })
            }
            DbBackend::MySql => {
                let row =
                    query("SELECT CAST(DATABASE() AS CHAR), CAST(CURRENT_USER() AS CHAR)").await?;
                let (name, user) = match row {
                    Some(r) => (
                        r.try_get_by_index::<Option<String>>(0)?,
                        r.try_get_by_index::<Option<String>>(1)?,
                    ),
                    None => (None, None),
                };
                match name {
                    Some(name) => Ok(Session {
                        key: LockKey::mysql(&name),
                        pid: None,
                        user,
                        read_only: None,
                    }),
                    None => Err(Error::Db(DbErr::Custom(
                        "the MySQL connection has no database selected: name one in the URL (mysql://user@host/DATABASE)".into(),
                    ))),
                }
            }
            _ => Ok(Session {
                key: LockKey::sqlite(conn::sqlite_file(&self.db).await?),
                pid: None,
                user: None,
                read_only: None,
            }),
        }
    }

    pub(crate) fn pid(&self) -> Option<i64> {
        self.pid
    }

    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The engine's connection (read-only uses: introspection, row counts).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The state of the database for its app, read-only: no lock, nothing created.
    pub async fn status(&self) -> Result<Status, Error> {
        let state = read_state(&self.db).await?;
        let (app, chosen) = recognise::choose(self.opts.app, &state)?;
        let overview = Overview::new(app, &state);
        let checksums = checksums(app, self.backend, &overview, &state).await?;
        // A marker is also what a run in progress shows: its lock tells the two apart. A
        // lock that cannot be looked at reads as free (the marker then says what it says).
        let running = match overview.half_done {
            Some(_) => match self.lock_key().await {
                Ok(key) => lock::holder(&self.db, &key).await.ok().flatten(),
                Err(_) => None,
            },
            None => None,
        };
        Ok(Status {
            app,
            chosen,
            overview,
            state,
            checksums,
            running,
        })
    }

    /// What `cmd` would do, read-only: the same checks as a run, without the lock.
    pub async fn preview(&self, cmd: &Command) -> Result<Preview, Error> {
        let state = read_state(&self.db).await?;
        let (app, chosen) = recognise::choose(self.opts.app, &state)?;
        let mut ov = Overview::new(app, &state);
        self.writable(&ov, &state, cmd).await?;
        if let Command::Repair { force, .. } = cmd {
            let plan = self.plan_repair(&ov, &state, *force).await?;
            return Ok(Preview {
                app,
                chosen,
                overview: ov,
                resume: None,
                adopt: None,
                plan: None,
                stamp: None,
                repair: Some(plan),
                risk: Vec::new(),
            });
        }
        let resume = ov.half_done.map(|(i, d)| (ov.steps[i], d));
        let resumed = resume.map(|(_, d)| d);
        if let Some((i, d)) = ov.half_done.take() {
            ov.applied[i] = d == Direction::Up;
            ov.recorded[i] = d == Direction::Up;
        }
        let adopt = match &ov.alembic {
            Some(Alembic::Adoptable {
                revision,
                migrations,
            }) => Some(Adoption {
                revision: revision.clone(),
                migrations: migrations.clone(),
            }),
            _ => None,
        };
        if adopt.is_some() {
            ov.recorded = ov.applied.clone();
        }
        let mut preview = Preview {
            app,
            chosen,
            overview: ov.clone(),
            resume,
            adopt,
            plan: None,
            stamp: None,
            repair: None,
            risk: Vec::new(),
        };
        // Finishing a rollback first may drop tables that hold rows: the run asks about
        // them, whichever command finishes it, so the preview lists them.
        if let Some((step, Direction::Down)) = resume {
            if let Some(i) = ov.index_of(step.name) {
                let plan = Plan {
                    direction: Direction::Down,
                    steps: vec![step],
                    from: i + 1,
                    to: i,
                };
                preview.risk = data_at_risk(&self.db, &state, &plan).await?;
            }
        }
        match cmd {
            Command::Repair { .. } => {}
            Command::Stamp { target, .. } => preview.stamp = Some(ov.plan_stamp(target)?),
            Command::Upgrade(t) | Command::Downgrade(t) => {
                let direction = cmd.direction().unwrap_or(Direction::Up);
                let t = after_resume(t, resumed, direction);
                let plan = ov.plan(direction, &t)?;
                // The rollback finished first drops the tables its step created: the plan
                // meets the database without them (the run reads it again by then).
                let mut after = state.clone();
                if let Some((step, Direction::Down)) = resume {
                    for t in step.creates_tables {
                        after.tables.remove(*t);
                    }
                }
                self.guard(&ov, &after, &plan).await?;
                preview
                    .risk
                    .extend(data_at_risk(&self.db, &state, &plan).await?);
                preview.plan = Some(plan);
            }
        }
        Ok(preview)
    }

    /// Runs `cmd` under the migration lock. Consumes the engine: dropping the future aborts
    /// the current step (the connection closes; the server rolls back what it can).
    pub async fn run(mut self, cmd: &Command, hooks: &mut dyn Hooks) -> Result<Report, Error> {
        let Session {
            key,
            pid,
            user,
            read_only,
        } = self.session().await?;
        if let Some(reason) = read_only {
            return Err(Error::ReadOnly {
                reason: reason.into(),
            });
        }
        if let LockKey::Postgres { schema } = &key {
            if schema.starts_with("pg_temp") {
                return Err(Error::TemporarySchema {
                    schema: schema.clone(),
                });
            }
        }
        (self.pid, self.db_user) = (pid, user);
        let timeout = self.opts.lock_timeout;
        let held = {
            let mut on_wait = |holder: Option<&Holder>| match holder {
                Some(holder) => {
                    hooks.event(&Event::WaitingForLock {
                        holder,
                        timeout_ms: timeout.as_millis(),
                    });
                    true
                }
                None => !hooks.should_stop(),
            };
            lock::acquire(&self.db, &key, timeout, &mut on_wait).await
        }
        .map_err(|e| match e {
            LockError::Timeout { waited, holder } => Error::Locked { waited, holder },
            LockError::Db(e) => Error::Db(e),
            LockError::Io { file, error } => Error::LockFile { file, error },
            // Nothing read, nothing changed: the report says so.
            LockError::Stopped => {
                let app = match self.opts.app {
                    AppChoice::Given(app) | AppChoice::Recognise { default: app } => app,
                };
                let mut report = Report::new(app, cmd.direction());
                report.interrupted = true;
                Error::Interrupted(Box::new(report))
            }
        })?;
        let result = self.locked(cmd, hooks).await;
        let released = lock::release(&self.db, &key, held).await;
        match (result, released) {
            (Ok(mut r), Err(e)) => {
                let w = format!(
                    "releasing the migration lock failed ({e}); it goes with the connection"
                );
                hooks.event(&Event::Warning { message: &w });
                r.warnings.push(w);
                Ok(r)
            }
            (r, _) => r,
        }
    }

    async fn locked(&self, cmd: &Command, hooks: &mut dyn Hooks) -> Result<Report, Error> {
        if let (DbBackend::Postgres, Some(schema)) = (self.backend, &self.opts.schema) {
            self.ensure_schema(schema, hooks).await?;
        }
        let state = read_state(&self.db).await?;
        let (app, _) = recognise::choose(self.opts.app, &state)?;
        let ov = Overview::new(app, &state);
        self.writable(&ov, &state, cmd).await?;
        let mut report = Report::new(app, cmd.direction());
        report.from = ov.current().map(|s| s.name);
        // A half-done step or an Alembic adoption may still change the plan; `review`
        // gets the final one.
        if let (Command::Upgrade(t) | Command::Downgrade(t), Some(direction), None) =
            (cmd, cmd.direction(), ov.half_done)
        {
            if let Ok(plan) = ov.plan(direction, t) {
                if !plan.steps.is_empty() {
                    hooks.planned_ahead(app, &plan, self.backend);
                }
            }
        }
        if self.backend == DbBackend::Sqlite {
            // Bookkeeping writes wait for another writer as long as a step would.
            let ms = self.opts.ddl_lock_timeout.as_millis().max(1);
            self.db
                .execute_unprepared(&format!("PRAGMA busy_timeout = {ms}"))
                .await?;
        }
        // Without a state table there is no marker to settle and no checksum to re-record:
        // `repair` then changes nothing, and creates nothing either.
        let untouched =
            matches!(cmd, Command::Repair { .. }) && !state.tables.contains(record::STATE_TABLE);
        let audit_table = match untouched {
            true => AuditTable::Unused,
            false => self.ensure_record_tables(&state).await?,
        };
        let mut audit = Audit::open(
            &self.db,
            self.db_user.clone(),
            &self.opts.client,
            audit_table,
            hooks,
            &mut report,
        )
        .await;
        let mut run = Run {
            engine: self,
            app,
            objects: app.objects(),
            hooks,
            audit: &mut audit,
            report,
            created: Vec::new(),
            next: None,
            ahead: None,
        };
        match run.body(cmd, state).await {
            Ok(()) => {
                run.read_back().await;
                Ok(run.report)
            }
            // A refusal after a half-done step was finished: that step did change the
            // database. (Errors with a report carry it there.)
            Err(e) if e.report().is_none() => match run.report.resumed.take() {
                Some(done) => Err(Error::AfterResume {
                    done,
                    error: Box::new(e),
                }),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Creates the record's tables that are missing (only then: on SQLite even a no-op
    /// CREATE needs the write lock). On PostgreSQL all of them, the audit table included, go
    /// in one message and one commit, as psql running the `--sql` script would create them;
    /// if that fails, each is created on its own, so that the audit table's failure only
    /// warns (see [`Audit::open`]).
    async fn ensure_record_tables(&self, state: &DbState) -> Result<AuditTable, Error> {
        let needed = !state.tracking_table || !state.tables.contains(record::STATE_TABLE);
        let audit = if state.tables.contains(record::AUDIT_TABLE) {
            AuditTable::Exists
        } else {
            AuditTable::Missing
        };
        if self.backend == DbBackend::Postgres && (needed || audit == AuditTable::Missing) {
            let capture = offline::capture_conn(self.backend);
            if needed {
                record::ensure_tables(&capture, record::now_secs()).await?;
            }
            if audit == AuditTable::Missing {
                record::ensure_audit(&capture).await?;
            }
            // Committed without waiting for its WAL flush: the first step's commit flushes
            // it, and until then nothing relies on these tables being durable.
            let sql = record::unflushed_sql(&offline::captured_sql(capture).join(";\n"), None);
            if self.db.execute_unprepared(&sql).await.is_ok() {
                return Ok(match audit {
                    AuditTable::Missing => AuditTable::Created,
                    other => other,
                });
            }
            // A failed statement leaves its block open and aborted.
            let _ = self.db.execute_unprepared("ROLLBACK").await;
        }
        if needed {
            record::ensure_tables(&self.db, record::now_secs()).await?;
        }
        Ok(audit)
    }

    /// `CREATE SCHEMA IF NOT EXISTS` under the lock, so concurrent first runs do not race.
    async fn ensure_schema(&self, schema: &str, hooks: &mut dyn Hooks) -> Result<(), Error> {
        let exists = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*)::int8 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                [schema.into()],
            ))
            .await?
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0)
            > 0;
        if !exists {
            self.db
                .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_pg(schema)))
                .await
                .map_err(|error| Error::CreateSchema {
                    schema: schema.to_owned(),
                    error,
                })?;
            hooks.event(&Event::SchemaCreated { schema });
        }
        Ok(())
    }

    /// [`writable`], with the stamp that gets an unknown Alembic revision out of the way
    /// when the schema matches a known position.
    async fn writable(&self, ov: &Overview, state: &DbState, cmd: &Command) -> Result<(), Error> {
        match writable(ov, Some(cmd)) {
            Err(Error::UnknownAlembic {
                revision, known, ..
            }) => {
                let stamp = match ov.stamp_candidate(state) {
                    Some(c) => {
                        let upto = ov.index_of(c.name).unwrap_or(0);
                        let steps: Vec<&'static StepInfo> = ov.steps[..=upto].to_vec();
                        self.missing_objects(ov.app, &steps)
                            .await?
                            .is_empty()
                            .then_some(c)
                    }
                    None => None,
                };
                Err(Error::UnknownAlembic {
                    revision,
                    known,
                    stamp,
                })
            }
            other => other,
        }
    }

    /// The checks shared by a run and its preview: out-of-order steps and tables that exist
    /// although the migration creating them is not recorded.
    async fn guard(&self, ov: &Overview, state: &DbState, plan: &Plan) -> Result<(), Error> {
        if plan.direction != Direction::Up {
            return Ok(());
        }
        let position = ov.position();
        let early: Vec<&'static StepInfo> = plan
            .steps
            .iter()
            .copied()
            .filter(|s| ov.index_of(s.name).is_some_and(|i| i < position))
            .collect();
        if !early.is_empty() && !self.opts.out_of_order {
            return Err(Error::OutOfOrder {
                pending: early,
                after: ov.steps[position - 1],
            });
        }
        let conflicts = ov.conflicts(plan, state);
        let Some((step, tables)) = conflicts.into_iter().next() else {
            return Ok(());
        };
        let stamp = match ov.stamp_candidate(state) {
            Some(candidate) => {
                let upto = ov.index_of(candidate.name).unwrap_or(0);
                let steps: Vec<&'static StepInfo> = (0..=upto)
                    .filter(|i| !ov.applied[*i])
                    .map(|i| ov.steps[i])
                    .collect();
                let missing = self.missing_objects(ov.app, &steps).await?;
                missing.is_empty().then_some(candidate)
            }
            None => None,
        };
        Err(Error::Conflict {
            step,
            tables,
            stamp,
        })
    }

    /// What `repair` would do: the stuck marker settled by the live schema, and the changed
    /// checksums re-recorded.
    async fn plan_repair(
        &self,
        ov: &Overview,
        state: &DbState,
        force: bool,
    ) -> Result<RepairPlan, Error> {
        let mut plan = RepairPlan::default();
        if let Some((i, step, direction)) = repair::marked(ov) {
            let live = schema::introspect(&self.db).await?;
            let server = snapshot::server_kind(&self.db).await?;
            let objects = verify::step_presence(ov.app, self.backend, &server, step, &live);
            let thorough = verify::fitting(ov.app, self.backend, &server).is_some();
            plan.marker = Some(MarkerRepair::new(
                step,
                direction,
                ov.recorded[i],
                objects,
                thorough,
                force,
            ));
        }
        let gone = plan
            .marker
            .as_ref()
            .filter(|m| m.settle == Some(Settle::NotApplied))
            .map(|m| m.step.name);
        for (i, c) in checksums(ov.app, self.backend, ov, state)
            .await?
            .into_iter()
            .enumerate()
        {
            if let Some(Checksum::Mismatch {
                stored, current, ..
            }) = c
            {
                if Some(ov.steps[i].name) != gone {
                    plan.checksums.push(ChecksumRepair {
                        step: ov.steps[i],
                        stored,
                        current,
                    });
                }
            }
        }
        Ok(plan)
    }

    /// The audit log, newest first (`limit` entries at most), read-only: no lock taken,
    /// nothing created. A `running` entry reads as `interrupted` when nobody holds the
    /// migration lock.
    pub async fn audit_log(&self, limit: Option<u64>) -> Result<AuditLog, Error> {
        let tables = catalog::table_names(&self.db).await?;
        if !tables.contains(record::AUDIT_TABLE) {
            return Ok(AuditLog {
                exists: false,
                entries: Vec::new(),
            });
        }
        let mut entries = record::read_audit(&self.db, limit).await?;
        if entries.iter().any(|e| e.outcome == "running") {
            let key = self.lock_key().await?;
            // A lock that cannot be looked at reads as held: "running" is then the honest word.
            let free = matches!(lock::holder(&self.db, &key).await, Ok(None));
            if free {
                for e in entries.iter_mut().filter(|e| e.outcome == "running") {
                    e.outcome = "interrupted".to_owned();
                }
            }
        }
        Ok(AuditLog {
            exists: true,
            entries,
        })
    }

    /// How many finished audit entries started before `before_ms` (Unix milliseconds);
    /// None when there is no audit table.
    pub async fn count_audit_before(&self, before_ms: i64) -> Result<Option<u64>, Error> {
        let tables = catalog::table_names(&self.db).await?;
        if !tables.contains(record::AUDIT_TABLE) {
            return Ok(None);
        }
        Ok(Some(record::count_audit_before(&self.db, before_ms).await?))
    }

    /// Deletes finished audit entries that started before `before_ms`; None when there is
    /// no audit table. Entries of a run in progress stay.
    pub async fn prune_audit(&self, before_ms: i64) -> Result<Option<u64>, Error> {
        let tables = catalog::table_names(&self.db).await?;
        if !tables.contains(record::AUDIT_TABLE) {
            return Ok(None);
        }
        Ok(Some(record::prune_audit(&self.db, before_ms).await?))
    }

    /// The objects of `steps` that the database lacks (verified stamps).
    async fn missing_objects(
        &self,
        app: App,
        steps: &[&'static StepInfo],
    ) -> Result<Vec<Missing>, Error> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let live = schema::introspect(&self.db).await?;
        let server = snapshot::server_kind(&self.db).await?;
        Ok(verify::verify(app, self.backend, &server, steps, &live).missing)
    }
}

/// Refuses to write to a database that holds migrations this build does not know, or an
/// Alembic revision it cannot map.
fn writable(ov: &Overview, cmd: Option<&Command>) -> Result<(), Error> {
    if let Some((other, _)) = &ov.foreign {
        return Err(Error::WrongApp {
            given: ov.app,
            found: *other,
            evidence: super::error::Evidence(vec![format!("tracking rows of {other}")]),
        });
    }
    if !ov.unknown.is_empty() {
        return Err(Error::UnknownRecorded {
            versions: ov.unknown.iter().map(|r| r.version.clone()).collect(),
        });
    }
    // A stamp may record a known revision over an unknown Alembic one: that is the way out
    // the error suggests (and the objects are verified first).
    let stamping = matches!(cmd, Some(Command::Stamp { .. }));
    if let (Some(Alembic::Unknown { revision }), false) = (&ov.alembic, stamping) {
        return Err(Error::UnknownAlembic {
            revision: revision.clone(),
            known: ov.steps.iter().filter_map(|s| s.alias).collect(),
            stamp: None,
        });
    }
    Ok(())
}

/// The checksum comparison of every applied migration.
async fn checksums(
    app: App,
    backend: DbBackend,
    ov: &Overview,
    state: &DbState,
) -> Result<Vec<Option<Checksum>>, Error> {
    let objects = app.objects();
    let mut out = Vec::with_capacity(ov.steps.len());
    for (i, s) in ov.steps.iter().enumerate() {
        if !ov.recorded[i] {
            out.push(None);
            continue;
        }
        let stored = state
            .state_rows
            .get(s.name)
            .and_then(|r| r.checksum.clone().map(|c| (c, r.origin)));
        let Some((stored, origin)) = stored else {
            out.push(Some(Checksum::NotRecorded));
            continue;
        };
        let current = offline::checksum(objects[i].as_ref(), backend).await?;
        let origin = origin.unwrap_or(Origin::Applied);
        out.push(Some(if current == stored {
            Checksum::Match { origin }
        } else {
            Checksum::Mismatch {
                stored,
                current,
                origin,
            }
        }));
    }
    Ok(out)
}

/// Row counts of the tables a downgrade plan would drop, for those that hold rows.
pub async fn data_at_risk<C: ConnectionTrait>(
    db: &C,
    state: &DbState,
    plan: &Plan,
) -> Result<Vec<TableRows>, DbErr> {
    if plan.direction != Direction::Down {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for s in &plan.steps {
        for t in s.creates_tables.iter().rev() {
            if state.tables.contains(*t) {
                let n = count_rows(db, t).await?;
                if n > 0 {
                    out.push(TableRows {
                        table: (*t).to_owned(),
                        rows: n,
                    });
                }
            }
        }
    }
    Ok(out)
}

async fn count_rows<C: ConnectionTrait>(db: &C, table: &str) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let quoted = match backend {
        DbBackend::MySql => format!("`{table}`"),
        _ => format!("\"{table}\""),
    };
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT COUNT(*) FROM {quoted}"),
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// A PostgreSQL identifier in double quotes.
pub fn quote_pg(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The existing tables a step works on (it creates none: an index build, an ALTER), with
/// the catalog's row estimates (none for a table never analysed, nor for one in `fresh`,
/// created by the same run), for progress. Best effort: unknown is empty.
async fn touched_tables(
    db: &DatabaseConnection,
    step: &dyn Step,
    direction: Direction,
    fresh: &[&str],
) -> Vec<TableEstimate> {
    if !step.info().creates_tables.is_empty() {
        return Vec::new();
    }
    let backend = db.get_database_backend();
    let Ok(statements) = offline::capture_step(step, backend, direction).await else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for s in &statements {
        if let Some(t) = table_of(s) {
            // The temporary tables of SQLite's rebuild (`ddl::sqlite_rebuild`) are no table
            // the step works on.
            if !names.contains(&t) && !t.starts_with("_dbtool_") {
                names.push(t);
            }
        }
    }
    if names.is_empty() {
        return Vec::new();
    }
    // One query for all of them: (name, estimate) rows, in any order.
    let quoted = |t: &String| format!("'{}'", t.replace('\'', "''"));
    let asked: Vec<String> = names
        .iter()
        .filter(|t| !fresh.contains(&t.as_str()))
        .map(quoted)
        .collect();
    let sql = match backend {
        _ if asked.is_empty() => String::new(),
        DbBackend::Postgres => format!(
            "SELECT t.name, CASE WHEN c.reltuples >= 0 THEN c.reltuples::int8::text END \
             FROM unnest(ARRAY[{}]::text[]) AS t(name) \
             LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(t.name))",
            asked.join(", ")
        ),
        DbBackend::MySql => format!(
            "SELECT CAST(TABLE_NAME AS CHAR), CAST(TABLE_ROWS AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({})",
            asked.join(", ")
        ),
        _ => String::new(),
    };
    let mut estimates = std::collections::HashMap::new();
    if !sql.is_empty() {
        let rows = db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap_or_default();
        for r in rows {
            if let (Ok(name), Ok(Some(rows))) = (
                r.try_get_by_index::<String>(0),
                r.try_get_by_index::<Option<String>>(1),
            ) {
                estimates.insert(name, rows.parse::<i64>().ok());
            }
        }
    }
    names
        .into_iter()
        .map(|t| TableEstimate {
            rows: estimates.get(&t).copied().flatten(),
            table: t,
        })
        .collect()
}

/// The table of `CREATE [UNIQUE] INDEX ... ON t`, `DROP INDEX ... ON t` or `ALTER TABLE t`.
fn table_of(sql: &str) -> Option<String> {
    let upper = sql.to_ascii_uppercase();
    let rest = if upper.starts_with("ALTER TABLE ") {
        &sql["ALTER TABLE ".len()..]
    } else if upper.starts_with("CREATE ") && upper.contains(" INDEX ") {
        let at = upper.find(" ON ")?;
        &sql[at + 4..]
    } else {
        return None;
    };
    let rest = rest.trim_start();
    let (quote, body) = match rest.chars().next()? {
        '"' => ('"', &rest[1..]),
        '`' => ('`', &rest[1..]),
        _ => (' ', rest),
    };
    let end = body.find(quote).unwrap_or(body.len());
    let name = body[..end].trim_end_matches(['(', ' ']);
    (!name.is_empty()).then(|| name.to_owned())
}

/// The SQLSTATE or driver code of a database error.
pub fn db_code(e: &DbErr) -> Option<String> {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s))
        | DbErr::Conn(RuntimeErr::SqlxError(s)) => match s.as_ref() {
            sea_orm::sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// An error as the audit log and warnings quote it: the server's own message and SQLSTATE
/// for a database error, without the driver's wrapping ("Execution Error: error returned
/// from database: ...") or its source position; other errors without SeaORM's prefix.
pub fn db_text(e: &DbErr) -> String {
    if let DbErr::Exec(RuntimeErr::SqlxError(s))
    | DbErr::Query(RuntimeErr::SqlxError(s))
    | DbErr::Conn(RuntimeErr::SqlxError(s)) = e
    {
        if let sea_orm::sqlx::Error::Database(d) = s.as_ref() {
            // SQLite's codes are its result codes, not SQLSTATEs.
            let sqlite = d
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some();
            // MySQL's SQLSTATE is often only HY000: its error number tells what happened.
            let number = mysql_number(e);
            return match (d.code(), number) {
                (Some(code), _) if sqlite => format!("{} (SQLite error {code})", d.message()),
                (Some(code), Some(n)) => {
                    format!("{} (MySQL error {n}, SQLSTATE {code})", d.message())
                }
                (Some(code), None) => format!("{} (SQLSTATE {code})", d.message()),
                (None, Some(n)) => format!("{} (MySQL error {n})", d.message()),
                (None, None) => d.message().to_owned(),
            };
        }
    }
    let text = e.to_string();
    let mut rest = text.as_str();
    for prefix in [
        "Execution Error: ",
        "Query Error: ",
        "Connection Error: ",
        "Custom Error: ",
        "Migration Error: ",
        "error returned from database: ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    rest.trim().replace('\n', " ")
}

/// The error number of a MySQL/MariaDB error (sqlx's `code()` is its SQLSTATE).
fn mysql_number(e: &DbErr) -> Option<u16> {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s))
        | DbErr::Conn(RuntimeErr::SqlxError(s)) => match s.as_ref() {
            sea_orm::sqlx::Error::Database(d) => d
                .try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number()),
            _ => None,
        },
        _ => None,
    }
}

/// A step that waited too long for a table lock (or SQLite's write lock).
fn is_lock_timeout(backend: DbBackend, e: &DbErr) -> bool {
    let code = db_code(e);
    match backend {
        DbBackend::Postgres => code.as_deref() == Some("55P03"),
        // 1205: lock wait timeout (metadata locks included).
        DbBackend::MySql => mysql_number(e) == Some(1205),
        _ => {
            code.and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6))
                || e.to_string().contains("database is locked")
        }
    }
}

/// The audit log of one run: best effort, so every failure to write it is a warning.
struct Audit {
    on: bool,
    run: String,
    seq: i64,
    actor: Actor,
    /// Why writing stopped partway, until the run has said so.
    lost: Option<String>,
}

/// The audit table when a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuditTable {
    Missing,
    /// Created by this run together with the record's other tables.
    Created,
    Exists,
    /// Not to be created or written: a run that changes nothing (`repair` of a database
    /// without dbtool's tables).
    Unused,
}

struct AuditHandle {
    seq: i64,
    started: i64,
}

impl Audit {
    async fn open(
        db: &DatabaseConnection,
        db_user: Option<String>,
        client: &str,
        table: AuditTable,
        hooks: &mut dyn Hooks,
        report: &mut Report,
    ) -> Audit {
        let actor = Actor::current(db_user, client);
        let run = format!(
            "{:x}-{:x}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            std::process::id()
        );
        if table == AuditTable::Unused {
            return Audit {
                on: false,
                run,
                seq: 0,
                actor,
                lost: None,
            };
        }
        let ready = async {
            match table {
                AuditTable::Unused => return Ok(0),
                AuditTable::Missing => record::ensure_audit(db).await?,
                // Nothing in it to sweep.
                AuditTable::Created => return Ok(0),
                AuditTable::Exists => {}
            }
            record::audit_sweep(db).await
        };
        let ready = match db.get_database_backend() {
            DbBackend::MySql => record::mysql_bounded(db, ready).await,
            _ => ready.await,
        };
        let on = match ready {
            Ok(_) => true,
            Err(e) => {
                let w = format!(
                    "the audit log {} cannot be written ({}); migrating without it",
                    record::AUDIT_TABLE,
                    db_text(&e)
                );
                hooks.event(&Event::Warning { message: &w });
                report.warnings.push(w);
                false
            }
        };
        Audit {
            on,
            run,
            seq: 0,
            actor,
            lost: None,
        }
    }

    async fn start<C: ConnectionTrait>(
        &mut self,
        db: &C,
        operation: &str,
        app: App,
        step: Option<&StepInfo>,
        direction: Option<Direction>,
    ) -> Option<AuditHandle> {
        let e = self.next(operation, app, step, direction)?;
        match record::audit_start(db, &e).await {
            Ok(()) => Some(AuditHandle {
                seq: e.seq,
                started: e.started_at,
            }),
            Err(e) => {
                self.stop(e);
                None
            }
        }
    }

    /// The entry [`Audit::start`] would write, for the caller to write later (see
    /// [`Next`]): its start is set again when it is written.
    fn prepare(
        &mut self,
        operation: &str,
        app: App,
        step: &StepInfo,
        direction: Direction,
    ) -> Option<AuditEntry> {
        self.next(operation, app, Some(step), Some(direction))
    }

    /// PostgreSQL: the entry [`Audit::start`] would write, as text for the caller to send
    /// with the statements that follow it (see [`pg_begin`]).
    fn start_sql(
        &mut self,
        operation: &str,
        app: App,
        step: &StepInfo,
        direction: Direction,
    ) -> Option<(AuditHandle, String)> {
        let e = self.prepare(operation, app, step, direction)?;
        let handle = AuditHandle {
            seq: e.seq,
            started: e.started_at,
        };
        Some((handle, record::audit_start_sql_pg(&e)))
    }

    /// The next entry of this run, while the log is on.
    fn next(
        &mut self,
        operation: &str,
        app: App,
        step: Option<&StepInfo>,
        direction: Option<Direction>,
    ) -> Option<AuditEntry> {
        if !self.on {
            return None;
        }
        self.seq += 1;
        Some(record::entry(
            &self.actor,
            &self.run,
            self.seq,
            operation,
            app.name(),
            step,
            direction,
        ))
    }

    /// Writing failed: the rest of the run goes unlogged, and says so once.
    fn stop(&mut self, e: DbErr) {
        self.on = false;
        self.lost = Some(format!(
            "the audit log {} cannot be written ({}); the rest of this run is not logged",
            record::AUDIT_TABLE,
            db_text(&e)
        ));
    }

    async fn finish<C: ConnectionTrait>(
        &mut self,
        db: &C,
        h: Option<AuditHandle>,
        outcome: &str,
        error: Option<&str>,
    ) {
        if let Some(h) = h {
            if let Err(e) =
                record::audit_finish(db, &self.run, h.seq, h.started, outcome, error).await
            {
                self.stop(e);
            }
        }
    }
}

/// How one step ended badly.
enum StepError {
    Failed {
        error: DbErr,
        rolled_back: bool,
    },
    LockTimeout {
        attempts: u32,
        blockers: Vec<Blocker>,
        rolled_back: bool,
    },
}

/// One write run in progress.
struct Run<'e, 'h> {
    engine: &'e Engine,
    app: App,
    objects: Vec<Box<dyn Step>>,
    hooks: &'h mut dyn Hooks,
    audit: &'e mut Audit,
    report: Report,
    /// The tables this run's steps created so far: they hold nothing worth estimating.
    created: Vec<&'static str>,
    /// The step of the plan after the one running (see [`Run::steps`]).
    next: Option<&'static StepInfo>,
    /// That step, begun by the commit of the one before (PostgreSQL, see [`Next`]).
    ahead: Option<Ahead<'e>>,
}

/// A step's transaction opened by the previous step's commit, with its audit entry.
struct Ahead<'e> {
    step: &'static str,
    txn: PgTxn<'e>,
    handle: Option<AuditHandle>,
}

impl Run<'_, '_> {
    fn db(&self) -> &DatabaseConnection {
        &self.engine.db
    }

    fn backend(&self) -> DbBackend {
        self.engine.backend
    }

    fn object(&self, name: &str) -> Result<&dyn Step, Error> {
        self.objects
            .iter()
            .find(|o| o.info().name == name)
            .map(|o| o.as_ref())
            .ok_or_else(|| {
                Error::Db(DbErr::Custom(format!(
                    "migration {name} is not in this build"
                )))
            })
    }

    fn warn(&mut self, w: String) {
        self.hooks.event(&Event::Warning { message: &w });
        self.report.warnings.push(w);
    }

    /// Says once that the audit log stopped being written (it never stops a run).
    fn audit_warning(&mut self) {
        if let Some(w) = self.audit.lost.take() {
            self.warn(w);
        }
    }

    async fn reread(&self) -> Result<(DbState, Overview), Error> {
        let state = read_state(self.db()).await?;
        let ov = Overview::new(self.app, &state);
        Ok((state, ov))
    }

    /// Sets `report.to` from the database. When the run's session is gone (and with it the
    /// lock, so it never carries on there), the position is read on a new connection:
    /// reading needs no lock, and the server has rolled back whatever the session left
    /// open. If that fails too, `to_known` stays false.
    async fn read_back(&mut self) {
        let ov = match self.reread_tracking().await {
            Some(ov) => Some(ov),
            None => match self.reread().await {
                Ok((_, ov)) => Some(ov),
                Err(_) => self.read_elsewhere().await.ok(),
            },
        };
        match ov {
            Some(ov) => {
                self.report.to = ov.current().map(|s| s.name);
                self.report.to_known = true;
            }
            None => self.report.to_known = false,
        }
    }

    /// The position from the tracking rows alone, in one read, when they name a migration
    /// of this app: markers do not move the position, and Alembic's revision only counts
    /// while nothing is recorded. None: read the whole state.
    async fn reread_tracking(&self) -> Option<Overview> {
        let state = DbState {
            tracking_table: true,
            recorded: state::read_recorded(self.db()).await.ok()?,
            ..DbState::default()
        };
        let ov = Overview::new(self.app, &state);
        ov.current().map(|_| ov)
    }

    async fn read_elsewhere(&self) -> Result<Overview, Error> {
        let db = conn::fresh(self.db()).await?;
        if let (DbBackend::Postgres, Some(s)) = (self.backend(), &self.engine.opts.schema) {
            db.execute_unprepared(&format!("SET search_path TO {}", quote_pg(s)))
                .await?;
        }
        let state = read_state(&db).await;
        db.close().await.ok();
        Ok(Overview::new(self.app, &state?))
    }

    async fn body(&mut self, cmd: &Command, state: DbState) -> Result<(), Error> {
        if let Command::Repair { force, confirmed } = cmd {
            let ov = Overview::new(self.app, &state);
            return self.repair(&ov, &state, *force, *confirmed).await;
        }
        let mut ov = Overview::new(self.app, &state);
        let mut state = state;
        let mut resumed = None;
        if let Some((i, direction)) = ov.half_done {
            let step = ov.steps[i];
            if direction == Direction::Down {
                // Finishing a rollback may drop tables that hold rows: asked like any
                // downgrade, whichever command finishes it.
                let plan = Plan {
                    direction,
                    steps: vec![step],
                    from: i + 1,
                    to: i,
                };
                let risk = data_at_risk(self.db(), &state, &plan).await?;
                if !risk.is_empty()
                    && !self.engine.opts.allow_data_loss
                    && !self.hooks.confirm_data_loss(&risk).await
                {
                    return Err(Error::NotConfirmed { risk });
                }
            }
            self.hooks.event(&Event::Resuming { step, direction });
            let done = self.step(step, direction, "resume").await?;
            self.report.resumed = Some(done);
            resumed = Some(direction);
            (state, ov) = self.reread().await?;
        }
        if let Some(Alembic::Adoptable {
            revision,
            migrations,
        }) = ov.alembic.clone()
        {
            // `stamp --force` records what the revision stands for even when objects are
            // missing, as it would without Alembic (the hint for that case says so).
            let force = matches!(cmd, Command::Stamp { force: true, .. });
            self.adopt(&ov, revision, migrations, force).await?;
            (state, ov) = self.reread().await?;
        }
        // Checksums are back-filled only once the command is known to go ahead: a refused
        // command changes nothing.
        match cmd {
            Command::Stamp { target, force } => self.stamp(&ov, &state, target, *force).await,
            Command::Repair { .. } => Ok(()),
            Command::Upgrade(t) | Command::Downgrade(t) => {
                let direction = cmd.direction().unwrap_or(Direction::Up);
                let t = after_resume(t, resumed, direction);
                let plan = ov.plan(direction, &t)?;
                self.report.planned = plan.steps.iter().map(|s| s.name).collect();
                self.engine.guard(&ov, &state, &plan).await?;
                if direction == Direction::Down {
                    let risk = data_at_risk(self.db(), &state, &plan).await?;
                    if !risk.is_empty()
                        && !self.engine.opts.allow_data_loss
                        && !self.hooks.confirm_data_loss(&risk).await
                    {
                        return Err(Error::NotConfirmed { risk });
                    }
                }
                if !plan.steps.is_empty() {
                    let db = &self.engine.db;
                    if let Err(reason) = self.hooks.review(self.app, &plan, db).await {
                        return Err(Error::ReviewRefused { reason });
                    }
                }
                self.backfill(&ov, &state).await?;
                if self.engine.opts.atomic {
                    self.atomic(&plan, cmd.operation()).await
                } else {
                    self.steps(&plan, cmd.operation()).await
                }
            }
        }
    }

    /// Records the migrations an Alembic revision stands for, once their objects are verified.
    async fn adopt(
        &mut self,
        ov: &Overview,
        revision: String,
        migrations: Vec<&'static str>,
        force: bool,
    ) -> Result<(), Error> {
        let steps: Vec<&'static StepInfo> = ov
            .steps
            .iter()
            .copied()
            .filter(|s| migrations.contains(&s.name))
            .collect();
        let missing = self.engine.missing_objects(self.app, &steps).await?;
        if !missing.is_empty() && !force {
            return Err(Error::Unverified { steps, missing });
        }
        self.report.forced |= !missing.is_empty();
        // As `stamp` does: prompt rows that are gone only warn (`settings unset` may have
        // removed them on purpose).
        if self.app == App::Avatar && steps.iter().any(|s| s.name == SETTINGS_STEP) {
            self.prompt_warnings().await;
        }
        self.record_stamp(&steps, &[], Origin::Stamped, "adopt")
            .await?;
        let adoption = Adoption {
            revision,
            migrations,
        };
        self.hooks.event(&Event::Adopted {
            adoption: &adoption,
        });
        self.report.adopted = Some(adoption);
        Ok(())
    }

    /// Checksums for applied migrations that have none yet (migrated before they existed).
    async fn backfill(&mut self, ov: &Overview, state: &DbState) -> Result<(), Error> {
        let mut rows = Vec::new();
        for (i, s) in ov.steps.iter().enumerate() {
            let has = state
                .state_rows
                .get(s.name)
                .is_some_and(|r| r.checksum.is_some());
            if ov.recorded[i] && !has {
                rows.push((
                    *s,
                    offline::checksum(self.object(s.name)?, self.backend()).await?,
                ));
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        record::store_checksums(self.db(), &rows, Origin::Backfilled).await?;
        self.report.backfilled = rows.iter().map(|(s, _)| s.name).collect();
        self.hooks.event(&Event::Backfilled {
            migrations: &self.report.backfilled,
        });
        Ok(())
    }

    async fn stamp(
        &mut self,
        ov: &Overview,
        state: &DbState,
        target: &Target,
        force: bool,
    ) -> Result<(), Error> {
        let plan = ov.plan_stamp(target)?;
        if !force && !plan.insert.is_empty() {
            let missing = self.engine.missing_objects(self.app, &plan.insert).await?;
            if !missing.is_empty() {
                return Err(Error::Unverified {
                    steps: plan.insert.clone(),
                    missing,
                });
            }
        }
        self.backfill(ov, state).await?;
        if self.app == App::Avatar && plan.insert.iter().any(|s| s.name == SETTINGS_STEP) {
            self.prompt_warnings().await;
        }
        self.record_stamp(&plan.insert, &plan.delete, Origin::Stamped, "stamp")
            .await?;
        self.report.recorded = plan.insert.iter().map(|s| s.name).collect();
        self.report.removed = plan.delete.iter().map(|s| s.name).collect();
        self.report.forced = force && !plan.insert.is_empty();
        Ok(())
    }

    /// Settles a stuck marker and re-records changed checksums, in one transaction, once
    /// confirmed; refused when the marker's step is partial and not forced.
    async fn repair(
        &mut self,
        ov: &Overview,
        state: &DbState,
        force: bool,
        confirmed: bool,
    ) -> Result<(), Error> {
        let plan = self.engine.plan_repair(ov, state, force).await?;
        if let Some(m) = plan.marker.as_ref().filter(|m| m.settle.is_none()) {
            return Err(Error::RepairRefused(Box::new(m.clone())));
        }
        if plan.is_empty() {
            self.report.repaired = Some(plan);
            return Ok(());
        }
        if !confirmed && !self.hooks.confirm_repair(&plan).await {
            return Err(Error::RepairNotConfirmed(Box::new(plan)));
        }
        let mut handles = Vec::new();
        if let Some(m) = &plan.marker {
            let h = self
                .audit
                .start(
                    &self.engine.db,
                    "repair",
                    self.app,
                    Some(m.step),
                    Some(m.direction),
                )
                .await;
            handles.push(h);
        }
        for c in &plan.checksums {
            let h = self
                .audit
                .start(&self.engine.db, "repair", self.app, Some(c.step), None)
                .await;
            handles.push(h);
        }
        let marker_sum = match &plan.marker {
            Some(m) => offline::checksum(self.object(m.step.name)?, self.backend()).await?,
            None => String::new(),
        };
        let txn = self.db().begin().await?;
        let work = async {
            if let (Some(m), Some(settle)) =
                (&plan.marker, plan.marker.as_ref().and_then(|m| m.settle))
            {
                let row = state
                    .state_rows
                    .get(m.step.name)
                    .cloned()
                    .unwrap_or(record::StateRow {
                        checksum: None,
                        origin: None,
                        in_progress: None,
                        in_progress_since: None,
                    });
                record::resolve_marker(&txn, m.step, &row, m.recorded, settle, &marker_sum).await?;
            }
            let rows: Vec<(&'static StepInfo, String)> = plan
                .checksums
                .iter()
                .map(|c| (c.step, c.current.clone()))
                .collect();
            record::store_checksums(&txn, &rows, Origin::Repaired).await
        }
        .await;
        self.end_bookkeeping(txn, work, handles).await?;
        self.report.repaired = Some(plan);
        Ok(())
    }

    /// Missing default prompts only warn: `settings unset` may remove them legitimately.
    async fn prompt_warnings(&mut self) {
        let keys: Vec<String> = match self
            .db()
            .query_all_raw(Statement::from_string(
                self.backend(),
                format!(
                    "SELECT {} FROM settings",
                    quote_ident(self.backend(), "key")
                ),
            ))
            .await
        {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| r.try_get_by_index::<String>(0).ok())
                .collect(),
            Err(_) => return,
        };
        let missing: Vec<&str> = crate::avatar::DEFAULT_PROMPTS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !keys.iter().any(|x| x == k))
            .collect();
        if !missing.is_empty() {
            self.warn(format!(
                "the settings table lacks the default prompt(s) {}; recorded anyway (add them with `settings set`)",
                missing.join(", ")
            ));
        }
    }

    async fn record_stamp(
        &mut self,
        insert: &[&'static StepInfo],
        delete: &[&'static StepInfo],
        origin: Origin,
        operation: &str,
    ) -> Result<(), Error> {
        if insert.is_empty() && delete.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::new();
        for s in insert {
            rows.push((
                *s,
                offline::checksum(self.object(s.name)?, self.backend()).await?,
            ));
        }
        let mut handles = Vec::new();
        for (s, d) in insert
            .iter()
            .map(|s| (*s, Direction::Up))
            .chain(delete.iter().map(|s| (*s, Direction::Down)))
        {
            let h = self
                .audit
                .start(&self.engine.db, operation, self.app, Some(s), Some(d))
                .await;
            handles.push(h);
        }
        let txn = self.db().begin().await?;
        let r = record::stamp(&txn, record::now_secs(), &rows, delete, origin).await;
        self.end_bookkeeping(txn, r, handles)
            .await
            .map_err(Error::Db)
    }

    /// Commits a bookkeeping transaction (stamp, repair) if its work succeeded, rolls it back
    /// otherwise, and closes its audit entries with how it ended.
    async fn end_bookkeeping(
        &mut self,
        txn: DatabaseTransaction,
        work: Result<(), DbErr>,
        handles: Vec<Option<AuditHandle>>,
    ) -> Result<(), DbErr> {
        let r = match work {
            Ok(()) => txn.commit().await,
            Err(e) => {
                let _ = txn.rollback().await;
                Err(e)
            }
        };
        let (outcome, err) = match &r {
            Ok(()) => ("ok", None),
            Err(e) => ("failed", Some(db_text(e))),
        };
        for h in handles {
            self.audit
                .finish(&self.engine.db, h, outcome, err.as_deref())
                .await;
        }
        self.audit_warning();
        r
    }

    /// The plan, one step (and one transaction) at a time.
    async fn steps(&mut self, plan: &Plan, operation: &str) -> Result<(), Error> {
        for (i, step) in plan.steps.iter().enumerate() {
            if self.hooks.should_stop() {
                self.abandon_ahead().await;
                return self.interrupted().await;
            }
            self.next = plan.steps.get(i + 1).copied();
            let done = self.step(step, plan.direction, operation).await;
            self.next = None;
            let done = done?;
            self.hooks.event(&Event::StepFinished { done: &done });
            self.report.done.push(done);
        }
        // A stop asked for during the last step still counts: the caller asked to stop.
        if self.hooks.should_stop() {
            return self.interrupted().await;
        }
        Ok(())
    }

    /// Rolls back a step begun ahead that will not run (see [`Ahead`]).
    async fn abandon_ahead(&mut self) {
        if let Some(a) = self.ahead.take() {
            let run = self.audit.run.clone();
            if let Err(e) = abandon(a.txn, a.handle.map(|h| (run.as_str(), h.seq))).await {
                self.warn(format!(
                    "the audit log {} keeps an entry for {} although it never started (removing it failed: {}); `log` shows it as interrupted",
                    record::AUDIT_TABLE,
                    a.step,
                    db_text(&e)
                ));
            }
        }
    }

    async fn interrupted(&mut self) -> Result<(), Error> {
        self.report.interrupted = true;
        self.read_back().await;
        Err(Error::Interrupted(Box::new(self.report.clone())))
    }

    /// One step with its retries; failures carry the report (read back).
    async fn step(
        &mut self,
        step: &'static StepInfo,
        direction: Direction,
        operation: &str,
    ) -> Result<StepDone, Error> {
        if self.ahead.as_ref().is_some_and(|a| a.step != step.name) {
            self.abandon_ahead().await;
        }
        let result = self.try_step(step, direction, operation).await;
        if result.is_err() {
            self.abandon_ahead().await;
        }
        self.audit_warning();
        match result {
            Ok(done) => Ok(done),
            Err(e) => {
                self.read_back().await;
                let report = self.report.clone();
                Err(match e {
                    StepError::Failed { error, rolled_back } => {
                        Error::StepFailed(Box::new(StepFailure {
                            step,
                            direction,
                            error,
                            rolled_back,
                            report,
                        }))
                    }
                    StepError::LockTimeout {
                        attempts,
                        blockers,
                        rolled_back,
                    } => Error::DdlLockTimeout(Box::new(LockTimeoutFailure {
                        step,
                        direction,
                        attempts,
                        timeout: self.engine.opts.ddl_lock_timeout,
                        blockers,
                        rolled_back,
                        report,
                    })),
                })
            }
        }
    }

    async fn try_step(
        &mut self,
        info: &'static StepInfo,
        direction: Direction,
        operation: &str,
    ) -> Result<StepDone, StepError> {
        let failed = |error| StepError::Failed {
            error,
            rolled_back: true,
        };
        let backend = self.backend();
        let engine = self.engine;
        let obj = self
            .objects
            .iter()
            .find(|o| o.info().name == info.name)
            .map(|o| o.as_ref())
            .ok_or_else(|| {
                failed(DbErr::Custom(format!(
                    "migration {} is not in this build",
                    info.name
                )))
            })?;
        let transactional = in_transaction_on(obj, backend);
        let checksum = match direction {
            Direction::Up => offline::checksum(obj, backend).await.map_err(failed)?,
            Direction::Down => String::new(),
        };
        let tables = touched_tables(&engine.db, obj, direction, &self.created).await;
        tracing::info!(
            "{} {} {}",
            direction.as_str(),
            info.name,
            if transactional {
                "in a transaction"
            } else {
                "outside a transaction (marked in progress)"
            }
        );
        // The audit entry and the marker come before the step is announced: whoever sees
        // the step start (a person, a test, a kill) finds both written. On PostgreSQL a
        // transactional step opens its transaction in the same round trip as the entry.
        let fast = transactional && pg_fast_path(engine);
        let mut begun = None;
        // Outside a transaction on PostgreSQL, the audit entry, the marker and the step's
        // session timeouts go in one round trip.
        let mut marked = false;
        let mut limits = SessionLimits::of(engine);
        // Begun by the previous step's commit, with its audit entry (see `Next`).
        // Only a transactional step on the fast path is begun ahead (see `step`).
        let ahead = match fast {
            true => self.ahead.take(),
            false => None,
        };
        let mut handle = if let Some(a) = ahead {
            begun = Some(a.txn);
            a.handle
        } else if fast {
            let prepared = self.audit.start_sql(operation, self.app, info, direction);
            let (handle, entry) = match prepared {
                Some((h, sql)) => (Some(h), Some(sql)),
                None => (None, None),
            };
            match pg_begin(engine, entry.as_deref()).await {
                Ok(txn) => {
                    begun = Some(txn);
                    handle
                }
                // Which statement failed is unknown: the log goes (with a warning) and the
                // step begins on its own in the loop below, where its own failure shows.
                Err(e) if handle.is_some() => {
                    self.audit.stop(e);
                    None
                }
                Err(e) => return Err(failed(e)),
            }
        } else if !transactional && pg_fast_path(engine) {
            let prepared = self.audit.start_sql(operation, self.app, info, direction);
            let (handle, entry) = match prepared {
                Some((h, sql)) => (Some(h), Some(sql)),
                None => (None, None),
            };
            match pg_mark(engine, entry.as_deref(), info, direction, &limits.set).await {
                Ok(()) => {
                    marked = true;
                    limits.preset = true;
                    handle
                }
                // The marker is written on its own below, where its own failure shows; the
                // entry stands and ends with the step.
                Err(None) => handle,
                Err(Some(e)) => {
                    self.audit.stop(e);
                    None
                }
            }
        } else {
            self.audit
                .start(&engine.db, operation, self.app, Some(info), Some(direction))
                .await
        };
        let started = Instant::now();
        if !transactional && !marked {
            // Marked before it starts: a kill from here on leaves a marker that the next run
            // finishes, instead of a record that lies.
            if let Err(error) = record::mark(&engine.db, info, direction).await {
                self.audit
                    .finish(&engine.db, handle, "failed", Some(&db_text(&error)))
                    .await;
                return Err(failed(error));
            }
        }
        // The next step of the plan begins with this one's commit when both run in a
        // transaction on PostgreSQL's fast path; its audit entry is made ready here, after
        // this step's own.
        let mut next = match self.next {
            Some(n) if fast => {
                let also = self
                    .objects
                    .iter()
                    .find(|o| o.info().name == n.name)
                    .is_some_and(|o| in_transaction_on(o.as_ref(), backend));
                match also {
                    true => {
                        let entry = self.audit.prepare(operation, self.app, n, direction);
                        Some((n, Next::new(engine, entry)))
                    }
                    false => None,
                }
            }
            _ => None,
        };
        let mut begun_next = None;
        self.hooks.event(&Event::StepStarted {
            step: info,
            direction,
            transactional,
            tables: &tables,
        });
        self.hooks.before_step(info, direction).await;
        let retries = engine.opts.ddl_retries;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let hooks = &mut *self.hooks;
            let r = if transactional && !fast {
                in_transaction(engine, obj, direction, &checksum, hooks).await
            } else {
                let end = handle.as_ref().map(|h| AuditEnd {
                    run: &self.audit.run,
                    seq: h.seq,
                    started: h.started,
                });
                let (r, logged) = if fast {
                    let (r, logged, then) = in_transaction_pg(
                        engine,
                        obj,
                        direction,
                        &checksum,
                        hooks,
                        begun.take(),
                        end,
                        next.as_mut().map(|(_, n)| n),
                    )
                    .await;
                    begun_next = then;
                    (r, logged)
                } else {
                    let r =
                        outside_transaction(engine, obj, direction, &checksum, hooks, end, &limits)
                            .await;
                    // The first attempt's timeouts went with the marker; a retry sets them.
                    limits.preset = false;
                    r
                };
                match logged {
                    Logged::WithTheStep => handle = None,
                    Logged::Failed(e) => {
                        handle = None;
                        self.audit.stop(e);
                    }
                    Logged::NotYet => {}
                }
                r
            };
            match r {
                Ok(()) => break,
                Err((error, mut blockers)) if is_lock_timeout(backend, &error) => {
                    if blockers.is_empty() {
                        blockers = super::watch::candidates(&engine.db).await;
                    }
                    if attempt > retries {
                        self.audit
                            .finish(&engine.db, handle, "failed", Some(&db_text(&error)))
                            .await;
                        return Err(StepError::LockTimeout {
                            attempts: attempt,
                            blockers,
                            rolled_back: transactional,
                        });
                    }
                    let wait = Duration::from_millis(250 * (1 << (attempt - 1).min(4)));
                    self.hooks.event(&Event::Retrying {
                        step: info,
                        attempt: attempt + 1,
                        of: retries + 1,
                        wait_ms: wait.as_millis(),
                        blockers: &blockers,
                    });
                    tokio::time::sleep(wait).await;
                }
                Err((error, _)) => {
                    self.audit
                        .finish(&engine.db, handle, "failed", Some(&db_text(&error)))
                        .await;
                    // A migration that refuses before it changes anything says so with
                    // `DbErr::Migration` (the widening's `down` over long values): then the
                    // marker would lie, so it goes.
                    // Not when finishing a step an earlier run left half-done: what that
                    // run changed is still there, and the marker says so.
                    let refused = matches!(error, DbErr::Migration(_)) && operation != "resume";
                    if refused && !transactional {
                        if let Ok(state) = read_state(&engine.db).await {
                            if let Some(row) = state.state_rows.get(info.name) {
                                let _ = record::clear_marker(&engine.db, info.name, row).await;
                            }
                        }
                    }
                    return Err(StepError::Failed {
                        error,
                        rolled_back: transactional || refused,
                    });
                }
            }
        }
        self.audit.finish(&engine.db, handle, "ok", None).await;
        if let (Some(txn), Some((n, next))) = (begun_next, next) {
            self.ahead = Some(Ahead {
                step: n.name,
                txn,
                handle: next
                    .written()
                    .map(|(seq, started)| AuditHandle { seq, started }),
            });
        }
        if direction == Direction::Up {
            self.created.extend(info.creates_tables);
        }
        tracing::info!(
            "{} {} done in {:.1} ms ({attempt} attempt(s))",
            direction.as_str(),
            info.name,
            started.elapsed().as_secs_f64() * 1000.0
        );
        Ok(StepDone {
            step: info,
            direction,
            elapsed: started.elapsed(),
            attempts: attempt,
        })
    }

    /// The whole plan in one transaction: everything or nothing.
    async fn atomic(&mut self, plan: &Plan, operation: &str) -> Result<(), Error> {
        if self.backend() == DbBackend::MySql {
            return Err(Error::AtomicRefused { step: None });
        }
        for s in &plan.steps {
            if !in_transaction_on(self.object(s.name)?, self.backend()) {
                return Err(Error::AtomicRefused { step: Some(s) });
            }
        }
        if plan.steps.is_empty() {
            return Ok(());
        }
        let mut handles = Vec::new();
        for s in &plan.steps {
            let h = self
                .audit
                .start(
                    &self.engine.db,
                    operation,
                    self.app,
                    Some(s),
                    Some(plan.direction),
                )
                .await;
            handles.push(h);
        }
        let started = Instant::now();
        let mut sums = Vec::new();
        for s in &plan.steps {
            sums.push(match plan.direction {
                Direction::Up => offline::checksum(self.object(s.name)?, self.backend()).await?,
                Direction::Down => String::new(),
            });
        }
        let txn = begin(self.engine).await?;
        let mut times = Vec::new();
        let mut failure: Option<(&'static StepInfo, DbErr)> = None;
        for (s, sum) in plan.steps.iter().zip(&sums) {
            if self.hooks.should_stop() {
                break;
            }
            self.hooks.event(&Event::StepStarted {
                step: s,
                direction: plan.direction,
                transactional: true,
                tables: &[],
            });
            self.hooks.before_step(s, plan.direction).await;
            let t = Instant::now();
            let obj = self.object(s.name)?;
            let r = async {
                let manager = SchemaManager::new(&txn);
                match plan.direction {
                    Direction::Up => obj.up(&manager).await?,
                    Direction::Down => obj.down(&manager).await?,
                }
                record::finish_step(&txn, record::now_secs(), s, plan.direction, sum).await
            }
            .await;
            match r {
                Ok(()) => times.push((*s, t.elapsed())),
                Err(e) => {
                    failure = Some((s, e));
                    break;
                }
            }
        }
        let stopped = self.hooks.should_stop() && failure.is_none();
        let outcome = match (&failure, stopped) {
            (None, false) => txn.commit().await,
            _ => txn.rollback().await,
        };
        let outcome = match (failure, outcome) {
            (Some(f), _) => Err(f),
            (None, Err(e)) => Err((plan.steps[times.len().saturating_sub(1)], e)),
            (None, Ok(())) => Ok(()),
        };
        let (label, err) = match (&outcome, stopped) {
            (Ok(()), false) => ("ok", None),
            (Ok(()), true) => ("interrupted", None),
            (Err((_, e)), _) => ("failed", Some(db_text(e))),
        };
        for h in handles {
            self.audit
                .finish(&self.engine.db, h, label, err.as_deref())
                .await;
        }
        match outcome {
            Ok(()) if stopped => self.interrupted().await,
            Ok(()) => {
                let _ = started;
                for (s, elapsed) in times {
                    let done = StepDone {
                        step: s,
                        direction: plan.direction,
                        elapsed,
                        attempts: 1,
                    };
                    self.hooks.event(&Event::StepFinished { done: &done });
                    self.report.done.push(done);
                }
                Ok(())
            }
            Err((step, error)) => {
                self.read_back().await;
                Err(Error::StepFailed(Box::new(StepFailure {
                    step,
                    direction: plan.direction,
                    error,
                    rolled_back: true,
                    report: self.report.clone(),
                })))
            }
        }
    }
}

/// Begins a step's transaction: SQLite `BEGIN IMMEDIATE` waiting at most the DDL lock
/// timeout for the write lock; PostgreSQL with `SET LOCAL` timeouts.
async fn begin(engine: &Engine) -> Result<DatabaseTransaction, DbErr> {
    let opts = &engine.opts;
    let db = &engine.db;
    let ms = opts.ddl_lock_timeout.as_millis().max(1);
    match engine.backend {
        DbBackend::Sqlite => {
            db.execute_unprepared(&format!("PRAGMA busy_timeout = {ms}"))
                .await?;
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{ms}ms'"))
                .await?;
            if let Some(st) = opts.statement_timeout {
                txn.execute_unprepared(&format!(
                    "SET LOCAL statement_timeout = '{}ms'",
                    st.as_millis().max(1)
                ))
                .await?;
            }
            Ok(txn)
        }
        _ => db.begin().await,
    }
}

pub(super) type StepResult = Result<(), (DbErr, Vec<Blocker>)>;

/// A step in its own transaction with its tracking and state rows.
async fn in_transaction(
    engine: &Engine,
    obj: &dyn Step,
    direction: Direction,
    checksum: &str,
    hooks: &mut dyn Hooks,
) -> StepResult {
    let info = obj.info();
    let txn = begin(engine).await.map_err(|e| (e, Vec::new()))?;
    let work = async {
        let manager = SchemaManager::new(&txn);
        match direction {
            Direction::Up => obj.up(&manager).await?,
            Direction::Down => obj.down(&manager).await?,
        }
        record::finish_step(&txn, record::now_secs(), info, direction, checksum).await
    };
    let (r, blockers) = super::watch::while_running(engine, info, direction, hooks, work).await;
    match r {
        Ok(()) => txn.commit().await.map_err(|e| (e, blockers)),
        Err(e) => {
            let _ = txn.rollback().await;
            Err((e, blockers))
        }
    }
}

/// A step that cannot run in a transaction (MySQL DDL, `CREATE INDEX CONCURRENTLY`):
/// session-level timeouts, the step, then its rows and the cleared marker in one
/// transaction. Idempotent, so a retry or the next run completes it.
async fn outside_transaction(
    engine: &Engine,
    obj: &dyn Step,
    direction: Direction,
    checksum: &str,
    hooks: &mut dyn Hooks,
    audit: Option<AuditEnd<'_>>,
    limits: &SessionLimits,
) -> (StepResult, Logged) {
    let info = obj.info();
    let opts = &engine.opts;
    let db = &engine.db;
    let plain = |e| (e, Vec::new());
    if !limits.preset {
        for s in limits.joined(engine.backend, &limits.set) {
            if let Err(e) = db.execute_unprepared(&s).await {
                return (Err(plain(e)), Logged::NotYet);
            }
        }
    }
    // MariaDB bounds every statement with `max_statement_time`; MySQL has no such variable
    // (its `max_execution_time` covers SELECT only), so there the limit cannot apply.
    let mut mariadb_limit = false;
    if let (DbBackend::MySql, Some(st)) = (engine.backend, opts.statement_timeout) {
        mariadb_limit = db
            .execute_unprepared(&format!(
                "SET SESSION max_statement_time = {:.3}",
                st.as_secs_f64().max(0.001)
            ))
            .await
            .is_ok();
    }
    let work = async {
        let manager = SchemaManager::new(db);
        match direction {
            Direction::Up => obj.up(&manager).await,
            Direction::Down => obj.down(&manager).await,
        }
    };
    let (r, blockers) = super::watch::while_running(engine, info, direction, hooks, work).await;
    let fast = pg_fast_path(engine);
    let reset = || async {
        for s in limits.joined(engine.backend, &limits.reset) {
            let _ = db.execute_unprepared(&s).await;
        }
    };
    if r.is_err() || !fast {
        reset().await;
    }
    if mariadb_limit {
        let _ = db
            .execute_unprepared("SET SESSION max_statement_time = DEFAULT")
            .await;
    }
    if let Err(e) = r {
        return (Err((e, blockers)), Logged::NotYet);
    }
    if fast {
        // The timeouts' reset, the rows, the audit entry's end and COMMIT in one message,
        // BEGIN included. The resets join the transaction (statements before a BEGIN in the
        // same message do), so a failure rolls them back too: then they are sent again.
        let txn = PgTxn { db, open: true };
        let prefix = format!("{}; BEGIN; ", limits.reset.join("; "));
        let (r, logged, _) = pg_commit(&txn, info, direction, checksum, audit, &prefix, None).await;
        let mut txn = txn;
        txn.open = false;
        if r.is_err() {
            reset().await;
        }
        return (r.map_err(plain), logged);
    }
    let txn = match db.begin().await {
        Ok(t) => t,
        Err(e) => return (Err(plain(e)), Logged::NotYet),
    };
    let r = match record::finish_step(&txn, record::now_secs(), info, direction, checksum).await {
        Ok(()) => txn.commit().await.map_err(plain),
        Err(e) => {
            let _ = txn.rollback().await;
            Err(plain(e))
        }
    };
    (r, Logged::NotYet)
}

/// Avatar's step that creates `settings` and its default prompts.
const SETTINGS_STEP: &str = crate::avatar::m20260130_113328_create_settings_table::INFO.name;

/// The session timeouts a step outside a transaction runs under (a transaction's own are
/// `SET LOCAL`), and the statements that put them back.
struct SessionLimits {
    set: Vec<String>,
    reset: Vec<String>,
    /// `set` has been sent already (with the step's marker).
    preset: bool,
}

impl SessionLimits {
    fn of(engine: &Engine) -> SessionLimits {
        let opts = &engine.opts;
        match engine.backend {
            DbBackend::Postgres => {
                let mut set = vec![format!(
                    "SET lock_timeout = '{}ms'",
                    opts.ddl_lock_timeout.as_millis().max(1)
                )];
                if let Some(st) = opts.statement_timeout {
                    set.push(format!(
                        "SET statement_timeout = '{}ms'",
                        st.as_millis().max(1)
                    ));
                }
                let reset = ["RESET lock_timeout", "RESET statement_timeout"];
                SessionLimits {
                    set,
                    reset: reset.map(String::from).to_vec(),
                    preset: false,
                }
            }
            DbBackend::MySql => SessionLimits {
                set: vec![format!(
                    "SET SESSION lock_wait_timeout = {}",
                    opts.ddl_lock_timeout.as_secs().max(1)
                )],
                reset: vec!["SET SESSION lock_wait_timeout = DEFAULT".to_owned()],
                preset: false,
            },
            _ => SessionLimits {
                set: Vec::new(),
                reset: Vec::new(),
                preset: false,
            },
        }
    }

    /// PostgreSQL takes several statements in one message: one round trip for all of them.
    fn joined(&self, backend: DbBackend, v: &[String]) -> Vec<String> {
        match backend {
            DbBackend::Postgres if !v.is_empty() => vec![v.join("; ")],
            _ => v.to_vec(),
        }
    }
}

/// The target left once a half-done step was finished. The re-run that finishes a step in
/// its own direction counts it as one of its relative steps: `downgrade` after an interrupted
/// `downgrade` completes that one migration and does not roll back another.
fn after_resume(t: &Target, resumed: Option<Direction>, direction: Direction) -> Target {
    match (t, resumed) {
        (Target::Relative(n), Some(d)) if d == direction && *n != 0 => {
            Target::Relative(n - n.signum())
        }
        _ => t.clone(),
    }
}

/// Whether `step` runs inside a transaction on `backend`. MySQL commits DDL at once; SQLite's
/// DDL always rolls back, so a step that must run outside a transaction on PostgreSQL
/// (`CREATE INDEX CONCURRENTLY`) still runs in one there and never needs a half-done marker.
pub fn in_transaction_on(step: &dyn MigrationTrait, backend: DbBackend) -> bool {
    match backend {
        DbBackend::MySql => false,
        DbBackend::Sqlite => true,
        _ => step.use_transaction() != Some(false),
    }
}

fn quote_ident(backend: DbBackend, ident: &str) -> String {
    match backend {
        DbBackend::MySql => format!("`{ident}`"),
        _ => format!("\"{ident}\""),
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.backend)
            .finish()
    }
}
