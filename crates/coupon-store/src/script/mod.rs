//! The transaction scripts: each operation's decision flow, written once for both backends. A
//! script reads the rows its decision rests on, decides with `coupon_core::rules`, and writes with
//! guarded statements, through the named statements of [`Tx`]; the backend supplies the
//! transaction around it. Each operation is a [`Script`] value owning its inputs, so a backend
//! can run it on another thread (SQLite) or run it again after a deadlock (PostgreSQL).

pub(crate) mod books;
pub(crate) mod claims;
pub(crate) mod codes;
pub(crate) mod lists;
pub(crate) mod stock;
pub(crate) mod webhooks;

use std::future::Future;

use coupon_core::{Book, BookDraft, BookPatch, BookStats, CodeInstance, CodePattern, CodeText, CouponError};
use coupon_core::{Redemption, Timestamp};
use uuid::Uuid;

use crate::backend::{Planning, Script, Tx};
use crate::outbox::{self, EventPage, EventQuery, Journal, Recorded};
use crate::webhooks::{Attempted, Backlog, Delivery, DeliveryPage, Due, Endpoint, NewWebhook, Webhook};
use crate::{
    AddedCodes, ClaimRequest, Claimed, CodePage, CodeQuery, CodeView, LockRequest, Locked, RedeemRequest,
    RedemptionPage, RedemptionQuery, RemovedCodes, RollbackRequest, SearchPage, SearchQuery, Stock, StoreError,
    UnlockRequest,
};
use crate::{Event, EventCursor};

/// Declares an operation's script: its inputs as fields, and the body that runs them on `tx`.
macro_rules! script {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty = |$tx:ident, $s:ident| $body:expr) => {
        script!($(#[$doc])* $name { $($field: $ty),* } -> $out = |$tx, $s| $body; planning = Planning::Cached);
    };
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty = |$tx:ident, $s:ident| $body:expr;
        planning = $planning:expr) => {
        $(#[$doc])*
        pub(crate) struct $name { $(pub $field: $ty),* }

        impl Script for $name {
            type Out = $out;
            const PLANNING: Planning = $planning;

            fn run<T: Tx>(&self, $tx: &T) -> impl Future<Output = Result<$out, StoreError>> + Send {
                let $s = self;
                async move { $body }
            }
        }
    };
}

/// Declares a write's script, which notes its changes in `events` (see `crate::outbox`): its
/// inputs as fields, and the body that runs them on `tx`.
macro_rules! write {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty =
        |$tx:ident, $s:ident, $events:ident| $body:expr) => {
        write!($(#[$doc])* $name { $($field: $ty),* } -> $out = |$tx, $s, $events| $body; planning = Planning::Cached);
    };
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } -> $out:ty =
        |$tx:ident, $s:ident, $events:ident| $body:expr; planning = $planning:expr) => {
        $(#[$doc])*
        pub(crate) struct $name { $(pub $field: $ty),* }

        impl Recorded for $name {
            type Out = $out;
            const PLANNING: Planning = $planning;

            fn run<T: Tx>(&self, $tx: &T, $events: &Journal) -> impl Future<Output = Result<$out, StoreError>> + Send {
                let $s = self;
                async move { $body }
            }
        }
    };
}

write!(CreateBook { draft: BookDraft } -> (Book, u64) = |tx, s, events| books::create(tx, events, &s.draft).await);
script!(LoadBook { id: Uuid } -> Book = |tx, s| books::load(tx, s.id).await);
script!(BookSupply { id: Uuid } -> (Book, i64) = |tx, s| books::with_supply(tx, s.id).await);
write!(UpdateBook { id: Uuid, patch: BookPatch, now: Timestamp } -> Book =
    |tx, s, events| books::update(tx, events, s.id, s.patch.clone(), s.now).await);
script!(BookWithStats { id: Uuid, now: Timestamp } -> (Book, BookStats) =
    |tx, s| books::with_stats(tx, s.id, s.now).await);
write!(AddCodes { book_id: Uuid, codes: Vec<String>, now: Timestamp } -> AddedCodes =
    |tx, s, events| books::add_codes(tx, events, s.book_id, &s.codes, s.now).await);
write!(GenerateCodes { book_id: Uuid, pattern: Option<CodePattern>, count: u64, now: Timestamp } -> u64 =
    |tx, s, events| books::generate_codes(tx, events, s.book_id, s.pattern.clone(), s.count, s.now).await);
script!(SearchBooks { query: SearchQuery, now: Timestamp } -> SearchPage =
    |tx, s| books::search(tx, &s.query, s.now).await);
write!(RemoveCodes { book_id: Uuid, codes: Vec<String>, now: Timestamp } -> RemovedCodes =
    |tx, s, events| books::remove_codes(tx, events, s.book_id, &s.codes, s.now).await);
script!(ListCodes { query: CodeQuery, now: Timestamp } -> (Book, CodePage) =
    |tx, s| lists::codes(tx, &s.query, s.now).await);
script!(ListRedemptions { query: RedemptionQuery } -> RedemptionPage =
    |tx, s| lists::redemptions(tx, &s.query).await);

write!(
    /// Claims for any code of a book are decided together per book, in arrival order, by set-based
    /// statements over the whole batch.
    Claim { batch: Vec<ClaimRequest>, now: Timestamp } -> Vec<Result<Claimed, CouponError>> =
    |tx, s, events| claims::claim(tx, events, &s.batch, s.now).await;
    planning = Planning::Fresh
);
script!(CheckStock { book_id: Uuid, now: Timestamp } -> (Book, Stock) =
    |tx, s| claims::stock(tx, s.book_id, s.now).await);

write!(
    /// A batch of locks: its requests run at once (pipelined on PostgreSQL), each answered alone.
    Lock { batch: Vec<LockRequest>, now: Timestamp } -> Vec<Result<Locked, CouponError>> =
    |tx, s, events| each(&s.batch, |req| codes::lock(tx, events, req, s.now)).await
);
write!(Unlock { batch: Vec<UnlockRequest>, now: Timestamp } -> Vec<Result<(), CouponError>> =
    |tx, s, events| each(&s.batch, |req| codes::unlock(tx, events, req, s.now)).await);
write!(Redeem { batch: Vec<RedeemRequest>, now: Timestamp } -> Vec<Result<Redemption, CouponError>> =
    |tx, s, events| each(&s.batch, |req| codes::redeem(tx, events, req, s.now)).await);
write!(Rollback { batch: Vec<RollbackRequest>, now: Timestamp } -> Vec<Result<Redemption, CouponError>> =
    |tx, s, events| each(&s.batch, |req| codes::rollback(tx, events, req, s.now)).await);

script!(ViewCode { code: CodeText, user_id: String, lock_id: Option<Uuid> } -> CodeView =
    |tx, s| codes::view(tx, &s.code, &s.user_id, s.lock_id).await);
script!(UserCodes { user_id: String } -> Vec<(CodeInstance, Book)> =
    |tx, s| codes::of_user(tx, &s.user_id).await);
script!(ListEvents { query: EventQuery } -> EventPage =
    |tx, s| outbox::read(tx, &s.query).await; planning = Planning::IndexOrder);

script!(CreateWebhook { new: NewWebhook } -> Webhook = |tx, s| webhooks::create(tx, &s.new).await);
script!(LoadWebhook { id: Uuid } -> Webhook = |tx, s| webhooks::get(tx, s.id).await);
script!(Endpoints {} -> Vec<Endpoint> = |tx, _s| webhooks::endpoints(tx).await);
script!(DeleteWebhook { id: Uuid } -> () = |tx, s| webhooks::delete(tx, s.id).await);
script!(FanOut { limit: u32, now: Timestamp } -> usize =
    |tx, s| webhooks::fan_out(tx, s.limit, s.now).await; planning = Planning::IndexOrder);
script!(LeaseDeliveries { webhook_id: Uuid, limit: u32, until: Timestamp, now: Timestamp } -> Vec<Due> =
    |tx, s| webhooks::lease(tx, s.webhook_id, s.limit, s.until, s.now).await; planning = Planning::IndexOrder);
script!(SettleDeliveries { attempts: Vec<Attempted> } -> () = |tx, s| webhooks::settle(tx, &s.attempts).await);
script!(ListDeliveries { webhook_id: Uuid, limit: u32, after: Option<(Timestamp, Uuid)> } -> DeliveryPage =
    |tx, s| webhooks::deliveries(tx, s.webhook_id, s.limit, s.after).await);
script!(RetryDelivery { webhook_id: Uuid, id: Uuid, now: Timestamp } -> Delivery =
    |tx, s| webhooks::retry(tx, s.webhook_id, s.id, s.now).await);
script!(ReadBacklog {} -> Backlog = |tx, _s| webhooks::backlog(tx).await);
script!(RelayNext { name: String, limit: u32 } -> (EventCursor, Vec<Event>) =
    |tx, s| webhooks::next_for(tx, &s.name, s.limit).await; planning = Planning::IndexOrder);
script!(RelayMoved { name: String, from: EventCursor, to: EventCursor } -> bool =
    |tx, s| webhooks::moved(tx, &s.name, s.from, s.to).await);
script!(Prune { before: Timestamp } -> u64 = |tx, s| webhooks::prune(tx, s.before).await);
script!(
    /// Reads one row, so the database, not just a pooled connection, has answered.
    Ping {} -> () = |tx, _s| tx.query(crate::statements::Q::Ping, &[]).await.map(drop)
);

/// Runs a batch's requests at once inside one transaction, each to its own answer. Requests of one
/// batch that touch the same rows cannot corrupt anything (every write is guarded); the loser's
/// guard fails the batch, which rolls back, and the engine runs its requests one by one.
async fn each<'a, R, V, F, Fut>(batch: &'a [R], op: F) -> Result<Vec<Result<V, CouponError>>, StoreError>
where
    F: Fn(&'a R) -> Fut,
    Fut: Future<Output = Result<V, StoreError>>,
{
    let outcomes = futures::future::join_all(batch.iter().map(op)).await;
    outcomes.into_iter().map(settle).collect()
}

/// Splits one request's outcome into a refusal (answered to that request) or a store failure
/// (which fails the whole batch). Requests decide before they write, so a refusal leaves nothing
/// behind in the batch's transaction.
fn settle<V>(outcome: Result<V, StoreError>) -> Result<Result<V, CouponError>, StoreError> {
    match outcome {
        Ok(v) => Ok(Ok(v)),
        Err(StoreError::Rejected(e)) => Ok(Err(e)),
        Err(e) => Err(e),
    }
}
