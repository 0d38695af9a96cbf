//! `dbtool man`: the man page (roff), generated from the clap definitions at run time so
//! that it always describes the installed binary.

use crate::exit::Exit;
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool man | man -l -                                  read it now
  dbtool man > ~/.local/share/man/man1/dbtool.1          install the main page
  dbtool man --out-dir ~/.local/share/man/man1           install it with one page per subcommand")]
pub struct ManArgs {
    /// Write dbtool.1 and a page per subcommand (dbtool-upgrade.1, ...) into DIR instead of
    /// printing dbtool.1
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct WrittenView {
    directory: String,
    pages: Vec<String>,
}

#[derive(Serialize)]
struct PageView {
    page: String,
}

pub async fn run(ctx: &Ctx, args: ManArgs) -> Result<Exit> {
    let cmd = crate::args::command();
    let Some(dir) = args.out_dir else {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .context("rendering the man page")?;
        let view = PageView {
            page: String::from_utf8_lossy(&buf).into_owned(),
        };
        ctx.out.emit(&view, |o| o.raw(&view.page));
        return Ok(Exit::Ok);
    };
    if !dir.is_dir() {
        return Err(crate::exit::coded(
            Exit::Usage,
            format!(
                "--out-dir {}: not a directory; create it first (mkdir -p {})",
                dir.display(),
                dir.display()
            ),
        ));
    }
    clap_mangen::generate_to(cmd, &dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dbtool") && n.ends_with(".1"))
        .collect();
    pages.sort();
    let view = WrittenView {
        directory: dir.display().to_string(),
        pages,
    };
    ctx.out.emit(&view, |o| {
        o.done(&format!(
            "wrote {} into {}",
            crate::output::count(view.pages.len(), "man page", "man pages"),
            view.directory
        ))
    });
    Ok(Exit::Ok)
}
