//! `dbtool docs`: the generated Markdown covers every table and column of the applications'
//! own schema documents (the seeds), takes its descriptions from the migrations, shows the
//! history and status, draws a Mermaid erDiagram of every table, key and foreign key (checked
//! line by line), and is byte-for-byte the same on every run.

use crate::common::{Backend, TestDb};
use crate::on_all_backends;

on_all_backends!(
    docs_cover_the_seed_documents,
    docs_are_deterministic,
    docs_draw_an_er_diagram
);

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

/// The key markers the diagram must show, `(app, table, column, markers)`; every other column
/// of the seeds has none.
const KEYS: &[(&str, &str, &str, &str)] = &[
    ("avatar", "users", "id", "PK"),
    ("avatar", "users", "email", "UK"),
    ("avatar", "settings", "id", "PK"),
    ("avatar", "settings", "key", "UK"),
    ("neurachar", "users", "id", "PK"),
    ("neurachar", "users", "email", "UK"),
    ("neurachar", "email_login_codes", "id", "PK"),
    ("neurachar", "characters", "id", "PK"),
    ("neurachar", "characters", "creator_id", "FK"),
    ("neurachar", "chats", "chat_id", "PK"),
    ("neurachar", "chats", "user_id", "FK"),
    ("neurachar", "chats", "character_id", "FK"),
    ("neurachar", "messages", "id", "PK"),
    ("neurachar", "messages", "chat_id", "FK"),
];

/// One relationship line per foreign key, parent first: `||` when the key is NOT NULL, `|o`
/// when it is nullable (characters.creator_id), many children each; the cascade in the label.
const RELATIONSHIPS: &[(&str, &[&str])] = &[
    ("avatar", &[]),
    (
        "neurachar",
        &[
            "characters ||--o{ chats : \"character_id\"",
            "chats ||--o{ messages : \"chat_id (ON DELETE CASCADE)\"",
            "users |o--o{ characters : \"creator_id\"",
            "users ||--o{ chats : \"user_id\"",
        ],
    ),
];

/// An entity of the diagram: its name and `(type, column, markers)` per attribute line.
type Entity = (String, Vec<(String, String, String)>);

/// Reads the ```` ```mermaid ```` block of `doc` line by line; every line must be the
/// header, an entity opening or closing, an attribute or a relationship.
fn diagram(doc: &str) -> (Vec<Entity>, Vec<String>) {
    let mut lines = doc.lines().skip_while(|l| *l != "```mermaid");
    assert_eq!(lines.next(), Some("```mermaid"), "no mermaid block:\n{doc}");
    assert_eq!(lines.next(), Some("erDiagram"));
    let mut entities: Vec<Entity> = Vec::new();
    let mut relationships = Vec::new();
    let mut open = false;
    for l in lines.by_ref() {
        if l == "```" {
            assert!(!open, "unclosed entity block");
            return (entities, relationships);
        }
        if open {
            if l == "    }" {
                open = false;
                continue;
            }
            let attr = l
                .strip_prefix("        ")
                .unwrap_or_else(|| panic!("not an attribute line: {l:?}"));
            let mut words = attr.splitn(3, ' ');
            let ty = words.next().unwrap_or_default().to_owned();
            let name = words
                .next()
                .unwrap_or_else(|| panic!("no name: {l:?}"))
                .to_owned();
            let keys = words.next().unwrap_or_default().to_owned();
            assert!(
                keys.split(", ")
                    .all(|k| ["", "PK", "FK", "UK"].contains(&k)),
                "{l:?}"
            );
            entities.last_mut().unwrap().1.push((ty, name, keys));
            continue;
        }
        let body = l
            .strip_prefix("    ")
            .unwrap_or_else(|| panic!("unexpected line: {l:?}"));
        if let Some(name) = body.strip_suffix(" {") {
            assert!(!name.contains(' '), "{l:?}");
            entities.push((name.to_owned(), Vec::new()));
            open = true;
        } else {
            let parts: Vec<&str> = body.splitn(5, ' ').collect();
            assert!(
                parts.len() == 5
                    && ["||--o{", "|o--o{", "||--o|", "|o--o|"].contains(&parts[1])
                    && parts[3] == ":"
                    && parts[4].starts_with('"')
                    && parts[4].ends_with('"'),
                "not a relationship line: {l:?}"
            );
            relationships.push(body.to_owned());
        }
    }
    panic!("the mermaid block is not closed:\n{doc}");
}

async fn docs_draw_an_er_diagram(db: TestDb) {
    for (app, tables) in SEEDS {
        let db = TestDb::new(db.backend, &format!("docs_er_{app}"));
        db.run(&["--app", app, "upgrade"]).ok();
        let r = db.run(&["--app", app, "docs"]);
        r.ok();
        let doc = &r.stdout;
        let (entities, relationships) = diagram(doc);
        let names: Vec<&str> = entities.iter().map(|(n, _)| n.as_str()).collect();
        let expected: Vec<&str> = tables.iter().map(|(t, _)| *t).collect();
        assert_eq!(names, expected, "one entity per table, in creation order");
        for ((table, columns), (_, attrs)) in tables.iter().zip(&entities) {
            let got: Vec<&str> = attrs.iter().map(|(_, c, _)| c.as_str()).collect();
            assert_eq!(got, *columns, "{app}.{table}: every column, in order");
            let s = section(doc, table);
            for (ty, column, keys) in attrs {
                // The type is the one the table section shows for the column.
                let row = s
                    .lines()
                    .find(|l| l.starts_with(&format!("| `{column}` |")))
                    .unwrap_or_else(|| panic!("no row for {column}"));
                assert!(
                    row.starts_with(&format!("| `{column}` | {ty} |")),
                    "{row} vs {ty}"
                );
                let want = KEYS
                    .iter()
                    .find(|(a, t, c, _)| a == app && t == table && c == column)
                    .map_or("", |k| k.3);
                assert_eq!(keys, want, "{app}.{table}.{column}");
            }
        }
        let want = RELATIONSHIPS.iter().find(|(a, _)| a == app).unwrap().1;
        assert_eq!(relationships, want, "{app} on {:?}", db.backend);
    }
}
