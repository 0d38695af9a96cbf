//! `dbtool settings` through the real binary on every backend: byte-exact round trips via
//! argument, file and stdin; missing keys; export → import; `edit` with a scripted editor;
//! confirmation of `unset`; refusal on the wrong app or an unmigrated database; new keys only
//! with `--create` (and a suggestion for a typo), empty values only with `--allow-empty`, NUL
//! bytes never, for set, import and edit alike; values of 70 KB and 10 MB on every backend
//! (MySQL/MariaDB after the migration that widens the column), and exports that import into
//! every other backend byte for byte.

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
    settings_new_keys_need_create,
    settings_empty_values_need_allow_empty,
    settings_nul_bytes_are_refused,
    settings_large_values,
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

/// The run's stderr, which must be exactly one `error: ...` line; that line.
#[track_caller]
fn one_error_line(r: &Run) -> &str {
    r.error_line()
}

async fn settings_round_trip_through_argument_file_and_stdin(db: TestDb) {
    db.run(&["upgrade"]).ok();

    // As an argument: created, stored and printed byte for byte (no newline: not a terminal).
    let r = db.run(&["settings", "set", "bio_prompt_custom", TRICKY, "--create"]);
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
    db.run(&["settings", "set", "dash", "--not-an-option", "--create"])
        .ok();
    assert_eq!(get(&db, "dash").ok().stdout, "--not-an-option");
    db.run(&["settings", "set", "empty", "", "--create", "--allow-empty"])
        .ok();
    assert_eq!(get(&db, "empty").ok().stdout, "");
    assert_eq!(row(&db, "empty").await.unwrap().value, "");

    // Neither a value nor --file: a usage error; a file that is not UTF-8 is refused.
    db.run(&["settings", "set", "k"]).expect_code(2);
    let bin = db.dir().join("bin.dat");
    std::fs::write(&bin, [0x66, 0xff, 0xfe]).unwrap();
    let r = db.run(&[
        "settings",
        "set",
        "k",
        "--file",
        bin.to_str().unwrap(),
        "--create",
    ]);
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
    db.run(&["settings", "set", "bio_prompt_custom", TRICKY, "--create"])
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

    // bio_prompt_custom is new there: the import needs --create, and without it nothing at
    // all is imported (not even the update of bio_prompt_x), in a dry run too.
    for dry in [false, true] {
        let mut args = vec!["settings", "import", file.to_str().unwrap()];
        if dry {
            args.push("--dry-run");
        }
        let r = target.run(&args);
        let line = one_error_line(r.expect_code(8));
        assert!(
            line.contains("'bio_prompt_custom'") && line.contains("--create"),
            "{line}"
        );
        assert!(line.contains("settings.json"), "names the file: {line}");
        assert_eq!(all_rows(&target).await, before, "nothing imported");
    }

    let r = target.run(&[
        "--json",
        "settings",
        "import",
        file.to_str().unwrap(),
        "--dry-run",
        "--create",
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
    let r = target.run(&[
        "settings",
        "import",
        file.to_str().unwrap(),
        "--dry-run",
        "--create",
    ]);
    assert!(r.ok().stdout.contains("would create"), "{}", r.stdout);

    // Through standard input this time.
    let r = target.run_stdin(&["settings", "import", "-", "--create"], &export.stdout);
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

    // Importing again changes nothing, and needs no --create: every key is stored now.
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
    edit_with(db, &[key], editor, visual)
}

/// Runs `settings edit ARGS` with `EDITOR` (and optionally `VISUAL`) set.
fn edit_with(db: &TestDb, args: &[&str], editor: &str, visual: Option<&str>) -> Run {
    let mut c = db.cmd();
    c.args(["settings", "edit"])
        .args(args)
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
    db.run(&["settings", "set", "p", "first line\nsecond ✓", "--create"])
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
    db.run(&["settings", "set", "gone", "soon", "--create"])
        .ok();
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
    // Nothing migrated: says which upgrade to run (exit 3: a migration is pending; a SQLite
    // file that does not exist yet is no database at all: 6).
    let r = db.run(&["settings", "list"]);
    r.expect_code(if db.backend == Backend::Sqlite { 6 } else { 3 });
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
    db.run(&["settings", "set", &longest, "v", "--create"]).ok();
    assert_eq!(get(&db, &longest).ok().stdout, "v");

    // Keys are exact. MySQL/MariaDB compare them ignoring case, so there a key that differs
    // only in case is refused instead of silently overwriting the other one. Elsewhere it is
    // a new key: it needs --create, and the error points at the key it resembles.
    let r = db.run(&["settings", "set", "BIO_PROMPT_X", "upper"]);
    if db.backend == Backend::MySql {
        assert!(r.expect_code(2).stderr.contains("collides"), "{}", r.stderr);
        let r = db.run(&["settings", "set", "BIO_PROMPT_X", "upper", "--create"]);
        assert!(r.expect_code(2).stderr.contains("collides"), "{}", r.stderr);
        get(&db, "BIO_PROMPT_X").expect_code(8);
    } else {
        let line = one_error_line(r.expect_code(8));
        assert!(line.contains("did you mean bio_prompt_x?"), "{line}");
        db.run(&["settings", "set", "BIO_PROMPT_X", "upper", "--create"])
            .ok();
        assert_eq!(get(&db, "BIO_PROMPT_X").ok().stdout, "upper");
    }
    assert!(get(&db, "bio_prompt_x")
        .ok()
        .stdout
        .starts_with("Write the X"));
}

async fn settings_list_previews_and_json(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "multi", "alpha\nbeta\ngamma", "--create"])
        .ok();
    let r = db.run(&["settings", "list"]);
    let out = &r.ok().stdout;
    let line = out.lines().find(|l| l.contains("multi")).unwrap();
    assert!(line.contains("alpha ⏎ beta ⏎ gamma (3 lines)"), "{out}");
    assert!(out.contains("5 settings"), "{out}");
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

/// The four default prompts, as the settings migration inserts them.
fn default_prompt(key: &str) -> &'static str {
    migration::avatar::DEFAULT_PROMPTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .unwrap()
}

/// An editor script that records that it ran (and what it was given) in `seen`, then
/// replaces the text with `body` (printf format).
fn recording_editor(db: &TestDb, name: &str, body: &str) -> (String, std::path::PathBuf) {
    let seen = db.dir().join(format!("{name}.seen"));
    let editor = script(
        db,
        &format!("{name}.sh"),
        &format!("cp \"$1\" '{}'\nprintf '{body}' > \"$1\"", seen.display()),
    );
    (editor, seen)
}

async fn settings_new_keys_need_create(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let before = all_rows(&db).await;

    // A typo of a default prompt: refused, the closest key suggested, nothing created.
    for args in [
        &["settings", "set", "bio_promt_x", "text"][..],
        &["settings", "set", "bio_prompt_tiktk", "text"],
        &["settings", "set", "bio_prompt_instagarm", "text"],
    ] {
        let r = db.run(args);
        let line = one_error_line(r.expect_code(8));
        assert!(
            line.contains(&format!("no setting '{}'", args[2])),
            "{line}"
        );
        assert!(line.contains("Use --create to add a new key"), "{line}");
    }
    let r = db.run(&["settings", "set", "bio_promt_x", "text"]);
    assert_eq!(
        one_error_line(&r),
        "error: no setting 'bio_promt_x'; did you mean bio_prompt_x? Use --create to add a new key"
    );
    let r = db.run(&["settings", "set", "bio_prompt_tiktk", "text"]);
    assert!(
        r.stderr.contains("did you mean bio_prompt_tiktok?"),
        "{}",
        r.stderr
    );
    let r = db.run(&["settings", "set", "bio_prompt_instagarm", "text"]);
    assert!(
        r.stderr.contains("did you mean bio_prompt_instagram?"),
        "{}",
        r.stderr
    );
    // Nothing close: no suggestion, but still the way forward.
    let r = db.run(&["settings", "set", "greeting", "hello"]);
    let line = one_error_line(r.expect_code(8));
    assert!(!line.contains("did you mean"), "{line}");
    assert!(line.contains("--create"), "{line}");
    // --json: one error document.
    let r = db.run(&["--json", "settings", "set", "bio_promt_x", "text"]);
    let j = r.expect_code(8).json();
    assert_eq!(j["error"]["code"], 8);
    assert_eq!(j["error"]["kind"], "not_found");
    assert!(j["error"]["message"]
        .as_str()
        .unwrap()
        .contains("did you mean bio_prompt_x?"));
    assert_eq!(all_rows(&db).await, before, "nothing was created");

    // With --create it is created; from then on it is known, and suggested for its own typos.
    let r = db.run(&["settings", "set", "greeting", "hello", "--create"]);
    assert!(r.ok().stdout.contains("created setting 'greeting'"));
    db.run(&["settings", "set", "greeting", "hello again"]).ok();
    assert_eq!(get(&db, "greeting").ok().stdout, "hello again");
    let r = db.run(&["settings", "set", "greting", "x"]);
    assert!(
        one_error_line(r.expect_code(8)).contains("did you mean greeting?"),
        "{}",
        r.stderr
    );

    // A default prompt is known even when it is not stored: set recreates it without --create.
    db.run(&["settings", "unset", "bio_prompt_facebook", "--yes"])
        .ok();
    let r = db.run(&["settings", "set", "bio_prompt_facebook", "back"]);
    assert!(r
        .ok()
        .stdout
        .contains("created setting 'bio_prompt_facebook'"));

    // import: new keys are refused all together, each with its suggestion; nothing changes.
    let before = all_rows(&db).await;
    let file = db.dir().join("new-keys.json");
    std::fs::write(
        &file,
        r#"{"settings":[{"key":"bio_prompt_x","value":"updated X"},{"key":"bio_promt_x","value":"typo"},{"key":"brand_new","value":"n"}]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    for extra in [&[][..], &["--dry-run"]] {
        let mut args = vec!["settings", "import", path];
        args.extend_from_slice(extra);
        let r = db.run(&args);
        let line = one_error_line(r.expect_code(8));
        assert!(
            line.contains("'bio_promt_x' (did you mean bio_prompt_x?)")
                && line.contains("'brand_new'")
                && line.contains("--create")
                && line.contains("new-keys.json"),
            "{line}"
        );
        assert_eq!(all_rows(&db).await, before, "{extra:?}: nothing changed");
    }
    let r = db.run(&["--json", "settings", "import", path, "--create"]);
    let j = r.ok().json();
    assert_eq!(
        (j["created"].as_u64(), j["updated"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(get(&db, "brand_new").ok().stdout, "n");

    // edit: an unknown key is refused before any editor runs.
    let (editor, seen) = recording_editor(&db, "new", "typed in the editor");
    let r = edit(&db, "bio_promt_tiktok", &editor, None);
    let line = one_error_line(r.expect_code(8));
    assert!(line.contains("did you mean bio_prompt_tiktok?"), "{line}");
    assert!(!seen.exists(), "the editor must not run");
    // With --create a new key starts empty and is created with what the editor saved.
    let r = edit_with(&db, &["fresh_key", "--create"], &editor, None);
    assert!(
        r.ok().stdout.contains("created setting 'fresh_key'"),
        "{}",
        r.stdout
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "");
    assert_eq!(
        row(&db, "fresh_key").await.unwrap().value,
        "typed in the editor"
    );
    // A default prompt that is not stored starts from its default text, without --create.
    db.run(&["settings", "unset", "bio_prompt_tiktok", "--yes"])
        .ok();
    let (editor, seen) = recording_editor(&db, "restore", "my TikTok prompt");
    let r = edit(&db, "bio_prompt_tiktok", &editor, None);
    assert!(r
        .ok()
        .stdout
        .contains("created setting 'bio_prompt_tiktok'"));
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        default_prompt("bio_prompt_tiktok")
    );
    assert_eq!(
        get(&db, "bio_prompt_tiktok").ok().stdout,
        "my TikTok prompt"
    );
}

async fn settings_empty_values_need_allow_empty(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let before = all_rows(&db).await;
    let x = default_prompt("bio_prompt_x");
    let empty_file = db.dir().join("empty.txt");
    std::fs::write(&empty_file, "").unwrap();
    let blank_file = db.dir().join("blank.txt");
    std::fs::write(&blank_file, " \n\t\r\n").unwrap();

    // Empty from standard input, an argument or a file, and whitespace only: refused, exit 2,
    // one line naming the key and the source, nothing changed.
    let cases: [(Run, &str); 5] = [
        (
            db.run_stdin(&["settings", "set", "bio_prompt_x", "-"], ""),
            "from standard input",
        ),
        (
            db.run(&["settings", "set", "bio_prompt_x", ""]),
            "given as an argument",
        ),
        (
            db.run(&[
                "settings",
                "set",
                "bio_prompt_x",
                "--file",
                empty_file.to_str().unwrap(),
            ]),
            "empty.txt",
        ),
        (
            db.run(&["settings", "set", "bio_prompt_x", "  \n\t "]),
            "only whitespace",
        ),
        (
            db.run(&[
                "settings",
                "set",
                "bio_prompt_x",
                "--file",
                blank_file.to_str().unwrap(),
            ]),
            "blank.txt",
        ),
    ];
    for (r, what) in &cases {
        let line = one_error_line(r.expect_code(2));
        assert!(
            line.contains("'bio_prompt_x'")
                && line.contains("--allow-empty")
                && line.contains(what),
            "{line}"
        );
    }
    // /dev/null itself, as a shell redirect gives it.
    let mut c = db.cmd();
    c.args(["settings", "set", "bio_prompt_x", "-"])
        .stdin(std::fs::File::open("/dev/null").unwrap());
    let r = Run::from(c.output().unwrap());
    assert!(one_error_line(r.expect_code(2)).contains("is empty"));
    assert_eq!(all_rows(&db).await, before, "nothing changed");
    assert_eq!(get(&db, "bio_prompt_x").ok().stdout, x);

    // --allow-empty stores exactly what was given.
    db.run(&["settings", "set", "bio_prompt_x", "", "--allow-empty"])
        .ok();
    assert_eq!(row(&db, "bio_prompt_x").await.unwrap().value, "");
    db.run(&[
        "settings",
        "set",
        "bio_prompt_tiktok",
        "--file",
        blank_file.to_str().unwrap(),
        "--allow-empty",
    ])
    .ok();
    assert_eq!(
        row(&db, "bio_prompt_tiktok").await.unwrap().value,
        " \n\t\r\n"
    );

    // import: an empty value is refused with the entry and key named; --allow-empty takes it.
    let before = all_rows(&db).await;
    let file = db.dir().join("empty.json");
    std::fs::write(
        &file,
        r#"{"settings":[{"key":"bio_prompt_facebook","value":"fine"},{"key":"bio_prompt_instagram","value":"  "}]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let r = db.run(&["settings", "import", path]);
    let line = one_error_line(r.expect_code(2));
    assert!(
        line.contains("entry 2 ('bio_prompt_instagram')") && line.contains("--allow-empty"),
        "{line}"
    );
    db.run(&["settings", "import", path, "--dry-run"])
        .expect_code(2);
    assert_eq!(all_rows(&db).await, before, "nothing imported");
    db.run(&["settings", "import", path, "--allow-empty"]).ok();
    assert_eq!(row(&db, "bio_prompt_instagram").await.unwrap().value, "  ");
    assert_eq!(row(&db, "bio_prompt_facebook").await.unwrap().value, "fine");

    // edit: emptying the text is refused; --allow-empty saves it.
    let wipe = script(&db, "wipe.sh", r#": > "$1""#);
    let r = edit(&db, "bio_prompt_facebook", &wipe, None);
    let line = one_error_line(r.expect_code(2));
    assert!(
        line.contains("'bio_prompt_facebook'") && line.contains("--allow-empty"),
        "{line}"
    );
    assert_eq!(row(&db, "bio_prompt_facebook").await.unwrap().value, "fine");
    let r = edit_with(&db, &["bio_prompt_facebook", "--allow-empty"], &wipe, None);
    assert!(r
        .ok()
        .stdout
        .contains("updated setting 'bio_prompt_facebook'"));
    assert_eq!(row(&db, "bio_prompt_facebook").await.unwrap().value, "");
}

async fn settings_nul_bytes_are_refused(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let before = all_rows(&db).await;
    let nul_file = db.dir().join("nul.txt");
    std::fs::write(&nul_file, "before\0after").unwrap();
    let check = |r: &Run, key: &str| {
        let line = one_error_line(r.expect_code(2)).to_owned();
        assert!(
            line.contains(&format!("'{key}'")) && line.contains("cannot contain NUL"),
            "{line}"
        );
    };
    for extra in [&[][..], &["--allow-empty", "--create"]] {
        let mut args = vec![
            "settings",
            "set",
            "bio_prompt_x",
            "--file",
            nul_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        check(&db.run(&args), "bio_prompt_x");
        let mut args = vec!["settings", "set", "new_key", "-"];
        args.extend_from_slice(extra);
        check(&db.run_stdin(&args, "a\0"), "new_key");
    }
    // import: JSON's \u0000.
    let file = db.dir().join("nul.json");
    std::fs::write(
        &file,
        r#"{"settings":[{"key":"bio_prompt_x","value":"ok"},{"key":"bio_prompt_tiktok","value":"x\u0000y"}]}"#,
    )
    .unwrap();
    let r = db.run(&[
        "settings",
        "import",
        file.to_str().unwrap(),
        "--create",
        "--allow-empty",
    ]);
    check(&r, "bio_prompt_tiktok");
    assert!(r.stderr.contains("entry 2"), "{}", r.stderr);
    // edit: not saved, and the text stays in the temporary file.
    let nul = script(&db, "nul.sh", r#"printf 'edited\000text' > "$1""#);
    let r = edit(&db, "bio_prompt_x", &nul, None);
    check(&r, "bio_prompt_x");
    let kept = r.stderr.split("your text is in ").nth(1).unwrap().trim();
    assert_eq!(std::fs::read(kept).unwrap(), b"edited\0text");
    std::fs::remove_file(kept).ok();
    assert_eq!(all_rows(&db).await, before, "nothing changed");
}

/// About `bytes` bytes of multi-line text with multi-byte characters, ending without a
/// newline: what a long prompt looks like.
fn long_text(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 64);
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!(
            "{i:07} Write the bio — «ünïcödé» 中文 🎭 \"quotes\" 'single' \\ tab\there\r\n"
        ));
        i += 1;
    }
    s.push_str("end");
    s
}

async fn settings_large_values(db: TestDb) {
    let kb70 = long_text(70_000);
    let mb10 = long_text(10 * 1024 * 1024);
    assert!(kb70.len() > migration::avatar::MYSQL_TEXT_MAX_BYTES);
    let kb70_file = db.dir().join("70k.txt");
    std::fs::write(&kb70_file, &kb70).unwrap();
    let mb10_file = db.dir().join("10m.txt");
    std::fs::write(&mb10_file, &mb10).unwrap();
    let set_file = |key: &str, f: &std::path::Path| {
        db.run(&["settings", "set", key, "--file", f.to_str().unwrap()])
    };

    // At Alembic's head, before dbtool's own widening step.
    db.run(&["upgrade", "d8cfd3cb4083"]).ok();
    let r = set_file("bio_prompt_x", &kb70_file);
    if db.backend == Backend::MySql {
        // MySQL/MariaDB TEXT holds 64 KiB: refused up front, naming the step that widens it.
        let line = one_error_line(r.expect_code(3));
        assert!(
            line.contains("'bio_prompt_x'")
                && line.contains(&kb70.len().to_string())
                && line.contains("m20261201_000001_widen_settings_value")
                && line.contains("`dbtool upgrade`"),
            "{line}"
        );
        assert_eq!(
            get(&db, "bio_prompt_x").ok().stdout,
            default_prompt("bio_prompt_x")
        );
        let file = db.dir().join("big.json");
        std::fs::write(
            &file,
            serde_json::json!({"settings": [{"key": "bio_prompt_x", "value": kb70}]}).to_string(),
        )
        .unwrap();
        db.run(&["settings", "import", file.to_str().unwrap()])
            .expect_code(3);
        assert_eq!(
            get(&db, "bio_prompt_x").ok().stdout,
            default_prompt("bio_prompt_x")
        );
    } else {
        // The step is a no-op here: text already holds it.
        r.ok();
        assert_eq!(get(&db, "bio_prompt_x").ok().stdout, kb70);
    }

    // At head every backend takes 70 KB and 10 MB, byte for byte.
    db.run(&["upgrade"]).ok();
    set_file("bio_prompt_x", &kb70_file).ok();
    assert_eq!(get(&db, "bio_prompt_x").ok().stdout, kb70);
    let r = set_file("bio_prompt_instagram", &mb10_file);
    assert!(
        r.ok().stdout.contains(&format!(
            "updated setting 'bio_prompt_instagram' ({} bytes)",
            mb10.len()
        )),
        "{}",
        r.stdout
    );
    assert_eq!(get(&db, "bio_prompt_instagram").ok().stdout, mb10);
    assert_eq!(row(&db, "bio_prompt_instagram").await.unwrap().value, mb10);
    // And back through export → import into a fresh database of the same backend.
    let export = db.run(&["settings", "export"]);
    export.ok();
    let copy = TestDb::new(db.backend, "settings_large_copy");
    copy.run(&["upgrade"]).ok();
    copy.run_stdin(&["settings", "import", "-"], &export.stdout)
        .ok();
    assert_eq!(
        row(&copy, "bio_prompt_instagram").await.unwrap().value,
        mb10
    );
    assert_eq!(row(&copy, "bio_prompt_x").await.unwrap().value, kb70);

    if db.backend != Backend::MySql {
        db.run(&["downgrade"]).ok();
        assert_eq!(row(&db, "bio_prompt_instagram").await.unwrap().value, mb10);
        return;
    }
    // MySQL/MariaDB: going back to TEXT would truncate, so the downgrade refuses, naming the
    // keys, and changes nothing.
    let r = db.run(&["downgrade"]);
    let line = one_error_line(r.expect_code(5));
    assert!(
        line.contains("setting 'bio_prompt_instagram' holds")
            && line.contains("setting 'bio_prompt_x' holds")
            && line.contains("nothing was changed")
            && !line.contains("partly done"),
        "{line}"
    );
    let value_type = || {
        db.strings(
            "SELECT CAST(DATA_TYPE AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'settings' AND COLUMN_NAME = 'value'",
        )
    };
    assert_eq!(value_type().await, ["longtext"]);
    assert_eq!(db.run(&["--json", "status"]).json()["pending"], 0);
    assert_eq!(row(&db, "bio_prompt_instagram").await.unwrap().value, mb10);
    // The offline script cannot look at the data: the server refuses the narrowing instead
    // of truncating (it runs in strict mode), and the values stay whole.
    let down = db.run(&["downgrade", "--sql", "-1"]);
    let out = crate::sql::try_apply(&db, &down.ok().stdout);
    assert!(!out.status.success(), "the script must fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Data too long"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(row(&db, "bio_prompt_x").await.unwrap().value, kb70);
    assert_eq!(row(&db, "bio_prompt_instagram").await.unwrap().value, mb10);
    // Once the values fit, the downgrade goes through.
    db.run(&["settings", "set", "bio_prompt_x", "short"]).ok();
    db.run(&["settings", "set", "bio_prompt_instagram", "short"])
        .ok();
    db.run(&["downgrade"]).ok();
    assert_eq!(value_type().await, ["text"]);
}

/// An export from each backend imports into each other one, byte for byte: a 10 MB prompt
/// from PostgreSQL into MariaDB and SQLite, and a 100 KB one between every pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_exports_import_into_every_other_backend() {
    let all = [Backend::Postgres, Backend::MySql, Backend::Sqlite];
    let export_of = |db: &TestDb| {
        let r = db.run(&["settings", "export"]);
        r.ok();
        r.stdout.clone()
    };
    let kv = |rows: Vec<setting::Model>| {
        rows.into_iter()
            .map(|m| (m.key, m.value))
            .collect::<Vec<_>>()
    };

    let source = TestDb::new(Backend::Postgres, "settings_export_10mb");
    source.run(&["upgrade"]).ok();
    let mb10 = long_text(10 * 1024 * 1024);
    source
        .run_stdin(&["settings", "set", "bio_prompt_x", "-"], &mb10)
        .ok();
    let export = export_of(&source);
    for b in [Backend::MySql, Backend::Sqlite] {
        let target = TestDb::new(b, "settings_import_10mb");
        target.run(&["upgrade"]).ok();
        let r = target.run_stdin(&["settings", "import", "-"], &export);
        assert!(
            r.ok().stdout.contains("0 created, 1 updated, 3 unchanged"),
            "{b:?}: {}",
            r.stdout
        );
        assert_eq!(get(&target, "bio_prompt_x").ok().stdout, mb10, "{b:?}");
        assert_eq!(
            kv(all_rows(&target).await),
            kv(all_rows(&source).await),
            "{b:?}"
        );
    }

    let kb100 = long_text(100_000);
    for from in all {
        let source = TestDb::new(from, "settings_export_pair");
        source.run(&["upgrade"]).ok();
        source
            .run_stdin(
                &["settings", "set", "bio_prompt_long", "-", "--create"],
                &kb100,
            )
            .ok();
        let export = export_of(&source);
        for to in all.into_iter().filter(|b| *b != from) {
            let target = TestDb::new(to, "settings_import_pair");
            target.run(&["upgrade"]).ok();
            target
                .run_stdin(&["settings", "import", "-", "--create"], &export)
                .ok();
            assert_eq!(
                kv(all_rows(&target).await),
                kv(all_rows(&source).await),
                "{from:?} → {to:?}"
            );
        }
    }
}
