//! Fitting into a shell (issues 9 and 12): completion (the registration scripts and the
//! dynamic protocol behind them: subcommands, options, app names, migration targets and
//! setting keys from a live database, or static values without one), the man page, the
//! help layout, and `--version` with the migrations each app carries. A broken
//! configuration in the working directory must not stop completions or the man page.

use crate::common::{bin, dbtool_bare, Backend, Run, TestDb};
use crate::on_all_backends;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

on_all_backends!(setting_keys_come_from_the_database);
fn run_in(dir: &Path, args: &[&str]) -> Run {
    Run::from(
        dbtool_bare(dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dbtool"),
    )
}

const SUBCOMMANDS: [&str; 6] = [
    "upgrade",
    "downgrade",
    "status",
    "history",
    "stamp",
    "completions",
];

/// Asks for candidates the way the shell scripts do: `COMPLETE=SHELL dbtool -- WORDS`,
/// the last word being the one under the cursor.
fn complete(cmd: &mut Command, shell: &str, words: &[&str]) -> Vec<String> {
    let out = cmd
        .env("COMPLETE", shell)
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_IFS", "\n")
        .arg("--")
        .args(words)
        .stdin(Stdio::null())
        .output()
        .expect("run dbtool");
    let r = Run::from(out);
    r.ok();
    assert_eq!(r.stderr, "", "completion printed on stderr");
    r.stdout.lines().map(str::to_owned).collect()
}

/// Just the values (fish and zsh add a description after a tab or colon).
fn values(candidates: &[String]) -> Vec<&str> {
    candidates
        .iter()
        .map(|c| c.split(['\t', ':']).next().unwrap())
        .collect()
}

#[test]
fn completion_scripts_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    let me = bin().display().to_string();
    for (shell, markers) in [
        (
            "bash",
            &[
                "complete -o nospace",
                "_clap_complete_dbtool dbtool",
                "COMPLETE=\"bash\"",
            ][..],
        ),
        (
            "zsh",
            &[
                "#compdef dbtool",
                "compdef _clap_dynamic_completer_dbtool dbtool",
                "COMPLETE=\"zsh\"",
            ],
        ),
        (
            "fish",
            &[
                "complete --keep-order --exclusive --command dbtool",
                "COMPLETE=fish",
            ],
        ),
        ("powershell", &["Register-ArgumentCompleter", "COMPLETE"]),
        (
            "elvish",
            &[
                "edit:completion:arg-completer[dbtool]",
                "COMPLETE=\"elvish\"",
            ],
        ),
    ] {
        let r = run_in(dir.path(), &["completions", shell]);
        let script = &r.ok().stdout;
        for m in markers {
            assert!(script.contains(m), "{shell}: no {m:?}:\n{script}");
        }
        // The script calls this very binary back for the candidates.
        assert!(
            script.contains(&me),
            "{shell}: does not call {me}:\n{script}"
        );
        assert!(r.stderr.is_empty(), "{shell}: {}", r.stderr);
    }
    // The same script as clap_complete's own `COMPLETE=bash dbtool`.
    let direct = Run::from(
        dbtool_bare(dir.path())
            .env("COMPLETE", "bash")
            .output()
            .unwrap(),
    );
    assert_eq!(
        direct.ok().stdout,
        run_in(dir.path(), &["completions", "bash"]).stdout
    );
}

#[test]
fn bash_completion_script_is_valid_bash() {
    let dir = tempfile::tempdir().unwrap();
    let script = run_in(dir.path(), &["completions", "bash"])
        .ok()
        .stdout
        .clone();
    let file = dir.path().join("dbtool.bash");
    std::fs::write(&file, script).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sources the bash script and presses TAB after `line` (as bash calls the function).
fn bash_tab(dir: &Path, line: &[&str]) -> Vec<String> {
    let script = run_in(dir, &["completions", "bash"]).ok().stdout.clone();
    let file = dir.join("dbtool.bash");
    std::fs::write(&file, script).unwrap();
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let cur = line.last().unwrap();
    let prev = line[line.len() - 2];
    let probe = format!(
        "source '{}'\nCOMP_WORDS=({words})\nCOMP_CWORD={}\nCOMP_TYPE=9\n_clap_complete_dbtool dbtool '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        file.display(),
        line.len() - 1
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(probe)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_targets_keys_and_apps() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        bash_tab(dir.path(), &["dbtool", "upgrade", "d8"]),
        vec!["d8cfd3cb4083"]
    );
    assert_eq!(
        bash_tab(dir.path(), &["dbtool", "stamp", "2569"]),
        vec!["25698f3f906f"]
    );
    assert_eq!(
        bash_tab(dir.path(), &["dbtool", "--app", "neu"]),
        vec!["neurachar"]
    );
    assert_eq!(
        bash_tab(dir.path(), &["dbtool", "settings", "get", "bio_prompt_t"]),
        vec!["bio_prompt_tiktok"]
    );
    let subcommands = bash_tab(dir.path(), &["dbtool", "sta"]);
    assert!(
        subcommands.contains(&"status".to_string()) && subcommands.contains(&"stamp".to_string())
    );
    assert!(bash_tab(dir.path(), &["dbtool", "upgrade", "--dr"]).contains(&"--dry-run".to_string()));
    assert!(
        !dir.path().join("dbtool.db").exists(),
        "completion created the SQLite file"
    );
}

#[test]
fn targets_follow_the_app_of_the_command_line_and_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let all = complete(
        &mut dbtool_bare(dir.path()),
        "bash",
        &["dbtool", "upgrade", ""],
    );
    for t in [
        "head",
        "base",
        "m20260130_093115_initial_migration",
        "25698f3f906f",
        "m20260130_113328_create_settings_table",
        "d8cfd3cb4083",
    ] {
        assert!(all.contains(&t.to_string()), "no {t}: {all:?}");
    }
    let neurachar = complete(
        &mut dbtool_bare(dir.path()),
        "bash",
        &["dbtool", "--app", "neurachar", "downgrade", "m2025"],
    );
    assert!(neurachar.contains(&"m20251212_000006_add_foreign_key_indexes".to_string()));
    assert!(
        neurachar.iter().all(|t| t.starts_with("m2025")),
        "{neurachar:?}"
    );
    // --app=X, DBTOOL_APP and dbtool.toml select the app as they would for the command.
    for (words, env, toml) in [
        (
            &["dbtool", "--app=neurachar", "upgrade", "m2025"][..],
            None,
            None,
        ),
        (&["dbtool", "upgrade", "m2025"], Some("neurachar"), None),
        (
            &["dbtool", "upgrade", "m2025"],
            None,
            Some("app = \"neurachar\"\n"),
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        if let Some(t) = toml {
            std::fs::write(d.path().join("dbtool.toml"), t).unwrap();
        }
        let mut c = dbtool_bare(d.path());
        if let Some(app) = env {
            c.env("DBTOOL_APP", app);
        }
        let got = complete(&mut c, "bash", words);
        assert_eq!(got.len(), 6, "{words:?}: {got:?}");
    }
    // fish and zsh get the descriptions too.
    let fish = complete(
        &mut dbtool_bare(dir.path()),
        "fish",
        &["dbtool", "upgrade", "d8"],
    );
    assert_eq!(
        fish,
        vec!["d8cfd3cb4083\tm20260130_113328_create_settings_table"]
    );
    let zsh = complete(
        &mut dbtool_bare(dir.path()),
        "zsh",
        &["dbtool", "upgrade", "d8"],
    );
    assert_eq!(values(&zsh), vec!["d8cfd3cb4083"]);
    let apps = complete(
        &mut dbtool_bare(dir.path()),
        "fish",
        &["dbtool", "--app", ""],
    );
    assert_eq!(
        values(&apps),
        vec!["avatar", "neurachar"],
        "the test app stays hidden"
    );
}

async fn setting_keys_come_from_the_database(db: TestDb) {
    // Not migrated yet: the defaults, and nothing is created.
    let keys = complete(&mut db.cmd(), "zsh", &["dbtool", "settings", "get", "b"]);
    assert_eq!(
        values(&keys),
        vec![
            "bio_prompt_facebook",
            "bio_prompt_instagram",
            "bio_prompt_tiktok",
            "bio_prompt_x"
        ]
    );
    if db.backend == Backend::Sqlite {
        assert!(
            !db.dir().join("test.db").exists(),
            "completion created the SQLite file"
        );
    } else {
        assert_eq!(
            db.tables().await,
            Vec::<String>::new(),
            "completion created tables"
        );
    }
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "welcome_text", "hi", "--create"])
        .ok();
    for shell in ["bash", "zsh", "fish"] {
        let keys = complete(&mut db.cmd(), shell, &["dbtool", "settings", "unset", "w"]);
        assert_eq!(values(&keys), vec!["welcome_text"], "{shell}");
    }
    let keys = complete(&mut db.cmd(), "bash", &["dbtool", "settings", "set", ""]);
    let keys: Vec<&String> = keys.iter().filter(|k| !k.starts_with('-')).collect();
    assert_eq!(keys.len(), 5, "the defaults and the stored one: {keys:?}");
}

#[test]
fn completion_without_a_reachable_database_falls_back_quickly() {
    // A server that accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("postgres://postgres@127.0.0.1:{port}/x"),
        format!("mysql://root@127.0.0.1:{port}/x"),
        "postgres://postgres@127.0.0.1:1/x".to_owned(),
        format!("sqlite://{}/missing.db", dir.path().display()),
    ] {
        let started = Instant::now();
        let mut c = dbtool_bare(dir.path());
        c.env("DATABASE_URL", &url).env("DBTOOL_WAIT", "true");
        let keys = complete(&mut c, "bash", &["dbtool", "settings", "edit", "bio"]);
        assert_eq!(keys.len(), 4, "{url}: {keys:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{url}: took {:?}",
            started.elapsed()
        );
    }
    assert!(
        !dir.path().join("missing.db").exists(),
        "completion created the SQLite file"
    );
    drop(listener);
}

#[test]
fn subcommand_help_keeps_global_options_apart() {
    let dir = tempfile::tempdir().unwrap();
    let help = run_in(dir.path(), &["upgrade", "--help"])
        .ok()
        .stdout
        .clone();
    let own = help.find("\nOptions:").expect("own options");
    let global = help.find("\nGlobal options:").expect("global options");
    assert!(own < global, "{help}");
    let dry_run = help.find("--dry-run").unwrap();
    let url = help.find("--database-url").unwrap();
    assert!(own < dry_run && dry_run < global && global < url, "{help}");
    for sub in ["completions", "man"] {
        let help = run_in(dir.path(), &[sub, "--help"]).ok().stdout.clone();
        for option in [
            "--database-url",
            "--app",
            "--schema",
            "--config",
            "--lock-timeout",
            "--wait",
        ] {
            assert!(
                !help.contains(option),
                "{sub} --help lists {option}:\n{help}"
            );
        }
        assert!(help.contains("--json"), "{help}");
    }
    // Still accepted there, only not advertised.
    run_in(
        dir.path(),
        &["completions", "bash", "--database-url", "sqlite://x.db"],
    )
    .ok();
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &["completions", "tcsh"]);
    r.expect_code(2);
    assert!(r.stderr.contains("tcsh"), "{}", r.stderr);
}

#[test]
fn man_page_is_rendered_from_the_cli_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &["man"]);
    let page = &r.ok().stdout;
    assert!(page.starts_with(".ie") || page.contains("\n.TH "), "{page}");
    assert!(page.contains(".TH dbtool 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(&format!("dbtool\\-{sub}")), "no {sub}");
    }
    for section in [
        ".SH EXAMPLES\n.nf\n",
        ".SH ENVIRONMENT\n",
        ".SH FILES\n",
        ".SH \"EXIT STATUS\"\n",
    ] {
        assert!(page.contains(section), "no {section:?}:\n{page}");
    }
    // Examples keep their columns: no-fill, exactly as --help shows them.
    assert!(
        page.contains("\n  dbtool downgrade                    roll back the last migration\n"),
        "{page}"
    );
    let examples = &page[page.find(".SH EXAMPLES").unwrap()..];
    assert!(examples.find("\n.fi\n").unwrap() < examples.find(".SH ENVIRONMENT").unwrap());
    let env = &page[page.find(".SH ENVIRONMENT").unwrap()..page.find(".SH FILES").unwrap()];
    for var in [
        "DATABASE_URL",
        "DBTOOL_APP",
        "DBTOOL_SCHEMA",
        "DBTOOL_CONFIG",
        "DBTOOL_LOCK_TIMEOUT",
        "DBTOOL_WAIT",
        "DBTOOL_WAIT_TIMEOUT",
        "NO_COLOR",
    ] {
        assert!(
            env.contains(&format!("\\fB{var}\\fR")),
            "{var} not in ENVIRONMENT:\n{env}"
        );
    }
    let files = &page[page.find(".SH FILES").unwrap()..];
    for f in ["dbtool.toml", ".env", "dbtool.db"] {
        assert!(files.contains(f), "{f}");
    }
    let status = &page[page.find(".SH \"EXIT STATUS\"").unwrap()..];
    for code in ["0", "2", "8", "130", "134", "143"] {
        assert!(
            status.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit {code}:\n{status}"
        );
    }
    assert!(!page.contains(".SH EXTRA"), "no reflowed after-help text");
    assert!(
        !page.contains("dbtool\\-help(1)"),
        "no page for the help subcommand"
    );
}

#[test]
fn man_pages_into_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    std::fs::create_dir(&out).unwrap();
    let r = run_in(
        dir.path(),
        &["man", "--out-dir", out.to_str().unwrap(), "--json"],
    );
    let doc = r.ok().json();
    let pages: Vec<&str> = doc["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(pages.contains(&"dbtool.1"), "{pages:?}");
    assert!(pages.contains(&"dbtool-upgrade.1"), "{pages:?}");
    assert!(pages.contains(&"dbtool-settings-get.1"), "{pages:?}");
    assert!(!pages.contains(&"dbtool-help.1"), "{pages:?}");
    let upgrade = std::fs::read_to_string(out.join("dbtool-upgrade.1")).unwrap();
    assert!(upgrade.contains(".TH dbtool-upgrade 1"), "{upgrade}");
    assert!(upgrade.contains("dry"), "{upgrade}");
    assert!(upgrade.contains(".SH EXAMPLES\n.nf\n"), "{upgrade}");
    assert!(
        upgrade.contains("\n  dbtool upgrade +1                apply the next migration only\n"),
        "{upgrade}"
    );
    assert!(
        upgrade.contains(".SH \"SEE ALSO\"\n\\fBdbtool\\fR(1)"),
        "{upgrade}"
    );
    assert!(upgrade.contains(".SH \"GLOBAL OPTIONS\""), "{upgrade}");

    let r = run_in(dir.path(), &["man", "--out-dir", "no/such/dir"]);
    r.expect_code(2);
    assert!(r.stderr.contains("no/such/dir"), "{}", r.stderr);
}

#[test]
fn completions_and_man_ignore_a_broken_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dbtool.toml"), "colour = \"red\"\n").unwrap();
    run_in(dir.path(), &["completions", "bash"]).ok();
    run_in(dir.path(), &["man"]).ok();
    // ...while commands that use the configuration refuse it.
    run_in(dir.path(), &["config"]).expect_code(2);
}

#[test]
fn version_lists_each_apps_head() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &["--version"]);
    let text = &r.ok().stdout;
    assert!(text.starts_with("dbtool "), "{text}");
    // Avatar's head is dbtool's own step past the Alembic head, so it has no alias.
    assert!(
        text.contains("avatar: 3 migrations, head m20261201_000001_widen_settings_value\n"),
        "{text}"
    );
    let n = <migration::neurachar::Migrator as migration::AppMigrator>::infos().len();
    assert!(
        text.contains(&format!("neurachar: {n} migrations, head")),
        "{text}"
    );
}
