//! Transactions begun and ended by hand on a pooled connection, to spare round trips: a
//! transaction's `BEGIN` (with its planner settings) goes out with its first statement, and its
//! last statement ([`Tx::exec_last`], a write's events) with its `COMMIT`. tokio-postgres sends
//! requests in the order they are first polled, and the server runs them in that order, so a
//! statement sent right behind `BEGIN` runs inside the transaction.

use std::future::Future;
use std::sync::Mutex;

use deadpool_postgres::Object;
use futures::TryStreamExt;
use tokio_postgres::{Row, Statement};

use super::sql;
use crate::backend::{Arg, Tx};
use crate::statements::Q;
use crate::StoreError;

/// How far a transaction has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// Nothing sent yet: this `BEGIN` goes out with the first statement.
    Unbegun(String),
    Open,
    /// Its last statement went out with `COMMIT`.
    Ended,
}

/// A pooled connection holding a transaction. Dropped before the transaction ended (a cancelled
/// future), it takes the connection out of the pool and closes it, which rolls the transaction
/// back, rather than hand on a connection mid-transaction.
pub(super) struct Open {
    client: Option<Object>,
}

impl Open {
    pub(super) fn new(client: Object) -> Self {
        Open { client: Some(client) }
    }

    pub(super) fn client(&self) -> &Object {
        self.client.as_ref().expect("a connection until the transaction ends")
    }

    /// Commits on `Ok` and rolls back on `Err`, unless the transaction never began or its last
    /// statement already ended it.
    pub(super) async fn end<T>(mut self, outcome: Result<T, StoreError>, phase: Phase) -> Result<T, StoreError> {
        let outcome = match (outcome, phase) {
            (outcome, Phase::Unbegun(_) | Phase::Ended) => outcome,
            (Ok(v), Phase::Open) => self
                .client()
                .batch_execute("COMMIT")
                .await
                .map(|_| v)
                .map_err(StoreError::from),
            (Err(e), Phase::Open) => {
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
    /// `None` outside a transaction.
    phase: Option<Mutex<Phase>>,
}

impl<'a> PgTx<'a> {
    pub(super) fn within(client: &'a Object, begin: String) -> Self {
        PgTx {
            client,
            phase: Some(Mutex::new(Phase::Unbegun(begin))),
        }
    }

    pub(super) fn outside(client: &'a Object) -> Self {
        PgTx { client, phase: None }
    }

    pub(super) fn phase(&self) -> Phase {
        match &self.phase {
            Some(phase) => phase.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => Phase::Ended,
        }
    }

    async fn statement(&self, text: &str) -> Result<Statement, StoreError> {
        Ok(self.client.prepare_cached(text).await?)
    }

    /// Sends `statement`, behind `BEGIN` if it is the transaction's first and ahead of `COMMIT` if
    /// it is its `last`, all in one round trip. A statement that fails aborts the transaction, and
    /// the server answers the `COMMIT` behind it with a rollback.
    async fn send<T>(
        &self,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
        last: bool,
    ) -> Result<T, StoreError> {
        let Some(phase) = &self.phase else {
            return Ok(statement.await?);
        };
        let begin = {
            let mut phase = phase.lock().unwrap_or_else(|e| e.into_inner());
            let next = if last { Phase::Ended } else { Phase::Open };
            match std::mem::replace(&mut *phase, next) {
                Phase::Unbegun(begin) => Some(begin),
                Phase::Open => None,
                Phase::Ended => {
                    *phase = Phase::Ended;
                    return Err(StoreError::Conflict("a statement after the transaction's last"));
                }
            }
        };
        // Polled in this order, so sent in this order.
        let (begun, out, committed) = futures::join!(
            async {
                match &begin {
                    Some(begin) => self.client.batch_execute(begin).await,
                    None => Ok(()),
                }
            },
            statement,
            async {
                match last {
                    true => self.client.batch_execute("COMMIT").await,
                    false => Ok(()),
                }
            }
        );
        begun?;
        let out = out?;
        committed?;
        Ok(out)
    }
}

/// A statement's text and its arguments in declared order, taken off the statement when it is
/// issued so its future holds only what it binds. The arguments go by value: each is then
/// checked against its parameter's type as it is bound (`Arg::to_sql_checked`).
fn bound<'a>(q: Q<'a>) -> (&'static str, Vec<Arg<'a>>) {
    (sql::sql(q.name()), q.args(<[Arg]>::to_vec))
}

impl Tx for PgTx<'_> {
    type Row = Row;

    fn query(&self, q: Q<'_>) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send {
        let (text, args) = bound(q);
        async move {
            let stmt = self.statement(text).await?;
            let rows = async {
                self.client
                    .query_raw(&stmt, args.iter().copied())
                    .await?
                    .try_collect()
                    .await
            };
            self.send(rows, false).await
        }
    }

    fn exec(&self, q: Q<'_>) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let (text, args) = bound(q);
        async move {
            let stmt = self.statement(text).await?;
            self.send(self.client.execute_raw(&stmt, args.iter().copied()), false)
                .await
        }
    }

    fn exec_last(&self, q: Q<'_>) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let (text, args) = bound(q);
        async move {
            let stmt = self.statement(text).await?;
            self.send(self.client.execute_raw(&stmt, args.iter().copied()), true)
                .await
        }
    }

    fn text_query(words: &[String]) -> String {
        words.join(" ")
    }
}

/// Against a real PostgreSQL: what a hand-made transaction commits, rolls back and leaves behind.
#[cfg(all(test, feature = "testing"))]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::postgres::PgBackend;
    use crate::testing::{Backend, TestDb};
    use crate::PoolConfig;

    /// One event's fields, its data `None` to break the insert (`data` is NOT NULL).
    async fn record(tx: &PgTx<'_>, data: Option<&str>, last: bool) -> Result<u64, StoreError> {
        let (ids, books) = ([Uuid::now_v7()], [Uuid::now_v7()]);
        let (types, times, none, data) = (["code.claimed"], [0i64], [None], [data]);
        let q = Q::RecordEvents {
            ids: ids.as_slice().into(),
            types: types.as_slice().into(),
            occurred_at: times.as_slice().into(),
            book_ids: books.as_slice().into(),
            codes: none.as_slice().into(),
            user_ids: none.as_slice().into(),
            data: data.as_slice().into(),
        };
        match last {
            true => tx.exec_last(q).await,
            false => tx.exec(q).await,
        }
    }

    #[tokio::test]
    async fn begun_with_the_first_statement_and_ended_with_the_last() {
        let db = TestDb::new(Backend::Postgres).await;
        let backend = PgBackend::pool(&db.url, PoolConfig::sized(2)).unwrap();
        backend.migrate().await.unwrap();
        let events = || db.scalar("SELECT count(*) FROM events");
        let open = || async { Open::new(backend.pool.get().await.unwrap()) };

        // A statement that ran behind BEGIN is rolled back with the transaction.
        let held = open().await;
        let tx = PgTx::within(held.client(), "BEGIN".into());
        assert_eq!(record(&tx, Some("{}"), false).await.unwrap(), 1);
        let phase = tx.phase();
        assert_eq!(phase, Phase::Open);
        let failed: Result<(), _> = held.end(Err(StoreError::Conflict("refused")), phase).await;
        assert!(failed.is_err());
        assert_eq!(events().await, 0, "rolled back");

        // The last statement commits with it.
        let held = open().await;
        let tx = PgTx::within(held.client(), "BEGIN".into());
        record(&tx, Some("{}"), false).await.unwrap();
        record(&tx, Some("{}"), true).await.unwrap();
        let phase = tx.phase();
        assert_eq!(phase, Phase::Ended);
        assert!(record(&tx, Some("{}"), false).await.is_err(), "nothing after the last");
        held.end(Ok(()), phase).await.unwrap();
        assert_eq!(events().await, 2, "committed");

        // A last statement that fails commits nothing before it, and the connection is clean.
        let held = open().await;
        let tx = PgTx::within(held.client(), "BEGIN".into());
        record(&tx, Some("{}"), false).await.unwrap();
        assert!(record(&tx, None, true).await.is_err(), "data is NOT NULL");
        let phase = tx.phase();
        held.end(Ok(()), phase).await.unwrap();
        assert_eq!(
            events().await,
            2,
            "the failed statement's transaction rolled back whole"
        );
        let stuck = "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND state LIKE 'idle in transaction%'";
        assert_eq!(db.scalar(stuck).await, 0, "no connection left in a transaction");

        // Dropped mid-transaction, the connection is closed rather than handed on.
        let before = backend.pool.status().size;
        let held = open().await;
        let tx = PgTx::within(held.client(), "BEGIN".into());
        record(&tx, Some("{}"), false).await.unwrap();
        drop(tx);
        drop(held);
        assert_eq!(backend.pool.status().size, before - 1, "its connection left the pool");
        assert_eq!(events().await, 2, "and its transaction did not commit");

        // Nothing sent, nothing to end.
        let held = open().await;
        let tx = PgTx::within(held.client(), "BEGIN".into());
        let phase = tx.phase();
        assert!(matches!(phase, Phase::Unbegun(_)));
        assert_eq!(held.end(Ok(7), phase).await.unwrap(), 7);
    }
}
