//! The claim engine: a [`Store`] in front of a backend that merges concurrent requests into batches
//! (one transaction and one commit for many requests) and answers claims on a sold-out book from
//! memory. The backend stays the arbiter of every rule; the engine only decides what shares a
//! commit, so several instances in front of one database stay correct.
//!
//! - Claims for any code of a book queue per book; the book's worker runs one batch at a time.
//! - Locks, unlocks and redemptions of different codes share batches too (one queue each).
//! - Once a batch answers `out_of_stock` for a book, a stock check asks the database whether the
//!   book is sold out and until when a held code could lapse at the earliest; until then, claims on
//!   it are answered `out_of_stock` at once. While such answers go out the check is repeated (one
//!   at a time, at most every `RECHECK`), so codes added through another instance are seen within
//!   that; supply added through this instance reopens the book straight away.

mod batcher;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use coupon_core::{Book, BookDraft, BookPatch, BookStats, CodeInstance, CodePattern, CodeText, CouponError};
use coupon_core::{Redemption, Timestamp};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{
    AddedCodes, BatchResult, ClaimRequest, ClaimTarget, Claimed, CodeView, DynStore, LockRequest, Locked,
    RedeemRequest, SearchPage, SearchQuery, Stock, Store, StoreError, UnlockRequest,
};
use batcher::{Answer, Batcher, RunBatch, Shape};

/// A book's claims: one batch at a time, since every batch of a book queues on its row lock (two
/// or four at once measured slower); past a few hundred, a bigger batch saves little. The worker
/// stops after a minute without claims and starts again with the next one.
const CLAIMS: Shape = Shape {
    max: 1000,
    in_flight: 1,
    idle: Some(Duration::from_secs(60)),
};
/// Locks, unlocks or redemptions: each still reads and writes its own rows, so several batches
/// run at once on their own connections (PostgreSQL then uses more than one backend).
const CODE_OPS: Shape = Shape {
    max: 256,
    in_flight: 4,
    idle: None,
};
/// How old a sold-out book's stock check may grow while claims on it are answered from memory.
const RECHECK: Duration = Duration::from_millis(20);

pub struct Engine {
    /// Reads and book changes go straight here.
    store: DynStore,
    /// Batches and stock checks run against this one, on the lane.
    writes: DynStore,
    lane: Lane,
    books: Mutex<HashMap<Uuid, Arc<BookLine>>>,
    locks: Batcher<LockRequest, Locked>,
    unlocks: Batcher<UnlockRequest, ()>,
    redeems: Batcher<RedeemRequest, Redemption>,
}

/// One book's claim queue and what the engine knows of its stock.
struct BookLine {
    claims: Batcher<ClaimRequest, Claimed>,
    sold_out: Mutex<Option<SoldOut>>,
    /// Bumped when supply is added here: a stock check started earlier must not close the book.
    restocks: AtomicU64,
    checking: AtomicBool,
}

#[derive(Debug, Clone)]
struct SoldOut {
    /// The book as the check read it: a claim is still told first if the book is paused or over.
    book: Book,
    /// Sold out until then (by the service's clock), or until codes are added.
    until: Option<Timestamp>,
    checked: Instant,
}

impl BookLine {
    /// The last stock check, if it says the book is sold out at `now`.
    fn sold_out_at(&self, now: Timestamp) -> Option<SoldOut> {
        let sold_out = self.sold_out.lock().unwrap_or_else(PoisonError::into_inner);
        sold_out
            .as_ref()
            .filter(|s| s.until.is_none_or(|until| now < until))
            .cloned()
    }

    fn set(&self, sold_out: Option<SoldOut>) {
        *self.sold_out.lock().unwrap_or_else(PoisonError::into_inner) = sold_out;
    }
}

/// A batch runner calling one of the store's batch operations.
macro_rules! runner {
    ($store:expr, $op:ident) => {{
        let store = $store.clone();
        let run: RunBatch<_, _> = Arc::new(move |batch, now| {
            let store = store.clone();
            Box::pin(async move { store.$op(batch, now).await })
        });
        run
    }};
}

/// The engine's own single-threaded runtime: a batch waits on several database round trips, and on
/// the server's runtime each of them would queue behind the HTTP work of thousands of connections.
/// It stops when the engine is dropped.
struct Lane {
    runtime: Handle,
    _stop: oneshot::Sender<()>,
}

impl Lane {
    fn start() -> Result<Lane, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("coupond-engine".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                })
            })
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(Lane {
            runtime: handle,
            _stop: stop,
        })
    }
}

impl Engine {
    /// Starts the engine in front of `store`, its batches running on a thread of their own.
    pub fn new(store: DynStore) -> Result<Self, StoreError> {
        Engine::with_writes(store.clone(), store)
    }

    /// Like `new`, with the batches and stock checks going to `writes`. A PostgreSQL pool of its
    /// own opens its connections from the engine's thread (a connection is driven where it was
    /// opened), so their round trips never wait on the server's runtime.
    pub fn with_writes(store: DynStore, writes: DynStore) -> Result<Self, StoreError> {
        let lane = Lane::start()?;
        let rt = &lane.runtime;
        Ok(Engine {
            locks: Batcher::start(rt, CODE_OPS, runner!(writes, lock)),
            unlocks: Batcher::start(rt, CODE_OPS, runner!(writes, unlock)),
            redeems: Batcher::start(rt, CODE_OPS, runner!(writes, redeem)),
            books: Mutex::new(HashMap::new()),
            store,
            writes,
            lane,
        })
    }

    fn line(&self, book_id: Uuid) -> Arc<BookLine> {
        let mut books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        let line = books.entry(book_id).or_insert_with(|| {
            Arc::new(BookLine {
                claims: Batcher::start(&self.lane.runtime, CLAIMS, runner!(self.writes, claim)),
                sold_out: Mutex::new(None),
                restocks: AtomicU64::new(0),
                checking: AtomicBool::new(false),
            })
        });
        line.clone()
    }

    /// Forgets a line whose worker stopped, so the next claim starts a new one.
    fn drop_line(&self, book_id: Uuid, line: &Arc<BookLine>) {
        let mut books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        if books.get(&book_id).is_some_and(|l| Arc::ptr_eq(l, line)) {
            books.remove(&book_id);
        }
    }

    /// Forgets what the engine knew of the book's stock: supply was added, or the book changed.
    fn restocked(&self, book_id: Uuid) {
        let books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(line) = books.get(&book_id) {
            line.restocks.fetch_add(1, Ordering::AcqRel);
            line.set(None);
        }
    }

    async fn claim_one(&self, req: ClaimRequest, now: Timestamp) -> Answer<Claimed> {
        let ClaimTarget::Book(book_id) = req.target else {
            // Claims of a named code are rare (a code typed in); they run on their own.
            return self.writes.claim(vec![req], now).await.map(|mut a| a.remove(0));
        };
        loop {
            let line = self.line(book_id);
            if let Some(sold_out) = line.sold_out_at(now) {
                if sold_out.checked.elapsed() >= RECHECK {
                    self.check_stock(&line, book_id, now);
                }
                return Ok(sold_out.book.check_claimable(now).and(Err(CouponError::OutOfStock)));
            }
            match line.claims.submit(req.clone(), now).await {
                Some(answer) => {
                    if let Ok(Err(CouponError::OutOfStock)) = &answer {
                        self.check_stock(&line, book_id, now);
                    }
                    return answer;
                }
                None => self.drop_line(book_id, &line),
            }
        }
    }

    /// Asks the database about the book's stock unless a check is running, and records the answer.
    fn check_stock(&self, line: &Arc<BookLine>, book_id: Uuid, now: Timestamp) {
        if line.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let (store, line) = (self.writes.clone(), line.clone());
        let restocks = line.restocks.load(Ordering::Acquire);
        self.lane.runtime.spawn(async move {
            let checked = Instant::now();
            match store.stock(book_id, now).await {
                Ok(_) if line.restocks.load(Ordering::Acquire) != restocks => {}
                Ok((_, Stock::Available)) => line.set(None),
                Ok((book, Stock::SoldOut { next_lapse })) => line.set(Some(SoldOut {
                    book,
                    until: next_lapse,
                    checked,
                })),
                Err(e) => tracing::warn!(error = %e, "stock check failed"),
            }
            line.checking.store(false, Ordering::Release);
        });
    }
}

/// Submits each request of a batch on its own queue and gathers the answers in order.
async fn each<R, T, F, Fut>(batch: Vec<R>, submit: F) -> BatchResult<T>
where
    F: Fn(R) -> Fut,
    Fut: std::future::Future<Output = Answer<T>>,
{
    let answers = futures::future::join_all(batch.into_iter().map(submit)).await;
    answers.into_iter().collect()
}

/// The engine as the store the HTTP layer talks to. Reads and book changes go straight through.
#[async_trait]
impl Store for Engine {
    async fn create_book(&self, draft: BookDraft) -> Result<Book, StoreError> {
        self.store.create_book(draft).await
    }
    async fn book(&self, id: Uuid) -> Result<Book, StoreError> {
        self.store.book(id).await
    }
    async fn update_book(&self, id: Uuid, patch: BookPatch, now: Timestamp) -> Result<Book, StoreError> {
        let book = self.store.update_book(id, patch, now).await?;
        self.restocked(id);
        Ok(book)
    }
    async fn book_with_stats(&self, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
        self.store.book_with_stats(id, now).await
    }
    async fn add_codes(&self, book_id: Uuid, codes: Vec<String>) -> Result<AddedCodes, StoreError> {
        let added = self.store.add_codes(book_id, codes).await?;
        self.restocked(book_id);
        Ok(added)
    }
    async fn generate_codes(&self, book_id: Uuid, pattern: Option<CodePattern>, count: u64) -> Result<u64, StoreError> {
        let added = self.store.generate_codes(book_id, pattern, count).await?;
        self.restocked(book_id);
        Ok(added)
    }
    async fn search_books(&self, query: SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
        self.store.search_books(query, now).await
    }
    async fn claim(&self, batch: Vec<ClaimRequest>, now: Timestamp) -> BatchResult<Claimed> {
        each(batch, |req| self.claim_one(req, now)).await
    }
    async fn stock(&self, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError> {
        self.store.stock(book_id, now).await
    }
    async fn lock(&self, batch: Vec<LockRequest>, now: Timestamp) -> BatchResult<Locked> {
        each(batch, |req| async move {
            self.locks.submit(req, now).await.unwrap_or_else(stopped)
        })
        .await
    }
    async fn unlock(&self, batch: Vec<UnlockRequest>, now: Timestamp) -> BatchResult<()> {
        each(batch, |req| async move {
            self.unlocks.submit(req, now).await.unwrap_or_else(stopped)
        })
        .await
    }
    async fn redeem(&self, batch: Vec<RedeemRequest>, now: Timestamp) -> BatchResult<Redemption> {
        each(batch, |req| async move {
            self.redeems.submit(req, now).await.unwrap_or_else(stopped)
        })
        .await
    }
    async fn code_view(&self, code: &CodeText, user_id: &str, lock_id: Option<Uuid>) -> Result<CodeView, StoreError> {
        self.store.code_view(code, user_id, lock_id).await
    }
    async fn user_codes(&self, user_id: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
        self.store.user_codes(user_id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

/// The lock, unlock and redeem workers never idle out; they stop only with the engine.
fn stopped<T>() -> Answer<T> {
    Err(StoreError::Task("the engine has stopped".into()))
}
