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
        help_heading = GLOBAL,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Database URL for migrations when --database-url goes through a transaction pooler (PgBouncer); read and admin commands keep using --database-url
    #[arg(
        long,
        env = "DBTOOL_DIRECT_URL",
        global = true,
        help_heading = GLOBAL,
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
        help_heading = GLOBAL,
        value_enum
    )]
    pub app: Option<AppArg>,

    /// PostgreSQL schema to work in (sets search_path); both apps can share one database this way
    #[arg(
        long,
        env = "DBTOOL_SCHEMA",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL,
        value_name = "NAME"
    )]
    pub schema: Option<String>,

    /// Configuration file [default: ./dbtool.toml when present]
    #[arg(
        long,
        env = "DBTOOL_CONFIG",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL,
        value_name = "PATH"
    )]
    pub config: Option<std::path::PathBuf>,

    /// Print one JSON document on stdout (errors too) instead of text
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// How migration progress is shown on stderr: auto (live on a terminal, lines
    /// otherwise), lines, or json (one JSON event per line, for CI dashboards)
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// Seconds to wait for another run's migration lock before giving up (exit 4) [default: 60]
    #[arg(
        long,
        env = "DBTOOL_LOCK_TIMEOUT",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL,
        value_name = "SECONDS",
        value_parser = crate::config::parse_seconds
    )]
    pub lock_timeout: Option<u64>,

    /// Seconds a migration step may wait for a table lock before it is rolled back and
    /// retried, so it never queues live traffic for longer (exit 12 when retries run out)
    /// [default: 5]
    #[arg(
        long,
        env = "DBTOOL_DDL_LOCK_TIMEOUT",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL,
        value_name = "SECONDS"
    )]
    pub ddl_lock_timeout: Option<String>,

    /// How often a step that timed out on a table lock is retried, with backoff [default: 3]
    #[arg(
        long,
        env = "DBTOOL_DDL_RETRIES",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(0..=100)
    )]
    pub ddl_retries: Option<u32>,

    /// Seconds any one statement of a migration step may run [default: no limit]
    #[arg(
        long,
        env = "DBTOOL_STATEMENT_TIMEOUT",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL,
        value_name = "SECONDS"
    )]
    pub statement_timeout: Option<String>,

    /// Retry connecting until the server accepts connections (see --wait-timeout)
    #[arg(
        long,
        env = "DBTOOL_WAIT",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL
    )]
    pub wait: bool,

    /// Seconds --wait keeps retrying [default: 60]
    #[arg(
        long,
        env = "DBTOOL_WAIT_TIMEOUT",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL,
        value_name = "SECONDS",
        value_parser = crate::config::parse_seconds
    )]
    pub wait_timeout: Option<u64>,

    /// More diagnostics on stderr (-v: steps, -vv: every SQL statement)
    #[arg(short, long, global = true,
        help_heading = GLOBAL, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print errors only
    #[arg(short, long, global = true,
        help_heading = GLOBAL, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// How migration progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ProgressMode {
    /// A line when each step starts and ends; live progress of long steps on a terminal.
    #[default]
    Auto,
    /// Only the lines, also on a terminal.
    Lines,
    /// One JSON object per event (`{"event": "step_started", ...}`), nothing else.
    Json,
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

impl From<AppArg> for migration::App {
    fn from(a: AppArg) -> migration::App {
        use migration::App;
        match a {
            AppArg::Avatar => App::Avatar,
            AppArg::Neurachar => App::Neurachar,
            #[cfg(feature = "fixtures")]
            AppArg::Fixture => App::Fixture,
        }
    }
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
    /// Show the audit trail of migration runs: who ran which step, when, and how it ended
    Log(commands::log::LogArgs),
    /// Settle a half-done step by the schema and re-record changed checksums
    Repair(commands::repair::RepairArgs),
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
    /// Find operations that are risky on a live database (pending migrations or an SQL file)
    Lint(commands::lint::LintArgs),
    /// Run status, upgrade, downgrade or check over many databases at once
    Fleet(commands::fleet::FleetArgs),
    /// Show the effective configuration and where each value comes from
    Config(commands::config::ConfigArgs),
    /// Print a shell completion script
    Completions(commands::completions::CompletionsArgs),
    /// Print the man page (roff)
    Man(commands::man::ManArgs),
    /// Write the next migration of the app into this checkout (--autogenerate: from the entities)
    New(commands::new::NewArgs),
}

/// The heading global options are listed under in every `--help`, apart from the
/// command's own options.
const GLOBAL: &str = "Global options";

/// The global options that say which database to use and how to reach it; `completions`
/// and `man` never connect, so their help leaves these out (they are still accepted).
const DATABASE_OPTIONS: [&str; 11] = [
    "database_url",
    "direct_url",
    "app",
    "schema",
    "config",
    "lock_timeout",
    "ddl_lock_timeout",
    "ddl_retries",
    "statement_timeout",
    "wait",
    "wait_timeout",
];

/// The command-line definition as every consumer sees it (parsing, help, completion, man).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    // A subcommand that defines an argument itself does not get the global one (clap
    // propagates globals at build time only where the id is free): hidden copies keep the
    // options working there while `--help` leaves them out.
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| DATABASE_OPTIONS.contains(&a.get_id().as_str()))
        .map(|a| a.clone().hide(true))
        .collect();
    ["completions", "man"].into_iter().fold(cmd, |cmd, name| {
        let hidden = hidden.clone();
        cmd.mut_subcommand(name, move |sub| sub.args(hidden))
    })
}

/// Parses the command line; on `--help`/`--version` or a usage error prints what clap
/// prints and returns the exit code. A usage error is one `error: ...` line on stderr (with
/// `--json` also the error document every other error prints); an argument can only be
/// echoed with its control characters escaped.
pub fn parse() -> Result<Cli, std::process::ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match parse_from(&args) {
        Ok(cli) => Ok(cli),
        Err(e) => Err(report(e, args.iter().any(|a| a == "--json"))),
    }
}

/// The command line as parsed: the global options' environment variables are read by
/// `config` (so that a bad value names the variable and where it was set, and every source
/// shares one set of spellings), not by clap; `--help` still names them. The man page reads
/// them from [`command`].
pub fn parse_command() -> clap::Command {
    command().mut_args(|a| {
        let Some(var) = a.get_env().map(|v| v.to_string_lossy().into_owned()) else {
            return a;
        };
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        a.env(None).help(format!("{help} [env: {var}]"))
    })
}

/// `Cli::try_parse_from`, plus which global options were given as flags.
pub fn parse_from(args: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let matches = parse_command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut parse_command()))?;
    cli.given = crate::config::Given::from_matches(&matches);
    Ok(cli)
}

fn report(mut e: clap::Error, json: bool) -> std::process::ExitCode {
    use clap::error::{ContextValue, ErrorKind};
    use std::process::ExitCode;
    if !e.use_stderr() {
        // --help and --version: clap's own rendering, on stdout.
        return match e.print() {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(err) => {
                crate::output::report_early_error(
                    crate::exit::Exit::Failure,
                    &format!("cannot write to standard output: {err}"),
                    false,
                );
                ExitCode::FAILURE
            }
        };
    }
    let escaped: Vec<_> = e
        .context()
        .filter_map(|(kind, value)| {
            let value = match value {
                ContextValue::String(v) => ContextValue::String(escape(v)),
                ContextValue::Strings(vs) => {
                    ContextValue::Strings(vs.iter().map(|v| escape(v)).collect())
                }
                _ => return None,
            };
            Some((kind, value))
        })
        .collect();
    for (kind, value) in escaped {
        e.insert(kind, value);
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // `dbtool settings`: the help is what the person needs; the error line follows it.
        let _ = e.print();
        let usage = e.to_string();
        let name = usage
            .lines()
            .find_map(|l| l.strip_prefix("Usage: "))
            .and_then(|u| u.split(" [").next())
            .unwrap_or("dbtool")
            .trim_end_matches(" <COMMAND>")
            .to_owned();
        crate::output::report_early_error(
            crate::exit::Exit::Usage,
            &format!("`{name}` needs a subcommand (listed above); see `{name} --help`"),
            json,
        );
        return ExitCode::from(crate::exit::Exit::Usage.code());
    }
    crate::output::report_early_error(crate::exit::Exit::Usage, &one_line(&e.to_string()), json);
    ExitCode::from(crate::exit::Exit::Usage.code())
}

fn escape(s: &str) -> String {
    crate::output::escape_controls(s).into_owned()
}

/// clap's multi-line usage error as one line: the message (a value's newlines escaped),
/// its tips, and the usage.
fn one_line(rendered: &str) -> String {
    let mut parts = rendered.trim_end().split("\n\n");
    // Values were escaped before rendering: a newline here is clap's own layout.
    let message = parts
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let mut line = message;
    for part in parts {
        for l in part.lines().map(str::trim) {
            if let Some(tip) = l.strip_prefix("tip: ") {
                line.push_str(&format!("; {tip}"));
            } else if let Some(usage) = l.strip_prefix("Usage: ") {
                line.push_str(&format!("; usage: {usage}"));
            }
        }
    }
    line.push_str("; see --help");
    line
}
