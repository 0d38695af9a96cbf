//! The one place that writes to stdout and stderr: result lines, tables (see `table`) and
//! JSON documents on stdout, progress, warnings and errors on stderr; colour rules, the
//! escaping of control characters, the redaction of secrets, and what a failed write means.

pub mod table;

use crate::exit::Exit;
use serde::Serialize;
use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

pub use table::Column;

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

/// Secrets at least this long are masked wherever they appear; shorter ones only where a
/// credential stands (`user:SECRET@`, `password=SECRET`), since a password such as `at` or
/// `1` would otherwise mask pieces of every word, key and number in the output.
const MASK_ANYWHERE: usize = 8;

/// Masks every registered secret in `s`.
pub fn redact(s: &str) -> String {
    let Some(m) = SECRETS.get() else {
        return s.to_owned();
    };
    let v = m.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = s.to_owned();
    for secret in v.iter() {
        out = if secret.chars().count() >= MASK_ANYWHERE {
            out.replace(secret.as_str(), "***")
        } else {
            mask_credentials(&out, secret)
        };
    }
    out
}

/// Masks `secret` where it stands as a credential: between `:` and `@` (a URL's userinfo)
/// or after `password=` / `password: ` (a query parameter, a driver's message), up to the
/// end of the value.
fn mask_credentials(s: &str, secret: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(secret) {
        let (before, after) = (&rest[..i], &rest[i + secret.len()..]);
        let ends = after.is_empty()
            || after.starts_with(|c: char| {
                c == '@'
                    || c == '&'
                    || c == '\''
                    || c == '"'
                    || c.is_whitespace()
                    || c == ','
                    || c == ')'
                    || c == ';'
            });
        let lower = before.to_ascii_lowercase();
        let credential = (before.ends_with(':') && after.starts_with('@'))
            || (ends
                && (lower.ends_with("password=")
                    || lower.ends_with("password: ")
                    || lower.ends_with("password=\'")));
        out.push_str(before);
        out.push_str(if credential { "***" } else { secret });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// How results are shown, decided once from the global flags and the environment.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub color: bool,
    pub stdout_tty: bool,
    /// Columns of the terminal on stdout, when it reports them.
    pub width: Option<usize>,
}

/// A colour hint for a table cell; ignored without colour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tone {
    #[default]
    Plain,
    Good,
    Warn,
    Bad,
}

/// The first write to stdout that failed; everything after it is dropped.
static STDOUT_FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);
/// Set once a JSON document is on stdout: a run prints at most one.
static DOCUMENT_PRINTED: AtomicBool = AtomicBool::new(false);

/// Columns of the terminal `stream` is, when it is one that reports its size.
fn terminal_width(stream: impl std::os::fd::AsFd + IsTerminal) -> Option<usize> {
    if !stream.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(stream)
        .map(|(w, _)| usize::from(w.0))
        .filter(|&w| w > 0)
}

fn stderr_width() -> Option<usize> {
    static W: OnceLock<Option<usize>> = OnceLock::new();
    *W.get_or_init(|| terminal_width(std::io::stderr()))
}

/// A message for stderr, fitted to the terminal when stderr is one.
fn stderr_line(s: &str) -> String {
    match stderr_width() {
        Some(w) => format!("{}\n", table::fit(s, w)),
        None => format!("{s}\n"),
    }
}

fn write_stdout(bytes: &[u8]) {
    let mut failed = STDOUT_FAILED.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_some() {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(bytes).and_then(|()| o.flush()) {
        *failed = Some(e);
    }
}

/// stderr is where errors are reported, so a failure to write there has nowhere to go:
/// it is ignored (`eprintln!` would panic instead).
fn write_stderr(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

/// One line on stderr as it is (already redacted: JSON progress events).
pub fn write_stderr_line(s: &str) {
    write_stderr(&format!("{s}\n"));
}

/// A question on stderr, without a newline (see `prompt`).
pub fn ask(question: &str) {
    write_stderr(&escape_controls(&redact(question)));
}

/// Control characters (and the Unicode controls that reorder text) written visibly, as
/// `\n`, `\t`, `\x1b`, `\u{202e}`: an echoed value can neither span lines nor drive the
/// terminal.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(|c| c.is_control() || bidi(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || bidi(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape_controls`] for text of several lines: line breaks and tabs stay as they are.
pub fn escape_controls_but_lines(s: &str) -> Cow<'_, str> {
    if !s.contains(['\n', '\t']) {
        return escape_controls(s);
    }
    Cow::Owned(
        s.split('\n')
            .map(|line| {
                line.split('\t')
                    .map(|part| escape_controls(part).into_owned())
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// `1 migration`, `2 migrations`.
pub fn count<N: std::fmt::Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    let word = if n == N::from(1) { one } else { many };
    format!("{n} {word}")
}

/// `{"error": {"kind", "code", "message"}}`, in that order wherever an error is printed.
fn error_document(exit: Exit, message: &str, details: Option<&serde_json::Value>) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        error: ErrorBody<'a>,
    }
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        kind: &'a str,
        code: u8,
        message: &'a str,
        /// What a failed run did (its report: the steps done, where the database is).
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        details: Option<&'a serde_json::Value>,
    }
    let doc = Doc {
        error: ErrorBody {
            kind: exit.kind(),
            code: exit.code(),
            message,
            details,
        },
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Prints one JSON document unless one was printed already.
fn print_document(text: &str) {
    if DOCUMENT_PRINTED.swap(true, Ordering::SeqCst) {
        return;
    }
    write_stdout(format!("{}\n", redact(text)).as_bytes());
}

/// An error before there is an `Output` (the command line): the `error: ...` line on
/// stderr, and with `--json` the same error document as every other error.
pub fn report_early_error(exit: Exit, message: &str, json: bool) {
    let line = one_line(message);
    if json {
        print_document(&error_document(exit, &line, None));
    }
    write_stderr(&stderr_line(&format!("error: {line}")));
}

fn one_line(message: &str) -> String {
    escape_controls(redact(message).trim_end()).into_owned()
}

/// The exit code once everything is written. A failed write to stdout turns success into
/// exit 1 with one line on stderr; a reader that went away (`dbtool history | head -1`)
/// is not an error: the command's own code stands and nothing is said.
pub fn settle(exit: Exit) -> Exit {
    write_stdout(b"");
    let failed = STDOUT_FAILED.lock().unwrap_or_else(|p| p.into_inner());
    match failed.as_ref() {
        // Said whatever the command's outcome (a fleet with refused targets exits 21, and
        // its report is what was lost); a failed command keeps its own code.
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            write_stderr(&format!(
                "error: cannot write to standard output: {e}; the output is incomplete\n"
            ));
            if exit == Exit::Ok {
                Exit::Failure
            } else {
                exit
            }
        }
        _ => exit,
    }
}

impl Output {
    pub fn new(json: bool, quiet: bool) -> Output {
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let width = terminal_width(std::io::stdout());
        Output {
            json,
            quiet,
            color: stdout_tty && !no_color && !dumb && !json,
            stdout_tty,
            width,
        }
    }

    /// A result line on stdout (human mode only; JSON mode prints one document instead).
    /// Kept by `-q`: it is what the command was asked for. On a terminal it wraps between
    /// words, so no identifier is split at the edge.
    pub fn line(&self, s: &str) {
        if self.json {
            return;
        }
        let s = escape_controls_but_lines(&redact(s)).into_owned();
        let text = match self.width {
            Some(w) => table::fit(&s, w),
            None => s,
        };
        write_stdout(format!("{text}\n").as_bytes());
    }

    /// A confirmation of what was done (`updated setting ...`, `now at ...`) on stdout;
    /// `-q` silences it, and with `--json` the document says it.
    pub fn done(&self, s: &str) {
        if self.quiet {
            return;
        }
        // One line, whatever the names it quotes hold.
        self.line(&escape_controls(s))
    }

    /// Raw result bytes on stdout, exactly as given (for `settings get`).
    pub fn raw(&self, s: &str) {
        write_stdout(redact(s).as_bytes());
    }

    /// Progress and chatter on stderr; silenced by `-q`.
    pub fn info(&self, s: &str) {
        if self.quiet {
            return;
        }
        write_stderr(&stderr_line(&one_line(s)));
    }

    /// A warning on stderr; `-q` means errors only, so it silences this too.
    pub fn warn(&self, s: &str) {
        if self.quiet {
            return;
        }
        write_stderr(&stderr_line(&format!("warning: {}", one_line(s))));
    }

    /// One JSON document on stdout (only the first of a run is printed).
    pub fn json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| {
            error_document(Exit::Failure, &format!("cannot encode output: {e}"), None)
        });
        print_document(&text);
    }

    /// Emits `value` as JSON, or calls `human` to print it for people.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce(&Output)) {
        if self.json {
            self.json(value)
        } else {
            human(self)
        }
    }

    /// A table for people: on a terminal fitted to its width (see `table`), through a
    /// pipe the Markdown table at its natural width. `tones` colour cells where colour is on.
    pub fn table(&self, columns: &[Column], rows: Vec<Vec<(String, Tone)>>) {
        if self.json {
            return;
        }
        // Values come from the database (a character's name, a recorded version): a control
        // byte must neither drive the terminal nor break the table. Descriptive text keeps
        // its line breaks (a cell of several lines); an identifier is always one line.
        let rows: Vec<Vec<(String, Tone)>> = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .enumerate()
                    .map(|(i, (t, tone))| {
                        let text = match columns.get(i).map(|c| c.kind) {
                            Some(table::Kind::Text) => escape_controls_but_lines(&t).into_owned(),
                            _ => escape_controls(&t).into_owned(),
                        };
                        (text, tone)
                    })
                    .collect()
            })
            .collect();
        if !self.stdout_tty {
            self.line(&table::markdown(columns, &rows));
            return;
        }
        let r = table::terminal(columns, &rows, self.width, self.color);
        if !r.text.is_empty() {
            // Already fitted: only an identifier wider than the terminal overflows.
            write_stdout(format!("{}\n", redact(&r.text)).as_bytes());
        }
        if !r.hidden.is_empty() {
            self.info(&format!(
                "(column {} left out: the terminal is too narrow; widen it, or use --json for everything)",
                r.hidden.join(", ")
            ));
        }
    }

    /// Prints an error: one line on stderr (the whole `{:#}` chain, control characters
    /// escaped), and with `--json` an `{"error": {...}}` document on stdout unless the run
    /// printed its document already. Returns the exit code it asks for.
    pub fn error(&self, err: &anyhow::Error) -> Exit {
        let (message, exit) = crate::dberror::render(err);
        let line = one_line(&message);
        if self.json {
            print_document(&error_document(exit, &line, crate::exit::details_of(err)));
        }
        write_stderr(&stderr_line(&format!("error: {line}")));
        exit
    }
}

/// A panic is a bug in dbtool: one line on stderr, secrets masked, no backtrace (the
/// process then aborts; see the exit-code table).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = one_line(&info.to_string());
        write_stderr(&format!(
            "error: internal error, a bug in dbtool (please report it): {msg}\n"
        ));
    }));
}

/// A time as people read it in tables: UTC, to the second.
pub fn human_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain"), "plain");
        assert_eq!(escape_controls("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(escape_controls("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape_controls("\u{7f}\u{85}"), "\\x7f\\x85");
        assert_eq!(escape_controls("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_controls("héllo ⏎"), "héllo ⏎");
    }

    #[test]
    fn error_documents_keep_their_key_order() {
        let doc = error_document(Exit::Usage, "bad", None);
        let kind = doc.find("\"kind\"").unwrap();
        let code = doc.find("\"code\"").unwrap();
        let message = doc.find("\"message\"").unwrap();
        assert!(kind < code && code < message, "{doc}");
    }

    #[test]
    fn short_secrets_are_masked_only_where_a_credential_stands() {
        let s = "at";
        assert_eq!(
            mask_credentials("postgres://u:at@host/db?x=1 duration up to date", s),
            "postgres://u:***@host/db?x=1 duration up to date"
        );
        assert_eq!(
            mask_credentials("host=h password=at user=u; password: at", s),
            "host=h password=*** user=u; password: ***"
        );
        assert_eq!(
            mask_credentials("\"outcome\": \"ok\"", "ok"),
            "\"outcome\": \"ok\""
        );
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "row", "rows"), "1 row");
        assert_eq!(count(0, "row", "rows"), "0 rows");
        assert_eq!(count(2, "migration", "migrations"), "2 migrations");
    }
}
