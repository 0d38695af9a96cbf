//! libpq's conventions for PostgreSQL URLs, as `psql` users expect them: the parts a URL
//! leaves out come from a service (`service=` in the URL or `PGSERVICE`, looked up in
//! `PGSERVICEFILE` or `~/.pg_service.conf`, then `PGSYSCONFDIR/pg_service.conf`), then from
//! `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE` and `PGPASSWORD`, and a missing password from
//! `~/.pgpass` (or `PGPASSFILE`). The completed URL is what dbtool connects to, shows
//! (masked) and probes, so all three agree; every password found is a secret.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// True when libpq's variables name a PostgreSQL server although no URL is configured.
pub fn selects_postgres() -> bool {
    ["PGHOST", "PGDATABASE", "PGSERVICE"]
        .iter()
        .any(|v| env(v).is_some())
}

/// A PostgreSQL URL with the parts libpq would fill in filled in.
#[derive(Debug)]
pub struct Completed {
    pub url: url::Url,
    /// What came from where, for `dbtool config`: `user from PGUSER`, ...
    pub notes: Vec<String>,
    /// Passwords that were read (the URL carries them; they must be masked everywhere).
    pub secrets: Vec<String>,
    /// Said once on stderr (an unsafe `.pgpass`).
    pub warnings: Vec<String>,
}

/// A non-empty environment variable.
fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn home() -> Option<PathBuf> {
    env("HOME").map(PathBuf::from)
}

/// Fills in what `url` leaves out, as libpq does: URL, then service, then environment,
/// then (for the password) the password file. Errors are one line for the user (exit 2).
pub fn complete(url: &url::Url) -> Result<Completed, String> {
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let q = |k: &str| {
        query
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    let service = match q("service")
        .map(|s| (s, "service= in the URL"))
        .or_else(|| env("PGSERVICE").map(|s| (s, "PGSERVICE")))
    {
        Some((name, from)) => {
            let (values, file) = load_service(&name).map_err(|e| format!("{e} (from {from})"))?;
            notes.push(format!("service {name} from {}", show(&file)));
            values
        }
        None => HashMap::new(),
    };
    // The first of: the service file, then the environment variable.
    let fill = |key: &str, var: &str, notes: &mut Vec<String>| -> Option<String> {
        if let Some(v) = service.get(key).filter(|v| !v.is_empty()) {
            return Some(v.clone());
        }
        let v = env(var)?;
        notes.push(format!("{key} from {var}"));
        Some(v)
    };

    let mut out = url.clone();
    let url_host = url.host_str().filter(|h| !h.is_empty()).map(str::to_owned);
    let host = match url_host.or_else(|| q("host")) {
        Some(h) => Some(h),
        None => match fill("host", "PGHOST", &mut notes) {
            Some(h) if h.starts_with('/') => {
                push_query(&mut out, "host", &h);
                Some(h)
            }
            Some(h) => {
                out.set_host(Some(&h)).map_err(|_| {
                    format!("the host '{h}' from the service or PGHOST is not a valid host name")
                })?;
                Some(h)
            }
            None => None,
        },
    };
    let has_host = out.host_str().is_some_and(|h| !h.is_empty());
    let port = match url.port().map(|p| p.to_string()).or_else(|| q("port")) {
        Some(p) => Some(p),
        None => match fill("port", "PGPORT", &mut notes) {
            Some(p) => {
                let n: u16 = p.trim().parse().map_err(|_| {
                    format!("the port '{p}' from the service or PGPORT is not a port number")
                })?;
                if has_host {
                    let _ = out.set_port(Some(n));
                } else {
                    push_query(&mut out, "port", &n.to_string());
                }
                Some(n.to_string())
            }
            None => None,
        },
    };
    let url_user = Some(url.username())
        .filter(|u| !u.is_empty())
        .map(decode)
        .or_else(|| q("user"));
    let user = match url_user {
        Some(u) => Some(u),
        None => fill("user", "PGUSER", &mut notes).inspect(|u| {
            if !has_host || out.set_username(u).is_err() {
                push_query(&mut out, "user", u);
            }
        }),
    };
    let url_db = Some(url.path().trim_start_matches('/'))
        .filter(|p| !p.is_empty())
        .map(decode)
        .or_else(|| q("dbname"));
    let dbname = match url_db {
        Some(d) => Some(d),
        None => fill("dbname", "PGDATABASE", &mut notes).inspect(|d| {
            if has_host {
                out.set_path(&format!("/{}", encode(d)));
            } else {
                push_query(&mut out, "dbname", d);
            }
        }),
    };
    let mut secrets = Vec::new();
    let url_password = url.password().map(decode).or_else(|| q("password"));
    if url_password.is_none() {
        let mut password = fill("password", "PGPASSWORD", &mut notes);
        if password.is_none() {
            // libpq's defaults for the lookup: host localhost (also for sockets), port 5432,
            // database = user name; the user name is the login name.
            let login = env("USER").or_else(|| env("LOGNAME"));
            if let Some(u) = user.clone().or(login) {
                let h = host
                    .clone()
                    .filter(|h| !h.starts_with('/'))
                    .unwrap_or_else(|| "localhost".into());
                let p = port.clone().unwrap_or_else(|| "5432".into());
                let d = dbname.clone().unwrap_or_else(|| u.clone());
                if let Some((pw, file)) = pgpass(&h, &p, &d, &u, &mut warnings) {
                    notes.push(format!("password from {}", show(&file)));
                    password = Some(pw);
                }
            }
        }
        if let Some(pw) = password {
            if !has_host || out.set_password(Some(&encode(&pw))).is_err() {
                push_query(&mut out, "password", &pw);
            }
            secrets.push(pw);
        }
    }
    if let Some(pw) = service.get("password") {
        secrets.push(pw.clone());
    }
    // Connection options a service may set, unless the URL sets them.
    for key in [
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "application_name",
        "options",
    ] {
        if let (Some(v), None) = (service.get(key), q(key)) {
            push_query(&mut out, key, v);
        }
    }
    if q("service").is_some() {
        // sqlx does not know `service`: the service's values are in the URL now.
        let kept: Vec<(String, String)> = out
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "service")
            .collect();
        out.set_query(None);
        for (k, v) in kept {
            push_query(&mut out, &k, &v);
        }
    }
    Ok(Completed {
        url: out,
        notes,
        secrets,
        warnings,
    })
}

fn push_query(u: &mut url::Url, k: &str, v: &str) {
    u.query_pairs_mut().append_pair(k, v);
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// Percent-encodes everything but unreserved characters (for the URL's password).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn show(p: &Path) -> String {
    if let Some(h) = home() {
        if let Ok(rest) = p.strip_prefix(&h) {
            return format!("~/{}", rest.display());
        }
    }
    p.display().to_string()
}

/// The files a service is looked up in, in libpq's order.
fn service_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    match env("PGSERVICEFILE") {
        Some(f) => files.push(PathBuf::from(f)),
        None => {
            if let Some(h) = home() {
                files.push(h.join(".pg_service.conf"));
            }
        }
    }
    match env("PGSYSCONFDIR") {
        Some(d) => files.push(Path::new(&d).join("pg_service.conf")),
        // Where Debian's libpq looks (its SYSCONFDIR).
        None => files.push(PathBuf::from("/etc/postgresql-common/pg_service.conf")),
    }
    files
}

/// The `key=value` lines of service `name`, and the file they came from.
fn load_service(name: &str) -> Result<(HashMap<String, String>, PathBuf), String> {
    let files = service_files();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        if let Some(values) = parse_service(&text, name) {
            return Ok((values, f.clone()));
        }
    }
    Err(format!(
        "PostgreSQL service '{name}' is not defined in {}; add a [{name}] section, or fix the name",
        files
            .iter()
            .map(|f| show(f))
            .collect::<Vec<_>>()
            .join(" or ")
    ))
}

/// The section `[name]` of a service file, or None when the file has none.
fn parse_service(text: &str, name: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<&str> = None;
    let mut found = None::<HashMap<String, String>>;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(section) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if found.is_some() {
                break;
            }
            current = Some(section.trim());
            if current == Some(name) {
                found = Some(HashMap::new());
            }
            continue;
        }
        if let (Some(values), Some((k, v))) = (found.as_mut(), l.split_once('=')) {
            if current == Some(name) {
                values.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
    }
    found
}

/// The password for host:port:database:user from the password file, as libpq reads it
/// (first matching line, `*` matches anything, `\` escapes `:` and `\`); a file others may
/// read is ignored with a warning, as libpq does.
fn pgpass(
    host: &str,
    port: &str,
    db: &str,
    user: &str,
    warnings: &mut Vec<String>,
) -> Option<(String, PathBuf)> {
    let file = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".pgpass")))?;
    let meta = std::fs::metadata(&file).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            warnings.push(format!(
                "password file {} is ignored: it has group or world access; make it private with chmod 0600",
                show(&file)
            ));
            return None;
        }
    }
    if !meta.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        let want = [host, port, db, user];
        if fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f == "*" || f == w)
        {
            return Some((fields[4].clone(), file));
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().unwrap().push(n);
                }
            }
            // The password is the rest of the line, colons included.
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_sections_and_pgpass_lines() {
        let text = "# comment\n[other]\nhost=x\n[prod]\nhost = db.example.com\nport=5433\ndbname=avatar\n\n[later]\nhost=y\n";
        let s = parse_service(text, "prod").unwrap();
        assert_eq!(s["host"], "db.example.com");
        assert_eq!(s["port"], "5433");
        assert_eq!(s.len(), 3);
        assert!(parse_service(text, "nope").is_none());
        assert_eq!(
            split_pgpass(r"db\:1:5432:*:app:pa\:ss:word"),
            ["db:1", "5432", "*", "app", "pa:ss:word"]
        );
    }

    #[test]
    fn encoding_round_trips() {
        assert_eq!(encode("p@ss/w#rd?"), "p%40ss%2Fw%23rd%3F");
        assert_eq!(decode("p%40ss"), "p@ss");
        assert_eq!(decode("a+b"), "a+b");
    }
}
