//! Database logic. Services take a connection, return data and never print.

pub mod catalog;
pub mod lock;
pub mod migrations;
