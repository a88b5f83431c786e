//! The production backend: PostgreSQL through a deadpool of tokio-postgres connections with cached
//! prepared statements. Transactions run at READ COMMITTED; the rows a decision rests on are read
//! `FOR UPDATE` (claims of one book queue on the book's row by design: one batch per book writes
//! at a time), and every write is still a conditional update whose row count is checked. A
//! transaction that hits a deadlock or serialization failure is run again.

pub(crate) mod sql;

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{NoTls, Row, Statement};
use uuid::Uuid;

use crate::backend::{Arg, Backend, Fields, Planning, Script, Tx};
use crate::statements::Q;
use crate::store::SqlStore;
use crate::{Connections, EventForm, PoolConfig, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_deal_cursor.sql")),
    (3, include_str!("migrations/0003_operations.sql")),
    (4, include_str!("migrations/0004_events.sql")),
    (5, include_str!("migrations/0005_webhooks.sql")),
];
/// How long opening a new connection may take before the request fails.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Runs of one transaction after a deadlock or serialization failure, before giving up.
const ATTEMPTS: usize = 4;

pub struct PgBackend {
    pool: Pool,
}

pub type PgStore = SqlStore<PgBackend>;

impl PgStore {
    /// Connects and applies the migrations (serialized across instances by an advisory lock).
    pub async fn connect(url: &str, pool: PoolConfig, form: Arc<dyn EventForm>) -> Result<Self, StoreError> {
        let backend = PgBackend::pool(url, pool)?;
        backend.migrate().await?;
        Ok(SqlStore::new(backend, form))
    }

    /// A pool on a database that is already migrated; connections open when first used.
    pub fn pool(url: &str, pool: PoolConfig, form: Arc<dyn EventForm>) -> Result<Self, StoreError> {
        Ok(SqlStore::new(PgBackend::pool(url, pool)?, form))
    }
}

impl PgBackend {
    fn pool(url: &str, pool: PoolConfig) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool.size.max(1))
            // The timeouts need a runtime to time them (deadpool's `rt_tokio_1`, on by default).
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(pool.acquire_timeout))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(PgBackend { pool })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(7269342); \
             CREATE TABLE IF NOT EXISTS coupond_migrations \
               (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
        for (version, sql) in MIGRATIONS {
            let applied = tx
                .query_opt("SELECT version FROM coupond_migrations WHERE version = $1", &[version])
                .await?;
            if applied.is_none() {
                tx.batch_execute(sql).await?;
                tx.execute("INSERT INTO coupond_migrations (version) VALUES ($1)", &[version])
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

fn retryable(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    match e {
        StoreError::Postgres(e) => matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        ),
        _ => false,
    }
}

/// The settings that give a transaction's statements a script's planning.
fn planner_settings(planning: Planning) -> Option<&'static str> {
    match planning {
        Planning::Cached => None,
        // The cached statements keep their parsed text; only their plans are made anew.
        Planning::Fresh => Some("SET LOCAL plan_cache_mode = force_custom_plan"),
        // Without bitmaps or sorts, an ordered index scan is the one plan left for `ORDER BY ... LIMIT`.
        Planning::IndexOrder => Some("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off"),
    }
}

impl Backend for PgBackend {
    async fn write<S: Script>(&self, script: S) -> Result<S::Out, StoreError> {
        let mut attempt = 1;
        loop {
            let open = Open::begin(self.pool.get().await?, "BEGIN", S::PLANNING).await?;
            let tx = PgTx::within(open.client());
            let outcome = script.run(&tx).await;
            let ended = tx.ended.load(Ordering::Relaxed);
            match open.end(outcome, ended).await {
                Err(e) if retryable(&e) && attempt < ATTEMPTS => attempt += 1,
                done => break done,
            }
        }
    }

    /// Outside a transaction: a read of one statement is one round trip.
    async fn read<S: Script>(&self, script: S) -> Result<S::Out, StoreError> {
        let client = self.pool.get().await?;
        if planner_settings(S::PLANNING).is_none() {
            return script.run(&PgTx::outside(&client)).await;
        }
        // Planner settings hold for a transaction: a read-only one, for them alone.
        let open = Open::begin(client, "BEGIN READ ONLY", S::PLANNING).await?;
        let outcome = script.run(&PgTx::within(open.client())).await;
        open.end(outcome, false).await
    }

    async fn analyze_codes(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.batch_execute("ANALYZE codes").await?;
        Ok(())
    }

    fn connections(&self) -> Connections {
        let status = self.pool.status();
        Connections {
            in_use: status.size.saturating_sub(status.available),
            idle: status.available,
            waiting: status.waiting,
        }
    }
}

/// A transaction begun by hand on a pooled connection, so that it begins with its planner settings
/// in one round trip and can end with its last statement in another (see [`Tx::exec_last`]).
/// Dropped before it ended (a cancelled future), it takes its connection out of the pool and
/// closes it, which rolls the transaction back, rather than hand on a connection mid-transaction.
struct Open {
    client: Option<Object>,
}

impl Open {
    async fn begin(client: Object, begin: &str, planning: Planning) -> Result<Self, StoreError> {
        let open = Open { client: Some(client) };
        match planner_settings(planning) {
            Some(settings) => open.client().batch_execute(&format!("{begin}; {settings}")).await?,
            None => open.client().batch_execute(begin).await?,
        }
        Ok(open)
    }

    fn client(&self) -> &Object {
        self.client.as_ref().expect("a connection until the transaction ends")
    }

    /// Commits on `Ok` and rolls back on `Err`, unless the script's last statement already ended
    /// the transaction (`ended`).
    async fn end<T>(mut self, outcome: Result<T, StoreError>, ended: bool) -> Result<T, StoreError> {
        let outcome = match (outcome, ended) {
            (outcome, true) => outcome,
            (Ok(v), false) => self
                .client()
                .batch_execute("COMMIT")
                .await
                .map(|_| v)
                .map_err(StoreError::from),
            (Err(e), false) => {
                // A connection that cannot roll back is closed instead, by the drop below.
                if self.client().batch_execute("ROLLBACK").await.is_ok() {
                    self.client = None;
                }
                return Err(e);
            }
        };
        // Ended either way: the connection goes back to the pool.
        self.client = None;
        outcome
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// The statements of a transaction, or of a pooled connection for reads outside one.
pub(crate) struct PgTx<'a> {
    client: &'a Object,
    in_transaction: bool,
    /// Set once [`Tx::exec_last`] has sent COMMIT.
    ended: AtomicBool,
}

impl<'a> PgTx<'a> {
    fn within(client: &'a Object) -> Self {
        PgTx {
            client,
            in_transaction: true,
            ended: AtomicBool::new(false),
        }
    }

    fn outside(client: &'a Object) -> Self {
        PgTx {
            in_transaction: false,
            ..PgTx::within(client)
        }
    }

    async fn statement(&self, q: Q) -> Result<Statement, StoreError> {
        Ok(self.client.prepare_cached(sql::sql(q)).await?)
    }
}

fn params<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

impl Tx for PgTx<'_> {
    type Row = Row;

    async fn query(&self, q: Q, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        let (stmt, params) = (self.statement(q).await?, params(args));
        Ok(self.client.query(&stmt, &params).await?)
    }

    async fn exec(&self, q: Q, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let (stmt, params) = (self.statement(q).await?, params(args));
        Ok(self.client.execute(&stmt, &params).await?)
    }

    /// The statement and COMMIT go out together; if the statement fails, the server turns the
    /// COMMIT into a rollback, and the statement's error is the answer.
    async fn exec_last(&self, q: Q, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        if !self.in_transaction {
            return self.exec(q, args).await;
        }
        let (stmt, params) = (self.statement(q).await?, params(args));
        let (written, committed) =
            futures::join!(self.client.execute(&stmt, &params), self.client.batch_execute("COMMIT"));
        self.ended.store(true, Ordering::Relaxed);
        let written = written?;
        committed?;
        Ok(written)
    }

    fn text_query(words: &[String]) -> String {
        words.join(" ")
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Arg::I64(v) => v.to_sql(ty, out),
            Arg::Str(v) => v.to_sql(ty, out),
            Arg::Uuid(v) => v.to_sql(ty, out),
            Arg::I64s(v) => v.to_sql(ty, out),
            Arg::Strs(v) => v.to_sql(ty, out),
            Arg::Strings(v) => v.to_sql(ty, out),
            Arg::MaybeStrs(v) => v.to_sql(ty, out),
            Arg::Uuids(v) => v.to_sql(ty, out),
        }
    }

    /// Each variant's own type is checked in `to_sql_checked`.
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Arg::I64(v) => v.to_sql_checked(ty, out),
            Arg::Str(v) => v.to_sql_checked(ty, out),
            Arg::Uuid(v) => v.to_sql_checked(ty, out),
            Arg::I64s(v) => v.to_sql_checked(ty, out),
            Arg::Strs(v) => v.to_sql_checked(ty, out),
            Arg::Strings(v) => v.to_sql_checked(ty, out),
            Arg::MaybeStrs(v) => v.to_sql_checked(ty, out),
            Arg::Uuids(v) => v.to_sql_checked(ty, out),
        }
    }
}

impl Fields for Row {
    fn i64(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn string(&self, col: &str) -> Result<String, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn uuid(&self, col: &str) -> Result<Uuid, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn bool(&self, col: &str) -> Result<bool, StoreError> {
        Ok(self.try_get(col)?)
    }
}
