//! Avatar `users`: the accounts that log in to the Avatar Data Generator (email + bcrypt hash).
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(column_type = "String(StringLen::N(255))", unique)]
    pub email: String,
    /// Bcrypt hash; never the password itself.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub password_hash: String,
    /// No server default: the application sets it.
    pub created_at: DateTime,
    pub last_login: Option<DateTime>,
    /// No server default: the application sets it.
    pub is_active: bool,
}

/// The unique index on `email` (Alembic named it; `unique` above alone would be an inline
/// constraint).
pub const INDEXES: &[crate::schema::Index] = &[crate::schema::Index {
    name: "ix_users_email",
    columns: &["email"],
    unique: true,
}];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
