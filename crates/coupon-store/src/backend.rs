//! What a backend supplies to the transaction scripts, and nothing more: connections, transactions
//! with their retry rules, and the SQL text of each named statement in its dialect.
//!
//! A script gives a statement and its arguments together, each argument under its parameter's
//! name ([`Q`]); the backend binds them in the order the statement declares them, the order its
//! text's placeholders were numbered in (`crate::statements`).
//!
//! A script (`crate::script`) is one async function generic over [`Tx`]. On PostgreSQL its
//! statements go over the network, and the ones a script awaits together (`try_join!`) are
//! pipelined on the connection. On SQLite each statement runs the moment the script issues it, on
//! the thread that holds the connection, and its future is already complete: the same script then
//! runs straight through, with nothing to wait on.

use std::future::Future;

use futures::TryFutureExt;
use uuid::Uuid;

use crate::statements::Q;
use crate::{Connections, StoreError};

/// One argument of a statement, in the form both drivers bind, named by the statement's parameter
/// it is given for (`Q::UseCode { code_id: id.into(), .. }`). Lists bind as arrays on PostgreSQL
/// and as JSON arrays (read with `json_each`) on SQLite.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    I64(Option<i64>),
    Str(Option<&'a str>),
    Uuid(Option<Uuid>),
    I64s(&'a [i64]),
    Strs(&'a [&'a str]),
    /// Texts some of which are NULL.
    MaybeStrs(&'a [Option<&'a str>]),
    Strings(&'a [String]),
    Uuids(&'a [Uuid]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::I64(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::I64(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Str(Some(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Str(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Str(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Str(v.as_deref())
    }
}

impl From<Uuid> for Arg<'_> {
    fn from(v: Uuid) -> Self {
        Arg::Uuid(Some(v))
    }
}

impl From<Option<Uuid>> for Arg<'_> {
    fn from(v: Option<Uuid>) -> Self {
        Arg::Uuid(v)
    }
}

impl<'a> From<&'a [i64]> for Arg<'a> {
    fn from(v: &'a [i64]) -> Self {
        Arg::I64s(v)
    }
}

impl<'a> From<&'a [&'a str]> for Arg<'a> {
    fn from(v: &'a [&'a str]) -> Self {
        Arg::Strs(v)
    }
}

impl<'a> From<&'a [Option<&'a str>]> for Arg<'a> {
    fn from(v: &'a [Option<&'a str>]) -> Self {
        Arg::MaybeStrs(v)
    }
}

impl<'a> From<&'a [Uuid]> for Arg<'a> {
    fn from(v: &'a [Uuid]) -> Self {
        Arg::Uuids(v)
    }
}

impl<'a> From<&'a [String]> for Arg<'a> {
    fn from(v: &'a [String]) -> Self {
        Arg::Strings(v)
    }
}

/// Typed access to one row's columns by name.
pub(crate) trait Fields {
    fn i64(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn string(&self, col: &str) -> Result<String, StoreError>;
    fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn uuid(&self, col: &str) -> Result<Uuid, StoreError>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError>;
    fn bool(&self, col: &str) -> Result<bool, StoreError>;
}

/// A transaction (or, for reads, a connection outside one) that runs named statements, each with
/// its arguments by name ([`Q`]), bound in the order the statement declares them.
pub(crate) trait Tx: Sync {
    type Row: Fields + Send;

    fn query(&self, q: Q<'_>) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    fn exec(&self, q: Q<'_>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The transaction's last statement: nothing may follow it. PostgreSQL sends COMMIT with it,
    /// one round trip instead of two at the end of every write that records events (for a claim
    /// batch, under the book's lock); elsewhere it is a statement like any other and the backend
    /// commits after the script.
    fn exec_last(&self, q: Q<'_>) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.exec(q)
    }

    /// The search words as this dialect's full-text query parameter.
    fn text_query(words: &[String]) -> String;

    /// The first row of a statement, if any.
    fn first(&self, q: Q<'_>) -> impl Future<Output = Result<Option<Self::Row>, StoreError>> + Send {
        // A combinator, not an async block: that would hold the query's future twice over.
        self.query(q).map_ok(|rows| rows.into_iter().next())
    }
}

/// How the planner treats a script's statements, whatever its statistics say: autovacuum may not
/// run within a sale, so the statistics may be of when the tables were small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Planning {
    /// The plans kept with the prepared statements: per-request statements.
    Cached,
    /// Planned afresh each time, for their parameters and the tables' current size: a set-based
    /// batch affords the planning, and a plan kept from when the tables were small costs it more.
    Fresh,
    /// Walked in index order rather than gathered and sorted: a queue read `ORDER BY ... LIMIT`
    /// from a table that grows by thousands of rows a second, where a plan from statistics of
    /// when it was small sorts every queued row to take the first few.
    IndexOrder,
}

/// One operation's work inside one transaction, written once in `crate::script`. A backend may
/// run it more than once (PostgreSQL, after a deadlock), so it reads its inputs by reference.
pub(crate) trait Script: Send + 'static {
    type Out: Send + 'static;

    const PLANNING: Planning = Planning::Cached;

    fn run<T: Tx>(&self, tx: &T) -> impl Future<Output = Result<Self::Out, StoreError>> + Send;
}

/// Connections and transactions. `write` runs a script in one transaction that commits on `Ok`
/// and rolls back on `Err`; `read` runs it on a connection that sees one consistent state.
pub(crate) trait Backend: Send + Sync + 'static {
    fn write<S: Script>(&self, script: S) -> impl Future<Output = Result<S::Out, StoreError>> + Send;
    fn read<S: Script>(&self, script: S) -> impl Future<Output = Result<S::Out, StoreError>> + Send;
    /// Brings the planner's statistics up to date after a bulk load of codes, so a sale that starts
    /// the moment a book is published is planned for the codes it has.
    fn analyze_codes(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// How busy the backend's pool of connections is now.
    fn connections(&self) -> Connections;
}
