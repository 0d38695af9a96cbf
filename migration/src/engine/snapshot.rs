//! The expected schema of each app on each backend after every prefix of its migrations,
//! generated from the migrations and kept in the repository (`migration/snapshots/`). `check`
//! compares a live database with the snapshot of what its applied migrations make, with no
//! scratch database (so no CREATEDB right); `stamp` and adoption verify the objects of the
//! migrations they record against the difference between two prefixes.
//!
//! The snapshots name the server they were made on: introspection spells some types per
//! server (`int(11)` on MariaDB, `int` on MySQL 8), so a snapshot is used only for a server of
//! the same kind and version, and callers fall back to a scratch database otherwise. A test
//! regenerates them and fails on any difference, naming [`REGENERATE`].

use super::app::App;
use super::schema::{self, Schema};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use sea_orm_migration::SchemaManager;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The command that rewrites the snapshot files from the migrations.
pub const REGENERATE: &str = "DBTOOL_UPDATE_SNAPSHOTS=1 tests/run -- snapshots";

/// The schema after each prefix of one app's migrations on one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub app: String,
    pub backend: String,
    /// The server it was made on, as [`server_kind`] names it (`PostgreSQL 15`).
    pub server: String,
    /// `prefixes[k]` is the schema after the first `k + 1` migrations.
    pub prefixes: Vec<Prefix>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefix {
    pub migrations: Vec<String>,
    pub schema: Schema,
}

/// `avatar.postgres.json`
pub fn file_name(app: App, backend: DbBackend) -> String {
    format!("{}.{}.json", app.name(), backend_name(backend))
}

pub fn backend_name(b: DbBackend) -> &'static str {
    match b {
        DbBackend::Postgres => "postgres",
        DbBackend::MySql => "mysql",
        _ => "sqlite",
    }
}

fn stored_text(app: App, backend: DbBackend) -> Option<&'static str> {
    Some(match (app, backend) {
        (App::Avatar, DbBackend::Postgres) => include_str!("../../snapshots/avatar.postgres.json"),
        (App::Avatar, DbBackend::MySql) => include_str!("../../snapshots/avatar.mysql.json"),
        (App::Avatar, DbBackend::Sqlite) => include_str!("../../snapshots/avatar.sqlite.json"),
        (App::Neurachar, DbBackend::Postgres) => {
            include_str!("../../snapshots/neurachar.postgres.json")
        }
        (App::Neurachar, DbBackend::MySql) => include_str!("../../snapshots/neurachar.mysql.json"),
        (App::Neurachar, DbBackend::Sqlite) => {
            include_str!("../../snapshots/neurachar.sqlite.json")
        }
        _ => return None,
    })
}

/// The stored snapshot of `app` on `backend`, if the repository has one that parses.
pub fn stored(app: App, backend: DbBackend) -> Option<&'static Snapshot> {
    type Parsed = Vec<((App, &'static str), Option<Snapshot>)>;
    static CACHE: OnceLock<Parsed> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        let mut v = Vec::new();
        for a in App::REAL {
            for b in [DbBackend::Postgres, DbBackend::MySql, DbBackend::Sqlite] {
                let snap = stored_text(a, b).and_then(|t| serde_json::from_str(t).ok());
                v.push(((a, backend_name(b)), snap));
            }
        }
        v
    });
    all.iter()
        .find(|((a, b), _)| *a == app && *b == backend_name(backend))
        .and_then(|(_, s)| s.as_ref())
}

impl Snapshot {
    /// The schema made by exactly the migrations `applied` (in any order), when that is a
    /// prefix of the app's migrations: None otherwise (out-of-order history, or a snapshot
    /// that does not know a migration).
    pub fn at(&self, applied: &[&str]) -> Option<Schema> {
        if applied.is_empty() {
            return Some(Schema::default());
        }
        let p = self.prefixes.get(applied.len() - 1)?;
        let mut want: Vec<&str> = applied.to_vec();
        let mut have: Vec<&str> = p.migrations.iter().map(String::as_str).collect();
        want.sort_unstable();
        have.sort_unstable();
        (want == have).then(|| p.schema.clone())
    }

    /// Whether this snapshot is valid for the live server `server` (as [`server_kind`]).
    pub fn fits(&self, server: &str) -> bool {
        self.server == server
    }
}

/// The kind and version of the server that decides how introspection spells things:
/// `PostgreSQL 15`, `MariaDB 10.11`, `MySQL 8.0`, `SQLite 3`.
pub async fn server_kind<C: ConnectionTrait>(db: &C) -> Result<String, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT current_setting('server_version_num')",
        DbBackend::MySql => "SELECT CAST(VERSION() AS CHAR)",
        _ => "SELECT sqlite_version()",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("no row from {sql}")))?;
    let v: String = row.try_get_by_index(0)?;
    Ok(match backend {
        DbBackend::Postgres => {
            let n: u32 = v.trim().parse().unwrap_or(0);
            format!("PostgreSQL {}", n / 10000)
        }
        DbBackend::MySql => {
            let kind = if v.to_ascii_lowercase().contains("mariadb") {
                "MariaDB"
            } else {
                "MySQL"
            };
            let mm: Vec<&str> = v.split(['.', '-']).take(2).collect();
            format!("{kind} {}", mm.join("."))
        }
        _ => format!("SQLite {}", v.split('.').next().unwrap_or("3")),
    })
}

/// Builds the snapshot of `app` by applying its migrations one by one to the empty
/// database behind `db` and reading the schema after each.
pub async fn generate(app: App, db: &DatabaseConnection) -> Result<Snapshot, DbErr> {
    let backend = db.get_database_backend();
    let server = server_kind(db).await?;
    let manager = SchemaManager::new(db);
    let mut prefixes = Vec::new();
    let mut names = Vec::new();
    for step in app.objects() {
        step.up(&manager).await.map_err(|e| {
            DbErr::Custom(format!(
                "applying {} for the snapshot: {e}",
                step.info().name
            ))
        })?;
        names.push(step.info().name.to_owned());
        prefixes.push(Prefix {
            migrations: names.clone(),
            schema: schema::introspect(db).await?,
        });
    }
    Ok(Snapshot {
        app: app.name().to_owned(),
        backend: backend_name(backend).to_owned(),
        server,
        prefixes,
    })
}

/// The snapshot as it is stored: pretty JSON with a final newline.
pub fn to_file_text(s: &Snapshot) -> String {
    let mut t = serde_json::to_string_pretty(s).unwrap_or_default();
    t.push('\n');
    t
}
