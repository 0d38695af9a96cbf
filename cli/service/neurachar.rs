//! NeuraChar housekeeping: purging spent email login codes, publishing characters, and
//! deleting chats (their messages go through the `ON DELETE CASCADE` of `messages.chat_id`).

use chrono::{DateTime, NaiveDateTime, Utc};
use entity::neurachar::{character, chat, email_login_code as code, message, user};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

/// How many login codes a purge removed (or would remove). A code both used and expired
/// counts as used.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PurgeCount {
    pub purged: u64,
    pub used: u64,
    pub expired: u64,
}

/// Deletes login codes that were used or have expired at `now`, and when `created_before`
/// is given only those created before it. With `dry_run` only counts.
pub async fn purge_login_codes(
    db: &DatabaseConnection,
    now: NaiveDateTime,
    created_before: Option<NaiveDateTime>,
    dry_run: bool,
) -> Result<PurgeCount, DbErr> {
    let age = match created_before {
        Some(t) => Condition::all().add(code::Column::CreatedAt.lt(t)),
        None => Condition::all(),
    };
    let used = Condition::all()
        .add(code::Column::UsedAt.is_not_null())
        .add(age.clone());
    let expired = Condition::all()
        .add(code::Column::UsedAt.is_null())
        .add(code::Column::ExpiresAt.lt(now))
        .add(age);
    let txn = db.begin().await?;
    let mut count = PurgeCount {
        used: code::Entity::find()
            .filter(used.clone())
            .count(&txn)
            .await?,
        expired: code::Entity::find()
            .filter(expired.clone())
            .count(&txn)
            .await?,
        purged: 0,
    };
    if dry_run {
        count.purged = count.used + count.expired;
        txn.rollback().await?;
    } else {
        count.purged = code::Entity::delete_many()
            .filter(Condition::any().add(used).add(expired))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
    }
    Ok(count)
}

/// A character as listed (no system prompt: it can be long).
#[derive(Debug, Clone, Serialize)]
pub struct CharacterRow {
    pub id: Uuid,
    pub name: String,
    pub is_public: bool,
    pub creator_id: Option<Uuid>,
    pub creator_email: Option<String>,
    pub tags: Vec<String>,
}

fn tag_list(tags: Option<&serde_json::Value>) -> Vec<String> {
    match tags {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|t| match t {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(serde_json::Value::Null) | None => Vec::new(),
        Some(other) => vec![other.to_string()],
    }
}

/// Characters by name (then id), optionally only the public ones, with their creator's email.
pub async fn list_characters<C: ConnectionTrait>(
    db: &C,
    public_only: bool,
) -> Result<Vec<CharacterRow>, DbErr> {
    let mut q = character::Entity::find().find_also_related(user::Entity);
    if public_only {
        q = q.filter(character::Column::IsPublic.eq(true));
    }
    Ok(q.order_by_asc(character::Column::Name)
        .order_by_asc(character::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|(c, u)| CharacterRow {
            tags: tag_list(c.tags.as_ref()),
            id: c.id,
            name: c.name,
            is_public: c.is_public,
            creator_id: c.creator_id,
            creator_email: u.map(|u| u.email),
        })
        .collect())
}

/// The result of publishing or unpublishing.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub id: Uuid,
    pub name: String,
    pub is_public: bool,
    /// False when the character already was in that state.
    pub changed: bool,
}

/// Sets `is_public`; None when no character has this id.
pub async fn set_public<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    public: bool,
) -> Result<Option<Published>, DbErr> {
    let Some(c) = character::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let changed = c.is_public != public;
    let name = c.name.clone();
    if changed {
        let mut am: character::ActiveModel = c.into();
        am.is_public = ActiveValue::Set(public);
        am.update(db).await?;
    }
    Ok(Some(Published {
        id,
        name,
        is_public: public,
        changed,
    }))
}

/// A chat with what a person needs to recognise it before deleting it.
#[derive(Debug, Clone, Serialize)]
pub struct ChatInfo {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub user_email: Option<String>,
    pub character_id: Uuid,
    pub character_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub messages: u64,
}

/// The chat with this id, or None.
pub async fn chat_info<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<ChatInfo>, DbErr> {
    let Some(c) = chat::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let user_email = user::Entity::find_by_id(c.user_id)
        .one(db)
        .await?
        .map(|u| u.email);
    let character_name = character::Entity::find_by_id(c.character_id)
        .one(db)
        .await?
        .map(|ch| ch.name);
    let messages = count_messages(db, id).await?;
    Ok(Some(ChatInfo {
        chat_id: c.chat_id,
        user_id: c.user_id,
        user_email,
        character_id: c.character_id,
        character_name,
        created_at: c.created_at.and_utc(),
        messages,
    }))
}

async fn count_messages<C: ConnectionTrait>(db: &C, chat_id: Uuid) -> Result<u64, DbErr> {
    message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .count(db)
        .await
}

/// What deleting a chat removed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ChatDeleted {
    /// Messages the database removed through the cascade.
    pub messages_cascaded: u64,
    /// Messages left behind because the cascade was not in force (SQLite with
    /// `foreign_keys` off), deleted explicitly so that none is orphaned.
    pub messages_deleted_explicitly: u64,
}

/// Deletes a chat in one transaction; None when it does not exist.
pub async fn delete_chat(db: &DatabaseConnection, id: Uuid) -> Result<Option<ChatDeleted>, DbErr> {
    let txn = db.begin().await?;
    let before = count_messages(&txn, id).await?;
    let r = chat::Entity::delete_by_id(id).exec(&txn).await?;
    if r.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    let left = count_messages(&txn, id).await?;
    if left > 0 {
        message::Entity::delete_many()
            .filter(message::Column::ChatId.eq(id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(Some(ChatDeleted {
        messages_cascaded: before - left,
        messages_deleted_explicitly: left,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_read_as_a_list() {
        assert_eq!(
            tag_list(Some(&serde_json::json!(["friendly", 3]))),
            vec!["friendly".to_string(), "3".to_string()]
        );
        assert!(tag_list(None).is_empty());
        assert!(tag_list(Some(&serde_json::Value::Null)).is_empty());
    }
}
