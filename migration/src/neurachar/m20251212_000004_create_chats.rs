//! NeuraChar `chats`: one conversation between a user and a character.
use crate::{ddl, StepInfo};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

pub const INFO: StepInfo = StepInfo {
    name: "m20251212_000004_create_chats",
    alias: None,
    description: "Create the chats table (user/character conversations)",
    creates_tables: &["chats"],
};

crate::step_name!(Migration, INFO);

#[derive(DeriveIden)]
enum Chats {
    Table,
    ChatId,
    UserId,
    CharacterId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Characters {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                ddl::create_table(manager, Chats::Table)
                    .col(pk_uuid(Chats::ChatId))
                    .col(uuid(Chats::UserId))
                    .col(uuid(Chats::CharacterId))
                    .col(date_time(Chats::CreatedAt).default(ddl::now(manager)))
                    .foreign_key(
                        ForeignKey::create()
                            .name("chats_user_id_fkey")
                            .from(Chats::Table, Chats::UserId)
                            .to(Users::Table, Users::Id)
                            .on_update(ForeignKeyAction::NoAction)
                            .on_delete(ForeignKeyAction::NoAction),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("chats_character_id_fkey")
                            .from(Chats::Table, Chats::CharacterId)
                            .to(Characters::Table, Characters::Id)
                            .on_update(ForeignKeyAction::NoAction)
                            .on_delete(ForeignKeyAction::NoAction),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_table(manager, Chats::Table).await
    }
}
