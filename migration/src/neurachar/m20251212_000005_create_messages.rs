//! NeuraChar `messages`: the messages of a chat, deleted together with their chat.
use crate::{ddl, StepInfo};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

pub const INFO: StepInfo = StepInfo {
    name: "m20251212_000005_create_messages",
    alias: None,
    description: "Create the messages table (chat messages, deleted with their chat)",
    creates_tables: &["messages"],
};

crate::step_name!(Migration, INFO);

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ChatId,
    Role,
    Content,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Chats {
    Table,
    ChatId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                ddl::create_table(manager, Messages::Table)
                    .col(pk_uuid(Messages::Id))
                    .col(uuid(Messages::ChatId))
                    // 'user', 'assistant' or 'system'
                    .col(string_len(Messages::Role, 20))
                    .col(text(Messages::Content))
                    .col(date_time(Messages::CreatedAt).default(ddl::now(manager)))
                    .foreign_key(
                        ForeignKey::create()
                            .name("messages_chat_id_fkey")
                            .from(Messages::Table, Messages::ChatId)
                            .to(Chats::Table, Chats::ChatId)
                            .on_update(ForeignKeyAction::NoAction)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_table(manager, Messages::Table).await
    }
}
