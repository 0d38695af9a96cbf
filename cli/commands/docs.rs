//! `dbtool docs [--output FILE]`: Markdown documentation of the live schema and its
//! migration history, generated (read-only) so that it is never out of date.

use crate::exit::{coded, Exit};
use crate::service::docs::{markdown, DocInput};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::Args;
use migration::engine::schema;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool docs                              print the documentation of ./dbtool.db
  dbtool --app neurachar docs -o SCHEMA.md write it to a file (same database, same bytes)
  DATABASE_URL=postgres://app@db/avatar dbtool docs --output docs/schema.md")]
pub struct DocsArgs {
    /// Write the Markdown to FILE instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Serialize)]
struct DocsView {
    app: migration::App,
    database: String,
    tables: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    markdown: Option<String>,
}

pub async fn run(ctx: &Ctx, args: DocsArgs) -> Result<Exit> {
    let db = ctx.connect_existing("document").await?;
    let engine = ctx.engine(&db, ctx.engine_options()).await?;
    let status = engine.status().await.map_err(|e| ctx.fail(e))?;
    let live = schema::introspect(&db)
        .await
        .context("reading the live schema")?;
    let pg_schema = match ctx.loc.backend {
        DbBackend::Postgres => db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT current_schema()::text".to_owned(),
            ))
            .await?
            .map(|r| r.try_get_by_index::<String>(0))
            .transpose()?,
        _ => None,
    };
    db.close().await.ok();
    let app = status.app;
    let text = markdown(&DocInput {
        app,
        backend: ctx.loc.backend,
        database: &ctx.loc.display,
        pg_schema: pg_schema.as_deref(),
        schema: &live,
        overview: &status.overview,
        alembic: status.state.alembic.as_deref(),
    });
    // The URL is masked already; redact covers a password that shows up anywhere else.
    let text = crate::output::redact(&text);

    let mut view = DocsView {
        app,
        database: ctx.loc.display.clone(),
        tables: live.tables.len(),
        output: None,
        markdown: None,
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| {
                coded(
                    Exit::Usage,
                    format!(
                        "cannot write --output {}: {}; check that the directory exists and is writable",
                        path.display(),
                        crate::config::io_reason(&e)
                    ),
                )
            })?;
            view.output = Some(path.display().to_string());
            ctx.out.emit(&view, |o| {
                o.done(&format!(
                    "wrote {} ({}, {})",
                    path.display(),
                    crate::output::count(view.tables, "table", "tables"),
                    crate::output::count(text.len(), "byte", "bytes")
                ))
            });
        }
        None => {
            view.markdown = Some(text.clone());
            ctx.out.emit(&view, |o| o.raw(&text));
        }
    }
    Ok(Exit::Ok)
}
