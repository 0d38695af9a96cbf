//! Migrating an application's database at start-up, the second way into the engine beside
//! the `dbtool` CLI: the same lock, per-step transactions, records and checks.
//!
//! ```sh
//! DATABASE_URL=postgres://app@db/neurachar cargo run -p migration --example migrate_at_startup -- neurachar
//! ```
//!
//! Prints one summary line and exits 0, or prints the error and exits 1. Any number of
//! copies may start at once: they queue on the migration lock and each migration is applied
//! exactly once.

use migration::engine::{Command, Engine, NoHooks, Options};
use migration::{App, Target};
use sea_orm::{ConnectOptions, Database};
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match migrate().await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate() -> Result<String, String> {
    let name = std::env::args()
        .nth(1)
        .ok_or("name the app: migrate_at_startup avatar|neurachar")?;
    let app = App::from_name(&name)
        .ok_or_else(|| format!("unknown app {name:?}: use avatar or neurachar"))?;
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "DATABASE_URL is not set: export the database URL first")?;

    // An application's usual pool; the engine takes a connection of its own for the lock.
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false);
    let db = Database::connect(opts)
        .await
        .map_err(|e| format!("connecting: {e}"))?;

    let engine = Engine::new(&db, Options::for_app(app))
        .await
        .map_err(|e| e.to_string())?;
    let report = engine
        .run(&Command::Upgrade(Target::Head), &mut NoHooks)
        .await
        .map_err(|e| e.to_string())?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(format!(
        "{}: {} applied, now at {}",
        app.name(),
        report.done.len(),
        report.to.unwrap_or("base")
    ))
}
