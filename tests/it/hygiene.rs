//! The repository is self-contained: nothing a test, the README, `tests/run` or `.ci/run`
//! reads may lie outside the checkout (a fresh clone has nothing beside it). This scans every
//! tracked text file for paths that climb out of the repository or name absolute locations
//! of the machine it was written on.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files whose paths matter: tests, scripts, docs and sources (vendored code excluded).
fn files() -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(repo())
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|p| !p.starts_with("vendor/") && !p.ends_with(".lock"))
        .filter(|p| {
            let ext = Path::new(p).extension().and_then(|e| e.to_str());
            matches!(ext, Some("rs" | "toml" | "md" | "sh" | "txt" | "json")) || p.ends_with("/run")
        })
        .map(|p| repo().join(p))
        .collect()
}

/// Patterns that read beside or above the checkout. Spelled in two pieces where the whole
/// pattern would itself be a hit for scanners of the same rule run over this file.
const OUTSIDE: &[&str] = &[
    concat!("..", "/shared"),
    "/work/",
    "CARGO_MANIFEST_DIR\"), \"/..",
    "CARGO_MANIFEST_DIR\"),\"/..",
];

#[test]
fn nothing_reads_outside_the_repository() {
    let me = file!().rsplit('/').next().unwrap().to_owned();
    let mut hits = Vec::new();
    for f in files() {
        if f.file_name().and_then(|n| n.to_str()) == Some(me.as_str()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if OUTSIDE.iter().any(|p| line.contains(p)) {
                hits.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "these lines read outside the repository (copy what they need into it):\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_schema_contract_is_in_the_repository() {
    for f in [
        "avatar.postgres.schema.txt",
        "neurachar.postgres.schema.txt",
    ] {
        let p = repo().join("tests/spec").join(f);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(text.starts_with("# schema_snapshot v1"), "{}", p.display());
    }
}
