//! Verified stamps: before migrations are recorded as applied without running (stamp,
//! adoption of an Alembic or untracked database, a suggested stamp), the objects they create
//! must exist. Their objects are the difference between two prefixes of the app's snapshot
//! (tables, columns, indexes, primary and foreign keys); without a fitting snapshot, the
//! tables each migration declares.

use super::app::App;
use super::schema::{ForeignKey, Schema, Table};
use super::snapshot;
use crate::StepInfo;
use serde::Serialize;
use std::collections::BTreeSet;

/// An object a migration creates that the database lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub migration: &'static str,
    /// `table settings`, `column users.email`, `index settings.ix_settings_key`, ...
    pub object: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (from {})", self.object, self.migration)
    }
}

/// Every object of a schema, as names that identify it across databases.
fn objects(s: &Schema) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in s.tables.values() {
        table_objects(t, &mut out);
    }
    out
}

fn table_objects(t: &Table, out: &mut BTreeSet<String>) {
    let n = &t.name;
    out.insert(format!("table {n}"));
    for c in &t.columns {
        out.insert(format!("column {n}.{}", c.name));
    }
    if let Some(pk) = &t.primary_key {
        out.insert(format!("primary key {n} ({})", pk.columns.join(", ")));
    }
    for i in &t.indexes {
        // An INVALID index (a failed concurrent build) is never used: it is not there.
        if !i.valid {
            continue;
        }
        // MySQL keeps an index of a foreign key's name for as long as no other index can
        // serve the key, and drops it by itself when one can: it belongs to the key, not to
        // any migration.
        if t.foreign_keys
            .iter()
            .any(|f| f.name.as_deref() == Some(i.name.as_str()))
        {
            continue;
        }
        out.insert(format!("index {n}.{}", i.name));
    }
    for fk in &t.foreign_keys {
        out.insert(format!("foreign key {n}.{}", fk_id(fk)));
    }
}

/// Foreign keys by what they connect: SQLite keeps no names.
fn fk_id(fk: &ForeignKey) -> String {
    fk.target()
}

/// What verification found: the missing objects, and how thorough it could be.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub missing: Vec<Missing>,
    /// False when no snapshot fits this server, so only tables were checked.
    pub thorough: bool,
}

/// The objects of `steps` (migrations of `app`) that `live` lacks. `server` is the live
/// server as [`snapshot::server_kind`] names it.
pub fn verify(
    app: App,
    backend: sea_orm::DbBackend,
    server: &str,
    steps: &[&'static StepInfo],
    live: &Schema,
) -> Verdict {
    let have = objects(live);
    let mut verdict = Verdict {
        missing: Vec::new(),
        thorough: fitting(app, backend, server).is_some(),
    };
    for step in steps {
        verdict.missing.extend(
            step_objects(app, backend, server, step)
                .into_iter()
                .filter(|o| !have.contains(o))
                .map(|object| Missing {
                    migration: step.name,
                    object,
                }),
        );
    }
    verdict
}

pub(crate) fn fitting(
    app: App,
    backend: sea_orm::DbBackend,
    server: &str,
) -> Option<&'static snapshot::Snapshot> {
    snapshot::stored(app, backend).filter(|s| s.fits(server))
}

/// The objects one migration of `app` creates (`table settings`, `index
/// settings.ix_settings_key`, ...): from the snapshot that fits the server, else the tables it
/// declares.
pub fn step_objects(
    app: App,
    backend: sea_orm::DbBackend,
    server: &str,
    step: &StepInfo,
) -> Vec<String> {
    let all = app.steps();
    let Some(k) = all.iter().position(|s| s.name == step.name) else {
        return Vec::new();
    };
    match fitting(app, backend, server) {
        Some(snap) if snap.prefixes.len() > k => {
            let after = objects(&snap.prefixes[k].schema);
            let before = match k {
                0 => BTreeSet::new(),
                _ => objects(&snap.prefixes[k - 1].schema),
            };
            after.difference(&before).cloned().collect()
        }
        _ => step
            .creates_tables
            .iter()
            .map(|t| format!("table {t}"))
            .collect(),
    }
}

/// Which of `step`'s objects `live` has and lacks, for deciding what a half-done step left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepObjects {
    pub present: Vec<String>,
    pub missing: Vec<String>,
}

/// [`StepObjects`] of one migration in the live schema.
pub fn step_presence(
    app: App,
    backend: sea_orm::DbBackend,
    server: &str,
    step: &StepInfo,
    live: &Schema,
) -> StepObjects {
    let have = objects(live);
    let (present, missing) = step_objects(app, backend, server, step)
        .into_iter()
        .partition(|o| have.contains(o));
    StepObjects { present, missing }
}
