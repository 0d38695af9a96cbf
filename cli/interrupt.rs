//! SIGINT/SIGTERM: the first signal during a migration run asks the run to stop before the
//! next migration; any other signal (or a second one) drops the running command at once,
//! which closes its connection, so the server rolls back and releases the lock.

use crate::exit::Exit;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Interrupt {
    /// How many graceful sections are open: while any is (a fleet runs several targets at
    /// once), stopping between steps is better than stopping at once.
    graceful: AtomicUsize,
    /// The signal that asked for a stop (0 = none).
    requested: AtomicU8,
    /// The running step cannot roll back (the server keeps working if the connection drops).
    outside_transaction: AtomicBool,
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

    /// Whether the step now running rolls back when the connection drops.
    pub fn set_step_transactional(&self, transactional: bool) {
        self.outside_transaction
            .store(!transactional, Ordering::SeqCst);
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
        announce("stopping after the current migration; send the signal again to abort now (its transaction is rolled back)");
    }
}
