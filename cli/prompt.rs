//! Questions to a person at a terminal. Never asks when stdin is not a terminal.

use anyhow::{Context, Result};
use std::io::IsTerminal;

/// True when a person can answer: stdin and stderr are terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks on stderr and reads one line from stdin without blocking the runtime (so Ctrl-C
/// still works while waiting). True only for "y" or "yes".
pub async fn confirm(question: &str) -> Result<bool> {
    crate::output::ask(&format!("{question} [y/N] "));
    let line = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).map(|_| s)
    })
    .await
    .context("reading the answer")?
    .context("reading the answer")?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
