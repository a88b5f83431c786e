//! A transaction on the one connection a thread holds: `BEGIN IMMEDIATE` for a write (SQLite admits
//! one writer at a time, and this connection is it), `BEGIN DEFERRED` for a read of one snapshot.
//! Each statement runs the moment the script issues it, so the script runs straight through.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use rusqlite::types::Value;
use rusqlite::Connection;

use super::bind::SqliteRow;
use super::{sql, Role};
use crate::backend::{Script, Tx};
use crate::statements::Q;
use crate::StoreError;

/// A connection inside a transaction. Each statement runs when the script issues it, so the
/// script's futures are complete by the time they are polled.
pub(crate) struct SqliteTx {
    // Locked per statement, by the one thread running the script: a Mutex only makes it `Sync`.
    pub(super) conn: Mutex<Connection>,
}

impl SqliteTx {
    pub(super) fn transaction<S: Script>(&self, role: Role, script: &S) -> Result<S::Out, StoreError> {
        let begin = match role {
            Role::Writer => "BEGIN IMMEDIATE",
            // One snapshot for a read of several statements.
            Role::Reader => "BEGIN DEFERRED",
        };
        self.batch(begin)?;
        match run_ready(script.run(self)) {
            Ok(out) if role == Role::Writer => match self.batch("COMMIT") {
                Ok(()) => Ok(out),
                Err(e) => {
                    let _ = self.batch("ROLLBACK");
                    Err(e)
                }
            },
            outcome => {
                self.batch("ROLLBACK")?;
                outcome
            }
        }
    }

    pub(super) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(conn.execute_batch(sql)?)
    }

    fn query_now(&self, q: Q<'_>) -> Result<Vec<SqliteRow>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn.prepare_cached(sql::sql(q.name()))?;
        let names: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let mut rows = q.args(|args| stmt.query(rusqlite::params_from_iter(args)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..names.len())
                .map(|i| row.get::<_, Value>(i))
                .collect::<Result<_, _>>()?;
            out.push(SqliteRow {
                names: names.clone(),
                values,
            });
        }
        Ok(out)
    }

    fn exec_now(&self, q: Q<'_>) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn.prepare_cached(sql::sql(q.name()))?;
        Ok(q.args(|args| stmt.execute(rusqlite::params_from_iter(args)))? as u64)
    }
}

/// Drives a script whose every statement has already run to its end. Futures that yield to be
/// fair (`join_all` over many) are polled again; one that truly waits is a bug, reported as such.
fn run_ready<T>(script: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let mut script = pin!(script);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(out) = script.as_mut().poll(&mut cx) {
            return out;
        }
    }
    Err(StoreError::Task(
        "a SQLite script waited on something other than its statements".into(),
    ))
}

impl Tx for SqliteTx {
    type Row = SqliteRow;

    fn query(&self, q: Q<'_>) -> impl Future<Output = Result<Vec<SqliteRow>, StoreError>> + Send {
        std::future::ready(self.query_now(q))
    }

    fn exec(&self, q: Q<'_>) -> impl Future<Output = Result<u64, StoreError>> + Send {
        std::future::ready(self.exec_now(q))
    }

    fn text_query(words: &[String]) -> String {
        // Each word quoted: FTS5 reads it as a plain term, never as query syntax.
        words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" ")
    }
}
