//! Database logic. Services take a connection, return data and never print.

pub mod autogen;
pub mod docs;
pub mod fleet;
pub mod lint;
pub mod neurachar;
pub mod settings;
pub mod users;
