//! Shell completion. `dbtool completions SHELL` prints a registration script; when the
//! shell completes, that script runs `COMPLETE=SHELL dbtool -- WORDS...` (clap_complete's
//! dynamic protocol) and dbtool answers with candidates from the same clap definitions:
//! subcommands and options, app names, the app's migration targets (head, base, names,
//! Alembic revisions) and setting keys. Keys are read from the configured database,
//! read-only and for at most about a second; nothing is ever created, and without a
//! database the four default prompt keys are offered.

use crate::exit::Exit;
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, CompleteEnv, Elvish, EnvCompleter, Fish, Powershell, Zsh};
use migration::App;
use serde::Serialize;
use std::ffi::OsString;
use std::time::Duration;

/// The environment variable of the protocol, as the registration scripts use it.
const VAR: &str = "COMPLETE";
/// How long completion may wait for the database before falling back to static values.
const DB_BUDGET: Duration = Duration::from_millis(1000);

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  source <(dbtool completions bash)             in ~/.bashrc
  dbtool completions bash > ~/.local/share/bash-completion/completions/dbtool
  source <(dbtool completions zsh)              in ~/.zshrc, after compinit
  dbtool completions fish > ~/.config/fish/completions/dbtool.fish
  dbtool completions powershell >> $PROFILE

The script calls dbtool back for every completion, so it completes migration targets
(dbtool upgrade d8<TAB>), setting keys and app names as well as subcommands and options.")]
pub struct CompletionsArgs {
    /// The shell to write the script for
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

impl ShellArg {
    fn completer(self) -> &'static dyn EnvCompleter {
        match self {
            ShellArg::Bash => &Bash,
            ShellArg::Zsh => &Zsh,
            ShellArg::Fish => &Fish,
            ShellArg::Powershell => &Powershell,
            ShellArg::Elvish => &Elvish,
        }
    }
}

#[derive(Serialize)]
struct CompletionsView {
    shell: &'static str,
    script: String,
}

pub async fn run(ctx: &Ctx, args: CompletionsArgs) -> Result<Exit> {
    let shell = args.shell.completer();
    let mut buf = Vec::new();
    shell
        .write_registration(VAR, "dbtool", "dbtool", &completer_path(), &mut buf)
        .context("writing the completion script")?;
    let view = CompletionsView {
        shell: shell.name(),
        script: String::from_utf8_lossy(&buf).into_owned(),
    };
    ctx.out.emit(&view, |o| o.raw(&view.script));
    Ok(Exit::Ok)
}

/// The program the script calls back: this binary, as it was invoked (a bare name is
/// looked up on PATH by the shell, a relative path made absolute), as clap_complete does.
fn completer_path() -> String {
    let arg0 = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "dbtool".into());
    let path = if arg0.components().count() > 1 {
        std::env::current_dir()
            .map(|d| d.join(&arg0))
            .unwrap_or(arg0)
    } else {
        arg0
    };
    path.to_string_lossy().into_owned()
}

/// Answers a completion request (`COMPLETE=SHELL dbtool -- WORDS`) and exits; returns at
/// once when the variable is not set.
pub fn answer_shell() {
    CompleteEnv::with_factory(crate::args::command)
        .var(VAR)
        .complete();
}

/// Candidates for a migration target: head, base, and the names and Alembic revisions of
/// the app the command line (or the configuration) selects.
pub fn targets() -> Vec<CompletionCandidate> {
    let app = Completing::read().app;
    let mut v = vec![
        CompletionCandidate::new("head").help(Some("after the last migration".into())),
        CompletionCandidate::new("base").help(Some("before the first migration".into())),
    ];
    for s in app.steps() {
        v.push(CompletionCandidate::new(s.name).help(Some(s.description.into())));
        if let Some(alias) = s.alias {
            v.push(CompletionCandidate::new(alias).help(Some(s.name.into())));
        }
    }
    v
}

/// Candidates for a setting key: the default prompts, and the keys the database holds
/// when it can be read in time.
pub fn setting_keys() -> Vec<CompletionCandidate> {
    let mut keys: Vec<String> = migration::avatar::DEFAULT_PROMPTS
        .iter()
        .map(|(k, _)| (*k).to_owned())
        .collect();
    if let Some(stored) = Completing::read().stored_keys() {
        keys.extend(stored);
    }
    keys.sort();
    keys.dedup();
    keys.into_iter().map(CompletionCandidate::new).collect()
}

/// What the command line being completed selects: its global options, over the
/// environment, `.env` and `dbtool.toml`, as the finished command would see them.
struct Completing {
    app: App,
    config: Option<crate::config::Config>,
}

impl Completing {
    fn read() -> Completing {
        let words = words_before_cursor();
        let cli = crate::args::parse_from(&global_options(&words))
            .or_else(|_| crate::args::parse_from(&["dbtool".into(), "config".into()]));
        let Ok(cli) = cli else {
            return Completing {
                app: App::Avatar,
                config: None,
            };
        };
        match crate::config::Config::resolve(&cli.global, &cli.given) {
            Ok(config) => Completing {
                app: config.app.value,
                config: Some(config),
            },
            Err(_) => Completing {
                app: cli.global.app.map(App::from).unwrap_or(App::Avatar),
                config: None,
            },
        }
    }

    /// The keys in the settings table, read-only with a short deadline; None when the
    /// database is missing, unreachable, slow or not an Avatar one.
    fn stored_keys(self) -> Option<Vec<String>> {
        let config = self.config?;
        if config.app.value != App::Avatar {
            return None;
        }
        let mut ctx = Ctx::from_args(config, crate::output::Output::new(false, true)).ok()?;
        ctx.settings.wait = None;
        ctx.settings.verbose = 0;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let keys = rt.block_on(async {
            let read = async {
                // connect_read opens SQLite read-only and never creates the file.
                let db = ctx.connect_read().await.ok()??;
                let keys = crate::service::settings::list(&db).await.ok()?;
                db.close().await.ok();
                Some(keys.into_iter().map(|s| s.key).collect::<Vec<_>>())
            };
            tokio::time::timeout(DB_BUDGET, read).await.ok().flatten()
        });
        // A connection attempt still under way must not hold the shell up.
        rt.shutdown_background();
        keys
    }
}

/// The words of the command line up to the one being completed (the protocol passes
/// them after `--`; bash and zsh say which one is current).
fn words_before_cursor() -> Vec<OsString> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let words: Vec<OsString> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    };
    let current = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse::<usize>().ok())
        .unwrap_or(words.len().saturating_sub(1));
    words.into_iter().take(current).collect()
}

/// `dbtool [the global options that choose the database] config`: parsed like a real
/// command line, so environment variables apply exactly as they would.
fn global_options(words: &[OsString]) -> Vec<OsString> {
    const WITH_VALUE: [&str; 4] = ["--database-url", "--app", "--schema", "--config"];
    let mut argv: Vec<OsString> = vec!["dbtool".into()];
    let mut i = 1;
    while i < words.len() {
        let w = words[i].to_string_lossy();
        if WITH_VALUE.contains(&w.as_ref()) {
            if let Some(v) = words.get(i + 1) {
                argv.push(words[i].clone());
                argv.push(v.clone());
            }
            i += 2;
            continue;
        }
        if WITH_VALUE.iter().any(|f| w.starts_with(&format!("{f}="))) {
            argv.push(words[i].clone());
        }
        i += 1;
    }
    argv.push("config".into());
    argv
}
