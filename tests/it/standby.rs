//! A hot standby made in the test (its own primary, `pg_basebackup -R`): every write command
//! refuses at once with exit 17 and changes nothing; `status`, `history`, the read commands
//! and `docs` work; `check`, which needs a scratch database on the server, says in one line
//! why it cannot run there.

use crate::common::standby::StandbyPair;
use crate::common::{dbtool_bare, run_with_stdin, Run};
use std::process::{Command, Stdio};

const CHARACTER: &str = "00000000-0000-0000-0000-0000000000c1";
const CHAT: &str = "00000000-0000-0000-0000-0000000000d1";

fn cmd(dir: &std::path::Path, url: &str, args: &[&str]) -> Command {
    let mut c = dbtool_bare(dir);
    c.env("DATABASE_URL", url).args(args).stdin(Stdio::null());
    c
}

fn run(dir: &std::path::Path, url: &str, args: &[&str]) -> Run {
    Run::from(cmd(dir, url, args).output().expect("run dbtool"))
}

#[track_caller]
fn assert_refused(r: &Run, what: &str) {
    r.expect_code(17);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line on stderr: {}", r.stderr);
    assert!(
        lines[0].contains("read-only standby; point at the primary")
            && lines[0].contains("nothing was changed"),
        "{what}: {}",
        lines[0]
    );
    assert!(
        r.stdout.is_empty(),
        "{what}: nothing on stdout: {}",
        r.stdout
    );
}

#[test]
fn standby_refuses_writes_and_serves_reads() {
    let pair = StandbyPair::start();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    pair.primary_sql("postgres", "CREATE DATABASE app");
    pair.primary_sql("postgres", "CREATE DATABASE nc");
    let (app_p, app_s) = (pair.primary_url("app"), pair.standby_url("app"));
    let (nc_p, nc_s) = (pair.primary_url("nc"), pair.standby_url("nc"));

    run(dir, &app_p, &["upgrade"]).ok();
    run(
        dir,
        &app_p,
        &["settings", "set", "greeting", "hello", "--create"],
    )
    .ok();
    run_with_stdin(
        &mut cmd(
            dir,
            &app_p,
            &[
                "users",
                "add",
                "ann@example.com",
                "--cost",
                "4",
                "--password-stdin",
            ],
        ),
        "correct horse\n",
    )
    .ok();
    run(dir, &nc_p, &["--app", "neurachar", "upgrade"]).ok();
    pair.primary_sql(
        "nc",
        &format!(
            "INSERT INTO users (id, email) VALUES ('00000000-0000-0000-0000-0000000000a1', 'nc@example.com');
             INSERT INTO characters (id, name, system_prompt, creator_id)
               VALUES ('{CHARACTER}', 'Aria', 'be kind', '00000000-0000-0000-0000-0000000000a1');
             INSERT INTO chats (chat_id, user_id, character_id)
               VALUES ('{CHAT}', '00000000-0000-0000-0000-0000000000a1', '{CHARACTER}');
             INSERT INTO email_login_codes (email, code_hash, expires_at)
               VALUES ('nc@example.com', 'x', now() - interval '1 day');"
        ),
    );
    pair.wait_for_replay();
    let snapshot = || {
        (
            pair.primary_sql("app", "SELECT string_agg(version, ',' ORDER BY version) FROM seaql_migrations"),
            pair.primary_sql("app", "SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM settings"),
            pair.primary_sql("app", "SELECT string_agg(email || ':' || is_active || ':' || password_hash, ',') FROM users"),
            pair.primary_sql("nc", "SELECT count(*) || '/' || bool_or(is_public) FROM characters"),
            pair.primary_sql("nc", "SELECT count(*) FROM chats"),
            pair.primary_sql("nc", "SELECT count(*) FROM email_login_codes"),
            pair.primary_sql("app", "SELECT count(*) FROM pg_namespace WHERE nspname = 'elsewhere'"),
        )
    };
    let before = snapshot();

    let import = dir.join("settings.json");
    std::fs::write(
        &import,
        run(dir, &app_s, &["settings", "export"])
            .ok()
            .stdout
            .as_bytes(),
    )
    .unwrap();
    let import = import.to_str().unwrap();
    let avatar_writes: &[&[&str]] = &[
        &["upgrade"],
        &["downgrade", "--yes"],
        &["stamp", "base"],
        &["--schema", "elsewhere", "upgrade"],
        &["settings", "set", "greeting", "changed", "--create"],
        &["settings", "unset", "greeting", "--yes"],
        &["settings", "import", import],
        &["settings", "edit", "greeting"],
        &["users", "activate", "ann@example.com"],
        &["users", "deactivate", "ann@example.com"],
    ];
    for args in avatar_writes {
        let r = Run::from(
            cmd(dir, &app_s, args)
                .env("EDITOR", "true")
                .output()
                .unwrap(),
        );
        assert_refused(&r, &args.join(" "));
    }
    // Refused before any password is asked for.
    for args in [
        &[
            "users",
            "add",
            "bob@example.com",
            "--cost",
            "4",
            "--password-stdin",
        ][..],
        &[
            "users",
            "passwd",
            "ann@example.com",
            "--cost",
            "4",
            "--password-stdin",
        ],
    ] {
        let r = run_with_stdin(&mut cmd(dir, &app_s, args), "battery staple\n");
        assert_refused(&r, &args.join(" "));
    }
    let nc_writes: &[&[&str]] = &[
        &["login-codes", "purge"],
        &["characters", "publish", CHARACTER],
        &["characters", "unpublish", CHARACTER],
        &["chats", "delete", CHAT, "--yes"],
        &["upgrade"],
    ];
    for args in nc_writes {
        let mut a = vec!["--app", "neurachar"];
        a.extend_from_slice(args);
        assert_refused(&run(dir, &nc_s, &a), &args.join(" "));
    }
    let r = run(
        dir,
        &app_s,
        &[
            "--json", "settings", "set", "greeting", "changed", "--create",
        ],
    );
    r.expect_code(17);
    assert_eq!(r.json()["error"]["kind"], "read_only");
    assert_eq!(snapshot(), before, "nothing changed on the primary");

    // Reads work on the standby.
    let r = run(dir, &app_s, &["status"]);
    assert!(r.ok().stdout.contains("0 pending"), "{}", r.stdout);
    let r = run(dir, &app_s, &["history"]);
    assert!(r.ok().stdout.contains("d8cfd3cb4083"), "{}", r.stdout);
    assert_eq!(
        run(dir, &app_s, &["settings", "get", "greeting"])
            .ok()
            .stdout,
        "hello"
    );
    run(dir, &app_s, &["settings", "list"]).ok();
    let r = run(dir, &app_s, &["users", "list"]);
    assert!(r.ok().stdout.contains("ann@example.com"), "{}", r.stdout);
    run_with_stdin(
        &mut cmd(
            dir,
            &app_s,
            &[
                "users",
                "check-password",
                "ann@example.com",
                "--password-stdin",
            ],
        ),
        "correct horse\n",
    )
    .ok();
    let r = run(dir, &app_s, &["docs"]);
    assert!(r.ok().stdout.contains("settings"), "{}", r.stdout);
    // The log, with an entry still `running` (its lock is looked at: free, so interrupted).
    pair.primary_sql(
        "app",
        "UPDATE dbtool_audit SET outcome = 'running' WHERE seq = (SELECT max(seq) FROM dbtool_audit)",
    );
    pair.wait_for_replay();
    let r = run(dir, &app_s, &["log"]);
    assert!(r.ok().stdout.contains("interrupted"), "{}", r.stdout);
    let r = run(dir, &app_s, &["downgrade", "--dry-run"]);
    assert!(r.ok().stdout.contains("would roll back 1"), "{}", r.stdout);
    let r = run(dir, &nc_s, &["--app", "neurachar", "characters", "list"]);
    assert!(r.ok().stdout.contains("Aria"), "{}", r.stdout);
    let r = run(
        dir,
        &nc_s,
        &["--app", "neurachar", "login-codes", "purge", "--dry-run"],
    );
    assert!(r.ok().stdout.contains('1'), "{}", r.stdout);

    // check compares with the stored snapshot, so it needs no scratch database and works
    // on a standby too.
    let r = run(dir, &app_s, &["check"]);
    assert!(r.ok().stdout.contains("no drift"), "{}", r.stdout);
    assert_eq!(snapshot(), before);
}
