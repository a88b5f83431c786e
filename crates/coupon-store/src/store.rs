//! The store: one database, whichever backend serves it. A write runs its script in one
//! transaction, with the events of its changes; a read runs on a connection that sees one
//! consistent state. Every operation reaches the database through these two calls, so what
//! concerns every write (its events today) is written once, here and in `outbox`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::backend::{Backend, Script};
use crate::idempotency::Keyed;
use crate::outbox::{KeyedWrite, Outboxed, Recorded};
use crate::postgres::PgBackend;
use crate::script::idempotency;
use crate::sqlite::SqliteBackend;
use crate::{Connections, StoreError};

/// After this many codes were loaded (created, uploaded or generated) the planner's statistics are
/// refreshed: a sale that starts the moment its book exists must not be planned as if the book
/// were empty, and autovacuum comes a minute too late for that.
const BULK_LOAD: u64 = 10_000;

/// A handle on one database; clones share its connections.
#[derive(Clone)]
pub struct Store(Arc<Inner>);

struct Inner {
    backend: Database,
    /// Codes loaded through this store since its last refresh of the statistics.
    loaded: AtomicU64,
}

/// The backend the URL named.
pub(crate) enum Database {
    Postgres(PgBackend),
    Sqlite(SqliteBackend),
}

impl From<PgBackend> for Database {
    fn from(backend: PgBackend) -> Self {
        Database::Postgres(backend)
    }
}

impl From<SqliteBackend> for Database {
    fn from(backend: SqliteBackend) -> Self {
        Database::Sqlite(backend)
    }
}

impl Store {
    pub(crate) fn new(backend: impl Into<Database>) -> Self {
        Store(Arc::new(Inner {
            backend: backend.into(),
            loaded: AtomicU64::new(0),
        }))
    }

    /// Runs a write in one transaction, with the events of its changes.
    pub(crate) async fn write<S: Recorded>(&self, script: S) -> Result<S::Out, StoreError> {
        let script = Outboxed(script);
        match &self.0.backend {
            Database::Postgres(b) => b.write(script).await,
            Database::Sqlite(b) => b.write(script).await,
        }
    }

    /// [`Store::write`] for a request with an idempotency key: its answer is recorded with its
    /// changes; a refusal, whose transaction rolled back, is recorded in one of its own.
    pub(crate) async fn write_keyed<S: Recorded>(
        &self,
        script: S,
        key: Option<Keyed<S::Out>>,
    ) -> Result<S::Out, StoreError> {
        let Some(key) = key else {
            return self.write(script).await;
        };
        match self
            .write(KeyedWrite {
                script,
                key: key.clone(),
            })
            .await
        {
            Err(StoreError::Rejected(refusal)) => {
                let records = vec![key.record(Err(&refusal))];
                self.write(idempotency::RecordRefusal { records }).await?;
                Err(StoreError::Rejected(refusal))
            }
            answer => answer,
        }
    }

    /// Runs a read on one connection.
    pub(crate) async fn read<S: Script>(&self, script: S) -> Result<S::Out, StoreError> {
        match &self.0.backend {
            Database::Postgres(b) => b.read(script).await,
            Database::Sqlite(b) => b.read(script).await,
        }
    }

    /// Counts codes loaded by a part of a bulk load that goes on: its last part refreshes the
    /// statistics if the load passed `BULK_LOAD` ([`Store::loaded`]).
    pub(crate) fn loading(&self, codes: u64) {
        self.0.loaded.fetch_add(codes, Ordering::AcqRel);
    }

    /// Counts loaded codes; past `BULK_LOAD`, refreshes the statistics before the load is answered.
    /// The load has committed by then: a failed refresh is logged, not reported as a failed load.
    pub(crate) async fn loaded(&self, codes: u64) {
        let before = self.0.loaded.fetch_add(codes, Ordering::AcqRel);
        if before + codes >= BULK_LOAD && self.0.loaded.swap(0, Ordering::AcqRel) > 0 {
            let analyzed = match &self.0.backend {
                Database::Postgres(b) => b.analyze_codes().await,
                Database::Sqlite(b) => b.analyze_codes().await,
            };
            if let Err(e) = analyzed {
                tracing::warn!(error = %e, "refreshing the planner's statistics failed");
            }
        }
    }

    /// Whether the database, not just a pooled connection, answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(crate::script::Ping {}).await
    }

    /// How busy the store's connections are now.
    pub fn connections(&self) -> Connections {
        match &self.0.backend {
            Database::Postgres(b) => b.connections(),
            Database::Sqlite(b) => b.connections(),
        }
    }

    /// Whether two handles share their connections.
    pub(crate) fn same(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
