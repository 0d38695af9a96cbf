//! Avatar `settings` (the bio prompts): validated keys and values, exact lookups, upserts that
//! say whether they created or updated, and import plans. Values are stored byte for byte.
//!
//! A write refuses (see [`Refusal`]) a key that is neither a default prompt nor stored unless
//! the caller passes `create` (a typo must not silently add a key), and a value the column
//! cannot hold. [`check_value`] refuses NUL bytes everywhere (PostgreSQL's `text` cannot hold
//! them, so no backend takes them) and empty or whitespace-only values unless allowed.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use entity::avatar::setting;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
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

/// Why a write was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// MySQL/MariaDB compare keys case-insensitively: another key already takes this one's place.
    Collides { key: String, other: String },
    /// Keys that are neither a default prompt nor stored, written without `create`; each with
    /// the known key it most likely meant.
    Unknown(Vec<(String, Option<String>)>),
    /// The column cannot hold the value: MySQL/MariaDB `TEXT` before the migration that widens
    /// it (`capacity` bytes).
    TooLong {
        key: String,
        bytes: usize,
        capacity: usize,
    },
}

/// What is wrong with a value, found before anything touches the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueProblem {
    /// A NUL byte at this byte offset.
    Nul(usize),
    /// Nothing at all.
    Empty,
    /// Only whitespace, this many bytes of it.
    Blank(usize),
}

impl std::fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueProblem::Nul(at) => write!(
                f,
                "contains a NUL byte (at byte {at}): setting values cannot contain NUL bytes"
            ),
            ValueProblem::Empty => f.write_str("is empty"),
            ValueProblem::Blank(n) => write!(f, "is only whitespace ({n} bytes)"),
        }
    }
}

impl ValueProblem {
    /// True for the problems that `--allow-empty` waives.
    pub fn is_emptiness(self) -> bool {
        !matches!(self, ValueProblem::Nul(_))
    }
}

/// Checks a value before it is written. NUL bytes are refused always; an empty or
/// whitespace-only value (which would wipe a prompt) only unless `allow_empty`.
pub fn check_value(value: &str, allow_empty: bool) -> Result<(), ValueProblem> {
    if let Some(at) = value.bytes().position(|b| b == 0) {
        return Err(ValueProblem::Nul(at));
    }
    if allow_empty {
        return Ok(());
    }
    if value.is_empty() {
        return Err(ValueProblem::Empty);
    }
    if value.chars().all(char::is_whitespace) {
        return Err(ValueProblem::Blank(value.len()));
    }
    Ok(())
}

/// The keys of the default prompts that the settings migration inserts.
pub fn default_keys() -> impl Iterator<Item = &'static str> {
    migration::avatar::DEFAULT_PROMPTS.iter().map(|(k, _)| *k)
}

/// The default prompt stored under `key` by the settings migration, if it is one of them.
pub fn default_value(key: &str) -> Option<&'static str> {
    migration::avatar::DEFAULT_PROMPTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known key that `key` most likely is a misspelling of: the closest by edit distance
/// (ignoring letter case, then with it), if it is within a third of the key's length (at
/// least 2).
pub fn suggest<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = key.to_lowercase();
    let limit = (key.chars().count() / 3).max(2);
    known
        .into_iter()
        .filter(|k| *k != key)
        .map(|k| (distance(&lower, &k.to_lowercase()), distance(key, k), k))
        .filter(|(d, _, _)| *d <= limit)
        .min()
        .map(|(_, _, k)| k)
}

/// Every stored key, for suggestions.
async fn stored_keys<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    setting::Entity::find()
        .select_only()
        .column(setting::Column::Key)
        .into_tuple::<String>()
        .all(db)
        .await
}

/// [`Refusal::Unknown`] for `keys`, with suggestions among the default and `stored` keys.
fn unknown(keys: &[&str], stored: &[String]) -> Refusal {
    Refusal::Unknown(
        keys.iter()
            .map(|k| {
                let mut known: Vec<&str> = default_keys().collect();
                known.extend(stored.iter().map(String::as_str));
                (k.to_string(), suggest(k, known).map(str::to_owned))
            })
            .collect(),
    )
}

/// How many bytes `settings.value` holds when that is less than any value could need: on
/// MySQL/MariaDB before the column was widened to `LONGTEXT`. `None` means no limit worth
/// checking (PostgreSQL and SQLite, or `LONGTEXT`).
async fn value_capacity<C: ConnectionTrait>(db: &C) -> Result<Option<usize>, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::MySql {
        return Ok(None);
    }
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::MySql,
            "SELECT CAST(DATA_TYPE AS CHAR) AS t FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'settings' AND COLUMN_NAME = 'value'",
        ))
        .await?;
    let ty: Option<String> = match row {
        Some(r) => r.try_get("", "t")?,
        None => None,
    };
    Ok(
        match ty.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("tinytext") => Some(255),
            Some("text") => Some(migration::avatar::MYSQL_TEXT_MAX_BYTES),
            Some("mediumtext") => Some(16_777_215),
            _ => None,
        },
    )
}

/// [`Refusal::TooLong`] for the first of `values` the column cannot hold. Asks the server
/// only when a value is longer than MySQL's `TEXT`, the narrowest the column can be.
async fn check_capacity<'a, C: ConnectionTrait>(
    db: &C,
    values: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Option<Refusal>, DbErr> {
    let long: Vec<(&str, &str)> = values
        .into_iter()
        .filter(|(_, v)| v.len() > migration::avatar::MYSQL_TEXT_MAX_BYTES)
        .collect();
    if long.is_empty() {
        return Ok(None);
    }
    let Some(capacity) = value_capacity(db).await? else {
        return Ok(None);
    };
    Ok(long
        .into_iter()
        .find(|(_, v)| v.len() > capacity)
        .map(|(k, v)| Refusal::TooLong {
            key: k.to_owned(),
            bytes: v.len(),
            capacity,
        }))
}

/// Whether `key` may be written without `create`: a default prompt, or already stored.
/// MySQL/MariaDB's `max_allowed_packet` when a statement carrying a value of `len` bytes
/// would exceed it (None: it fits, or another backend). The server refuses such a statement
/// (1153) and may close the connection while it is still being sent, which would read as a
/// lost connection: so the limit is checked before writing.
pub async fn packet_limit_exceeded<C: ConnectionTrait>(
    db: &C,
    len: usize,
) -> Result<Option<u64>, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::MySql {
        return Ok(None);
    }
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::MySql,
            "SELECT CAST(@@max_allowed_packet AS UNSIGNED)",
        ))
        .await?;
    let max: u64 = row
        .and_then(|r| r.try_get_by_index::<u64>(0).ok())
        .unwrap_or(u64::MAX);
    // Room for the statement around the value: the key, the SQL, the timestamps.
    Ok(((len as u64).saturating_add(1024) > max).then_some(max))
}

pub async fn is_known<C: ConnectionTrait>(db: &C, key: &Key) -> Result<bool, DbErr> {
    Ok(
        default_value(key.as_str()).is_some()
            || find_exact(db, key).await?.ok().flatten().is_some(),
    )
}

/// [`Refusal::Unknown`] for `key` when it is not known and `create` is false.
pub async fn refuse_unknown<C: ConnectionTrait>(
    db: &C,
    key: &Key,
    create: bool,
) -> Result<Option<Refusal>, DbErr> {
    if create || is_known(db, key).await? {
        return Ok(None);
    }
    Ok(Some(unknown(&[key.as_str()], &stored_keys(db).await?)))
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
/// `updated_at`); an update keeps `created_at`. A key that is neither stored nor a default
/// prompt is only created with `create`. The caller has checked the value ([`check_value`]).
pub async fn set(
    db: &DatabaseConnection,
    key: &Key,
    value: &str,
    create: bool,
) -> Result<Result<(Change, Setting), Refusal>, DbErr> {
    let txn = db.begin().await?;
    let found = match find_exact(&txn, key).await? {
        Err(other) => {
            return Ok(Err(Refusal::Collides {
                key: key.to_string(),
                other,
            }))
        }
        Ok(found) => found,
    };
    if let Some(m) = &found {
        if m.value == value {
            return Ok(Ok((Change::Unchanged, m.clone().into())));
        }
    } else if !create && default_value(key.as_str()).is_none() {
        return Ok(Err(unknown(&[key.as_str()], &stored_keys(&txn).await?)));
    }
    if let Some(r) = check_capacity(&txn, [(key.as_str(), value)]).await? {
        return Ok(Err(r));
    }
    let done = match found {
        Some(m) => {
            let mut am: setting::ActiveModel = m.into();
            am.value = ActiveValue::Set(value.to_owned());
            am.updated_at = ActiveValue::Set(now());
            (Change::Updated, am.update(&txn).await?.into())
        }
        None => (Change::Created, insert(&txn, key, value).await?),
    };
    txn.commit().await?;
    Ok(Ok(done))
}

async fn insert<C: ConnectionTrait>(db: &C, key: &Key, value: &str) -> Result<Setting, DbErr> {
    let t = now();
    let am = setting::ActiveModel {
        key: ActiveValue::Set(key.as_str().to_owned()),
        value: ActiveValue::Set(value.to_owned()),
        created_at: ActiveValue::Set(t),
        updated_at: ActiveValue::Set(t),
        ..Default::default()
    };
    Ok(am.insert(db).await?.into())
}

/// Creates the setting only if no row holds its key yet (an edit session of a new key must
/// not overwrite one created meanwhile): `Ok(None)` when one does.
pub async fn create_if_absent(
    db: &DatabaseConnection,
    key: &Key,
    value: &str,
) -> Result<Result<Option<Setting>, Refusal>, DbErr> {
    let txn = db.begin().await?;
    let created = match find_exact(&txn, key).await? {
        Err(other) => {
            return Ok(Err(Refusal::Collides {
                key: key.to_string(),
                other,
            }))
        }
        Ok(Some(_)) => None,
        Ok(None) => {
            if let Some(r) = check_capacity(&txn, [(key.as_str(), value)]).await? {
                return Ok(Err(r));
            }
            Some(insert(&txn, key, value).await?)
        }
    };
    txn.commit().await?;
    Ok(Ok(created))
}

/// Replaces the value only if it is still `expected` (an edit session must not overwrite a
/// change made meanwhile). Returns false when the row changed or went away.
pub async fn replace_if_unchanged<C: ConnectionTrait>(
    db: &C,
    key: &Key,
    expected: &str,
    value: &str,
) -> Result<Result<bool, Refusal>, DbErr> {
    let Ok(Some(m)) = find_exact(db, key).await? else {
        return Ok(Ok(false));
    };
    if m.value != expected {
        return Ok(Ok(false));
    }
    if let Some(r) = check_capacity(db, [(key.as_str(), value)]).await? {
        return Ok(Err(r));
    }
    let r = setting::Entity::update_many()
        .col_expr(setting::Column::Value, value.into())
        .col_expr(setting::Column::UpdatedAt, now().into())
        .filter(setting::Column::Id.eq(m.id))
        .filter(setting::Column::Value.eq(expected))
        .exec(db)
        .await?;
    Ok(Ok(r.rows_affected == 1))
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
    /// Parses and validates an import document (keys, and values as [`check_value`] with
    /// `allow_empty`); the error names the offending entry.
    pub fn parse(text: &str, allow_empty: bool) -> Result<ImportSet, String> {
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
            if let Err(p) = check_value(&e.value, allow_empty) {
                let hint = if p.is_emptiness() {
                    "; pass --allow-empty to import empty values"
                } else {
                    ""
                };
                return Err(format!(
                    "entry {} ('{}'): the value {p}{hint}",
                    i + 1,
                    e.key
                ));
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
/// is not touched. A key that collides case-insensitively (MySQL) is refused, and so are new
/// keys (neither stored nor a default prompt) unless `create`: all of them at once, before
/// anything is written.
pub async fn import(
    db: &DatabaseConnection,
    set: &ImportSet,
    create: bool,
    dry_run: bool,
) -> Result<Result<Vec<ImportChange>, Refusal>, DbErr> {
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
    if case_insensitive {
        for (key, _) in &set.entries {
            if existing.contains_key(key.as_str()) {
                continue;
            }
            if let Some(other) = folded.get(&key.as_str().to_lowercase()) {
                return Ok(Err(Refusal::Collides {
                    key: key.to_string(),
                    other: other.to_string(),
                }));
            }
        }
    }
    if !create {
        let new: Vec<&str> = set
            .entries
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !existing.contains_key(*k) && default_value(k).is_none())
            .collect();
        if !new.is_empty() {
            let stored: Vec<String> = existing.keys().cloned().collect();
            return Ok(Err(unknown(&new, &stored)));
        }
    }
    let changing = set
        .entries
        .iter()
        .filter(|(k, e)| existing.get(k.as_str()).is_none_or(|m| m.value != e.value))
        .map(|(k, e)| (k.as_str(), e.value.as_str()));
    if let Some(r) = check_capacity(&txn, changing).await? {
        return Ok(Err(r));
    }
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
        let parse = |t: &str| ImportSet::parse(t, false);
        assert!(parse(r#"{"settings":[{"key":"a","value":"x"}]}"#).is_ok());
        let dup = r#"{"settings":[{"key":"a","value":"x"},{"key":"a","value":"y"}]}"#;
        assert!(parse(dup).unwrap_err().contains("twice"));
        assert!(parse(r#"{"settings":[{"key":"","value":"x"}]}"#)
            .unwrap_err()
            .contains("entry 1"));
        assert!(parse(r#"[1,2]"#).is_err());
        let empty = r#"{"settings":[{"key":"a","value":"x"},{"key":"b","value":" \n"}]}"#;
        let e = parse(empty).unwrap_err();
        assert!(
            e.contains("entry 2 ('b')") && e.contains("--allow-empty"),
            "{e}"
        );
        assert!(ImportSet::parse(empty, true).is_ok());
        let nul = r#"{"settings":[{"key":"n","value":"a\u0000b"}]}"#;
        for allow in [false, true] {
            let e = ImportSet::parse(nul, allow).unwrap_err();
            assert!(e.contains("'n'") && e.contains("NUL"), "{e}");
        }
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(check_value("x", false), Ok(()));
        assert_eq!(check_value("", false), Err(ValueProblem::Empty));
        assert_eq!(
            check_value(" \t\r\n\u{a0}", false),
            Err(ValueProblem::Blank(6))
        );
        assert_eq!(check_value("", true), Ok(()));
        assert_eq!(check_value("  ", true), Ok(()));
        assert_eq!(check_value("ab\0c", true), Err(ValueProblem::Nul(2)));
        assert_eq!(check_value("\0", false), Err(ValueProblem::Nul(0)));
    }

    #[test]
    fn suggestions_are_the_closest_known_key() {
        let known = || default_keys().chain(["greeting"]);
        assert_eq!(distance("bio_promt_x", "bio_prompt_x"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(suggest("bio_promt_x", known()), Some("bio_prompt_x"));
        assert_eq!(suggest("BIO_PROMPT_X", known()), Some("bio_prompt_x"));
        assert_eq!(
            suggest("bio_prompt_tiktk", known()),
            Some("bio_prompt_tiktok")
        );
        assert_eq!(
            suggest("bio_prompt_instagarm", known()),
            Some("bio_prompt_instagram")
        );
        assert_eq!(suggest("greting", known()), Some("greeting"));
        assert_eq!(suggest("something_else", known()), None);
        assert_eq!(suggest("x", known()), None);
    }
}
