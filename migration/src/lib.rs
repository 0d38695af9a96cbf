//! The schema history of both applications as reversible sea-orm-migration steps.
//!
//! Each migration carries a static [`StepInfo`] (explicit name, Alembic alias, one-line
//! description, the tables it creates) so that the CLI never has to guess from file stems.

pub mod avatar;
#[doc(hidden)]
pub mod ddl;
pub mod engine;
#[cfg(feature = "fixtures")]
pub mod fixture;
pub mod neurachar;

pub use engine::app::App;
pub use engine::target::Target;
pub use sea_orm_migration;
use sea_orm_migration::prelude::*;

/// Static facts about one migration: the single source of its name, alias and description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StepInfo {
    /// The version recorded in `seaql_migrations`.
    pub name: &'static str,
    /// The Alembic revision id this migration mirrors, if any.
    pub alias: Option<&'static str>,
    /// One line saying what the migration does.
    pub description: &'static str,
    /// Tables that `up` creates and `down` drops, in creation order.
    #[serde(skip)]
    pub creates_tables: &'static [&'static str],
}

/// A migration that knows its own [`StepInfo`].
pub trait Step: MigrationTrait {
    fn info(&self) -> &'static StepInfo;
}

/// A migrator whose steps carry [`StepInfo`]; `migrations()` is derived from `steps()`.
pub trait AppMigrator: MigratorTrait {
    /// The application this migrator belongs to, as spelled on the command line.
    const APP: &'static str;
    fn steps() -> Vec<Box<dyn Step>>;
    fn infos() -> Vec<&'static StepInfo> {
        Self::steps().iter().map(|s| s.info()).collect()
    }
}

/// Implements `MigrationName` from a migration's `INFO` constant.
#[macro_export]
macro_rules! step_name {
    ($ty:ty, $info:expr) => {
        impl $crate::sea_orm_migration::MigrationName for $ty {
            fn name(&self) -> &str {
                $info.name
            }
        }
        impl $crate::Step for $ty {
            fn info(&self) -> &'static $crate::StepInfo {
                &$info
            }
        }
    };
}

/// `Box<dyn Step>` → `Box<dyn MigrationTrait>` for `MigratorTrait::migrations`.
pub fn upcast(steps: Vec<Box<dyn Step>>) -> Vec<Box<dyn MigrationTrait>> {
    steps
        .into_iter()
        .map(|s| s as Box<dyn MigrationTrait>)
        .collect()
}

/// Documentation of one table: what it holds and what each of its columns means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDoc {
    /// The application, as in [`AppMigrator::APP`].
    pub app: &'static str,
    pub table: &'static str,
    pub description: &'static str,
    /// `(column, description)` in the table's column order.
    pub columns: &'static [(&'static str, &'static str)],
}

/// Descriptions of every table and column of both applications, taken from the applications'
/// own schema documents. The single source for generated documentation.
pub static TABLE_DOCS: &[TableDoc] = &[
    TableDoc {
        app: "avatar",
        table: "users",
        description: "Stores user authentication and profile information.",
        columns: &[
            ("id", "User unique identifier"),
            ("email", "User email address for login"),
            ("password_hash", "Bcrypt hashed password"),
            ("created_at", "Timestamp of user creation"),
            ("last_login", "Timestamp of last successful login"),
            ("is_active", "Account active status flag"),
        ],
    },
    TableDoc {
        app: "avatar",
        table: "settings",
        description: "Stores application settings as key-value pairs, primarily used for bio \
                      prompts for different social media platforms.",
        columns: &[
            ("id", "Setting unique identifier"),
            ("key", "Setting key/name"),
            ("value", "Setting value (can store long text)"),
            ("created_at", "Timestamp of setting creation"),
            ("updated_at", "Timestamp of last update"),
        ],
    },
    TableDoc {
        app: "neurachar",
        table: "users",
        description: "Stores user account information.",
        columns: &[
            ("id", "Primary Key"),
            ("email", "Unique email address"),
            ("username", "User display name"),
            ("avatar_url", "URL to user avatar"),
            ("created_at", "Account creation time"),
            ("last_login_at", "Last login timestamp"),
            ("provider", "Auth provider type"),
        ],
    },
    TableDoc {
        app: "neurachar",
        table: "email_login_codes",
        description: "Stores temporary verification codes for email login.",
        columns: &[
            ("id", "Primary Key"),
            ("email", "Target email"),
            ("code_hash", "Hashed verification code"),
            ("created_at", "Generation time"),
            ("expires_at", "Expiration time"),
            ("used_at", "Usage time (if used)"),
            ("ip_address", "Request IP address"),
        ],
    },
    TableDoc {
        app: "neurachar",
        table: "characters",
        description: "Stores virtual character definitions.",
        columns: &[
            ("id", "Primary Key"),
            ("name", "Character name"),
            ("system_prompt", "Core persona instructions"),
            ("greeting_message", "Initial chat greeting"),
            ("avatar_url", "Character avatar URL"),
            ("tags", "List of tags (e.g. [\"friendly\"])"),
            ("is_public", "True if visible in Market"),
            ("creator_id", "FK to users.id"),
        ],
    },
    TableDoc {
        app: "neurachar",
        table: "chats",
        description: "Represents a conversation session between a user and a character.",
        columns: &[
            ("chat_id", "Primary Key"),
            ("user_id", "FK to users.id"),
            ("character_id", "FK to characters.id"),
            ("created_at", "Session start time"),
        ],
    },
    TableDoc {
        app: "neurachar",
        table: "messages",
        description: "Stores individual messages within a chat.",
        columns: &[
            ("id", "Primary Key"),
            ("chat_id", "FK to chats.chat_id"),
            ("role", "'user', 'assistant', or 'system'"),
            ("content", "Message text content"),
            ("created_at", "Message timestamp"),
        ],
    },
];

/// The documentation entry of `table` in `app`.
pub fn table_doc(app: &str, table: &str) -> Option<&'static TableDoc> {
    TABLE_DOCS.iter().find(|d| d.app == app && d.table == table)
}

/// What `table` of `app` ("avatar" or "neurachar") holds.
pub fn describe_table(app: &str, table: &str) -> Option<&'static str> {
    table_doc(app, table).map(|d| d.description)
}

/// What `column` of `table` in `app` means.
pub fn describe_column(app: &str, table: &str, column: &str) -> Option<&'static str> {
    table_doc(app, table)?
        .columns
        .iter()
        .find(|(c, _)| *c == column)
        .map(|(_, d)| *d)
}
