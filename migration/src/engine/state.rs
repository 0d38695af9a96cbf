//! Migration state, plans and runs. Built on sea-orm-migration's `MigratorTrait` (each step
//! is `up(Some(1))` / `down(Some(1))`, so its transaction handling and bookkeeping are used
//! as they are; it re-reads the state itself, under our lock); this module adds what it
//! lacks: a lock, targets, stamping, Alembic adoption, read-only status and per-step
//! reporting.

use super::app::App;
use super::target::Target;
use super::{catalog, lock};
use crate::StepInfo;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Statement, TransactionTrait,
};
use sea_orm_migration::{seaql_migrations, MigratorTrait};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

pub const TRACKING_TABLE: &str = "seaql_migrations";
pub const ALEMBIC_TABLE: &str = "alembic_version";

/// One row of the tracking table.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub version: String,
    pub applied_at: DateTime<Utc>,
}

/// What the database says about migrations, read without writing anything.
#[derive(Debug, Clone, Default)]
pub struct DbState {
    pub tables: BTreeSet<String>,
    pub tracking_table: bool,
    pub recorded: Vec<Recorded>,
    /// `alembic_version.version_num`, when that table exists and has a row.
    pub alembic: Option<String>,
}

/// Reads tables, tracking rows and Alembic's revision: two or three queries, no writes.
pub async fn read_state<C: ConnectionTrait>(db: &C) -> Result<DbState, DbErr> {
    let tables = catalog::table_names(db).await?;
    let tracking_table = tables.contains(TRACKING_TABLE);
    let recorded = if tracking_table {
        seaql_migrations::Entity::find()
            .order_by_asc(seaql_migrations::Column::Version)
            .all(db)
            .await?
            .into_iter()
            .map(|m| Recorded {
                applied_at: DateTime::from_timestamp(m.applied_at, 0).unwrap_or_default(),
                version: m.version,
            })
            .collect()
    } else {
        Vec::new()
    };
    let alembic = if tables.contains(ALEMBIC_TABLE) {
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT version_num FROM alembic_version".to_owned(),
            ))
            .await?;
        row.map(|r| r.try_get_by_index::<String>(0)).transpose()?
    } else {
        None
    };
    Ok(DbState {
        tables,
        tracking_table,
        recorded,
        alembic,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Applied,
    Pending,
    /// Recorded in the database but not part of this build.
    Unknown,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Applied => "applied",
            StepState::Pending => "pending",
            StepState::Unknown => "unknown",
        }
    }
}

/// One migration as `status` and `history` show it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub alias: Option<&'static str>,
    pub description: &'static str,
    pub state: StepState,
    pub applied_at: Option<DateTime<Utc>>,
}

/// How the database relates to Alembic, when it carries `alembic_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Alembic {
    /// Not recorded by dbtool yet: dbtool adopts it, taking these migrations as applied.
    Adoptable {
        revision: String,
        migrations: Vec<&'static str>,
    },
    /// A revision this build does not know.
    Unknown { revision: String },
}

/// The state of every migration of one app in one database.
#[derive(Debug, Clone)]
pub struct Overview {
    pub app: App,
    pub steps: Vec<&'static StepInfo>,
    pub applied: Vec<bool>,
    pub applied_at: Vec<Option<DateTime<Utc>>>,
    /// Recorded versions that belong to no known migration of this app.
    pub unknown: Vec<Recorded>,
    /// Recorded versions that belong to another app.
    pub foreign: Option<(App, Vec<String>)>,
    pub alembic: Option<Alembic>,
    pub tracking_table: bool,
}

impl Overview {
    pub fn new(app: App, state: &DbState) -> Overview {
        let steps = app.steps();
        let by_version: HashMap<&str, &Recorded> = state
            .recorded
            .iter()
            .map(|r| (r.version.as_str(), r))
            .collect();
        let mut applied: Vec<bool> = steps
            .iter()
            .map(|s| by_version.contains_key(s.name))
            .collect();
        let applied_at = steps
            .iter()
            .map(|s| by_version.get(s.name).map(|r| r.applied_at))
            .collect();
        let mine: BTreeSet<&str> = steps.iter().map(|s| s.name).collect();
        let mut foreign = None;
        for other in App::REAL.into_iter().filter(|a| *a != app) {
            let theirs: BTreeSet<&str> = other.steps().iter().map(|s| s.name).collect();
            let hits: Vec<String> = state
                .recorded
                .iter()
                .filter(|r| theirs.contains(r.version.as_str()))
                .map(|r| r.version.clone())
                .collect();
            if !hits.is_empty() {
                foreign = Some((other, hits));
                break;
            }
        }
        let unknown = state
            .recorded
            .iter()
            .filter(|r| !mine.contains(r.version.as_str()))
            .filter(|r| {
                foreign
                    .as_ref()
                    .is_none_or(|(_, f)| !f.contains(&r.version))
            })
            .cloned()
            .collect();
        let nothing_recorded = !applied.iter().any(|a| *a);
        let alembic = match &state.alembic {
            Some(rev) if app.has_aliases() && nothing_recorded => {
                match steps.iter().position(|s| s.alias == Some(rev.as_str())) {
                    Some(i) => {
                        for a in applied.iter_mut().take(i + 1) {
                            *a = true;
                        }
                        Some(Alembic::Adoptable {
                            revision: rev.clone(),
                            migrations: steps[..=i].iter().map(|s| s.name).collect(),
                        })
                    }
                    None => Some(Alembic::Unknown {
                        revision: rev.clone(),
                    }),
                }
            }
            _ => None,
        };
        Overview {
            app,
            steps,
            applied,
            applied_at,
            unknown,
            foreign,
            alembic,
            tracking_table: state.tracking_table,
        }
    }

    /// How many migrations from the start up to the last applied one (0 = base).
    pub fn position(&self) -> usize {
        self.applied.iter().rposition(|a| *a).map_or(0, |i| i + 1)
    }

    pub fn current(&self) -> Option<&'static StepInfo> {
        self.position().checked_sub(1).map(|i| self.steps[i])
    }

    pub fn pending(&self) -> usize {
        self.applied.iter().filter(|a| !**a).count()
    }

    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| Row {
                name: s.name.to_owned(),
                alias: s.alias,
                description: s.description,
                state: if self.applied[i] {
                    StepState::Applied
                } else {
                    StepState::Pending
                },
                applied_at: self.applied_at[i],
            })
            .collect();
        rows.extend(self.unknown.iter().map(|r| Row {
            name: r.version.clone(),
            alias: None,
            description: "recorded in the database, unknown to this build of dbtool",
            state: StepState::Unknown,
            applied_at: Some(r.applied_at),
        }));
        rows
    }

    /// Refuses to write to a database that belongs to another app or holds migrations this
    /// build does not know, or carries an Alembic revision it cannot map.
    pub fn check_writable(&self) -> Result<(), MigrateError> {
        if let Some((other, versions)) = &self.foreign {
            return Err(MigrateError::WrongApp {
                app: self.app,
                other: *other,
                versions: versions.clone(),
            });
        }
        if !self.unknown.is_empty() {
            return Err(MigrateError::UnknownRecorded {
                versions: self.unknown.iter().map(|r| r.version.clone()).collect(),
            });
        }
        if let Some(Alembic::Unknown { revision }) = &self.alembic {
            return Err(MigrateError::UnknownAlembic {
                revision: revision.clone(),
            });
        }
        Ok(())
    }

    /// Resolves a target to a position (0 = base, n = head).
    pub fn resolve(&self, target: &Target) -> Result<usize, MigrateError> {
        let n = self.steps.len();
        match target {
            Target::Head => Ok(n),
            Target::Base => Ok(0),
            Target::Relative(k) => {
                let p = self.position() as i64 + *k as i64;
                if p < 0 || p > n as i64 {
                    Err(MigrateError::OutOfRange {
                        target: target.to_string(),
                        position: self.position(),
                        total: n,
                    })
                } else {
                    Ok(p as usize)
                }
            }
            Target::Name(name) => {
                let exact = self
                    .steps
                    .iter()
                    .position(|s| s.name == name || s.alias == Some(name.as_str()));
                if let Some(i) = exact {
                    return Ok(i + 1);
                }
                if name.len() < 4 {
                    return Err(MigrateError::UnknownTarget {
                        target: name.clone(),
                        app: self.app,
                        hint: "a prefix needs at least 4 characters".into(),
                    });
                }
                let hits: Vec<usize> = self
                    .steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        s.name.starts_with(name.as_str())
                            || s.alias.is_some_and(|a| a.starts_with(name.as_str()))
                    })
                    .map(|(i, _)| i)
                    .collect();
                match hits.as_slice() {
                    [i] => Ok(i + 1),
                    [] => Err(MigrateError::UnknownTarget {
                        target: name.clone(),
                        app: self.app,
                        hint: "see `dbtool history` for the names".into(),
                    }),
                    many => Err(MigrateError::AmbiguousTarget {
                        target: name.clone(),
                        candidates: many
                            .iter()
                            .map(|i| self.steps[*i].name.to_owned())
                            .collect(),
                    }),
                }
            }
        }
    }

    /// The steps that move the database up to `target`.
    pub fn plan_upgrade(&self, target: &Target) -> Result<Plan, MigrateError> {
        let to = self.resolve(target)?;
        let from = self.position();
        if to < from {
            return Err(MigrateError::WrongDirection {
                target: target.to_string(),
                command: "downgrade",
            });
        }
        let steps = (0..to)
            .filter(|i| !self.applied[*i])
            .map(|i| self.steps[i])
            .collect();
        Ok(Plan {
            direction: Direction::Up,
            steps,
            from,
            to,
        })
    }

    /// The steps that move the database down to `target`.
    pub fn plan_downgrade(&self, target: &Target) -> Result<Plan, MigrateError> {
        let to = self.resolve(target)?;
        let from = self.position();
        if to > from {
            return Err(MigrateError::WrongDirection {
                target: target.to_string(),
                command: "upgrade",
            });
        }
        let steps = (to..self.steps.len())
            .rev()
            .filter(|i| self.applied[*i])
            .map(|i| self.steps[i])
            .collect();
        Ok(Plan {
            direction: Direction::Down,
            steps,
            from,
            to,
        })
    }

    /// The bookkeeping changes that make exactly the first `target` migrations applied.
    pub fn plan_stamp(&self, target: &Target) -> Result<StampPlan, MigrateError> {
        let to = self.resolve(target)?;
        let mut plan = StampPlan {
            to,
            insert: Vec::new(),
            delete: Vec::new(),
        };
        for (i, s) in self.steps.iter().enumerate() {
            match (i < to, self.applied[i]) {
                (true, false) => plan.insert.push(*s),
                (false, true) => plan.delete.push(*s),
                _ => {}
            }
        }
        Ok(plan)
    }

    /// Tables the plan would create that exist already although the migration creating
    /// them is not recorded (a legacy database, or a failed non-transactional run).
    pub fn conflicts(
        &self,
        plan: &Plan,
        state: &DbState,
    ) -> Vec<(&'static StepInfo, Vec<&'static str>)> {
        if plan.direction != Direction::Up {
            return Vec::new();
        }
        plan.steps
            .iter()
            .filter_map(|s| {
                let present: Vec<&'static str> = s
                    .creates_tables
                    .iter()
                    .copied()
                    .filter(|t| state.tables.contains(*t))
                    .collect();
                (!present.is_empty()).then_some((*s, present))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// The migrations a run will apply or roll back, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub direction: Direction,
    pub steps: Vec<&'static StepInfo>,
    pub from: usize,
    pub to: usize,
}

#[derive(Debug, Clone)]
pub struct StampPlan {
    pub to: usize,
    pub insert: Vec<&'static StepInfo>,
    pub delete: Vec<&'static StepInfo>,
}

/// Errors a caller matches on to choose the message and exit code.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("this database holds {other} migrations ({}); it does not belong to {app}. Use --app {other}, or another database{}", versions.join(", "), if matches!(app, App::Avatar | App::Neurachar) { " (or --schema on PostgreSQL)" } else { "" })]
    WrongApp {
        app: App,
        other: App,
        versions: Vec<String>,
    },
    #[error("the database records migrations this build of dbtool does not know: {}; it was migrated by a newer dbtool? Use that version, or delete those rows from seaql_migrations if you are sure they are obsolete", versions.join(", "))]
    UnknownRecorded { versions: Vec<String> },
    #[error("alembic_version holds revision '{revision}', which dbtool does not know (known: 25698f3f906f, d8cfd3cb4083); nothing was changed. Bring the database to a known revision with Flask-Migrate first, or stamp it explicitly with `dbtool stamp`")]
    UnknownAlembic { revision: String },
    #[error("unknown target '{target}' for app {app}: not a migration name or revision ({hint})")]
    UnknownTarget {
        target: String,
        app: App,
        hint: String,
    },
    #[error("ambiguous target '{target}': it matches {}; give more characters", candidates.join(", "))]
    AmbiguousTarget {
        target: String,
        candidates: Vec<String>,
    },
    #[error(
        "target '{target}' is out of range: the database is at position {position} of {total}"
    )]
    OutOfRange {
        target: String,
        position: usize,
        total: usize,
    },
    #[error("target '{target}' is in the other direction: use `dbtool {command} {target}`")]
    WrongDirection {
        target: String,
        command: &'static str,
    },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Something that happened during a run, reported as it happens.
#[derive(Debug, Clone, Serialize)]
pub struct StepDone {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub direction: Direction,
    #[serde(serialize_with = "ser_ms")]
    pub elapsed: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0)
}

/// A migration that failed: which one, and the database's message.
#[derive(Debug)]
pub struct StepFailed {
    pub step: &'static StepInfo,
    pub direction: Direction,
    pub error: DbErr,
    /// The backend cannot roll DDL back (MySQL/MariaDB): the step may be half done.
    pub partial: bool,
    /// The step runs outside a transaction by design (`CREATE INDEX CONCURRENTLY`) and is
    /// written so that running it again completes it.
    pub resumable: bool,
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub done: Vec<StepDone>,
    pub failed: Option<StepFailed>,
    /// A signal asked the run to stop before the next step.
    pub interrupted: bool,
}

/// A write session: one connection, holding the migration lock, with the state re-read
/// after the lock was taken. On SQLite everything happens in one IMMEDIATE transaction
/// (its write lock), each step in a savepoint of it.
pub struct Session<'a> {
    db: &'a DatabaseConnection,
    held: Option<lock::Held>,
    lock_key: String,
    pub app: App,
    pub state: DbState,
    pub overview: Overview,
}

impl<'a> Session<'a> {
    /// Takes the lock (calling `on_wait` once if it must wait) and reads the state.
    pub async fn open(
        db: &'a DatabaseConnection,
        app: App,
        lock_key: &str,
        lock_timeout: Duration,
        on_wait: impl FnOnce(&lock::Holder),
    ) -> Result<Session<'a>, MigrateError> {
        let held = lock::acquire(db, lock_key, lock_timeout, on_wait).await?;
        let state = match &held {
            lock::Held::Sqlite(t) => read_state(t).await?,
            lock::Held::Session => read_state(db).await?,
        };
        let overview = Overview::new(app, &state);
        Ok(Session {
            db,
            held: Some(held),
            lock_key: lock_key.to_owned(),
            app,
            state,
            overview,
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Records the migrations that Alembic's revision stands for; returns them if it did.
    pub async fn adopt_alembic(
        &mut self,
    ) -> Result<Option<(String, Vec<&'static str>)>, MigrateError> {
        let Some(Alembic::Adoptable {
            revision,
            migrations,
        }) = self.overview.alembic.clone()
        else {
            return Ok(None);
        };
        let steps: Vec<&'static StepInfo> = self
            .overview
            .steps
            .iter()
            .copied()
            .filter(|s| migrations.contains(&s.name))
            .collect();
        self.write_stamp(&steps, &[]).await?;
        self.reread().await?;
        Ok(Some((revision, migrations)))
    }

    /// Inserts and deletes tracking rows in one transaction (the SQLite one already is).
    pub async fn write_stamp(
        &self,
        insert: &[&'static StepInfo],
        delete: &[&'static StepInfo],
    ) -> Result<(), MigrateError> {
        match &self.held {
            Some(lock::Held::Sqlite(t)) => {
                let sp = t.begin().await?;
                stamp_rows(&sp, insert, delete).await?;
                sp.commit().await?;
            }
            _ => {
                let t = self.db.begin().await?;
                stamp_rows(&t, insert, delete).await?;
                t.commit().await?;
            }
        }
        Ok(())
    }

    async fn reread(&mut self) -> Result<(), DbErr> {
        self.state = match &self.held {
            Some(lock::Held::Sqlite(t)) => read_state(t).await?,
            _ => read_state(self.db).await?,
        };
        self.overview = Overview::new(self.app, &self.state);
        Ok(())
    }

    /// Row counts of the tables the plan would drop, for those that hold rows.
    pub async fn data_at_risk(&self, plan: &Plan) -> Result<Vec<(String, i64)>, DbErr> {
        match &self.held {
            Some(lock::Held::Sqlite(tx)) => data_at_risk(tx, &self.state, plan).await,
            _ => data_at_risk(self.db, &self.state, plan).await,
        }
    }

    /// Runs the plan one step at a time, stopping at the first failure or when a signal
    /// asked for a stop. `on_step` is called after each step.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        should_stop: &dyn Fn() -> bool,
        mut on_step: impl FnMut(&StepDone),
    ) -> Outcome {
        let mut outcome = Outcome::default();
        for step in &plan.steps {
            if should_stop() {
                outcome.interrupted = true;
                break;
            }
            let started = Instant::now();
            let result = self.one_step(plan.direction).await;
            match result {
                Ok(()) => {
                    let done = StepDone {
                        name: step.name,
                        alias: step.alias,
                        direction: plan.direction,
                        elapsed: started.elapsed(),
                    };
                    on_step(&done);
                    outcome.done.push(done);
                }
                Err(error) => {
                    outcome.failed = Some(StepFailed {
                        step,
                        direction: plan.direction,
                        error,
                        partial: self.backend() == DbBackend::MySql,
                        // SQLite rolls the step's savepoint back all the same.
                        resumable: self.backend() != DbBackend::Sqlite
                            && outside_transaction(self.app, step.name),
                    });
                    break;
                }
            }
        }
        if let Err(e) = self.reread().await {
            if outcome.failed.is_none() {
                outcome.failed = plan.steps.first().map(|s| StepFailed {
                    step: s,
                    direction: plan.direction,
                    error: e,
                    partial: false,
                    resumable: false,
                });
            }
        }
        outcome
    }

    /// One step through sea-orm-migration: on SQLite inside a savepoint of the session's
    /// transaction, elsewhere with the migrator's own transaction rule.
    async fn one_step(&self, direction: Direction) -> Result<(), DbErr> {
        match &self.held {
            Some(lock::Held::Sqlite(t)) => {
                let sp = t.begin().await?;
                let r = match direction {
                    Direction::Up => self.app.up_one(&sp).await,
                    Direction::Down => self.app.down_one(&sp).await,
                };
                match r {
                    Ok(()) => sp.commit().await,
                    Err(e) => {
                        let _ = sp.rollback().await;
                        Err(e)
                    }
                }
            }
            _ => match direction {
                Direction::Up => self.app.up_one(self.db).await,
                Direction::Down => self.app.down_one(self.db).await,
            },
        }
    }

    /// Commits the SQLite transaction and releases the lock.
    pub async fn finish(mut self) -> Result<(), DbErr> {
        match self.held.take() {
            Some(lock::Held::Sqlite(t)) => t.commit().await,
            Some(lock::Held::Session) => lock::release(self.db, &self.lock_key).await,
            None => Ok(()),
        }
    }
}

/// Whether sea-orm-migration runs this migration without a transaction everywhere
/// (`use_transaction() == Some(false)`).
fn outside_transaction(app: App, name: &str) -> bool {
    app.objects()
        .iter()
        .any(|s| s.info().name == name && s.use_transaction() == Some(false))
}

async fn stamp_rows<C: ConnectionTrait>(
    db: &C,
    insert: &[&'static StepInfo],
    delete: &[&'static StepInfo],
) -> Result<(), DbErr> {
    if insert.is_empty() && delete.is_empty() {
        return Ok(());
    }
    crate::avatar::Migrator::install(db).await?;
    let now = Utc::now().timestamp();
    if !insert.is_empty() {
        seaql_migrations::Entity::insert_many(insert.iter().map(|s| {
            seaql_migrations::ActiveModel {
                version: ActiveValue::Set(s.name.to_owned()),
                applied_at: ActiveValue::Set(now),
            }
        }))
        .exec(db)
        .await?;
    }
    if !delete.is_empty() {
        seaql_migrations::Entity::delete_many()
            .filter(seaql_migrations::Column::Version.is_in(delete.iter().map(|s| s.name)))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Row counts of the tables a downgrade plan would drop, for those that hold rows.
pub async fn data_at_risk<C: ConnectionTrait>(
    db: &C,
    state: &DbState,
    plan: &Plan,
) -> Result<Vec<(String, i64)>, DbErr> {
    if plan.direction != Direction::Down {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for s in &plan.steps {
        for t in s.creates_tables.iter().rev() {
            if state.tables.contains(*t) {
                let n = count_rows(db, t).await?;
                if n > 0 {
                    out.push(((*t).to_owned(), n));
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

/// The name people should type for a migration: its Alembic alias when it has one.
pub fn short_name(s: &StepInfo) -> &'static str {
    s.alias.unwrap_or(s.name)
}

/// The `stamp` command that fits a database whose tables exist ahead of the records.
pub fn suggested_stamp(ov: &Overview, state: &DbState) -> Option<&'static StepInfo> {
    let mut last = None;
    for (i, s) in ov.steps.iter().enumerate() {
        if ov.applied[i] {
            last = Some(*s);
            continue;
        }
        if !s.creates_tables.is_empty()
            && s.creates_tables.iter().all(|t| state.tables.contains(*t))
        {
            last = Some(*s);
        } else {
            break;
        }
    }
    last.filter(|s| {
        let i = ov.steps.iter().position(|x| x.name == s.name).unwrap_or(0);
        !ov.applied[i]
    })
}
