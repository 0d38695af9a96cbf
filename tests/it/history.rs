//! The recorded history tells the truth: the audit trail (`dbtool log`, its pruning, a log
//! that cannot be written), `repair` of a stuck marker and of changed checksums, the five
//! conditions of `status --check`, out-of-order refusals, verified stamps over a half-made
//! migration, and a sample of the kill soak (bench/soak.sh) that fits CI.

use crate::common::pgrole::{psql_in, PgRole};
use crate::common::{Backend, Run, TestDb};
use crate::on_all_backends;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

const A1: &str = "m20260130_093115_initial_migration";
const A2: &str = "m20260130_113328_create_settings_table";
const A3: &str = "m20261201_000001_widen_settings_value";
const F1: &str = "f001_create_alpha";
const F2: &str = "f002_create_beta_slowly";
const F3: &str = "f003_create_gamma_or_fail";

on_all_backends!(
    log_lists_every_operation_with_its_outcome,
    log_prune_deletes_old_entries_after_confirmation,
    missing_audit_table_never_blocks,
    repair_settles_a_marker_by_the_schema,
    repair_refuses_a_partial_step_unless_forced,
    repair_rebaselines_a_changed_checksum,
    status_check_exits_with_each_code,
    upgrade_refuses_out_of_order_and_the_hint_works,
    stamp_over_a_half_made_migration,
    finishing_a_half_done_step_is_said_by_every_command,
    kill_sample,
    log_times_each_step_on_its_own,
);

/// `dbtool --json log` as a document.
fn log_doc(db: &TestDb, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "log"];
    args.extend_from_slice(extra);
    db.run(&args).ok().json()
}

/// The entries of the audit log as (operation, migration, direction, outcome).
fn entries(doc: &Value) -> Vec<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                s(&e["operation"]),
                s(&e["migration"]),
                s(&e["direction"]),
                s(&e["outcome"]),
            )
        })
        .collect()
}

fn has(
    list: &[(String, String, String, String)],
    op: &str,
    m: &str,
    dir: &str,
    outcome: &str,
) -> bool {
    list.iter()
        .any(|(o, mi, d, out)| o == op && mi == m && d == dir && out == outcome)
}

/// Starts `dbtool ARGS` with piped stderr, for killing it mid-run.
fn spawn(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = db.cmd();
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn dbtool")
}

/// Reads the child's stderr until a line contains `needle` (then drains it in the
/// background so the child never blocks on a full pipe).
fn wait_for_line(child: &mut Child, needle: &str) {
    let mut reader = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut seen = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if line.contains(needle) {
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return;
        }
        line.clear();
    }
    panic!("the child ended without printing {needle:?}: {seen}");
}

fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

async fn log_lists_every_operation_with_its_outcome(db: TestDb) {
    let fx = ["--app", "fixture"];
    let with = |args: &[&str]| -> Vec<String> {
        fx.iter()
            .chain(args.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: &[&str]| {
        let a = with(args);
        db.run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run(&["upgrade"]).ok();
    run(&["downgrade"]).ok();
    // Stamps: forget F2's record, then record it again (its table is there: verified).
    run(&["stamp", F1]).ok();
    run(&["stamp", F2]).ok();
    // A failed step: the fixture's third migration fails halfway.
    let failed = Run::from(
        db.cmd()
            .args(with(&["upgrade"]))
            .env("DBTOOL_FIXTURE_FAIL", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    failed.expect_code(5);
    // Back to F1 (MySQL first finishes the half-done F3), then a run killed inside F2.
    run(&["downgrade", F1, "--yes"]).ok();
    let mut child = spawn(
        &db,
        &with(&["upgrade"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("DBTOOL_FIXTURE_SLEEP_MS", "30000")],
    );
    wait_for_line(&mut child, &format!("applying {F2}"));
    sigkill(&mut child);

    // The server notices the dead client on its own time: until then it holds the lock and
    // the entry honestly reads as running.
    let doc = poll(|| {
        let doc = log_doc(&db, &[]);
        (doc["entries"][0]["outcome"] != "running").then_some(doc)
    });
    assert_eq!(doc["exists"], true, "{doc}");
    let list = entries(&doc);
    for (op, m, dir, outcome) in [
        ("upgrade", F1, "up", "ok"),
        ("upgrade", F2, "up", "ok"),
        ("upgrade", F3, "up", "ok"),
        ("downgrade", F3, "down", "ok"),
        ("stamp", F2, "down", "ok"),
        ("stamp", F2, "up", "ok"),
        ("upgrade", F3, "up", "failed"),
        ("downgrade", F2, "down", "ok"),
        // Killed: its entry was never finished, and nobody holds the lock.
        ("upgrade", F2, "up", "interrupted"),
    ] {
        assert!(
            has(&list, op, m, dir, outcome),
            "no {op} {m} {dir} {outcome} in {list:#?}"
        );
    }
    // Newest first: the killed run is the last thing that happened.
    assert_eq!(
        list[0],
        (
            "upgrade".into(),
            F2.into(),
            "up".into(),
            "interrupted".into()
        )
    );
    let failure = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == "failed")
        .unwrap();
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .contains("no_such_table_fixture"),
        "{failure}"
    );
    // The server's own code: MySQL's error number says more than its SQLSTATE.
    let code = match db.backend {
        Backend::Postgres => "(SQLSTATE 42P01)",
        Backend::MySql => "(MySQL error 1146, SQLSTATE 42S02)",
        Backend::Sqlite => "(SQLite error 1)",
    };
    assert!(
        failure["error"].as_str().unwrap().ends_with(code),
        "{:?}: {failure}",
        db.backend
    );
    // Who and what ran it.
    let first = &doc["entries"][0];
    assert!(
        first["client"].as_str().unwrap().starts_with("dbtool "),
        "{first}"
    );
    assert!(
        first["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{first}"
    );
    assert!(
        first["os_user"].as_str().is_some_and(|u| !u.is_empty()),
        "{first}"
    );
    assert!(
        first["started_at"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );
    match db.backend {
        Backend::Postgres => assert_eq!(first["db_user"], "postgres", "{first}"),
        Backend::MySql => assert!(
            first["db_user"].as_str().unwrap().starts_with("root@"),
            "{first}"
        ),
        Backend::Sqlite => assert!(first["db_user"].is_null(), "{first}"),
    }
    for e in doc["entries"].as_array().unwrap() {
        if e["outcome"] == "ok" || e["outcome"] == "failed" {
            assert!(e["duration_ms"].as_i64().is_some_and(|d| d >= 0), "{e}");
        }
    }
    // --limit, and the table for people.
    let two = log_doc(&db, &["--limit", "2"]);
    assert_eq!(entries(&two), list[..2].to_vec());
    let text = db.run(&["log"]);
    text.ok();
    assert!(text.stdout.contains("| interrupted |"), "{}", text.stdout);
    assert!(text.stdout.contains("| failed "), "{}", text.stdout);
    assert!(
        text.stdout.contains("no_such_table_fixture"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.trim_end().ends_with("entries, newest first"),
        "{}",
        text.stdout
    );
    // Reading changed nothing: the stored row still says running until the next run sweeps.
    let stored =
        format!("SELECT outcome FROM dbtool_audit WHERE version = '{F2}' ORDER BY started_at DESC");
    assert_eq!(db.strings(&stored).await[0], "running");
    run(&["--lock-timeout", "30", "upgrade"]).ok();
    assert_eq!(
        db.strings(&stored).await[1],
        "interrupted",
        "swept by the next run"
    );
}

/// Polls `ready` every 50 ms for up to 20 s.
fn poll<T>(mut ready: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "condition not met within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn log_prune_deletes_old_entries_after_confirmation(db: TestDb) {
    // No audit table yet: an empty log, said on stderr, nothing created.
    let r = db.run(&["log"]);
    r.ok();
    assert!(r.stderr.contains("no audit log"), "{}", r.stderr);
    assert!(r.stdout.contains("0 entries"), "{}", r.stdout);
    assert_eq!(log_doc(&db, &[])["exists"], false);
    if db.backend != Backend::Sqlite {
        assert!(!db.tables().await.contains(&"dbtool_audit".to_string()));
    }
    db.run(&["upgrade"]).ok();
    db.run(&["downgrade", "base", "--yes"]).ok();
    assert_eq!(entries(&log_doc(&db, &[])).len(), 6);
    // Age the three upgrade entries by 40 days.
    let day_ms: i64 = 86_400_000;
    db.exec(&format!(
        "UPDATE dbtool_audit SET started_at = started_at - {} WHERE operation = 'upgrade'",
        40 * day_ms
    ))
    .await;
    // Destructive: without a terminal and without --yes it is refused and deletes nothing.
    let r = db.run(&["log", "--prune", "30d"]);
    r.expect_code(7);
    assert!(r.error_line().contains("3 entries"), "{}", r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(entries(&log_doc(&db, &[])).len(), 6);
    let r = db.run(&["--json", "log", "--prune", "30d", "--yes"]);
    assert_eq!(r.ok().json()["pruned"], 3);
    let left = entries(&log_doc(&db, &[]));
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|e| e.0 == "downgrade"), "{left:?}");
    // An RFC 3339 date in the past keeps the rest; a bad value is a usage error naming it.
    let r = db.run(&["log", "--prune", "2020-01-01", "--yes"]);
    assert!(r.ok().stdout.contains("deleted 0 entries"), "{}", r.stdout);
    let r = db.run(&["log", "--prune", "soon"]);
    assert!(r.expect_code(2).stderr.contains("'soon'"), "{}", r.stderr);
    let r = db.run(&["log", "--prune", "2999-01-01", "--yes"]);
    assert!(
        r.expect_code(2).error_line().contains("future"),
        "{}",
        r.stderr
    );
    assert_eq!(entries(&log_doc(&db, &[])).len(), 3);
    // A run with an entry still running (in progress, or killed and not swept yet) keeps
    // all its entries, the finished ones too; once it reads interrupted they go.
    db.exec(&format!(
        "UPDATE dbtool_audit SET started_at = started_at - {}",
        40 * day_ms
    ))
    .await;
    db.exec("UPDATE dbtool_audit SET outcome = 'running' WHERE seq = 3")
        .await;
    let r = db.run(&["--json", "log", "--prune", "30d", "--yes"]);
    assert_eq!(r.ok().json()["pruned"], 0, "{}", r.stdout);
    db.exec("UPDATE dbtool_audit SET outcome = 'interrupted' WHERE seq = 3")
        .await;
    let r = db.run(&["--json", "log", "--prune", "30d", "--yes"]);
    assert_eq!(r.ok().json()["pruned"], 3, "{}", r.stdout);
}

async fn missing_audit_table_never_blocks(db: TestDb) {
    db.run(&["upgrade", A1]).ok();
    // Dropped: the next run creates it again and logs.
    db.exec("DROP TABLE dbtool_audit").await;
    db.run(&["upgrade", A2]).ok();
    assert!(has(&entries(&log_doc(&db, &[])), "upgrade", A2, "up", "ok"));
    if db.backend != Backend::Postgres {
        return;
    }
    // Unwritable: a user with every right it needs except on the audit table migrates, and
    // says it could not log.
    let name = format!("{}_r", db.name);
    let role = PgRole::create(&db, &name[name.len().saturating_sub(60)..], "");
    let role = role.name.as_str();
    psql_in(
        &db.name,
        &format!(
            "GRANT ALL ON seaql_migrations, dbtool_state, settings, users TO {role}; \
             GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"
        ),
    );
    let url = db
        .url
        .replace("postgres://postgres@", &format!("postgres://{role}@"));
    let as_role = |args: &[&str]| {
        Run::from(
            db.cmd()
                .env("DATABASE_URL", &url)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let r = as_role(&["upgrade"]);
    r.ok();
    assert!(
        r.stderr
            .contains("warning: the audit log dbtool_audit cannot be written"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("migrating without it"), "{}", r.stderr);
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2, A3]);
    // Its log cannot be read either: an error that names the privilege, exit 22.
    let r = as_role(&["log"]);
    assert!(
        r.expect_code(22).error_line().contains("dbtool_audit"),
        "{}",
        r.stderr
    );
    // Readable but not writable: the run still says it went unlogged.
    psql_in(&db.name, &format!("GRANT SELECT ON dbtool_audit TO {role}"));
    let r = as_role(&["downgrade", "--yes"]);
    r.ok();
    assert!(
        r.stderr
            .contains("warning: the audit log dbtool_audit cannot be written"),
        "{}",
        r.stderr
    );
    // Entries could be started but never ended (INSERT without UPDATE): the run finds out
    // before its first step (it cannot sweep) and migrates unlogged, saying so.
    psql_in(&db.name, &format!("GRANT INSERT ON dbtool_audit TO {role}"));
    let r = as_role(&["upgrade"]);
    r.ok();
    assert!(
        r.stderr.contains("cannot be written") && r.stderr.contains("migrating without it"),
        "{}",
        r.stderr
    );
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2, A3]);
    db.run(&["check"]).ok();
    db.run(&["status", "--check"]).ok();
}

async fn finishing_a_half_done_step_is_said_by_every_command(db: TestDb) {
    db.run(&["upgrade"]).ok();
    // A3 was being rolled back when its run was cut off.
    mark(&db, A3, "down").await;
    let r = db.run(&["upgrade"]);
    let out = r.ok().stdout.clone();
    assert!(
        out.contains(&format!("finished the interrupted rollback of {A3}")),
        "{out}"
    );
    // The rollback it finished is not one of the migrations it applied.
    assert!(out.contains("then 1 migration applied"), "{out}");
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2, A3]);
    db.run(&["check"]).ok();

    // stamp records without running (on MySQL, A3's widening is then not in the schema,
    // which `check` would report), but the rollback it finishes first did run.
    mark(&db, A3, "down").await;
    let r = db.run(&["stamp", "head"]);
    let out = r.ok().stdout.clone();
    assert!(
        out.contains("finished the interrupted rollback of") && out.contains(A3),
        "{out}"
    );
    assert!(!out.contains("nothing to do"), "{out}");
    assert!(!out.contains("no migration was run"), "{out}");
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2, A3]);
    let r = db.run(&["--json", "stamp", "head"]);
    assert!(r.ok().json().get("finished").is_none(), "{}", r.stdout);
    db.run(&["status", "--check"]).ok();

    // The database named only in a file given with --config: the hint names the file, and
    // works as printed from elsewhere (it went to ./dbtool.db instead; found by a hostile run).
    mark(&db, A3, "down").await;
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("other.toml");
    std::fs::write(&file, format!("database_url = \"{}\"\n", db.url)).unwrap();
    let file = file.to_string_lossy().into_owned();
    let away = tempfile::tempdir().unwrap();
    let bare = |args: &[&str]| {
        Run::from(
            crate::common::dbtool_bare(away.path())
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let r = bare(&["--config", &file, "status"]);
    let hint = r.ok().hint();
    assert_eq!(
        hint,
        format!("dbtool --config {file} downgrade"),
        "{}",
        r.stderr
    );
    let args: Vec<&str> = hint.split_whitespace().skip(1).collect();
    bare(&args).ok();
    // The rollback was finished, on the database the file names.
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2]);
    assert!(!away.path().join("dbtool.db").exists());

    // A half-done rollback that drops a table holding rows: the dry run lists the rows the
    // real run asks about (it said only "nothing to do"; found by a hostile run).
    mark(&db, A2, "down").await;
    let dry = db.run(&["downgrade", "--dry-run"]);
    assert!(
        dry.ok().stdout.contains("drops table settings with 4 rows"),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains("nothing to do"), "{}", dry.stdout);
    let r = db.run(&["downgrade"]);
    assert!(
        r.expect_code(7).error_line().contains("settings (4 rows)"),
        "{}",
        r.stderr
    );
    // `upgrade` finishes that rollback first too: its dry run plans past it (it said the
    // table existed unrecorded), and the confirmation its refusal asks for is a flag it has.
    let dry = db.run(&["upgrade", "--dry-run"]);
    let out = dry.ok().stdout.clone();
    assert!(out.contains("drops table settings with 4 rows"), "{out}");
    assert!(out.contains(A2) && out.contains(A3), "{out}");
    let r = db.run(&["upgrade"]);
    assert!(
        r.expect_code(7).error_line().contains("re-run with --yes"),
        "{}",
        r.stderr
    );
    db.run(&["upgrade", "--yes"]).ok();
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2, A3]);

    // A stamp refused after finishing a rollback (what it would record is gone now) does
    // not say that nothing was changed (found by a hostile run).
    db.run(&["downgrade", "-1"]).ok();
    mark(&db, A2, "down").await;
    let r = db.run(&["stamp", "head", "--yes"]);
    let line = r.expect_code(9).error_line();
    assert!(
        line.contains("nothing else was changed (")
            && line.contains("was finished first: rolled back)")
            && !line.contains("nothing was changed"),
        "{line}"
    );
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1]);
    db.run(&["upgrade"]).ok();
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2, A3]);
}

/// Each entry starts when its step starts: on PostgreSQL the next step's entry is written
/// by the previous step's commit, and it counted that step's time too (found by a hostile
/// run).
async fn log_times_each_step_on_its_own(db: TestDb) {
    let r = db.run_with(
        &["--app", "fixture", "upgrade"],
        &[("DBTOOL_FIXTURE_SLEEP_MS", "800")],
    );
    r.ok();
    let doc = log_doc(&db, &[]);
    let took = |m: &str| {
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["migration"] == m)
            .and_then(|e| e["duration_ms"].as_i64())
            .unwrap_or_else(|| panic!("no duration for {m}: {doc}"))
    };
    assert!(took(F2) >= 800, "{:?}: {doc}", db.backend);
    assert!(took(F3) < 800, "{:?}: {doc}", db.backend);
}

/// Puts an in-progress marker on `version` as an interrupted run leaves it.
async fn mark(db: &TestDb, version: &str, direction: &str) {
    let has_row = db
        .count(&format!(
            "SELECT COUNT(*) FROM dbtool_state WHERE version = '{version}'"
        ))
        .await;
    if has_row > 0 {
        db.exec(&format!(
            "UPDATE dbtool_state SET in_progress = '{direction}', in_progress_since = 1 WHERE version = '{version}'"
        ))
        .await;
    } else {
        db.exec(&format!(
            "INSERT INTO dbtool_state (version, in_progress, in_progress_since, updated_at) VALUES ('{version}', '{direction}', 1, 1)"
        ))
        .await;
    }
}

async fn marker_of(db: &TestDb, version: &str) -> Vec<String> {
    db.strings(&format!(
        "SELECT COALESCE(in_progress, 'none') FROM dbtool_state WHERE version = '{version}'"
    ))
    .await
}

async fn repair_settles_a_marker_by_the_schema(db: TestDb) {
    // A database dbtool never wrote to: nothing to repair, and nothing is created.
    db.exec("CREATE TABLE unrelated (x INTEGER)").await;
    let r = db.run(&["repair", "--yes"]);
    r.ok();
    assert_eq!(
        db.tables().await,
        vec!["unrelated".to_string()],
        "{}",
        r.stdout
    );
    db.exec("DROP TABLE unrelated").await;
    // Killed after its DDL, before its record (MySQL commits DDL at once): every object of
    // the settings migration is there, so repair records it as applied.
    db.run(&["upgrade", A2]).ok();
    db.exec(&format!(
        "DELETE FROM seaql_migrations WHERE version = '{A2}'"
    ))
    .await;
    mark(&db, A2, "up").await;
    db.run(&["status", "--check"]).expect_code(13);
    // Without a terminal and without --yes nothing changes (exit 7); --dry-run says what would.
    let r = db.run(&["repair"]);
    assert!(
        r.expect_code(7)
            .error_line()
            .contains(&format!("record {A2}")),
        "{}",
        r.stderr
    );
    db.run(&["status", "--check"]).expect_code(13);
    let r = db.run(&["repair", "--dry-run"]);
    assert!(r.ok().stdout.contains("would record"), "{}", r.stdout);
    assert!(r.stdout.contains("as applied"), "{}", r.stdout);
    let r = db.run(&["--json", "repair", "--yes"]);
    let doc = r.ok().json();
    assert_eq!(doc["marker"]["settle"], "applied", "{doc}");
    assert_eq!(doc["marker"]["step"], A2, "{doc}");
    assert!(crate::migrate::recorded(&db)
        .await
        .contains(&A2.to_string()));
    assert_eq!(marker_of(&db, A2).await, vec!["none"]);
    db.run(&["status", "--check"]).expect_code(3); // only the widening is pending
    db.run(&["check"]).ok();
    // Killed before anything was created: nothing of it exists, so it is not applied.
    db.run(&["upgrade"]).ok();
    db.run(&["downgrade", A1, "--yes"]).ok();
    mark(&db, A2, "up").await;
    let r = db.run(&["repair", "-y"]);
    assert!(
        r.ok()
            .stdout
            .contains(&format!("record {A2} (d8cfd3cb4083) as not applied")),
        "{}",
        r.stdout
    );
    assert!(marker_of(&db, A2).await.is_empty(), "its state row goes");
    db.run(&["status", "--check"]).expect_code(3);
    db.run(&["check"]).ok();
    db.run(&["upgrade"]).ok();
    // Nothing to repair is said so, and audited repairs show in the log.
    assert!(db
        .run(&["repair"])
        .ok()
        .stdout
        .contains("nothing to repair"));
    assert!(has(&entries(&log_doc(&db, &[])), "repair", A2, "up", "ok"));
}

fn drop_settings_index(b: Backend) -> &'static str {
    match b {
        Backend::MySql => "DROP INDEX ix_settings_key ON settings",
        _ => "DROP INDEX ix_settings_key",
    }
}

async fn repair_refuses_a_partial_step_unless_forced(db: TestDb) {
    // An interrupted downgrade of the settings migration that got as far as its index.
    db.run(&["upgrade", A2]).ok();
    db.exec(drop_settings_index(db.backend)).await;
    mark(&db, A2, "down").await;
    // The dry run says what the real run will do: refuse, in the same words.
    let dry = db.run(&["repair", "--dry-run"]);
    let dry_line = dry.expect_code(9).error_line().to_owned();
    let r = db.run(&["repair", "--yes"]);
    let line = r.expect_code(9).error_line().to_owned();
    assert_eq!(dry_line, line);
    assert!(
        line.contains("index settings.ix_settings_key"),
        "lists what is missing: {line}"
    );
    assert!(line.contains("table settings"), "and what is there: {line}");
    assert!(line.contains("`dbtool downgrade`"), "{line}");
    assert!(line.contains("`dbtool repair --force`"), "{line}");
    assert_eq!(marker_of(&db, A2).await, vec!["down"], "nothing changed");
    // Forced, dried: says what it would do, and does not claim it was done.
    let r = db.run(&["repair", "--force", "--dry-run"]);
    r.ok();
    assert!(!r.stderr.contains("was cleared"), "{}", r.stderr);
    assert!(r.stdout.contains("would clear"), "{}", r.stdout);
    assert_eq!(marker_of(&db, A2).await, vec!["down"], "nothing changed");
    let r = db.run(&["repair", "--force", "--yes"]);
    r.ok();
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert!(
        r.stdout.contains("stays recorded as applied"),
        "{}",
        r.stdout
    );
    assert_eq!(marker_of(&db, A2).await, vec!["none"]);
    assert!(crate::migrate::recorded(&db)
        .await
        .contains(&A2.to_string()));
    db.run(&["status", "--check"]).expect_code(3);
    let r = db.run(&["check"]);
    assert!(
        r.expect_code(9).stdout.contains("ix_settings_key"),
        "{}",
        r.stdout
    );
}

async fn repair_rebaselines_a_changed_checksum(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let fake = "0".repeat(64);
    db.exec(&format!(
        "UPDATE dbtool_state SET checksum = '{fake}' WHERE version = '{A1}'"
    ))
    .await;
    let r = db.run(&["status", "--check"]);
    r.expect_code(14);
    assert!(r.stdout.contains("applied (changed)"), "{}", r.stdout);
    assert!(
        r.stderr.contains(A1) && r.stderr.contains("`dbtool repair`"),
        "{}",
        r.stderr
    );
    let doc = db.run(&["--json", "status"]).ok().json();
    assert_eq!(
        doc["migrations"][0]["checksum"]["state"], "mismatch",
        "{doc}"
    );
    assert_eq!(doc["problems"][0]["kind"], "checksum_mismatch", "{doc}");
    let r = db.run(&["check"]);
    assert!(r.expect_code(9).stdout.contains("checksum"), "{}", r.stdout);
    let r = db.run(&["repair", "--yes"]);
    assert!(
        r.ok()
            .stdout
            .contains(&format!("re-record the checksum of {A1}")),
        "{}",
        r.stdout
    );
    db.run(&["status", "--check"]).ok();
    db.run(&["check"]).ok();
    assert_eq!(
        db.strings(&format!(
            "SELECT checksum_origin FROM dbtool_state WHERE version = '{A1}'"
        ))
        .await,
        vec!["repaired"]
    );
    assert!(has(&entries(&log_doc(&db, &[])), "repair", A1, "", "ok"));
}

/// `status --check`'s exit code and the kind its JSON names first.
fn check_code(db: &TestDb) -> (i32, String) {
    let r = db.run(&["--json", "status", "--check"]);
    let doc = r.json();
    (
        r.code,
        doc["problems"][0]["kind"].as_str().unwrap_or("").to_owned(),
    )
}

async fn status_check_exits_with_each_code(db: TestDb) {
    assert_eq!(check_code(&db), (3, "pending".into()));
    db.run(&["upgrade"]).ok();
    assert_eq!(check_code(&db), (0, String::new()));
    // Half-done beats a checksum mismatch, which beats the rest.
    mark(&db, A3, "up").await;
    db.exec(&format!(
        "UPDATE dbtool_state SET checksum = '{}' WHERE version = '{A1}'",
        "0".repeat(64)
    ))
    .await;
    assert_eq!(check_code(&db), (13, "half_done".into()));
    db.exec(&format!(
        "UPDATE dbtool_state SET in_progress = NULL WHERE version = '{A3}'"
    ))
    .await;
    assert_eq!(check_code(&db), (14, "checksum_mismatch".into()));
    db.run(&["repair", "--yes"]).ok();
    db.exec("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20990101_000000_from_the_future', 4000000000)").await;
    let (code, kind) = check_code(&db);
    assert_eq!((code, kind.as_str()), (15, "unknown_recorded"));
    db.exec("DELETE FROM seaql_migrations WHERE version = 'm20990101_000000_from_the_future'")
        .await;
    db.exec(&format!(
        "DELETE FROM seaql_migrations WHERE version = '{A1}'"
    ))
    .await;
    assert_eq!(check_code(&db), (16, "out_of_order".into()));
    let r = db.run(&["status", "--check"]);
    assert!(r.expect_code(16).stderr.contains(A1), "{}", r.stderr);
}

async fn upgrade_refuses_out_of_order_and_the_hint_works(db: TestDb) {
    db.run(&["upgrade"]).ok();
    // users and its record gone, settings still applied: A1 is pending before applied ones.
    db.exec("DROP TABLE users").await;
    db.exec(&format!(
        "DELETE FROM seaql_migrations WHERE version = '{A1}'"
    ))
    .await;
    db.exec(&format!("DELETE FROM dbtool_state WHERE version = '{A1}'"))
        .await;
    // A2 applied before checksums existed: a run that goes ahead would back-fill it.
    db.exec(&format!("DELETE FROM dbtool_state WHERE version = '{A2}'"))
        .await;
    let r = db.run(&["upgrade"]);
    let line = r.expect_code(16).error_line().to_owned();
    assert!(line.contains(A1), "names it: {line}");
    assert!(line.contains("nothing was changed"), "{line}");
    assert!(!db.tables().await.contains(&"users".to_string()));
    let state = db
        .strings(&format!(
            "SELECT version FROM dbtool_state WHERE version = '{A2}'"
        ))
        .await;
    assert!(
        state.is_empty(),
        "a refused run back-fills nothing: {state:?}"
    );
    // The hint, run exactly as printed.
    let hint = line
        .split('`')
        .find(|s| s.contains("--out-of-order"))
        .unwrap_or_else(|| panic!("no --out-of-order hint: {line}"));
    let words: Vec<&str> = hint.split_whitespace().collect();
    assert_eq!(words[0], "dbtool", "{hint}");
    db.run(&words[1..]).ok();
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2, A3]);
    db.run(&["status", "--check"]).ok();
    db.run(&["check"]).ok();
}

async fn stamp_over_a_half_made_migration(db: TestDb) {
    // settings exists without its index and without its record.
    db.run(&["upgrade", A2]).ok();
    db.run(&["stamp", A1]).ok();
    db.exec(drop_settings_index(db.backend)).await;
    let r = db.run(&["stamp", A2]);
    let line = r.expect_code(9).error_line().to_owned();
    assert!(
        line.contains("index settings.ix_settings_key"),
        "lists what is missing: {line}"
    );
    assert!(line.contains("--force"), "{line}");
    assert_eq!(
        crate::migrate::recorded(&db).await,
        vec![A1],
        "nothing recorded"
    );
    let r = db.run(&["stamp", A2, "--force"]);
    r.ok();
    assert!(r.stderr.contains("--force"), "says so: {}", r.stderr);
    assert_eq!(crate::migrate::recorded(&db).await, vec![A1, A2]);
    let r = db.run(&["check"]);
    assert!(
        r.expect_code(9).stdout.contains("ix_settings_key"),
        "check reports the drift: {}",
        r.stdout
    );
}

/// A small pseudo-random sequence of kill moments in 0..=300 ms (no extra crate).
fn moments(seed: u64, n: usize) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 301
        })
        .collect()
}

/// bench/soak.sh in small: Avatar's upgrade and downgrade SIGKILLed at random moments; the
/// same command run again leaves a database that equals its record, and nothing after fails.
async fn kill_sample(db: TestDb) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for (i, ms) in moments(seed, 8).into_iter().enumerate() {
        let cmd: &[&str] = if i % 2 == 0 {
            &["upgrade"]
        } else {
            &["downgrade", "base", "--yes"]
        };
        let mut child = spawn(&db, cmd, &[]);
        // The moment of the kill is the thing under test, not a synchronisation.
        std::thread::sleep(Duration::from_millis(ms));
        sigkill(&mut child);
        // The record does not lie: a half-done step is marked, or the schema equals it (or,
        // killed before SQLite created the file, there is no database at all).
        let no_file = db.backend == Backend::Sqlite && !db.dir().join("test.db").exists();
        if !no_file && db.run(&["status", "--check"]).code != 13 {
            let r = db.run(&["check"]);
            assert_eq!(
                r.code, 0,
                "not marked half-done after a kill at {ms} ms in {cmd:?} (seed {seed}), yet: {}{}",
                r.stdout, r.stderr
            );
        }
        let mut again = vec!["--lock-timeout", "60"];
        again.extend_from_slice(cmd);
        let r = db.run(&again);
        assert_eq!(
            r.code, 0,
            "re-running {cmd:?} after a kill at {ms} ms (seed {seed}): {}",
            r.stderr
        );
        let r = db.run(&["check"]);
        assert_eq!(
            r.code, 0,
            "check after a kill at {ms} ms in {cmd:?} (seed {seed}): {}{}",
            r.stdout, r.stderr
        );
        let expected = if i % 2 == 0 { 0 } else { 3 };
        let r = db.run(&["status", "--check"]);
        assert_eq!(
            r.code, expected,
            "status --check after a kill at {ms} ms in {cmd:?} (seed {seed}): {}{}",
            r.stdout, r.stderr
        );
    }
}
