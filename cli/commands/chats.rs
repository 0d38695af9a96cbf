//! `dbtool chats`: placeholder wired in by the core; its owner replaces this file.

use crate::exit::{coded, Exit};
use crate::Ctx;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct ChatsArgs {}

pub async fn run(_ctx: &Ctx, _args: ChatsArgs) -> Result<Exit> {
    Err(coded(Exit::Failure, "not built yet"))
}
