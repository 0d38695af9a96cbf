//! What a run reports: progress events while it runs (through [`Hooks`]) and a [`Report`]
//! when it ends. The engine never prints; callers render these.

use super::app::App;
use super::error::Blocker;
use super::lock::Holder;
use super::plan::Direction;
use crate::StepInfo;
use serde::Serialize;
use std::time::Duration;

/// A table a downgrade would drop, with its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRows {
    pub table: String,
    pub rows: i64,
}

/// A table a step works on, with the catalog's row estimate when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableEstimate {
    pub table: String,
    pub rows: Option<i64>,
}

/// One step that completed.
#[derive(Debug, Clone, Serialize)]
pub struct StepDone {
    #[serde(flatten)]
    pub step: &'static StepInfo,
    pub direction: Direction,
    #[serde(rename = "elapsed_ms", serialize_with = "ser_ms")]
    pub elapsed: Duration,
    /// How many times it was tried (DDL lock timeouts are retried).
    pub attempts: u32,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0)
}

/// An Alembic-managed database taken over: its revision and the migrations recorded for it.
#[derive(Debug, Clone, Serialize)]
pub struct Adoption {
    pub revision: String,
    pub migrations: Vec<&'static str>,
}

/// What a run did. `to` is read back from the database after the run, never inferred.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub app: App,
    /// None for a stamp.
    pub direction: Option<Direction>,
    /// The last applied migration before the run (None: base).
    pub from: Option<&'static str>,
    /// The last applied migration after the run, as the database says (None: base).
    pub to: Option<&'static str>,
    /// False when the position could not be read back (the connection was lost): then
    /// `to` says nothing.
    pub to_known: bool,
    /// The steps the run meant to take, in order.
    pub planned: Vec<&'static str>,
    /// The steps that completed, in order.
    pub done: Vec<StepDone>,
    /// A half-done step from an earlier run that this run finished first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<StepDone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopted: Option<Adoption>,
    /// Stamp: tracking rows added and removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recorded: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<&'static str>,
    /// A stamp that skipped verification (`force`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// Applied migrations whose checksums were recorded for the first time (databases
    /// migrated before checksums existed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backfilled: Vec<&'static str>,
    /// What a repair did (or found nothing to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<super::repair::RepairPlan>,
    /// A stop was requested; the run ended between steps.
    pub interrupted: bool,
    /// Things the caller should show (an audit log that could not be written, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(app: App, direction: Option<Direction>) -> Report {
        Report {
            app,
            direction,
            from: None,
            to: None,
            to_known: false,
            planned: Vec::new(),
            done: Vec::new(),
            resumed: None,
            adopted: None,
            recorded: Vec::new(),
            removed: Vec::new(),
            forced: false,
            backfilled: Vec::new(),
            repaired: None,
            interrupted: false,
            warnings: Vec::new(),
        }
    }
}

/// Something that happens during a run, reported as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The migration lock is held by someone else; the run waits (once per run).
    WaitingForLock {
        holder: &'a Holder,
        timeout_ms: u128,
    },
    /// The PostgreSQL schema did not exist and was created.
    SchemaCreated {
        schema: &'a str,
    },
    /// An Alembic-managed database was adopted.
    Adopted {
        adoption: &'a Adoption,
    },
    /// Checksums were recorded for migrations applied before checksums existed.
    Backfilled {
        migrations: &'a [&'static str],
    },
    /// A step interrupted halfway by an earlier run is being finished first.
    Resuming {
        step: &'static StepInfo,
        direction: Direction,
    },
    /// A step starts. `transactional` is false for steps that cannot roll back (the server
    /// keeps working on them even if the connection is dropped).
    StepStarted {
        step: &'static StepInfo,
        direction: Direction,
        transactional: bool,
        /// The existing tables it works on (index builds, ALTERs) with their estimated
        /// rows, when the catalog has an estimate.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        tables: &'a [TableEstimate],
    },
    StepFinished {
        done: &'a StepDone,
    },
    /// A step timed out waiting for a table lock and will be retried.
    Retrying {
        step: &'static StepInfo,
        attempt: u32,
        of: u32,
        wait_ms: u128,
        blockers: &'a [Blocker],
    },
    /// A running step waits for these sessions (PostgreSQL: exactly, from
    /// `pg_blocking_pids`), reported when the set changes.
    Blocked {
        step: &'static StepInfo,
        direction: Direction,
        blockers: &'a [Blocker],
    },
    /// How far a long step has come (PostgreSQL index builds: blocks, then tuples).
    Progress {
        step: &'static StepInfo,
        phase: &'a str,
        done: i64,
        total: i64,
    },
    Warning {
        message: &'a str,
    },
}

/// How a caller takes part in a run: rendering events, asking for confirmation, stopping.
#[sea_orm_migration::async_trait::async_trait]
pub trait Hooks: Send + Sync {
    /// Called for every event, in order.
    fn event(&mut self, _event: &Event<'_>) {}

    /// Asked before every step: true stops the run between steps (the report says
    /// `interrupted`).
    fn should_stop(&self) -> bool {
        false
    }

    /// Asked when a downgrade would drop tables that hold rows (unless
    /// `Options::allow_data_loss`); false refuses with `Error::NotConfirmed`.
    async fn confirm_data_loss(&mut self, _risk: &[TableRows]) -> bool {
        false
    }

    /// Asked before `repair` changes the record (unless the command says it is confirmed);
    /// false refuses with `Error::RepairNotConfirmed`.
    async fn confirm_repair(&mut self, _plan: &super::repair::RepairPlan) -> bool {
        false
    }

    /// Called right before a step starts, after its event. Tests block here to interleave
    /// runs deterministically; callers normally leave it alone.
    async fn before_step(&mut self, _step: &'static StepInfo, _direction: Direction) {}

    /// Called with the plan as it will most likely stand, under the lock but before the
    /// record's tables are made and the plan is final: work that depends on the plan alone
    /// (dbtool renders and parses its statements for [`Hooks::review`]) can start on a
    /// thread of its own while the run waits on the database. Must not block.
    fn planned_ahead(
        &mut self,
        _app: App,
        _plan: &super::plan::Plan,
        _backend: sea_orm::DbBackend,
    ) {
    }

    /// Called once the plan is final (under the lock, before any step): a chance to review
    /// it against the live database (dbtool lints it). `Err(reason)` refuses the run with
    /// `Error::ReviewRefused`; nothing has changed then.
    async fn review(
        &mut self,
        _app: App,
        _plan: &super::plan::Plan,
        _db: &sea_orm::DatabaseConnection,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// Hooks that render nothing, never stop and never confirm data loss.
pub struct NoHooks;

impl Hooks for NoHooks {}
