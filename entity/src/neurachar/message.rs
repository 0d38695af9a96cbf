//! NeuraChar `messages`: the individual messages of a chat (`role` is 'user', 'assistant' or
//! 'system'); deleted together with their chat.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub chat_id: Uuid,
    /// 'user', 'assistant' or 'system'.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub role: String,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    /// Server default: the current time.
    #[sea_orm(default_expr = "Expr::current_timestamp()")]
    pub created_at: DateTime,
}

/// Named indexes beyond what the attributes above declare (from
/// `m20251212_000006_add_foreign_key_indexes`).
pub const INDEXES: &[crate::schema::Index] = &[crate::schema::Index {
    name: "ix_messages_chat_id_created_at",
    columns: &["chat_id", "created_at"],
    unique: false,
}];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::chat::Entity",
        from = "Column::ChatId",
        to = "super::chat::Column::ChatId",
        on_update = "NoAction",
        fk_name = "messages_chat_id_fkey",
        on_delete = "Cascade"
    )]
    Chat,
}

impl Related<super::chat::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Chat.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
