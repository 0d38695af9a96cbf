//! The targets of a fleet run and which of them this runner takes: read from a fleet file
//! (TOML, `${VAR}` expanded from the environment and `.env`), listed from a server (every
//! database whose name matches a LIKE pattern, or every schema of one PostgreSQL database),
//! or found on disk (SQLite files matching a glob); then selected by tag and cut to this
//! runner's share (`--shard I/N`, a stable hash of the target name).

use crate::config::show_path;
use crate::exit::{coded, Exit};
use anyhow::Result;
use migration::App;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The fleet file looked for in the working directory.
pub const DEFAULT_FILE: &str = "dbtool-fleet.toml";

/// The keys of one `[[target]]`.
pub const TARGET_KEYS: [&str; 8] = [
    "name",
    "url",
    "app",
    "schema",
    "tags",
    "direct_url",
    "lock_timeout",
    "ddl_lock_timeout",
];

/// One database (or schema) to run on.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Unique in the fleet; what `--shard` hashes and the summary shows.
    pub name: String,
    /// The URL, password included (never shown: the connection masks it).
    pub url: String,
    pub direct_url: Option<String>,
    pub app: Option<App>,
    pub schema: Option<String>,
    pub tags: Vec<String>,
    pub lock_timeout: Option<u64>,
    pub ddl_lock_timeout: Option<f64>,
    /// Why the target cannot be run as written (a `${VAR}` that is not set): it is refused
    /// without connecting.
    pub problem: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    #[serde(default)]
    target: Vec<FileTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    name: String,
    url: String,
    app: Option<String>,
    schema: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    direct_url: Option<String>,
    lock_timeout: Option<u64>,
    ddl_lock_timeout: Option<f64>,
}

/// Reads a fleet file. `explicit`: named by `--file` (the default name is only looked for).
/// Every problem with the file itself is exit 2 naming the file; an unset `${VAR}` only
/// refuses its target (see [`Target::problem`]).
pub fn from_file(path: &Path) -> Result<Vec<Target>> {
    let label = show_path(path);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(coded(
                Exit::Usage,
                format!(
                    "fleet file {label} does not exist; write one (see `dbtool fleet --help`), name it with --file, or give --server/--match, --match-schemas or --sqlite-glob"
                ),
            ))
        }
        Err(e) => {
            return Err(coded(
                Exit::Usage,
                format!(
                    "cannot read fleet file {label}: {}",
                    crate::config::io_reason(&e)
                ),
            ))
        }
    };
    parse(&text).map_err(|m| coded(Exit::Usage, format!("fleet file {label}: {m}")))
}

/// Parses the text of a fleet file and expands its `${VAR}`s.
fn parse(text: &str) -> std::result::Result<Vec<Target>, String> {
    let file: FleetFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    if file.target.is_empty() {
        return Err("no [[target]] in it; add one per database (name and url)".into());
    }
    let mut names = BTreeSet::new();
    let mut vars = BTreeSet::new();
    for (i, t) in file.target.iter().enumerate() {
        if t.name.trim().is_empty() {
            return Err(format!("target {} has an empty name", i + 1));
        }
        if !names.insert(t.name.as_str()) {
            return Err(format!(
                "target name '{}' is used twice; names must be unique",
                t.name
            ));
        }
        for v in [Some(&t.url), t.direct_url.as_ref()].into_iter().flatten() {
            vars.extend(var_names(v));
        }
    }
    // Variables the file names count as dbtool's own in `.env`.
    let names: Vec<String> = vars.into_iter().collect();
    let dotenv = crate::config::dotenv_vars(&names).map_err(|e| format!("{e:#}"))?;
    let lookup = |k: &str| std::env::var(k).ok().or_else(|| dotenv.get(k).cloned());
    file.target
        .into_iter()
        .map(|t| {
            let app = t
                .app
                .as_deref()
                .map(|a| {
                    crate::config::parse_app(a)
                        .map_err(|e| format!("target '{}': app: {e}", t.name))
                })
                .transpose()?;
            if let Some(s) = t.ddl_lock_timeout.filter(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(format!(
                    "target '{}': ddl_lock_timeout {s} is not a number of seconds above 0",
                    t.name
                ));
            }
            let mut problem = None;
            let mut expand_one = |key: &str, v: &str| match expand(v, &lookup) {
                Ok(s) => s,
                Err(e) => {
                    problem.get_or_insert(format!("{key}: {e}"));
                    String::new()
                }
            };
            let url = expand_one("url", &t.url);
            let direct_url = t.direct_url.as_deref().map(|d| expand_one("direct_url", d));
            Ok(Target {
                name: t.name,
                url,
                direct_url,
                app,
                schema: t.schema,
                tags: t.tags,
                lock_timeout: t.lock_timeout,
                ddl_lock_timeout: t.ddl_lock_timeout,
                problem,
            })
        })
        .collect()
}

/// The `${NAME}`s a value refers to.
fn var_names(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        out.push(inner.split(":-").next().unwrap_or(inner).to_owned());
        rest = &after[end + 1..];
    }
    out
}

/// Replaces each `${NAME}` (or `${NAME:-default}`) with its value; a name that is not set
/// (and has no default) is an error naming it. Nothing else is special: a `$` without a
/// brace stays, as passwords may hold one.
fn expand(v: &str, lookup: &dyn Fn(&str) -> Option<String>) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated ${...}; close it with }".into());
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("${{{name}}} is not a variable name"));
        }
        match (lookup(name), default) {
            (Some(value), Some(d)) if value.is_empty() => out.push_str(d),
            (Some(value), _) => out.push_str(&value),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "${{{name}}} is not set (neither in the environment nor in ./.env); set it, or give a default as ${{{name}:-value}}"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// toml's report in one line: line number, the line (a URL never echoed) and the message.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else { return msg };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    // Any line that could hold a URL or a password is named, never shown: `url: "…"`
    // (a YAML habit) or the continuation of a multi-line string included.
    let risky = line.contains("://")
        || line.contains('@')
        || line.to_ascii_lowercase().contains("url")
        || line.to_ascii_lowercase().contains("password");
    let shown = match line.split_once(['=', ':']) {
        Some((key, _)) if risky && !key.contains("//") => format!("{} …", key.trim()),
        _ if risky => "…".to_owned(),
        _ => line.to_owned(),
    };
    let msg = if msg.starts_with("unknown field") {
        format!(
            "{msg}; the keys of a [[target]] are {}",
            TARGET_KEYS.join(", ")
        )
    } else {
        msg
    };
    format!("line {line_no} (`{shown}`): {msg}")
}

/// Targets for every database of the server at `server` whose name is in `names`: the URL
/// with the database put in its path.
pub fn for_databases(server: &url::Url, names: &[String]) -> Vec<Target> {
    names
        .iter()
        .map(|n| {
            let mut u = server.clone();
            u.set_path(&format!("/{}", crate::libpq::encode(n)));
            Target {
                name: n.clone(),
                url: u.to_string(),
                ..Target::default()
            }
        })
        .collect()
}

/// Targets for schemas of one PostgreSQL database.
pub fn for_schemas(url: &str, names: &[String]) -> Vec<Target> {
    names
        .iter()
        .map(|n| Target {
            name: n.clone(),
            url: url.to_owned(),
            schema: Some(n.clone()),
            ..Target::default()
        })
        .collect()
}

/// Targets for the SQLite files matching `pattern` (`*`, `?` and `[...]` within one path
/// component), named by their path as matched, relative to the working directory when the
/// pattern is.
pub fn for_sqlite_glob(pattern: &str) -> Result<Vec<Target>> {
    let files =
        glob(pattern).map_err(|e| coded(Exit::Usage, format!("--sqlite-glob '{pattern}': {e}")))?;
    Ok(files
        .into_iter()
        .map(|f| {
            let name = f.to_string_lossy().into_owned();
            Target {
                // The URL's path is percent-decoded: `a%41.db` must not become `aA.db`.
                url: format!("sqlite://{}", encode_path(&name)),
                name,
                ..Target::default()
            }
        })
        .collect())
}

/// The regular files matching `pattern`, sorted. Hidden entries match only a component that
/// starts with a dot; `./` at the start is dropped, so names are the same however it is typed.
fn glob(pattern: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let absolute = pattern.starts_with('/');
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() {
        return Err("the pattern names no file; e.g. 'data/*.db'".into());
    }
    let mut current: Vec<PathBuf> = vec![if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let mut next = Vec::new();
        for base in &current {
            if !has_wildcard(part) {
                let p = base.join(part);
                let fits = if last { p.is_file() } else { p.is_dir() };
                if fits {
                    next.push(p);
                }
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                if !wildcard_match(part, &name) {
                    continue;
                }
                let p = base.join(&name);
                let fits = if last { p.is_file() } else { p.is_dir() };
                if fits {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current.sort();
    Ok(current)
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Shell wildcard matching of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let mut set = &p[1..close];
                let negate = matches!(set.first(), Some('!') | Some('^'));
                if negate {
                    set = &set[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= (set[i]..=set[i + 2]).contains(c);
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[close + 1..], &n[1..])
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// `--shard I/N`: this runner's share of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let bad = || {
            format!("'{s}' is not a shard: give I/N with 1 <= I <= N, e.g. 1/3 (the first of three runners)")
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits, of the name's UTF-8 bytes: stable across builds, platforms and
/// runners (unlike Rust's `DefaultHasher`), so every runner computes the same split.
pub fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Shard {
    /// Whether the target called `name` is in this share: `fnv1a64(name) % N == I - 1`.
    pub fn takes(&self, name: &str) -> bool {
        name_hash(name) % self.count == self.index - 1
    }
}

/// The targets this runner works on, in fleet order: those with any of `tags` (all when
/// none are given), then this runner's share.
pub fn select(all: Vec<Target>, tags: &[String], shard: Option<Shard>) -> Vec<Target> {
    all.into_iter()
        .filter(|t| tags.is_empty() || t.tags.iter().any(|x| tags.contains(x)))
        .filter(|t| shard.is_none_or(|s| s.takes(&t.name)))
        .collect()
}

/// The indices of the canaries among `targets`: the first `n` with `--canary N`, else the
/// targets tagged `canary`.
pub fn canaries(targets: &[Target], n: Option<usize>) -> Vec<usize> {
    match n {
        Some(n) => (0..n.min(targets.len())).collect(),
        None => targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.tags.iter().any(|x| x == "canary"))
            .map(|(i, _)| i)
            .collect(),
    }
}

/// A file path as the path of a `sqlite://` URL: the characters a URL would read otherwise
/// (`%`, `?`, `#`, spaces and controls) percent-encoded.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' | '?' | '#' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_ascii_control() => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_expand_or_name_what_is_missing() {
        let vars = env(&[("PW", "s3cret"), ("EMPTY", "")]);
        let look = |k: &str| vars.get(k).cloned();
        assert_eq!(
            expand("postgres://a:${PW}@h/db", &look).unwrap(),
            "postgres://a:s3cret@h/db"
        );
        assert_eq!(expand("x${NOPE:-d}y", &look).unwrap(), "xdy");
        assert_eq!(expand("x${EMPTY:-d}y", &look).unwrap(), "xdy");
        assert_eq!(expand("pa$$word", &look).unwrap(), "pa$$word");
        let e = expand("postgres://a:${ACME_PW}@h/db", &look).unwrap_err();
        assert!(e.contains("${ACME_PW} is not set"), "{e}");
        assert!(expand("${1X}", &look).is_err());
        assert!(expand("${PW", &look).is_err());
        assert_eq!(var_names("a${X}b${Y:-z}"), vec!["X", "Y"]);
    }

    #[test]
    fn shards_split_without_overlap() {
        let names: Vec<String> = (0..500).map(|i| format!("tenant_{i}")).collect();
        let shards: Vec<Shard> = (1..=3).map(|i| Shard { index: i, count: 3 }).collect();
        for n in &names {
            assert_eq!(shards.iter().filter(|s| s.takes(n)).count(), 1, "{n}");
        }
        for s in &shards {
            let share = names.iter().filter(|n| s.takes(n)).count();
            assert!((100..=240).contains(&share), "{s}: {share}");
        }
        // The documented hash: FNV-1a 64 of the UTF-8 bytes.
        assert_eq!(name_hash(""), 0xcbf29ce484222325);
        assert_eq!(name_hash("a"), 0xaf63dc4c8601ec8c);
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
    }

    #[test]
    fn each_shard_runs_its_own_canaries() {
        let all: Vec<Target> = (0..60)
            .map(|i| Target {
                name: format!("t{i}"),
                tags: if i % 10 == 0 {
                    vec!["canary".into()]
                } else {
                    vec![]
                },
                ..Target::default()
            })
            .collect();
        let mut found = 0;
        for i in 1..=3 {
            let share = select(all.clone(), &[], Some(Shard { index: i, count: 3 }));
            let c = canaries(&share, None);
            assert!(c.iter().all(|&k| share[k].tags == ["canary"]));
            found += c.len();
            assert_eq!(canaries(&share, Some(2)), vec![0, 1]);
        }
        assert_eq!(found, 6, "every canary runs in exactly one shard");
    }

    #[test]
    fn wildcards_match_one_component() {
        assert!(wildcard_match("*.db", "t1.db"));
        assert!(!wildcard_match("*.db", "t1.db-journal"));
        assert!(wildcard_match("t?.db", "t1.db"));
        assert!(wildcard_match("t[0-4].db", "t3.db"));
        assert!(!wildcard_match("t[!0-4].db", "t3.db"));
        assert!(wildcard_match("*", "anything"));
    }

    #[test]
    fn file_errors_name_the_problem() {
        let e =
            parse("[[target]]\nname = \"a\"\nurl = \"sqlite://a.db\"\nurll = \"x\"\n").unwrap_err();
        assert!(e.contains("urll") && e.contains("line 4"), "{e}");
        let e = parse("[[target]]\nname = \"a\"\nurl = \"postgres://u:pw@h/db\"\n[[target]]\nname = \"a\"\nurl = \"sqlite://b.db\"\n")
            .unwrap_err();
        assert!(e.contains("used twice"), "{e}");
        let e = parse("[[target]]\nname = \"a\"\nurl = \"postgres://u:pw@h/db\n").unwrap_err();
        assert!(!e.contains("pw"), "{e}");
        assert!(parse("").unwrap_err().contains("no [[target]]"));
    }
}
