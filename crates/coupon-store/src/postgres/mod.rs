//! The production backend: PostgreSQL through a deadpool of tokio-postgres connections with cached
//! prepared statements. Transactions run at READ COMMITTED; the rows a decision rests on are read
//! `FOR UPDATE` (claims of one book queue on the book's row by design: one batch per book writes
//! at a time), and every write is still a conditional update whose row count is checked. A
//! transaction that hits a deadlock or serialization failure is run again.

mod bind;
pub(crate) mod sql;
mod tx;

use tx::{Open, PgTx};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::backend::{Backend, Planning, Script};
use crate::{Connections, PoolConfig, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_deal_cursor.sql")),
    (3, include_str!("migrations/0003_operations.sql")),
    (4, include_str!("migrations/0004_events.sql")),
    (5, include_str!("migrations/0005_webhooks.sql")),
    (6, include_str!("migrations/0006_idempotency.sql")),
];
/// How long opening a new connection may take before the request fails.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Runs of one transaction after a deadlock or serialization failure, before giving up.
const ATTEMPTS: usize = 4;

pub struct PgBackend {
    pool: Pool,
}

impl PgBackend {
    /// Connects and applies the migrations (serialized across instances by an advisory lock).
    pub(crate) async fn connect(url: &str, pool: PoolConfig) -> Result<Self, StoreError> {
        let backend = PgBackend::pool(url, pool)?;
        backend.migrate().await?;
        Ok(backend)
    }

    /// A pool on a database that is already migrated; connections open when first used.
    pub(crate) fn pool(url: &str, pool: PoolConfig) -> Result<Self, StoreError> {
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

/// What begins a transaction: `begin` and the script's planner settings, sent as one query.
fn begin(begin: &str, planning: Planning) -> String {
    match planner_settings(planning) {
        Some(settings) => format!("{begin}; {settings}"),
        None => begin.to_owned(),
    }
}

impl Backend for PgBackend {
    async fn write<S: Script>(&self, script: S) -> Result<S::Out, StoreError> {
        let mut attempt = 1;
        loop {
            let open = Open::new(self.pool.get().await?);
            let tx = PgTx::within(open.client(), begin("BEGIN", S::PLANNING));
            let outcome = script.run(&tx).await;
            let phase = tx.phase();
            match open.end(outcome, phase).await {
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
        let open = Open::new(client);
        let tx = PgTx::within(open.client(), begin("BEGIN READ ONLY", S::PLANNING));
        let outcome = script.run(&tx).await;
        let phase = tx.phase();
        open.end(outcome, phase).await
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
