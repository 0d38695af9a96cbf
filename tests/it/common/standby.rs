//! A hot standby made in the test: a primary of its own (initdb in a temporary directory, on a
//! free port) and a `pg_basebackup -R` copy of it running as a streaming standby (another free
//! port), both as `postgres`, stopped with `pg_ctl stop -m fast` when dropped. The machine's
//! own PostgreSQL is not touched (it allows no replication connections anyway).

use super::as_postgres::{
    free_port, postgres_dir, run_as_postgres, try_as_postgres, wait_until, PG_BIN,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct StandbyPair {
    pub primary_port: u16,
    pub standby_port: u16,
    dir: tempfile::TempDir,
    /// Data directories that were started, stopped in reverse order on drop.
    running: Vec<PathBuf>,
}

/// Small and quick: no fsync anywhere (a test cluster), little memory.
const SERVER_OPTS: &str =
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=30";

fn bin(name: &str) -> String {
    format!("{PG_BIN}/{name}")
}

impl StandbyPair {
    /// Starts the primary, clones it into a standby and starts that; returns once the standby
    /// accepts read-only connections.
    pub fn start() -> StandbyPair {
        let dir = postgres_dir("dbtool-standby-");
        let mut pair = StandbyPair {
            primary_port: 0,
            standby_port: 0,
            dir,
            running: Vec::new(),
        };
        let primary = pair.dir.path().join("primary");
        let standby = pair.dir.path().join("standby");
        run_as_postgres(
            &bin("initdb"),
            &[
                "-D",
                primary.to_str().unwrap(),
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
                "-E",
                "UTF8",
            ],
        );
        let hba = primary.join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        text.push_str("host replication all 127.0.0.1/32 trust\n");
        std::fs::write(&hba, text).expect("write pg_hba.conf");
        pair.primary_port = pair.start_server(&primary);
        run_as_postgres(
            &bin("pg_basebackup"),
            &[
                "-D",
                standby.to_str().unwrap(),
                "-R",
                "-h",
                "127.0.0.1",
                "-p",
                &pair.primary_port.to_string(),
                "-U",
                "postgres",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        pair.standby_port = pair.start_server(&standby);
        let ready = wait_until(Duration::from_secs(30), || {
            pair.psql_at(pair.standby_port, "postgres", "SELECT pg_is_in_recovery()")
                .is_ok_and(|v| v == "t")
        });
        assert!(ready, "the standby did not come up in recovery");
        pair
    }

    /// Starts the server in `data` on a free port (another one if that was taken meanwhile).
    fn start_server(&mut self, data: &Path) -> u16 {
        let sockets = self.dir.path().to_str().unwrap().to_owned();
        let log = data.with_extension("log");
        for _ in 0..5 {
            let port = free_port();
            let opts = format!("-p {port} -k {sockets} {SERVER_OPTS}");
            let out = try_as_postgres(
                &bin("pg_ctl"),
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &opts,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            if out.status.success() {
                self.running.push(data.to_path_buf());
                return port;
            }
        }
        panic!(
            "cannot start the server in {}: {}",
            data.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn primary_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.primary_port)
    }

    pub fn standby_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.standby_port)
    }

    /// Runs SQL on the primary; panics unless it succeeds.
    pub fn primary_sql(&self, db: &str, sql: &str) -> String {
        self.psql_at(self.primary_port, db, sql)
            .unwrap_or_else(|e| panic!("on the primary: {sql}: {e}"))
    }

    /// Runs SQL on the standby.
    pub fn standby_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        self.psql_at(self.standby_port, db, sql)
    }

    fn psql_at(&self, port: u16, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", db, "-qAtX", "-c", sql])
            .output()
            .expect("psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Waits until the standby has replayed everything the primary has written so far.
    /// The insert position, not `pg_current_wal_lsn()` (the write position): with
    /// `synchronous_commit=off` a commit's record may not be written out yet.
    pub fn wait_for_replay(&self) {
        let target = self.primary_sql("postgres", "SELECT pg_current_wal_insert_lsn()");
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn");
        let caught_up = wait_until(Duration::from_secs(30), || {
            self.standby_sql("postgres", &sql).is_ok_and(|v| v == "t")
        });
        assert!(caught_up, "the standby did not replay up to {target}");
    }
}

impl Drop for StandbyPair {
    fn drop(&mut self) {
        for data in self.running.iter().rev() {
            let _ = try_as_postgres(
                &bin("pg_ctl"),
                &["-D", data.to_str().unwrap(), "stop", "-m", "fast", "-w"],
            );
        }
    }
}
