//! PostgreSQL login roles made by a test (a user without some right), and `psql` as the
//! superuser to make and drop them: roles belong to the whole server, so each one is dropped
//! with what it owns and was granted, even when the test fails.

use super::TestDb;
use std::process::Command;

/// Runs `sql` with `psql` as `postgres` in `database`; panics unless it succeeds. Returns
/// what it printed (unaligned, tuples only).
pub fn psql_in(database: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-qAtX", "-d", database])
        .args(["-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A role that lives as long as the value; its grants live in `db`.
pub struct PgRole {
    pub name: String,
    db: String,
}

impl PgRole {
    /// `CREATE ROLE name LOGIN attributes` (replacing a leftover of the same name).
    pub fn create(db: &TestDb, name: &str, attributes: &str) -> PgRole {
        psql_in("postgres", &format!("DROP ROLE IF EXISTS {name}"));
        psql_in(
            "postgres",
            &format!("CREATE ROLE {name} LOGIN {attributes}"),
        );
        PgRole {
            name: name.to_owned(),
            db: db.name.clone(),
        }
    }
}

impl Drop for PgRole {
    fn drop(&mut self) {
        // Not psql_in: a failed drop must not turn into a second panic during unwinding.
        let run = |database: &str, sql: String| {
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-qAtX", "-d", database])
                .args(["-c", &sql])
                .output();
        };
        run(&self.db, format!("DROP OWNED BY {}", self.name));
        run("postgres", format!("DROP ROLE IF EXISTS {}", self.name));
    }
}
