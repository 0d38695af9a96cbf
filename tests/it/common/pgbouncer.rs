//! A real PgBouncer (Debian's `pgbouncer`, installed by `tests/run`) in front of the test
//! PostgreSQL, in session or transaction pooling mode: its own directory and free port per
//! instance, run as `postgres`, stopped by its pid when dropped. It passes every database
//! through (`* = host=… port=5432`), so `url_for` turns any test database's URL into the
//! pooler's. `extra_float_digits` and `search_path` are not in `ignore_startup_parameters`:
//! dbtool must connect without them, as it must to a PgBouncer configured by default.

use super::as_postgres::{
    alive, free_port, postgres_dir, try_as_postgres, wait_until, write_postgres_file,
};
use super::TestDb;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
}

impl PoolMode {
    fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        }
    }
}

pub struct PgBouncer {
    pub port: u16,
    pub mode: PoolMode,
    pid: u32,
    dir: tempfile::TempDir,
}

impl PgBouncer {
    /// Starts a PgBouncer in `mode` with PgBouncer's default pool size (20 server connections
    /// per database and user).
    pub fn start(mode: PoolMode) -> PgBouncer {
        PgBouncer::with_pool_size(mode, 20)
    }

    /// Starts a PgBouncer in `mode` with at most `pool_size` server connections per database
    /// and user (retrying on another port if one was taken meanwhile).
    pub fn with_pool_size(mode: PoolMode, pool_size: u32) -> PgBouncer {
        let dir = postgres_dir("dbtool-pgbouncer-");
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let path = |name: &str| dir.path().join(name);
            write_postgres_file(&path("users.txt"), "\"postgres\" \"\"\n");
            let ini = format!(
                "[databases]\n\
                 * = host=127.0.0.1 port=5432\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {users}\n\
                 pool_mode = {mode}\n\
                 default_pool_size = {pool_size}\n\
                 pidfile = {pid}\n\
                 logfile = {log}\n",
                users = path("users.txt").display(),
                mode = mode.as_str(),
                pid = path("pgbouncer.pid").display(),
                log = path("pgbouncer.log").display(),
            );
            write_postgres_file(&path("pgbouncer.ini"), &ini);
            let _ = std::fs::remove_file(path("pgbouncer.pid"));
            let out = try_as_postgres(
                program(),
                &["-d", "-q", path("pgbouncer.ini").to_str().unwrap()],
            );
            assert!(
                out.status.success(),
                "pgbouncer did not start (is the pgbouncer package installed? tests/run installs it): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The pid file appears once PgBouncer listens; a taken port ends it with FATAL.
            let started = wait_until(Duration::from_secs(10), || {
                pid_in(&path("pgbouncer.pid")).is_some()
                    || log_of(&path("pgbouncer.log")).contains("FATAL")
            });
            if let (true, Some(pid)) = (started, pid_in(&path("pgbouncer.pid"))) {
                return PgBouncer {
                    port,
                    mode,
                    pid,
                    dir,
                };
            }
            last_log = log_of(&path("pgbouncer.log"));
        }
        panic!("PgBouncer would not start; its log:\n{last_log}");
    }

    /// `db`'s URL through this pooler (same user and database).
    pub fn url_for(&self, db: &TestDb) -> String {
        db.url.replacen(":5432/", &format!(":{}/", self.port), 1)
    }

    /// PgBouncer's log so far, for assertion messages.
    pub fn log(&self) -> String {
        log_of(&self.dir.path().join("pgbouncer.log"))
    }

    /// Runs one statement through the pooler with `psql`, returning its unaligned output.
    pub fn psql(&self, db: &TestDb, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(self.url_for(db))
            .args(["-qAtX", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql through PgBouncer: {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if !wait_until(Duration::from_secs(5), || !alive(self.pid)) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}

/// Debian puts it in /usr/sbin, which a non-root PATH may lack.
fn program() -> &'static str {
    if std::path::Path::new("/usr/sbin/pgbouncer").exists() {
        "/usr/sbin/pgbouncer"
    } else {
        "pgbouncer"
    }
}

fn pid_in(path: &PathBuf) -> Option<u32> {
    let pid = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

fn log_of(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
