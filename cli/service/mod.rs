//! Database logic. Services take a connection, return data and never print.

pub mod catalog;
pub mod docs;
pub mod lock;
pub mod migrations;
pub mod neurachar;
pub mod schema;
pub mod settings;
pub mod sql;
pub mod users;
