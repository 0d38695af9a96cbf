//! `dbtool settings`: the Avatar settings (chiefly the bio prompts) from a shell, the
//! equivalent of the application's `Settings.get_value` / `Settings.set_value`. Values are
//! text kept byte for byte; `get` adds nothing except one newline on a terminal.

use crate::commands::completions;
use crate::commands::connect_admin;
use crate::context::Access;
use crate::exit::{coded, Exit};
use crate::output::{count, human_time, Column, Tone};
use crate::service::settings::{self as svc, Change, ImportSet, Key, SetOutcome, Setting};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use clap_complete::ArgValueCandidates;
use migration::App;
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

const TABLE: &str = "settings";

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool settings list                                  keys, a preview of each value, last update
  dbtool settings get bio_prompt_x                      the value exactly as stored
  prompt=\"$(dbtool settings get bio_prompt_x)\"          use it in a script
  dbtool settings set bio_prompt_x --file prompt.txt    set it from a file
  dbtool settings edit bio_prompt_tiktok                edit it in $VISUAL / $EDITOR
  dbtool settings export > settings.json                back up every setting as JSON
  dbtool settings import settings.json --dry-run        show what an import would change

Exit codes: 8 when the key does not exist (get without --default, unset, edit),
7 when `unset` is not confirmed.")]
pub struct SettingsArgs {
    #[command(subcommand)]
    pub command: SettingsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Print a setting's value exactly as stored (one newline added on a terminal only)
    #[command(after_help = "\
Examples:
  dbtool settings get bio_prompt_x
  dbtool settings get missing_key --default 'fallback text'
  dbtool settings get bio_prompt_x > prompt.txt      the file holds exactly the stored bytes

Exit code 8 when the key does not exist and no --default is given.")]
    Get {
        /// The setting's key
        #[arg(add = ArgValueCandidates::new(completions::setting_keys))]
        key: Key,
        /// Print this instead of failing when the key does not exist
        #[arg(long, value_name = "VALUE", allow_hyphen_values = true)]
        default: Option<String>,
    },
    /// Create or update a setting (from an argument, --file, or - for standard input)
    #[command(after_help = "\
Examples:
  dbtool settings set bio_prompt_x 'Write a short bio...'
  dbtool settings set bio_prompt_x --file prompt.txt
  printf '%s' \"$text\" | dbtool settings set bio_prompt_x -
  dbtool settings get bio_prompt_x | dbtool settings set bio_prompt_x_backup -

The value is stored byte for byte: a trailing newline in the file or on standard input
is kept (use printf rather than echo to avoid one).")]
    Set(SetArgs),
    /// Table of keys, a one-line preview of each value, and the last update (--json: full values)
    #[command(after_help = "\
Examples:
  dbtool settings list
  dbtool settings list --json | jq -r '.settings[].key'")]
    List,
    /// Delete a setting (asks on a terminal; --yes otherwise)
    #[command(after_help = "\
Examples:
  dbtool settings unset old_prompt           asks for confirmation on a terminal
  dbtool settings unset old_prompt --yes     in scripts

Exit code 8 when the key does not exist, 7 when not confirmed.")]
    Unset {
        /// The setting's key
        #[arg(add = ArgValueCandidates::new(completions::setting_keys))]
        key: Key,
        /// Delete without asking
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Edit a setting in $VISUAL or $EDITOR; saves only if the text changed
    #[command(after_help = "\
Examples:
  dbtool settings edit bio_prompt_instagram
  EDITOR='code --wait' dbtool settings edit bio_prompt_x

$VISUAL is used when set, then $EDITOR (split on whitespace for arguments), then vi on a
terminal. When the stored value does not end with a newline, the one newline most editors
add at the end of the file is dropped. If the setting changed in the database while you
were editing, nothing is saved and your text is kept in the temporary file.")]
    Edit {
        /// The setting's key
        #[arg(add = ArgValueCandidates::new(completions::setting_keys))]
        key: Key,
    },
    /// Print every setting as one JSON document, for backups and moving prompts
    #[command(after_help = "\
Examples:
  dbtool settings export > settings.json
  DATABASE_URL=postgres://staging/avatar dbtool settings export | dbtool settings import -

Format: {\"settings\": [{\"key\", \"value\", \"created_at\", \"updated_at\"}, ...]}, times RFC 3339 UTC.")]
    Export,
    /// Create or update settings from an export document (FILE, or - for standard input)
    #[command(after_help = "\
Examples:
  dbtool settings import settings.json --dry-run     what would be created, updated, unchanged
  dbtool settings import settings.json
  dbtool settings export | DATABASE_URL=sqlite://copy.db dbtool settings import -

All in one transaction. Keys absent from the file are left alone. A created row takes
created_at and updated_at from the file, an updated one its updated_at (now when the file
has none); a key whose value is already the same is not touched.")]
    Import {
        /// The export document, or - for standard input
        file: PathBuf,
        /// Show what would change and change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The setting's key
    #[arg(add = ArgValueCandidates::new(completions::setting_keys))]
    pub key: Key,
    /// The value; - reads it from standard input
    #[arg(allow_hyphen_values = true, required_unless_present = "file")]
    pub value: Option<String>,
    /// Read the value from this file (UTF-8 text)
    #[arg(long, value_name = "PATH", conflicts_with = "value")]
    pub file: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: SettingsArgs) -> Result<Exit> {
    if ctx.app != App::Avatar {
        return Err(coded(
            Exit::Usage,
            format!(
                "{} has no settings: `dbtool settings` manages the Avatar bio prompts (run it without --app {}, or with --app avatar)",
                if ctx.app == App::Neurachar { "NeuraChar" } else { ctx.app.name() },
                ctx.app
            ),
        ));
    }
    match args.command {
        SettingsCommand::Get { key, default } => get(ctx, key, default).await,
        SettingsCommand::Set(a) => set(ctx, a).await,
        SettingsCommand::List => list(ctx).await,
        SettingsCommand::Unset { key, yes } => unset(ctx, key, yes).await,
        SettingsCommand::Edit { key } => edit(ctx, key).await,
        SettingsCommand::Export => export(ctx).await,
        SettingsCommand::Import { file, dry_run } => import(ctx, &file, dry_run).await,
    }
}

fn not_found(key: &Key) -> anyhow::Error {
    coded(
        Exit::NotFound,
        format!("no setting '{key}'; see `dbtool settings list`"),
    )
}

#[derive(Serialize)]
struct GetView<'a> {
    key: &'a str,
    value: &'a str,
    /// True when the key does not exist and --default was printed.
    default: bool,
}

async fn get(ctx: &Ctx, key: Key, default: Option<String>) -> Result<Exit> {
    let db = connect_admin(ctx, Access::ReadOnly, TABLE).await?;
    let found = svc::get(&db, &key).await.context("reading the setting")?;
    let (value, is_default) = match (found, default) {
        (Some(s), _) => (s.value, false),
        (None, Some(d)) => (d, true),
        (None, None) => return Err(not_found(&key)),
    };
    let view = GetView {
        key: key.as_str(),
        value: &value,
        default: is_default,
    };
    ctx.out.emit(&view, |o| {
        o.raw(&value);
        if o.stdout_tty {
            o.raw("\n");
        }
    });
    Ok(Exit::Ok)
}

/// Reads standard input to the end, as UTF-8 text.
async fn read_stdin_text(ctx: &Ctx) -> Result<String> {
    if crate::prompt::interactive() {
        ctx.out
            .info("reading the value from standard input; end it with Ctrl-D");
    }
    let bytes = tokio::task::spawn_blocking(|| {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).map(|_| b)
    })
    .await
    .context("reading standard input")?
    .context("reading standard input")?;
    String::from_utf8(bytes).map_err(|e| {
        coded(
            Exit::Usage,
            format!(
                "standard input is not UTF-8 text (invalid byte at offset {}); settings hold text",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Reads a file as UTF-8 text; the error names the file.
fn read_file_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| coded(Exit::Usage, format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        coded(
            Exit::Usage,
            format!(
                "{} is not UTF-8 text (invalid byte at offset {}); settings hold text",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[derive(Serialize)]
struct SetView<'a> {
    key: &'a str,
    change: Change,
    updated_at: chrono::DateTime<chrono::Utc>,
}

async fn set(ctx: &Ctx, a: SetArgs) -> Result<Exit> {
    let value = match (&a.value, &a.file) {
        (_, Some(path)) => read_file_text(path)?,
        (Some(v), None) if v == "-" => read_stdin_text(ctx).await?,
        (Some(v), None) => v.clone(),
        (None, None) => {
            return Err(coded(
                Exit::Usage,
                "give the value as an argument, with --file PATH, or - to read standard input",
            ))
        }
    };
    let db = connect_admin(ctx, Access::Write, TABLE).await?;
    let outcome = svc::set(&db, &a.key, &value)
        .await
        .with_context(|| format!("saving setting '{}'", a.key))?;
    let (change, s) = match outcome {
        SetOutcome::Done(change, s) => (change, s),
        SetOutcome::Collides(other) => {
            return Err(coded(
                Exit::Usage,
                format!(
                    "key '{}' collides with existing key '{other}': MySQL/MariaDB compare keys case-insensitively; use '{other}'",
                    a.key
                ),
            ))
        }
    };
    let view = SetView {
        key: a.key.as_str(),
        change,
        updated_at: s.updated_at,
    };
    ctx.out.emit(&view, |o| {
        let bytes = count(s.value.len(), "byte", "bytes");
        o.done(&match change {
            Change::Created => format!("created setting '{}' ({bytes})", a.key),
            Change::Updated => format!("updated setting '{}' ({bytes})", a.key),
            Change::Unchanged => format!("setting '{}' already has this value; unchanged", a.key),
        })
    });
    Ok(Exit::Ok)
}

/// One line of at most `max` characters standing for a whole value.
fn preview(value: &str, max: usize) -> String {
    let lines = value.lines().count();
    let flat: String = value
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ⏎ ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = flat.chars().take(max).collect();
    if flat.chars().count() > max {
        out.push('…');
    }
    if lines > 1 {
        out.push_str(&format!(" ({lines} lines)"));
    }
    out
}

async fn list(ctx: &Ctx) -> Result<Exit> {
    let db = connect_admin(ctx, Access::ReadOnly, TABLE).await?;
    let settings = svc::list(&db).await.context("reading the settings")?;
    let view = svc::Export { settings };
    ctx.out.emit(&view, |o| {
        let rows = view
            .settings
            .iter()
            .map(|s| {
                vec![
                    (s.key.clone(), Tone::Plain),
                    (preview(&s.value, 60), Tone::Plain),
                    (human_time(&s.updated_at), Tone::Plain),
                ]
            })
            .collect();
        o.table(
            &[
                Column::id("key"),
                Column::text("value"),
                Column::id("updated at"),
            ],
            rows,
        );
        o.line(&count(view.settings.len(), "setting", "settings"));
    });
    Ok(Exit::Ok)
}

#[derive(Serialize)]
struct UnsetView<'a> {
    key: &'a str,
    deleted: bool,
}

async fn unset(ctx: &Ctx, key: Key, yes: bool) -> Result<Exit> {
    let db = connect_admin(ctx, Access::Write, TABLE).await?;
    let Some(current) = svc::get(&db, &key).await.context("reading the setting")? else {
        return Err(not_found(&key));
    };
    if !yes {
        confirm(
            &format!(
                "delete setting '{key}' ({} bytes, updated {})?",
                current.value.len(),
                human_time(&current.updated_at)
            ),
            &format!("deleting setting '{key}'"),
        )
        .await?;
    }
    if !svc::unset(&db, &key)
        .await
        .context("deleting the setting")?
    {
        return Err(not_found(&key));
    }
    let view = UnsetView {
        key: key.as_str(),
        deleted: true,
    };
    ctx.out
        .emit(&view, |o| o.done(&format!("deleted setting '{key}'")));
    Ok(Exit::Ok)
}

/// Asks on a terminal; without one, refuses (the caller passes --yes in scripts).
async fn confirm(question: &str, action: &str) -> Result<()> {
    if !crate::prompt::interactive() {
        return Err(coded(
            Exit::NotConfirmed,
            format!("{action} needs confirmation and there is no terminal to ask on: pass --yes; nothing was changed"),
        ));
    }
    if crate::prompt::confirm(question).await? {
        Ok(())
    } else {
        Err(coded(
            Exit::NotConfirmed,
            "not confirmed; nothing was changed",
        ))
    }
}

#[derive(Serialize)]
struct EditView<'a> {
    key: &'a str,
    change: Change,
}

/// The editor command: $VISUAL, then $EDITOR, then vi when a person is at a terminal.
fn editor_command() -> Result<(String, Vec<String>, &'static str)> {
    for var in ["VISUAL", "EDITOR"] {
        if let Ok(v) = std::env::var(var) {
            let mut words = v.split_whitespace().map(str::to_owned);
            if let Some(prog) = words.next() {
                return Ok((prog, words.collect(), var));
            }
        }
    }
    if crate::prompt::interactive() {
        return Ok(("vi".into(), Vec::new(), "default"));
    }
    Err(coded(
        Exit::Usage,
        "no editor: set $VISUAL or $EDITOR (e.g. EDITOR=nano), or use `dbtool settings set KEY --file PATH`",
    ))
}

/// A private temporary file holding `text`, removed on drop unless kept.
struct TempText {
    path: PathBuf,
    keep: bool,
}

impl TempText {
    fn create(key: &Key, text: &str) -> Result<TempText> {
        use std::io::Write;
        let safe: String = key
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("dbtool-{safe}-{}-{nanos}.txt", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&path)
            .with_context(|| format!("creating the temporary file {}", path.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing the temporary file {}", path.display()))?;
        Ok(TempText { path, keep: false })
    }
}

impl Drop for TempText {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Drops the one newline an editor appends when the original value had none.
fn strip_editor_newline<'a>(original: &str, edited: &'a str) -> &'a str {
    if original.ends_with('\n') {
        return edited;
    }
    edited
        .strip_suffix("\r\n")
        .or_else(|| edited.strip_suffix('\n'))
        .unwrap_or(edited)
}

async fn edit(ctx: &Ctx, key: Key) -> Result<Exit> {
    let (prog, editor_args, source) = editor_command()?;
    let db = connect_admin(ctx, Access::Write, TABLE).await?;
    let Some(current) = svc::get(&db, &key).await.context("reading the setting")? else {
        return Err(coded(
            Exit::NotFound,
            format!(
                "no setting '{key}' to edit; create it with `dbtool settings set {key} --file PATH` (see `dbtool settings list`)"
            ),
        ));
    };
    // No connection stays open while a person edits (servers drop idle ones).
    db.close().await.ok();
    let mut tmp = TempText::create(&key, &current.value)?;
    let path = tmp.path.clone();
    let status = {
        let (prog, path) = (prog.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(&prog)
                .args(&editor_args)
                .arg(&path)
                .status()
        })
        .await
        .context("waiting for the editor")?
    }
    .map_err(|e| {
        coded(
            Exit::Failure,
            format!("cannot run the editor '{prog}' (from ${source}): {e}"),
        )
    })?;
    if !status.success() {
        return Err(coded(
            Exit::Failure,
            format!("the editor '{prog}' exited with {status}; nothing was saved"),
        ));
    }
    let edited = read_file_text(&path)?;
    let edited = strip_editor_newline(&current.value, &edited);
    let change = if edited == current.value {
        Change::Unchanged
    } else {
        let saved = async {
            let db = connect_admin(ctx, Access::Write, TABLE).await?;
            svc::replace_if_unchanged(&db, &key, &current.value, edited)
                .await
                .context("saving the setting")
        }
        .await;
        match saved {
            Ok(true) => Change::Updated,
            Ok(false) => {
                tmp.keep = true;
                return Err(coded(
                    Exit::Failure,
                    format!(
                        "setting '{key}' changed in the database while you were editing; nothing was saved; your text is in {}",
                        path.display()
                    ),
                ));
            }
            Err(e) => {
                tmp.keep = true;
                return Err(e.context(format!(
                    "nothing was saved; your text is in {}",
                    path.display()
                )));
            }
        }
    };
    let view = EditView {
        key: key.as_str(),
        change,
    };
    ctx.out.emit(&view, |o| {
        o.done(&match change {
            Change::Updated => format!(
                "updated setting '{key}' ({})",
                count(edited.len(), "byte", "bytes")
            ),
            _ => format!("setting '{key}' not changed; nothing saved"),
        })
    });
    Ok(Exit::Ok)
}

async fn export(ctx: &Ctx) -> Result<Exit> {
    let db = connect_admin(ctx, Access::ReadOnly, TABLE).await?;
    let settings: Vec<Setting> = svc::list(&db).await.context("reading the settings")?;
    // The export is JSON with or without --json: it is the backup format.
    ctx.out.json(&svc::Export { settings });
    Ok(Exit::Ok)
}

#[derive(Serialize)]
struct ImportView {
    dry_run: bool,
    created: usize,
    updated: usize,
    unchanged: usize,
    changes: Vec<svc::ImportChange>,
}

async fn import(ctx: &Ctx, file: &Path, dry_run: bool) -> Result<Exit> {
    let (text, name) = if file == Path::new("-") {
        (read_stdin_text(ctx).await?, "standard input".to_owned())
    } else {
        (read_file_text(file)?, file.display().to_string())
    };
    let set = ImportSet::parse(&text).map_err(|m| coded(Exit::Usage, format!("{name}: {m}")))?;
    let db = connect_admin(ctx, Access::Write, TABLE).await?;
    let changes = svc::import(&db, &set, dry_run)
        .await
        .context("importing the settings")?
        .map_err(|m| coded(Exit::Usage, format!("{name}: {m}; nothing was changed")))?;
    let count = |c: Change| changes.iter().filter(|x| x.change == c).count();
    let view = ImportView {
        dry_run,
        created: count(Change::Created),
        updated: count(Change::Updated),
        unchanged: count(Change::Unchanged),
        changes,
    };
    ctx.out.emit(&view, |o| {
        let rows = view
            .changes
            .iter()
            .map(|c| {
                let tone = match c.change {
                    Change::Created => Tone::Good,
                    Change::Updated => Tone::Warn,
                    Change::Unchanged => Tone::Plain,
                };
                let verb = match (dry_run, c.change) {
                    (true, Change::Created) => "would create",
                    (true, Change::Updated) => "would update",
                    (_, other) => other.as_str(),
                };
                vec![(c.key.clone(), Tone::Plain), (verb.to_owned(), tone)]
            })
            .collect();
        // The dry run's table is its result; after a real import it confirms what was done.
        let say = |s: &str| if dry_run { o.line(s) } else { o.done(s) };
        if dry_run || !o.quiet {
            o.table(&[Column::id("key"), Column::id("change")], rows);
        }
        say(&format!(
            "{}{} created, {} updated, {} unchanged{}",
            if dry_run { "would be: " } else { "" },
            view.created,
            view.updated,
            view.unchanged,
            if dry_run {
                " (dry run: nothing was changed)"
            } else {
                ""
            }
        ));
    });
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_one_line() {
        assert_eq!(preview("short", 60), "short");
        assert_eq!(preview("a\nb\n", 60), "a ⏎ b (2 lines)");
        assert_eq!(preview(&"x".repeat(70), 60), format!("{}…", "x".repeat(60)));
        assert_eq!(preview("tab\there", 60), "tab here");
    }

    #[test]
    fn editor_newline_is_dropped_only_when_added() {
        assert_eq!(strip_editor_newline("abc", "abc\n"), "abc");
        assert_eq!(strip_editor_newline("abc", "abc\r\n"), "abc");
        assert_eq!(strip_editor_newline("abc\n", "abc\n"), "abc\n");
        assert_eq!(strip_editor_newline("abc", "abd"), "abd");
    }
}
