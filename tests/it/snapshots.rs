//! The expected-schema snapshots in `migration/snapshots/` (what `check` compares with and
//! what verified stamps take a migration's objects from) are exactly what the migrations
//! make: each is regenerated here on a fresh database of its backend and compared with the
//! stored file. `DBTOOL_UPDATE_SNAPSHOTS=1` writes the files instead (see the message).

use crate::common::{Backend, TestDb};
use migration::engine::snapshot::{self, Snapshot};
use migration::App;
use sea_orm::DbBackend;
use std::path::PathBuf;

fn file(app: App, backend: DbBackend) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migration/snapshots")
        .join(snapshot::file_name(app, backend))
}

async fn regenerate(app: App, backend: Backend) {
    let db = TestDb::new(backend, &format!("snapshot_{}", app.name()));
    let conn = db.connect().await;
    let made = snapshot::generate(app, &conn).await.expect("generate");
    conn.close().await.ok();
    let path = file(app, db.db_backend());
    let text = snapshot::to_file_text(&made);
    if std::env::var_os("DBTOOL_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).expect("write the snapshot");
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    let parsed: Option<Snapshot> = serde_json::from_str(&stored).ok();
    assert!(
        parsed.as_ref() == Some(&made),
        "{} is not what the migrations make on {} (a migration was added or changed): \
         regenerate it with `{}` and commit the result",
        path.display(),
        made.server,
        snapshot::REGENERATE
    );
    // The copy compiled into the engine is the same file.
    assert_eq!(
        snapshot::stored(app, db.db_backend()),
        Some(&made),
        "rebuild after regenerating: the engine embeds the snapshot files"
    );
    assert_eq!(made.prefixes.len(), app.steps().len());
}

macro_rules! snapshot_tests {
    ($($name:ident: $app:expr, $backend:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                regenerate($app, $backend).await
            }
        )*
    };
}

snapshot_tests! {
    avatar_postgres: App::Avatar, Backend::Postgres;
    avatar_mysql: App::Avatar, Backend::MySql;
    avatar_sqlite: App::Avatar, Backend::Sqlite;
    neurachar_postgres: App::Neurachar, Backend::Postgres;
    neurachar_mysql: App::Neurachar, Backend::MySql;
    neurachar_sqlite: App::Neurachar, Backend::Sqlite;
}
