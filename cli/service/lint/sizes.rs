//! How many rows the tables a script touches hold, read-only: the catalog's estimate
//! (`pg_class.reltuples`, `information_schema.TABLES.TABLE_ROWS`, `sqlite_stat1`) where it
//! says the table is large; otherwise, since estimates of small or never-analysed tables are
//! often stale or missing, a count that stops after a bounded number of rows.

use super::{SizeSource, Sizes, TableSize};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use std::collections::{BTreeMap, BTreeSet};

/// Reads the sizes of `tables` (names as the statements spell them; those the database does
/// not have are left out). Counting stops after `count_cap` rows.
pub async fn table_sizes<C: ConnectionTrait>(
    db: &C,
    tables: &BTreeSet<String>,
    large_table: i64,
    count_cap: i64,
) -> Result<Sizes, DbErr> {
    let backend = db.get_database_backend();
    let catalog = estimates(db, backend).await?;
    let mut out = BTreeMap::new();
    for wanted in tables {
        let Some((name, estimate)) = catalog
            .get_key_value(wanted)
            .or_else(|| catalog.iter().find(|(k, _)| k.eq_ignore_ascii_case(wanted)))
            .map(|(k, v)| (k.clone(), *v))
        else {
            continue;
        };
        let size = match estimate {
            Some(rows) if rows >= large_table => TableSize {
                rows,
                source: SizeSource::Estimate,
            },
            _ => count(db, backend, &name, count_cap).await?,
        };
        out.insert(name, size);
    }
    Ok(Sizes::live(out))
}

/// Every table of the current schema with the catalog's row estimate, if it has one.
async fn estimates<C: ConnectionTrait>(
    db: &C,
    backend: DbBackend,
) -> Result<BTreeMap<String, Option<i64>>, DbErr> {
    let sql = match backend {
        // reltuples is -1 for a table never vacuumed or analysed (PostgreSQL 14+).
        DbBackend::Postgres => {
            "SELECT c.relname::text, CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        }
        DbBackend::MySql => {
            "SELECT CAST(TABLE_NAME AS CHAR), CAST(TABLE_ROWS AS SIGNED) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
        }
        _ => "SELECT name, NULL FROM sqlite_master WHERE type = 'table'",
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let name: String = r.try_get_by_index(0)?;
        let rows: Option<i64> = r.try_get_by_index(1)?;
        out.insert(name, rows);
    }
    if backend == DbBackend::Sqlite && out.contains_key("sqlite_stat1") {
        // ANALYZE's statistics: the first number of each row is the table's row count
        // (partial indexes count fewer, hence the maximum).
        let stats = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT tbl, stat FROM sqlite_stat1".to_owned(),
            ))
            .await?;
        for r in stats {
            let tbl: String = r.try_get_by_index(0)?;
            let stat: Option<String> = r.try_get_by_index(1)?;
            let n = stat
                .as_deref()
                .and_then(|s| s.split_whitespace().next())
                .and_then(|n| n.parse::<i64>().ok());
            if let (Some(slot), Some(n)) = (out.get_mut(&tbl), n) {
                *slot = Some(slot.map_or(n, |m| m.max(n)));
            }
        }
    }
    Ok(out)
}

/// Counts the rows of `table`, reading at most `cap + 1` of them.
async fn count<C: ConnectionTrait>(
    db: &C,
    backend: DbBackend,
    table: &str,
    cap: i64,
) -> Result<TableSize, DbErr> {
    let quoted = match backend {
        DbBackend::MySql => format!("`{}`", table.replace('`', "``")),
        _ => format!("\"{}\"", table.replace('"', "\"\"")),
    };
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 AS one FROM {quoted} LIMIT {}) AS capped",
        cap.saturating_add(1)
    );
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("no row counting {table}")))?;
    let n: i64 = row.try_get_by_index(0)?;
    Ok(if n > cap {
        TableSize {
            rows: n,
            source: SizeSource::AtLeast,
        }
    } else {
        TableSize {
            rows: n,
            source: SizeSource::Count,
        }
    })
}
