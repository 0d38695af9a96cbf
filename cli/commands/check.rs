//! `dbtool check`: does the live schema still look the way the applied migrations say?
//! The expected schema is built by applying the same migrations to a scratch database of the
//! same backend (a new database on the same server, dropped afterwards; SQLite in memory),
//! and both are read the same way (`service::schema`). Read-only on the checked database.

use crate::commands::migrate_error;
use crate::context::{self, Access, ConnectSettings, DbLocation};
use crate::exit::{coded, Exit};
use crate::output::Tone;
use crate::service::migrations::{read_state, Overview};
use crate::service::schema::{self, DiffKind, Difference, Schema};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::Args;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool check                         compare ./dbtool.db with what its applied migrations create
  DATABASE_URL=postgres://app@db/avatar dbtool check
  dbtool --app neurachar check --json  the differences as one JSON document (exit 9 on drift)

PostgreSQL and MySQL/MariaDB: the expected schema is built in a scratch database
(dbtool_check_<pid>_<n>) on the same server, so the user needs the right to create
databases; it is dropped afterwards.")]
pub struct CheckArgs {}

#[derive(Serialize)]
struct CheckView {
    app: crate::app::App,
    database: String,
    clean: bool,
    /// The migrations the expected schema was built from.
    applied: Vec<&'static str>,
    /// Objects the migrations create that are missing or different.
    differences: Vec<Difference>,
    /// Objects in the database that the migrations do not create.
    extra: Vec<Difference>,
}

pub async fn run(ctx: &Ctx, _args: CheckArgs) -> Result<Exit> {
    let Some(db) = ctx.connect_read().await? else {
        return Err(coded(
            Exit::Connection,
            format!(
                "database {} does not exist, so there is nothing to check; create it with `dbtool upgrade`",
                ctx.loc.display
            ),
        ));
    };
    let result = check(ctx, &db).await;
    db.close().await.ok();
    result
}

async fn check(ctx: &Ctx, db: &DatabaseConnection) -> Result<Exit> {
    let state = read_state(db)
        .await
        .context("reading the migration state")?;
    let overview = Overview::new(ctx.app, &state);
    overview.check_writable().map_err(migrate_error)?;
    let applied: Vec<&'static str> = overview
        .steps
        .iter()
        .zip(&overview.applied)
        .filter(|(_, a)| **a)
        .map(|(s, _)| s.name)
        .collect();
    let actual = schema::introspect(db)
        .await
        .context("reading the live schema")?;
    let expected = expected_schema(ctx, db, &applied.iter().copied().collect()).await?;
    if let Some(exit) = ctx.interrupt.requested() {
        return Err(coded(exit, "interrupted; the scratch database was dropped"));
    }

    let (extra, differences): (Vec<Difference>, Vec<Difference>) = schema::diff(&expected, &actual)
        .into_iter()
        .partition(|d| d.kind == DiffKind::Extra);
    let view = CheckView {
        app: ctx.app,
        database: ctx.loc.display.clone(),
        clean: differences.is_empty() && extra.is_empty(),
        applied,
        differences,
        extra,
    };
    ctx.out.emit(&view, |o| {
        if view.clean {
            o.line(&format!(
                "{}: the schema matches the {} applied migration(s) ({} table(s)); no drift",
                ctx.app,
                view.applied.len(),
                expected.tables.len()
            ));
            return;
        }
        let rows = |ds: &[Difference]| {
            ds.iter()
                .map(|d| {
                    let tone = match d.kind {
                        DiffKind::Missing => Tone::Bad,
                        DiffKind::Altered => Tone::Warn,
                        DiffKind::Extra => Tone::Plain,
                        DiffKind::Invalid => Tone::Bad,
                    };
                    vec![
                        (d.object.clone(), Tone::Plain),
                        (d.expected.clone(), Tone::Plain),
                        (d.actual.clone(), Tone::Plain),
                        (d.kind.as_str().to_owned(), tone),
                    ]
                })
                .collect()
        };
        let header = ["object", "expected", "actual", "kind"];
        if !view.differences.is_empty() {
            o.line("Differences from the applied migrations:");
            o.table(&header, rows(&view.differences));
        }
        if !view.extra.is_empty() {
            o.line("Objects the migrations do not create:");
            o.table(&header, rows(&view.extra));
        }
        o.line(&format!(
            "{}: drift: {} difference(s) from the migrations, {} extra object(s)",
            ctx.app,
            view.differences.len(),
            view.extra.len()
        ));
    });
    Ok(if view.clean { Exit::Ok } else { Exit::Drift })
}

/// Builds the schema the applied migrations produce in a scratch database and reads it; the
/// scratch database is dropped again whatever happens (a first Ctrl-C waits for that).
async fn expected_schema(
    ctx: &Ctx,
    db: &DatabaseConnection,
    applied: &BTreeSet<&str>,
) -> Result<Schema> {
    let _graceful = ctx.interrupt.graceful_section();
    if ctx.loc.backend == DbBackend::Sqlite {
        let mut opt = ConnectOptions::new("sqlite::memory:");
        // One connection: every in-memory connection is a database of its own.
        opt.max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let scratch = Database::connect(opt)
            .await
            .context("opening the in-memory scratch database")?;
        let r = schema::expected(ctx.app, applied, &scratch).await;
        scratch.close().await.ok();
        return r.context("building the expected schema");
    }

    // A standby cannot create the scratch database: say so in one line instead of failing on
    // CREATE DATABASE (until check compares with a stored snapshot instead).
    if ctx.loc.backend == DbBackend::Postgres && schema::in_recovery(db).await? {
        return Err(coded(
            Exit::ReadOnly,
            format!(
                "check cannot run on {}, a read-only standby: it builds the expected schema in a scratch database on the same server; point at the primary",
                ctx.loc.display
            ),
        ));
    }
    // With --schema every statement on `db` runs in a transaction of its own (SET LOCAL
    // search_path, see `postgres::options`), where CREATE DATABASE cannot: create and drop
    // the scratch database on a connection without it.
    let plain = match (&ctx.settings.schema, ctx.loc.backend) {
        (Some(_), DbBackend::Postgres) => {
            let settings = ConnectSettings {
                schema: None,
                ..ctx.settings.clone()
            };
            context::connect(&ctx.loc, Access::ReadOnly, &settings, &ctx.out).await?
        }
        _ => None,
    };
    let db = plain.as_ref().unwrap_or(db);
    let name = schema::scratch_name();
    schema::create_scratch(db, &name).await.with_context(|| {
        format!(
            "cannot create the scratch database {name} for the expected schema (does the user have the right to create databases?)"
        )
    })?;
    let r = async {
        let url = schema::scratch_url(ctx.loc.secret_url(), &name)
            .context("building the scratch database's URL")?;
        let loc = DbLocation::parse(Some(&url))?;
        let settings = ConnectSettings {
            schema: None,
            wait: None,
            verbose: ctx.settings.verbose,
        };
        let scratch = context::connect(&loc, Access::Write, &settings, &ctx.out)
            .await?
            .context("no connection to the scratch database")?;
        let r = schema::expected(ctx.app, applied, &scratch).await;
        scratch.close().await.ok();
        r.context("building the expected schema")
    }
    .await;
    let dropped = schema::drop_scratch(db, &name).await;
    match (r, dropped) {
        (r, Ok(())) => r,
        (Ok(_), Err(e)) => {
            Err(e).with_context(|| format!("dropping the scratch database {name}; drop it by hand"))
        }
        (Err(e), Err(d)) => {
            ctx.out.warn(&format!(
                "could not drop the scratch database {name}: {d}; drop it by hand"
            ));
            Err(e)
        }
    }
}
