//! `-v` / `-vv`: a `tracing` subscriber on stderr. Off by default, so without `-v` nothing
//! beyond the normal output is printed. Every line passes through `output::redact`, because
//! driver messages may quote the connection URL. Plain text only: these lines are for
//! reading and grepping, so no colour and no timestamps.

use std::fmt::Write as _;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;

/// Installs the subscriber for the given `-v` count (0: none).
pub fn init(verbose: u8) {
    // -v: what dbtool and the migrator do (each migration step); -vv adds every SQL
    // statement, which sqlx logs under `sqlx::query` when statement logging is on.
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let ours = ["dbtool", "migration", "sea_orm_migration"];
    let drivers = if verbose >= 2 {
        &["sea_orm", "sqlx"][..]
    } else {
        &[]
    };
    // A fixed list of targets, not `EnvFilter`: that would compile in a regex engine for
    // directives dbtool never takes from the user.
    let targets = Targets::new().with_targets(ours.iter().chain(drivers).map(|t| (*t, level)));
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .event_format(Lines)
        .with_writer(RedactedStderr)
        .finish()
        .with(targets);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// `LEVEL target: message fields`, except that an SQL statement is printed whole and
/// unescaped (sqlx puts it in a field, quoted and with newlines).
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        write!(w, "{:>5} ", meta.level())?;
        if meta.target() == "sqlx::query" {
            let mut q = Query::default();
            event.record(&mut q);
            let sql = if q.statement.trim().is_empty() {
                q.summary.trim()
            } else {
                q.statement.trim()
            };
            return writeln!(
                w,
                "sql: {sql} [{}, {}]",
                crate::output::count(q.rows_affected.max(q.rows_returned), "row", "rows"),
                q.elapsed
            );
        }
        write!(w, "{}: ", meta.target())?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

#[derive(Default)]
struct Query {
    summary: String,
    statement: String,
    rows_affected: u64,
    rows_returned: u64,
    elapsed: String,
}

impl Visit for Query {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_affected" => self.rows_affected = value,
            "rows_returned" => self.rows_returned = value,
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "elapsed" => {
                let _ = write!(self.elapsed, "{value:?}");
            }
            "summary" => self.summary = format!("{value:?}"),
            "db.statement" => self.statement = format!("{value:?}"),
            _ => {}
        }
    }
}

/// Hands out one buffer per event, written to stderr redacted and in one piece when dropped.
struct RedactedStderr;

impl<'a> MakeWriter<'a> for RedactedStderr {
    type Writer = EventBuffer;
    fn make_writer(&'a self) -> EventBuffer {
        EventBuffer(Vec::new())
    }
}

struct EventBuffer(Vec<u8>);

impl std::io::Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = crate::output::redact(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}
