//! The claim engine: the batching strategy behind [`crate::Coupons`]. It merges concurrent requests
//! into batches (one transaction and one commit for many requests) and answers claims on a sold-out
//! book from memory. The backend stays the arbiter of every rule; the engine only decides what
//! shares a commit, so several instances in front of one database stay correct.
//!
//! - Claims for any code of a book queue per book; the book's worker runs one batch at a time.
//! - Locks, unlocks, redemptions and rollbacks of different codes share batches too (one queue each).
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

use coupon_core::{Book, CouponError, Redemption, Timestamp};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::background::Background;
use crate::batches::{Checkout, Run};
use crate::{
    CheckoutBatches, ClaimBatches, ClaimRequest, ClaimTarget, Claimed, LockRequest, Locked, RedeemRequest,
    RollbackRequest, Stock, StoreError, UnlockRequest,
};
pub(crate) use batcher::Answer;
use batcher::Batcher;
use batcher::{RunBatch, Shape};

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

pub(crate) struct Engine {
    /// Claim batches and stock checks run against this, on the lane.
    claims: Arc<dyn ClaimBatches>,
    lane: Lane,
    books: Mutex<HashMap<Uuid, Arc<BookLine>>>,
    queues: Queues,
}

/// The checkout queues, one per operation.
pub(crate) struct Queues {
    locks: Batcher<LockRequest, Locked>,
    unlocks: Batcher<UnlockRequest, ()>,
    redeems: Batcher<RedeemRequest, Redemption>,
    rollbacks: Batcher<RollbackRequest, Redemption>,
}

/// A checkout request with its queue in the engine.
pub(crate) trait Queued: Checkout {
    fn queue(queues: &Queues) -> &Batcher<Self, Self::Answer>;
}

/// Each checkout operation's queue.
macro_rules! queued {
    ($($request:ty => $queue:ident),* $(,)?) => {
        $(impl Queued for $request {
            fn queue(queues: &Queues) -> &Batcher<Self, Self::Answer> {
                &queues.$queue
            }
        })*
    };
}

queued!(LockRequest => locks, UnlockRequest => unlocks, RedeemRequest => redeems, RollbackRequest => rollbacks);

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

/// A checkout queue of `R`, whose batches go to `to`.
fn checkout_queue<R: Checkout>(lane: &Lane, to: &Arc<dyn CheckoutBatches>) -> Batcher<R, R::Answer> {
    queue(lane, CODE_OPS, R::OP, to, R::run)
}

/// A queue whose batches `run` sends to `to`, on the lane.
fn queue<R, T, S>(lane: &Lane, shape: Shape, op: &'static str, to: &Arc<S>, run: Hand<R, T, S>) -> Batcher<R, T>
where
    R: Clone + Send + 'static,
    T: Send + 'static,
    S: ?Sized + Send + Sync + 'static,
{
    let to = to.clone();
    let run: RunBatch<R, T> = Arc::new(move |batch, now| {
        let to = to.clone();
        Box::pin(async move { run(&*to, batch, now).await })
    });
    Batcher::start(lane, shape, op, run)
}

/// A book's claim batch, to the claims' store.
fn send_claims(to: &dyn ClaimBatches, batch: Vec<ClaimRequest>, now: Timestamp) -> Run<'_, Claimed> {
    to.claim(batch, now)
}

/// How a queue hands a batch to what it writes to: one of the batch interfaces' methods.
type Hand<R, T, S> = for<'a> fn(&'a S, Vec<R>, Timestamp) -> Run<'a, T>;

/// The engine's own single-threaded runtime: a batch waits on several database round trips, and on
/// the server's runtime each of them would queue behind the HTTP work of thousands of connections.
/// Its thread runs until shutdown has begun (or the engine is dropped) and every task on it has
/// finished; the background owner waits for that.
struct Lane {
    runtime: Handle,
    tasks: TaskTracker,
    /// Whose stop signal the lane's workers watch.
    background: Background,
    _dropped: oneshot::Sender<()>,
}

impl Lane {
    fn start(background: &Background) -> Result<Lane, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let handle = runtime.handle().clone();
        let tasks = TaskTracker::new();
        let (dropped_tx, dropped) = oneshot::channel::<()>();
        let (done, finished) = oneshot::channel::<()>();
        let (stopping, lane_tasks) = (background.stopping(), tasks.clone());
        std::thread::Builder::new()
            .name("coupond-engine".into())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        () = stopping => {}
                        _ = dropped => {}
                    }
                    lane_tasks.close();
                    lane_tasks.wait().await;
                });
                let _ = done.send(());
            })
            .map_err(|e| StoreError::Task(e.to_string()))?;
        background.spawn_on(&Handle::current(), async move {
            let _ = finished.await;
        });
        Ok(Lane {
            runtime: handle,
            tasks,
            background: background.clone(),
            _dropped: dropped_tx,
        })
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn_on(task, &self.runtime);
    }
}

impl Engine {
    /// Starts the engine with its claim batches and stock checks going to `claims` and its checkout
    /// batches to `checkout`, on a thread of their own; its work joins `background`. A PostgreSQL
    /// pool of its own opens its connections from the engine's thread (a connection is driven where
    /// it was opened), so their round trips never wait on the server's runtime. Must be called
    /// within a tokio runtime.
    pub(crate) fn start(
        claims: Arc<dyn ClaimBatches>,
        checkout: Arc<dyn CheckoutBatches>,
        background: &Background,
    ) -> Result<Self, StoreError> {
        let lane = Lane::start(background)?;
        let queues = Queues {
            locks: checkout_queue(&lane, &checkout),
            unlocks: checkout_queue(&lane, &checkout),
            redeems: checkout_queue(&lane, &checkout),
            rollbacks: checkout_queue(&lane, &checkout),
        };
        Ok(Engine {
            claims,
            queues,
            books: Mutex::new(HashMap::new()),
            lane,
        })
    }

    fn line(&self, book_id: Uuid) -> Arc<BookLine> {
        let mut books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        let line = books.entry(book_id).or_insert_with(|| {
            Arc::new(BookLine {
                claims: queue(&self.lane, CLAIMS, "claim", &self.claims, send_claims),
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
    pub(crate) fn restocked(&self, book_id: Uuid) {
        let books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(line) = books.get(&book_id) {
            line.restocks.fetch_add(1, Ordering::AcqRel);
            line.set(None);
        }
    }

    pub(crate) async fn claim(&self, req: ClaimRequest, now: Timestamp) -> Answer<Claimed> {
        let ClaimTarget::Book(book_id) = req.target else {
            // Claims of a named code are rare (a code typed in): they run alone, straight away,
            // rather than wait for a book's batch they cannot name before reading the code.
            return self.claims.claim(vec![req], now).await.map(|mut a| a.remove(0));
        };
        // A keyed claim is never answered from memory: another attempt under its key may still be
        // running (on another instance, or here after its answer timed out) and commit a claim,
        // which the database's record of the key, not a sold-out book, must answer.
        let keyed = req.key.is_some();
        loop {
            let line = self.line(book_id);
            if let Some(sold_out) = line.sold_out_at(now).filter(|_| !keyed) {
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
                None if self.lane.background.is_stopping() => return stopped(),
                None => self.drop_line(book_id, &line),
            }
        }
    }

    /// Asks the database about the book's stock unless a check is running, and records the answer.
    fn check_stock(&self, line: &Arc<BookLine>, book_id: Uuid, now: Timestamp) {
        if line.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let (store, line) = (self.claims.clone(), line.clone());
        let restocks = line.restocks.load(Ordering::Acquire);
        self.lane.spawn(async move {
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

    /// A lock, unlock, redemption or rollback, through its queue.
    pub(crate) async fn checkout<R: Queued>(&self, req: R, now: Timestamp) -> Answer<R::Answer> {
        R::queue(&self.queues).submit(req, now).await.unwrap_or_else(stopped)
    }
}

/// The checkout workers never idle out; they stop only at shutdown.
fn stopped<T>() -> Answer<T> {
    Err(StoreError::Task("the service is shutting down".into()))
}
