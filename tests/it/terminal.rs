//! Tables in real terminals (issue 12): the real binary in a tmux pane 40, 80 and 200
//! columns wide. No identifier (migration name, Alembic revision, key, timestamp) is ever
//! split, and no line is wider than the terminal, except an identifier that is itself
//! wider, alone on its line. Through a pipe the tables stay Markdown at natural width.

use crate::common::{bin, Backend, TestDb};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use unicode_width::UnicodeWidthStr;

static PANES: AtomicUsize = AtomicUsize::new(0);

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn tmux(socket: &str, args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux is needed for the terminal tests: apt-get install tmux")
}

/// Runs `dbtool ARGS` against `db` in a fresh tmux server whose pane is `width` columns
/// wide, and returns what the terminal shows, wrapped lines joined back (so a line the
/// terminal had to wrap shows up as one line wider than the pane).
fn in_terminal(db: &TestDb, width: u16, args: &[&str]) -> String {
    let n = PANES.fetch_add(1, Ordering::SeqCst);
    let socket = format!("dbtool-test-{}-{n}", std::process::id());
    let script = db.dir().join(format!("run-{n}.sh"));
    let cmd: Vec<String> = std::iter::once(bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| sh_quote(&a))
        .collect();
    std::fs::write(
        &script,
        format!(
            "cd {dir}\nunset DBTOOL_APP DBTOOL_SCHEMA DBTOOL_CONFIG DBTOOL_WAIT DBTOOL_LOCK_TIMEOUT DBTOOL_WAIT_TIMEOUT RUST_LOG\n\
             export NO_COLOR=1 DATABASE_URL={url}\nclear\n{cmd}\necho \"__END__ $?\"\nsleep 60\n",
            dir = sh_quote(&db.dir().display().to_string()),
            url = sh_quote(&db.url),
            cmd = cmd.join(" "),
        ),
    )
    .unwrap();
    let out = tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            "50",
            &format!("sh {}", sh_quote(&script.display().to_string())),
        ],
    );
    assert!(
        out.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    let shown = loop {
        let cap = tmux(&socket, &["capture-pane", "-p", "-J", "-S", "-", "-E", "-"]);
        let text = String::from_utf8_lossy(&cap.stdout).into_owned();
        if let Some(end) = text.find("__END__") {
            let code = text[end..]
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned();
            assert_eq!(code, "0", "dbtool {args:?} failed in the terminal:\n{text}");
            break text[..end].to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dbtool {args:?} did not finish in the terminal:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    tmux(&socket, &["kill-server"]);
    shown
}

/// No line wider than the terminal, unless it is one identifier alone; every identifier
/// appears whole.
#[track_caller]
fn assert_fits(shown: &str, width: usize, identifiers: &[String]) {
    for line in shown.lines().map(str::trim_end) {
        if line.width() <= width {
            continue;
        }
        // Punctuation of the sentence may cling to it (`name,`).
        let alone = line
            .trim()
            .trim_matches(|c| matches!(c, '(' | ')' | ',' | ';' | '.'));
        assert!(
            identifiers
                .iter()
                .any(|id| alone == id && id.width() > width),
            "line wider than {width} columns: {line:?}\n{shown}"
        );
    }
    for id in identifiers {
        assert!(
            shown.contains(id.as_str()),
            "{id:?} split or missing at {width} columns:\n{shown}"
        );
    }
}

/// The migration names, revisions and applied-at times `status` shows, from its document.
fn status_identifiers(db: &TestDb, app: &str) -> Vec<String> {
    let doc = db.run(&["--app", app, "--json", "status"]).ok().json();
    let mut ids = Vec::new();
    for m in doc["migrations"].as_array().unwrap() {
        ids.push(m["name"].as_str().unwrap().to_owned());
        if let Some(a) = m["alias"].as_str() {
            ids.push(a.to_owned());
        }
        if let Some(t) = m["applied_at"].as_str() {
            let t = chrono::DateTime::parse_from_rfc3339(t).unwrap();
            ids.push(t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        }
    }
    ids
}

fn require_tmux() {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "tmux is needed for the terminal tests: apt-get install tmux"
    );
}

#[test]
fn status_and_history_fit_40_80_and_200_columns() {
    require_tmux();
    let db = TestDb::new(Backend::Sqlite, "term_status");
    db.run(&["upgrade", "+1"]).ok();
    let ids = status_identifiers(&db, "avatar");
    assert_eq!(
        ids.len(),
        6,
        "three names, two revisions, one time: {ids:?}"
    );
    for width in [40, 80, 200] {
        for cmd in ["status", "history"] {
            let shown = in_terminal(&db, width, &[cmd]);
            assert_fits(&shown, width as usize, &ids);
            assert!(shown.contains("2 pending"), "{cmd} at {width}:\n{shown}");
            if cmd == "history" {
                // Descriptions wrap between words; headers are never broken.
                assert!(shown.contains("description"), "{shown}");
                for word in ["settings", "prompts", "unique", "email"] {
                    assert!(shown.contains(word), "{word} broken at {width}:\n{shown}");
                }
            }
        }
    }
    // 200 columns: the whole table side by side; 40: one block per migration.
    let wide = in_terminal(&db, 200, &["history"]);
    assert!(
        wide.lines()
            .any(|l| l.contains("m20260130_093115_initial_migration")
                && l.contains("25698f3f906f")
                && l.contains("Create the users table with a unique index on email")),
        "{wide}"
    );
    let narrow = in_terminal(&db, 40, &["status"]);
    assert!(narrow.contains("alias:      25698f3f906f"), "{narrow}");
}

#[test]
fn neurachar_names_longer_than_the_terminal_stand_alone() {
    require_tmux();
    let db = TestDb::new(Backend::Sqlite, "term_neurachar");
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    let ids = status_identifiers(&db, "neurachar");
    let longest = ids.iter().map(|i| i.width()).max().unwrap();
    assert_eq!(
        longest, 41,
        "one name is wider than a 40-column terminal: {ids:?}"
    );
    for width in [30, 40, 80] {
        let shown = in_terminal(&db, width, &["--app", "neurachar", "status"]);
        assert_fits(&shown, width as usize, &ids);
    }
    let shown = in_terminal(&db, 30, &["--app", "neurachar", "status"]);
    assert!(
        shown
            .lines()
            .any(|l| l == "m20251212_000002_create_email_login_codes"),
        "alone on its line:\n{shown}"
    );
}

#[test]
fn settings_list_fits_40_and_80_columns() {
    require_tmux();
    let db = TestDb::new(Backend::Sqlite, "term_settings");
    db.run(&["upgrade"]).ok();
    db.run(&[
        "settings",
        "set",
        "bio_prompt_x",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    ])
    .ok();
    let doc = db.run(&["--json", "settings", "list"]).ok().json();
    let mut ids = Vec::new();
    for s in doc["settings"].as_array().unwrap() {
        ids.push(s["key"].as_str().unwrap().to_owned());
        let t = chrono::DateTime::parse_from_rfc3339(s["updated_at"].as_str().unwrap()).unwrap();
        ids.push(t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    }
    for width in [40, 80, 200] {
        let shown = in_terminal(&db, width, &["settings", "list"]);
        assert_fits(&shown, width as usize, &ids);
        assert!(shown.contains("4 settings"), "{shown}");
        // The preview's words stay whole, wherever the value wraps.
        for word in ["Facebook", "Instagram", "persona"] {
            assert!(shown.contains(word), "{word} at {width}:\n{shown}");
        }
    }
    // At 60 columns the identifiers fit side by side but leave no useful room for the
    // value: it is left out (stderr says so), the keys and times stay whole.
    let mid = in_terminal(&db, 60, &["settings", "list"]);
    assert_fits(&mid, 60, &ids);
    assert!(mid.contains("│ bio_prompt_facebook  ┆ "), "{mid}");
    assert!(!mid.contains("Facebook"), "{mid}");
    assert!(mid.contains("column value left out"), "{mid}");
    // At 40 columns the value is not squeezed into a word per line: one block per key.
    let narrow = in_terminal(&db, 40, &["settings", "list"]);
    assert!(
        narrow.contains("key:        bio_prompt_facebook"),
        "{narrow}"
    );
    assert!(
        narrow.contains("value:      Write the Facebook"),
        "{narrow}"
    );
}

#[test]
fn other_tables_fit_narrow_terminals_too() {
    require_tmux();
    let db = TestDb::new(Backend::Sqlite, "term_other");
    db.run(&["upgrade"]).ok();
    let email = "someone.with.a.long.address@example.com";
    db.run_stdin(
        &["users", "add", email, "--password-stdin", "--cost", "4"],
        "correct horse battery\n",
    )
    .ok();
    let doc = db.run(&["--json", "users", "list"]).ok().json();
    let created =
        chrono::DateTime::parse_from_rfc3339(doc["users"][0]["created_at"].as_str().unwrap())
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string();
    for width in [40, 80] {
        let shown = in_terminal(&db, width, &["config"]);
        assert_fits(
            &shown,
            width as usize,
            &["database_url".into(), "lock_timeout".into(), db.url.clone()],
        );
        let shown = in_terminal(&db, width, &["users", "list"]);
        assert_fits(&shown, width as usize, &[email.to_owned(), created.clone()]);
        assert!(shown.contains("1 account"), "{shown}");
    }
}

#[test]
fn pipes_get_the_markdown_table_at_natural_width() {
    let db = TestDb::new(Backend::Sqlite, "term_pipe");
    db.run(&["upgrade"]).ok();
    let out = db.run(&["history"]).ok().stdout.clone();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "| migration                              | alias        | state   | applied at              | description                                                                                                     |"
    );
    assert!(lines[1].starts_with("|----------------------------------------|--------------|"));
    assert!(lines[2]
        .starts_with("| m20260130_093115_initial_migration     | 25698f3f906f | applied | "));
    assert!(lines[2].contains("| Create the users table with a unique index on email "));
    assert!(lines[2].ends_with(" |") && lines[2].len() == lines[0].len());
    assert!(!out.contains('┆'), "no box drawing through a pipe");
}
