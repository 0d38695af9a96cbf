//! SIGINT/SIGTERM: the first signal during a migration run's steps asks the run to stop
//! before the next migration; any other signal (or a second one, or one while the run still
//! waits for the lock) drops the running command at once, which closes its connection, so
//! the server rolls back and releases the lock. What the run had done by then is traced
//! here, so that the abort still reports it.

use crate::exit::Exit;
use migration::engine::{Direction, StepDone};
use migration::StepInfo;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a migration run had done, as its events said: steps are reported done only once
/// committed, so after an abort the database is at the last of them (unless the running
/// step could not roll back).
#[derive(Debug, Default)]
struct Trace {
    app: Option<migration::App>,
    direction: Option<Direction>,
    from: Option<&'static str>,
    planned: Vec<&'static str>,
    done: Vec<StepDone>,
    running: Option<(&'static StepInfo, Direction, bool)>,
}

impl Trace {
    /// The last applied migration once the committed steps are counted (None: base).
    fn position(&self) -> Option<&'static str> {
        match self.done.last() {
            None => self.from,
            Some(d) if d.direction == Direction::Up => Some(d.step.name),
            Some(d) => {
                let steps = self.app?.steps();
                let k = steps.iter().position(|s| s.name == d.step.name)?;
                k.checked_sub(1).map(|k| steps[k].name)
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Interrupt {
    /// How many graceful sections are open: while any is (a fleet runs several targets at
    /// once), stopping between steps is better than stopping at once.
    graceful: AtomicUsize,
    /// The signal that asked for a stop (0 = none).
    requested: AtomicU8,
    /// The running step cannot roll back (the server keeps working if the connection drops).
    outside_transaction: AtomicBool,
    /// The migration run in progress, if any.
    trace: Mutex<Option<Trace>>,
    /// Several runs at once (a fleet): none of them is "the" run an abort reports.
    untraced: AtomicBool,
}

impl Interrupt {
    pub fn new() -> Arc<Interrupt> {
        Arc::new(Interrupt::default())
    }

    /// Marks the section in which a first signal only asks for a stop between steps.
    pub fn graceful_section(self: &Arc<Self>) -> GracefulSection {
        self.graceful.fetch_add(1, Ordering::SeqCst);
        GracefulSection(self.clone())
    }

    /// The exit a pending stop request asks for, if any.
    pub fn requested(&self) -> Option<Exit> {
        match self.requested.load(Ordering::SeqCst) {
            0 => None,
            15 => Some(Exit::Terminated),
            _ => Some(Exit::Interrupted),
        }
    }

    /// Stops tracing runs: several run at once, and their reports are the caller's.
    pub fn untraced(&self) {
        self.untraced.store(true, Ordering::SeqCst);
        if let Ok(mut t) = self.trace.lock() {
            *t = None;
        }
    }

    fn with_trace(&self, f: impl FnOnce(&mut Trace)) {
        if self.untraced.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(mut t) = self.trace.lock() {
            f(t.get_or_insert_with(Trace::default))
        }
    }

    /// A run's plan is final: it is about to take these steps.
    pub fn planned(
        &self,
        app: migration::App,
        direction: Direction,
        from: Option<&'static str>,
        steps: &[&'static StepInfo],
    ) {
        self.with_trace(|t| {
            t.app = Some(app);
            t.direction = Some(direction);
            t.from = from;
            t.planned = steps.iter().map(|s| s.name).collect();
        });
    }

    /// A step starts; `transactional`: it rolls back when the connection drops.
    pub fn step_started(&self, step: &'static StepInfo, direction: Direction, transactional: bool) {
        self.outside_transaction
            .store(!transactional, Ordering::SeqCst);
        self.with_trace(|t| t.running = Some((step, direction, transactional)));
    }

    /// A step committed.
    pub fn step_finished(&self, done: &StepDone) {
        self.outside_transaction.store(false, Ordering::SeqCst);
        self.with_trace(|t| {
            t.running = None;
            t.done.push(done.clone());
        });
    }

    /// ` after 2 of 6 migrations (the database is at X)`, for the abort message; empty when
    /// no run had planned anything.
    pub fn trace_summary(&self) -> String {
        let Ok(t) = self.trace.lock() else {
            return String::new();
        };
        let Some(t) = t.as_ref().filter(|t| t.app.is_some()) else {
            return String::new();
        };
        let at = match (&t.running, t.position()) {
            (Some((step, _, false)), _) => format!("{} is half-done", step.name),
            (_, Some(name)) => format!("the database is at {name}"),
            (_, None) => "the database is at base".to_owned(),
        };
        format!(
            " after {} of {} ({at})",
            t.done.len(),
            crate::output::count(t.planned.len(), "migration", "migrations")
        )
    }

    /// The `report` (and `failed`, for the step that was running) of an aborted run, for its
    /// JSON error document; None when no run had planned anything.
    pub fn trace_details(&self) -> Option<serde_json::Value> {
        let t = self.trace.lock().ok()?;
        let t = t.as_ref().filter(|t| t.app.is_some())?;
        let app = t.app?;
        let to = t.position();
        let half_done = matches!(t.running, Some((_, _, false)));
        let mut details = serde_json::json!({
            "report": {
                "app": app,
                "direction": t.direction,
                "from": t.from,
                "to": to,
                "to_known": !half_done,
                "planned": t.planned,
                "done": t.done,
                "interrupted": true,
            }
        });
        if let Some((step, direction, transactional)) = t.running {
            details["failed"] = serde_json::json!({
                "step": step.name,
                "alias": step.alias,
                "direction": direction,
                "rolled_back": transactional,
                "resumable": !transactional,
                "error": "aborted by a signal",
            });
        }
        Some(details)
    }

    /// What aborting now does to the running step, for the abort message.
    pub fn abort_effect(&self) -> &'static str {
        if self.outside_transaction.load(Ordering::SeqCst) {
            "the running migration step cannot roll back and the server may still finish it; it is marked half-done and the next run completes it"
        } else {
            "its database connection was closed, so the server rolls back any unfinished migration and releases the lock"
        }
    }

    /// Records a signal; returns true when the command must be dropped now.
    pub fn on_signal(&self, signo: u8) -> bool {
        let first = self.requested.swap(signo, Ordering::SeqCst) == 0;
        !(first && self.graceful.load(Ordering::SeqCst) > 0)
    }
}

/// While alive, the first signal only asks the command to stop between steps.
pub struct GracefulSection(Arc<Interrupt>);

impl Drop for GracefulSection {
    fn drop(&mut self) {
        self.0.graceful.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves when a signal arrives that should abort the command immediately.
pub async fn abort_signal(state: Arc<Interrupt>, announce: impl Fn(&str)) -> Exit {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    loop {
        let signo = tokio::select! {
            _ = int.recv() => 2,
            _ = term.recv() => 15,
        };
        if state.on_signal(signo) {
            return if signo == 15 {
                Exit::Terminated
            } else {
                Exit::Interrupted
            };
        }
        announce(if state.outside_transaction.load(Ordering::SeqCst) {
            "stopping after the current migration; send the signal again to abort now (this step cannot roll back: it is left half-done and the next run finishes it)"
        } else {
            "stopping after the current migration; send the signal again to abort now (its transaction is rolled back)"
        });
    }
}
