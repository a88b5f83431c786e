//! The transactional outbox: every change records its events in the transaction that makes it, so
//! an event exists exactly when its change committed. A write script notes what changed, in the
//! domain's terms, in its [`Journal`]; when the script is done, the journal is rendered (each
//! event's `data` in the form `coupon_wire::event` gives it, the API's own for the objects an answer
//! shows) and written in one statement, so a claim batch of 500 writes its 500 events at once.
//!
//! The feed ([`crate::Store::events`]) reads them back in a stable order that a consumer can page
//! through without ever missing one that commits late: see the `events` table's migration.

mod feed;
mod types;

use std::sync::{Arc, Mutex};

use coupon_core::{Book, CodeInstance, Redemption, StockAlert, Timestamp};
use coupon_wire::event::{self as form, ClaimLapsed, CodesAdded, CodesRemoved, StockChanged};
use coupon_wire::{ClaimedCode, LockAnswer, UnlockAnswer};
use uuid::Uuid;

use crate::backend::{Planning, Script, Tx};
use crate::idempotency::{Keyed, Record};
use crate::script::idempotency;
use crate::statements::Q;
use crate::{Locked, StoreError};

pub use coupon_wire::EventType;
pub(crate) use feed::{event, keys, read};
pub use types::{Event, EventCursor, EventPage, EventQuery};

/// A change as a script notes it: what happened, in the domain's terms.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    BookCreated(Book),
    BookUpdated(Book),
    CodesAdded {
        book_id: Uuid,
        count: u64,
    },
    CodesRemoved {
        book_id: Uuid,
        codes: Vec<String>,
    },
    Claimed {
        code: CodeInstance,
        book: Arc<Book>,
    },
    /// A claim ran out unredeemed and its code went back to the pool.
    Lapsed {
        book_id: Uuid,
        code: String,
        user_id: String,
    },
    Locked {
        book_id: Uuid,
        user_id: String,
        locked: Locked,
    },
    Unlocked {
        book_id: Uuid,
        user_id: String,
        code: String,
    },
    Redeemed(Redemption),
    RolledBack(Redemption),
    Stock {
        book_id: Uuid,
        alert: StockAlert,
        pool: i64,
        threshold: Option<i64>,
    },
}

/// The changes of one transaction, in the order they were noted. Requests of a batch run at once,
/// so noting takes a lock; it is held for a push.
#[derive(Debug, Default)]
pub(crate) struct Journal(Mutex<Vec<(Timestamp, Change)>>);

impl Journal {
    pub(crate) fn note(&self, at: Timestamp, change: Change) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((at, change));
    }

    fn take(&self) -> Vec<(Timestamp, Change)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A write whose changes are noted in a journal: run by [`Outboxed`], which writes its events.
pub(crate) trait Recorded: Send + Sync + 'static {
    type Out: Send + 'static;
    const PLANNING: Planning = Planning::Cached;

    fn run<T: Tx>(
        &self,
        tx: &T,
        events: &Journal,
    ) -> impl std::future::Future<Output = Result<Self::Out, StoreError>> + Send;

    /// The answers its keyed requests gave, to record with its changes (`crate::idempotency`).
    fn records(&self, _out: &Self::Out) -> Vec<Record> {
        Vec::new()
    }
}

/// A write script with what concerns every write: the script runs with a fresh journal (again
/// after a deadlock); the answers of its keyed requests are recorded, and its events are written
/// by the transaction's last statement.
pub(crate) struct Outboxed<S>(pub S);

impl<S: Recorded> Script for Outboxed<S> {
    type Out = S::Out;
    const PLANNING: Planning = S::PLANNING;

    async fn run<T: Tx>(&self, tx: &T) -> Result<S::Out, StoreError> {
        let journal = Journal::default();
        let out = self.0.run(tx, &journal).await?;
        idempotency::record(tx, &self.0.records(&out)).await?;
        write(tx, journal.take()).await?;
        Ok(out)
    }
}

/// A single write sent with an idempotency key: its answer is recorded if it succeeds (a refusal
/// rolls the script back, and is recorded on its own by `crate::Store::write_keyed`).
pub(crate) struct KeyedWrite<S: Recorded> {
    pub script: S,
    pub key: Keyed<S::Out>,
}

impl<S: Recorded> Recorded for KeyedWrite<S> {
    type Out = S::Out;
    const PLANNING: Planning = S::PLANNING;

    fn run<T: Tx>(
        &self,
        tx: &T,
        events: &Journal,
    ) -> impl std::future::Future<Output = Result<S::Out, StoreError>> + Send {
        self.script.run(tx, events)
    }

    fn records(&self, out: &S::Out) -> Vec<Record> {
        vec![self.key.record(Ok(out))]
    }
}

/// Writes the events of a transaction's changes in one statement, a column of each field: bound as
/// arrays, which the database reads far faster than one JSON document of the rows (on PostgreSQL
/// parsing that took three times as long as the insert, under the book's lock).
async fn write<T: Tx>(tx: &T, changes: Vec<(Timestamp, Change)>) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let n = changes.len();
    let (mut ids, mut types, mut times) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut books, mut codes, mut users) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let mut data = Vec::with_capacity(n);
    for (at, change) in &changes {
        let (kind, book_id, code, user_id) = envelope(change);
        ids.push(Uuid::now_v7());
        types.push(kind.as_str());
        times.push(at.millis());
        books.push(book_id);
        codes.push(code);
        users.push(user_id);
        data.push(self::data(*at, change));
    }
    let record = Q::RecordEvents {
        ids: ids.as_slice().into(),
        types: types.as_slice().into(),
        occurred_at: times.as_slice().into(),
        book_ids: books.as_slice().into(),
        codes: codes.as_slice().into(),
        user_ids: users.as_slice().into(),
        data: data.as_slice().into(),
    };
    // The last statement: on PostgreSQL it carries the COMMIT, so no count is checked after it.
    // An insert of every element of its arrays writes them all or fails, failing the transaction.
    tx.exec_last(record).await?;
    Ok(())
}

/// An event's envelope, read off its change: its type, book, code and user.
fn envelope(change: &Change) -> (EventType, Uuid, Option<&str>, Option<&str>) {
    match change {
        Change::BookCreated(b) => (EventType::BookCreated, b.id, None, None),
        Change::BookUpdated(b) => (EventType::BookUpdated, b.id, None, None),
        Change::CodesAdded { book_id, .. } => (EventType::CodesAdded, *book_id, None, None),
        Change::CodesRemoved { book_id, .. } => (EventType::CodesRemoved, *book_id, None, None),
        Change::Claimed { code, .. } => (
            EventType::CodeClaimed,
            code.book_id,
            Some(&code.code),
            code.owner.as_deref(),
        ),
        Change::Lapsed { book_id, code, user_id } => (EventType::ClaimLapsed, *book_id, Some(code), Some(user_id)),
        Change::Locked {
            book_id,
            user_id,
            locked,
        } => (EventType::CodeLocked, *book_id, Some(&locked.code), Some(user_id)),
        Change::Unlocked { book_id, user_id, code } => (EventType::CodeUnlocked, *book_id, Some(code), Some(user_id)),
        Change::Redeemed(r) => (
            EventType::CodeRedeemed,
            r.coupon_book_id,
            Some(&r.code),
            Some(&r.user_id),
        ),
        Change::RolledBack(r) => (
            EventType::RedemptionRolledBack,
            r.coupon_book_id,
            Some(&r.code),
            Some(&r.user_id),
        ),
        Change::Stock { book_id, alert, .. } => (EventType::from(*alert), *book_id, None, None),
    }
}

/// The object an event is about, in its form (`coupon_wire::event`).
fn data(at: Timestamp, change: &Change) -> String {
    match change {
        Change::BookCreated(b) | Change::BookUpdated(b) => form::data(coupon_wire::Book::from(b.clone())),
        Change::CodesAdded { book_id, count } => form::data(CodesAdded {
            count: *count,
            coupon_book_id: *book_id,
        }),
        Change::CodesRemoved { book_id, codes } => form::data(CodesRemoved {
            codes,
            count: codes.len(),
            coupon_book_id: *book_id,
        }),
        Change::Claimed { code, book } => form::data(ClaimedCode::new(code.clone(), book, at)),
        Change::Lapsed { book_id, code, user_id } => form::data(ClaimLapsed {
            code,
            coupon_book_id: *book_id,
            status: "available",
            user_id,
        }),
        Change::Locked { locked, .. } => form::data(LockAnswer::from(locked.clone())),
        Change::Unlocked { code, .. } => form::data(UnlockAnswer {
            status: "active",
            code: code.clone(),
        }),
        Change::Redeemed(r) | Change::RolledBack(r) => form::data(coupon_wire::Redemption::from(r.clone())),
        Change::Stock {
            book_id,
            pool,
            threshold,
            ..
        } => form::data(StockChanged {
            available: *pool,
            coupon_book_id: *book_id,
            low_stock_threshold: *threshold,
        }),
    }
}
