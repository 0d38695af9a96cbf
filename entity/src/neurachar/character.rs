//! NeuraChar `characters`: the personas users chat with (system prompt, greeting, tags),
//! optionally created by a user and optionally public in the Market.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

// `tags` is a `serde_json::Value`, which is not `Eq`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "characters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub system_prompt: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub greeting_message: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub avatar_url: Option<String>,
    /// A JSON list of tags, e.g. `["friendly"]`.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub tags: Option<Json>,
    /// Server default: false. True when the character is visible in the Market.
    #[sea_orm(default_value = false)]
    pub is_public: bool,
    pub creator_id: Option<Uuid>,
}

/// Named indexes beyond what the attributes above declare (from
/// `m20251212_000006_add_foreign_key_indexes`).
pub const INDEXES: &[crate::schema::Index] = &[crate::schema::Index {
    name: "ix_characters_creator_id",
    columns: &["creator_id"],
    unique: false,
}];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user who created this character.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::CreatorId",
        to = "super::user::Column::Id",
        on_update = "NoAction",
        fk_name = "characters_creator_id_fkey",
        on_delete = "NoAction"
    )]
    Creator,
    #[sea_orm(has_many = "super::chat::Entity")]
    Chats,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Creator.def()
    }
}

impl Related<super::chat::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Chats.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
