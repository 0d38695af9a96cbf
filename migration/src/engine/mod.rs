//! The migration engine: everything that reads or changes a schema's migration state goes
//! through here, the `dbtool` CLI and applications that migrate at start-up alike. It never
//! prints: it returns data ([`Status`], [`Preview`], [`Report`]), emits [`Event`]s through the
//! caller's [`Hooks`], and fails with a typed [`Error`].
//!
//! ```no_run
//! # async fn demo(db: &sea_orm::DatabaseConnection) -> Result<(), migration::engine::Error> {
//! use migration::engine::{Command, Engine, NoHooks, Options};
//! use migration::{App, Target};
//!
//! let engine = Engine::new(db, Options::for_app(App::Neurachar)).await?;
//! let report = engine.run(&Command::Upgrade(Target::Head), &mut NoHooks).await?;
//! println!("now at {}", report.to.unwrap_or("base"));
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod catalog;
mod conn;
pub mod error;
pub mod lock;
pub mod migrator;
pub mod offline;
mod pg_step;
pub mod plan;
pub mod recognise;
pub mod record;
pub mod repair;
pub mod report;
mod run;
pub mod schema;
pub mod snapshot;
pub mod state;
pub mod target;
pub mod verify;
mod watch;

pub use error::{Blocker, Error, Evidence, LockTimeoutFailure, StepFailure, TargetError};
pub use lock::Holder;
pub use plan::{Direction, Plan, StampPlan};
pub use recognise::{AppChoice, Chosen};
pub use repair::{ChecksumRepair, MarkerRepair, RepairPlan};
pub use report::{Adoption, Event, Hooks, NoHooks, Report, StepDone, TableEstimate, TableRows};
pub use run::{
    data_at_risk, db_code, in_transaction_on, quote_pg, AuditLog, Checksum, Command, Engine,
    Options, Preview, Problem, SessionFacts, Status, SESSION_SQL,
};
pub use state::{describe, short_name, Alembic, DbState, Overview, StepState};
