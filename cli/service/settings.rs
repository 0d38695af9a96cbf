//! Avatar `settings` (the bio prompts): validated keys, exact lookups, upserts that say
//! whether they created or updated, and import plans. Values are stored byte for byte.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use entity::avatar::setting;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The longest key the `settings.key` column (varchar(255)) holds, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// A setting key that the column can hold and that means the same on every backend.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Validates a key. Leading or trailing blanks are refused because MySQL's PAD SPACE
    /// collation would treat `"a "` and `"a"` as the same key.
    pub fn parse(s: &str) -> Result<Key, String> {
        if s.is_empty() {
            return Err("a setting key cannot be empty".into());
        }
        let n = s.chars().count();
        if n > MAX_KEY_CHARS {
            return Err(format!(
                "a setting key has at most {MAX_KEY_CHARS} characters, this one has {n}"
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(
                "a setting key cannot contain control characters (newlines, tabs, ...)".into(),
            );
        }
        if s.trim() != s {
            return Err("a setting key cannot start or end with a blank".into());
        }
        Ok(Key(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Key {
    type Err = String;
    fn from_str(s: &str) -> Result<Key, String> {
        Key::parse(s)
    }
}

/// One setting as shown and exported. Times are UTC (the columns hold naive UTC times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<setting::Model> for Setting {
    fn from(m: setting::Model) -> Setting {
        Setting {
            key: m.key,
            value: m.value,
            created_at: m.created_at.and_utc(),
            updated_at: m.updated_at.and_utc(),
        }
    }
}

/// What a write did (or, in a dry run, would do) to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        }
    }
}

/// The result of `set`: what happened, or the key it collides with.
#[derive(Debug, Clone)]
pub enum SetOutcome {
    Done(Change, Setting),
    /// MySQL/MariaDB compare keys case-insensitively: another key already takes this one's place.
    Collides(String),
}

/// Now, to the microsecond: what PostgreSQL keeps and Python's `datetime` holds, so a
/// time reads back the same on every backend (MySQL keeps whole seconds).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A time from an import document as the columns keep it.
fn stored(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc().trunc_subsecs(6)
}

/// The row whose key is exactly `key`. The database may compare case-insensitively
/// (MySQL), so candidates are filtered again here; `Err` carries a colliding key.
async fn find_exact<C: ConnectionTrait>(
    db: &C,
    key: &Key,
) -> Result<Result<Option<setting::Model>, String>, DbErr> {
    let rows = setting::Entity::find()
        .filter(setting::Column::Key.eq(key.as_str()))
        .all(db)
        .await?;
    let mut other = None;
    for m in rows {
        if m.key == key.as_str() {
            return Ok(Ok(Some(m)));
        }
        other = Some(m.key);
    }
    Ok(match other {
        Some(k) => Err(k),
        None => Ok(None),
    })
}

/// The setting with exactly this key.
pub async fn get<C: ConnectionTrait>(db: &C, key: &Key) -> Result<Option<Setting>, DbErr> {
    Ok(find_exact(db, key).await?.ok().flatten().map(Setting::from))
}

/// Every setting, ordered by key.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<Setting>, DbErr> {
    Ok(setting::Entity::find()
        .order_by_asc(setting::Column::Key)
        .all(db)
        .await?
        .into_iter()
        .map(Setting::from)
        .collect())
}

/// Creates or updates one setting. An identical value is left alone (and keeps its
/// `updated_at`); an update keeps `created_at`.
pub async fn set(db: &DatabaseConnection, key: &Key, value: &str) -> Result<SetOutcome, DbErr> {
    let txn = db.begin().await?;
    let outcome = match find_exact(&txn, key).await? {
        Err(other) => SetOutcome::Collides(other),
        Ok(Some(m)) if m.value == value => SetOutcome::Done(Change::Unchanged, m.into()),
        Ok(Some(m)) => {
            let mut am: setting::ActiveModel = m.into();
            am.value = ActiveValue::Set(value.to_owned());
            am.updated_at = ActiveValue::Set(now());
            SetOutcome::Done(Change::Updated, am.update(&txn).await?.into())
        }
        Ok(None) => {
            let t = now();
            let am = setting::ActiveModel {
                key: ActiveValue::Set(key.as_str().to_owned()),
                value: ActiveValue::Set(value.to_owned()),
                created_at: ActiveValue::Set(t),
                updated_at: ActiveValue::Set(t),
                ..Default::default()
            };
            SetOutcome::Done(Change::Created, am.insert(&txn).await?.into())
        }
    };
    txn.commit().await?;
    Ok(outcome)
}

/// Replaces the value only if it is still `expected` (an edit session must not overwrite a
/// change made meanwhile). Returns false when the row changed or went away.
pub async fn replace_if_unchanged<C: ConnectionTrait>(
    db: &C,
    key: &Key,
    expected: &str,
    value: &str,
) -> Result<bool, DbErr> {
    let Ok(Some(m)) = find_exact(db, key).await? else {
        return Ok(false);
    };
    if m.value != expected {
        return Ok(false);
    }
    let r = setting::Entity::update_many()
        .col_expr(setting::Column::Value, value.into())
        .col_expr(setting::Column::UpdatedAt, now().into())
        .filter(setting::Column::Id.eq(m.id))
        .filter(setting::Column::Value.eq(expected))
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Deletes the setting with exactly this key; false when there was none.
pub async fn unset<C: ConnectionTrait>(db: &C, key: &Key) -> Result<bool, DbErr> {
    let Ok(Some(m)) = find_exact(db, key).await? else {
        return Ok(false);
    };
    let r = setting::Entity::delete_by_id(m.id).exec(db).await?;
    Ok(r.rows_affected == 1)
}

/// The export document: `{"settings": [{key, value, created_at, updated_at}, ...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub settings: Vec<Setting>,
}

/// One entry of an import document; the times are optional (now when absent).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportEntry {
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportDoc {
    pub settings: Vec<ImportEntry>,
}

/// An import document whose keys are validated and unique.
#[derive(Debug, Clone)]
pub struct ImportSet {
    pub entries: Vec<(Key, ImportEntry)>,
}

impl ImportSet {
    /// Parses and validates an import document; the error names the offending entry.
    pub fn parse(text: &str) -> Result<ImportSet, String> {
        let doc: ImportDoc = serde_json::from_str(text).map_err(|e| {
            format!("not a settings export ({e}); expected {{\"settings\": [{{\"key\": ..., \"value\": ...}}, ...]}}")
        })?;
        let mut seen = BTreeSet::new();
        let mut entries = Vec::with_capacity(doc.settings.len());
        for (i, e) in doc.settings.into_iter().enumerate() {
            let key = Key::parse(&e.key).map_err(|m| format!("entry {}: {m}", i + 1))?;
            if !seen.insert(e.key.clone()) {
                return Err(format!("entry {}: key '{}' appears twice", i + 1, e.key));
            }
            entries.push((key, e));
        }
        Ok(ImportSet { entries })
    }
}

/// What an import did (or would do) to one key.
#[derive(Debug, Clone, Serialize)]
pub struct ImportChange {
    pub key: String,
    pub change: Change,
}

/// Applies an import in one transaction, or only classifies it when `dry_run`. A created
/// row takes both times from the file and an updated row its `updated_at`, so that an
/// export imported elsewhere reproduces the rows; a row whose value is already the same
/// is not touched. A key that collides case-insensitively (MySQL) is an error naming it.
pub async fn import(
    db: &DatabaseConnection,
    set: &ImportSet,
    dry_run: bool,
) -> Result<Result<Vec<ImportChange>, String>, DbErr> {
    let txn = db.begin().await?;
    let existing: BTreeMap<String, setting::Model> = setting::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| (m.key.clone(), m))
        .collect();
    let folded: BTreeMap<String, &str> = existing
        .keys()
        .map(|k| (k.to_lowercase(), k.as_str()))
        .collect();
    let case_insensitive = db.get_database_backend() == sea_orm::DbBackend::MySql;
    let mut changes = Vec::with_capacity(set.entries.len());
    for (key, e) in &set.entries {
        let now = now();
        let change = match existing.get(key.as_str()) {
            Some(m) if m.value == e.value => Change::Unchanged,
            Some(m) => {
                if !dry_run {
                    let mut am: setting::ActiveModel = m.clone().into();
                    am.value = ActiveValue::Set(e.value.clone());
                    am.updated_at = ActiveValue::Set(e.updated_at.map(stored).unwrap_or(now));
                    am.update(&txn).await?;
                }
                Change::Updated
            }
            None => {
                if case_insensitive {
                    if let Some(other) = folded.get(&key.as_str().to_lowercase()) {
                        return Ok(Err(format!(
                            "key '{key}' collides with existing key '{other}' (MySQL/MariaDB compare keys case-insensitively)"
                        )));
                    }
                }
                if !dry_run {
                    let created = e.created_at.map(stored).unwrap_or(now);
                    setting::ActiveModel {
                        key: ActiveValue::Set(key.as_str().to_owned()),
                        value: ActiveValue::Set(e.value.clone()),
                        created_at: ActiveValue::Set(created),
                        updated_at: ActiveValue::Set(e.updated_at.map(stored).unwrap_or(created)),
                        ..Default::default()
                    }
                    .insert(&txn)
                    .await?;
                }
                Change::Created
            }
        };
        changes.push(ImportChange {
            key: key.as_str().to_owned(),
            change,
        });
    }
    if dry_run {
        txn.rollback().await?;
    } else {
        txn.commit().await?;
    }
    Ok(Ok(changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        assert!(Key::parse("bio_prompt_x").is_ok());
        assert!(Key::parse("ключ ✓").is_ok());
        assert!(Key::parse("").is_err());
        assert!(Key::parse(" a").is_err());
        assert!(Key::parse("a\nb").is_err());
        assert!(Key::parse(&"k".repeat(255)).is_ok());
        assert!(Key::parse(&"k".repeat(256)).is_err());
        assert!(Key::parse(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn import_documents_are_checked() {
        assert!(ImportSet::parse(r#"{"settings":[{"key":"a","value":"x"}]}"#).is_ok());
        let dup = r#"{"settings":[{"key":"a","value":"x"},{"key":"a","value":"y"}]}"#;
        assert!(ImportSet::parse(dup).unwrap_err().contains("twice"));
        assert!(ImportSet::parse(r#"{"settings":[{"key":"","value":"x"}]}"#)
            .unwrap_err()
            .contains("entry 1"));
        assert!(ImportSet::parse(r#"[1,2]"#).is_err());
    }
}
