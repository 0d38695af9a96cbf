//! Which app a database belongs to, from what is in it: tracking rows first, then Alembic's
//! revision, then the shape of the tables. Both apps have a `users` table, so its columns
//! count, not its name.

use super::app::App;
use super::error::{Error, Evidence};
use super::state::DbState;

/// How the engine chooses the app of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppChoice {
    /// The caller says which; a database of the other app is refused.
    Given(App),
    /// Recognised from the database; an empty database gets `default`.
    Recognise { default: App },
}

/// How the app of a run was chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Chosen {
    Given,
    /// Recognised from what the database holds.
    Recognised {
        evidence: Vec<String>,
    },
    /// The database is empty: the configured default.
    Default,
}

/// Tables and `users` columns that only one app has.
fn signatures(app: App) -> (&'static [&'static str], &'static [&'static str]) {
    match app {
        App::Avatar => (&["settings"], &["password_hash", "is_active", "last_login"]),
        App::Neurachar => (
            &["email_login_codes", "characters", "chats", "messages"],
            &["username", "provider", "avatar_url", "last_login_at"],
        ),
        #[cfg(feature = "fixtures")]
        App::Fixture => (&["alpha", "beta", "gamma"], &[]),
    }
}

fn all_apps() -> Vec<App> {
    #[allow(unused_mut)]
    let mut v = App::REAL.to_vec();
    #[cfg(feature = "fixtures")]
    v.push(App::Fixture);
    v
}

/// What in the database points at `app`.
fn evidence_for(app: App, state: &DbState) -> Vec<String> {
    let names: Vec<&str> = app.steps().iter().map(|s| s.name).collect();
    let mut ev: Vec<String> = state
        .recorded
        .iter()
        .filter(|r| names.contains(&r.version.as_str()))
        .map(|r| format!("tracking row {}", r.version))
        .take(1)
        .collect();
    if let Some(rev) = &state.alembic {
        if app.steps().iter().any(|s| s.alias == Some(rev.as_str())) {
            ev.push(format!("alembic_version {rev}"));
        }
    }
    let (tables, columns) = signatures(app);
    ev.extend(
        tables
            .iter()
            .filter(|t| state.tables.contains(**t))
            .map(|t| format!("table {t}")),
    );
    ev.extend(
        columns
            .iter()
            .filter(|c| state.users_columns.contains(**c))
            .map(|c| format!("column users.{c}")),
    );
    ev
}

/// The app of the database, as far as its contents say: None for an empty database.
pub fn recognise(state: &DbState) -> Result<Option<(App, Vec<String>)>, Error> {
    // Tracking rows are the strongest evidence: they name migrations.
    let by_rows: Vec<App> = all_apps()
        .into_iter()
        .filter(|a| {
            let names: Vec<&str> = a.steps().iter().map(|s| s.name).collect();
            state
                .recorded
                .iter()
                .any(|r| names.contains(&r.version.as_str()))
        })
        .collect();
    let candidates = if by_rows.is_empty() {
        all_apps()
    } else {
        by_rows
    };
    let found: Vec<(App, Vec<String>)> = candidates
        .into_iter()
        .map(|a| (a, evidence_for(a, state)))
        .filter(|(_, ev)| !ev.is_empty())
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(Error::AmbiguousApp {
            evidence: Evidence(
                found
                    .iter()
                    .map(|(a, ev)| format!("{a}: {}", ev.join(", ")))
                    .collect(),
            ),
        }),
    }
}

/// Chooses the app for a run: the given one unless the database contradicts it, otherwise
/// the recognised one, otherwise the default.
pub fn choose(choice: AppChoice, state: &DbState) -> Result<(App, Chosen), Error> {
    match choice {
        AppChoice::Given(app) => {
            match recognise(state) {
                Ok(Some((found, evidence))) if found != app => Err(Error::WrongApp {
                    given: app,
                    found,
                    evidence: Evidence(evidence),
                }),
                // A database with objects of both apps: the caller named one, so it decides,
                // as long as the other app has no tracking rows (those the engine refuses).
                _ => Ok((app, Chosen::Given)),
            }
        }
        AppChoice::Recognise { default } => match recognise(state)? {
            Some((found, evidence)) => Ok((found, Chosen::Recognised { evidence })),
            None => Ok((default, Chosen::Default)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::state::Recorded;

    fn state(tables: &[&str], users: &[&str], rows: &[&str]) -> DbState {
        DbState {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            users_columns: users.iter().map(|t| t.to_string()).collect(),
            recorded: rows
                .iter()
                .map(|r| Recorded {
                    version: r.to_string(),
                    applied_at: chrono::DateTime::UNIX_EPOCH,
                })
                .collect(),
            ..DbState::default()
        }
    }

    #[test]
    fn recognises_by_columns_not_only_names() {
        let avatar_users = state(
            &["users"],
            &["id", "email", "password_hash", "is_active"],
            &[],
        );
        assert_eq!(recognise(&avatar_users).unwrap().unwrap().0, App::Avatar);
        let nc_users = state(&["users"], &["id", "email", "username", "provider"], &[]);
        assert_eq!(recognise(&nc_users).unwrap().unwrap().0, App::Neurachar);
        assert!(recognise(&state(&[], &[], &[])).unwrap().is_none());
    }

    #[test]
    fn rows_beat_shapes_and_contradictions_are_refused() {
        let s = state(
            &["users", "seaql_migrations"],
            &["password_hash"],
            &["m20251212_000001_create_users"],
        );
        assert_eq!(recognise(&s).unwrap().unwrap().0, App::Neurachar);
        let nc = state(&["users", "chats"], &["username"], &[]);
        assert!(matches!(
            choose(AppChoice::Given(App::Avatar), &nc),
            Err(Error::WrongApp {
                found: App::Neurachar,
                ..
            })
        ));
        assert_eq!(
            choose(
                AppChoice::Recognise {
                    default: App::Avatar
                },
                &nc
            )
            .unwrap()
            .0,
            App::Neurachar
        );
        let mixed = state(&["settings", "chats"], &[], &[]);
        assert!(matches!(
            choose(
                AppChoice::Recognise {
                    default: App::Avatar
                },
                &mixed
            ),
            Err(Error::AmbiguousApp { .. })
        ));
    }
}
