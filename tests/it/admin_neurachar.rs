//! NeuraChar housekeeping through the real binary on every backend: login-code purges
//! (counts, `--dry-run`, `--older-than`), publishing characters, and chat deletion with its
//! cascade and confirmation.

use crate::common::TestDb;
use crate::on_all_backends;
use chrono::{Duration, NaiveDateTime, SubsecRound, Utc};
use entity::neurachar::{character, chat, email_login_code as code, message, user};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use uuid::Uuid;

on_all_backends!(
    login_codes_purge_counts_and_filters,
    characters_list_publish_unpublish,
    chats_delete_cascades_and_needs_confirmation,
    control_bytes_from_the_database_never_reach_the_terminal,
);

/// Now in whole seconds: what every backend keeps exactly.
fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(0)
}

async fn migrated(db: &TestDb) -> DatabaseConnection {
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    db.connect().await
}

fn nc<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--app", "neurachar"];
    a.extend_from_slice(args);
    a
}

async fn add_user(c: &DatabaseConnection, email: &str) -> Uuid {
    let id = Uuid::new_v4();
    user::ActiveModel {
        id: ActiveValue::Set(id),
        email: ActiveValue::Set(email.into()),
        username: ActiveValue::Set(None),
        avatar_url: ActiveValue::Set(None),
        created_at: ActiveValue::Set(now()),
        last_login_at: ActiveValue::Set(None),
        provider: ActiveValue::Set("email_qq".into()),
    }
    .insert(c)
    .await
    .unwrap();
    id
}

async fn login_codes_purge_counts_and_filters(db: TestDb) {
    let c = migrated(&db).await;
    let now = now();
    let m = Duration::minutes;
    // (email, created, expires, used): one fresh code and four spent ones, two of them old.
    let codes = [
        ("fresh@example.com", now - m(1), now + m(10), None),
        (
            "old-expired@example.com",
            now - Duration::days(10),
            now - Duration::days(10) + m(10),
            None,
        ),
        (
            "old-used@example.com",
            now - Duration::days(10),
            now - Duration::days(10) + m(10),
            Some(now - Duration::days(10) + m(1)),
        ),
        ("recent-expired@example.com", now - m(60), now - m(50), None),
        (
            "recent-used@example.com",
            now - m(2),
            now + m(8),
            Some(now - m(1)),
        ),
    ];
    for (email, created, expires, used) in codes {
        code::ActiveModel {
            email: ActiveValue::Set(email.into()),
            code_hash: ActiveValue::Set(format!("secret-code-hash-{email}")),
            created_at: ActiveValue::Set(created),
            expires_at: ActiveValue::Set(expires),
            used_at: ActiveValue::Set(used),
            ip_address: ActiveValue::Set(Some("203.0.113.7".into())),
            ..Default::default()
        }
        .insert(&c)
        .await
        .unwrap();
    }
    let left = || async {
        code::Entity::find()
            .order_by_asc(code::Column::Email)
            .all(&c)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.email)
            .collect::<Vec<_>>()
    };

    // Dry runs count and delete nothing.
    let r = db.run(&nc(&["login-codes", "purge", "--dry-run"]));
    assert!(
        r.ok()
            .stdout
            .contains("would purge 4 login codes (2 used, 2 expired"),
        "{}",
        r.stdout
    );
    let j = db
        .run(&nc(&[
            "--json",
            "login-codes",
            "purge",
            "--dry-run",
            "--older-than",
            "7d",
        ]))
        .json();
    assert_eq!(
        (
            j["purged"].as_u64(),
            j["used"].as_u64(),
            j["expired"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(j["dry_run"], true);
    assert!(j["created_before"].as_str().unwrap().ends_with('Z'));
    assert_eq!(left().await.len(), 5);

    // --older-than: only the old spent codes go.
    let r = db.run(&nc(&["login-codes", "purge", "--older-than", "7d"]));
    assert!(
        r.ok().stdout.contains("purged 2 login codes"),
        "{}",
        r.stdout
    );
    assert_eq!(
        left().await,
        [
            "fresh@example.com",
            "recent-expired@example.com",
            "recent-used@example.com"
        ]
    );

    // Without it: every spent code; the fresh one stays; again: nothing to do.
    let r = db.run(&nc(&["login-codes", "purge"]));
    assert!(
        r.ok()
            .stdout
            .contains("purged 2 login codes (1 used, 1 expired)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("secret-code-hash"), "no code hash shown");
    assert_eq!(left().await, ["fresh@example.com"]);
    let j = db.run(&nc(&["--json", "login-codes", "purge"])).json();
    assert_eq!(j["purged"], 0);

    // Bad ages and the wrong app are usage errors.
    for bad in ["7", "7x", "0h", "-1d"] {
        db.run(&nc(&["login-codes", "purge", "--older-than", bad]))
            .expect_code(2);
    }
    // Without --app the database says it is NeuraChar's; naming the other app is refused.
    db.run(&["login-codes", "purge"]).ok();
    let r = db.run(&["--app", "avatar", "login-codes", "purge"]);
    assert!(
        r.expect_code(2).stderr.contains("--app neurachar"),
        "{}",
        r.stderr
    );
    c.close().await.ok();
}

async fn add_character(
    c: &DatabaseConnection,
    name: &str,
    public: bool,
    creator: Option<Uuid>,
    tags: Option<serde_json::Value>,
) -> Uuid {
    let id = Uuid::new_v4();
    character::ActiveModel {
        id: ActiveValue::Set(id),
        name: ActiveValue::Set(name.into()),
        system_prompt: ActiveValue::Set(format!("You are {name}.")),
        greeting_message: ActiveValue::Set(Some("Hi!".into())),
        avatar_url: ActiveValue::Set(None),
        tags: ActiveValue::Set(tags),
        is_public: ActiveValue::Set(public),
        creator_id: ActiveValue::Set(creator),
    }
    .insert(c)
    .await
    .unwrap();
    id
}

async fn is_public(c: &DatabaseConnection, id: Uuid) -> bool {
    character::Entity::find_by_id(id)
        .one(c)
        .await
        .unwrap()
        .unwrap()
        .is_public
}

async fn characters_list_publish_unpublish(db: TestDb) {
    let c = migrated(&db).await;
    let u = add_user(&c, "maker@example.com").await;
    let aria = add_character(
        &c,
        "Aria",
        true,
        Some(u),
        Some(serde_json::json!(["friendly", "fun"])),
    )
    .await;
    let bolt = add_character(&c, "Bolt", false, None, None).await;

    let r = db.run(&nc(&["characters", "list"]));
    let out = &r.ok().stdout;
    assert!(out.contains("2 characters"), "{out}");
    let aria_line = out.lines().find(|l| l.contains("Aria")).unwrap();
    assert!(
        aria_line.contains("maker@example.com")
            && aria_line.contains("friendly, fun")
            && aria_line.contains(&aria.to_string()),
        "{aria_line}"
    );

    let j = db
        .run(&nc(&["--json", "characters", "list", "--public"]))
        .json();
    let list = j["characters"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Aria");
    assert_eq!(list[0]["creator_email"], "maker@example.com");
    assert_eq!(list[0]["tags"], serde_json::json!(["friendly", "fun"]));

    let r = db.run(&nc(&["characters", "publish", &bolt.to_string()]));
    assert!(
        r.ok().stdout.contains("published character 'Bolt'"),
        "{}",
        r.stdout
    );
    assert!(is_public(&c, bolt).await);
    let r = db.run(&nc(&["characters", "publish", &bolt.to_string()]));
    assert!(r.ok().stdout.contains("already public"), "{}", r.stdout);
    let j = db
        .run(&nc(&[
            "--json",
            "characters",
            "unpublish",
            &aria.to_string(),
        ]))
        .json();
    assert_eq!(
        (j["is_public"].as_bool(), j["changed"].as_bool()),
        (Some(false), Some(true))
    );
    assert!(!is_public(&c, aria).await);
    let j = db
        .run(&nc(&["--json", "characters", "list", "--public"]))
        .json();
    assert_eq!(j["characters"][0]["name"], "Bolt");

    let missing = Uuid::new_v4().to_string();
    db.run(&nc(&["characters", "publish", &missing]))
        .expect_code(8);
    let r = db.run(&nc(&["characters", "publish", "not-a-uuid"]));
    assert!(
        r.expect_code(2).stderr.contains("not-a-uuid"),
        "{}",
        r.stderr
    );
    // Recognised without --app; refused for the other app.
    db.run(&["characters", "list"]).ok();
    db.run(&["--app", "avatar", "characters", "list"])
        .expect_code(2);
    c.close().await.ok();
}

async fn add_chat(c: &DatabaseConnection, user: Uuid, character: Uuid, messages: usize) -> Uuid {
    let id = Uuid::new_v4();
    let now = now();
    chat::ActiveModel {
        chat_id: ActiveValue::Set(id),
        user_id: ActiveValue::Set(user),
        character_id: ActiveValue::Set(character),
        created_at: ActiveValue::Set(now),
    }
    .insert(c)
    .await
    .unwrap();
    for i in 0..messages {
        message::ActiveModel {
            id: ActiveValue::Set(Uuid::new_v4()),
            chat_id: ActiveValue::Set(id),
            role: ActiveValue::Set(if i % 2 == 0 { "user" } else { "assistant" }.into()),
            content: ActiveValue::Set(format!("message {i}")),
            created_at: ActiveValue::Set(now),
        }
        .insert(c)
        .await
        .unwrap();
    }
    id
}

async fn messages_of(c: &DatabaseConnection, chat_id: Uuid) -> u64 {
    message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .count(c)
        .await
        .unwrap()
}

async fn chats_delete_cascades_and_needs_confirmation(db: TestDb) {
    let c = migrated(&db).await;
    let u = add_user(&c, "talker@example.com").await;
    let ch = add_character(&c, "Echo", true, None, None).await;
    let first = add_chat(&c, u, ch, 3).await;
    let second = add_chat(&c, u, ch, 1).await;

    // No terminal and no --yes: refused with exit 7, nothing deleted.
    let r = db.run(&nc(&["chats", "delete", &first.to_string()]));
    r.expect_code(7);
    assert!(
        r.stderr.contains("--yes") && r.stderr.contains("3 messages"),
        "{}",
        r.stderr
    );
    assert_eq!(messages_of(&c, first).await, 3);

    // Deleted by the database's cascade, not by dbtool.
    let j = db
        .run(&nc(&[
            "--json",
            "chats",
            "delete",
            &first.to_string(),
            "--yes",
        ]))
        .json();
    assert_eq!(j["chat_id"], first.to_string());
    assert_eq!(j["messages_deleted"], 3);
    assert_eq!(j["messages_cascaded"], 3);
    assert_eq!(j["messages_deleted_explicitly"], 0);
    assert_eq!(messages_of(&c, first).await, 0);
    assert!(chat::Entity::find_by_id(first)
        .one(&c)
        .await
        .unwrap()
        .is_none());
    // The other chat is untouched.
    assert_eq!(messages_of(&c, second).await, 1);

    let r = db.run(&nc(&["chats", "delete", &second.to_string(), "-y"]));
    assert!(
        r.ok().stdout.contains("and its 1 message ("),
        "{}",
        r.stdout
    );
    assert_eq!(chat::Entity::find().count(&c).await.unwrap(), 0);
    assert_eq!(message::Entity::find().count(&c).await.unwrap(), 0);

    // Gone now; bad ids; wrong app.
    db.run(&nc(&["chats", "delete", &first.to_string(), "--yes"]))
        .expect_code(8);
    db.run(&nc(&["chats", "delete", "42", "--yes"]))
        .expect_code(2);
    let r = db.run(&[
        "--app",
        "avatar",
        "chats",
        "delete",
        &first.to_string(),
        "--yes",
    ]);
    assert!(
        r.expect_code(2).stderr.contains("NeuraChar"),
        "{}",
        r.stderr
    );
    c.close().await.ok();
}

/// A character's name is user content: an escape sequence in it must not retitle or
/// recolour an admin's terminal, nor a line break split a table row or a confirmation.
async fn control_bytes_from_the_database_never_reach_the_terminal(db: TestDb) {
    let c = migrated(&db).await;
    let evil = "Char\x1b]0;pwned\x07\nName";
    let id = add_character(&c, evil, false, None, None).await;
    db.exec(&format!(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m2099_{}', 0)",
        "\x1b[31mevil"
    ))
    .await;
    for args in [
        &["characters", "list"][..],
        &["characters", "publish", &id.to_string()][..],
        &["status"][..],
        &["history"][..],
    ] {
        let r = db.run(&nc(args));
        for (name, out) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            assert!(
                !out.contains('\x1b') && !out.contains('\x07'),
                "{args:?}: raw control bytes on {name}: {out:?}"
            );
        }
    }
    let r = db.run(&nc(&["characters", "publish", &id.to_string()]));
    assert_eq!(r.stdout.lines().count(), 1, "{:?}", r.stdout);
    assert!(
        r.stdout.contains("\\x1b]0;pwned\\x07\\nName"),
        "{:?}",
        r.stdout
    );
}
