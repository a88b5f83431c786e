//! The production backend: PostgreSQL through a deadpool of tokio-postgres connections with cached
//! prepared statements. Transactions run at READ COMMITTED; the state a decision rests on is read
//! with `FOR UPDATE`, free codes are picked with `FOR UPDATE SKIP LOCKED` so concurrent claims never
//! queue behind one another, and every write is still a conditional update whose row count is
//! checked. A transaction that hits a deadlock or serialization failure is run again.

mod books;
mod claims;
mod codes;

use async_trait::async_trait;
use coupon_core::{Book, BookDraft, BookPatch, BookStats, CodeInstance, CodePattern, CodeText, Redemption, Timestamp};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::rows::{self, Fields};
use crate::{
    settle, AddedCodes, BatchResult, ClaimRequest, Claimed, CodeView, LockRequest, Locked, RedeemRequest, SearchPage,
    SearchQuery, Stock, Store, StoreError, UnlockRequest,
};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_deal_cursor.sql")),
];
/// How long a request waits for a connection, or for a new one to open, before failing.
const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Runs of one transaction after a deadlock or serialization failure, before giving up.
const ATTEMPTS: usize = 4;

pub struct PgStore {
    pool: Pool,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The first row of a cached statement, if any.
pub(crate) async fn opt(tx: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&stmt, params).await?)
}

pub(crate) async fn all(tx: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query(&stmt, params).await?)
}

pub(crate) async fn exec(tx: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&stmt, params).await?)
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

/// Runs `$body` in one transaction bound to `$tx`, committing on `Ok` and rolling back on `Err`,
/// and runs it again after a deadlock or serialization failure.
macro_rules! in_tx {
    ($store:expr, $tx:ident => $body:expr) => {{
        let mut attempt = 1;
        loop {
            let mut client = $store.pool.get().await?;
            let $tx = client.transaction().await?;
            let outcome: Result<_, StoreError> = async { $body }.await;
            let outcome = match outcome {
                Ok(v) => $tx.commit().await.map(|_| v).map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) if retryable(&e) && attempt < ATTEMPTS => attempt += 1,
                done => break done,
            }
        }
    }};
}

/// Runs `$body` on a pooled connection outside any transaction: one round trip for a read that is
/// one statement.
macro_rules! read {
    ($store:expr, $client:ident => $body:expr) => {{
        let $client = $store.pool.get().await?;
        let outcome: Result<_, StoreError> = async { $body }.await;
        outcome
    }};
}

/// Runs a batch's requests inside one transaction, all at once: their statements are pipelined on
/// the connection instead of waiting a round trip each. Requests of one batch that touch the same
/// rows cannot corrupt anything (every write is guarded); the loser's guard fails, the batch rolls
/// back, and the engine runs its requests one by one.
macro_rules! batch {
    ($store:expr, $batch:expr, $op:path, $now:expr) => {
        in_tx!($store, tx => {
            let tx = &tx;
            let outcomes = futures::future::join_all($batch.iter().map(|req| $op(tx, req, $now))).await;
            outcomes.into_iter().map(settle).collect::<Result<Vec<_>, _>>()
        })
    };
}

impl PgStore {
    /// Connects and applies the migrations (serialized across instances by an advisory lock).
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let store = PgStore::pool(url, pool_size)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A pool on a database that is already migrated; connections open when first used.
    pub fn pool(url: &str, pool_size: usize) -> Result<Self, StoreError> {
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
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(PgStore { pool })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        in_tx!(self, tx => {
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
                    tx.execute("INSERT INTO coupond_migrations (version) VALUES ($1)", &[version]).await?;
                }
            }
            Ok(())
        })
    }
}

impl Fields for Row {
    fn i64(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn string(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_string(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        Ok(self.try_get(i)?)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_book(&self, draft: BookDraft) -> Result<Book, StoreError> {
        in_tx!(self, tx => books::create(&tx, &draft).await)
    }

    async fn book(&self, id: Uuid) -> Result<Book, StoreError> {
        read!(self, c => books::load(&c, id).await?.ok_or(StoreError::not_found("coupon book")))
    }

    async fn update_book(&self, id: Uuid, patch: BookPatch, now: Timestamp) -> Result<Book, StoreError> {
        in_tx!(self, tx => books::update(&tx, id, patch.clone(), now).await)
    }

    async fn book_with_stats(&self, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
        in_tx!(self, tx => books::with_stats(&tx, id, now).await)
    }

    async fn add_codes(&self, book_id: Uuid, codes: Vec<String>) -> Result<AddedCodes, StoreError> {
        in_tx!(self, tx => books::add_codes(&tx, book_id, codes.clone()).await)
    }

    async fn generate_codes(&self, book_id: Uuid, pattern: Option<CodePattern>, count: u64) -> Result<u64, StoreError> {
        in_tx!(self, tx => books::generate_codes(&tx, book_id, pattern.clone(), count).await)
    }

    async fn search_books(&self, query: SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
        read!(self, c => books::search(&c, &query, now).await)
    }

    async fn claim(&self, batch: Vec<ClaimRequest>, now: Timestamp) -> BatchResult<Claimed> {
        in_tx!(self, tx => claims::claim(&tx, &batch, now).await)
    }

    async fn stock(&self, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError> {
        read!(self, c => {
            let row = opt(&c, &rows::stock_sql("$1", "$2"), &[&book_id, &now.millis()])
                .await?
                .ok_or(StoreError::not_found("coupon book"))?;
            Ok((rows::book(&row, 0)?, Stock::from_row(row.try_get(25)?, row.opt_i64(26)?)))
        })
    }

    async fn lock(&self, batch: Vec<LockRequest>, now: Timestamp) -> BatchResult<Locked> {
        batch!(self, batch, codes::lock, now)
    }

    async fn unlock(&self, batch: Vec<UnlockRequest>, now: Timestamp) -> BatchResult<()> {
        batch!(self, batch, codes::unlock, now)
    }

    async fn redeem(&self, batch: Vec<RedeemRequest>, now: Timestamp) -> BatchResult<Redemption> {
        batch!(self, batch, codes::redeem, now)
    }

    async fn code_view(&self, code: &CodeText, user_id: &str, lock_id: Option<Uuid>) -> Result<CodeView, StoreError> {
        read!(self, c => codes::view(&c, code, user_id, lock_id).await)
    }

    async fn user_codes(&self, user_id: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
        read!(self, c => codes::of_user(&c, user_id).await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }
}
