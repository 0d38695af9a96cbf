//! Avatar `settings`: application configuration as key/value pairs, chiefly the per-platform
//! bio prompts (`bio_prompt_facebook`, `bio_prompt_instagram`, `bio_prompt_x`,
//! `bio_prompt_tiktok`).
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(column_type = "String(StringLen::N(255))", unique)]
    pub key: String,
    #[sea_orm(column_type = "Text")]
    pub value: String,
    /// Server default: the current time.
    #[sea_orm(default_expr = "Expr::current_timestamp()")]
    pub created_at: DateTime,
    /// Server default: the current time (not updated by the database on change).
    #[sea_orm(default_expr = "Expr::current_timestamp()")]
    pub updated_at: DateTime,
}

/// The unique index on `key` (Alembic named it; `unique` above alone would be an inline
/// constraint).
pub const INDEXES: &[crate::schema::Index] = &[crate::schema::Index {
    name: "ix_settings_key",
    columns: &["key"],
    unique: true,
}];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
