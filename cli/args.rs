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
    /// Database URL: postgres://, postgresql://, mysql://, sqlite:// (add ?pgbouncer=true for a transaction-pooling PgBouncer) [default: sqlite file ./dbtool.db]
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Database URL for migrations when --database-url goes through a transaction pooler (PgBouncer); read and admin commands keep using --database-url
    #[arg(
        long,
        env = "DBTOOL_DIRECT_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub direct_url: Option<String>,

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
            if usage && std::env::args().any(|a| a == "--json") {
                let msg = e.kind().to_string();
                let detail = e.to_string();
                let first = detail
                    .lines()
                    .next()
                    .unwrap_or(&msg)
                    .trim_start_matches("error: ");
                println!(
                    "{}",
                    serde_json::json!({"error": {"kind": "usage", "code": 2, "message": first}})
                );
            }
            let _ = e.print();
            Err(std::process::ExitCode::from(if usage { 2 } else { 0 }))
        }
    }
}

/// `Cli::try_parse`, plus where each global option came from (flag or environment).
fn parse_with_sources() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut Cli::command()))?;
    cli.given = crate::config::Given::from_matches(&matches);
    Ok(cli)
}
