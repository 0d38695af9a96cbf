//! Running server programs the way they insist on: as the `postgres` user (initdb, pg_ctl
//! and pgbouncer refuse root), in a temporary directory that user owns, on a free port.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The PostgreSQL 15 server binaries (initdb, pg_ctl, pg_basebackup).
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A temporary directory owned by `postgres`, removed on drop.
pub fn postgres_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir");
    chown_postgres(dir.path());
    dir
}

/// Hands a file or directory to the `postgres` user.
pub fn chown_postgres(path: &Path) {
    let ok = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(path)
        .status()
        .expect("chown")
        .success();
    assert!(ok, "chown postgres {}", path.display());
}

/// Writes a file and hands it to `postgres`.
pub fn write_postgres_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    chown_postgres(path);
}

/// A TCP port nobody listens on right now (the caller retries if it is taken in between).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Runs `program ARGS` as `postgres`; panics with its output unless it succeeds.
#[track_caller]
pub fn run_as_postgres(program: &str, args: &[&str]) -> Output {
    let out = try_as_postgres(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `program ARGS` as `postgres` and returns what happened.
pub fn try_as_postgres(program: &str, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--", program])
        .args(args)
        .current_dir("/")
        .output()
        .unwrap_or_else(|e| panic!("runuser -u postgres {program}: {e}"))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_ok()
}

/// Polls `ready` every 20 ms for up to `limit`.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ready()
}

/// Whether process `pid` still exists.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
