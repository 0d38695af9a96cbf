//! The migration engine: everything that reads or changes a schema's migration state goes
//! through here (the `dbtool` CLI and applications that migrate at start-up alike).

pub mod app;
pub mod catalog;
pub mod lock;
pub mod offline;
pub mod schema;
pub mod state;
pub mod target;
