//! The transaction scripts: each operation's decision flow, written once for both backends, in a
//! file named after the operation. A script reads the rows its decision rests on, decides with
//! `coupon_core::rules`, and writes with guarded statements, through the named statements of
//! [`Tx`]; the backend supplies the transaction around it. Each operation is a value owning its
//! inputs, declared next to its script with [`read!`] or [`write!`], so a backend can run it on
//! another thread (SQLite) or run it again after a deadlock (PostgreSQL).

use std::future::Future;

use coupon_core::CouponError;

use crate::StoreError;

/// Declares a read: its inputs as fields, and the body that runs them on `tx`, a connection that
/// sees one consistent state (`crate::Store::read`).
macro_rules! read {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty = |$tx:ident, $s:ident| $body:expr) => {
        read!($(#[$doc])* $name { $($field: $ty),* } -> $out = |$tx, $s| $body; planning = crate::backend::Planning::Cached);
    };
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty = |$tx:ident, $s:ident| $body:expr;
        planning = $planning:expr) => {
        $(#[$doc])*
        pub(crate) struct $name { $(pub $field: $ty),* }

        impl crate::backend::Script for $name {
            type Out = $out;
            const PLANNING: crate::backend::Planning = $planning;

            fn run<T: crate::backend::Tx>(&self, $tx: &T) -> impl std::future::Future<Output = Result<$out, crate::StoreError>> + Send {
                let $s = self;
                async move { $body }
            }
        }
    };
}

/// Declares a write, which runs in one transaction and notes its changes in `events` (see
/// `crate::outbox`): its inputs as fields, and the body that runs them on `tx`
/// (`crate::Store::write`).
/// A batch's script names its requests with `keyed = batch`: the answers of those that carry an
/// idempotency key are recorded with the batch's changes.
macro_rules! write {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty =
        |$tx:ident, $s:ident, $events:ident| $body:expr) => {
        write!($(#[$doc])* $name { $($field: $ty),* } -> $out = |$tx, $s, $events| $body; planning = crate::backend::Planning::Cached);
    };
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty =
        |$tx:ident, $s:ident, $events:ident| $body:expr; keyed = $batch:ident) => {
        write!($(#[$doc])* $name { $($field: $ty),* } -> $out = |$tx, $s, $events| $body;
            planning = crate::backend::Planning::Cached; keyed = $batch);
    };
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty =
        |$tx:ident, $s:ident, $events:ident| $body:expr; planning = $planning:expr $(; keyed = $batch:ident)?) => {
        $(#[$doc])*
        pub(crate) struct $name { $(pub $field: $ty),* }

        impl crate::outbox::Recorded for $name {
            type Out = $out;
            const PLANNING: crate::backend::Planning = $planning;

            fn run<T: crate::backend::Tx>(&self, $tx: &T, $events: &crate::outbox::Journal)
                -> impl std::future::Future<Output = Result<$out, crate::StoreError>> + Send {
                let $s = self;
                async move { $body }
            }

            $(fn records(&self, out: &Self::Out) -> Vec<crate::idempotency::Record> {
                crate::idempotency::records(&self.$batch, out)
            })?
        }
    };
}

/// The value of a rule's verdict, or else the request's answer is that refusal: for the scripts of
/// one request in a batch, whose refusal is an answer ([`Decided`]), not a failure of the batch.
macro_rules! decide {
    ($verdict:expr) => {
        match $verdict {
            Ok(value) => value,
            Err(refusal) => return Ok(Err(refusal)),
        }
    };
}

pub(crate) mod book;
pub(crate) mod claim;
pub(crate) mod code;
pub(crate) mod event;
pub(crate) mod idempotency;
pub(crate) mod lapse;
pub(crate) mod lock;
pub(crate) mod pool;
pub(crate) mod redeem;
pub(crate) mod rollback;
pub(crate) mod stock;
pub(crate) mod webhook;

/// One request's outcome inside a batch: its own answer (a result or a refusal by the rules), or a
/// failure of the store, which fails the whole batch.
pub(crate) type Decided<V> = Result<Result<V, CouponError>, StoreError>;

/// Runs a batch's requests at once inside one transaction, each to its own answer. Requests of one
/// batch that touch the same rows cannot corrupt anything (every write is guarded); the loser's
/// guard fails the batch, which rolls back, and the engine runs its requests one by one. Requests
/// decide before they write, so a refusal leaves nothing behind in the batch's transaction.
pub(crate) async fn each<'a, R, V, F, Fut>(batch: &'a [R], op: F) -> crate::BatchResult<V>
where
    F: Fn(&'a R) -> Fut,
    Fut: Future<Output = Decided<V>>,
{
    futures::future::join_all(batch.iter().map(op))
        .await
        .into_iter()
        .collect()
}

read!(
    /// Reads one row, so the database, not just a pooled connection, has answered.
    Ping {} -> () = |tx, _s| tx.query(crate::statements::Q::Ping {}).await.map(drop)
);
