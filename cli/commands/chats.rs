//! `dbtool chats`: delete a NeuraChar chat; its messages go with it through the
//! `ON DELETE CASCADE` of `messages.chat_id`. Destructive, so it asks (or needs `--yes`).

use crate::commands::connect_admin;
use crate::context::Access;
use crate::exit::{coded, Exit};
use crate::output::human_time;
use crate::service::neurachar as svc;
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use migration::App;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool --app neurachar chats delete 5d0c2b8e-8f4a-4a8e-b1f6-0c7d2e9a4b33          asks first
  dbtool --app neurachar chats delete 5d0c2b8e-8f4a-4a8e-b1f6-0c7d2e9a4b33 --yes    in scripts

Exit codes: 8 when no chat has the id, 7 when the deletion is not confirmed.")]
pub struct ChatsArgs {
    #[command(subcommand)]
    pub command: ChatsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ChatsCommand {
    /// Delete a chat and (by the cascade) its messages; asks on a terminal, --yes otherwise
    #[command(after_help = "\
Examples:
  dbtool --app neurachar chats delete 5d0c2b8e-8f4a-4a8e-b1f6-0c7d2e9a4b33
  dbtool --app neurachar chats delete 5d0c2b8e-8f4a-4a8e-b1f6-0c7d2e9a4b33 --yes --json

Exit codes: 8 when no chat has the id, 7 when not confirmed (no terminal and no --yes,
or the question was answered no).")]
    Delete {
        /// The chat's id (chat_id, a UUID)
        #[arg(value_parser = crate::commands::parse_uuid)]
        id: Uuid,
        /// Delete without asking
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

pub async fn run(ctx: &Ctx, args: ChatsArgs) -> Result<Exit> {
    if ctx.app_given().is_some_and(|a| a != App::Neurachar) {
        // The command line contradicts itself (no database is asked): a usage error.
        return Err(coded(
            Exit::Usage,
            format!(
                "`dbtool chats` is for NeuraChar: the {} schema has no chats; use --app neurachar",
                ctx.app
            ),
        ));
    }
    match args.command {
        ChatsCommand::Delete { id, yes } => delete(ctx, id, yes).await,
    }
}

#[derive(Serialize)]
struct DeleteView {
    chat_id: Uuid,
    /// Every message that went with the chat.
    messages_deleted: u64,
    #[serde(flatten)]
    detail: svc::ChatDeleted,
}

fn not_found(id: Uuid) -> anyhow::Error {
    coded(Exit::NotFound, format!("no chat with id {id}"))
}

async fn delete(ctx: &Ctx, id: Uuid, yes: bool) -> Result<Exit> {
    let db = connect_admin(ctx, Access::Write, "messages").await?;
    let Some(chat) = svc::chat_info(&db, id).await.context("reading the chat")? else {
        return Err(not_found(id));
    };
    if !yes {
        let what = format!(
            "chat {id} of {} with {} ({}, started {})",
            chat.user_email.as_deref().unwrap_or("an unknown user"),
            chat.character_name
                .as_deref()
                .unwrap_or("an unknown character"),
            crate::output::count(chat.messages, "message", "messages"),
            human_time(&chat.created_at)
        );
        if !crate::prompt::interactive() {
            return Err(coded(
                Exit::NotConfirmed,
                format!("deleting {what} needs confirmation and there is no terminal to ask on: pass --yes; nothing was deleted"),
            ));
        }
        if !crate::prompt::confirm(&format!("delete {what}?")).await? {
            return Err(coded(
                Exit::NotConfirmed,
                "not confirmed; nothing was deleted",
            ));
        }
    }
    let Some(done) = svc::delete_chat(&db, id)
        .await
        .context("deleting the chat")?
    else {
        return Err(not_found(id));
    };
    let view = DeleteView {
        chat_id: id,
        messages_deleted: done.messages_cascaded + done.messages_deleted_explicitly,
        detail: done,
    };
    if done.messages_deleted_explicitly > 0 {
        ctx.out.warn(&format!(
            "the ON DELETE CASCADE was not in force (SQLite foreign_keys off?): deleted {} of the chat explicitly",
            crate::output::count(done.messages_deleted_explicitly, "message", "messages")
        ));
    }
    ctx.out.emit(&view, |o| {
        o.done(&format!(
            "deleted chat {id} and its {} ({} through the ON DELETE CASCADE)",
            crate::output::count(view.messages_deleted, "message", "messages"),
            done.messages_cascaded
        ))
    });
    Ok(Exit::Ok)
}
