//! Command-line definitions (clap): the global options and one enum of subcommands.

use crate::commands;
use clap::{Args, Parser, Subcommand, ValueEnum};

pub const ABOUT: &str =
    "Schema migrations and administration for the Avatar Data Generator and NeuraChar databases.";

const AFTER_HELP: &str = "\
Examples:
  dbtool upgrade                      apply every pending migration (./dbtool.db
                                      when no database is configured)
  DATABASE_URL=postgres://app@db/avatar dbtool status
  dbtool --app neurachar upgrade --dry-run
  dbtool downgrade                    roll back the last migration
  dbtool stamp 25698f3f906f           record a revision without running it
  dbtool settings get bio_prompt_x    print one bio prompt
  dbtool config                       the effective configuration and its sources
";

#[derive(Debug, Parser)]
#[command(
    name = "dbtool",
    version = crate::version::SHORT,
    long_version = crate::version::long_static(),
    about = ABOUT,
    after_help = AFTER_HELP,
    after_long_help = format!("{AFTER_HELP}\n{}", crate::exit::Exit::help_text()),
    propagate_version = true,
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
    /// Which global options came from flags or environment variables (filled by `parse`).
    #[arg(skip)]
    pub given: crate::config::Given,
}

/// Options every subcommand accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Database URL: postgres://, postgresql://, mysql://, sqlite:// [default: sqlite file ./dbtool.db]
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Which application's schema to manage [default: avatar]
    #[arg(
        long,
        env = "DBTOOL_APP",
        hide_env_values = true,
        global = true,
        value_enum
    )]
    pub app: Option<AppArg>,

    /// PostgreSQL schema to work in (sets search_path); both apps can share one database this way
    #[arg(
        long,
        env = "DBTOOL_SCHEMA",
        hide_env_values = true,
        global = true,
        value_name = "NAME"
    )]
    pub schema: Option<String>,

    /// Configuration file [default: ./dbtool.toml when present]
    #[arg(
        long,
        env = "DBTOOL_CONFIG",
        hide_env_values = true,
        global = true,
        value_name = "PATH"
    )]
    pub config: Option<std::path::PathBuf>,

    /// Print one JSON document on stdout (errors too) instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Seconds to wait for another run's migration lock before giving up (exit 4) [default: 60]
    #[arg(
        long,
        env = "DBTOOL_LOCK_TIMEOUT",
        hide_env_values = true,
        global = true,
        value_name = "SECONDS"
    )]
    pub lock_timeout: Option<u64>,

    /// Retry connecting until the server accepts connections (see --wait-timeout)
    #[arg(long, env = "DBTOOL_WAIT", hide_env_values = true, global = true)]
    pub wait: bool,

    /// Seconds --wait keeps retrying [default: 60]
    #[arg(
        long,
        env = "DBTOOL_WAIT_TIMEOUT",
        hide_env_values = true,
        global = true,
        value_name = "SECONDS"
    )]
    pub wait_timeout: Option<u64>,

    /// More diagnostics on stderr (-v: steps, -vv: every SQL statement)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppArg {
    /// Avatar Data Generator (users, settings)
    Avatar,
    /// NeuraChar (users, email_login_codes, characters, chats, messages)
    Neurachar,
    /// Test fixtures (only in builds with the `fixtures` feature)
    #[cfg(feature = "fixtures")]
    #[value(hide = true)]
    Fixture,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, up to TARGET (default: head)
    Upgrade(commands::upgrade::UpgradeArgs),
    /// Roll back migrations, down to TARGET (default: the last applied one)
    Downgrade(commands::downgrade::DowngradeArgs),
    /// Show every migration and whether it is applied (read-only)
    Status(commands::status::StatusArgs),
    /// List every migration with what it does (read-only)
    History(commands::history::HistoryArgs),
    /// Record the database as being at TARGET without running migrations
    Stamp(commands::stamp::StampArgs),
    /// Read and edit the bio-prompt settings (avatar)
    Settings(commands::settings::SettingsArgs),
    /// Manage user accounts
    Users(commands::users::UsersArgs),
    /// Housekeeping of email login codes (neurachar)
    LoginCodes(commands::login_codes::LoginCodesArgs),
    /// List, publish and unpublish characters (neurachar)
    Characters(commands::characters::CharactersArgs),
    /// Delete chats with their messages (neurachar)
    Chats(commands::chats::ChatsArgs),
    /// Compare the live schema with what the migrations produce
    Check(commands::check::CheckArgs),
    /// Write Markdown documentation of the live schema
    Docs(commands::docs::DocsArgs),
    /// Show the effective configuration and where each value comes from
    Config(commands::config::ConfigArgs),
    /// Print a shell completion script
    Completions(commands::completions::CompletionsArgs),
    /// Print the man page (roff)
    Man(commands::man::ManArgs),
}

/// Parses the command line; on `--help`/`--version` or a usage error prints what clap
/// prints (a JSON error document too with `--json`) and returns the exit code.
pub fn parse() -> Result<Cli, std::process::ExitCode> {
    match parse_with_sources() {
        Ok(cli) => Ok(cli),
        Err(e) => {
            let usage = e.use_stderr();
            if !usage {
                // --help, --version: clap's own output, as it is.
                let _ = e.print();
                return Err(std::process::ExitCode::from(0));
            }
            if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                // `dbtool` or `dbtool settings` alone: the help is the useful answer.
                let _ = e.print();
                return Err(std::process::ExitCode::from(2));
            }
            let line = crate::output::redact(&one_line(&e));
            if std::env::args().any(|a| a == "--json") {
                // The same keys, in the same order, as every other error document.
                #[derive(serde::Serialize)]
                struct Body<'a> {
                    kind: &'a str,
                    code: u8,
                    message: &'a str,
                }
                #[derive(serde::Serialize)]
                struct Doc<'a> {
                    error: Body<'a>,
                }
                let doc = Doc {
                    error: Body {
                        kind: "usage",
                        code: 2,
                        message: &line,
                    },
                };
                println!("{}", serde_json::to_string(&doc).unwrap_or_default());
            }
            eprintln!("error: {line}");
            Err(std::process::ExitCode::from(2))
        }
    }
}

/// clap's multi-line usage error as one line: the message, possible values and tips, the
/// usage, and where to read more.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut msg = lines
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .trim_end_matches(':')
        .to_owned();
    let mut usage = None;
    let mut extra = Vec::new();
    for l in lines {
        if let Some(u) = l.strip_prefix("Usage: ") {
            usage = Some(u.to_owned());
        } else if l.starts_with("For more information") {
        } else if l.starts_with("tip:") || l.starts_with('[') {
            extra.push(
                l.trim_start_matches("tip: ")
                    .trim_matches(['[', ']'])
                    .to_owned(),
            );
        } else {
            msg.push_str(if msg.ends_with("provided") {
                ": "
            } else {
                ", "
            });
            msg.push_str(l);
        }
    }
    if !extra.is_empty() {
        msg = format!("{msg} ({})", extra.join("; "));
    }
    if let Some(u) = usage {
        msg = format!("{msg}; usage: {u}");
    }
    format!("{msg}; see --help")
}

/// The command line as parsed. The global options' environment variables are read by
/// `config` (so that a bad value names the variable and where it was set, and all sources
/// share one set of spellings), not by clap; `--help` still names them.
pub fn parse_command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_args(|a| {
        let Some(var) = a.get_env().map(|v| v.to_string_lossy().into_owned()) else {
            return a;
        };
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        a.env(None).help(format!("{help} [env: {var}]"))
    })
}

/// `Cli::try_parse`, plus which global options were given as flags.
fn parse_with_sources() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = parse_command().try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut Cli::command()))?;
    cli.given = crate::config::Given::from_matches(&matches);
    Ok(cli)
}
