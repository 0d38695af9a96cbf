//! NeuraChar's foreign-key indexes (`m20251212_000006_add_foreign_key_indexes`) through the
//! real binary: present with the right columns after `upgrade`, gone after `downgrade`, on every
//! backend; and on PostgreSQL, where they are built CONCURRENTLY outside a transaction, a failed
//! or cancelled build leaves a state that the next `upgrade` repairs, with the migration lock
//! held on the migrating connection all along.

use crate::common::introspect::{self, Index};
use crate::common::{Backend, Run, TestDb};
use crate::migrate::recorded;
use crate::on_all_backends;
use sea_orm::{ConnectionTrait, TransactionTrait};
use std::process::Child;
use std::time::{Duration, Instant};

const STEP: &str = "m20251212_000006_add_foreign_key_indexes";

/// `(table, index, columns in index order)`, as the issue asks for them.
const EXPECTED: &[(&str, &str, &[&str])] = &[
    (
        "messages",
        "ix_messages_chat_id_created_at",
        &["chat_id", "created_at"],
    ),
    ("chats", "ix_chats_user_id", &["user_id"]),
    ("chats", "ix_chats_character_id", &["character_id"]),
    ("characters", "ix_characters_creator_id", &["creator_id"]),
];

on_all_backends!(
    indexes_present_after_upgrade_and_gone_after_downgrade,
    half_done_run_is_completed_by_the_next_upgrade,
    a_name_taken_by_something_else_refuses_the_step,
);

fn nc<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--app", "neurachar"];
    v.extend_from_slice(args);
    v
}

async fn index_named(db: &TestDb, table: &str, name: &str) -> Option<Index> {
    introspect::indexes(db, table)
        .await
        .into_iter()
        .find(|i| i.name == name)
}

/// PostgreSQL: `Some(valid)` for an index of that name, None when there is none.
async fn pg_valid(db: &TestDb, name: &str) -> Option<bool> {
    db.strings(&format!(
        "SELECT i.indisvalid::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE c.relname = '{name}'"
    ))
    .await
    .first()
    .map(|v| v == "true")
}

/// Every expected index exists, is plain (not unique), has its columns in order and, on
/// PostgreSQL, is valid.
async fn assert_all_present(db: &TestDb) {
    for (table, name, cols) in EXPECTED {
        let ix = index_named(db, table, name)
            .await
            .unwrap_or_else(|| panic!("{:?}: no index {name} on {table}", db.backend));
        assert_eq!(
            ix.columns, *cols,
            "{:?} {name}: columns in order",
            db.backend
        );
        assert!(!ix.unique && !ix.primary, "{:?} {name}: {ix:?}", db.backend);
        if db.backend == Backend::Postgres {
            assert_eq!(pg_valid(db, name).await, Some(true), "{name} is valid");
        }
    }
}

async fn indexes_present_after_upgrade_and_gone_after_downgrade(db: TestDb) {
    db.run(&nc(&["upgrade", "m20251212_000005"])).ok();
    let before = introspect::dump(&db).await;
    for (table, name, _) in EXPECTED {
        assert!(index_named(&db, table, name).await.is_none(), "{name}");
    }

    let r = db.run(&nc(&["upgrade"]));
    r.ok();
    assert!(
        r.stderr.contains(&format!("applied {STEP}")),
        "{}",
        r.stderr
    );
    assert_all_present(&db).await;
    assert_eq!(recorded(&db).await.len(), 6);
    let at_head = introspect::dump(&db).await;

    // Only the index migration goes; no table is dropped, so no confirmation is needed.
    let r = db.run(&nc(&["downgrade"]));
    r.ok();
    assert!(
        r.stderr.contains(&format!("rolled back {STEP}")),
        "{}",
        r.stderr
    );
    for (table, name, _) in EXPECTED {
        assert!(
            index_named(&db, table, name).await.is_none(),
            "{:?}: {name} survived the downgrade",
            db.backend
        );
    }
    assert_eq!(
        introspect::dump(&db).await,
        before,
        "{:?}: downgrade restores the schema exactly (MySQL: the foreign keys' own indexes too)",
        db.backend
    );
    assert!(!recorded(&db).await.contains(&STEP.to_owned()));

    // And up again, to exactly the same schema (MySQL: without the foreign keys' own
    // indexes that the downgrade put back).
    db.run(&nc(&["upgrade"])).ok();
    assert_all_present(&db).await;
    assert_eq!(introspect::dump(&db).await, at_head, "{:?}", db.backend);
    db.run(&nc(&["check"])).ok();
    let doc = db.run(&nc(&["--json", "status"])).ok().json();
    assert_eq!(doc["pending"], 0);
}

/// A run that stopped after building some of the indexes (MySQL commits each one; on
/// PostgreSQL the migration runs outside a transaction) is completed by the next `upgrade`.
async fn half_done_run_is_completed_by_the_next_upgrade(db: TestDb) {
    db.run(&nc(&["upgrade", "m20251212_000005"])).ok();
    db.exec("CREATE INDEX ix_chats_user_id ON chats (user_id)")
        .await;
    let r = db.run(&nc(&["upgrade"]));
    r.ok();
    assert_all_present(&db).await;
    let on_chats: Vec<String> = introspect::indexes(&db, "chats")
        .await
        .into_iter()
        .filter(|i| i.columns == ["user_id"])
        .map(|i| i.name)
        .collect();
    assert_eq!(
        on_chats,
        ["ix_chats_user_id"],
        "{:?}: no duplicate",
        db.backend
    );
    assert_eq!(recorded(&db).await.len(), 6);
}

/// A name of one of the indexes taken by something else: `IF NOT EXISTS` (or MySQL's look
/// first) would skip the index and record the step without it. The step refuses before it
/// changes anything, says what holds the name, and runs once the name is free.
async fn a_name_taken_by_something_else_refuses_the_step(db: TestDb) {
    db.run(&nc(&["upgrade", "m20251212_000005"])).ok();
    // On the same table as ours (MySQL's index names are per table), on a column that is no
    // foreign key (MySQL would drop its own index of the key for it).
    db.exec("CREATE INDEX ix_chats_user_id ON chats (created_at)")
        .await;
    let before = introspect::dump(&db).await;
    let r = db.run(&nc(&["upgrade"]));
    r.expect_code(5);
    let line = r.error_line();
    assert!(
        line.contains(
            "ix_chats_user_id already exists and is not this migration's index: it is an index on chats(created_at); nothing was changed"
        ),
        "{:?}: {line}",
        db.backend
    );
    assert_eq!(introspect::dump(&db).await, before, "{:?}", db.backend);
    assert!(!recorded(&db).await.contains(&STEP.to_owned()));
    let doc = db.run(&nc(&["--json", "status"])).ok().json();
    assert_eq!(doc["pending"], 1, "{doc}");
    let problems = doc["problems"].as_array().expect("problems");
    assert!(
        problems.iter().all(|p| p["kind"] != "half_done"),
        "no marker is left: {doc}"
    );
    db.exec(match db.backend {
        Backend::MySql => "DROP INDEX ix_chats_user_id ON chats",
        _ => "DROP INDEX ix_chats_user_id",
    })
    .await;
    // Not what the step builds either, though on the same columns or by the same name in
    // other letters (found by hostile runs: each was taken as the step's index).
    let variants: &[&str] = match db.backend {
        Backend::Postgres => &[
            "CREATE INDEX ix_chats_user_id ON chats (user_id DESC)",
            "CREATE INDEX ix_chats_user_id ON chats (user_id NULLS FIRST)",
            "CREATE INDEX ix_chats_user_id ON chats (user_id) INCLUDE (character_id)",
            "CREATE UNIQUE INDEX ix_chats_user_id ON chats (chat_id)",
        ],
        Backend::Sqlite => &[
            "CREATE INDEX ix_chats_user_id ON chats (user_id DESC)",
            "CREATE INDEX ix_chats_user_id ON chats (user_id COLLATE NOCASE)",
            "CREATE INDEX ix_chats_user_id ON chats (user_id, user_id + 0)",
            "CREATE INDEX IX_CHATS_USER_ID ON chats (user_id, character_id)",
        ],
        Backend::MySql => &[],
    };
    for sql in variants {
        db.exec(sql).await;
        let r = db.run(&nc(&["upgrade"]));
        assert!(
            r.expect_code(5)
                .error_line()
                .contains("is not this migration's index"),
            "{sql}: {}",
            r.stderr
        );
        db.exec("DROP INDEX ix_chats_user_id").await;
    }
    // One namespace for tables and indexes (not MySQL's): a table by an index's name.
    if db.backend != Backend::MySql {
        db.exec("CREATE TABLE ix_characters_creator_id (a integer)")
            .await;
        let r = db.run(&nc(&["upgrade"]));
        r.expect_code(5);
        assert!(
            r.error_line()
                .contains("ix_characters_creator_id already exists and is not this migration's index: it is a table"),
            "{:?}: {}",
            db.backend,
            r.stderr
        );
        db.exec("DROP TABLE ix_characters_creator_id").await;
    }
    db.run(&nc(&["upgrade"])).ok();
    assert_all_present(&db).await;
    db.run(&nc(&["check"])).ok();

    // Finishing the step where an earlier run left it half-done (one index built): the
    // refusal keeps the marker, since what that run built is still there (the marker was
    // cleared and `status` said pending; found by a hostile run).
    db.run(&nc(&["downgrade", "-1", "--yes"])).ok();
    db.exec(&format!(
        "INSERT INTO dbtool_state (version, in_progress, in_progress_since, updated_at) \
         VALUES ('{STEP}', 'up', 1, 1)"
    ))
    .await;
    db.exec("CREATE INDEX ix_messages_chat_id_created_at ON messages (chat_id, created_at)")
        .await;
    db.exec("CREATE INDEX ix_chats_user_id ON chats (created_at)")
        .await;
    db.run(&nc(&["upgrade"])).expect_code(5);
    db.run(&nc(&["status", "--check"])).expect_code(13);
    db.exec(match db.backend {
        Backend::MySql => "DROP INDEX ix_chats_user_id ON chats",
        _ => "DROP INDEX ix_chats_user_id",
    })
    .await;
    db.run(&nc(&["upgrade"])).ok();
    assert_all_present(&db).await;
    db.run(&nc(&["status", "--check"])).ok();
}

/// One user, character and chat, and two messages of that chat with the same `created_at`.
async fn pg_seed_duplicate_messages(db: &TestDb) {
    db.exec(
        "INSERT INTO users (id, email) VALUES ('00000000-0000-0000-0000-000000000001', 'a@example.com'); \
         INSERT INTO characters (id, name, system_prompt, creator_id) VALUES \
           ('00000000-0000-0000-0000-000000000002', 'Nova', 'You are Nova.', '00000000-0000-0000-0000-000000000001'); \
         INSERT INTO chats (chat_id, user_id, character_id) VALUES ('00000000-0000-0000-0000-000000000003', \
           '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002'); \
         INSERT INTO messages (id, chat_id, role, content, created_at) VALUES \
           ('00000000-0000-0000-0000-000000000004', '00000000-0000-0000-0000-000000000003', 'user', 'hi', '2025-12-12 10:00:00'), \
           ('00000000-0000-0000-0000-000000000005', '00000000-0000-0000-0000-000000000003', 'assistant', 'hello', '2025-12-12 10:00:00')",
    )
    .await;
}

/// A failed `CREATE INDEX CONCURRENTLY` leaves an INVALID index of its name behind; `upgrade`
/// must not take it for the finished index (IF NOT EXISTS would) but rebuild it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_invalid_index_is_replaced_by_a_valid_one() {
    let db = TestDb::new(Backend::Postgres, "invalid_index_replaced");
    db.run(&nc(&["upgrade", "m20251212_000005"])).ok();
    pg_seed_duplicate_messages(&db).await;
    let conn = db.connect().await;
    let failed = conn
        .execute_unprepared(
            "CREATE UNIQUE INDEX CONCURRENTLY ix_messages_chat_id_created_at \
             ON messages (chat_id, created_at)",
        )
        .await;
    conn.close().await.ok();
    assert!(failed.is_err(), "duplicate rows make the unique build fail");
    assert_eq!(
        pg_valid(&db, "ix_messages_chat_id_created_at").await,
        Some(false),
        "the failed build left an INVALID index"
    );

    let r = db.run(&nc(&["upgrade"]));
    r.ok();
    assert_all_present(&db).await;
    assert_eq!(recorded(&db).await.len(), 6);
    assert_eq!(
        db.count("SELECT count(*) FROM messages").await,
        2,
        "the data is untouched"
    );
}

/// The pid of dbtool's backend while it waits inside `CREATE INDEX CONCURRENTLY`.
async fn pg_wait_for_concurrent_build(db: &TestDb, child: &mut Child) -> String {
    let started = Instant::now();
    loop {
        let pids = db
            .strings(
                "SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'dbtool' AND query ILIKE 'CREATE INDEX CONCURRENTLY%' \
                 AND wait_event_type = 'Lock'",
            )
            .await;
        if let Some(pid) = pids.into_iter().next() {
            return pid;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("dbtool ended before building the indexes: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dbtool never reached CREATE INDEX CONCURRENTLY"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Brings NeuraChar to the migration before the indexes and opens a writer that holds a
/// ROW EXCLUSIVE lock on `messages`, so a concurrent index build waits for it.
async fn writer_on_messages(
    db: &TestDb,
) -> (sea_orm::DatabaseConnection, sea_orm::DatabaseTransaction) {
    db.run(&nc(&["upgrade", "m20251212_000005"])).ok();
    let writer = db.connect().await;
    let tx = writer.begin().await.expect("begin");
    tx.execute_unprepared("LOCK TABLE messages IN ROW EXCLUSIVE MODE")
        .await
        .expect("lock messages");
    (writer, tx)
}

/// The realistic failure: a concurrent build waits for a writer on `messages`, and an
/// operator (or `statement_timeout`) cancels it. While it waits, the migrating session still
/// holds the migration lock, so a second run times out on it. The cancelled run exits 5 and
/// leaves an INVALID index and no tracking row; the next `upgrade` completes the migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cancelled_concurrent_build_is_repaired_by_the_next_upgrade() {
    let db = TestDb::new(Backend::Postgres, "cancelled_build_repaired");
    let (writer, tx) = writer_on_messages(&db).await;
    let writer_pid = tx
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_backend_pid()::int8 AS pid",
        ))
        .await
        .expect("pid")
        .expect("a row")
        .try_get::<i64>("", "pid")
        .expect("pid");

    let mut child = db.spawn(&nc(&["upgrade"]));
    let pid = pg_wait_for_concurrent_build(&db, &mut child).await;

    // The migration lock is held by the very session that builds the index.
    let held = db
        .count(&format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND pid = {pid} AND classid = {} AND objsubid = 2",
            0x6462_746f_u32
        ))
        .await;
    assert_eq!(held, 1, "the migrating connection holds the migration lock");
    let other = db.run(&nc(&["--lock-timeout", "1", "upgrade"]));
    other.expect_code(4);
    assert!(
        other.stderr.contains("application 'dbtool'"),
        "{}",
        other.stderr
    );

    assert_eq!(
        db.strings(&format!("SELECT pg_cancel_backend({pid})::text"))
            .await,
        ["true"]
    );
    let out = child.wait_with_output().expect("wait dbtool");
    let run = Run::from(out);
    run.expect_code(5);
    assert!(run.stderr.contains(STEP), "{}", run.stderr);
    // While it waited for the older transaction, it said which session that was.
    assert!(
        run.stderr
            .contains(&format!("{STEP} is waiting for pid {writer_pid}, ")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("half-done") && run.stderr.contains("`dbtool --app neurachar upgrade`"),
        "says how to recover: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("rolled back"),
        "nothing was rolled back: {}",
        run.stderr
    );
    tx.rollback().await.expect("rollback");
    writer.close().await.ok();

    assert_eq!(
        pg_valid(&db, "ix_messages_chat_id_created_at").await,
        Some(false),
        "the cancelled build left an INVALID index"
    );
    assert!(!recorded(&db).await.contains(&STEP.to_owned()));
    let status = db.run(&nc(&["--json", "status"])).ok().json();
    assert_eq!(status["pending"], 1);

    let r = db.run(&nc(&["upgrade"]));
    r.ok();
    assert_all_present(&db).await;
    assert_eq!(recorded(&db).await.len(), 6);
    assert_eq!(
        db.count(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE NOT i.indisvalid"
        )
        .await,
        0,
        "no invalid index is left anywhere"
    );
}

/// Concurrent runs: while one session builds an index CONCURRENTLY, the others wait for the
/// lock without holding a snapshot (a blocked `pg_advisory_lock()` would; the build waits for
/// older snapshots, so that would deadlock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_waiting_runs_do_not_deadlock_the_concurrent_build() {
    let db = TestDb::new(Backend::Postgres, "no_deadlock_with_waiters");
    let (writer, tx) = writer_on_messages(&db).await;
    let mut first = db.spawn(&nc(&["upgrade"]));
    pg_wait_for_concurrent_build(&db, &mut first).await;
    // Waiters line up behind the lock while the build is in progress ...
    let waiters: Vec<Child> = (0..3).map(|_| db.spawn(&nc(&["upgrade"]))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ... then the writer finishes and the build can go on.
    tx.rollback().await.expect("rollback");
    writer.close().await.ok();
    let first = Run::from(first.wait_with_output().expect("wait"));
    first.ok();
    assert!(first.stdout.contains(STEP), "{}", first.stdout);
    for w in waiters {
        let r = Run::from(w.wait_with_output().expect("wait"));
        r.ok();
        assert!(r.stdout.contains("nothing to do"), "{}", r.stdout);
    }
    assert_all_present(&db).await;
}
