//! Migration control through the real binary on every backend: upgrade/downgrade/status,
//! every target form, stamp, the legacy stamp-then-upgrade case, Alembic adoption, JSON
//! output and exit codes.

use crate::common::{Backend, TestDb};
use crate::on_all_backends;

const A1: &str = "m20260130_093115_initial_migration";
const A2: &str = "m20260130_113328_create_settings_table";
/// dbtool's own step after the Alembic head (no alias): widens settings.value on MySQL.
const A3: &str = "m20261201_000001_widen_settings_value";

/// Versions recorded in the tracking table (empty when it does not exist).
pub async fn recorded(db: &TestDb) -> Vec<String> {
    if !db.tables().await.contains(&"seaql_migrations".to_string()) {
        return Vec::new();
    }
    db.strings("SELECT version FROM seaql_migrations ORDER BY version")
        .await
}

/// `status --json` → the names of the applied migrations.
pub fn applied_names(db: &TestDb, app: &str) -> Vec<String> {
    let doc = db.run(&["--app", app, "--json", "status"]).ok().json();
    doc["migrations"]
        .as_array()
        .expect("migrations array")
        .iter()
        .filter(|m| m["state"] == "applied")
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

on_all_backends!(
    upgrade_status_downgrade,
    targets_every_form,
    target_errors,
    stamp_moves_records_only,
    legacy_stamp_then_upgrade,
    alembic_adoption_at_each_revision,
    alembic_unknown_revision_changes_nothing,
    other_apps_database_is_refused,
    unknown_recorded_migration_is_listed,
    status_check_and_json_errors,
);

async fn upgrade_status_downgrade(db: TestDb) {
    // status is read-only: it creates nothing, not even the tracking table.
    let r = db.run(&["status"]);
    r.ok();
    assert!(r.stdout.contains("3 pending"), "{}", r.stdout);
    if db.backend == Backend::Sqlite {
        assert!(
            !db.dir().join("test.db").exists(),
            "status created the SQLite file"
        );
    } else {
        assert_eq!(db.tables().await, Vec::<String>::new());
    }

    // so is a dry run
    let r = db.run(&["upgrade", "--dry-run"]);
    r.ok();
    assert!(
        r.stdout.contains(A1) && r.stdout.contains(A2) && r.stdout.contains(A3),
        "{}",
        r.stdout
    );
    if db.backend == Backend::Sqlite {
        assert!(
            !db.dir().join("test.db").exists(),
            "a dry run created the SQLite file"
        );
    } else {
        assert_eq!(db.tables().await, Vec::<String>::new());
    }

    // Step lines are progress: stderr. stdout carries the result.
    let r = db.run(&["upgrade"]);
    r.ok();
    assert_eq!(r.stderr.matches("applied ").count(), 3, "{}", r.stderr);
    assert!(r.stderr.contains(A1) && r.stderr.contains(A2) && r.stderr.contains(A3));
    assert!(
        r.stderr.contains(" ms"),
        "each line carries its time: {}",
        r.stderr
    );
    assert!(!r.stdout.contains("applied "), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("now at {A3}")), "{}", r.stdout);
    assert_eq!(recorded(&db).await, vec![A1, A2, A3]);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM settings").await,
        4,
        "the four bio prompts"
    );

    let r = db.run(&["upgrade"]);
    r.ok();
    assert!(r.stdout.contains("nothing to do"), "{}", r.stdout);

    // Exactly the last migration, which drops nothing: the settings stay.
    let r = db.run(&["downgrade"]);
    r.ok();
    assert!(
        r.stderr.contains(&format!("rolled back {A3}")),
        "{}",
        r.stderr
    );
    assert_eq!(recorded(&db).await, vec![A1, A2]);
    assert_eq!(db.count("SELECT COUNT(*) FROM settings").await, 4);

    let r = db.run(&["downgrade", "--yes"]);
    r.ok();
    assert!(
        r.stderr.contains(&format!("rolled back {A2}")),
        "{}",
        r.stderr
    );
    assert_eq!(recorded(&db).await, vec![A1]);
    assert!(!db.tables().await.contains(&"settings".to_string()));

    let doc = db.run(&["--json", "status"]).ok().json();
    assert_eq!(doc["pending"], 2);
    assert_eq!(doc["current"]["alias"], "25698f3f906f");
    assert_eq!(doc["migrations"][0]["state"], "applied");
    assert_eq!(doc["migrations"][1]["state"], "pending");
    assert_eq!(doc["migrations"][2]["state"], "pending");
    let at = doc["migrations"][0]["applied_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z'),
        "RFC 3339 UTC: {at}"
    );

    // The last one holds no rows: no confirmation needed.
    db.run(&["downgrade"]).ok();
    assert_eq!(db.tables().await, vec!["seaql_migrations"]);
    assert_eq!(recorded(&db).await, Vec::<String>::new());
}

/// Position after each command, as the number of applied migrations from the start.
fn position(db: &TestDb, app: &str) -> usize {
    applied_names(db, app).len()
}

async fn targets_every_form(db: TestDb) {
    let up = |t: &str| db.run(&["upgrade", t]).ok().stdout.clone();
    let down = |t: &str| db.run(&["downgrade", t, "--yes"]).ok().stdout.clone();
    up("+1");
    assert_eq!(position(&db, "avatar"), 1);
    up("d8cf"); // prefix of an Alembic alias
    assert_eq!(position(&db, "avatar"), 2);
    // A digits-only prefix is a bare number: rejected, never taken as a prefix.
    db.run(&["downgrade", "2569", "--yes"]).expect_code(2);
    assert_eq!(position(&db, "avatar"), 2);
    down("25698f"); // down to, and keeping, the initial revision
    assert_eq!(position(&db, "avatar"), 1);
    down("base");
    assert_eq!(position(&db, "avatar"), 0);
    up("m20260130_1133"); // prefix of a name
    assert_eq!(position(&db, "avatar"), 2);
    down("-2");
    assert_eq!(position(&db, "avatar"), 0);
    up(A1); // full name
    assert_eq!(position(&db, "avatar"), 1);
    up("head");
    assert_eq!(position(&db, "avatar"), 3);
    down("d8cfd3cb4083"); // full alias of the Alembic head, one step below head
    assert_eq!(position(&db, "avatar"), 2);
    up("m20261201"); // prefix of a name without an alias
    assert_eq!(position(&db, "avatar"), 3);
    down("25698f3f906f"); // full alias
    assert_eq!(position(&db, "avatar"), 1);
    let out = up("+1");
    assert!(out.contains(A2), "{out}");
    // dry runs change nothing
    let r = db.run(&["downgrade", "base", "--dry-run"]);
    r.ok();
    assert!(
        r.stdout.contains(A2) && r.stdout.contains(A1),
        "{}",
        r.stdout
    );
    let first = r.stdout.find(A2).unwrap();
    assert!(
        first < r.stdout.find(A1).unwrap(),
        "down plan is in reverse order"
    );
    assert_eq!(position(&db, "avatar"), 2);
    let doc = db
        .run(&["--json", "downgrade", "-1", "--dry-run"])
        .ok()
        .json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["direction"], "down");
    assert_eq!(doc["plan"][0]["name"], A2);
    assert_eq!(position(&db, "avatar"), 2);
}

async fn target_errors(db: TestDb) {
    db.run(&["upgrade", "+1"]).ok();
    let r = db.run(&["upgrade", "1"]);
    r.expect_code(2);
    assert!(r.stderr.contains("ambiguous"), "{}", r.stderr);
    let r = db.run(&["upgrade", "m2026"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains(A1) && r.stderr.contains(A2),
        "candidates: {}",
        r.stderr
    );
    let r = db.run(&["upgrade", "zzzzzz"]);
    r.expect_code(2);
    assert!(r.stderr.contains("zzzzzz"), "{}", r.stderr);
    let r = db.run(&["upgrade", "+5"]);
    r.expect_code(2);
    let r = db.run(&["upgrade", "base"]);
    r.expect_code(2);
    assert!(r.stderr.contains("dbtool downgrade base"), "{}", r.stderr);
    let r = db.run(&["downgrade", "head"]);
    r.expect_code(2);
    assert!(r.stderr.contains("dbtool upgrade head"), "{}", r.stderr);
    // The other app's name is refused: the database says it is Avatar's.
    let r = db.run(&["--app", "neurachar", "--json", "status"]);
    assert_eq!(r.expect_code(11).json()["error"]["kind"], "wrong_app");
    // nothing moved
    assert_eq!(recorded(&db).await, vec![A1]);
    let r = db.run(&["--json", "upgrade", "abc"]);
    r.expect_code(2);
    let doc = r.json();
    assert_eq!(doc["error"]["kind"], "usage");
    assert_eq!(doc["error"]["code"], 2);
}

async fn stamp_moves_records_only(db: TestDb) {
    let nc = |args: &[&str]| {
        let mut a = vec!["--app", "neurachar"];
        a.extend_from_slice(args);
        db.run(&a)
    };
    nc(&["upgrade"]).ok();
    let tables = db.tables().await;
    // Forgetting every record leaves the tables alone.
    let r = nc(&["stamp", "base"]);
    assert_eq!(r.ok().stdout.matches("remove").count(), 6, "{}", r.stdout);
    assert_eq!(recorded(&db).await, Vec::<String>::new());
    assert_eq!(db.tables().await, tables, "stamp runs no migration");
    // Recording them again is verified against the schema, which is all there.
    nc(&["stamp", "head"]).ok();
    assert_eq!(recorded(&db).await.len(), 6);
    let r = nc(&["stamp", "m20251212_000002"]);
    assert!(r.ok().stdout.contains("remove"), "{}", r.stdout);
    assert_eq!(
        recorded(&db).await,
        vec![
            "m20251212_000001_create_users",
            "m20251212_000002_create_email_login_codes"
        ]
    );
    nc(&["stamp", "+1"]).ok();
    assert_eq!(recorded(&db).await.len(), 3);
    nc(&["stamp", "-2"]).ok();
    assert_eq!(recorded(&db).await.len(), 1);
    let doc = nc(&["--json", "stamp", "base"]).ok().json();
    assert_eq!(doc["removed"].as_array().unwrap().len(), 1);
    assert_eq!(recorded(&db).await, Vec::<String>::new());
    // stamping again is a no-op that still exits 0
    let r = nc(&["stamp", "base"]);
    assert!(r.ok().stdout.contains("nothing to do"), "{}", r.stdout);

    // A migration whose objects are missing is not recorded: the error lists them, and
    // --force records it anyway, after which `check` shows the drift.
    db.exec("DROP TABLE messages").await;
    let r = nc(&["stamp", "head"]);
    let line = r.expect_code(9).error_line();
    assert!(
        line.contains("table messages") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(
        recorded(&db).await,
        Vec::<String>::new(),
        "nothing recorded"
    );
    let r = nc(&["stamp", "head", "--force"]);
    assert!(r.ok().stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(recorded(&db).await.len(), 6);
    let r = nc(&["check"]);
    assert!(
        r.expect_code(9).stdout.contains("table messages"),
        "{}",
        r.stdout
    );
}

/// What the Avatar history did: `users` existed, the initial revision was stamped, the
/// next one applied.
async fn legacy_stamp_then_upgrade(db: TestDb) {
    db.run(&["upgrade", "+1"]).ok();
    db.exec("DROP TABLE seaql_migrations").await;
    db.exec(
        "INSERT INTO users (email, password_hash, created_at, is_active) \
         VALUES ('old@example.com', '$2b$12$abcdefghijklmnopqrstuuS1bN0y2W7uGq0r5pGZ3JTo0zvYg6OAK', '2026-01-01 10:00:00', TRUE)",
    )
    .await;
    let r = db.run(&["upgrade"]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("dbtool stamp 25698f3f906f"),
        "suggests the stamp that fits: {}",
        r.stderr
    );
    assert!(
        !db.tables().await.contains(&"settings".to_string()),
        "nothing changed"
    );

    db.run(&["stamp", "25698f3f906f"]).ok();
    let r = db.run(&["upgrade"]);
    r.ok();
    assert!(r.stderr.contains(A2) && !r.stderr.contains(&format!("applied {A1}")));
    assert_eq!(db.count("SELECT COUNT(*) FROM settings").await, 4);
    assert_eq!(
        db.strings("SELECT email FROM users").await,
        vec!["old@example.com"],
        "existing users untouched"
    );
}

async fn make_alembic(db: &TestDb, revision: &str) {
    db.exec("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        .await;
    db.exec(&format!(
        "INSERT INTO alembic_version (version_num) VALUES ('{revision}')"
    ))
    .await;
}

async fn alembic_adoption_at_each_revision(db: TestDb) {
    // dbtool's own third step is no Alembic revision: it stays pending after adoption.
    for (revision, steps) in [("25698f3f906f", 1usize), ("d8cfd3cb4083", 2)] {
        // Build the database the way Alembic left it: the schema, alembic_version, and no
        // seaql_migrations.
        db.run(&["upgrade", &format!("+{steps}")]).ok();
        db.exec("DROP TABLE seaql_migrations").await;
        make_alembic(&db, revision).await;

        let doc = db.run(&["--json", "status"]).ok().json();
        assert_eq!(doc["alembic"]["state"], "adoptable");
        assert_eq!(doc["alembic"]["revision"], revision);
        assert_eq!(doc["pending"], 3 - steps);
        let states: Vec<&str> = doc["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["state"].as_str().unwrap())
            .collect();
        let mut want = vec!["applied"; steps];
        want.resize(3, "pending");
        assert_eq!(states, want, "{doc}");
        assert!(
            !db.tables().await.contains(&"seaql_migrations".to_string()),
            "status adopted nothing"
        );

        // A prompt row removed (as `settings unset` may): adopting warns, as `stamp` does,
        // and goes ahead.
        let prompts = if steps == 2 {
            let key = match db.backend {
                Backend::MySql => "`key`",
                _ => "\"key\"",
            };
            db.exec(&format!(
                "DELETE FROM settings WHERE {key} = 'bio_prompt_facebook'"
            ))
            .await;
            3
        } else {
            4
        };
        let r = db.run(&["upgrade"]);
        r.ok();
        assert_eq!(
            r.stderr
                .contains("lacks the default prompt(s) bio_prompt_facebook"),
            steps == 2,
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("adopted"), "{}", r.stderr);
        assert_eq!(r.stderr.matches("adopted").count(), 1);
        assert!(
            r.stderr.contains(&format!("applied {A3}")),
            "the step past Alembic's head runs: {}",
            r.stderr
        );
        assert_eq!(recorded(&db).await, vec![A1, A2, A3]);
        assert_eq!(db.count("SELECT COUNT(*) FROM settings").await, prompts);
        assert_eq!(
            db.strings("SELECT version_num FROM alembic_version").await,
            vec![revision],
            "alembic_version is left as it was"
        );
        // reset for the next revision
        db.run(&["downgrade", "base", "--yes"]).ok();
        db.exec("DROP TABLE alembic_version").await;
        db.exec("DROP TABLE seaql_migrations").await;
    }
}

async fn alembic_unknown_revision_changes_nothing(db: TestDb) {
    db.run(&["upgrade", "+1"]).ok();
    db.exec("DROP TABLE seaql_migrations").await;
    make_alembic(&db, "0123456789ab").await;
    let before = db.tables().await;
    let r = db.run(&["upgrade"]);
    r.expect_code(15);
    assert!(r.stderr.contains("0123456789ab"), "{}", r.stderr);
    assert_eq!(db.tables().await, before, "nothing changes");
    // status shows the database and warns about the revision, on stderr.
    let r = db.run(&["status"]);
    r.ok();
    assert!(
        r.stderr
            .contains("warning: alembic_version holds unknown revision 0123456789ab"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
    // The way out it named (a stamp at the revision whose tables are there) works as
    // printed, and the upgrade then runs.
    let r = db.run(&["upgrade"]);
    let hint = r.expect_code(15).error_line();
    assert!(hint.contains("`dbtool stamp 25698f3f906f`"), "{hint}");
    db.run(&["stamp", "25698f3f906f"]).ok();
    db.run(&["upgrade"]).ok();
    db.run(&["check"]).ok();
}

async fn other_apps_database_is_refused(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let before = db.tables().await;
    let r = db.run(&["--app", "neurachar", "upgrade"]);
    r.expect_code(11);
    assert!(r.stderr.contains("--app avatar"), "{}", r.stderr);
    assert_eq!(db.tables().await, before);
    assert_eq!(recorded(&db).await, vec![A1, A2, A3]);
    let r = db.run(&["--app", "neurachar", "stamp", "head"]);
    r.expect_code(11);
}

async fn unknown_recorded_migration_is_listed(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.exec("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20990101_000000_from_the_future', 4000000000)")
        .await;
    let doc = db.run(&["--json", "status"]).ok().json();
    let rows = doc["migrations"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["state"], "unknown");
    assert_eq!(rows[3]["name"], "m20990101_000000_from_the_future");
    let r = db.run(&["downgrade", "--yes"]);
    r.expect_code(15);
    assert!(
        r.stderr.contains("m20990101_000000_from_the_future"),
        "{}",
        r.stderr
    );
    assert_eq!(recorded(&db).await.len(), 4, "nothing changed");
}

async fn status_check_and_json_errors(db: TestDb) {
    db.run(&["status", "--check"]).expect_code(3);
    let r = db.run(&["--json", "status", "--check"]);
    r.expect_code(3);
    assert_eq!(r.json()["pending"], 3);
    db.run(&["upgrade"]).ok();
    db.run(&["status", "--check"]).ok();
    let r = db.run(&["--json", "history"]);
    let doc = r.ok().json();
    assert!(doc["migrations"][1]["description"]
        .as_str()
        .unwrap()
        .contains("settings"));
}
