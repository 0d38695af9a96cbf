//! Integration tests: real PostgreSQL, SQLite files and MariaDB, and the real `dbtool` binary.
mod admin_neurachar;
mod admin_settings;
mod admin_users;
mod check;
mod common;
mod config;
mod docs;
mod hygiene;
mod indexes;
mod migrate;
mod pooler;
mod safety;
mod schema;
mod shell;
mod sql;
mod standby;
