//! Database errors as people read them: the server's message once, with its SQLSTATE (or
//! MySQL/SQLite code), without the driver's wrapping, and the exit code that fits.

use crate::exit::Exit;
use sea_orm::{DbErr, RuntimeErr};

/// A database error described for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub message: String,
    pub code: Option<String>,
    pub exit: Exit,
}

fn sqlx_error(e: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e.as_ref()),
        _ => None,
    }
}

/// The error's own text, once: the server's message (with its code), or SeaORM's.
pub fn describe(e: &DbErr) -> Described {
    if let Some(sea_orm::sqlx::Error::Database(d)) = sqlx_error(e) {
        let code = d.code().map(|c| c.into_owned());
        let message = d.message().trim().to_owned();
        let exit = match code.as_deref() {
            Some("42501") | Some("1142") | Some("1044") | Some("1227") => Exit::PermissionDenied,
            Some("25006") | Some("8") | Some("1032") => Exit::ReadOnly,
            _ => Exit::Failure,
        };
        let shown = match &code {
            Some(c) if c.chars().all(|x| x.is_ascii_digit()) && c.len() <= 4 => {
                format!("{message} (error {c})")
            }
            Some(c) => format!("{message} (SQLSTATE {c})"),
            None => message,
        };
        return Described {
            message: shown,
            code,
            exit,
        };
    }
    let text = match e {
        DbErr::Custom(s) | DbErr::Migration(s) => s.clone(),
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => s.to_string(),
        other => other.to_string(),
    };
    Described {
        message: text.replace('\n', " "),
        code: None,
        exit: Exit::Failure,
    }
}

/// [`describe`]'s message alone.
pub fn one_line(e: &DbErr) -> String {
    describe(e).message
}
