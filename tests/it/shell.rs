//! Fitting into a shell (issue 9): completion scripts for each shell, the man page, and
//! `--version` with the migrations each app carries. None of these touch a database, and a
//! broken configuration in the working directory must not stop them.

use crate::common::{dbtool_bare, Run};
use std::path::Path;
use std::process::Stdio;

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

#[test]
fn completions_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef dbtool"),
        ("fish", "complete -c dbtool"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let r = run_in(dir.path(), &["completions", shell]);
        let script = &r.ok().stdout;
        assert!(script.len() > 1000, "{shell}: script too short:\n{script}");
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: no subcommand {sub}");
        }
        // fish spells it `-l database-url`.
        assert!(script.contains("database-url"), "{shell}: no global option");
        assert!(r.stderr.is_empty(), "{shell}: {}", r.stderr);
    }
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
    assert!(page.contains("DATABASE_URL"), "env vars documented");
    assert!(page.contains("Exit codes"), "exit-code table");
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
    let upgrade = std::fs::read_to_string(out.join("dbtool-upgrade.1")).unwrap();
    assert!(upgrade.contains(".TH dbtool-upgrade 1"), "{upgrade}");
    assert!(upgrade.contains("dry"), "{upgrade}");

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
