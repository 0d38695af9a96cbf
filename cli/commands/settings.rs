//! `dbtool settings`: the Avatar settings (chiefly the bio prompts) from a shell, the
//! equivalent of the application's `Settings.get_value` / `Settings.set_value`. Values are
//! text kept byte for byte; `get` adds nothing except one newline on a terminal.
//!
//! Writes guard against the slips that lose a prompt silently: a key that is neither a
//! default prompt nor stored needs `--create` (and the error suggests the key meant), an
//! empty or whitespace-only value needs `--allow-empty`, and NUL bytes are refused.

use crate::commands::completions;
use crate::commands::connect_admin;
use crate::context::Access;
use crate::exit::{coded, Exit};
use crate::output::{count, human_time, Column, Tone};
use crate::service::settings::{
    self as svc, Change, ImportSet, Key, Refusal, Setting, ValueProblem,
};
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

Writing a key that is neither one of the four default prompts nor stored needs --create
(so a typo does not add a key); an empty or whitespace-only value needs --allow-empty;
values cannot contain NUL bytes.

Exit codes: 8 when the key does not exist (get without --default, unset, edit, and set,
edit or import of a new key without --create), 2 for a refused value, 7 when `unset` is
not confirmed.")]
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
  dbtool settings get bio_prompt_x | dbtool settings set bio_prompt_x_backup - --create
  dbtool settings set notes '' --allow-empty

The value is stored byte for byte: a trailing newline in the file or on standard input
is kept (use printf rather than echo to avoid one). A key that is neither a default
prompt nor stored needs --create (exit 8 otherwise, with the closest known key); an empty
or whitespace-only value needs --allow-empty (exit 2 otherwise); NUL bytes are refused.")]
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
were editing, nothing is saved and your text is kept in the temporary file.

A default prompt that is not stored starts from its default text; any other key that is
not stored needs --create and starts empty. Saving an empty or whitespace-only text needs
--allow-empty; text with a NUL byte is not saved.")]
    Edit {
        /// The setting's key
        #[arg(add = ArgValueCandidates::new(completions::setting_keys))]
        key: Key,
        /// Create the key if it is neither stored nor a default prompt
        #[arg(long)]
        create: bool,
        /// Save the text even if it is empty or only whitespace
        #[arg(long)]
        allow_empty: bool,
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
has none); a key whose value is already the same is not touched. Keys that are neither
stored nor default prompts need --create, empty or whitespace-only values --allow-empty;
otherwise nothing is imported (a dry run refuses the same way).")]
    Import {
        /// The export document, or - for standard input
        file: PathBuf,
        /// Show what would change and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Create keys that are neither stored nor default prompts
        #[arg(long)]
        create: bool,
        /// Import empty or whitespace-only values
        #[arg(long)]
        allow_empty: bool,
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
    /// Create the key if it is neither stored nor a default prompt
    #[arg(long)]
    pub create: bool,
    /// Store the value even if it is empty or only whitespace
    #[arg(long)]
    pub allow_empty: bool,
}

pub async fn run(ctx: &Ctx, args: SettingsArgs) -> Result<Exit> {
    if ctx.app_given().is_some_and(|a| a != App::Avatar) {
        // The command line contradicts itself (no database is asked): a usage error.
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
        SettingsCommand::Edit {
            key,
            create,
            allow_empty,
        } => edit(ctx, key, create, allow_empty).await,
        SettingsCommand::Export => export(ctx).await,
        SettingsCommand::Import {
            file,
            dry_run,
            create,
            allow_empty,
        } => import(ctx, &file, dry_run, create, allow_empty).await,
    }
}

fn not_found(key: &Key) -> anyhow::Error {
    coded(
        Exit::NotFound,
        format!("no setting '{key}'; see `dbtool settings list`"),
    )
}

/// A refused value, naming the key and where the value came from; exit 2.
fn bad_value(key: &Key, source: &str, p: ValueProblem) -> anyhow::Error {
    let hint = if p.is_emptiness() {
        "; pass --allow-empty to store it anyway"
    } else {
        ""
    };
    coded(
        Exit::Usage,
        format!("the value for setting '{key}' ({source}) {p}{hint}; nothing was changed"),
    )
}

/// The error for a refused write. `prefix` says where the keys came from (an import file).
fn refused(r: Refusal, prefix: &str) -> anyhow::Error {
    match r {
        Refusal::Collides { key, other } => coded(
            Exit::Usage,
            format!(
                "{prefix}key '{key}' collides with existing key '{other}': MySQL/MariaDB compare keys case-insensitively; use '{other}'; nothing was changed"
            ),
        ),
        Refusal::Unknown(keys) => {
            let one = |(k, s): &(String, Option<String>)| match s {
                Some(s) => format!("'{k}' (did you mean {s}?)"),
                None => format!("'{k}'"),
            };
            let msg = match keys.as_slice() {
                [(k, Some(s))] => format!(
                    "{prefix}no setting '{k}'; did you mean {s}? Use --create to add a new key"
                ),
                [(k, None)] => format!(
                    "{prefix}no setting '{k}'; use --create to add a new key (see `dbtool settings list`)"
                ),
                many => format!(
                    "{prefix}{} keys are not settings yet: {}; use --create to add new keys; nothing was changed",
                    many.len(),
                    many.iter().map(one).collect::<Vec<_>>().join(", ")
                ),
            };
            coded(Exit::NotFound, msg)
        }
        Refusal::TooLong {
            key,
            bytes,
            capacity,
        } => coded(
            Exit::Pending,
            format!(
                "{prefix}the value for setting '{key}' is {bytes} bytes, more than settings.value holds in this database ({capacity} bytes, MySQL/MariaDB TEXT); apply {} with `{}` to widen it; nothing was changed",
                migration::avatar::m20261201_000001_widen_settings_value::INFO.name,
                crate::dberror::command("upgrade")
            ),
        ),
    }
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

/// A value larger than MySQL/MariaDB's `max_allowed_packet` is a bad value (exit 2), said
/// before anything is written.
async fn refuse_oversized(
    db: &sea_orm::DatabaseConnection,
    key: &impl std::fmt::Display,
    len: usize,
) -> Result<()> {
    if let Some(max) = svc::packet_limit_exceeded(db, len)
        .await
        .context("reading the server's max_allowed_packet")?
    {
        return Err(coded(
            Exit::Usage,
            format!(
                "the value of setting '{key}' ({len} bytes) is larger than the server's max_allowed_packet ({max} bytes); nothing was saved; shorten it, or have max_allowed_packet raised (SET GLOBAL max_allowed_packet = 1073741824, or in the server's configuration) and run the command again"
            ),
        ));
    }
    Ok(())
}

async fn set(ctx: &Ctx, a: SetArgs) -> Result<Exit> {
    let (value, source) = match (&a.value, &a.file) {
        (_, Some(path)) => (read_file_text(path)?, format!("from {}", path.display())),
        (Some(v), None) if v == "-" => (read_stdin_text(ctx).await?, "from standard input".into()),
        (Some(v), None) => (v.clone(), "given as an argument".into()),
        (None, None) => {
            return Err(coded(
                Exit::Usage,
                "give the value as an argument, with --file PATH, or - to read standard input",
            ))
        }
    };
    svc::check_value(&value, a.allow_empty).map_err(|p| bad_value(&a.key, &source, p))?;
    let db = connect_admin(ctx, Access::Write, TABLE).await?;
    refuse_oversized(&db, &a.key, value.len()).await?;
    let (change, s) = svc::set(&db, &a.key, &value, a.create)
        .await
        .with_context(|| format!("saving setting '{}'", a.key))?
        .map_err(|r| refused(r, ""))?;
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

async fn edit(ctx: &Ctx, key: Key, create: bool, allow_empty: bool) -> Result<Exit> {
    let (prog, editor_args, source) = editor_command()?;
    let db = connect_admin(ctx, Access::Write, TABLE).await?;
    let current = svc::get(&db, &key).await.context("reading the setting")?;
    if current.is_none() {
        if let Some(r) = svc::refuse_unknown(&db, &key, create)
            .await
            .context("reading the settings")?
        {
            return Err(refused(r, ""));
        }
    }
    // No connection stays open while a person edits (servers drop idle ones).
    db.close().await.ok();
    // A default prompt that is not stored starts from its default text, a new key empty.
    let original = match &current {
        Some(s) => s.value.as_str(),
        None => svc::default_value(key.as_str()).unwrap_or(""),
    };
    let mut tmp = TempText::create(&key, original)?;
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
    let edited = strip_editor_newline(original, &edited);
    let kept = |tmp: &mut TempText| {
        tmp.keep = true;
        format!("nothing was saved; your text is in {}", path.display())
    };
    if current.as_ref().is_some_and(|c| c.value == edited) {
        let view = EditView {
            key: key.as_str(),
            change: Change::Unchanged,
        };
        ctx.out.emit(&view, |o| {
            o.line(&format!("setting '{key}' not changed; nothing saved"))
        });
        return Ok(Exit::Ok);
    }
    if let Err(p) = svc::check_value(edited, allow_empty) {
        let where_ = if p.is_emptiness() {
            "nothing was saved".to_owned()
        } else {
            kept(&mut tmp)
        };
        let hint = if p.is_emptiness() {
            "; pass --allow-empty to save it anyway"
        } else {
            ""
        };
        return Err(coded(
            Exit::Usage,
            format!("the edited value for setting '{key}' {p}{hint}; {where_}"),
        ));
    }
    let saved = async {
        let db = connect_admin(ctx, Access::Write, TABLE).await?;
        refuse_oversized(&db, &key, edited.len()).await?;
        match &current {
            Some(c) => Ok(svc::replace_if_unchanged(&db, &key, &c.value, edited)
                .await
                .context("saving the setting")?
                .map(|ok| ok.then_some(Change::Updated))),
            None => Ok(svc::create_if_absent(&db, &key, edited)
                .await
                .context("saving the setting")?
                .map(|s| s.map(|_| Change::Created))),
        }
    }
    .await;
    let change = match saved {
        Ok(Ok(Some(change))) => change,
        Ok(Ok(None)) => {
            let what = if current.is_some() {
                "changed in the database"
            } else {
                "was created in the database"
            };
            return Err(coded(
                Exit::Failure,
                format!(
                    "setting '{key}' {what} while you were editing; {}",
                    kept(&mut tmp)
                ),
            ));
        }
        Ok(Err(r)) => return Err(refused(r, "").context(kept(&mut tmp))),
        Err(e) => {
            let e: anyhow::Error = e;
            return Err(e.context(kept(&mut tmp)));
        }
    };
    let view = EditView {
        key: key.as_str(),
        change,
    };
    ctx.out.emit(&view, |o| {
        o.done(&format!(
            "{} setting '{key}' ({})",
            change.as_str(),
            count(edited.len(), "byte", "bytes")
        ))
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

async fn import(
    ctx: &Ctx,
    file: &Path,
    dry_run: bool,
    create: bool,
    allow_empty: bool,
) -> Result<Exit> {
    let (text, name) = if file == Path::new("-") {
        (read_stdin_text(ctx).await?, "standard input".to_owned())
    } else {
        (read_file_text(file)?, file.display().to_string())
    };
    let set = ImportSet::parse(&text, allow_empty)
        .map_err(|m| coded(Exit::Usage, format!("{name}: {m}; nothing was changed")))?;
    let db = connect_admin(ctx, Access::Write, TABLE).await?;
    if let Some((key, e)) = set.entries.iter().max_by_key(|(_, e)| e.value.len()) {
        refuse_oversized(&db, key, e.value.len()).await?;
    }
    let changes = svc::import(&db, &set, create, dry_run)
        .await
        .context("importing the settings")?
        .map_err(|r| refused(r, &format!("{name}: ")))?;
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
