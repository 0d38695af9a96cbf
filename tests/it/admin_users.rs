//! `dbtool users` through the real binary on every backend: Avatar accounts with bcrypt
//! (`--password-stdin`, `check-password`, a hash made by Python's `bcrypt`), duplicate and
//! bad emails, activation, and the account list of both apps.

use crate::common::{Run, TestDb};
use crate::on_all_backends;
use chrono::NaiveDate;
use entity::avatar::user as avatar_user;
use entity::neurachar::user as neurachar_user;
use sea_orm::{ActiveModelTrait, ActiveValue, EntityTrait, QueryOrder};
use uuid::Uuid;

on_all_backends!(
    users_add_passwd_and_check_password,
    users_python_bcrypt_hash_verifies,
    users_duplicates_bad_emails_and_bad_passwords_rejected,
    users_activate_deactivate_and_list,
    users_neurachar_list,
);

/// Produced elsewhere, with the Python `bcrypt` package 5.0.0 (what Flask-Bcrypt uses):
/// `bcrypt.hashpw("Tr0ub4dor&3 ünï".encode("utf-8"), bcrypt.gensalt(12)).decode()`.
const PYTHON_PASSWORD: &str = "Tr0ub4dor&3 ünï";
const PYTHON_HASH: &str = "$2b$12$qJ7Is5H0VoRUDr3m4QyNJ.NLGss3ozT12Eeu6LCs7uZD0f6XQeapm";

async fn avatar_users(db: &TestDb) -> Vec<avatar_user::Model> {
    let c = db.connect().await;
    let r = avatar_user::Entity::find()
        .order_by_asc(avatar_user::Column::Id)
        .all(&c)
        .await
        .expect("read users");
    c.close().await.ok();
    r
}

/// `dbtool ARGS --password-stdin` with `password` and a newline on standard input.
fn with_password(db: &TestDb, args: &[&str], password: &str) -> Run {
    let mut a = args.to_vec();
    a.push("--password-stdin");
    run_input(db, &a, &format!("{password}\n"))
}

/// Like `TestDb::run_stdin`, but dbtool may exit before reading its input (a refused email,
/// an unknown account): the broken pipe that leaves is not a failure.
fn run_input(db: &TestDb, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = db
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbtool");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    Run::from(child.wait_with_output().expect("wait dbtool"))
}

fn assert_no_secret(r: &Run, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !r.stdout.contains(s) && !r.stderr.contains(s),
            "output shows a secret {s:?}:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
}

async fn users_add_passwd_and_check_password(db: TestDb) {
    db.run(&["upgrade"]).ok();
    // Default cost: a standard `$2b$12$` hash, created_at and is_active filled in.
    let r = with_password(
        &db,
        &["users", "add", "  Ann@Example.com "],
        "first password",
    );
    r.ok();
    assert!(
        r.stdout.contains("created user Ann@Example.com"),
        "{}",
        r.stdout
    );
    let users = avatar_users(&db).await;
    assert_eq!(users.len(), 1);
    let ann = &users[0];
    assert_eq!(ann.email, "Ann@Example.com", "trimmed, case kept");
    assert!(
        ann.password_hash.starts_with("$2b$12$"),
        "{}",
        ann.password_hash
    );
    assert_eq!(ann.password_hash.len(), 60);
    assert!(ann.is_active);
    assert!(ann.last_login.is_none());
    let age = chrono::Utc::now().naive_utc() - ann.created_at;
    assert!(
        age.num_seconds().abs() < 120,
        "created_at is now: {}",
        ann.created_at
    );
    assert_no_secret(&r, &["first password", &ann.password_hash]);

    // check-password: exit 0 on a match (email in any case), 10 otherwise.
    let r = with_password(
        &db,
        &["users", "check-password", "ann@example.com"],
        "first password",
    );
    assert!(r.ok().stdout.contains("matches"), "{}", r.stdout);
    let r = with_password(
        &db,
        &["users", "check-password", "Ann@Example.com"],
        "wrong password",
    );
    r.expect_code(10);
    assert_no_secret(&r, &["wrong password", &ann.password_hash]);
    let r = with_password(
        &db,
        &["--json", "users", "check-password", "Ann@Example.com"],
        "wrong password",
    );
    assert_eq!(r.expect_code(10).json()["matches"], false);

    // A CRLF line ending is not part of the password; only the first line counts.
    let r = run_input(
        &db,
        &[
            "users",
            "check-password",
            "ann@example.com",
            "--password-stdin",
        ],
        "first password\r\nsecond line\n",
    );
    r.ok();

    // passwd with a chosen cost: the old password stops matching, the new one matches.
    let r = with_password(
        &db,
        &["users", "passwd", "ANN@example.com", "--cost", "4"],
        "second password",
    );
    assert!(
        r.ok()
            .stdout
            .contains("changed the password of Ann@Example.com"),
        "{}",
        r.stdout
    );
    let hash = avatar_users(&db).await[0].password_hash.clone();
    assert!(hash.starts_with("$2b$04$"), "{hash}");
    assert_no_secret(&r, &["second password", &hash]);
    with_password(
        &db,
        &["users", "check-password", "ann@example.com"],
        "first password",
    )
    .expect_code(10);
    with_password(
        &db,
        &["users", "check-password", "ann@example.com"],
        "second password",
    )
    .ok();

    // The other direction: the Python package (what Flask-Bcrypt uses) verifies our hash.
    // `tests/run` installs it; without it this test fails and says what to install.
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, bcrypt; sys.exit(0 if bcrypt.checkpw(sys.argv[1].encode(), sys.argv[2].encode()) else 1)",
            "second password",
            &hash,
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed for the Python-side bcrypt check ({e}): install Python 3 and `python3 -m pip install bcrypt`, or run the suite through tests/run")
        });
    let stderr = String::from_utf8_lossy(&py.stderr);
    assert!(
        !stderr.contains("No module named"),
        "the Python package bcrypt is missing: `python3 -m pip install bcrypt`, or run the suite through tests/run (which installs it)"
    );
    assert_eq!(
        py.status.code(),
        Some(0),
        "Python bcrypt rejected our hash {hash}: {stderr}"
    );

    // Unknown account.
    let r = with_password(
        &db,
        &["users", "check-password", "nobody@example.com"],
        "whatever1",
    );
    assert!(
        r.expect_code(8).stderr.contains("nobody@example.com"),
        "{}",
        r.stderr
    );
    with_password(&db, &["users", "passwd", "nobody@example.com"], "whatever1").expect_code(8);
}

async fn users_python_bcrypt_hash_verifies(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let c = db.connect().await;
    avatar_user::ActiveModel {
        email: ActiveValue::Set("py@example.com".into()),
        password_hash: ActiveValue::Set(PYTHON_HASH.into()),
        created_at: ActiveValue::Set(
            NaiveDate::from_ymd_opt(2026, 1, 30)
                .unwrap()
                .and_hms_opt(9, 31, 15)
                .unwrap(),
        ),
        last_login: ActiveValue::Set(None),
        is_active: ActiveValue::Set(true),
        ..Default::default()
    }
    .insert(&c)
    .await
    .unwrap();
    c.close().await.ok();
    with_password(
        &db,
        &["users", "check-password", "py@example.com"],
        PYTHON_PASSWORD,
    )
    .ok();
    with_password(
        &db,
        &["users", "check-password", "py@example.com"],
        "Tr0ub4dor&3 uni",
    )
    .expect_code(10);
}

async fn users_duplicates_bad_emails_and_bad_passwords_rejected(db: TestDb) {
    db.run(&["upgrade"]).ok();
    with_password(
        &db,
        &["users", "add", "bob@example.com", "--cost", "4"],
        "bob password",
    )
    .ok();

    for dup in ["bob@example.com", "BOB@Example.COM", " bob@example.com"] {
        let r = with_password(&db, &["users", "add", dup, "--cost", "4"], "other password");
        r.expect_code(2);
        assert!(r.stderr.contains("already exists"), "{dup}: {}", r.stderr);
    }
    for bad in [
        "",
        "bob",
        "bob@",
        "@example.com",
        "bob@example",
        "bob@@example.com",
        "b@b@example.com",
        "bob smith@example.com",
    ] {
        let r = with_password(&db, &["users", "add", bad, "--cost", "4"], "good password");
        r.expect_code(2);
        assert!(
            r.stderr.contains(&format!("'{bad}'")),
            "names the value: {}",
            r.stderr
        );
    }
    let long = format!("{}@example.com", "x".repeat(250));
    with_password(
        &db,
        &["users", "add", &long, "--cost", "4"],
        "good password",
    )
    .expect_code(2);

    // Passwords: empty input, an empty line, too short, too long for bcrypt, no terminal.
    let r = run_input(
        &db,
        &["users", "add", "carol@example.com", "--password-stdin"],
        "",
    );
    assert!(r.expect_code(2).stderr.contains("empty"), "{}", r.stderr);
    let r = with_password(&db, &["users", "add", "carol@example.com"], "");
    assert!(r.expect_code(2).stderr.contains("empty"), "{}", r.stderr);
    let r = with_password(&db, &["users", "add", "carol@example.com"], "short");
    assert!(
        r.expect_code(2).stderr.contains("at least 8"),
        "{}",
        r.stderr
    );
    with_password(&db, &["users", "add", "carol@example.com"], &"x".repeat(73)).expect_code(2);
    let r = db.run(&["users", "add", "carol@example.com"]);
    assert!(
        r.expect_code(2).stderr.contains("--password-stdin"),
        "{}",
        r.stderr
    );
    // Costs outside 4..=31.
    for cost in ["3", "32", "x"] {
        with_password(
            &db,
            &["users", "add", "carol@example.com", "--cost", cost],
            "good password",
        )
        .expect_code(2);
    }

    let users = avatar_users(&db).await;
    assert_eq!(
        users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["bob@example.com"],
        "nothing else was created"
    );
}

async fn users_activate_deactivate_and_list(db: TestDb) {
    db.run(&["upgrade"]).ok();
    with_password(
        &db,
        &["users", "add", "dan@example.com", "--cost", "4"],
        "dan password",
    )
    .ok();
    with_password(
        &db,
        &[
            "users",
            "add",
            "eve@example.com",
            "--cost",
            "4",
            "--inactive",
        ],
        "eve password",
    )
    .ok();

    let r = db.run(&["users", "deactivate", "DAN@example.com"]);
    assert!(
        r.ok().stdout.contains("deactivated user dan@example.com"),
        "{}",
        r.stdout
    );
    let r = db.run(&["users", "deactivate", "dan@example.com"]);
    assert!(r.ok().stdout.contains("already inactive"), "{}", r.stdout);
    let r = db.run(&["--json", "users", "activate", "eve@example.com"]);
    let j = r.ok().json();
    assert_eq!(
        (j["is_active"].as_bool(), j["changed"].as_bool()),
        (Some(true), Some(true))
    );
    db.run(&["users", "activate", "nobody@example.com"])
        .expect_code(8);

    let users = avatar_users(&db).await;
    assert_eq!(
        users
            .iter()
            .map(|u| (u.email.as_str(), u.is_active))
            .collect::<Vec<_>>(),
        [("dan@example.com", false), ("eve@example.com", true)]
    );

    // A deactivated account still checks its password, and says it cannot log in.
    let r = with_password(
        &db,
        &["users", "check-password", "dan@example.com"],
        "dan password",
    );
    assert!(r.ok().stdout.contains("deactivated"), "{}", r.stdout);

    let r = db.run(&["users", "list"]);
    let out = &r.ok().stdout;
    assert!(
        out.contains("last login") && out.contains("2 accounts"),
        "{out}"
    );
    let dan = out.lines().find(|l| l.contains("dan@example.com")).unwrap();
    assert!(dan.contains("| no "), "{dan}");
    assert!(!out.contains("$2b$"), "no hashes in the list: {out}");

    let j = db.run(&["--json", "users", "list"]).json();
    assert_eq!(j["app"], "avatar");
    let list = j["users"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list[0].get("password_hash").is_none());
    assert!(list[0]["created_at"].as_str().unwrap().ends_with('Z'));

    // NeuraChar-only wording for the commands that have no NeuraChar meaning.
    let r = db.run(&[
        "--app",
        "neurachar",
        "users",
        "deactivate",
        "dan@example.com",
    ]);
    assert!(
        r.expect_code(2).stderr.contains("Avatar accounts"),
        "{}",
        r.stderr
    );
}

async fn users_neurachar_list(db: TestDb) {
    // Not migrated: says which upgrade to run.
    let r = db.run(&["--app", "neurachar", "users", "list"]);
    let code = if db.backend == crate::common::Backend::Sqlite {
        6
    } else {
        3
    };
    assert!(
        r.expect_code(code)
            .stderr
            .contains("dbtool --app neurachar upgrade"),
        "{}",
        r.stderr
    );
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    // Without --app the database says whose accounts these are; naming the other app is
    // refused with the right one.
    let r = db.run(&["users", "list"]);
    assert!(r.ok().stdout.contains("username"), "{}", r.stdout);
    let r = db.run(&["--app", "avatar", "users", "list"]);
    assert!(
        r.expect_code(11).stderr.contains("--app neurachar"),
        "{}",
        r.stderr
    );

    let (id1, id2) = (Uuid::new_v4(), Uuid::new_v4());
    let t = |d: u32| {
        NaiveDate::from_ymd_opt(2025, 12, d)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap()
    };
    let c = db.connect().await;
    for (id, email, username, provider, created, login) in [
        (
            id1,
            "li@example.com",
            Some("Li"),
            "email_qq",
            t(12),
            Some(t(13)),
        ),
        (id2, "mo@example.com", None, "github", t(14), None),
    ] {
        neurachar_user::ActiveModel {
            id: ActiveValue::Set(id),
            email: ActiveValue::Set(email.into()),
            username: ActiveValue::Set(username.map(Into::into)),
            avatar_url: ActiveValue::Set(None),
            created_at: ActiveValue::Set(created),
            last_login_at: ActiveValue::Set(login),
            provider: ActiveValue::Set(provider.into()),
        }
        .insert(&c)
        .await
        .unwrap();
    }
    c.close().await.ok();

    let j = db
        .run(&["--app", "neurachar", "--json", "users", "list"])
        .json();
    assert_eq!(j["app"], "neurachar");
    let users = j["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["id"], id1.to_string());
    assert_eq!(users[0]["username"], "Li");
    assert_eq!(users[0]["last_login_at"], "2025-12-13T10:00:00Z");
    assert_eq!(users[1]["provider"], "github");
    assert!(users[1]["username"].is_null());

    let r = db.run(&["--app", "neurachar", "users", "list"]);
    let out = &r.ok().stdout;
    assert!(
        out.contains("provider") && out.contains("username"),
        "{out}"
    );
    assert!(
        out.contains(&id2.to_string()) && out.contains("github"),
        "{out}"
    );
    assert!(out.contains("2025-12-13 10:00:00 UTC"), "{out}");
}
