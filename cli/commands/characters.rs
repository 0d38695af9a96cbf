//! `dbtool characters`: list NeuraChar characters and move them in or out of the Market
//! (`is_public`).

use crate::commands::connect_admin;
use crate::context::Access;
use crate::exit::{coded, Exit};
use crate::output::{count, Column, Tone};
use crate::service::neurachar::{self as svc, CharacterRow};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use migration::App;
use serde::Serialize;
use uuid::Uuid;

const TABLE: &str = "characters";

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool --app neurachar characters list
  dbtool --app neurachar characters list --public --json
  dbtool --app neurachar characters publish 0b7e3f4c-6c1e-4a55-9a8e-2f0d6f1b9c11
  dbtool --app neurachar characters unpublish 0b7e3f4c-6c1e-4a55-9a8e-2f0d6f1b9c11

Exit code 8 when no character has the id.")]
pub struct CharactersArgs {
    #[command(subcommand)]
    pub command: CharactersCommand,
}

#[derive(Debug, Subcommand)]
pub enum CharactersCommand {
    /// Table of characters: id, name, public, creator, tags
    #[command(after_help = "\
Examples:
  dbtool --app neurachar characters list
  dbtool --app neurachar characters list --public")]
    List {
        /// Only the characters visible in the Market
        #[arg(long)]
        public: bool,
    },
    /// Make a character visible in the Market
    #[command(after_help = "\
Examples:
  dbtool --app neurachar characters publish 0b7e3f4c-6c1e-4a55-9a8e-2f0d6f1b9c11")]
    Publish {
        /// The character's id (UUID)
        #[arg(value_parser = crate::commands::parse_uuid)]
        id: Uuid,
    },
    /// Remove a character from the Market
    #[command(after_help = "\
Examples:
  dbtool --app neurachar characters unpublish 0b7e3f4c-6c1e-4a55-9a8e-2f0d6f1b9c11")]
    Unpublish {
        /// The character's id (UUID)
        #[arg(value_parser = crate::commands::parse_uuid)]
        id: Uuid,
    },
}

pub async fn run(ctx: &Ctx, args: CharactersArgs) -> Result<Exit> {
    if ctx.app_given().is_some_and(|a| a != App::Neurachar) {
        // The command line contradicts itself (no database is asked): a usage error.
        return Err(coded(
            Exit::Usage,
            format!(
                "`dbtool characters` is for NeuraChar: the {} schema has no characters; use --app neurachar",
                ctx.app
            ),
        ));
    }
    match args.command {
        CharactersCommand::List { public } => list(ctx, public).await,
        CharactersCommand::Publish { id } => set_public(ctx, id, true).await,
        CharactersCommand::Unpublish { id } => set_public(ctx, id, false).await,
    }
}

#[derive(Serialize)]
struct ListView {
    public_only: bool,
    characters: Vec<CharacterRow>,
}

async fn list(ctx: &Ctx, public_only: bool) -> Result<Exit> {
    let db = connect_admin(ctx, Access::ReadOnly, TABLE).await?;
    let characters = svc::list_characters(&db, public_only)
        .await
        .context("reading the characters")?;
    let view = ListView {
        public_only,
        characters,
    };
    ctx.out.emit(&view, |o| {
        let rows = view
            .characters
            .iter()
            .map(|c| {
                let creator = match (&c.creator_email, c.creator_id) {
                    (Some(e), _) => e.clone(),
                    (None, Some(id)) => id.to_string(),
                    (None, None) => "-".into(),
                };
                vec![
                    (c.id.to_string(), Tone::Plain),
                    (c.name.clone(), Tone::Plain),
                    if c.is_public {
                        ("yes".into(), Tone::Good)
                    } else {
                        ("no".into(), Tone::Plain)
                    },
                    (creator, Tone::Plain),
                    (c.tags.join(", "), Tone::Plain),
                ]
            })
            .collect();
        o.table(
            &[
                Column::id("id"),
                Column::text("name"),
                Column::id("public"),
                Column::id("creator"),
                Column::text("tags"),
            ],
            rows,
        );
        let what = if public_only {
            ("public character", "public characters")
        } else {
            ("character", "characters")
        };
        o.line(&count(view.characters.len(), what.0, what.1));
    });
    Ok(Exit::Ok)
}

async fn set_public(ctx: &Ctx, id: Uuid, public: bool) -> Result<Exit> {
    let db = connect_admin(ctx, Access::Write, TABLE).await?;
    let Some(p) = svc::set_public(&db, id, public)
        .await
        .context("saving the character")?
    else {
        return Err(coded(
            Exit::NotFound,
            format!("no character with id {id}; see `dbtool --app neurachar characters list`"),
        ));
    };
    ctx.out.emit(&p, |o| {
        let state = if public { "public" } else { "private" };
        o.done(&if !p.changed {
            format!(
                "character '{}' ({id}) is already {state}; nothing changed",
                p.name
            )
        } else if public {
            format!(
                "published character '{}' ({id}): it is visible in the Market",
                p.name
            )
        } else {
            format!(
                "unpublished character '{}' ({id}): it is no longer in the Market",
                p.name
            )
        })
    });
    Ok(Exit::Ok)
}
