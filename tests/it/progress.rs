//! How a run shows its progress (`--progress lines|json`, the tables a step works on) and
//! how it reviews its plan with lint before the first step (`upgrade --strict`).

use crate::common::{Backend, Run, TestDb};
use crate::on_all_backends;
use serde_json::Value;

on_all_backends!(lines_name_the_tables_a_step_works_on);

fn recorded_names(r: &Run) -> Vec<String> {
    r.json()["migrations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["state"] == "applied")
                .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `--progress json` prints one JSON object per event on stderr and nothing else there;
/// the step that builds indexes names its tables with their row estimates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_progress_is_one_event_per_line() {
    let db = TestDb::new(Backend::Postgres, "progress_json");
    db.run(&["--app", "neurachar", "upgrade", "m20251212_000005"])
        .ok();
    db.exec(
        "INSERT INTO characters (id, name, system_prompt) \
         SELECT gen_random_uuid(), 'a', 'b' FROM generate_series(1, 3000)",
    )
    .await;
    db.exec("ANALYZE characters").await;
    let r = db.run(&["--app", "neurachar", "--progress", "json", "upgrade"]);
    r.ok();
    let events: Vec<Value> = r
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["step_started", "step_finished"], "{}", r.stderr);
    let started = &events[0];
    assert_eq!(
        started["step"]["name"],
        "m20251212_000006_add_foreign_key_indexes"
    );
    assert_eq!(started["direction"], "up");
    assert_eq!(started["transactional"], false);
    let tables = started["tables"].as_array().expect("tables");
    let characters = tables
        .iter()
        .find(|t| t["table"] == "characters")
        .unwrap_or_else(|| panic!("{started}"));
    assert_eq!(characters["rows"], 3000);
    // Never analysed: no estimate rather than a wrong one.
    let messages = tables.iter().find(|t| t["table"] == "messages").unwrap();
    assert_eq!(messages["rows"], Value::Null);
    for e in &events {
        let at = e["at"].as_str().expect("at");
        chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{e}: {at}"));
    }
    assert!(
        events[1]["done"]["elapsed_ms"].as_f64().is_some(),
        "{}",
        events[1]
    );
    // The result still goes to stdout as usual.
    assert!(r.stdout.contains("now at m20251212_000006"), "{}", r.stdout);
}

/// The lines name the tables with their sizes, on every backend; SQLite has no estimate.
async fn lines_name_the_tables_a_step_works_on(db: TestDb) {
    db.run(&["--app", "neurachar", "upgrade", "m20251212_000005"])
        .ok();
    let r = db.run(&["--app", "neurachar", "--progress", "lines", "upgrade"]);
    r.ok();
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("applying m20251212_000006"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(
        line.contains(" on ") && line.contains("characters") && line.contains("chats"),
        "{line}"
    );
    let r = db.run(&["--app", "neurachar", "--progress", "bogus", "status"]);
    r.expect_code(2);
    assert!(r.stderr.contains("bogus"), "{}", r.stderr);
}

/// Before the first step, the run lints what it is about to do on this database's real
/// table sizes: a blocking index build on a large table is a warning, and with `--strict`
/// the run refuses having changed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_what_lint_calls_an_error() {
    let db = TestDb::new(Backend::Postgres, "progress_strict");
    db.run(&["--app", "fixture", "upgrade", "f002_create_beta_slowly"])
        .ok();
    db.exec("INSERT INTO alpha (id) SELECT g FROM generate_series(1, 150000) g")
        .await;
    db.exec("ANALYZE alpha").await;
    let upgrade = |extra: &[&str]| {
        let mut args = vec!["--app", "fixture", "upgrade"];
        args.extend_from_slice(extra);
        Run::from(
            db.cmd()
                .args(&args)
                .env("DBTOOL_FIXTURE_INDEX", "1")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    };

    let r = upgrade(&["--strict"]);
    let line = r.expect_code(19).error_line();
    assert!(
        line.contains("lint finding") && line.contains("nothing was changed"),
        "{line}"
    );
    assert!(
        r.stderr.contains("require-concurrent-index-creation") && r.stderr.contains("alpha"),
        "{}",
        r.stderr
    );
    let status = db.run(&["--app", "fixture", "--json", "status"]);
    assert_eq!(
        recorded_names(&status),
        ["f001_create_alpha", "f002_create_beta_slowly"]
    );
    assert!(!db.tables().await.contains(&"gamma".to_string()));

    // Without --strict: warned, then applied.
    let r = upgrade(&[]);
    r.ok();
    let warning = r
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: lint require-concurrent-index-creation"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(warning.contains("(error) on alpha"), "{warning}");
    assert!(db.tables().await.contains(&"gamma".to_string()));

    // --json carries the same warnings in its one document.
    let r = db.run_with(
        &["--app", "fixture", "downgrade", "-1", "--yes"],
        &[("DBTOOL_FIXTURE_INDEX", "1")],
    );
    r.ok();
    let doc = upgrade(&["--json"]).ok().json();
    let warned = doc["warnings"].as_array().is_some_and(|w| {
        w.iter().any(|w| {
            w.as_str()
                .is_some_and(|w| w.starts_with("lint require-concurrent-index-creation"))
        })
    });
    assert!(warned, "{doc}");

    // A clean plan passes --strict silently.
    let db2 = TestDb::new(Backend::Postgres, "progress_strict_clean");
    let r = db2.run(&["--app", "neurachar", "upgrade", "--strict"]);
    r.ok();
    assert!(!r.stderr.contains("lint"), "{}", r.stderr);
}
