//! What may stand between dbtool and a PostgreSQL server, and what kind of server it is: the
//! driver options that work through a connection pooler (PgBouncer, session or transaction
//! pooling), the check after connecting that refuses writes on a hot standby, and the
//! question a migration session asks a pooler the URL did not mention. The driver side is
//! the patched sqlx-postgres: vendor/sqlx-postgres/PATCHED.md.

use crate::context::{Access, ConnectSettings, DbLocation};
use crate::exit::{coded, Exit};
use anyhow::{Context as _, Result};
use migration::engine::{SessionFacts, SESSION_SQL};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The refusal of a migration through a transaction pooler (exit 18).
pub fn pooler_refusal(loc: &DbLocation, how: &str) -> anyhow::Error {
    coded(
        Exit::Pooler,
        format!(
            "refusing to migrate through {}: {how}, and through transaction pooling the migration lock (a session lock) protects nothing; give a URL that reaches the server directly (or a session-pooling PgBouncer) with --direct-url, DBTOOL_DIRECT_URL or direct_url in dbtool.toml; nothing was changed",
            loc.display
        ),
    )
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What the server says about itself right after connecting (write commands and migration
/// sessions: one query).
#[derive(Debug, Clone, Copy)]
struct ServerFacts {
    /// The process ID of the start-up key is not the backend's, so something in between made
    /// up its own: a connection pooler (PgBouncer does; PostgreSQL sends its own PID).
    behind_pooler: bool,
    /// `pg_is_in_recovery()`: a hot standby, where every write fails.
    in_recovery: bool,
}

/// Shared with the pool's after-connect hook, which runs again whenever the pool replaces its
/// connection.
#[derive(Default)]
pub struct Observed {
    facts: std::sync::Mutex<Option<ServerFacts>>,
    /// The whole answer, which the migration engine would otherwise ask for again.
    session: std::sync::Mutex<Option<SessionFacts>>,
    /// The pooler in between was shown to pool sessions: session settings are safe there.
    session_pooling: AtomicBool,
}

/// The PostgreSQL options of every dbtool connection.
///
/// - The statement cache is off, so the patched driver sends every statement unnamed and in
///   one round trip (Parse/Bind/Describe/Execute/Sync, as libpq does): nothing named is left
///   on a server connection that a transaction pooler hands to the next client, and no Sync
///   splits a statement across two server connections. It also saves a round trip per
///   statement; a short-lived CLI gains nothing from caching.
/// - No `extra_float_digits` start-up parameter: PgBouncer 1.18 refuses the connection over
///   it, and PostgreSQL 12+ prints floats exactly without it.
/// - `--schema`: a migration `session` (which must run `CREATE INDEX CONCURRENTLY` outside a
///   transaction) sets `search_path` for the session, on each new connection before anything
///   else, unless a pooler is in between that is not known to keep sessions (`check` decides
///   then). Every other connection sets it in each transaction (`SET LOCAL`; the driver wraps
///   a statement outside a transaction in one of its own): through a transaction pooler a
///   session setting would be lost after the transaction or, worse, left on the server
///   connection for other clients, and directly it makes no difference.
pub fn options(
    opt: &mut ConnectOptions,
    access: Access,
    settings: &ConnectSettings,
    session: bool,
    observed: &Arc<Observed>,
) {
    let quoted = settings.schema.as_deref().map(quote_ident);
    let setup = quoted
        .clone()
        .filter(|_| !session)
        .map(|q| format!("SET LOCAL search_path TO {q}"));
    opt.map_sqlx_postgres_opts(move |o| {
        let o = o.statement_cache_capacity(0).extra_float_digits(None);
        match &setup {
            Some(sql) => o.transaction_setup(sql.clone()),
            None => o,
        }
    });
    let session_sql = quoted
        .filter(|_| session)
        .map(|q| format!("SET search_path TO {q}"));
    let ask = access == Access::Write || session;
    let observed = observed.clone();
    opt.map_sqlx_postgres_pool_opts(move |p| {
        let (observed, session_sql) = (observed.clone(), session_sql.clone());
        // The one connection holds the session: lost, it is not replaced (see conn.rs in
        // migration/src/engine).
        // Refused: fail at once; the caller probes to say why, and --wait retries.
        p.replace_lost_connections(false)
            .retry_refused_connections(false)
            .after_connect(move |conn, _| {
                let (observed, session_sql) = (observed.clone(), session_sql.clone());
                Box::pin(async move {
                    use sea_orm::sqlx::Executor as _;
                    let mut behind_pooler = false;
                    if ask {
                        // The engine's own question, asked once for both (see `Observed`).
                        let (in_recovery, read_only, pid, schema, user): (
                            bool,
                            bool,
                            i64,
                            Option<String>,
                            Option<String>,
                        ) = sea_orm::sqlx::query_as(SESSION_SQL)
                            .fetch_one(&mut *conn)
                            .await?;
                        behind_pooler = pid as u32 != conn.backend_key_process_id();
                        if let Ok(mut f) = observed.facts.lock() {
                            *f = Some(ServerFacts {
                                behind_pooler,
                                in_recovery,
                            });
                        }
                        if let Ok(mut s) = observed.session.lock() {
                            *s = Some(SessionFacts {
                                in_recovery,
                                read_only,
                                pid,
                                schema,
                                user,
                            });
                        }
                    }
                    let safe = !behind_pooler || observed.session_pooling.load(Ordering::Relaxed);
                    if let Some(sql) = session_sql.filter(|_| safe) {
                        conn.execute(sea_orm::sqlx::AssertSqlSafe(sql)).await?;
                    }
                    Ok(())
                })
            })
    });
}

impl Observed {
    /// What the session said about itself, for the migration engine (see
    /// `migration::engine::Options::session`).
    pub fn session(&self) -> Option<SessionFacts> {
        self.session.lock().ok().and_then(|s| s.clone())
    }
}

/// After connecting: refuse writes on a standby (exit 17), and make sure a migration session
/// through a pooler the URL did not mention (the explicit signals are `pgbouncer=true` and a
/// configured direct URL) does not share its server connection (exit 18 if it does).
pub async fn check(
    db: DatabaseConnection,
    loc: &DbLocation,
    access: Access,
    settings: &ConnectSettings,
    session: bool,
    observed: &Arc<Observed>,
) -> Result<DatabaseConnection> {
    let facts = observed.facts.lock().ok().and_then(|f| *f);
    let Some(facts) = facts else {
        return Ok(db);
    };
    if facts.in_recovery && access == Access::Write {
        db.close().await.ok();
        return Err(coded(
            Exit::ReadOnly,
            format!(
                "write refused: {} is a read-only standby; point at the primary (nothing was changed)",
                loc.display
            ),
        ));
    }
    if !(session && facts.behind_pooler) {
        return Ok(db);
    }
    tracing::info!(
        "{} is a connection pooler (its start-up key is not the server's)",
        loc.display
    );
    if pools_transactions(&db, loc).await? {
        db.close().await.ok();
        return Err(pooler_refusal(
            loc,
            "it is a connection pooler in transaction mode (another client was given this session's server connection)",
        ));
    }
    tracing::info!("the pooler keeps a server connection per client (session pooling)");
    observed.session_pooling.store(true, Ordering::Relaxed);
    if let Some(schema) = &settings.schema {
        db.execute_unprepared(&format!("SET search_path TO {}", quote_ident(schema)))
            .await
            .context("setting the search_path")?;
    }
    Ok(db)
}

/// Whether the pooler in front of `loc` gives one server connection to several clients
/// (transaction or statement pooling). Asked in band, PgBouncer looks like PostgreSQL
/// whenever it happens to hand a client the same server connection again, so a second client
/// forces the question: it opens a transaction (which holds a server connection) and asks for
/// its backend. If that is the backend `db` just used, or `db`'s next statement runs in
/// another backend or has to wait for one, server connections are shared. A session pool
/// shows neither (and a second client that gets no server at all means sessions hold them
/// all). Three rounds, in case a busy pool hands out other connections.
async fn pools_transactions(db: &DatabaseConnection, loc: &DbLocation) -> Result<bool> {
    use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
    use sea_orm::sqlx::{Connection as _, Executor as _};
    async fn backend(c: &mut PgConnection) -> Result<i32, sea_orm::sqlx::Error> {
        sea_orm::sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(c)
            .await
    }
    let fail = |e: sea_orm::sqlx::Error| {
        coded(
            Exit::Connection,
            format!("cannot tell how the pooler at {} pools: {e}", loc.display),
        )
    };
    let wait = Duration::from_secs(5);
    let mut ours = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(fail)?;
    let first = backend(&mut ours).await.map_err(fail)?;
    let opts: PgConnectOptions = loc.secret_url().parse().map_err(fail)?;
    let opts = opts
        .statement_cache_capacity(0)
        .extra_float_digits(None)
        .application_name("dbtool");
    let Ok(Ok(mut other)) = tokio::time::timeout(wait, PgConnection::connect_with(&opts)).await
    else {
        return Ok(false);
    };
    let mut shared = false;
    for _ in 0..3 {
        let theirs = tokio::time::timeout(Duration::from_secs(2), async {
            other.execute("BEGIN").await?;
            backend(&mut other).await
        })
        .await;
        // No server for the second client: a session pool that is used up, or a
        // transaction pool that is busy; `db`'s own next statement tells them apart.
        let stuck = !matches!(theirs, Ok(Ok(_)));
        if matches!(theirs, Ok(Ok(p)) if p == first) {
            shared = true;
            break;
        }
        match tokio::time::timeout(wait, backend(&mut ours)).await {
            Ok(Ok(p)) if p == first => {}
            Ok(Err(e)) => return Err(fail(e)),
            _ => {
                shared = true;
                break;
            }
        }
        if stuck || other.execute("ROLLBACK").await.is_err() {
            break;
        }
    }
    let _ = tokio::time::timeout(wait, other.close()).await;
    Ok(shared)
}
