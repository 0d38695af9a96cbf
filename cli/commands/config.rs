//! `dbtool config`: placeholder wired in by the core; its owner replaces this file.

use crate::exit::{coded, Exit};
use crate::Ctx;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct ConfigArgs {}

pub async fn run(_ctx: &Ctx, _args: ConfigArgs) -> Result<Exit> {
    Err(coded(Exit::Failure, "not built yet"))
}
