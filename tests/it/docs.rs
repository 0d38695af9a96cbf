//! `dbtool docs`: the generated Markdown covers every table and column of the applications'
//! own schema documents (the seeds), takes its descriptions from the migrations, shows the
//! history and status, and is byte-for-byte the same on every run.

use crate::common::{Backend, TestDb};
use crate::on_all_backends;

on_all_backends!(docs_cover_the_seed_documents, docs_are_deterministic);

/// `(table, columns)` as a seed document lists them.
type SeedTable = (&'static str, &'static [&'static str]);

/// Tables and columns of the hand-kept schema documents of both applications (shared/seeds).
const SEEDS: &[(&str, &[SeedTable])] = &[
    (
        "avatar",
        &[
            (
                "users",
                &[
                    "id",
                    "email",
                    "password_hash",
                    "created_at",
                    "last_login",
                    "is_active",
                ],
            ),
            (
                "settings",
                &["id", "key", "value", "created_at", "updated_at"],
            ),
        ],
    ),
    (
        "neurachar",
        &[
            (
                "users",
                &[
                    "id",
                    "email",
                    "username",
                    "avatar_url",
                    "created_at",
                    "last_login_at",
                    "provider",
                ],
            ),
            (
                "email_login_codes",
                &[
                    "id",
                    "email",
                    "code_hash",
                    "created_at",
                    "expires_at",
                    "used_at",
                    "ip_address",
                ],
            ),
            (
                "characters",
                &[
                    "id",
                    "name",
                    "system_prompt",
                    "greeting_message",
                    "avatar_url",
                    "tags",
                    "is_public",
                    "creator_id",
                ],
            ),
            (
                "chats",
                &["chat_id", "user_id", "character_id", "created_at"],
            ),
            (
                "messages",
                &["id", "chat_id", "role", "content", "created_at"],
            ),
        ],
    ),
];

/// The part of `doc` between `### table` and the next table heading.
fn section<'a>(doc: &'a str, table: &str) -> &'a str {
    let start = doc
        .find(&format!("\n### {table}\n"))
        .unwrap_or_else(|| panic!("no section for {table}:\n{doc}"));
    let rest = &doc[start + 1..];
    let end = rest[4..].find("\n### ").map_or(rest.len(), |e| e + 4);
    &rest[..end]
}

async fn docs_cover_the_seed_documents(db: TestDb) {
    for (app, tables) in SEEDS {
        let db = TestDb::new(db.backend, &format!("docs_{app}"));
        db.run(&["--app", app, "upgrade"]).ok();
        let r = db.run(&["--app", app, "docs"]);
        r.ok();
        let doc = &r.stdout;
        for (table, columns) in *tables {
            let s = section(doc, table);
            let description = migration::describe_table(app, table)
                .unwrap_or_else(|| panic!("the migrations describe {app}.{table}"));
            assert!(s.contains(description), "{app}.{table}: {s}");
            for c in *columns {
                let row = s
                    .lines()
                    .find(|l| l.starts_with(&format!("| `{c}` |")))
                    .unwrap_or_else(|| panic!("no row for {app}.{table}.{c}:\n{s}"));
                let d = migration::describe_column(app, table, c)
                    .unwrap_or_else(|| panic!("the migrations describe {app}.{table}.{c}"));
                assert!(row.ends_with(&format!(" {d} |")), "{row}");
            }
            assert!(
                s.contains("**Indexes:**") && s.contains("**Foreign Keys:**"),
                "{s}"
            );
        }
        // Every migration with its applied-at time, and the status.
        for step in migration::App::steps(match *app {
            "avatar" => migration::App::Avatar,
            _ => migration::App::Neurachar,
        }) {
            let line = doc
                .lines()
                .find(|l| l.contains(&format!("`{}`", step.name)) && l.contains("| applied |"))
                .unwrap_or_else(|| panic!("no history row for {}:\n{doc}", step.name));
            assert!(line.contains(" UTC |"), "{line}");
        }
        assert!(doc.contains("- **Database State**: Up to date"), "{doc}");
        assert!(doc.contains(&format!("- **Total Tables**: {}", tables.len())));
        assert!(
            !doc.contains("seaql_migrations |"),
            "no bookkeeping table section"
        );
        let backend = match db.backend {
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MySQL/MariaDB",
            Backend::Sqlite => "SQLite",
        };
        assert!(
            doc.contains(&format!("- **Database Type**: {backend}")),
            "{doc}"
        );
        if *app == "neurachar" {
            assert!(
                doc.contains(
                    "**chats → messages**: One-to-Many via `messages.chat_id` (on delete CASCADE)"
                ),
                "{doc}"
            );
            assert!(doc.contains("**users → characters**: One-to-Many"), "{doc}");
        } else {
            let users = section(doc, "users");
            assert!(
                users.contains("- `ix_users_email` (UNIQUE) on `email`"),
                "{users}"
            );
        }
    }
}

async fn docs_are_deterministic(db: TestDb) {
    db.run(&["upgrade"]).ok();
    let first = db.run(&["docs"]);
    first.ok();
    let second = db.run(&["docs"]);
    second.ok();
    assert_eq!(first.stdout, second.stdout);

    let file = db.dir().join("SCHEMA.md");
    let r = db.run(&["docs", "--output", file.to_str().expect("utf-8 path")]);
    r.ok();
    assert!(r.stdout.starts_with("wrote "), "{}", r.stdout);
    let written = std::fs::read(&file).expect("docs file");
    assert_eq!(written, first.stdout.as_bytes());

    // settings.value as the backend holds it: LONGTEXT on MySQL/MariaDB at head.
    let value_row = |doc: &str| -> String {
        section(doc, "settings")
            .lines()
            .find(|l| l.starts_with("| `value` |"))
            .unwrap_or_else(|| panic!("no value row:\n{doc}"))
            .to_owned()
    };
    let wide = if db.backend == Backend::MySql {
        "longtext"
    } else {
        "text"
    };
    assert!(
        value_row(&first.stdout).starts_with(&format!("| `value` | {wide} |")),
        "{}",
        value_row(&first.stdout)
    );

    // Only the data changes the file: a pending migration shows up as such. The last one
    // (widening settings.value) changes the schema on MySQL/MariaDB only.
    db.run(&["downgrade"]).ok();
    let after = db.run(&["docs"]);
    after.ok();
    assert_ne!(after.stdout, first.stdout);
    assert!(after
        .stdout
        .contains("- **Database State**: 1 migration pending"));
    assert!(
        value_row(&after.stdout).starts_with("| `value` | text |"),
        "{}",
        value_row(&after.stdout)
    );
    db.run(&["downgrade", "--yes"]).ok();
    let after = db.run(&["docs"]);
    after.ok();
    assert!(after
        .stdout
        .contains("- **Database State**: 2 migrations pending"));
    assert!(!after.stdout.contains("\n### settings\n"));
}
