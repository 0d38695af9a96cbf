//! One module per subcommand: each turns its arguments into domain values, calls the engine
//! or a service, and hands a view to the output module. `connect_admin` is the one gate of
//! the administration commands.

pub mod characters;
pub mod chats;
pub mod check;
pub mod completions;
pub mod config;
pub mod docs;
pub mod downgrade;
pub mod fleet;
pub mod history;
pub mod lint;
pub mod log;
pub mod login_codes;
pub mod man;
pub mod migrate;
pub mod new;
pub mod repair;
pub mod settings;
pub mod sql;
pub mod stamp;
pub mod status;
pub mod upgrade;
pub mod users;

use crate::args::Command;
use crate::context::Access;
use crate::exit::{coded, Exit};
use crate::Ctx;
use anyhow::Result;
use migration::engine::{describe, short_name};
use migration::App;
use sea_orm::DatabaseConnection;

pub async fn dispatch(ctx: &Ctx, command: Command) -> Result<Exit> {
    match command {
        Command::Upgrade(a) => upgrade::run(ctx, a).await,
        Command::Downgrade(a) => downgrade::run(ctx, a).await,
        Command::Status(a) => status::run(ctx, a).await,
        Command::History(a) => history::run(ctx, a).await,
        Command::Stamp(a) => stamp::run(ctx, a).await,
        Command::Log(a) => log::run(ctx, a).await,
        Command::Repair(a) => repair::run(ctx, a).await,
        Command::Settings(a) => settings::run(ctx, a).await,
        Command::Users(a) => users::run(ctx, a).await,
        Command::LoginCodes(a) => login_codes::run(ctx, a).await,
        Command::Characters(a) => characters::run(ctx, a).await,
        Command::Chats(a) => chats::run(ctx, a).await,
        Command::Check(a) => check::run(ctx, a).await,
        Command::Docs(a) => docs::run(ctx, a).await,
        Command::Lint(a) => lint::run(ctx, a).await,
        Command::Fleet(a) => fleet::run(ctx, a).await,
        Command::Config(a) => config::run(ctx, a).await,
        Command::Completions(a) => completions::run(ctx, a).await,
        Command::Man(a) => man::run(ctx, a).await,
        Command::New(a) => new::run(ctx, a).await,
    }
}

/// An id argument: a UUID, said in words when it is not one (uuid's own message is
/// `invalid length: found 3`).
pub fn parse_uuid(s: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(s.trim()).map_err(|_| {
        format!(
            "'{s}' is not a UUID: an id is 32 hex digits, e.g. 0b7e3a52-8f0a-4c47-9a0e-5c8f1d2e3a4b"
        )
    })
}

/// `dbtool [--app X] <command>` as people should type it for the current app.
pub fn dbtool_cmd(ctx: &Ctx, command: &str) -> String {
    ctx.hint(command)
}

/// The error for a database that does not exist yet (an absent SQLite file), which read
/// commands never create.
pub fn missing_database(ctx: &Ctx, what: &str) -> anyhow::Error {
    coded(
        Exit::Connection,
        format!(
            "there is no database at {} ({what}), and nothing was created; create it with `{}`",
            ctx.loc.display,
            ctx.hint("upgrade")
        ),
    )
}

/// A connection for an administration command, opened only once the database is known to
/// belong to an app that has `table` and to be migrated far enough to have it; otherwise the
/// error says which command fixes that. A missing SQLite file is not created.
pub async fn connect_admin(ctx: &Ctx, access: Access, table: &str) -> Result<DatabaseConnection> {
    connect_admin_app(ctx, access, table)
        .await
        .map(|(db, _)| db)
}

/// [`connect_admin`], and the app the database belongs to (given, or recognised).
pub async fn connect_admin_app(
    ctx: &Ctx,
    access: Access,
    table: &str,
) -> Result<(DatabaseConnection, App)> {
    let db = match access {
        Access::Write => ctx.connect_write_existing("change").await?,
        Access::ReadOnly => ctx.connect_existing("read").await?,
    };
    let engine = ctx.engine(&db, ctx.engine_options()).await?;
    let status = match engine.status().await {
        Ok(s) => s,
        Err(e) => {
            // `--app` names the other app: the engine's advice (the same command with the
            // database's app) cannot work when that app has no such table at all.
            if ctx.app_given().is_some() {
                let mut opts = ctx.engine_options();
                opts.app = migration::engine::AppChoice::Recognise { default: ctx.app };
                if let Ok(found) = async {
                    ctx.engine(&db, opts)
                        .await?
                        .status()
                        .await
                        .map_err(|e| ctx.fail(e))
                }
                .await
                {
                    if !has_table(&found.overview.steps, table) {
                        return Err(no_such_table(ctx, found.app, table));
                    }
                }
            }
            return Err(ctx.fail(e));
        }
    };
    let app = status.app;
    let ov = &status.overview;
    let Some(i) = ov
        .steps
        .iter()
        .position(|s| s.creates_tables.contains(&table))
    else {
        return Err(no_such_table(ctx, app, table));
    };
    if ov.applied[i] {
        return Ok((db, app));
    }
    let step = ov.steps[i];
    let msg = if status.state.tables.contains(table) {
        format!(
            "table {table} exists but migration {} that creates it is not recorded; if the schema is complete, record it with `{}` (it is verified first; see `{}`)",
            describe(step),
            ctx.hint(&format!("stamp {}", short_name(step))),
            ctx.hint("status")
        )
    } else {
        format!(
            "the {app} database is not migrated far enough: table {table} comes with migration {}, which is not applied; run `{}` first",
            describe(step),
            ctx.hint("upgrade")
        )
    };
    Err(coded(Exit::Pending, msg))
}

fn has_table(steps: &[&'static migration::StepInfo], table: &str) -> bool {
    steps.iter().any(|s| s.creates_tables.contains(&table))
}

/// The database belongs to `app`, whose migrations create no `table` (settings on a
/// NeuraChar database): no `--app` can make the command work there.
fn no_such_table(ctx: &Ctx, app: App, table: &str) -> anyhow::Error {
    let owner = App::REAL
        .into_iter()
        .find(|a| a.steps().iter().any(|s| s.creates_tables.contains(&table)));
    coded(
        Exit::WrongApp,
        match owner {
            Some(owner) => format!(
                "this database belongs to {app}, which has no {table} table (that is {owner}'s): point at {owner}'s database, or see what this one holds with `{}`",
                ctx.hint_for(app, "status")
            ),
            None => format!("no {app} migration creates table {table}"),
        },
    )
}

/// [`connect_admin`] for a command that only `app` has (Avatar's passwords): a database of
/// the other app is refused even when it has a table of the same name.
pub async fn connect_admin_for(
    ctx: &Ctx,
    access: Access,
    table: &str,
    app: App,
) -> Result<DatabaseConnection> {
    let (db, found) = connect_admin_app(ctx, access, table).await?;
    if found != app {
        return Err(coded(
            Exit::WrongApp,
            format!(
                "this database belongs to {found}; the command is for {} databases: point at one, or see what this one holds with `{}`",
                app.title(),
                ctx.hint_for(found, "status")
            ),
        ));
    }
    Ok(db)
}

/// Refuses a command meant for `app` when another app was named explicitly.
pub fn require_app(ctx: &Ctx, app: App, what: &str) -> Result<()> {
    match ctx.app_given() {
        Some(given) if given != app => Err(coded(
            Exit::WrongApp,
            format!(
                "{what} is for {}: {given} has no such data; run it with --app {app} (or without --app on a {app} database)",
                app.title(),
            ),
        )),
        _ => Ok(()),
    }
}
