//! NeuraChar `characters`: the virtual characters users chat with, optionally owned by the
//! user who created them.
use crate::{ddl, StepInfo};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

pub const INFO: StepInfo = StepInfo {
    name: "m20251212_000003_create_characters",
    alias: None,
    description: "Create the characters table (personas, creator foreign key to users)",
    creates_tables: &["characters"],
};

crate::step_name!(Migration, INFO);

#[derive(DeriveIden)]
enum Characters {
    Table,
    Id,
    Name,
    SystemPrompt,
    GreetingMessage,
    AvatarUrl,
    Tags,
    IsPublic,
    CreatorId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The foreign key is declared inline (the only form SQLite accepts) and named the way
        // PostgreSQL would name it.
        manager
            .create_table(
                ddl::create_table(manager, Characters::Table)
                    .col(pk_uuid(Characters::Id))
                    .col(string_len(Characters::Name, 100))
                    .col(text(Characters::SystemPrompt))
                    .col(text_null(Characters::GreetingMessage))
                    .col(text_null(Characters::AvatarUrl))
                    .col(json_binary_null(Characters::Tags))
                    .col(boolean(Characters::IsPublic).default(false))
                    .col(uuid_null(Characters::CreatorId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("characters_creator_id_fkey")
                            .from(Characters::Table, Characters::CreatorId)
                            .to(Users::Table, Users::Id)
                            .on_update(ForeignKeyAction::NoAction)
                            .on_delete(ForeignKeyAction::NoAction),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_table(manager, Characters::Table).await
    }
}
