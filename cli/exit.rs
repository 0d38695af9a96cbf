//! The exit-code table, in one place: documented in `--help` and the README.

use std::fmt;
use std::process::ExitCode;

/// Why dbtool stopped. The discriminant is the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success, including "nothing to do".
    Ok = 0,
    /// Any error without a more specific code.
    Failure = 1,
    /// Bad command line or bad input value.
    Usage = 2,
    /// `status --check`: migrations are pending.
    Pending = 3,
    /// The migration lock could not be taken within `--lock-timeout`.
    LockTimeout = 4,
    /// A migration failed (and was rolled back where the backend allows).
    MigrationFailed = 5,
    /// The database could not be reached, or refused the connection.
    Connection = 6,
    /// A destructive action needs `--yes` (no terminal to ask on) or was declined.
    NotConfirmed = 7,
    /// The requested key, user or row does not exist.
    NotFound = 8,
    /// `check`: the live schema differs from what the migrations produce.
    Drift = 9,
    /// `users check-password`: the password does not match.
    Mismatch = 10,
    /// Interrupted by SIGINT (Ctrl-C).
    Interrupted = 130,
    /// Terminated by SIGTERM.
    Terminated = 143,
}

impl Exit {
    pub const TABLE: &'static [(Exit, &'static str)] = &[
        (Exit::Ok, "success, including \"already up to date\""),
        (Exit::Failure, "error without a more specific code"),
        (Exit::Usage, "bad command line, target or input value"),
        (Exit::Pending, "status --check: migrations are pending"),
        (
            Exit::LockTimeout,
            "another run holds the migration lock (--lock-timeout)",
        ),
        (
            Exit::MigrationFailed,
            "a migration failed (rolled back on PostgreSQL and SQLite)",
        ),
        (
            Exit::Connection,
            "cannot connect: bad URL, server down, credentials, missing database",
        ),
        (
            Exit::NotConfirmed,
            "destructive action not confirmed (use --yes)",
        ),
        (Exit::NotFound, "key, user or row not found"),
        (
            Exit::Drift,
            "check: live schema differs from the migrations",
        ),
        (
            Exit::Mismatch,
            "users check-password: password does not match",
        ),
        (Exit::Interrupted, "interrupted by SIGINT (Ctrl-C)"),
        (Exit::Terminated, "terminated by SIGTERM"),
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// A stable machine name for `--json` error documents.
    pub fn kind(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Failure => "error",
            Exit::Usage => "usage",
            Exit::Pending => "pending",
            Exit::LockTimeout => "lock_timeout",
            Exit::MigrationFailed => "migration_failed",
            Exit::Connection => "connection",
            Exit::NotConfirmed => "not_confirmed",
            Exit::NotFound => "not_found",
            Exit::Drift => "drift",
            Exit::Mismatch => "mismatch",
            Exit::Interrupted => "interrupted",
            Exit::Terminated => "terminated",
        }
    }

    /// The exit-code table as plain text for `--help`.
    pub fn help_text() -> String {
        let mut s = String::from("Exit codes:\n");
        for (e, what) in Self::TABLE {
            s.push_str(&format!("  {:>3}  {what}\n", e.code()));
        }
        // Not an `Exit`: a panic aborts the process (101 in debug builds).
        s.push_str("  134  internal error: a bug in dbtool, please report it\n");
        s
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// An error that decides the exit code. Anywhere in an `anyhow` chain, the outermost one wins.
#[derive(Debug)]
pub struct Coded {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// Builds an `anyhow::Error` carrying an exit code.
pub fn coded(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        exit,
        message: message.into(),
    })
}

/// The exit code an error chain asks for (generic failure when none does).
pub fn exit_of(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>().map(|c| c.exit))
        .unwrap_or(Exit::Failure)
}

/// Attaches an exit code to a `Result`'s error, keeping its whole message chain.
pub trait WithExit<T> {
    fn exit(self, exit: Exit) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> WithExit<T> for Result<T, E> {
    fn exit(self, exit: Exit) -> anyhow::Result<T> {
        self.map_err(|e| coded(exit, format!("{:#}", e.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_documents_every_exit_code() {
        let readme = include_str!("../README.md");
        for (e, _) in Exit::TABLE {
            assert!(
                readme.contains(&format!("| {} |", e.code())),
                "README's exit-code table lacks {}",
                e.code()
            );
        }
        assert!(readme.contains("| 134 |"));
    }

    #[test]
    fn the_outermost_code_wins() {
        let inner = coded(Exit::Connection, "cannot connect");
        assert_eq!(exit_of(&inner), Exit::Connection);
        let plain = anyhow::anyhow!("plain");
        assert_eq!(exit_of(&plain), Exit::Failure);
        let wrapped: anyhow::Result<()> = Err(anyhow::anyhow!("x")).exit(Exit::NotFound);
        assert_eq!(exit_of(&wrapped.unwrap_err()), Exit::NotFound);
    }
}
