//! `dbtool settings` through the real binary on every backend: byte-exact round trips via
//! argument, file and stdin; missing keys; export → import; `edit` with a scripted editor;
//! confirmation of `unset`; refusal on the wrong app or an unmigrated database.

use crate::common::{Backend, Run, TestDb};
use crate::on_all_backends;
use chrono::NaiveDate;
use entity::avatar::setting;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use std::process::Stdio;

on_all_backends!(
    settings_round_trip_through_argument_file_and_stdin,
    settings_get_missing_key,
    settings_export_import_round_trip,
    settings_edit_with_editor_script,
    settings_unset_needs_yes,
    settings_refuse_wrong_app_bad_keys_and_unmigrated_database,
    settings_list_previews_and_json,
);

/// Multi-line, quoted, non-ASCII, with tabs and CRLF, and no trailing newline.
const TRICKY: &str = "Line one: \"double\" and 'single' quotes, $HOME `ticks` \\ backslash\n\
                      ünïcödé — 中文 — emoji 🎭🚀\n\tindented\r\nlast line without newline";

async fn row(db: &TestDb, key: &str) -> Option<setting::Model> {
    let c = db.connect().await;
    let r = setting::Entity::find()
        .filter(setting::Column::Key.eq(key))
        .all(&c)
        .await
        .expect("read settings")
        .into_iter()
        .find(|m| m.key == key);
    c.close().await.ok();
    r
}

async fn all_rows(db: &TestDb) -> Vec<setting::Model> {
    let c = db.connect().await;
    let r = setting::Entity::find()
        .order_by_asc(setting::Column::Key)
        .all(&c)
        .await
        .expect("read settings");
    c.close().await.ok();
    r
}

fn get(db: &TestDb, key: &str) -> Run {
    db.run(&["settings", "get", key])
}

async fn settings_round_trip_through_argument_file_and_stdin(db: TestDb) {
    db.run(&["upgrade"]).ok();

    // As an argument: created, stored and printed byte for byte (no newline: not a terminal).
    let r = db.run(&["settings", "set", "bio_prompt_custom", TRICKY]);
    r.ok();
    assert!(
        r.stdout.contains("created setting 'bio_prompt_custom'"),
        "{}",
        r.stdout
    );
    assert_eq!(get(&db, "bio_prompt_custom").ok().stdout, TRICKY);
    assert_eq!(row(&db, "bio_prompt_custom").await.unwrap().value, TRICKY);

    // The same value again: unchanged, nothing written.
    let r = db.run(&["settings", "set", "bio_prompt_custom", TRICKY]);
    assert!(r.ok().stdout.contains("unchanged"), "{}", r.stdout);

    // Age the row, then update it from a file (with a trailing newline, which is kept):
    // created_at stays, updated_at moves.
    let old = NaiveDate::from_ymd_opt(2020, 1, 2)
        .unwrap()
        .and_hms_opt(3, 4, 5)
        .unwrap();
    {
        let c = db.connect().await;
        setting::Entity::update_many()
            .col_expr(setting::Column::CreatedAt, old.into())
            .col_expr(setting::Column::UpdatedAt, old.into())
            .filter(setting::Column::Key.eq("bio_prompt_custom"))
            .exec(&c)
            .await
            .unwrap();
        c.close().await.ok();
    }
    let from_file = format!("{TRICKY}\nfrom a file\n");
    let path = db.dir().join("prompt.txt");
    std::fs::write(&path, &from_file).unwrap();
    let r = db.run(&[
        "--json",
        "settings",
        "set",
        "bio_prompt_custom",
        "--file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(r.ok().json()["change"], "updated", "{}", r.stdout);
    assert_eq!(get(&db, "bio_prompt_custom").ok().stdout, from_file);
    let m = row(&db, "bio_prompt_custom").await.unwrap();
    assert_eq!(m.value, from_file);
    assert_eq!(m.created_at, old, "created_at must be kept");
    assert!(m.updated_at > old, "updated_at must move: {}", m.updated_at);

    // From standard input with `-`: every byte, including the final CRLF.
    let from_stdin = "stdin: «guillemets» and \"quotes\"\r\nsecond line\r\n";
    let r = db.run_stdin(&["settings", "set", "bio_prompt_x", "-"], from_stdin);
    assert!(
        r.ok().stdout.contains("updated setting 'bio_prompt_x'"),
        "{}",
        r.stdout
    );
    assert_eq!(get(&db, "bio_prompt_x").ok().stdout, from_stdin);

    // A value that looks like an option, and an empty value.
    db.run(&["settings", "set", "dash", "--not-an-option"]).ok();
    assert_eq!(get(&db, "dash").ok().stdout, "--not-an-option");
    db.run(&["settings", "set", "empty", ""]).ok();
    assert_eq!(get(&db, "empty").ok().stdout, "");
    assert_eq!(row(&db, "empty").await.unwrap().value, "");

    // Neither a value nor --file: a usage error; a file that is not UTF-8 is refused.
    db.run(&["settings", "set", "k"]).expect_code(2);
    let bin = db.dir().join("bin.dat");
    std::fs::write(&bin, [0x66, 0xff, 0xfe]).unwrap();
    let r = db.run(&["settings", "set", "k", "--file", bin.to_str().unwrap()]);
    assert!(
        r.expect_code(2).stderr.contains("not UTF-8"),
        "{}",
        r.stderr
    );
    assert!(row(&db, "k").await.is_none());
}

async fn settings_get_missing_key(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let r = get(&db, "no_such_key");
    r.expect_code(8);
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    assert!(
        r.stderr.contains("no setting 'no_such_key'"),
        "{}",
        r.stderr
    );

    let r = db.run(&[
        "settings",
        "get",
        "no_such_key",
        "--default",
        "fallback\nvalue",
    ]);
    assert_eq!(r.ok().stdout, "fallback\nvalue");
    let r = db.run(&["settings", "get", "no_such_key", "--default", ""]);
    assert_eq!(r.ok().stdout, "");

    // An existing key ignores --default.
    let r = db.run(&["settings", "get", "bio_prompt_tiktok", "--default", "x"]);
    assert!(
        r.ok().stdout.starts_with("Write the TikTok bio"),
        "{}",
        r.stdout
    );

    // --json: a document with the value, or an error document with code 8.
    let r = db.run(&["--json", "settings", "get", "no_such_key", "--default", "d"]);
    let j = r.ok().json();
    assert_eq!(j["value"], "d");
    assert_eq!(j["default"], true);
    let r = db.run(&["--json", "settings", "get", "no_such_key"]);
    assert_eq!(r.expect_code(8).json()["error"]["code"], 8);
}

async fn settings_export_import_round_trip(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "bio_prompt_custom", TRICKY])
        .ok();
    db.run(&["settings", "set", "bio_prompt_x", "changed X prompt ✓"])
        .ok();
    let export = db.run(&["settings", "export"]);
    let doc = export.ok().json();
    let items = doc["settings"].as_array().expect("settings array");
    assert_eq!(items.len(), 5, "{}", export.stdout);
    let custom = items
        .iter()
        .find(|i| i["key"] == "bio_prompt_custom")
        .unwrap();
    assert_eq!(custom["value"], TRICKY);
    assert!(custom["created_at"].as_str().unwrap().ends_with('Z'));
    let file = db.dir().join("settings.json");
    std::fs::write(&file, &export.stdout).unwrap();

    // A fresh database of the same backend, migrated: it has the four default prompts.
    let target = TestDb::new(db.backend, "settings_import_target");
    target.run(&["upgrade"]).ok();
    let before = all_rows(&target).await;

    let r = target.run(&[
        "--json",
        "settings",
        "import",
        file.to_str().unwrap(),
        "--dry-run",
    ]);
    let j = r.ok().json();
    assert_eq!(
        (
            j["created"].as_u64(),
            j["updated"].as_u64(),
            j["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(3)),
        "{}",
        r.stdout
    );
    assert_eq!(j["dry_run"], true);
    assert_eq!(all_rows(&target).await, before, "a dry run changes nothing");
    let r = target.run(&["settings", "import", file.to_str().unwrap(), "--dry-run"]);
    assert!(r.ok().stdout.contains("would create"), "{}", r.stdout);

    // Through standard input this time.
    let r = target.run_stdin(&["settings", "import", "-"], &export.stdout);
    assert!(
        r.ok().stdout.contains("1 created, 1 updated, 3 unchanged"),
        "{}",
        r.stdout
    );

    // Same keys and values; the created row carries the source's times exactly.
    let src = all_rows(&db).await;
    let dst = all_rows(&target).await;
    let kv = |rows: &[setting::Model]| {
        rows.iter()
            .map(|m| (m.key.clone(), m.value.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(kv(&src), kv(&dst));
    let pick =
        |rows: &[setting::Model], k: &str| rows.iter().find(|m| m.key == k).cloned().unwrap();
    let (s, d) = (
        pick(&src, "bio_prompt_custom"),
        pick(&dst, "bio_prompt_custom"),
    );
    assert_eq!((s.created_at, s.updated_at), (d.created_at, d.updated_at));
    let (s, d) = (pick(&src, "bio_prompt_x"), pick(&dst, "bio_prompt_x"));
    assert_eq!(s.updated_at, d.updated_at);

    // Importing again changes nothing; the export of the copy matches the original's values.
    let r = target.run(&["settings", "import", file.to_str().unwrap()]);
    assert!(
        r.ok().stdout.contains("0 created, 0 updated, 5 unchanged"),
        "{}",
        r.stdout
    );

    // Bad documents are refused with the entry named, and nothing changes.
    let bad = db.dir().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"settings":[{"key":"ok","value":"v"},{"key":"","value":"x"}]}"#,
    )
    .unwrap();
    let r = target.run(&["settings", "import", bad.to_str().unwrap()]);
    assert!(r.expect_code(2).stderr.contains("entry 2"), "{}", r.stderr);
    std::fs::write(&bad, "not json").unwrap();
    target
        .run(&["settings", "import", bad.to_str().unwrap()])
        .expect_code(2);
    assert!(row(&target, "ok").await.is_none());
}

/// Runs `settings edit KEY` with `EDITOR` (and optionally `VISUAL`) set.
fn edit(db: &TestDb, key: &str, editor: &str, visual: Option<&str>) -> Run {
    let mut c = db.cmd();
    c.args(["settings", "edit", key])
        .env("EDITOR", editor)
        .env_remove("VISUAL")
        .stdin(Stdio::null());
    if let Some(v) = visual {
        c.env("VISUAL", v);
    }
    Run::from(c.output().expect("run dbtool"))
}

fn script(db: &TestDb, name: &str, body: &str) -> String {
    let path = db.dir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    // Run through `sh PATH`, which also exercises splitting $EDITOR on whitespace.
    format!("sh {}", path.display())
}

async fn settings_edit_with_editor_script(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "p", "first line\nsecond ✓"])
        .ok();

    // An editor that appends a line (and, like most editors, a final newline).
    let append = script(
        &db,
        "append.sh",
        r#"printf '\nedited by script ünï\n' >> "$1""#,
    );
    let r = edit(&db, "p", &append, None);
    assert!(
        r.ok().stdout.contains("updated setting 'p'"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(
        row(&db, "p").await.unwrap().value,
        "first line\nsecond ✓\nedited by script ünï"
    );

    // An editor that saves without changes (only adds the final newline): nothing saved.
    let touch = script(&db, "touch.sh", r#"printf '\n' >> "$1""#);
    let before = row(&db, "p").await.unwrap();
    let r = edit(&db, "p", &touch, None);
    assert!(r.ok().stdout.contains("not changed"), "{}", r.stdout);
    assert_eq!(row(&db, "p").await.unwrap(), before);

    // $VISUAL wins over $EDITOR.
    let replace = script(&db, "replace.sh", r#"printf 'from VISUAL' > "$1""#);
    edit(&db, "p", "false", Some(&replace)).ok();
    assert_eq!(row(&db, "p").await.unwrap().value, "from VISUAL");

    // A failing editor saves nothing.
    let r = edit(&db, "p", "false", None);
    assert!(
        r.expect_code(1).stderr.contains("nothing was saved"),
        "{}",
        r.stderr
    );
    assert_eq!(row(&db, "p").await.unwrap().value, "from VISUAL");

    // A change made in the database while the editor is open is not overwritten.
    let racing = script(
        &db,
        "race.sh",
        &format!(
            "{} settings set p 'changed meanwhile' >/dev/null\nprintf 'mine' > \"$1\"",
            crate::common::bin().display()
        ),
    );
    let r = edit(&db, "p", &racing, None);
    assert!(
        r.expect_code(1)
            .stderr
            .contains("changed in the database while you were editing"),
        "{}",
        r.stderr
    );
    assert_eq!(row(&db, "p").await.unwrap().value, "changed meanwhile");
    let kept = r.stderr.split("your text is in ").nth(1).unwrap().trim();
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "mine");
    std::fs::remove_file(kept).ok();

    // A missing key.
    edit(&db, "missing", &append, None).expect_code(8);
}

async fn settings_unset_needs_yes(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "gone", "soon"]).ok();
    let r = db.run(&["settings", "unset", "gone"]);
    assert!(r.expect_code(7).stderr.contains("--yes"), "{}", r.stderr);
    assert!(row(&db, "gone").await.is_some());
    let r = db.run(&["--json", "settings", "unset", "gone", "--yes"]);
    assert_eq!(r.ok().json()["deleted"], true);
    assert!(row(&db, "gone").await.is_none());
    db.run(&["settings", "unset", "gone", "--yes"])
        .expect_code(8);
}

async fn settings_refuse_wrong_app_bad_keys_and_unmigrated_database(db: TestDb) {
    // Nothing migrated: says which upgrade to run (a SQLite file that does not exist yet
    // cannot be connected to: 6; otherwise the migration is pending: 3).
    let r = db.run(&["settings", "list"]);
    r.expect_code(if db.backend == crate::common::Backend::Sqlite {
        6
    } else {
        3
    });
    assert!(r.stderr.contains("`dbtool upgrade`"), "{}", r.stderr);
    // Only the users migration: still no settings table.
    db.run(&["upgrade", "+1"]).ok();
    let r = db.run(&["settings", "set", "k", "v"]);
    r.expect_code(3);
    assert!(
        r.stderr.contains("d8cfd3cb4083") && r.stderr.contains("`dbtool upgrade`"),
        "{}",
        r.stderr
    );
    db.run(&["upgrade"]).ok();

    let r = db.run(&["--app", "neurachar", "settings", "get", "bio_prompt_x"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("NeuraChar has no settings"),
        "{}",
        r.stderr
    );

    // Keys: empty, too long, control characters, surrounding blanks.
    let long = "k".repeat(256);
    for bad in ["", long.as_str(), "a\nb", " padded"] {
        let r = db.run(&["settings", "set", bad, "v"]);
        assert!(
            r.expect_code(2).stderr.contains("setting key"),
            "{bad:?}: {}",
            r.stderr
        );
    }
    let longest = "k".repeat(255);
    db.run(&["settings", "set", &longest, "v"]).ok();
    assert_eq!(get(&db, &longest).ok().stdout, "v");

    // Keys are exact. MySQL/MariaDB compare them ignoring case, so there a key that differs
    // only in case is refused instead of silently overwriting the other one.
    let r = db.run(&["settings", "set", "BIO_PROMPT_X", "upper"]);
    if db.backend == Backend::MySql {
        assert!(r.expect_code(2).stderr.contains("collides"), "{}", r.stderr);
        get(&db, "BIO_PROMPT_X").expect_code(8);
    } else {
        r.ok();
        assert_eq!(get(&db, "BIO_PROMPT_X").ok().stdout, "upper");
    }
    assert!(get(&db, "bio_prompt_x")
        .ok()
        .stdout
        .starts_with("Write the X"));
}

async fn settings_list_previews_and_json(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "multi", "alpha\nbeta\ngamma"])
        .ok();
    let r = db.run(&["settings", "list"]);
    let out = &r.ok().stdout;
    let line = out.lines().find(|l| l.contains("multi")).unwrap();
    assert!(line.contains("alpha ⏎ beta ⏎ gamma (3 lines)"), "{out}");
    assert!(out.contains("5 setting(s)"), "{out}");
    assert!(
        !out.contains("persona's name"),
        "values are previews only: {out}"
    );

    let j = db.run(&["--json", "settings", "list"]).json();
    let items = j["settings"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let multi = items.iter().find(|i| i["key"] == "multi").unwrap();
    assert_eq!(multi["value"], "alpha\nbeta\ngamma");
    assert!(items
        .iter()
        .any(|i| i["value"].as_str().unwrap().contains("persona's name")));
}
