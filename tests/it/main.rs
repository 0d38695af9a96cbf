//! Integration tests: real PostgreSQL, SQLite files and MariaDB, and the real `dbtool` binary.
mod common;
