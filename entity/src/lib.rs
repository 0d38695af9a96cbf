//! SeaORM models of the tables the migrations create, one module per table, grouped by
//! application. The migrations never use these (a migration must keep meaning what it meant
//! when it shipped); the CLI and the tests do, and `dbtool new --autogenerate`
//! compares them (completed by [`schema`]) with what the migrations make.

pub mod schema;

/// Avatar Data Generator: login accounts and the key/value settings store.
pub mod avatar {
    pub mod setting;
    pub mod user;

    /// Every table of the app, in the order its migrations create them (`dbtool new
    /// --autogenerate` compares these with the migrations): register a new entity here.
    pub fn tables() -> Vec<crate::schema::TableDef> {
        use crate::schema::table;
        vec![
            table::<user::Entity>(user::INDEXES),
            table::<setting::Entity>(setting::INDEXES),
        ]
    }
}

/// NeuraChar: accounts, email login codes, characters, chats and their messages.
pub mod neurachar {
    pub mod character;
    pub mod chat;
    pub mod email_login_code;
    pub mod message;
    pub mod user;

    /// Every table of the app, in the order its migrations create them (`dbtool new
    /// --autogenerate` compares these with the migrations): register a new entity here.
    pub fn tables() -> Vec<crate::schema::TableDef> {
        use crate::schema::table;
        vec![
            table::<user::Entity>(user::INDEXES),
            table::<email_login_code::Entity>(email_login_code::INDEXES),
            table::<character::Entity>(character::INDEXES),
            table::<chat::Entity>(chat::INDEXES),
            table::<message::Entity>(message::INDEXES),
        ]
    }
}
