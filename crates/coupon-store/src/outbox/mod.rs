//! The transactional outbox: every change records its events in the transaction that makes it, so
//! an event exists exactly when its change committed. A write script notes what changed, in the
//! domain's terms, in its [`Journal`]; when the script is done, the journal is rendered (the
//! objects in the API's JSON form, by the [`EventForm`] the HTTP layer supplies) and written in one
//! statement, so a claim batch of 500 writes its 500 events at once.
//!
//! The feed ([`crate::Store::events`]) reads them back in a stable order that a consumer can page
//! through without ever missing one that commits late: see the `events` table's migration.

mod feed;
mod types;

use std::sync::{Arc, Mutex};

use coupon_core::{Book, CodeInstance, Redemption, StockAlert, Timestamp};
use serde_json::json;
use uuid::Uuid;

use crate::backend::{Planning, Script, Tx};
use crate::statements::Q;
use crate::{Locked, StoreError};

pub(crate) use feed::{event, keys, read};
pub use types::{Event, EventCursor, EventPage, EventQuery, EventType};

/// How an event's `data` shows the object it is about: the API's JSON form of it, so an event and
/// the answer to the request that caused it show the same thing. The HTTP layer supplies it. Each
/// returns the JSON text, as it is stored.
pub trait EventForm: Send + Sync + 'static {
    fn book(&self, book: &Book) -> String;
    /// A code as its claim's answer shows it, at the claim's time.
    fn claim(&self, code: &CodeInstance, book: &Book, now: Timestamp) -> String;
    fn lock(&self, locked: &Locked) -> String;
    fn redemption(&self, redemption: &Redemption) -> String;
}

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
}

/// A write script and the form its events take: the script runs with a fresh journal (again
/// after a deadlock), and its events are written by the transaction's last statement.
pub(crate) struct Outboxed<S> {
    pub script: S,
    pub form: Arc<dyn EventForm>,
}

impl<S: Recorded> Script for Outboxed<S> {
    type Out = S::Out;
    const PLANNING: Planning = S::PLANNING;

    async fn run<T: Tx>(&self, tx: &T) -> Result<S::Out, StoreError> {
        let journal = Journal::default();
        let out = self.script.run(tx, &journal).await?;
        write(tx, self.form.as_ref(), journal.take()).await?;
        Ok(out)
    }
}

/// Writes the events of a transaction's changes in one statement, a column of each field: bound as
/// arrays, which the database reads far faster than one JSON document of the rows (on PostgreSQL
/// parsing that took three times as long as the insert, under the book's lock).
async fn write<T: Tx>(tx: &T, form: &dyn EventForm, changes: Vec<(Timestamp, Change)>) -> Result<(), StoreError> {
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
        data.push(self::data(form, *at, change));
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

/// The object an event is about: the API's form of it where the API shows one, else the facts.
fn data(form: &dyn EventForm, at: Timestamp, change: &Change) -> String {
    match change {
        Change::BookCreated(b) | Change::BookUpdated(b) => form.book(b),
        Change::CodesAdded { book_id, count } => json!({ "coupon_book_id": book_id, "count": count }).to_string(),
        Change::CodesRemoved { book_id, codes } => {
            json!({ "coupon_book_id": book_id, "count": codes.len(), "codes": codes }).to_string()
        }
        Change::Claimed { code, book } => form.claim(code, book, at),
        Change::Lapsed { book_id, code, user_id } => {
            json!({ "coupon_book_id": book_id, "code": code, "user_id": user_id, "status": "available" }).to_string()
        }
        Change::Locked { locked, .. } => form.lock(locked),
        Change::Unlocked { code, .. } => json!({ "code": code, "status": "active" }).to_string(),
        Change::Redeemed(r) | Change::RolledBack(r) => form.redemption(r),
        Change::Stock {
            book_id,
            pool,
            threshold,
            ..
        } => json!({ "coupon_book_id": book_id, "available": pool, "low_stock_threshold": threshold }).to_string(),
    }
}

/// The identifying facts of each object, for stores opened without the API's form (`migrate`,
/// tools, the store's own tests): enough to tell which object an event is about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts;

impl EventForm for Facts {
    fn book(&self, book: &Book) -> String {
        json!({ "coupon_book_id": book.id, "name": book.name }).to_string()
    }

    fn claim(&self, code: &CodeInstance, _book: &Book, _now: Timestamp) -> String {
        json!({ "code": code.code, "user_id": code.owner }).to_string()
    }

    fn lock(&self, locked: &Locked) -> String {
        json!({ "code": locked.code, "lock_id": locked.lock_id }).to_string()
    }

    fn redemption(&self, r: &Redemption) -> String {
        json!({ "redemption_id": r.redemption_id, "code": r.code, "user_id": r.user_id }).to_string()
    }
}
