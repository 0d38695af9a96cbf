//! NeuraChar `chats`: one conversation session between a user and a character; owns its
//! messages (deleting a chat deletes them).
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "chats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub character_id: Uuid,
    /// Server default: the current time.
    #[sea_orm(default_expr = "Expr::current_timestamp()")]
    pub created_at: DateTime,
}

/// Named indexes beyond what the attributes above declare (from
/// `m20251212_000006_add_foreign_key_indexes`).
pub const INDEXES: &[crate::schema::Index] = &[
    crate::schema::Index {
        name: "ix_chats_user_id",
        columns: &["user_id"],
        unique: false,
    },
    crate::schema::Index {
        name: "ix_chats_character_id",
        columns: &["character_id"],
        unique: false,
    },
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_update = "NoAction",
        fk_name = "chats_user_id_fkey",
        on_delete = "NoAction"
    )]
    User,
    #[sea_orm(
        belongs_to = "super::character::Entity",
        from = "Column::CharacterId",
        to = "super::character::Column::Id",
        on_update = "NoAction",
        fk_name = "chats_character_id_fkey",
        on_delete = "NoAction"
    )]
    Character,
    #[sea_orm(has_many = "super::message::Entity")]
    Messages,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::character::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Character.def()
    }
}

impl Related<super::message::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Messages.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
