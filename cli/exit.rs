//! The exit-code table, in one place: documented in `--help` and the README.

use std::fmt;
use std::process::ExitCode;

/// Why dbtool stopped. The discriminant is the process exit code; every code has exactly one
/// meaning, and the README's table is tested against [`Exit::TABLE`].
///
/// When several conditions hold at once, the code is chosen in this order: a signal (130/143),
/// an internal error (134), then the error that stopped the command. `status --check` reports
/// the first of: half-done step (13), checksum mismatch (14), unknown recorded migrations
/// (15), out-of-order history (16), pending migrations (3). A fleet run exits with its worst
/// outcome: interrupted, then failed targets (20), then refused targets (21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Success, including "nothing to do".
    Ok = 0,
    /// Any error without a more specific code.
    Failure = 1,
    /// Bad command line or bad input value (arguments, targets, URLs, configuration, files).
    Usage = 2,
    /// Migrations are pending: `status --check`, or a command needs one that is not applied.
    Pending = 3,
    /// The migration lock could not be taken within `--lock-timeout`.
    LockTimeout = 4,
    /// A migration failed (and was rolled back where the backend allows).
    MigrationFailed = 5,
    /// The database could not be reached or opened (server down, credentials, TLS, missing
    /// database or SQLite file).
    Connection = 6,
    /// A destructive action needs `--yes` (no terminal to ask on) or was declined.
    NotConfirmed = 7,
    /// The requested key, user or row does not exist.
    NotFound = 8,
    /// `check`: the live schema differs from what the migrations produce (a checksum
    /// mismatch included).
    Drift = 9,
    /// `users check-password`: the password does not match.
    Mismatch = 10,
    /// The database belongs to the other application, or contradicts the given `--app`.
    WrongApp = 11,
    /// A migration step could not get its table lock within `--ddl-lock-timeout`, after
    /// `--ddl-retries` retries; the step changed nothing.
    DdlLockTimeout = 12,
    /// `status --check`: a step that cannot roll back was interrupted and is half-done.
    HalfDone = 13,
    /// `status --check`: an applied migration's code changed after it was applied.
    ChecksumMismatch = 14,
    /// The database records migrations this build does not know (it is ahead of the code).
    UnknownRecorded = 15,
    /// Out-of-order history: a migration is pending while a later one is applied.
    OutOfOrder = 16,
    /// A write command refused a read-only target: a hot standby, a read-only SQLite file or
    /// `mode=ro`, an in-memory SQLite URL.
    ReadOnly = 17,
    /// A migration command refused to run through a transaction-pooling connection pooler
    /// (give a direct URL with `--direct-url`).
    Pooler = 18,
    /// `lint`: a finding at or above `--fail-on`.
    LintFindings = 19,
    /// `fleet`: at least one target failed.
    FleetFailed = 20,
    /// `fleet`: at least one target was refused (locked, wrong app, unreachable, bad
    /// variable), and none failed.
    FleetRefused = 21,
    /// The database user lacks a privilege the command needs.
    PermissionDenied = 22,
    /// Interrupted by SIGINT (Ctrl-C).
    Interrupted = 130,
    /// Terminated by SIGTERM.
    Terminated = 143,
}

impl Exit {
    pub const TABLE: &'static [(Exit, &'static str)] = &[
        (Exit::Ok, "success, including \"already up to date\""),
        (Exit::Failure, "error without a more specific code"),
        (
            Exit::Usage,
            "bad command line, target, URL, configuration or input value",
        ),
        (
            Exit::Pending,
            "migrations are pending (status --check, or a command needs one applied first)",
        ),
        (
            Exit::LockTimeout,
            "another run holds the migration lock, or another process the SQLite file (--lock-timeout)",
        ),
        (
            Exit::MigrationFailed,
            "a migration failed (rolled back where the backend allows)",
        ),
        (
            Exit::Connection,
            "cannot connect: server down, credentials, TLS, missing database or SQLite file",
        ),
        (
            Exit::NotConfirmed,
            "destructive action not confirmed (use --yes)",
        ),
        (Exit::NotFound, "key, user or row not found"),
        (
            Exit::Drift,
            "check: live schema differs from the migrations (or a checksum changed)",
        ),
        (
            Exit::Mismatch,
            "users check-password: password does not match",
        ),
        (
            Exit::WrongApp,
            "the database belongs to the other app, or contradicts --app",
        ),
        (
            Exit::DdlLockTimeout,
            "a step could not get its table lock (--ddl-lock-timeout, --ddl-retries)",
        ),
        (Exit::HalfDone, "status --check: a step is half-done"),
        (
            Exit::ChecksumMismatch,
            "status --check: an applied migration was changed",
        ),
        (
            Exit::UnknownRecorded,
            "the database records migrations this build does not know",
        ),
        (
            Exit::OutOfOrder,
            "out-of-order history: a pending migration precedes an applied one",
        ),
        (
            Exit::ReadOnly,
            "write refused: read-only target (standby, read-only file, in-memory SQLite)",
        ),
        (
            Exit::Pooler,
            "migration refused through a transaction pooler (use --direct-url)",
        ),
        (Exit::LintFindings, "lint: findings at or above --fail-on"),
        (Exit::FleetFailed, "fleet: at least one target failed"),
        (
            Exit::FleetRefused,
            "fleet: targets refused (locked, wrong app, unreachable), none failed",
        ),
        (
            Exit::PermissionDenied,
            "the database user lacks a privilege the command needs",
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
            Exit::WrongApp => "wrong_app",
            Exit::DdlLockTimeout => "ddl_lock_timeout",
            Exit::HalfDone => "half_done",
            Exit::ChecksumMismatch => "checksum_mismatch",
            Exit::UnknownRecorded => "unknown_recorded",
            Exit::OutOfOrder => "out_of_order",
            Exit::ReadOnly => "read_only",
            Exit::Pooler => "pooler",
            Exit::LintFindings => "lint_findings",
            Exit::FleetFailed => "fleet_failed",
            Exit::FleetRefused => "fleet_refused",
            Exit::PermissionDenied => "permission_denied",
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
    /// More for `--json` error documents (what a failed run did, ...).
    pub details: Option<serde_json::Value>,
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
        details: None,
    })
}

/// Like [`coded`], with details for the `--json` error document.
pub fn coded_with(
    exit: Exit,
    message: impl Into<String>,
    details: serde_json::Value,
) -> anyhow::Error {
    anyhow::Error::new(Coded {
        exit,
        message: message.into(),
        details: Some(details),
    })
}

/// The details an error chain carries for `--json`, if any.
pub fn details_of(err: &anyhow::Error) -> Option<&serde_json::Value> {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>())
        .and_then(|c| c.details.as_ref())
}

/// The exit code an error chain asks for (generic failure when none does).
pub fn exit_of(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>().map(|c| c.exit))
        .unwrap_or(Exit::Failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_documents_every_exit_code() {
        let readme = include_str!("../README.md");
        for (e, what) in Exit::TABLE {
            let row = format!("| {} | {} |", e.code(), what.replace('|', "\\|"));
            assert!(
                readme.contains(&row),
                "README's exit-code table lacks the row `{row}`"
            );
        }
        let codes: std::collections::HashSet<u8> =
            Exit::TABLE.iter().map(|(e, _)| e.code()).collect();
        assert_eq!(codes.len(), Exit::TABLE.len(), "two meanings share a code");
        assert!(readme.contains("| 134 |"));
    }

    #[test]
    fn the_outermost_code_wins() {
        let inner = coded(Exit::Connection, "cannot connect");
        assert_eq!(exit_of(&inner), Exit::Connection);
        let plain = anyhow::anyhow!("plain");
        assert_eq!(exit_of(&plain), Exit::Failure);
        let wrapped = coded(Exit::NotFound, "outer").context("more");
        assert_eq!(exit_of(&wrapped), Exit::NotFound);
    }
}
