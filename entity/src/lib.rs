//! SeaORM models of the tables the migrations create, one module per table, grouped by
//! application. The migrations never use these (a migration must keep meaning what it meant
//! when it shipped); the CLI and the tests do.

/// Avatar Data Generator: login accounts and the key/value settings store.
pub mod avatar {
    pub mod setting;
    pub mod user;
}

/// NeuraChar: accounts, email login codes, characters, chats and their messages.
pub mod neurachar {
    pub mod character;
    pub mod chat;
    pub mod email_login_code;
    pub mod message;
    pub mod user;
}
