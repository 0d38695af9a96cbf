//! Alembic revision d8cfd3cb4083: the `settings` key/value table, its unique `ix_settings_key`
//! index, and the four default bio prompts (one per social platform) the generator reads.
use crate::{ddl, StepInfo};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

pub const INFO: StepInfo = StepInfo {
    name: "m20260130_113328_create_settings_table",
    alias: Some("d8cfd3cb4083"),
    description: "Create the settings table and insert the default bio prompts",
    creates_tables: &["settings"],
};

crate::step_name!(Migration, INFO);

/// The rows `up` inserts into `settings`: `(key, value)`, one bio prompt per platform.
///
/// Each value is the instruction an LLM receives, followed by the generated persona's
/// details, to write that persona's profile bio for the platform.
pub const DEFAULT_PROMPTS: &[(&str, &str)] = &[
    (
        "bio_prompt_facebook",
        "Write the Facebook profile intro for the persona described below. Facebook shows the intro \
         under the profile picture and allows at most 101 characters, so write one or two short, \
         warm sentences in the first person that a real person would use to introduce themselves \
         to friends, family and acquaintances: mention where they live or are from and one or two \
         things that matter to them, such as their work, family or a hobby. Keep the tone friendly \
         and down to earth, use at most one emoji and no hashtags, and do not include links, \
         @handles, phone numbers or email addresses. Stay consistent with the persona's name, age, \
         location, occupation and interests, never mention that the persona is generated or an \
         AI, and reply with the bio text only, without quotation marks or explanations.",
    ),
    (
        "bio_prompt_instagram",
        "Write the Instagram bio for the persona described below. Instagram allows at most 150 \
         characters, so make every word count: a short, personality-driven line about who they \
         are and what they love (their work, passions, city or lifestyle), optionally split into \
         two or three short lines separated by line breaks or a separator such as \"|\". The tone \
         should be authentic, visual and upbeat; one to three fitting emojis are welcome, at most \
         one hashtag, and no links, @handles, phone numbers or email addresses. Stay consistent \
         with the persona's name, age, location, occupation and interests, never mention that \
         the persona is generated or an AI, and reply with the bio text only, without quotation \
         marks or explanations.",
    ),
    (
        "bio_prompt_x",
        "Write the X (formerly Twitter) bio for the persona described below. X allows at most 160 \
         characters, so write a concise, punchy self-description in the persona's own voice: what \
         they do, what they care about and what they post about, with a touch of wit or opinion \
         that fits their character. Fragments separated by commas, slashes or a \"|\" are fine. \
         Use at most one emoji and at most two relevant hashtags, and no links, @handles, phone \
         numbers or email addresses. Stay consistent with the persona's name, age, location, \
         occupation and interests, never mention that the persona is generated or an AI, and \
         reply with the bio text only, without quotation marks or explanations.",
    ),
    (
        "bio_prompt_tiktok",
        "Write the TikTok bio for the persona described below. TikTok allows at most 80 \
         characters, so keep it to a very short, catchy line in a casual, playful, trend-aware \
         tone that tells viewers what kind of videos to expect from this person (for example \
         their hobby, job, daily life or humour). One or two emojis are welcome; no hashtags, \
         links, @handles, phone numbers or email addresses. Stay consistent with the persona's \
         name, age, location, occupation and interests, never mention that the persona is \
         generated or an AI, and reply with the bio text only, without quotation marks or \
         explanations.",
    ),
];

#[derive(DeriveIden)]
enum Settings {
    Table,
    Id,
    Key,
    Value,
    CreatedAt,
    UpdatedAt,
}

const IX_SETTINGS_KEY: &str = "ix_settings_key";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                ddl::create_table(manager, Settings::Table)
                    .col(pk_auto(Settings::Id))
                    .col(string_len(Settings::Key, 255))
                    .col(text(Settings::Value))
                    .col(date_time(Settings::CreatedAt).default(ddl::now(manager)))
                    .col(date_time(Settings::UpdatedAt).default(ddl::now(manager)))
                    .to_owned(),
            )
            .await?;
        ddl::create_unique_index(manager, IX_SETTINGS_KEY, Settings::Table, Settings::Key).await?;

        let mut insert = Query::insert();
        insert
            .into_table(Settings::Table)
            .columns([Settings::Key, Settings::Value]);
        for (key, value) in DEFAULT_PROMPTS {
            insert.values_panic([(*key).into(), (*value).into()]);
        }
        if manager.get_database_backend() == DbBackend::MySql {
            // Re-running after a half-failed `up` (MySQL commits DDL and DML as it goes) must
            // not fail on rows that are already there.
            insert.on_conflict(
                OnConflict::column(Settings::Key)
                    .do_nothing_on([Settings::Key])
                    .to_owned(),
            );
        }
        manager.execute(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The default rows go with the table.
        ddl::drop_index(manager, IX_SETTINGS_KEY, Settings::Table).await?;
        ddl::drop_table(manager, Settings::Table).await
    }
}
