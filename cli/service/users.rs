//! User accounts: Avatar logins (email + bcrypt hash, active flag) and the NeuraChar account
//! list. Emails and passwords are validated here as domain values; hashes never leave this
//! module except into the database.

use chrono::{DateTime, Utc};
use entity::avatar::user as avatar_user;
use entity::neurachar::user as neurachar_user;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

/// The longest email the `email` columns (varchar(255)) hold.
pub const MAX_EMAIL_CHARS: usize = 255;
/// Shorter passwords are refused.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// bcrypt only ever reads this many bytes; the Python `bcrypt` package (4.1+) refuses
/// longer passwords, so accepting them here would make accounts the app cannot log into.
pub const MAX_PASSWORD_BYTES: usize = 72;
pub const DEFAULT_COST: u32 = 12;

/// A syntactically plausible email address, trimmed, stored as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("the email address is empty".into());
        }
        if s.chars().count() > MAX_EMAIL_CHARS {
            return Err(format!(
                "an email address has at most {MAX_EMAIL_CHARS} characters"
            ));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("an email address cannot contain spaces or control characters".into());
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err("an email address has exactly one '@'".into());
        };
        if local.is_empty() {
            return Err("the part before '@' is empty".into());
        }
        if domain.is_empty()
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err("the part after '@' must be a domain such as example.com".into());
        }
        Ok(Email(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Email {
    type Err = String;
    fn from_str(s: &str) -> Result<Email, String> {
        Email::parse(s)
    }
}

/// A password that passed the length rules. Its `Debug` never shows it.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub fn parse(raw: String) -> Result<Password, String> {
        if raw.is_empty() {
            return Err("the password is empty".into());
        }
        let n = raw.chars().count();
        if n < MIN_PASSWORD_CHARS {
            return Err(format!(
                "the password is too short ({n} characters); use at least {MIN_PASSWORD_CHARS}"
            ));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(format!(
                "the password is {} bytes long; bcrypt uses at most {MAX_PASSWORD_BYTES} bytes, so use a shorter one",
                raw.len()
            ));
        }
        Ok(Password(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A bcrypt hash in the `$2b$` format that Python's `bcrypt` and Flask-Bcrypt write and read.
pub fn hash_password(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    Ok(
        bcrypt::hash_with_result(password.expose(), cost)?
            .format_for_version(bcrypt::Version::TwoB),
    )
}

/// Checks a password against a stored hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`).
pub fn verify_password(password: &str, hash: &str) -> Result<bool, bcrypt::BcryptError> {
    bcrypt::verify(password, hash)
}

/// An Avatar account as shown: everything but the hash.
#[derive(Debug, Clone, Serialize)]
pub struct AvatarUser {
    pub id: i32,
    pub email: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

impl From<&avatar_user::Model> for AvatarUser {
    fn from(m: &avatar_user::Model) -> AvatarUser {
        AvatarUser {
            id: m.id,
            email: m.email.clone(),
            is_active: m.is_active,
            created_at: m.created_at.and_utc(),
            last_login: m.last_login.map(|t| t.and_utc()),
        }
    }
}

/// A NeuraChar account as shown.
#[derive(Debug, Clone, Serialize)]
pub struct NeuracharUser {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// The result of looking an account up by email.
#[derive(Debug, Clone)]
pub enum Lookup<T> {
    Found(T),
    Missing,
    /// Several accounts differ only in letter case and none matches exactly.
    Ambiguous(Vec<String>),
}

async fn same_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Vec<avatar_user::Model>, DbErr> {
    avatar_user::Entity::find()
        .filter(
            Expr::expr(Func::lower(Expr::col(avatar_user::Column::Email)))
                .eq(Func::lower(Expr::val(email))),
        )
        .order_by_asc(avatar_user::Column::Id)
        .all(db)
        .await
}

/// The Avatar account with this email, compared case-insensitively (an exact match wins).
pub async fn find_avatar<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Lookup<avatar_user::Model>, DbErr> {
    let email = email.trim();
    let mut hits = same_email(db, email).await?;
    if let Some(i) = hits.iter().position(|m| m.email == email) {
        return Ok(Lookup::Found(hits.swap_remove(i)));
    }
    Ok(match hits.len() {
        0 => Lookup::Missing,
        1 => Lookup::Found(hits.remove(0)),
        _ => Lookup::Ambiguous(hits.into_iter().map(|m| m.email).collect()),
    })
}

/// The result of adding an account.
#[derive(Debug, Clone)]
pub enum AddOutcome {
    Created(AvatarUser),
    /// An account with this email (in any letter case) exists: its email as stored.
    Duplicate(String),
}

/// Creates an Avatar account; `created_at` is now and the account is active unless told.
pub async fn add_avatar(
    db: &DatabaseConnection,
    email: &Email,
    password_hash: String,
    active: bool,
) -> Result<AddOutcome, DbErr> {
    let txn = db.begin().await?;
    if let Some(existing) = same_email(&txn, email.as_str()).await?.into_iter().next() {
        txn.rollback().await?;
        return Ok(AddOutcome::Duplicate(existing.email));
    }
    let m = avatar_user::ActiveModel {
        email: ActiveValue::Set(email.as_str().to_owned()),
        password_hash: ActiveValue::Set(password_hash),
        created_at: ActiveValue::Set(crate::service::settings::now()),
        last_login: ActiveValue::Set(None),
        is_active: ActiveValue::Set(active),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(AddOutcome::Created(AvatarUser::from(&m)))
}

/// Replaces an account's password hash.
pub async fn set_password<C: ConnectionTrait>(
    db: &C,
    user: avatar_user::Model,
    password_hash: String,
) -> Result<(), DbErr> {
    let mut am: avatar_user::ActiveModel = user.into();
    am.password_hash = ActiveValue::Set(password_hash);
    am.update(db).await?;
    Ok(())
}

/// Sets the active flag; returns the account as it is now.
pub async fn set_active<C: ConnectionTrait>(
    db: &C,
    user: avatar_user::Model,
    active: bool,
) -> Result<AvatarUser, DbErr> {
    if user.is_active == active {
        return Ok(AvatarUser::from(&user));
    }
    let mut am: avatar_user::ActiveModel = user.into();
    am.is_active = ActiveValue::Set(active);
    Ok(AvatarUser::from(&am.update(db).await?))
}

/// Every Avatar account, by id.
pub async fn list_avatar<C: ConnectionTrait>(db: &C) -> Result<Vec<AvatarUser>, DbErr> {
    Ok(avatar_user::Entity::find()
        .order_by_asc(avatar_user::Column::Id)
        .all(db)
        .await?
        .iter()
        .map(AvatarUser::from)
        .collect())
}

/// Every NeuraChar account, oldest first.
pub async fn list_neurachar<C: ConnectionTrait>(db: &C) -> Result<Vec<NeuracharUser>, DbErr> {
    Ok(neurachar_user::Entity::find()
        .order_by_asc(neurachar_user::Column::CreatedAt)
        .order_by_asc(neurachar_user::Column::Email)
        .all(db)
        .await?
        .into_iter()
        .map(|m| NeuracharUser {
            id: m.id,
            email: m.email,
            username: m.username,
            provider: m.provider,
            created_at: m.created_at.and_utc(),
            last_login_at: m.last_login_at.map(|t| t.and_utc()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated() {
        assert_eq!(
            Email::parse("  Ann@Example.com ").unwrap().as_str(),
            "Ann@Example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a@b@example.com",
            "ann smith@example.com",
            "ann@.com",
            "ann@example.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn passwords_follow_the_length_rules() {
        assert!(Password::parse(String::new())
            .unwrap_err()
            .contains("empty"));
        assert!(Password::parse("short".into())
            .unwrap_err()
            .contains("too short"));
        assert!(Password::parse("long enough".into()).is_ok());
        assert!(Password::parse("x".repeat(73)).is_err());
        assert!(
            !format!("{:?}", Password::parse("secret-pass".into()).unwrap()).contains("secret")
        );
    }

    #[test]
    fn hashes_are_2b_and_verify() {
        let p = Password::parse("correct horse".into()).unwrap();
        let h = hash_password(&p, 4).unwrap();
        assert!(h.starts_with("$2b$04$"), "{h}");
        assert!(verify_password("correct horse", &h).unwrap());
        assert!(!verify_password("wrong horse", &h).unwrap());
    }
}
