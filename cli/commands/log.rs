//! `dbtool log`: the audit trail of migration runs (who ran which step when, how long it
//! took and how it ended), newest first, read from dbtool's audit table without writing
//! anything. `--prune OLDER_THAN` is its retention: it deletes old entries, after a
//! confirmation on a terminal or `--yes`.

use crate::commands::login_codes::Age;
use crate::exit::{coded, Exit};
use crate::output::{count, human_time, Column, Tone};
use crate::Ctx;
use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use migration::engine::record::{AuditEntry, AUDIT_TABLE};
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool log                       the 50 newest entries: who ran which step, when, how it ended
  dbtool log --limit 500 --json    more of them, as one JSON document
  dbtool log --prune 90d --yes     delete the entries that started more than 90 days ago
  dbtool log --prune 2026-01-01    delete those before that date (UTC), after asking

Outcomes: ok, failed (with the error), interrupted (the run was killed or lost its
connection: the entry was never finished and nobody holds the migration lock), running (a
run holds the lock now). Entries of a run with an entry still running (in progress, or
killed and not yet marked interrupted by the next write run) are never pruned.")]
pub struct LogArgs {
    /// Show at most N entries, newest first
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// Delete the entries that started before OLDER_THAN: an age (30d, 12h, 2w) or an RFC 3339 time or date (2026-01-31T12:00:00Z, 2026-01-31)
    #[arg(long, value_name = "OLDER_THAN", conflicts_with = "limit")]
    pub prune: Option<Cutoff>,
    /// Prune without asking
    #[arg(long, short = 'y', requires = "prune")]
    pub yes: bool,
}

/// Where `--prune` cuts: an age before now, or a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutoff {
    Age(Age),
    At(DateTime<Utc>),
}

impl std::str::FromStr for Cutoff {
    type Err = String;
    fn from_str(s: &str) -> Result<Cutoff, String> {
        let t = s.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(t) {
            return Ok(Cutoff::At(at.with_timezone(&Utc)));
        }
        if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            return Ok(Cutoff::At(
                day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            ));
        }
        match t.parse::<Age>() {
            Ok(age) => Ok(Cutoff::Age(age)),
            // An age's own complaint (zero, too large) is the better one for age-like input.
            Err(e) if t.starts_with(|c: char| c.is_ascii_digit()) && !t.contains('-') => {
                Err(if e.contains("zero") {
                    format!("age '{s}' is zero: say how old the entries to delete are, e.g. 30d")
                } else {
                    e
                })
            }
            Err(_) => Err(format!(
                "invalid OLDER_THAN '{s}': use an age (30d, 12h, 2w) or an RFC 3339 time or date (2026-01-31T12:00:00Z, 2026-01-31)"
            )),
        }
    }
}

impl Cutoff {
    fn before(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Cutoff::Age(a) => now - chrono::Duration::seconds(a.seconds),
            Cutoff::At(t) => t,
        }
    }
}

/// One entry as `log` shows it.
#[derive(Serialize)]
struct EntryView {
    run: String,
    seq: i64,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    app: String,
    operation: String,
    migration: Option<String>,
    direction: Option<String>,
    outcome: String,
    error: Option<String>,
    db_user: Option<String>,
    os_user: Option<String>,
    host: Option<String>,
    /// The program and version that ran it (`dbtool 0.1.0`).
    client: String,
}

fn ms_time(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> EntryView {
        EntryView {
            run: e.run,
            seq: e.seq,
            started_at: ms_time(e.started_at),
            finished_at: e.finished_at.and_then(ms_time),
            duration_ms: e.duration_ms,
            app: e.app,
            operation: e.operation,
            migration: e.version,
            direction: e.direction,
            outcome: e.outcome,
            error: e.error,
            db_user: e.db_user,
            os_user: e.os_user,
            host: e.host,
            client: e.client,
        }
    }
}

#[derive(Serialize)]
struct LogView {
    database: String,
    /// False when the database has no audit table (nothing was logged there yet).
    exists: bool,
    limit: u64,
    entries: Vec<EntryView>,
}

#[derive(Serialize)]
struct PruneView {
    database: String,
    before: DateTime<Utc>,
    pruned: u64,
}

pub async fn run(ctx: &Ctx, args: LogArgs) -> Result<Exit> {
    if let Some(cutoff) = args.prune {
        return prune(ctx, cutoff, args.yes).await;
    }
    let log = match ctx.connect_read().await? {
        Some(db) => {
            let engine = ctx.engine(&db, ctx.engine_options()).await?;
            let log = engine
                .audit_log(Some(args.limit))
                .await
                .map_err(|e| ctx.fail(e))?;
            db.close().await.ok();
            Some(log)
        }
        None => None,
    };
    let exists = log.as_ref().is_some_and(|l| l.exists);
    if !exists && !ctx.out.json {
        ctx.out.info(&format!(
            "no audit log in {} ({AUDIT_TABLE} does not exist): no migration has been run there by a dbtool that keeps one; nothing was created",
            ctx.loc.display
        ));
    }
    let view = LogView {
        database: ctx.loc.display.clone(),
        exists,
        limit: args.limit,
        entries: log
            .map(|l| l.entries.into_iter().map(EntryView::from).collect())
            .unwrap_or_default(),
    };
    ctx.out.emit(&view, |o| {
        let header = [
            Column::id("started"),
            Column::id("took"),
            Column::id("app"),
            Column::id("operation"),
            Column::id("migration"),
            Column::id("direction"),
            Column::id("outcome"),
            Column::id("by"),
            Column::id("client"),
            Column::text("error"),
        ];
        let rows = view
            .entries
            .iter()
            .map(|e| {
                let tone = match e.outcome.as_str() {
                    "ok" => Tone::Good,
                    "running" => Tone::Warn,
                    _ => Tone::Bad,
                };
                vec![
                    (
                        e.started_at.map(|t| human_time(&t)).unwrap_or_default(),
                        Tone::Plain,
                    ),
                    (e.duration_ms.map(took).unwrap_or_default(), Tone::Plain),
                    (e.app.clone(), Tone::Plain),
                    (e.operation.clone(), Tone::Plain),
                    (e.migration.clone().unwrap_or_default(), Tone::Plain),
                    (e.direction.clone().unwrap_or_default(), Tone::Plain),
                    (e.outcome.clone(), tone),
                    (who(e), Tone::Plain),
                    (e.client.clone(), Tone::Plain),
                    (e.error.clone().unwrap_or_default(), Tone::Plain),
                ]
            })
            .collect();
        o.table(&header, rows);
        let more = if view.entries.len() as u64 >= view.limit {
            format!(" (the newest {}; --limit N shows more)", view.limit)
        } else {
            String::new()
        };
        o.line(&format!(
            "{}{more}, newest first",
            count(view.entries.len(), "entry", "entries")
        ));
    });
    Ok(Exit::Ok)
}

/// A duration in ms as people read it: `812 ms`, `3.4 s`, `2 min 5 s`.
fn took(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// `dbuser (osuser@host)`, with what is known.
fn who(e: &EntryView) -> String {
    let os = match (&e.os_user, &e.host) {
        (Some(u), Some(h)) => Some(format!("{u}@{h}")),
        (Some(u), None) => Some(u.clone()),
        (None, Some(h)) => Some(format!("@{h}")),
        (None, None) => None,
    };
    match (&e.db_user, os) {
        (Some(d), Some(o)) => format!("{d} ({o})"),
        (Some(d), None) => d.clone(),
        (None, Some(o)) => o,
        (None, None) => String::new(),
    }
}

/// `--prune`: deletes finished entries that started before the cutoff, once confirmed.
async fn prune(ctx: &Ctx, cutoff: Cutoff, yes: bool) -> Result<Exit> {
    let now = Utc::now();
    let before = cutoff.before(now);
    if before > now {
        return Err(coded(
            Exit::Usage,
            format!(
                "--prune {} is in the future, which would delete the whole log; give a past time or an age such as 90d",
                before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
    }
    let db = ctx.connect_write_existing("prune").await?;
    let engine = ctx.engine(&db, ctx.engine_options()).await?;
    let when = human_time(&before);
    let n = engine
        .count_audit_before(before.timestamp_millis())
        .await
        .map_err(|e| ctx.fail(e))?;
    let pruned = match n {
        None => {
            ctx.out.info(&format!(
                "no audit log in {} ({AUDIT_TABLE} does not exist); nothing to prune",
                ctx.loc.display
            ));
            0
        }
        Some(0) => 0,
        Some(n) => {
            if !yes {
                let question = format!(
                    "Delete {} of the audit log that started before {when}?",
                    count(n, "entry", "entries")
                );
                let asked = crate::prompt::interactive();
                if !asked || !crate::prompt::confirm(&question).await? {
                    return Err(coded(
                        Exit::NotConfirmed,
                        format!(
                            "not confirmed: pruning would delete {} of the audit log that started before {when}; nothing was deleted; re-run with --yes to confirm",
                            count(n, "entry", "entries")
                        ),
                    ));
                }
            }
            engine
                .prune_audit(before.timestamp_millis())
                .await
                .map_err(|e| ctx.fail(e))?
                .unwrap_or(0)
        }
    };
    db.close().await.ok();
    let view = PruneView {
        database: ctx.loc.display.clone(),
        before,
        pruned,
    };
    ctx.out.emit(&view, |o| {
        o.done(&format!(
            "deleted {} of the audit log that started before {when}",
            count(pruned, "entry", "entries")
        ))
    });
    Ok(Exit::Ok)
}
