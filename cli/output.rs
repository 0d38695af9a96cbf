//! The one place that writes to stdout and stderr: text tables (comfy-table) or JSON
//! documents, colour rules, error rendering, and the redaction of secrets.

use crate::exit::Exit;
use comfy_table::{presets, Cell, Color, ColumnConstraint, ContentArrangement, Table};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

/// Strings that must never be printed (database passwords), replaced by `***`.
static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

/// Registers a secret; every later line written through this module has it masked, in each
/// form it may take in a URL or a driver message: as given, percent-decoded (also with `+`
/// as a space, as in a query string) and percent-encoded.
pub fn add_secret(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let m = SECRETS.get_or_init(|| Mutex::new(Vec::new()));
    let mut v = m.lock().unwrap_or_else(|p| p.into_inner());
    let mut forms = vec![secret.to_owned()];
    if let Ok(decoded) = percent_decode(secret) {
        forms.push(crate::libpq::encode(&decoded));
        forms.push(decoded);
    }
    if let Ok(decoded) = percent_decode(&secret.replace('+', " ")) {
        forms.push(decoded);
    }
    forms.push(crate::libpq::encode(secret));
    for f in forms {
        if !f.is_empty() && !v.contains(&f) {
            v.push(f);
        }
    }
    // Longer forms first, so that a form containing another is masked whole.
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out)
}

/// Masks every registered secret in `s`.
pub fn redact(s: &str) -> String {
    let Some(m) = SECRETS.get() else {
        return s.to_owned();
    };
    let v = m.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = s.to_owned();
    for secret in v.iter() {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// How results are shown, decided once from the global flags and the environment.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub color: bool,
    pub stdout_tty: bool,
}

/// A colour hint for a table cell; ignored without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
}

impl Output {
    pub fn new(json: bool, quiet: bool) -> Output {
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Output {
            json,
            quiet,
            color: stdout_tty && !no_color && !dumb && !json,
            stdout_tty,
        }
    }

    /// A result line on stdout (human mode only; JSON mode prints one document instead).
    pub fn line(&self, s: &str) {
        if self.json {
            return;
        }
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{}", redact(s));
    }

    /// Raw result bytes on stdout, exactly as given (for `settings get`).
    pub fn raw(&self, s: &str) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(redact(s).as_bytes());
        let _ = o.flush();
    }

    /// A diagnostic on stderr; silenced by `-q`.
    pub fn info(&self, s: &str) {
        if self.quiet {
            return;
        }
        eprintln!("{}", redact(s));
    }

    /// A warning on stderr; `-q` means errors only, so it silences this too.
    pub fn warn(&self, s: &str) {
        if self.quiet {
            return;
        }
        eprintln!("warning: {}", redact(s));
    }

    /// One JSON document on stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| {
            format!("{{\"error\":{{\"message\":\"cannot encode output: {e}\"}}}}")
        });
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{}", redact(&text));
    }

    /// Emits `value` as JSON, or calls `human` to print it for people.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce(&Output)) {
        if self.json {
            self.json(value)
        } else {
            human(self)
        }
    }

    /// A table for people; `tones` colours whole cells where colour is on.
    pub fn table(&self, header: &[&str], rows: Vec<Vec<(String, Tone)>>) {
        if self.json {
            return;
        }
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(header.iter().map(Cell::new));
        if !self.stdout_tty {
            t.load_preset(presets::ASCII_MARKDOWN);
            t.set_content_arrangement(ContentArrangement::Disabled);
        } else if t.width().is_none_or(|w| w < 40) {
            // A terminal that reports no (or a tiny) width would squeeze every cell to a
            // column of single characters: lay the table out at its natural width instead.
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
        let first_column_whole = !rows.is_empty();
        for row in rows {
            t.add_row(row.into_iter().map(|(text, tone)| {
                let cell = Cell::new(text);
                match (self.color, tone) {
                    (true, Tone::Good) => cell.fg(Color::Green),
                    (true, Tone::Warn) => cell.fg(Color::Yellow),
                    (true, Tone::Bad) => cell.fg(Color::Red),
                    _ => cell,
                }
            }));
        }
        // The first column holds identifiers (migration names, keys, emails): never wrapped.
        if first_column_whole {
            if let Some(c) = t.column_mut(0) {
                c.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
        self.line(&t.to_string());
    }

    /// Prints an error: one line on stderr (the whole `{:#}` chain), and with `--json`
    /// an `{"error": {...}}` document on stdout. Returns the exit code it asks for.
    pub fn error(&self, err: &anyhow::Error) -> Exit {
        let (message, exit) = crate::dberror::render(err);
        let one_line = redact(&message).replace(['\n', '\r'], " ");
        if self.json {
            #[derive(Serialize)]
            struct Doc<'a> {
                error: ErrorBody<'a>,
            }
            #[derive(Serialize)]
            struct ErrorBody<'a> {
                kind: &'a str,
                code: u8,
                message: &'a str,
            }
            self.json(&Doc {
                error: ErrorBody {
                    kind: exit.kind(),
                    code: exit.code(),
                    message: &one_line,
                },
            });
        }
        eprintln!("error: {one_line}");
        exit
    }
}

/// A panic is a bug in dbtool: one line on stderr, secrets masked, no backtrace (the
/// process then aborts; see the exit-code table).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = redact(&info.to_string()).replace('\n', " ");
        eprintln!("error: internal error, a bug in dbtool (please report it): {msg}");
    }));
}

/// A time as people read it in tables: UTC, to the second.
pub fn human_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
