//! Alembic revision 25698f3f906f: the `users` table (login accounts) and its unique
//! `ix_users_email` index.
use crate::{ddl, StepInfo};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

pub const INFO: StepInfo = StepInfo {
    name: "m20260130_093115_initial_migration",
    alias: Some("25698f3f906f"),
    description: "Create the users table with a unique index on email",
    creates_tables: &["users"],
};

crate::step_name!(Migration, INFO);

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    CreatedAt,
    LastLogin,
    IsActive,
}

const IX_USERS_EMAIL: &str = "ix_users_email";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLAlchemy gave `created_at` and `is_active` Python-side defaults only: no server
        // default here either.
        manager
            .create_table(
                ddl::create_table(manager, Users::Table)
                    .col(pk_auto(Users::Id))
                    .col(string_len(Users::Email, 255))
                    .col(string_len(Users::PasswordHash, 255))
                    .col(date_time(Users::CreatedAt))
                    .col(date_time_null(Users::LastLogin))
                    .col(boolean(Users::IsActive))
                    .to_owned(),
            )
            .await?;
        ddl::create_unique_index(manager, IX_USERS_EMAIL, Users::Table, Users::Email).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_index(manager, IX_USERS_EMAIL, Users::Table).await?;
        ddl::drop_table(manager, Users::Table).await
    }
}
