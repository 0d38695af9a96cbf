//! The engine's errors: plain data that states what is wrong. Wording with commands to type
//! and exit codes belong to the caller (the CLI maps each variant in one place).

use super::app::App;
use super::lock::Holder;
use super::plan::Direction;
use super::repair::{MarkerRepair, RepairPlan};
use super::report::{Report, StepDone, TableRows};
use super::verify::Missing;
use crate::StepInfo;
use sea_orm::DbErr;
use std::time::Duration;

/// A target that does not fit the app or the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("unknown target '{target}' for app {app}: not a migration name or revision{}", if *short { " (a prefix needs at least 4 characters)" } else { "" })]
    Unknown {
        target: String,
        app: App,
        /// The target is shorter than the 4 characters a prefix needs.
        short: bool,
    },
    #[error("ambiguous target '{target}': it matches {}", candidates.join(", "))]
    Ambiguous {
        target: String,
        candidates: Vec<&'static str>,
    },
    #[error(
        "target '{target}' is out of range: the database is at position {position} of {total}"
    )]
    OutOfRange {
        target: String,
        position: usize,
        total: usize,
    },
    #[error("target '{target}' lies in the other direction ({command})")]
    WrongDirection {
        target: String,
        command: &'static str,
    },
}

/// A blocking session named while a step waits for a table lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blocker {
    pub pid: Option<i64>,
    pub user: Option<String>,
    pub application: Option<String>,
    pub state: Option<String>,
    /// When its transaction (or, without one, its query) started, RFC 3339 UTC.
    pub since: Option<String>,
    pub query: Option<String>,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.pid {
            parts.push(format!("pid {p}"));
        }
        if let Some(u) = &self.user {
            parts.push(format!("user {u}"));
        }
        if let Some(a) = self.application.as_deref().filter(|a| !a.is_empty()) {
            parts.push(format!("application '{a}'"));
        }
        if let Some(s) = &self.state {
            parts.push(s.clone());
        }
        if let Some(s) = &self.since {
            parts.push(format!("since {s}"));
        }
        if let Some(q) = self.query.as_deref().filter(|q| !q.is_empty()) {
            let q: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
            // The list of blockers is joined with `;`: a query's own would double it.
            let q = q.trim_end_matches([';', ' ']);
            let short: String = q.chars().take(80).collect();
            let ell = if short.len() < q.len() { "…" } else { "" };
            parts.push(format!("query: {short}{ell}"));
        }
        if parts.is_empty() {
            f.write_str("another session")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// How the database was recognised, or why it could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence(pub Vec<String>);

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// A step that failed, with what the run did before it.
#[derive(Debug)]
pub struct StepFailure {
    pub step: &'static StepInfo,
    pub direction: Direction,
    pub error: DbErr,
    /// True when the step's transaction rolled back (it left nothing); false when it runs
    /// outside a transaction and is marked half-done (the next run completes it).
    pub rolled_back: bool,
    /// What was done before it, and where the database is now (read back).
    pub report: Report,
}

/// A step that could not get its table locks.
#[derive(Debug)]
pub struct LockTimeoutFailure {
    pub step: &'static StepInfo,
    pub direction: Direction,
    pub attempts: u32,
    pub timeout: Duration,
    pub blockers: Vec<Blocker>,
    /// True when the step left nothing behind (it ran in a transaction).
    pub rolled_back: bool,
    pub report: Report,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("timed out after {}s waiting for the migration lock, held by {holder}", waited.as_secs())]
    Locked { waited: Duration, holder: Holder },
    #[error("this database belongs to {found} ({evidence}), not to {given}")]
    WrongApp {
        given: App,
        found: App,
        evidence: Evidence,
    },
    #[error("the database holds objects of both apps ({evidence}); name the app")]
    AmbiguousApp { evidence: Evidence },
    #[error("the database records migrations this build does not know: {}", versions.join(", "))]
    UnknownRecorded { versions: Vec<String> },
    #[error("alembic_version holds revision '{revision}', which this build does not know (known: {})", known.join(", "))]
    UnknownAlembic {
        revision: String,
        known: Vec<&'static str>,
        /// The position a stamp can record (its objects are all there), if any.
        stamp: Option<&'static StepInfo>,
    },
    #[error("out of order: {} pending while the later {} is applied", names(pending), after.name)]
    OutOfOrder {
        pending: Vec<&'static StepInfo>,
        after: &'static StepInfo,
    },
    #[error("table {} exists but migration {} that creates it is not recorded", tables.join(", "), step.name)]
    Conflict {
        step: &'static StepInfo,
        tables: Vec<&'static str>,
        /// A stamp that the verification accepts, if there is one.
        stamp: Option<&'static StepInfo>,
    },
    #[error("the downgrade drops tables that hold data: {}", risk.iter().map(|r| format!("{} ({} rows)", r.table, r.rows)).collect::<Vec<_>>().join(", "))]
    NotConfirmed { risk: Vec<TableRows> },
    #[error("cannot record {} as applied: {} missing", names(steps), missing.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", "))]
    Unverified {
        steps: Vec<&'static StepInfo>,
        missing: Vec<Missing>,
    },
    /// PostgreSQL: the schema to migrate is the session's temporary one (a `search_path`
    /// that starts with `pg_temp`): everything would be gone with the connection.
    #[error("the schema to migrate is {schema}, the session's temporary schema")]
    TemporarySchema { schema: String },
    /// `error` came after the run finished a step left half-done (`done`): the refusal's
    /// "nothing was changed" is no longer the whole truth.
    #[error("{error} (after finishing the half-done {})", done.step.name)]
    AfterResume { done: StepDone, error: Box<Error> },
    #[error("{}", match step { Some(s) => format!("--atomic is not possible: {} cannot run inside a transaction", s.name), None => "--atomic is not possible: MySQL/MariaDB commit every DDL statement at once".to_owned() })]
    AtomicRefused { step: Option<&'static StepInfo> },
    #[error("cannot create schema {schema}: {error}")]
    CreateSchema { schema: String, error: DbErr },
    #[error("the plan was refused on review: {reason}")]
    ReviewRefused { reason: String },
    #[error("read-only database: {reason}")]
    ReadOnly { reason: String },
    #[error("migration {} failed: {}", .0.step.name, .0.error)]
    StepFailed(Box<StepFailure>),
    #[error("migration {} could not get its table locks within {}s ({} attempts)", .0.step.name, .0.timeout.as_secs(), .0.attempts)]
    DdlLockTimeout(Box<LockTimeoutFailure>),
    #[error("interrupted")]
    Interrupted(Box<Report>),
    #[error("cannot open the lock file {}: {error}", file.display())]
    LockFile {
        file: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("{} is half-done ({}) and its objects exist only in part: {} missing", .0.step.name, .0.direction.as_str(), .0.objects.missing.join(", "))]
    RepairRefused(Box<MarkerRepair>),
    #[error("repair not confirmed")]
    RepairNotConfirmed(Box<RepairPlan>),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn names(steps: &[&'static StepInfo]) -> String {
    steps.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

impl Error {
    /// The report of a run that stopped, when it had started.
    pub fn report(&self) -> Option<&Report> {
        match self {
            Error::StepFailed(f) => Some(&f.report),
            Error::DdlLockTimeout(f) => Some(&f.report),
            Error::Interrupted(r) => Some(r),
            _ => None,
        }
    }

    /// [`Error::report`], to add to.
    pub fn report_mut(&mut self) -> Option<&mut Report> {
        match self {
            Error::StepFailed(f) => Some(&mut f.report),
            Error::DdlLockTimeout(f) => Some(&mut f.report),
            Error::Interrupted(r) => Some(r),
            _ => None,
        }
    }
}
