//! Opening a store from its URL: the backend it names, migrated, and the service `coupond serve`
//! runs on it.

use std::time::Duration;

use crate::{postgres, sqlite, Background, Coupons, Store, StoreError, Strategy};

/// How many connections a backend keeps and how long a request waits for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// PostgreSQL connections per pool (SQLite keeps its own few readers and one writer).
    pub size: usize,
    /// How long a request waits for a free connection (PostgreSQL) or reader (SQLite) before it
    /// fails with [`StoreError::Unavailable`]: under saturation a quick refusal the client may
    /// retry beats a queue that grows until every request times out.
    pub acquire_timeout: Duration,
}

impl PoolConfig {
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

    /// `size` connections, with the default acquire timeout.
    pub fn sized(size: usize) -> Self {
        PoolConfig {
            size,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
        }
    }
}

/// Opens (and migrates) the backend named by the URL: `postgres://…`/`postgresql://…`, or
/// `sqlite://path` (`sqlite://coupond.db` is a file in the working directory). This is the
/// store for tools and tests; requests go through [`Coupons`] ([`open`]).
pub async fn connect(url: &str, pool_size: usize) -> Result<Store, StoreError> {
    connect_with(url, PoolConfig::sized(pool_size)).await
}

/// [`connect`] with the pool's acquire timeout too.
pub async fn connect_with(url: &str, pool: PoolConfig) -> Result<Store, StoreError> {
    if is_postgres(url) {
        Ok(Store::new(postgres::PgBackend::connect(url, pool).await?))
    } else if let Some(path) = sqlite::path_from_url(url) {
        Ok(Store::new(
            sqlite::SqliteBackend::open(path, pool.acquire_timeout).await?,
        ))
    } else {
        Err(StoreError::Config(
            "the database URL must be postgres://…, postgresql://… or sqlite://<file path>".into(),
        ))
    }
}

/// Opens the service as `coupond serve` runs it: the backend named by the URL (migrated), with
/// claims, locks, unlocks and redemptions batched by the claim engine or run one per transaction.
/// On PostgreSQL the engine's batches get a pool of their own, opened on the engine's thread;
/// SQLite's one writer is shared.
pub async fn open(
    url: &str,
    pool: PoolConfig,
    strategy: Strategy,
    background: &Background,
) -> Result<Coupons, StoreError> {
    let store = connect_with(url, pool).await?;
    match strategy {
        Strategy::Naive => Ok(Coupons::naive(store)),
        Strategy::Batched if is_postgres(url) => {
            // `connect` migrated the database; this pool only opens connections.
            let writes = Store::new(postgres::PgBackend::pool(url, pool)?);
            Coupons::batched(store, writes, background)
        }
        Strategy::Batched => Coupons::batched(store.clone(), store, background),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Applies the backend's migrations without starting anything else (`coupond migrate`).
pub async fn migrate(url: &str) -> Result<(), StoreError> {
    connect(url, 1).await.map(|_| ())
}
