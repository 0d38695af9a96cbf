//! `dbtool check`: does the live schema still look the way the applied migrations say, and
//! are the applied migrations still the code that ran? The expected schema is the stored
//! snapshot of what the applied migrations make (`migration/snapshots/`), so `check` only
//! reads the live database. Without a snapshot that fits (another server version, an
//! out-of-order history), it is built by applying the migrations to a scratch database on the
//! same server (dropped afterwards; SQLite: in memory), which needs the right to create
//! databases. Read-only on the checked database.

use crate::context::{self, Access, ConnectSettings, DbLocation};
use crate::exit::{coded, Exit};
use crate::output::{count, Column, Tone};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::Args;
use migration::engine::schema::{self, DiffKind, Difference, Schema};
use migration::engine::{snapshot, Checksum};
use sea_orm::{DatabaseConnection, DbBackend};
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool check                         compare ./dbtool.db with what its applied migrations create
  DATABASE_URL=postgres://app@db/avatar dbtool check
  dbtool --app neurachar check --json  the differences as one JSON document (exit 9 on drift)

The expected schema comes from the snapshots stored with the migrations, so no scratch
database and no CREATEDB right are needed. Only when no snapshot fits (another server
version, out-of-order history) is it built in a scratch database (dbtool_check_<pid>_<n>)
on the same server, dropped afterwards; the output says which was used.")]
pub struct CheckArgs {}

/// What `check` found: the result document.
#[derive(Serialize)]
pub struct CheckView {
    pub app: migration::App,
    pub database: String,
    pub clean: bool,
    /// Where the expected schema came from: "snapshot" or "scratch database".
    pub expected_from: &'static str,
    /// The migrations the expected schema was built from.
    pub applied: Vec<&'static str>,
    /// Objects the migrations create that are missing or different, and applied migrations
    /// whose code changed since.
    pub differences: Vec<Difference>,
    /// Objects in the database that the migrations do not create.
    pub extra: Vec<Difference>,
    /// How many tables the expected schema has (for the summary line).
    #[serde(skip)]
    pub expected_tables: usize,
}

pub async fn run(ctx: &Ctx, _args: CheckArgs) -> Result<Exit> {
    let view = inspect(ctx).await?;
    Ok(render(ctx, &view))
}

/// The check of the context's database, start to end (connect, compare, close); `check`
/// and every target of `fleet check` go through here.
pub async fn inspect(ctx: &Ctx) -> Result<CheckView> {
    let db = ctx.connect_existing("check").await?;
    let result = check(ctx, &db).await;
    db.close().await.ok();
    result
}

async fn check(ctx: &Ctx, db: &DatabaseConnection) -> Result<CheckView> {
    let engine = ctx.engine(db, ctx.engine_options()).await?;
    let status = engine.status().await.map_err(|e| ctx.fail(e))?;
    let app = status.app;
    let ov = &status.overview;
    if !ov.unknown.is_empty() {
        return Err(ctx.fail(migration::engine::Error::UnknownRecorded {
            versions: ov.unknown.iter().map(|r| r.version.clone()).collect(),
        }));
    }
    let applied: Vec<&'static str> = ov
        .steps
        .iter()
        .zip(&ov.applied)
        .filter(|(_, a)| **a)
        .map(|(s, _)| s.name)
        .collect();
    let actual = schema::introspect(db)
        .await
        .map_err(|e| ctx.fail(e.into()))?;
    let server = snapshot::server_kind(db)
        .await
        .map_err(|e| ctx.fail(e.into()))?;
    let stored = snapshot::stored(app, ctx.loc.backend)
        .filter(|s| s.fits(&server))
        .and_then(|s| s.at(&applied));
    let (expected, expected_from) = match stored {
        Some(s) => (s, "snapshot"),
        None => {
            ctx.out.info(&format!(
                "no stored snapshot fits ({server}, {} applied); building the expected schema in a scratch database",
                applied.len()
            ));
            (
                expected_schema(ctx, app, db, &applied.iter().copied().collect()).await?,
                "scratch database",
            )
        }
    };
    if let Some(exit) = ctx.interrupt.requested() {
        return Err(coded(exit, "interrupted; nothing was left behind"));
    }

    // The engine's advice names the bare command; here it repeats this run's flags.
    let upgrade = format!("`{}`", ctx.hint("upgrade"));
    let (extra, mut differences): (Vec<Difference>, Vec<Difference>) =
        schema::diff(&expected, &actual)
            .into_iter()
            .map(|mut d| {
                d.actual = d.actual.replace("`dbtool upgrade`", &upgrade);
                d
            })
            .partition(|d| d.kind == DiffKind::Extra);
    // The catalog only shows a user the tables it may use: a table that looks absent may be
    // one the user cannot read, which is no drift but a missing privilege.
    for name in expected
        .tables
        .keys()
        .filter(|t| !actual.tables.contains_key(*t))
    {
        hidden_by_privileges(ctx, db, name).await?;
    }
    if ctx.loc.backend == DbBackend::MySql {
        constraints_hidden_by_privileges(db, &differences).await?;
    }
    for (i, c) in status.checksums.iter().enumerate() {
        if let Some(Checksum::Mismatch {
            stored, current, ..
        }) = c
        {
            differences.push(Difference {
                object: format!("migration {}", ov.steps[i].name),
                expected: format!("checksum {}", &current[..12.min(current.len())]),
                actual: format!("recorded {}", &stored[..12.min(stored.len())]),
                kind: DiffKind::Altered,
            });
        }
    }
    if let Some((i, d)) = ov.half_done {
        differences.push(Difference {
            object: format!("migration {}", ov.steps[i].name),
            expected: "complete".into(),
            actual: format!("half-done ({})", d.as_str()),
            kind: DiffKind::Altered,
        });
    }
    let view = CheckView {
        app,
        database: ctx.loc.display.clone(),
        clean: differences.is_empty() && extra.is_empty(),
        expected_from,
        applied,
        differences,
        extra,
        expected_tables: expected.tables.len(),
    };
    Ok(view)
}

fn render(ctx: &Ctx, view: &CheckView) -> Exit {
    let app = view.app;
    ctx.out.emit(view, |o| {
        if view.clean {
            o.done(&format!(
                "{}: the schema matches the {} ({}); no drift",
                app,
                count(
                    view.applied.len(),
                    "applied migration",
                    "applied migrations"
                ),
                count(view.expected_tables, "table", "tables")
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
        let header = [
            Column::id("object"),
            Column::text("expected"),
            Column::text("actual"),
            Column::id("kind"),
        ];
        if !view.differences.is_empty() {
            o.line("Differences from the applied migrations:");
            o.table(&header, rows(&view.differences));
        }
        if !view.extra.is_empty() {
            o.line("Objects the migrations do not create:");
            o.table(&header, rows(&view.extra));
        }
        o.line(&format!(
            "{}: drift: {} from the migrations, {}",
            app,
            count(view.differences.len(), "difference", "differences"),
            count(view.extra.len(), "extra object", "extra objects")
        ));
    });
    if view.clean {
        Exit::Ok
    } else {
        Exit::Drift
    }
}

/// Fails with exit 22 when `table` exists but the user may not read it.
async fn hidden_by_privileges(ctx: &Ctx, db: &DatabaseConnection, table: &str) -> Result<()> {
    use sea_orm::{ConnectionTrait, Statement};
    let quoted = match ctx.loc.backend {
        DbBackend::MySql => format!("`{}`", table.replace('`', "``")),
        _ => migration::engine::quote_pg(table),
    };
    let probe = db
        .query_all_raw(Statement::from_string(
            ctx.loc.backend,
            format!("SELECT 1 FROM {quoted} LIMIT 0"),
        ))
        .await;
    match probe {
        Err(e) if crate::dberror::describe(&e).exit == Exit::PermissionDenied => Err(coded(
            Exit::PermissionDenied,
            format!(
                "cannot check table {table}: the database user may not read it ({}); check needs to read the schema: grant SELECT on the app's tables, or run it as a user that has it",
                crate::dberror::describe(&e).message
            ),
        )),
        _ => Ok(()),
    }
}

/// MariaDB lists a table's foreign keys and check constraints in `information_schema` only
/// to a user with some privilege on it beyond SELECT, so for a read-only user they all look
/// missing. `SHOW CREATE TABLE` shows them with SELECT alone: a constraint found missing but
/// there means a missing privilege, not drift.
async fn constraints_hidden_by_privileges(
    db: &DatabaseConnection,
    differences: &[Difference],
) -> Result<()> {
    use sea_orm::{ConnectionTrait, Statement};
    for d in differences.iter().filter(|d| d.kind == DiffKind::Missing) {
        let Some((table, name)) = d
            .object
            .strip_prefix("foreign key ")
            .or_else(|| d.object.strip_prefix("check "))
            .and_then(|o| o.split_once('.'))
        else {
            continue;
        };
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::MySql,
                format!("SHOW CREATE TABLE `{}`", table.replace('`', "``")),
            ))
            .await;
        let ddl: Option<String> = match row {
            Ok(Some(r)) => r.try_get_by_index(1).ok(),
            _ => None,
        };
        if ddl.is_some_and(|ddl| ddl.contains(&format!("CONSTRAINT `{name}`"))) {
            return Err(coded(
                Exit::PermissionDenied,
                format!(
                    "cannot check the constraints of table {table}: MariaDB shows foreign keys and check constraints to a user with SELECT only in SHOW CREATE TABLE, not in information_schema, where check reads them; grant one more privilege on the tables (GRANT REFERENCES ON <database>.* TO <user>), or run check as a user that has it"
                ),
            ));
        }
    }
    Ok(())
}

/// Builds the schema the applied migrations produce in a scratch database and reads it; the
/// scratch database is dropped again whatever happens (a first Ctrl-C waits for that).
async fn expected_schema(
    ctx: &Ctx,
    app: migration::App,
    db: &DatabaseConnection,
    applied: &BTreeSet<&str>,
) -> Result<Schema> {
    let _graceful = ctx.interrupt.graceful_section();
    if ctx.loc.backend == DbBackend::Sqlite {
        let scratch = crate::service::autogen::memory().await?;
        let r = schema::expected(app, applied, &scratch).await;
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
            lock_timeout: ctx.settings.lock_timeout,
            verbose: ctx.settings.verbose,
        };
        let scratch = context::connect(&loc, Access::Write, &settings, &ctx.out)
            .await?
            .context("no connection to the scratch database")?;
        let r = schema::expected(app, applied, &scratch).await;
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
