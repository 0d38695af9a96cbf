//! `dbtool users`: Avatar login accounts (add, passwd, activate, deactivate, check-password)
//! and the account list of either app. Passwords never come from the command line: a
//! prompt without echo on a terminal, or the first line of standard input with
//! `--password-stdin`. Hashes are bcrypt `$2b$`, as Flask-Bcrypt / Python `bcrypt` use.

use crate::commands::{connect_admin_app, connect_admin_for};
use crate::context::Access;
use crate::exit::{coded, Exit};
use crate::output::{count, human_time, Column, Tone};
use crate::service::users::{self as svc, AddOutcome, AvatarUser, Email, Lookup, Password};
use crate::Ctx;
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use entity::avatar::user as avatar_user;
use migration::App;
use sea_orm::DatabaseConnection;
use serde::Serialize;

const TABLE: &str = "users";

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool users add ann@example.com                        asks for the password twice
  printf '%s\\n' \"$pw\" | dbtool users add ann@example.com --password-stdin
  dbtool users passwd ann@example.com
  dbtool users list
  dbtool users deactivate ann@example.com
  dbtool users check-password ann@example.com --password-stdin < pw.txt && echo ok
  dbtool --app neurachar users list                       NeuraChar accounts

Exit codes: 8 when no account has the email, 10 when check-password does not match,
2 for a bad or duplicate email or an unacceptable password.")]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an Avatar account (active, created now)
    #[command(after_help = "\
Examples:
  dbtool users add ann@example.com
  printf '%s\\n' \"$pw\" | dbtool users add ann@example.com --password-stdin --cost 13

The email is trimmed and stored as given; one that differs from an existing account
only in letter case is refused as a duplicate.")]
    Add {
        /// The account's email address
        email: Email,
        #[command(flatten)]
        password: NewPassword,
        /// Create the account deactivated
        #[arg(long)]
        inactive: bool,
    },
    /// Set a new password for an Avatar account
    #[command(after_help = "\
Examples:
  dbtool users passwd ann@example.com
  printf '%s\\n' \"$pw\" | dbtool users passwd ann@example.com --password-stdin")]
    Passwd {
        /// The account's email address (letter case does not matter)
        email: String,
        #[command(flatten)]
        password: NewPassword,
    },
    /// List the accounts (Avatar: id, email, active, created, last login; NeuraChar: id,
    /// email, username, provider, created, last login)
    #[command(after_help = "\
Examples:
  dbtool users list
  dbtool --app neurachar users list --json")]
    List,
    /// Stop an Avatar account from logging in
    #[command(after_help = "\
Examples:
  dbtool users deactivate ann@example.com")]
    Deactivate {
        /// The account's email address (letter case does not matter)
        email: String,
    },
    /// Allow a deactivated Avatar account to log in again
    #[command(after_help = "\
Examples:
  dbtool users activate ann@example.com")]
    Activate {
        /// The account's email address (letter case does not matter)
        email: String,
    },
    /// Check a password against an Avatar account (exit 0: matches, 10: does not)
    #[command(after_help = "\
Examples:
  dbtool users check-password ann@example.com
  printf '%s\\n' \"$pw\" | dbtool users check-password ann@example.com --password-stdin

Exit code 0 when the password matches, 10 when it does not, 8 when there is no such account.")]
    CheckPassword {
        /// The account's email address (letter case does not matter)
        email: String,
        /// Read the password from the first line of standard input instead of asking
        #[arg(long)]
        password_stdin: bool,
    },
}

/// How a new password is given and hashed.
#[derive(Debug, Args)]
pub struct NewPassword {
    /// Read the password from the first line of standard input instead of asking twice
    #[arg(long)]
    pub password_stdin: bool,
    /// bcrypt cost (work factor), 4 to 31; each step doubles the time
    #[arg(long, default_value_t = svc::DEFAULT_COST, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
}

pub async fn run(ctx: &Ctx, args: UsersArgs) -> Result<Exit> {
    match args.command {
        UsersCommand::List => list(ctx).await,
        UsersCommand::Add {
            email,
            password,
            inactive,
        } => {
            avatar_only(ctx, "add")?;
            add(ctx, email, password, inactive).await
        }
        UsersCommand::Passwd { email, password } => {
            avatar_only(ctx, "passwd")?;
            passwd(ctx, &email, password).await
        }
        UsersCommand::Deactivate { email } => {
            avatar_only(ctx, "deactivate")?;
            set_active(ctx, &email, false).await
        }
        UsersCommand::Activate { email } => {
            avatar_only(ctx, "activate")?;
            set_active(ctx, &email, true).await
        }
        UsersCommand::CheckPassword {
            email,
            password_stdin,
        } => {
            avatar_only(ctx, "check-password")?;
            check_password(ctx, &email, password_stdin).await
        }
    }
}

/// NeuraChar accounts have neither passwords nor an active flag.
fn avatar_only(ctx: &Ctx, sub: &str) -> Result<()> {
    if ctx.app_given().is_none_or(|a| a == App::Avatar) {
        return Ok(());
    }
    // The command line contradicts itself (no database is asked): a usage error.
    Err(coded(
        Exit::Usage,
        format!(
            "`users {sub}` manages Avatar accounts; {} accounts have no password and sign in with email codes (only `users list` works with --app {})",
            if ctx.app == App::Neurachar { "NeuraChar" } else { ctx.app.name() },
            ctx.app
        ),
    ))
}

/// The first line of standard input, without its line ending.
async fn password_from_stdin() -> Result<String> {
    let line = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).map(|n| (n, s))
    })
    .await
    .context("reading the password from standard input")?;
    let (n, mut s) = line.map_err(|e| {
        coded(
            Exit::Usage,
            format!("cannot read the password from standard input: {e}"),
        )
    })?;
    if n == 0 {
        return Err(coded(
            Exit::Usage,
            "--password-stdin: standard input is empty; pipe the password in (e.g. printf '%s\\n' \"$pw\" | dbtool ...)",
        ));
    }
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

/// Asks on the terminal without echo.
async fn prompt_hidden(prompt: String) -> Result<String> {
    tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
        .await
        .context("reading the password")?
        .context("reading the password from the terminal")
}

fn no_terminal() -> anyhow::Error {
    coded(
        Exit::Usage,
        "no terminal to ask for the password on: pass it on standard input with --password-stdin (never on the command line)",
    )
}

fn bad_password(msg: String) -> anyhow::Error {
    coded(Exit::Usage, format!("{msg}; nothing was changed"))
}

/// A new password: from standard input, or asked twice on the terminal.
async fn new_password(email: &str, from_stdin: bool) -> Result<Password> {
    let raw = if from_stdin {
        password_from_stdin().await?
    } else if crate::prompt::interactive() {
        let first = prompt_hidden(format!("New password for {email}: ")).await?;
        Password::parse(first.clone()).map_err(bad_password)?;
        let second = prompt_hidden("Repeat the password: ".into()).await?;
        if first != second {
            return Err(coded(
                Exit::Usage,
                "the two passwords differ; nothing was changed",
            ));
        }
        first
    } else {
        return Err(no_terminal());
    };
    Password::parse(raw).map_err(bad_password)
}

async fn hash(password: Password, cost: u32) -> Result<String> {
    tokio::task::spawn_blocking(move || svc::hash_password(&password, cost))
        .await
        .context("hashing the password")?
        .context("hashing the password")
}

/// The account with this email, or the error that says why there is none.
async fn lookup(db: &DatabaseConnection, email: &str) -> Result<avatar_user::Model> {
    match svc::find_avatar(db, email)
        .await
        .context("looking the account up")?
    {
        Lookup::Found(u) => Ok(u),
        Lookup::Missing => Err(coded(
            Exit::NotFound,
            format!(
                "no Avatar account with email '{}'; see `dbtool users list`",
                email.trim()
            ),
        )),
        Lookup::Ambiguous(emails) => Err(coded(
            Exit::Usage,
            format!(
                "'{}' matches several accounts that differ only in letter case ({}); give the email exactly as stored",
                email.trim(),
                emails.join(", ")
            ),
        )),
    }
}

#[derive(Serialize)]
struct UserView {
    #[serde(flatten)]
    user: AvatarUser,
    /// False when the command found the account already in the requested state.
    changed: bool,
}

async fn add(ctx: &Ctx, email: Email, pw: NewPassword, inactive: bool) -> Result<Exit> {
    let db = connect_admin_for(ctx, Access::Write, TABLE, App::Avatar).await?;
    // Refuse a duplicate before asking for a password; the insert checks again.
    match svc::find_avatar(&db, email.as_str())
        .await
        .context("looking for an existing account")?
    {
        Lookup::Found(u) => return Err(duplicate(&email, &u.email)),
        Lookup::Ambiguous(v) => return Err(duplicate(&email, &v.join(", "))),
        Lookup::Missing => {}
    }
    let password = new_password(email.as_str(), pw.password_stdin).await?;
    let password_hash = hash(password, pw.cost).await?;
    let user = match svc::add_avatar(&db, &email, password_hash, !inactive)
        .await
        .context("creating the account")?
    {
        AddOutcome::Created(u) => u,
        AddOutcome::Duplicate(existing) => return Err(duplicate(&email, &existing)),
    };
    ctx.out.emit(
        &UserView {
            user: user.clone(),
            changed: true,
        },
        |o| {
            o.done(&format!(
                "created user {} (id {}, {})",
                user.email,
                user.id,
                if user.is_active { "active" } else { "inactive" }
            ))
        },
    );
    Ok(Exit::Ok)
}

fn duplicate(email: &Email, existing: &str) -> anyhow::Error {
    let detail = if existing == email.as_str() {
        String::new()
    } else {
        format!(" (as '{existing}'; emails are compared ignoring letter case)")
    };
    coded(
        Exit::Usage,
        format!(
            "an account with email '{}' already exists{detail}; use `dbtool users passwd` to change its password",
            email.as_str()
        ),
    )
}

async fn passwd(ctx: &Ctx, email: &str, pw: NewPassword) -> Result<Exit> {
    let db = connect_admin_for(ctx, Access::Write, TABLE, App::Avatar).await?;
    let user = lookup(&db, email).await?;
    let shown = user.email.clone();
    let password = new_password(&shown, pw.password_stdin).await?;
    let password_hash = hash(password, pw.cost).await?;
    let view = UserView {
        user: AvatarUser::from(&user),
        changed: true,
    };
    svc::set_password(&db, user, password_hash)
        .await
        .context("saving the new password")?;
    ctx.out.emit(&view, |o| {
        o.done(&format!("changed the password of {shown}"))
    });
    Ok(Exit::Ok)
}

async fn set_active(ctx: &Ctx, email: &str, active: bool) -> Result<Exit> {
    let db = connect_admin_for(ctx, Access::Write, TABLE, App::Avatar).await?;
    let user = lookup(&db, email).await?;
    let changed = user.is_active != active;
    let user = svc::set_active(&db, user, active)
        .await
        .context("saving the account")?;
    let state = if active { "active" } else { "inactive" };
    let verb = if active { "activated" } else { "deactivated" };
    let view = UserView {
        user: user.clone(),
        changed,
    };
    ctx.out.emit(&view, |o| {
        o.done(&if changed {
            format!("{verb} user {}", user.email)
        } else {
            format!("user {} is already {state}; nothing changed", user.email)
        })
    });
    Ok(Exit::Ok)
}

#[derive(Serialize)]
struct CheckView<'a> {
    email: &'a str,
    matches: bool,
    is_active: bool,
}

async fn check_password(ctx: &Ctx, email: &str, from_stdin: bool) -> Result<Exit> {
    let db = connect_admin_for(ctx, Access::ReadOnly, TABLE, App::Avatar).await?;
    let user = lookup(&db, email).await?;
    let password = if from_stdin {
        password_from_stdin().await?
    } else if crate::prompt::interactive() {
        prompt_hidden(format!("Password for {}: ", user.email)).await?
    } else {
        return Err(no_terminal());
    };
    if password.is_empty() {
        return Err(coded(Exit::Usage, "the password is empty"));
    }
    let stored = user.password_hash.clone();
    let matches = tokio::task::spawn_blocking(move || svc::verify_password(&password, &stored))
        .await
        .context("checking the password")?
        .map_err(|e| {
            coded(
                Exit::Failure,
                format!(
                    "the stored password hash of {} is not a usable bcrypt hash ({e}); set a new password with `dbtool users passwd`",
                    user.email
                ),
            )
        })?;
    let view = CheckView {
        email: &user.email,
        matches,
        is_active: user.is_active,
    };
    let inactive = if user.is_active {
        ""
    } else {
        " (the account is deactivated, so it cannot log in)"
    };
    ctx.out.emit(&view, |o| {
        o.done(&if matches {
            format!("password matches for {}{inactive}", user.email)
        } else {
            format!("password does NOT match for {}", user.email)
        })
    });
    Ok(if matches { Exit::Ok } else { Exit::Mismatch })
}

#[derive(Serialize)]
struct ListView<T: Serialize> {
    app: App,
    users: Vec<T>,
}

fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.as_ref().map(human_time).unwrap_or_else(|| "never".into())
}

async fn list(ctx: &Ctx) -> Result<Exit> {
    // Both apps have accounts: the database says whose they are.
    let (db, app) = connect_admin_app(ctx, Access::ReadOnly, TABLE).await?;
    match app {
        App::Avatar => {
            let users = svc::list_avatar(&db)
                .await
                .context("reading the accounts")?;
            let view = ListView { app, users };
            ctx.out.emit(&view, |o| {
                let rows = view
                    .users
                    .iter()
                    .map(|u| {
                        vec![
                            (u.id.to_string(), Tone::Plain),
                            (u.email.clone(), Tone::Plain),
                            if u.is_active {
                                ("yes".into(), Tone::Good)
                            } else {
                                ("no".into(), Tone::Warn)
                            },
                            (human_time(&u.created_at), Tone::Plain),
                            (opt_time(u.last_login), Tone::Plain),
                        ]
                    })
                    .collect();
                o.table(
                    &[
                        Column::id("id"),
                        Column::id("email"),
                        Column::id("active"),
                        Column::id("created"),
                        Column::id("last login"),
                    ],
                    rows,
                );
                o.line(&count(view.users.len(), "account", "accounts"));
            });
        }
        App::Neurachar => {
            let users = svc::list_neurachar(&db)
                .await
                .context("reading the accounts")?;
            let view = ListView { app, users };
            ctx.out.emit(&view, |o| {
                let rows = view
                    .users
                    .iter()
                    .map(|u| {
                        vec![
                            (u.id.to_string(), Tone::Plain),
                            (u.email.clone(), Tone::Plain),
                            (u.username.clone().unwrap_or_default(), Tone::Plain),
                            (u.provider.clone(), Tone::Plain),
                            (human_time(&u.created_at), Tone::Plain),
                            (opt_time(u.last_login_at), Tone::Plain),
                        ]
                    })
                    .collect();
                o.table(
                    &[
                        Column::id("id"),
                        Column::id("email"),
                        Column::id("username"),
                        Column::id("provider"),
                        Column::id("created"),
                        Column::id("last login"),
                    ],
                    rows,
                );
                o.line(&count(view.users.len(), "account", "accounts"));
            });
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(coded(
                Exit::Usage,
                format!("app {other} has no user accounts; use --app avatar or --app neurachar"),
            ))
        }
    }
    Ok(Exit::Ok)
}
