//! Catalog introspection for assertions, one implementation per backend.
use super::TestDb;

pub async fn tables(db: &TestDb) -> Vec<String> {
    let sql = match db.backend {
        super::Backend::Postgres => "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
        super::Backend::MySql => "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
        super::Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1",
    };
    db.strings(sql).await
}
