//! One document, one line, the right stream (issue 12), through the real binary: stdout
//! carries the result only, diagnostics and progress go to stderr, `-q` leaves errors
//! (and the results a script captures), `--json` prints exactly one document whatever
//! happens, a failed write to stdout is an error while a closed pipe is not, a failed
//! write to stderr never aborts, and echoed values have their control bytes escaped.

use crate::common::{bin, dbtool_bare, Backend, Run, TestDb};
use crate::on_all_backends;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

on_all_backends!(quiet_keeps_errors_and_captured_results);

/// Runs `dbtool ARGS` against `db` with stdout (or stderr) going to /dev/full.
fn run_full(db: &TestDb, args: &[&str], stream: &str) -> Run {
    let full = || Stdio::from(File::create("/dev/full").expect("/dev/full"));
    let mut c = db.cmd();
    c.args(args).stdin(Stdio::null());
    let out = if stream == "stdout" {
        c.stdout(full()).stderr(Stdio::piped()).output()
    } else {
        c.stdout(Stdio::piped()).stderr(full()).output()
    };
    Run::from(out.expect("run dbtool"))
}

#[track_caller]
fn assert_one_error_line(r: &Run) {
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", r.stderr);
    assert!(lines[0].starts_with("error: "), "{}", r.stderr);
}

/// The whole of stdout is exactly one JSON document (two would not parse as one value).
#[track_caller]
fn one_document(r: &Run) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", r.stdout));
    doc
}

/// `kind`, `code`, `message`, in this order, in the text as printed.
#[track_caller]
fn assert_error_key_order(r: &Run) {
    let (k, c, m) = (
        r.stdout.find("\"kind\""),
        r.stdout.find("\"code\""),
        r.stdout.find("\"message\""),
    );
    assert!(
        k.is_some() && k < c && c < m,
        "error document keys out of order:\n{}",
        r.stdout
    );
}

async fn quiet_keeps_errors_and_captured_results(db: TestDb) {
    // Without -q: the steps are progress on stderr, the outcome is on stdout.
    let r = db.run(&["upgrade", "+1"]);
    r.ok();
    assert!(r.stderr.contains("applied "), "{}", r.stderr);
    assert!(!r.stdout.contains("applied "), "{}", r.stdout);
    assert!(r.stdout.contains("now at m20260130_093115"), "{}", r.stdout);

    // -q: nothing but errors, for every write command and its confirmations.
    let silent = |args: &[&str]| {
        let r = db.run(args);
        r.ok();
        assert_eq!(r.stdout, "", "{args:?} printed on stdout");
        assert_eq!(r.stderr, "", "{args:?} printed on stderr");
    };
    silent(&["-q", "upgrade"]);
    silent(&["-q", "upgrade"]);
    silent(&["-q", "settings", "set", "bio_prompt_x", "quiet value"]);
    silent(&["-q", "settings", "set", "bio_prompt_x", "quiet value"]);
    silent(&["-q", "stamp", "head"]);
    // ...while what a script captures stays.
    let r = db.run(&["-q", "settings", "get", "bio_prompt_x"]);
    assert_eq!(r.ok().stdout, "quiet value");
    let r = db.run(&["-q", "status"]);
    assert!(r.ok().stdout.contains("0 pending"), "{}", r.stdout);
    assert_eq!(r.stderr, "");
    silent(&["-q", "downgrade", "--yes"]);
    silent(&["-q", "stamp", "+1"]);
    silent(&["-q", "stamp", "-1"]);
    let r = db.run(&["-q", "--json", "downgrade", "--yes"]);
    assert_eq!(one_document(r.ok())["direction"], "down");
    assert_eq!(r.stderr, "");
    // An error still gets its line.
    let r = db.run(&["-q", "upgrade", "nosuchmigration"]);
    r.expect_code(2);
    assert_one_error_line(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_warnings_go_to_stderr() {
    let db = TestDb::new(Backend::Sqlite, "streams_warn");
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    // Without --app the database is recognised: a note on stderr, the result on stdout.
    let r = db.run(&["status"]);
    r.ok();
    assert!(
        r.stderr.contains("recognised a neurachar database"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("recognised"), "{}", r.stdout);
    assert!(
        r.stdout.contains("neurachar: 0 pending"),
        "the result stays: {}",
        r.stdout
    );
    // -q silences the note, not the result.
    let r = db.run(&["-q", "status"]);
    assert_eq!(r.ok().stderr, "");
    assert!(r.stdout.contains("0 pending"), "{}", r.stdout);
    // A warning proper: dbtool's state table cannot tell what happened.
    db.exec("UPDATE dbtool_state SET in_progress = 'up' WHERE version = 'm20251212_000006_add_foreign_key_indexes'")
        .await;
    let r = db.run(&["status"]);
    assert!(r.ok().stderr.contains("warning: "), "{}", r.stderr);
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_alembic_revision_warns_on_stderr() {
    let db = TestDb::new(Backend::Sqlite, "streams_alembic");
    db.exec("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        .await;
    db.exec("INSERT INTO alembic_version VALUES ('0123456789ab')")
        .await;
    let r = db.run(&["status"]);
    r.ok();
    assert!(
        r.stderr
            .contains("warning: alembic_version holds unknown revision 0123456789ab"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
}

#[test]
fn a_full_stdout_is_an_error() {
    let db = TestDb::new(Backend::Sqlite, "streams_full");
    db.run(&["upgrade"]).ok();
    for args in [
        &["settings", "export"][..],
        &["settings", "get", "bio_prompt_x"],
        &["upgrade", "--sql", "base:head", "--dialect", "postgres"],
        &["status"],
        &["--json", "status"],
        &["history"],
        &["--help"],
        &["completions", "bash"],
        &["man"],
    ] {
        let r = run_full(&db, args, "stdout");
        r.expect_code(1);
        assert_one_error_line(&r);
        assert!(
            r.stderr.contains("cannot write to standard output")
                && r.stderr.contains("No space left"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // An error of the command itself keeps its code and its line.
    let r = run_full(&db, &["settings", "get", "no_such_key"], "stdout");
    r.expect_code(8);
    assert_one_error_line(&r);
}

#[test]
fn a_full_stderr_never_aborts() {
    let db = TestDb::new(Backend::Sqlite, "streams_stderr");
    db.run(&["upgrade"]).ok();
    run_full(&db, &["settings", "get", "no_such_key"], "stderr").expect_code(8);
    run_full(&db, &["upgrade", "nosuchmigration"], "stderr").expect_code(2);
    run_full(&db, &["--bogus"], "stderr").expect_code(2);
    run_full(&db, &["downgrade", "base", "--yes"], "stderr").ok();
    let r = run_full(&db, &["upgrade"], "stderr");
    r.ok();
    assert!(r.stdout.contains("now at"), "{}", r.stdout);
}

/// `(sleep; dbtool ARGS) | true`: the reader is gone before dbtool writes, so every write
/// fails with EPIPE. Returns dbtool's exit code and its stderr.
fn into_closed_pipe(db: &TestDb, args: &[&str]) -> (i32, String) {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "(sleep 0.3; exec \"$0\" {}) | true; echo \"exit=${{PIPESTATUS[0]}}\" >&2",
        quoted.join(" ")
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .arg(bin())
        .env("DATABASE_URL", &db.url)
        .current_dir(db.dir())
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, code) = stderr
        .trim_end()
        .rsplit_once("exit=")
        .expect("exit code line");
    (code.trim().parse().unwrap(), rest.to_owned())
}

#[test]
fn a_closed_pipe_stays_quiet() {
    let db = TestDb::new(Backend::Sqlite, "streams_pipe");
    db.run(&["upgrade"]).ok();
    for args in [
        &["history"][..],
        &["settings", "export"],
        &["settings", "list"],
        &["upgrade", "--sql", "base:head", "--dialect", "sqlite"],
        &["--json", "status"],
        &["--help"],
    ] {
        let (code, stderr) = into_closed_pipe(&db, args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?} said something");
    }
    // `| head -1` the way people type it.
    let out = Command::new("bash")
        .arg("-c")
        .arg("set -o pipefail; \"$0\" history | head -1")
        .arg(bin())
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let r = Run::from(out);
    r.ok();
    assert!(r.stdout.starts_with("| migration"), "{}", r.stdout);
    assert_eq!(r.stderr, "");
}

#[test]
fn sigterm_while_waiting_prints_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = dbtool_bare(dir.path())
        .args(["--json", "--wait", "--wait-timeout", "30", "status"])
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/nothing_listens_here",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it says it waits, it is in the retry loop.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.contains("waiting for the database"), "{first}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: rest,
    };
    r.expect_code(143);
    let doc = one_document(&r);
    assert_eq!(doc["error"]["kind"], "terminated");
    assert_eq!(doc["error"]["code"], 143);
    assert_error_key_order(&r);
    assert_one_error_line(&r);
    assert!(r.stderr.contains("SIGTERM"), "{}", r.stderr);
}

#[test]
fn an_interrupted_run_prints_one_document() {
    let db = TestDb::new(Backend::Sqlite, "streams_sigint");
    let mut child = db
        .cmd()
        .args(["--json", "--app", "fixture", "upgrade"])
        .env("DBTOOL_FIXTURE_SLEEP_MS", "1500")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("applying f002_create_beta_slowly") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "no step line on stderr"
        );
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: rest,
    };
    r.expect_code(130);
    let doc = one_document(&r);
    assert_eq!(doc["error"]["kind"], "interrupted", "{}", r.stdout);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted by SIGINT after 2 of 3"),
        "{}",
        r.stdout
    );
    assert_error_key_order(&r);
}

#[test]
fn every_error_document_has_the_same_shape() {
    let db = TestDb::new(Backend::Sqlite, "streams_json");
    db.run(&["upgrade"]).ok();
    for (args, code) in [
        (&["--json", "upgrade", "25698"][..], 2),
        (&["--json", "--bogus"], 2),
        (&["--json", "settings"], 2),
        (&["--json", "settings", "get", "no_such_key"], 8),
        (&["--json", "upgrade", "nosuchmigration"], 2),
        (&["--json", "--lock-timeout", "soon", "status"], 2),
    ] {
        let r = db.run(args);
        r.expect_code(code);
        let doc = one_document(&r);
        assert_eq!(doc["error"]["code"], code, "{args:?}: {}", r.stdout);
        assert!(doc["error"]["kind"].is_string());
        assert!(doc["error"]["message"].is_string());
        assert_error_key_order(&r);
        // ...and stderr ends with the same message, in one line.
        let message = doc["error"]["message"].as_str().unwrap();
        let last = r.stderr.lines().last().unwrap_or_default();
        assert_eq!(last, format!("error: {message}"), "{args:?}");
    }
}

#[test]
fn usage_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--bogus"][..],
        &["upgrade", "--bogus"],
        &["completions", "tcsh"],
        &["settings", "get"],
        &["users", "add"],
        &["--app", "nosuchapp", "status"],
        &["status", "extra"],
    ] {
        let r = Run::from(dbtool_bare(dir.path()).args(args).output().unwrap());
        r.expect_code(2);
        assert_one_error_line(&r);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    // What was wrong is named, with the usage.
    let r = Run::from(
        dbtool_bare(dir.path())
            .args(["completions", "tcsh"])
            .output()
            .unwrap(),
    );
    assert!(
        r.stderr.contains("'tcsh'") && r.stderr.contains("possible values: bash"),
        "{}",
        r.stderr
    );
}

#[test]
fn echoed_values_have_their_control_bytes_escaped() {
    let db = TestDb::new(Backend::Sqlite, "streams_escape");
    db.run(&["upgrade"]).ok();
    for (args, shown) in [
        (&["upgrade", "zz\x1b[31mred"][..], "zz\\x1b[31mred"),
        (&["downgrade", "+x\x07"][..], "+x\\x07"),
        (
            &["settings", "get", "key\nsecond line"][..],
            "key\\nsecond line",
        ),
        (
            &["settings", "get", "k\x1b]0;title\x07"][..],
            "k\\x1b]0;title\\x07",
        ),
        (&["stamp", "a\rb"][..], "a\\rb"),
        (&["--json", "upgrade", "x\x1by"][..], "x\\x1by"),
    ] {
        let r = db.run(args);
        assert_ne!(r.code, 0);
        assert_one_error_line(&r);
        assert!(r.stderr.contains(shown), "{args:?}: {}", r.stderr);
        assert!(
            !r.stderr.contains(['\x1b', '\x07', '\r']),
            "raw control bytes on stderr: {:?}",
            r.stderr
        );
    }
}

#[test]
fn a_bare_number_names_the_revision_it_starts() {
    let db = TestDb::new(Backend::Sqlite, "streams_number");
    let r = db.run(&["upgrade", "25698"]);
    r.expect_code(2);
    assert_one_error_line(&r);
    assert!(
        r.stderr
            .contains("write +25698 or -25698 for steps, or 25698f3f906f for the revision"),
        "{}",
        r.stderr
    );
    let r = db.run(&["downgrade", "9"]);
    r.expect_code(2);
    assert!(r.stderr.contains("+9 or -9"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("for the revision"),
        "no revision starts with 9: {}",
        r.stderr
    );
    assert!(!db.dir().join("test.db").exists(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_articles_read_right() {
    let db = TestDb::new(Backend::Sqlite, "streams_words");
    db.run(&["upgrade"]).ok();
    let r = db.run(&["stamp", "--dry-run", "base"]);
    r.ok();
    assert!(!r.stdout.contains("would stamped"), "{}", r.stdout);
    assert!(
        r.stdout.contains("would be stamped at base"),
        "{}",
        r.stdout
    );
    db.exec("DELETE FROM settings WHERE key <> 'bio_prompt_x'")
        .await;
    let r = db.run(&["downgrade", "25698f3f906f", "--dry-run"]);
    assert!(
        r.ok().stdout.contains("drops table settings with 1 row\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("would roll back 2 migrations,"),
        "{}",
        r.stdout
    );
    let r = db.run(&["downgrade", "-1", "--dry-run"]);
    assert!(
        r.ok().stdout.contains("would roll back 1 migration,"),
        "{}",
        r.stdout
    );
    let r = db.run(&["downgrade", "25698f3f906f"]);
    r.expect_code(7);
    assert!(r.stderr.contains("settings (1 row)"), "{}", r.stderr);
    let r = db.run(&["settings", "list"]);
    assert!(r.ok().stdout.ends_with("\n1 setting\n"), "{}", r.stdout);
    let r = db.run(&["--app", "neurachar", "upgrade"]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("an neurachar"), "{}", r.stderr);
    let r = db.run(&["settings", "set", "bio_prompt_x", "x"]);
    assert!(r.ok().stdout.contains("(1 byte)"), "{}", r.stdout);
}
