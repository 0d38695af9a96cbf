//! What a database says about its migrations, read without writing anything: the tables of
//! the current schema, SeaORM's tracking rows, Alembic's revision, dbtool's own state rows
//! (in-progress markers, checksums), and the shape of `users` for recognising the app. Then
//! the same facts per migration of one app ([`Overview`]).

use super::app::App;
use super::catalog;
use super::record::{self, StateRow};
use crate::StepInfo;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryOrder, Statement};
use sea_orm_migration::seaql_migrations;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

pub const TRACKING_TABLE: &str = "seaql_migrations";
pub const ALEMBIC_TABLE: &str = "alembic_version";

/// One row of the tracking table.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub version: String,
    pub applied_at: DateTime<Utc>,
}

/// What the database says about migrations, read without writing anything.
#[derive(Debug, Clone, Default)]
pub struct DbState {
    pub tables: BTreeSet<String>,
    pub tracking_table: bool,
    pub recorded: Vec<Recorded>,
    /// `alembic_version.version_num`, when that table exists and has a row.
    pub alembic: Option<String>,
    /// dbtool's state rows (markers, checksums), by migration name.
    pub state_rows: HashMap<String, StateRow>,
    /// The columns of `users`, when that table exists (both apps have one).
    pub users_columns: BTreeSet<String>,
    /// Why dbtool's state table could not be read (a user without the privilege), when it
    /// could not: then markers and checksums are unknown.
    pub state_unreadable: Option<String>,
}

impl DbState {
    /// A migration that was interrupted halfway (a step that cannot roll back), if any.
    pub fn marker(&self) -> Option<(&str, super::plan::Direction)> {
        self.state_rows
            .iter()
            .find_map(|(v, r)| r.in_progress.map(|d| (v.as_str(), d)))
    }
}

/// The tracking table's rows, in version order.
pub(crate) async fn read_recorded<C: ConnectionTrait>(db: &C) -> Result<Vec<Recorded>, DbErr> {
    Ok(seaql_migrations::Entity::find()
        .order_by_asc(seaql_migrations::Column::Version)
        .all(db)
        .await
        .map_err(record::tracking_shape_error)?
        .into_iter()
        .map(|m| Recorded {
            applied_at: DateTime::from_timestamp(m.applied_at, 0).unwrap_or_default(),
            version: m.version,
        })
        .collect())
}

/// Reads tables, tracking rows, Alembic's revision and dbtool's state: a handful of queries,
/// no writes, nothing created.
pub async fn read_state<C: ConnectionTrait>(db: &C) -> Result<DbState, DbErr> {
    let tables = catalog::table_names(db).await?;
    let tracking_table = tables.contains(TRACKING_TABLE);
    let recorded = if tracking_table {
        read_recorded(db).await?
    } else {
        Vec::new()
    };
    let alembic = if tables.contains(ALEMBIC_TABLE) {
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT version_num FROM alembic_version".to_owned(),
            ))
            .await?;
        row.map(|r| r.try_get_by_index::<String>(0)).transpose()?
    } else {
        None
    };
    let mut state_unreadable = None;
    let state_rows = if tables.contains(record::STATE_TABLE) {
        match record::read_state_rows(db).await {
            Ok(rows) => rows,
            // A read-only user of the application may see its tables and not dbtool's.
            Err(e) if is_permission_denied(&e) => {
                state_unreadable = Some(e.to_string());
                HashMap::new()
            }
            Err(e) => return Err(e),
        }
    } else {
        HashMap::new()
    };
    // The columns of `users` tell the apps apart when nothing else does; tracking rows that
    // name an app's migrations already do (and recognition then looks no further), so the
    // round trip is saved on every migrated database.
    let named_by_rows = recorded.iter().any(|r: &Recorded| {
        super::app::App::REAL
            .iter()
            .any(|a| a.steps().iter().any(|s| s.name == r.version))
    });
    let users_columns = if tables.contains("users") && !named_by_rows {
        catalog::column_names(db, "users").await?
    } else {
        BTreeSet::new()
    };
    Ok(DbState {
        tables,
        tracking_table,
        recorded,
        alembic,
        state_rows,
        users_columns,
        state_unreadable,
    })
}

/// SQLSTATE 42501 (PostgreSQL), errors 1142/1143 (MySQL: command or column denied).
pub(crate) fn is_permission_denied(e: &DbErr) -> bool {
    matches!(
        super::run::db_code(e).as_deref(),
        Some("42501") | Some("1142") | Some("1143")
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Applied,
    Pending,
    /// Interrupted halfway in a direction; the next write command finishes it.
    HalfDone,
    /// Recorded in the database but not part of this build.
    Unknown,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Applied => "applied",
            StepState::Pending => "pending",
            StepState::HalfDone => "half-done",
            StepState::Unknown => "unknown",
        }
    }
}

/// How the database relates to Alembic, when it carries `alembic_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Alembic {
    /// Not recorded by dbtool yet: dbtool adopts it, taking these migrations as applied.
    Adoptable {
        revision: String,
        migrations: Vec<&'static str>,
    },
    /// A revision this build does not know.
    Unknown { revision: String },
}

/// The state of every migration of one app in one database.
#[derive(Debug, Clone)]
pub struct Overview {
    pub app: App,
    pub steps: Vec<&'static StepInfo>,
    /// Applied: recorded, or implied by an adoptable Alembic revision.
    pub applied: Vec<bool>,
    /// Recorded in the tracking table (what `applied` is once Alembic is adopted).
    pub recorded: Vec<bool>,
    pub applied_at: Vec<Option<DateTime<Utc>>>,
    /// Recorded versions that belong to no known migration of this app.
    pub unknown: Vec<Recorded>,
    /// Recorded versions that belong to another app.
    pub foreign: Option<(App, Vec<String>)>,
    pub alembic: Option<Alembic>,
    pub tracking_table: bool,
    /// A step interrupted halfway: its index and the direction it was going.
    pub half_done: Option<(usize, super::plan::Direction)>,
}

impl Overview {
    pub fn new(app: App, state: &DbState) -> Overview {
        let steps = app.steps();
        let by_version: HashMap<&str, &Recorded> = state
            .recorded
            .iter()
            .map(|r| (r.version.as_str(), r))
            .collect();
        let recorded: Vec<bool> = steps
            .iter()
            .map(|s| by_version.contains_key(s.name))
            .collect();
        let mut applied = recorded.clone();
        let applied_at = steps
            .iter()
            .map(|s| by_version.get(s.name).map(|r| r.applied_at))
            .collect();
        let mine: BTreeSet<&str> = steps.iter().map(|s| s.name).collect();
        let mut foreign = None;
        for other in App::REAL.into_iter().filter(|a| *a != app) {
            let theirs: BTreeSet<&str> = other.steps().iter().map(|s| s.name).collect();
            let hits: Vec<String> = state
                .recorded
                .iter()
                .filter(|r| theirs.contains(r.version.as_str()))
                .map(|r| r.version.clone())
                .collect();
            if !hits.is_empty() {
                foreign = Some((other, hits));
                break;
            }
        }
        let unknown = state
            .recorded
            .iter()
            .filter(|r| !mine.contains(r.version.as_str()))
            .filter(|r| {
                foreign
                    .as_ref()
                    .is_none_or(|(_, f)| !f.contains(&r.version))
            })
            .cloned()
            .collect();
        let nothing_recorded = !recorded.iter().any(|a| *a);
        let alembic = match &state.alembic {
            Some(rev) if app.has_aliases() && nothing_recorded => {
                match steps.iter().position(|s| s.alias == Some(rev.as_str())) {
                    Some(i) => {
                        for a in applied.iter_mut().take(i + 1) {
                            *a = true;
                        }
                        Some(Alembic::Adoptable {
                            revision: rev.clone(),
                            migrations: steps[..=i].iter().map(|s| s.name).collect(),
                        })
                    }
                    None => Some(Alembic::Unknown {
                        revision: rev.clone(),
                    }),
                }
            }
            _ => None,
        };
        let half_done = state.marker().and_then(|(version, direction)| {
            steps
                .iter()
                .position(|s| s.name == version)
                .map(|i| (i, direction))
        });
        Overview {
            app,
            steps,
            applied,
            recorded,
            applied_at,
            unknown,
            foreign,
            alembic,
            tracking_table: state.tracking_table,
            half_done,
        }
    }

    /// How many migrations from the start up to the last applied one (0 = base).
    pub fn position(&self) -> usize {
        self.applied.iter().rposition(|a| *a).map_or(0, |i| i + 1)
    }

    pub fn current(&self) -> Option<&'static StepInfo> {
        self.position().checked_sub(1).map(|i| self.steps[i])
    }

    pub fn pending(&self) -> usize {
        self.applied.iter().filter(|a| !**a).count()
    }

    /// Pending migrations that come before an applied one (a gap in the history).
    pub fn out_of_order(&self) -> Vec<&'static StepInfo> {
        let pos = self.position();
        (0..pos)
            .filter(|i| !self.applied[*i])
            .map(|i| self.steps[i])
            .collect()
    }

    /// The state of step `i` as `status` shows it.
    pub fn step_state(&self, i: usize) -> StepState {
        match self.half_done {
            Some((h, _)) if h == i => StepState::HalfDone,
            _ if self.applied[i] => StepState::Applied,
            _ => StepState::Pending,
        }
    }

    /// The index of the migration called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }
}

/// The name people should type for a migration: its Alembic alias when it has one.
pub fn short_name(s: &StepInfo) -> &'static str {
    s.alias.unwrap_or(s.name)
}

/// `name (alias)`, or just the name.
pub fn describe(s: &StepInfo) -> String {
    match s.alias {
        Some(a) => format!("{} ({a})", s.name),
        None => s.name.to_owned(),
    }
}
