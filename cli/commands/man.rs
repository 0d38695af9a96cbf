//! `dbtool man`: the man page (roff), generated from the clap definitions at run time so
//! that it always describes the installed binary. clap_mangen renders the synopsis,
//! options and subcommands; the examples keep their layout (no-fill blocks), and the main
//! page adds ENVIRONMENT, FILES and EXIT STATUS.

use crate::exit::Exit;
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::Args;
use clap_mangen::roff::{bold, roman, Roff};
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
    // Built, so that subcommands know their full names (dbtool-upgrade); no `help` page.
    let mut cmd = crate::args::command().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = args.out_dir else {
        let view = PageView {
            page: page(&cmd, true).context("rendering the man page")?,
        };
        ctx.out.emit(&view, |o| o.raw(&view.page));
        return Ok(Exit::Ok);
    };
    if !dir.is_dir() {
        // `mkdir -p` only helps when nothing is there; over an existing file it fails.
        let message = if dir.exists() {
            format!(
                "--out-dir {}: is a file, not a directory; give a directory (or move the file away)",
                dir.display()
            )
        } else {
            format!(
                "--out-dir {}: no such directory; create it first (mkdir -p {})",
                dir.display(),
                dir.display()
            )
        };
        return Err(crate::exit::coded(Exit::Usage, message));
    }
    let mut pages = Vec::new();
    write_pages(&cmd, true, &dir, &mut pages)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
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

/// `dbtool.1`, `dbtool-upgrade.1`, `dbtool-settings-get.1`, ...
fn write_pages(
    cmd: &clap::Command,
    root: bool,
    dir: &std::path::Path,
    written: &mut Vec<String>,
) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, false, dir, written)?;
    }
    let name = format!("{}.1", cmd.get_display_name().unwrap_or(cmd.get_name()));
    std::fs::write(dir.join(&name), page(cmd, root)?)?;
    written.push(name);
    Ok(())
}

/// One page: clap_mangen's sections without its reflowed "EXTRA" text, then EXAMPLES as
/// written in `--help`, and on the main page ENVIRONMENT, FILES and EXIT STATUS.
fn page(cmd: &clap::Command, root: bool) -> Result<String> {
    use clap::builder::Resettable;
    let after = cmd.get_after_help().map(|s| s.to_string());
    let bare = cmd
        .clone()
        .after_help(Resettable::Reset)
        .after_long_help(Resettable::Reset);
    let mut buf = Vec::new();
    clap_mangen::Man::new(bare).render(&mut buf)?;
    let page = String::from_utf8(buf).context("the man page is not UTF-8")?;

    let mut extra = Roff::new();
    if let Some(text) = after {
        examples(&mut extra, &text);
    }
    if root {
        environment(&mut extra, cmd);
        files(&mut extra);
        exit_status(&mut extra);
    } else {
        extra.control("SH", ["SEE ALSO"]);
        extra.text([bold("dbtool"), roman("(1)")]);
    }
    // Roff::render starts with the apostrophe preamble the page already has.
    let extra = extra.render();
    let extra = extra
        .lines()
        .skip_while(|l| l.starts_with(".ie ") || l.starts_with(".el "))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    Ok(match page.find("\n.SH VERSION\n") {
        Some(at) => format!("{}\n{extra}{}", &page[..at], &page[at + 1..]),
        None => format!("{page}{extra}"),
    })
}

/// The `after_help` text in a no-fill block, so that columns of examples stay aligned.
fn examples(roff: &mut Roff, text: &str) {
    let body = text.strip_prefix("Examples:\n").unwrap_or(text);
    roff.control("SH", ["EXAMPLES"]);
    roff.control("nf", []);
    for line in body.trim_end().lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
}

fn item(roff: &mut Roff, term: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(term)]);
    roff.text([roman(text)]);
}

fn environment(roff: &mut Roff, cmd: &clap::Command) {
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Each variable can also be set in ./.env; a flag wins over the environment, which wins over .env and dbtool.toml.",
    )]);
    for arg in cmd.get_arguments() {
        let Some(var) = arg.get_env() else { continue };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let flag = arg
            .get_long()
            .map(|l| format!(" (as --{l})"))
            .unwrap_or_default();
        item(roff, &var.to_string_lossy(), &format!("{help}{flag}"));
    }
    for (var, text) in [
        (
            "NO_COLOR",
            "when set and not empty, no colour, even on a terminal",
        ),
        ("TERM", "dumb: no colour"),
        (
            "VISUAL, EDITOR",
            "the editor of settings edit (VISUAL first, then EDITOR, then vi)",
        ),
        (
            "COMPLETE",
            "set by the completion scripts of dbtool completions when the shell asks for candidates",
        ),
    ] {
        item(roff, var, text);
    }
}

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    for (file, text) in [
        (
            "./dbtool.toml",
            "defaults for the global options (database_url, app, schema, lock_timeout, wait, wait_timeout); another file with --config or DBTOOL_CONFIG",
        ),
        (
            "./.env",
            "environment variables read as sqlx-cli and dbmate read them; only dbtool's own are used",
        ),
        (
            "./dbtool.db",
            "the SQLite database used when no database URL is configured",
        ),
    ] {
        item(roff, file, text);
    }
}

fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (exit, what) in Exit::TABLE {
        item(roff, &exit.code().to_string(), what);
    }
    item(
        roff,
        "134",
        "internal error: a bug in dbtool, reported in one line (101 in debug builds); please report it",
    );
    roff.text([roman(
        "When several conditions hold, a signal (130, 143) wins, then an internal error (134), then the error that stopped the command.",
    )]);
}
