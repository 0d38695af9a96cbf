//! The CLI's side of the migration engine: engine options from the configuration, the
//! renderer of its events (stderr), and the one function that turns an engine error into
//! wording, hints and an exit code. Every hint is a whole command that works as printed.

use crate::exit::{coded, coded_with, Exit};
use crate::Ctx;
use migration::engine::{
    self, describe, short_name, AppChoice, Command, Engine, Error, Event, Hooks, Options, Report,
    TableRows, TargetError,
};
use migration::StepInfo;
use sea_orm::{DatabaseConnection, DbBackend};

impl Ctx {
    /// Engine options from the configuration.
    pub fn engine_options(&self) -> Options {
        let c = &self.config;
        Options {
            app: if c.app.source == crate::config::Source::Default {
                AppChoice::Recognise {
                    default: c.app.value,
                }
            } else {
                AppChoice::Given(c.app.value)
            },
            schema: self.settings.schema.clone(),
            // The connection puts the schema into search_path itself (see `postgres`).
            set_search_path: false,
            lock_timeout: self.lock_timeout,
            ddl_lock_timeout: std::time::Duration::from_secs_f64(c.ddl_lock_timeout.value),
            ddl_retries: c.ddl_retries.value,
            statement_timeout: c
                .statement_timeout
                .value
                .map(std::time::Duration::from_secs_f64),
            client: format!("dbtool {}", crate::version::SHORT),
            ..Options::default()
        }
    }

    /// An engine on `db` with the configured options. The first engine after
    /// [`Ctx::connect_migrate`] is on that connection, and is told what its session said.
    pub async fn engine(
        &self,
        db: &DatabaseConnection,
        mut opts: Options,
    ) -> anyhow::Result<Engine> {
        if opts.session.is_none() {
            opts.session = self.session.lock().ok().and_then(|mut s| s.take());
        }
        Engine::new(db, opts).await.map_err(|e| self.fail(e))
    }

    /// `dbtool [--app X] [--schema S] ARGS` as it must be typed again here: flags that came
    /// from the command line are repeated; values from the environment or files are found
    /// again by the same command. A URL given as a flag is named, never printed.
    pub fn hint(&self, args: &str) -> String {
        let c = &self.config;
        let flag = crate::config::Source::Flag;
        let mut s = String::from("dbtool");
        if let (true, Some(file)) = (c.file_from_flag, &c.file) {
            // Absolute, so that the hint works from any directory.
            let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            s.push_str(&format!(
                " --config {}",
                shell_word(&file.to_string_lossy())
            ));
        }
        if c.database_url.source == flag {
            s.push_str(" --database-url <url>");
        }
        if c.direct_url.source == flag {
            s.push_str(" --direct-url <direct-url>");
        }
        if c.app.source == flag {
            s.push_str(&format!(" --app {}", c.app.value));
        }
        if c.schema.source == flag {
            if let Some(schema) = &c.schema.value {
                // Spelled so that it folds back to the same name (see `fold_identifier`).
                let plain = schema
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
                    && !schema.starts_with(|ch: char| ch.is_ascii_digit());
                let spelled = if plain {
                    schema.clone()
                } else {
                    format!("\"{}\"", schema.replace('"', "\"\""))
                };
                s.push_str(&format!(" --schema {}", shell_word(&spelled)));
            }
        }
        s.push(' ');
        s.push_str(args);
        s
    }

    /// The same hint for another app (the one the database belongs to).
    pub fn hint_for(&self, app: migration::App, args: &str) -> String {
        let base = self.hint(args);
        let rest = base.trim_start_matches("dbtool");
        let rest = rest.replacen(&format!(" --app {}", self.config.app.value), "", 1);
        format!("dbtool --app {app}{rest}")
    }

    /// Wording and exit code for an engine error, in one place.
    /// Under `--json` the error document also carries the run's report and, when a step
    /// failed, which one and how (`failed`), so a pipeline need not parse the message.
    pub fn fail(&self, e: Error) -> anyhow::Error {
        let mut details = serde_json::Map::new();
        if let Some(r) = e.report().and_then(|r| serde_json::to_value(r).ok()) {
            details.insert("report".into(), r);
        }
        let failed = match &e {
            Error::StepFailed(f) => Some(serde_json::json!({
                "step": f.step.name,
                "alias": f.step.alias,
                "direction": f.direction,
                "rolled_back": f.rolled_back,
                "resumable": !f.rolled_back,
                "error": crate::output::redact(&crate::dberror::describe(&f.error).message),
            })),
            Error::DdlLockTimeout(f) => Some(serde_json::json!({
                "step": f.step.name,
                "alias": f.step.alias,
                "direction": f.direction,
                "rolled_back": f.rolled_back,
                "resumable": !f.rolled_back,
                "error": "lock timeout",
                "attempts": f.attempts,
                "ddl_lock_timeout_s": f.timeout.as_secs_f64(),
                "blockers": f.blockers,
            })),
            _ => None,
        };
        if let Some(f) = failed {
            details.insert("failed".into(), f);
        }
        let (exit, message) = self.wording(e);
        if details.is_empty() {
            coded(exit, message)
        } else {
            coded_with(exit, message, serde_json::Value::Object(details))
        }
    }

    fn wording(&self, e: Error) -> (Exit, String) {
        let backend = self.loc.backend;
        match e {
            Error::Target(t) => (Exit::Usage, self.target_wording(t)),
            Error::Locked { waited, holder } => (
                Exit::LockTimeout,
                format!(
                    "timed out after {}s waiting for the migration lock, held by {holder}; nothing was changed; try again later or raise --lock-timeout",
                    waited.as_secs()
                ),
            ),
            Error::WrongApp {
                given,
                found,
                evidence,
            } => {
                // The same command for the other app, unless it names one of this app's
                // migrations, which the other app does not have.
                let again = self.invoked();
                let names_a_step = again.split_whitespace().any(|w| {
                    let w = w.trim_start_matches(['+', '-']);
                    w.len() >= 4
                        && given.steps().iter().any(|s| {
                            s.name.starts_with(w) || s.alias.is_some_and(|a| a.starts_with(w))
                        })
                });
                let next = if names_a_step {
                    format!(
                        "its own migrations are listed by `{}`",
                        self.hint_for(found, "history")
                    )
                } else {
                    format!("run `{}`", self.hint_for(found, &again))
                };
                (
                    Exit::WrongApp,
                    format!(
                        "this database belongs to {found} ({evidence}), not to {given}; nothing was changed; {next}"
                    ),
                )
            }
            Error::AmbiguousApp { evidence } => (
                Exit::WrongApp,
                format!(
                    "the database holds objects of both apps ({evidence}); nothing was changed; say which with --app avatar or --app neurachar"
                ),
            ),
            Error::UnknownRecorded { versions } => (
                Exit::UnknownRecorded,
                format!(
                    "the database records migrations this build of dbtool does not know: {}; it was migrated by a newer build: nothing was changed; use that build (see `{}`)",
                    versions.join(", "),
                    self.hint("status")
                ),
            ),
            Error::UnknownAlembic {
                revision,
                known,
                stamp,
            } => {
                let way = match stamp {
                    Some(s) => format!(
                        "its tables match {}: record that with `{}`, then run `{}`",
                        describe(s),
                        self.hint(&format!("stamp {}", short_name(s))),
                        self.hint("upgrade")
                    ),
                    None => format!(
                        "bring it to a known revision with Flask-Migrate first (e.g. `flask db downgrade {}`), then run `{}`",
                        known.last().copied().unwrap_or("base"),
                        self.hint("upgrade")
                    ),
                };
                (
                    Exit::UnknownRecorded,
                    format!(
                        "alembic_version holds revision '{revision}', which this build does not know (known: {}); nothing was changed; {way}",
                        known.join(", ")
                    ),
                )
            }
            Error::OutOfOrder { pending, after } => (
                Exit::OutOfOrder,
                format!(
                    "{} {} pending while the later {} is applied; nothing was changed; apply {} with `{}`, or review with `{}`",
                    names(&pending),
                    if pending.len() == 1 { "is" } else { "are" },
                    after.name,
                    if pending.len() == 1 { "it" } else { "them" },
                    self.hint(&format!("{} --out-of-order", self.invoked())),
                    self.hint("status")
                ),
            ),
            Error::Conflict {
                step,
                tables,
                stamp,
            } => {
                let fix = match stamp {
                    Some(s) => format!(
                        "the objects of the migrations up to {} are all there: record them with `{}`, then run `{}` again",
                        describe(s),
                        self.hint(&format!("stamp {}", short_name(s))),
                        self.hint("upgrade")
                    ),
                    None => format!(
                        "its objects exist only in part: see what is missing with `{}`, create it (or restore the table), then record it with `{}`",
                        self.hint("check"),
                        self.hint(&format!("stamp {}", short_name(step)))
                    ),
                };
                let why = if backend == DbBackend::MySql {
                    " (MySQL/MariaDB commit DDL at once, so an older tool's interrupted run can leave this behind)"
                } else {
                    ""
                };
                (
                    Exit::Failure,
                    format!(
                        "table {} already exists but migration {} that creates it is not recorded{why}; nothing was changed; {fix}",
                        tables.join(", "),
                        describe(step)
                    ),
                )
            }
            Error::NotConfirmed { risk } => (
                Exit::NotConfirmed,
                format!(
                    "not confirmed: the downgrade would drop {}; nothing was changed; re-run with --yes to confirm, or --dry-run to review",
                    risk_list(&risk)
                ),
            ),
            Error::Unverified { steps, missing } => {
                let last = steps.last().copied();
                (
                    Exit::Drift,
                    format!(
                        "cannot record {} as applied: missing {}; nothing was changed; create what is missing, or record it anyway with `{}` (then `{}` reports the drift)",
                        names(&steps),
                        missing
                            .iter()
                            .map(|m| m.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        self.hint(&format!(
                            "stamp {} --force",
                            last.map(short_name).unwrap_or("head")
                        )),
                        self.hint("check")
                    ),
                )
            }
            Error::RepairRefused(m) => {
                let finish = match m.direction {
                    engine::Direction::Up => "upgrade",
                    engine::Direction::Down => "downgrade",
                };
                let present = if m.objects.present.is_empty() {
                    String::new()
                } else {
                    format!(" (present: {})", m.objects.present.join(", "))
                };
                (
                    Exit::Drift,
                    format!(
                        "cannot repair {}: it was left half-done while {} and its objects exist only in part: missing {}{present}; nothing was changed; finish the step with `{}`, or clear the marker anyway with `{}` (then `{}` shows the drift)",
                        describe(m.step),
                        match m.direction {
                            engine::Direction::Up => "being applied",
                            engine::Direction::Down => "being rolled back",
                        },
                        m.objects.missing.join(", "),
                        self.hint(finish),
                        self.hint("repair --force"),
                        self.hint("check")
                    ),
                )
            }
            Error::AfterResume { done, error } => {
                let (exit, message) = self.wording(*error);
                let first = format!(
                    "nothing else was changed ({} was finished first: {})",
                    describe(done.step),
                    verb(done.direction).1
                );
                (exit, message.replace("nothing was changed", &first))
            }
            Error::RepairNotConfirmed(plan) => (
                Exit::NotConfirmed,
                format!(
                    "not confirmed: repair would {}; nothing was changed; re-run with --yes to confirm, or --dry-run to review",
                    crate::commands::repair::confirmation(&plan)
                        .iter()
                        .map(|l| l.trim_start_matches("would ").to_owned())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            Error::AtomicRefused { .. } => (Exit::Usage, format!("{e_atomic}; run without --atomic (each migration then runs in its own transaction)", e_atomic = e_display(&e))),
            Error::CreateSchema { schema, error } => {
                let d = crate::dberror::describe_in(&error, Some("creating the schema"));
                let q = migration::engine::quote_pg(&schema);
                (
                    d.exit,
                    format!(
                        "cannot create schema {q}: {}; nothing was changed; create it first (CREATE SCHEMA {q}) as a user that may, or use such a user",
                        d.message
                    ),
                )
            }
            Error::ReviewRefused { reason } => (Exit::LintFindings, reason),
            Error::TemporarySchema { schema } => (
                Exit::Connection,
                format!(
                    "refusing to migrate into {schema}, the session's temporary schema (the search_path starts with pg_temp): nothing would outlive the connection; nothing was changed; name the schema with --schema, or fix the search_path"
                ),
            ),
            Error::ReadOnly { reason } => (
                Exit::ReadOnly,
                format!("{reason}; nothing was changed"),
            ),
            Error::StepFailed(f) => {
                let verb = match f.direction {
                    engine::Direction::Up => "applying",
                    engine::Direction::Down => "rolling back",
                };
                let done = f.report.done.len();
                let before = match done {
                    0 => String::new(),
                    1 => "the migration before it completed and stays; ".to_owned(),
                    n => format!("the {n} migrations before it completed and stay; "),
                };
                let described = crate::dberror::describe(&f.error);
                // A missing privilege has its own code, whichever command met it.
                let exit = match described.exit {
                    Exit::PermissionDenied | Exit::ReadOnly => described.exit,
                    _ => Exit::MigrationFailed,
                };
                let cause = described.message;
                let state = if f.rolled_back {
                    format!("it was rolled back: {before}{}", position_for(self, &f.report))
                } else if is_statement_timeout(
                    &f.error,
                    self.config.statement_timeout.value.is_some(),
                ) {
                    // Repeating the same limit would cancel the same statement again.
                    format!(
                        "it runs outside a transaction, so it may be partly done; it is marked half-done and `{}` finishes it without the statement timeout that cancelled it: {before}{}",
                        self.hint(&self.without_statement_timeout()),
                        position_for(self, &f.report)
                    )
                } else {
                    format!(
                        "it runs outside a transaction, so it may be partly done; it is marked half-done and the next `{}` finishes it once the cause is fixed: {before}{}",
                        self.hint(&self.invoked()),
                        position_for(self, &f.report)
                    )
                };
                (
                    exit,
                    format!("{verb} {} failed: {cause}; {state}", describe(f.step)),
                )
            }
            Error::DdlLockTimeout(f) => {
                let by = if f.blockers.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; blocked by {}",
                        f.blockers
                            .iter()
                            .map(|b| b.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                };
                let left = if f.rolled_back {
                    "it changed nothing".to_owned()
                } else {
                    format!(
                        "it is marked half-done and the next `{}` finishes it",
                        self.hint(&self.invoked())
                    )
                };
                (
                    Exit::DdlLockTimeout,
                    format!(
                        "{} could not get its table locks within {}s in {}{by}; {left}; {}; end the blocking session or retry later (--ddl-lock-timeout, --ddl-retries)",
                        describe(f.step),
                        f.timeout.as_secs_f64(),
                        crate::output::count(f.attempts, "attempt", "attempts"),
                        position_for(self, &f.report)
                    ),
                )
            }
            Error::Interrupted(r) => {
                let exit = self.interrupt.requested().unwrap_or(Exit::Interrupted);
                let by = match self.interrupt.requested() {
                    Some(Exit::Terminated) => "terminated by SIGTERM",
                    Some(_) => "interrupted by SIGINT",
                    None => "interrupted",
                };
                // A run that only finished a half-done step planned nothing else: "0 of 0"
                // would hide what it did.
                let mut after = Vec::new();
                if let Some(d) = &r.resumed {
                    after.push(format!(
                        "finishing the half-done {} ({})",
                        describe(d.step),
                        verb(d.direction).1
                    ));
                }
                if r.resumed.is_none() || !r.planned.is_empty() {
                    after.push(format!(
                        "{} of {}",
                        r.done.len(),
                        crate::output::count(r.planned.len(), "migration", "migrations")
                    ));
                }
                (
                    exit,
                    format!(
                        "{by} after {}; {}",
                        after.join(" and "),
                        position_for(self, &r)
                    ),
                )
            }
            Error::LockFile { file, error } => (
                Exit::Failure,
                format!(
                    "cannot open the lock file {} beside the database: {error}; check that its directory is writable",
                    file.display()
                ),
            ),
            Error::Db(e) => {
                let d = crate::dberror::describe(&e);
                (d.exit, d.message)
            }
        }
    }

    fn target_wording(&self, t: TargetError) -> String {
        match t {
            TargetError::Unknown { target, app, short } => format!(
                "unknown target '{}' for {app}: not a migration name or Alembic revision{}; see `{}` for the names",
                crate::output::escape_controls(&target),
                if short { " (a prefix needs at least 4 characters)" } else { "" },
                self.hint("history")
            ),
            TargetError::Ambiguous { target, candidates } => format!(
                "ambiguous target '{}': it matches {}; give more characters",
                crate::output::escape_controls(&target),
                candidates.join(", ")
            ),
            TargetError::OutOfRange {
                target,
                position,
                total,
            } => format!(
                "target '{target}' is out of range: the database is at migration {position} of {total}"
            ),
            TargetError::WrongDirection { target, command } => format!(
                "target '{}' is in the other direction: use `{}`",
                crate::output::escape_controls(&target),
                self.hint(&format!("{command} {}", crate::output::escape_controls(&target)))
            ),
        }
    }
}

fn e_display(e: &Error) -> String {
    e.to_string()
}

fn names(steps: &[&'static StepInfo]) -> String {
    steps.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

fn risk_list(risk: &[TableRows]) -> String {
    risk.iter()
        .map(|r| {
            format!(
                "{} ({})",
                r.table,
                crate::output::count(r.rows, "row", "rows")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the database is after a run, as it was read back (hints name the database as the
/// command did).
pub fn position_for(ctx: &Ctx, r: &Report) -> String {
    if !r.to_known {
        return format!(
            "its position could not be read back (the connection was lost): see `{}`",
            ctx.hint("status")
        );
    }
    known_position(r)
}

fn known_position(r: &Report) -> String {
    let at =
        r.to.and_then(|n| r.app.steps().into_iter().find(|s| s.name == n))
            .map(describe)
            .unwrap_or_else(|| "base".into());
    format!("the database is at {at}")
}

impl Ctx {
    /// The command to repeat in hints: the one typed, or the single-database command a
    /// fleet target stands for.
    fn invoked(&self) -> String {
        self.invocation.clone().unwrap_or_else(invoked)
    }

    /// [`Ctx::invoked`] without `--statement-timeout`; when the limit came from the
    /// environment or a file, the longest one overrides it instead.
    fn without_statement_timeout(&self) -> String {
        let mut out = vec![match &self.invocation {
            Some(given) => given.clone(),
            None => invoked_without(&["--statement-timeout"]),
        }];
        let from_elsewhere = self.config.statement_timeout.value.is_some()
            && self.config.statement_timeout.source != crate::config::Source::Flag;
        if from_elsewhere {
            out.push(format!(
                "--statement-timeout {}",
                crate::config::MAX_SECONDS
            ));
        }
        out.join(" ")
    }
}

/// A statement cancelled by the statement timeout (`--statement-timeout`): PostgreSQL's
/// query_canceled for that reason, MariaDB's max_statement_time error.
fn is_statement_timeout(e: &sea_orm::DbErr, limited: bool) -> bool {
    match engine::db_code(e).as_deref() {
        Some("57014") => e.to_string().contains("statement timeout"),
        // MariaDB reports the limit as error 1969 the first time and often as 1317 "Query
        // execution was interrupted" afterwards: under a limit, both are the limit.
        Some("70100") => limited || e.to_string().contains("max_statement_time"),
        _ => false,
    }
}

/// The subcommand and its arguments as typed (for hints that repeat it), global options
/// and --yes removed.
fn invoked() -> String {
    invoked_without(&[])
}

/// [`invoked`] with `drop`, options that take a value, left out as well.
fn invoked_without(drop: &[&str]) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = Vec::new();
    let mut skip = false;
    let mut globals_with_value = vec![
        "--database-url",
        "--app",
        "--schema",
        "--config",
        "--lock-timeout",
        "--wait-timeout",
    ];
    globals_with_value.extend_from_slice(drop);
    for a in &args {
        if skip {
            skip = false;
            continue;
        }
        if globals_with_value.contains(&a.as_str()) {
            skip = true;
            continue;
        }
        if globals_with_value
            .iter()
            .any(|g| a.starts_with(&format!("{g}=")))
            || matches!(
                a.as_str(),
                "--json" | "--wait" | "-q" | "--quiet" | "--yes" | "-y"
            )
            || a.starts_with("-v")
        {
            continue;
        }
        out.push(shell_word(a));
    }
    out.join(" ")
}

/// A word as a shell needs it quoted.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+@%,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Renders engine events on stderr as they happen, stops between steps when a signal asks,
/// and asks before data is dropped. A line when each step starts and ends, always; with
/// `--progress auto` on a terminal, a live spinner (or, for PostgreSQL index builds, a bar
/// with the build's phase) while a step runs; with `--progress json`, one JSON object per
/// event instead of the lines.
pub struct Renderer<'a> {
    ctx: &'a Ctx,
    /// The review's work, started from the plan ahead of time (see `planned_ahead`).
    ahead: Option<std::thread::JoinHandle<Option<PreparedReview>>>,
    /// The Alembic revision this run adopted, if it did.
    adopted: Option<String>,
    /// The review's warnings, for the run's report (`--json` carries them).
    lint_warnings: Vec<String>,
    live: bool,
    bar: Option<indicatif::ProgressBar>,
    /// Held from the run's first step on (see `interrupt`).
    graceful: Option<crate::interrupt::GracefulSection>,
    /// Refuse a plan with lint errors (`upgrade --strict`) instead of only warning.
    pub strict: bool,
}

impl<'a> Renderer<'a> {
    pub fn new(ctx: &'a Ctx) -> Renderer<'a> {
        use std::io::IsTerminal;
        let live = ctx.progress == crate::args::ProgressMode::Auto
            && !ctx.out.quiet
            && std::io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Renderer {
            ctx,
            ahead: None,
            adopted: None,
            lint_warnings: Vec::new(),
            live,
            bar: None,
            graceful: None,
            strict: false,
        }
    }

    /// A line on stderr that does not tear a live bar.
    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| self.ctx.out.info(line)),
            None => self.ctx.out.info(line),
        }
    }

    fn start_bar(&mut self, message: String) {
        if !self.live {
            return;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(crate::output::redact(&message));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        self.bar = Some(bar);
    }

    fn stop_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Renderer<'_> {
    fn drop(&mut self) {
        self.stop_bar();
    }
}

/// One event as a JSON line (`--progress json`), with the time it happened.
fn json_line(e: &Event<'_>) -> String {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "at".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
    }
    crate::output::redact(&v.to_string())
}

fn verb(d: engine::Direction) -> (&'static str, &'static str) {
    match d {
        engine::Direction::Up => ("applying", "applied"),
        engine::Direction::Down => ("rolling back", "rolled back"),
    }
}

/// What a review is of: the plan's steps, its direction and the backend.
#[derive(Clone, PartialEq, Eq)]
struct ReviewKey {
    steps: Vec<&'static StepInfo>,
    direction: engine::Direction,
    backend: DbBackend,
}

impl ReviewKey {
    fn of(plan: &engine::Plan, backend: DbBackend) -> ReviewKey {
        ReviewKey {
            steps: plan.steps.clone(),
            direction: plan.direction,
            backend,
        }
    }
}

/// The part of a review that needs no database: the steps' statements rendered offline,
/// the existing tables whose sizes the rules need, and, when they need none, the findings.
struct PreparedReview {
    key: ReviewKey,
    steps: Vec<crate::service::lint::Step>,
    tables: std::collections::BTreeSet<String>,
    findings: Option<Vec<crate::service::lint::Finding>>,
}

async fn prepare_review(app: migration::App, key: ReviewKey) -> PreparedReview {
    use crate::service::lint;
    let backend = key.backend;
    let objects = app.objects();
    let mut steps = Vec::new();
    for info in &key.steps {
        let Some(obj) = objects.iter().find(|o| o.info().name == info.name) else {
            continue;
        };
        let Ok(statements) =
            migration::engine::offline::capture_step(obj.as_ref(), backend, key.direction).await
        else {
            continue;
        };
        steps.push(lint::Step {
            name: info.name.to_owned(),
            transactional: migration::engine::in_transaction_on(obj.as_ref(), backend),
            statements,
        });
    }
    let tables = lint::tables_to_size(&lint::step_inputs(&steps), backend);
    let findings = tables
        .is_empty()
        .then(|| lint::lint_steps(&steps, backend, &lint::Sizes::offline()));
    PreparedReview {
        key,
        steps,
        tables,
        findings,
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl Hooks for Renderer<'_> {
    fn event(&mut self, e: &Event<'_>) {
        if let Event::Adopted { adoption } = e {
            self.adopted = Some(adoption.revision.clone());
        }
        match e {
            Event::StepStarted {
                step,
                direction,
                transactional,
                ..
            } => {
                // From the first step on, a first signal stops between steps; before it
                // (waiting for the lock, reading state) nothing has changed and it aborts.
                if self.graceful.is_none() {
                    self.graceful = Some(self.ctx.interrupt.graceful_section());
                }
                self.ctx
                    .interrupt
                    .step_started(step, *direction, *transactional)
            }
            Event::Resuming { .. } if self.graceful.is_none() => {
                self.graceful = Some(self.ctx.interrupt.graceful_section());
            }
            Event::StepFinished { done } => self.ctx.interrupt.step_finished(done),
            _ => {}
        }
        if self.ctx.progress == crate::args::ProgressMode::Json {
            if !self.ctx.out.quiet {
                crate::output::write_stderr_line(&json_line(e));
            }
            return;
        }
        let out = &self.ctx.out;
        match e {
            Event::WaitingForLock { holder, timeout_ms } => out.info(&format!(
                "waiting up to {}s for the migration lock held by {holder}",
                timeout_ms / 1000
            )),
            Event::SchemaCreated { schema } => out.info(&format!("created schema {schema}")),
            Event::Adopted { adoption } => out.info(&format!(
                "adopted Alembic-managed database: alembic_version is at {}, recorded {} as applied (alembic_version is left as it was)",
                adoption.revision,
                adoption.migrations.join(", ")
            )),
            Event::Backfilled { migrations } => out.info(&format!(
                "recorded the checksums of {} applied before dbtool kept checksums",
                crate::output::count(migrations.len(), "migration", "migrations")
            )),
            Event::Resuming { step, direction } => out.info(&format!(
                "finishing {} ({}), left half-done by an earlier run that failed or was interrupted",
                describe(step),
                verb(*direction).0
            )),
            Event::StepStarted {
                step,
                direction,
                tables,
                ..
            } => {
                let on = if tables.is_empty() {
                    String::new()
                } else {
                    format!(
                        " on {}",
                        tables
                            .iter()
                            .map(|t| match t.rows {
                                Some(r) => format!("{} (~{})", t.table, crate::output::count(r, "row", "rows")),
                                None => t.table.clone(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let line = format!("{} {}{on} ...", verb(*direction).0, describe(step));
                out.info(&line);
                self.start_bar(format!("{} {}", verb(*direction).0, step.name));
            }
            Event::StepFinished { done } => {
                self.stop_bar();
                out.info(&format!(
                    "{} {} in {:.1} ms",
                    verb(done.direction).1,
                    describe(done.step),
                    done.elapsed.as_secs_f64() * 1000.0
                ))
            }
            Event::Retrying {
                step,
                attempt,
                of,
                wait_ms,
                blockers,
            } => {
                let by = if blockers.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (blocked by {})",
                        blockers
                            .iter()
                            .map(|b| b.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                };
                out.info(&format!(
                    "{} timed out waiting for a table lock{by}; retrying in {}s (attempt {attempt} of {of})",
                    step.name,
                    *wait_ms as f64 / 1000.0
                ))
            }
            Event::Blocked { step, blockers, .. } => self.say(&format!(
                "{} is waiting for {}",
                step.name,
                blockers
                    .iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            Event::Progress {
                step,
                phase,
                done,
                total,
            } => {
                if let Some(bar) = &self.bar {
                    if *total > 0 {
                        if bar.length().is_none() {
                            bar.set_style(
                                indicatif::ProgressStyle::with_template(
                                    "{msg} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})",
                                )
                                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                            );
                        }
                        bar.set_length(*total as u64);
                        bar.set_position(*done as u64);
                    }
                    bar.set_message(format!("{}: {phase}", step.name));
                }
            }
            Event::Warning { message } => match &self.bar {
                Some(bar) => bar.suspend(|| out.warn(message)),
                None => out.warn(message),
            },
        }
    }

    fn should_stop(&self) -> bool {
        self.ctx.interrupt.requested().is_some()
    }

    /// Renders and parses the plan's statements on a thread of its own while the engine
    /// makes the record's tables (a commit to wait for); `review` takes the result when
    /// the final plan is the same, and does the work itself otherwise.
    fn planned_ahead(
        &mut self,
        app: migration::App,
        plan: &migration::engine::Plan,
        backend: DbBackend,
    ) {
        let key = ReviewKey::of(plan, backend);
        self.ahead = std::thread::Builder::new()
            .name("dbtool-review".into())
            .spawn(move || {
                // As the main runtime: a migration may use tokio's timers even offline.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                Some(rt.block_on(prepare_review(app, key)))
            })
            .ok();
    }

    /// Lints what the run is about to do with the live table sizes (what `dbtool lint`
    /// reports): warns about every finding; with `--strict` refuses on errors.
    async fn review(
        &mut self,
        app: migration::App,
        plan: &migration::engine::Plan,
        db: &DatabaseConnection,
    ) -> Result<(), String> {
        use crate::service::lint;
        let from = plan.from.checked_sub(1).map(|i| app.steps()[i].name);
        self.ctx
            .interrupt
            .planned(app, plan.direction, from, &plan.steps);
        let backend = db.get_database_backend();
        let key = ReviewKey::of(plan, backend);
        let ahead = self.ahead.take().and_then(|h| h.join().ok().flatten());
        let prepared = match ahead {
            Some(p) if p.key == key => p,
            _ => prepare_review(app, key).await,
        };
        let mut findings = match prepared.findings {
            Some(f) => f,
            None => {
                let large = lint::DEFAULT_LARGE_TABLE;
                let sizes =
                    lint::sizes::table_sizes(db, &prepared.tables, large, large.saturating_mul(10))
                        .await
                        .unwrap_or_else(|_| lint::Sizes::offline());
                lint::lint_steps(&prepared.steps, backend, &sizes)
            }
        };
        // A downgrade drops what its upgrade created by design; dropping tables that hold
        // rows is what the data-loss confirmation is for.
        if plan.direction == migration::engine::Direction::Down {
            findings.retain(|f| !matches!(f.rule, "ban-drop-table" | "ban-drop-column"));
        }
        let errors = findings
            .iter()
            .filter(|f| f.severity == lint::Severity::Error)
            .count();
        for f in findings
            .iter()
            .filter(|f| f.severity >= lint::Severity::Warning)
        {
            let on = f
                .table
                .as_deref()
                .map(|t| format!(" on {t}"))
                .unwrap_or_default();
            let w = format!(
                "lint {} ({}){on}: {}; instead: {}",
                f.rule,
                f.severity.as_str(),
                f.why,
                f.instead
            );
            self.say(&format!("warning: {w}"));
            self.lint_warnings.push(w);
        }
        if self.strict && errors > 0 {
            // An Alembic database is adopted (its record written) before the plan is final.
            let changed = match &self.adopted {
                Some(revision) => format!(
                    "no migration was run (the adoption of Alembic revision {revision} was recorded)"
                ),
                None => "nothing was changed".to_owned(),
            };
            return Err(format!(
                "{} at error level (see `{}`); {changed}; run without --strict to apply it anyway",
                crate::output::count(errors, "lint finding", "lint findings"),
                self.ctx.hint("lint")
            ));
        }
        Ok(())
    }

    async fn confirm_repair(&mut self, plan: &migration::engine::RepairPlan) -> bool {
        if !crate::prompt::interactive() {
            return false;
        }
        for line in crate::commands::repair::confirmation(plan) {
            self.ctx.out.info(&line);
        }
        crate::prompt::confirm("Change the record as above?")
            .await
            .unwrap_or(false)
    }

    async fn confirm_data_loss(&mut self, risk: &[TableRows]) -> bool {
        let question = format!(
            "This downgrade drops tables that hold data: {}. Continue?",
            risk_list(risk)
        );
        crate::prompt::interactive() && crate::prompt::confirm(&question).await.unwrap_or(false)
    }
}

/// Runs `cmd` through the engine with the CLI's renderer; the first signal stops between
/// steps. `strict`: refuse a plan with lint errors.
pub async fn run(
    ctx: &Ctx,
    db: &DatabaseConnection,
    opts: Options,
    cmd: &Command,
    strict: bool,
) -> anyhow::Result<Report> {
    let engine = ctx.engine(db, opts).await?;
    let mut renderer = Renderer::new(ctx);
    renderer.strict = strict;
    // Shown as they came (stderr); the report keeps them for `--json` as well, a failed
    // run's too.
    match engine.run(cmd, &mut renderer).await {
        Ok(mut report) => {
            report.warnings.append(&mut renderer.lint_warnings);
            Ok(report)
        }
        Err(mut e) => {
            if let Some(report) = e.report_mut() {
                report.warnings.append(&mut renderer.lint_warnings);
            }
            Err(ctx.fail(e))
        }
    }
}
