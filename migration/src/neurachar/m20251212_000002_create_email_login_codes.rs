//! NeuraChar `email_login_codes`: short-lived, hashed one-time codes for email login.
use crate::{ddl, StepInfo};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

pub const INFO: StepInfo = StepInfo {
    name: "m20251212_000002_create_email_login_codes",
    alias: None,
    description: "Create the email_login_codes table (one-time email login codes)",
    creates_tables: &["email_login_codes"],
};

crate::step_name!(Migration, INFO);

#[derive(DeriveIden)]
enum EmailLoginCodes {
    Table,
    Id,
    Email,
    CodeHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    IpAddress,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                ddl::create_table(manager, EmailLoginCodes::Table)
                    .col(pk_auto(EmailLoginCodes::Id))
                    .col(string_len(EmailLoginCodes::Email, 255))
                    .col(string_len(EmailLoginCodes::CodeHash, 255))
                    .col(date_time(EmailLoginCodes::CreatedAt).default(ddl::now(manager)))
                    .col(date_time(EmailLoginCodes::ExpiresAt))
                    .col(date_time_null(EmailLoginCodes::UsedAt))
                    // 45 characters: the longest textual IPv6 address (IPv4-mapped).
                    .col(string_len_null(EmailLoginCodes::IpAddress, 45))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_table(manager, EmailLoginCodes::Table).await
    }
}
