//! The per-request service the HTTP layer calls: one request in, one answer out. Each method names
//! the operation's script and runs it; a claim, lock, unlock, redemption or rollback either joins
//! a batch of the claim engine or runs alone in its own transaction, which is configuration
//! ([`Strategy`]). This is the seam where work that concerns every request belongs, whatever
//! strategy runs it.
//!
//! A refusal comes back as `StoreError::Rejected`: a batch answers each request with the rules'
//! own `CouponError`, and this is where it becomes the store's error, once. Every answer of a
//! claim, lock, unlock, redemption and rollback is counted here, by outcome, on either strategy.

use std::sync::Arc;

use coupon_core::{Book, BookDraft, BookPatch, BookStats, CodeInstance, CodePattern, CodeText, Redemption, Timestamp};
use uuid::Uuid;

use crate::background::Background;
use crate::engine::{Answer, Engine, Queued};
use crate::idempotency::{InFlight, Key, Keyed};
use crate::outbox::Recorded;
use crate::outbox::{EventPage, EventQuery};
use crate::script::{book, code, event, idempotency, pool, redeem, webhook};
use crate::telemetry::{self, counted, Connections};
use crate::webhooks::{Backlog, Delivery, DeliveryPage, NewWebhook, Webhook};
use crate::{
    AddedCodes, BatchResult, CheckoutBatches, ClaimBatches, ClaimRequest, Claimed, CodePage, CodeQuery, CodeView,
    LockRequest, Locked, RedeemRequest, RedemptionPage, RedemptionQuery, RemovedCodes, RollbackRequest, SearchPage,
    SearchQuery, Store, StoreError, UnlockRequest,
};

/// How claims, locks, unlocks and redemptions reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Concurrent requests share transactions (the claim engine); sold-out books answer from memory.
    Batched,
    /// One transaction per request: the baseline the benchmark compares with.
    Naive,
}

#[derive(Clone)]
pub struct Coupons {
    inner: Arc<Inner>,
}

struct Inner {
    /// Reads and book changes, and every request under the naive strategy.
    store: Store,
    engine: Option<Engine>,
    /// The store the engine writes to, when it has one of its own (PostgreSQL's second pool).
    writes: Option<Store>,
    /// The idempotency keys of requests running here.
    running: InFlight,
}

/// The answer of a batch of one.
fn only<T>(answers: BatchResult<T>) -> Answer<T> {
    answers?
        .into_iter()
        .next()
        .ok_or(StoreError::Conflict("a batch of one gave no answer"))
}

/// A request's answer as the store gives it: a refusal by the rules becomes
/// `StoreError::Rejected` here.
fn answered<T>(answer: Answer<T>) -> Result<T, StoreError> {
    answer.and_then(|a| a.map_err(StoreError::Rejected))
}

impl Coupons {
    /// Every request in a transaction of its own.
    pub fn naive(store: Store) -> Self {
        Coupons {
            inner: Arc::new(Inner {
                store,
                engine: None,
                writes: None,
                running: InFlight::default(),
            }),
        }
    }

    /// Requests batched by the claim engine, whose batches go to `writes` and whose work joins
    /// `background`. Must be called within a tokio runtime.
    pub fn batched(store: Store, writes: Store, background: &Background) -> Result<Self, StoreError> {
        let engine = Engine::start(Arc::new(writes.clone()), Arc::new(writes.clone()), background)?;
        Ok(Coupons::with_engine(store, engine, Some(writes)))
    }

    /// [`Coupons::batched`] with the engine's claim batches and checkout batches sent where given.
    pub fn batched_with(
        store: Store,
        claims: Arc<dyn ClaimBatches>,
        checkout: Arc<dyn CheckoutBatches>,
        background: &Background,
    ) -> Result<Self, StoreError> {
        let engine = Engine::start(claims, checkout, background)?;
        Ok(Coupons::with_engine(store, engine, None))
    }

    fn with_engine(store: Store, engine: Engine, writes: Option<Store>) -> Self {
        Coupons {
            inner: Arc::new(Inner {
                store,
                engine: Some(engine),
                writes,
                running: InFlight::default(),
            }),
        }
    }

    /// The store behind the service: the relay's background work reads and settles through it.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Supply or the book changed: what the engine knew of its stock is stale.
    fn restocked(&self, book_id: Uuid) {
        if let Some(engine) = &self.inner.engine {
            engine.restocked(book_id);
        }
    }

    pub async fn claim(&self, req: ClaimRequest, now: Timestamp) -> Result<Claimed, StoreError> {
        let key = req.key.as_ref().map(|k| k.key().clone());
        let answer = self.once(key.as_ref(), async {
            answered(match &self.inner.engine {
                Some(engine) => engine.claim(req, now).await,
                None => only(self.store().claim(vec![req], now).await),
            })
        });
        counted(telemetry::CLAIMS, answer.await)
    }

    pub async fn lock(&self, req: LockRequest, now: Timestamp) -> Result<Locked, StoreError> {
        self.checkout(req, now).await
    }

    pub async fn unlock(&self, req: UnlockRequest, now: Timestamp) -> Result<(), StoreError> {
        self.checkout(req, now).await
    }

    /// Repeating a redemption (same code, user and order id) answers the first one and counts once.
    pub async fn redeem(&self, req: RedeemRequest, now: Timestamp) -> Result<Redemption, StoreError> {
        self.checkout(req, now).await
    }

    /// Repeating a rollback answers the rolled-back redemption and counts once.
    pub async fn rollback(&self, req: RollbackRequest, now: Timestamp) -> Result<Redemption, StoreError> {
        let redemption = self.checkout(req, now).await?;
        // The code is unredeemed again, so its claim can lapse back into the pool at a time the
        // engine's memory of a sold-out book never saw (it counts only unredeemed claims).
        self.restocked(redemption.coupon_book_id);
        Ok(redemption)
    }

    /// A lock, unlock, redemption or rollback, through the engine's queue or alone.
    async fn checkout<R: Queued>(&self, req: R, now: Timestamp) -> Result<R::Answer, StoreError> {
        let key = req.key().cloned();
        let answer = self.once(key.as_ref(), async {
            answered(match &self.inner.engine {
                Some(engine) => engine.checkout(req, now).await,
                None => only(R::run(self.store(), vec![req], now).await),
            })
        });
        counted(R::COUNTER, answer.await)
    }

    /// Runs a request at most once for its idempotency key: a key answered before gives that
    /// answer again (`StoreError::Replayed`), or is refused if it came with another request; a key
    /// running here is refused as in flight; and a key that another instance recorded while this
    /// request ran is answered from that record (this request's transaction wrote nothing).
    async fn once<T>(
        &self,
        key: Option<&Key>,
        run: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(key) = key else {
            return run.await;
        };
        let _running = self.inner.running.enter(key)?;
        self.replay(key).await?;
        match run.await {
            Err(StoreError::KeyTaken) => {
                self.replay(key).await?;
                Err(StoreError::Conflict("an idempotency key was recorded, then purged"))
            }
            answer => answer,
        }
    }

    /// A single write, at most once for its idempotency key (`once`), recorded with its changes.
    async fn write_once<S: Recorded>(&self, script: S, key: Option<Keyed<S::Out>>) -> Result<S::Out, StoreError> {
        let id = key.as_ref().map(|k| k.key().clone());
        self.once(id.as_ref(), self.store().write_keyed(script, key)).await
    }

    /// Fails with the key's recorded answer, if it has one: for an operation of several
    /// transactions (an import), whose key is recorded with its last.
    pub async fn replay(&self, key: &Key) -> Result<(), StoreError> {
        let find = idempotency::FindKey {
            scope: key.scope.clone(),
            key: key.key.clone(),
        };
        crate::idempotency::replay(key, self.store().read(find).await?)
    }

    /// Deletes idempotency keys recorded before `before`, a slice at a time; says how many went.
    pub async fn purge_keys(&self, before: Timestamp) -> Result<u64, StoreError> {
        const SLICE: i64 = 10_000;
        let mut purged = 0;
        loop {
            let n = self
                .store()
                .write(idempotency::PurgeKeys { before, limit: SLICE })
                .await?;
            purged += n;
            if n < SLICE as u64 {
                return Ok(purged);
            }
        }
    }

    pub async fn redemptions(&self, query: RedemptionQuery) -> Result<RedemptionPage, StoreError> {
        self.store().read(redeem::ListRedemptions { query }).await
    }

    pub async fn create_book(&self, draft: BookDraft, key: Option<Keyed<Book>>) -> Result<Book, StoreError> {
        let key = key.map(|k| k.through(|(book, _): &(Book, u64)| book));
        let (book, created) = self.write_once(book::CreateBook { draft }, key).await?;
        self.store().loaded(created).await;
        Ok(book)
    }

    pub async fn book(&self, id: Uuid) -> Result<Book, StoreError> {
        self.store().read(book::LoadBook { id }).await
    }

    /// The book and how many codes (or shared instances) it holds, from its supply counter.
    pub async fn book_supply(&self, id: Uuid) -> Result<(Book, i64), StoreError> {
        self.store().read(book::BookSupply { id }).await
    }

    pub async fn update_book(
        &self,
        id: Uuid,
        patch: BookPatch,
        now: Timestamp,
        key: Option<Keyed<Book>>,
    ) -> Result<Book, StoreError> {
        let book = self.write_once(book::UpdateBook { id, patch, now }, key).await?;
        self.restocked(id);
        Ok(book)
    }

    /// The book and counts over its codes at `now`, read together.
    pub async fn book_with_stats(&self, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
        self.store().read(book::BookWithStats { id, now }).await
    }

    /// Books in the query's scope at `now`, newest first.
    pub async fn search_books(&self, query: SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
        self.store().read(book::SearchBooks { query, now }).await
    }

    /// Adds codes to a unique-mode book, never past its `total_codes`: the whole load, or its last
    /// part (the parts before it were counted as they came).
    pub async fn add_codes(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
        key: Option<Keyed<AddedCodes>>,
    ) -> Result<AddedCodes, StoreError> {
        let added = self.add_part(book_id, codes, now, key).await?;
        self.store().loaded(0).await;
        Ok(added)
    }

    /// A part of a bulk load that goes on (an import, a chunk at a time): work that follows a
    /// load, such as refreshing the planner's statistics, waits for its last part, which is added
    /// with `add_codes`.
    pub async fn add_codes_part(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
    ) -> Result<AddedCodes, StoreError> {
        self.add_part(book_id, codes, now, None).await
    }

    /// Adds a part of a load (the whole of an upload), keyed if it is the last.
    async fn add_part(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
        key: Option<Keyed<AddedCodes>>,
    ) -> Result<AddedCodes, StoreError> {
        let added = self.write_once(pool::AddCodes { book_id, codes, now }, key).await?;
        self.store().loading(added.inserted);
        self.restocked(book_id);
        Ok(added)
    }

    /// Draws `count` new codes from the pattern (the book's own when `None`) into a unique-mode book,
    /// never past `total_codes`.
    pub async fn generate_codes(
        &self,
        book_id: Uuid,
        pattern: Option<CodePattern>,
        count: u64,
        now: Timestamp,
        key: Option<Keyed<u64>>,
    ) -> Result<u64, StoreError> {
        let generate = pool::GenerateCodes {
            book_id,
            pattern,
            count,
            now,
        };
        let generated = self.write_once(generate, key).await?;
        self.store().loaded(generated).await;
        self.restocked(book_id);
        Ok(generated)
    }

    /// Takes codes nobody ever held out of a unique-mode book, and says why the others stay.
    /// Removal only takes stock away: what the engine knows of a sold-out book stays true.
    pub async fn remove_codes(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
        key: Option<Keyed<RemovedCodes>>,
    ) -> Result<RemovedCodes, StoreError> {
        self.write_once(pool::RemoveCodes { book_id, codes, now }, key).await
    }

    /// The book and a page of its codes, in the order they were added, with their states at `now`.
    pub async fn codes(&self, query: CodeQuery, now: Timestamp) -> Result<(Book, CodePage), StoreError> {
        self.store().read(pool::ListCodes { query, now }).await
    }

    /// The instance of `code` that `user_id` would act on (the one under `lock_id` first), for dry runs.
    pub async fn code_view(
        &self,
        code: &CodeText,
        user_id: &str,
        lock_id: Option<Uuid>,
    ) -> Result<CodeView, StoreError> {
        let (code, user_id) = (code.clone(), user_id.to_owned());
        self.store().read(code::ViewCode { code, user_id, lock_id }).await
    }

    /// Every code instance the user has owned (lapsed claims included: the caller filters by time).
    pub async fn user_codes(&self, user_id: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
        let user_id = user_id.to_owned();
        self.store().read(code::UserCodes { user_id }).await
    }

    /// Committed events after a place in the feed, in its order: a consumer that passes each
    /// page's `next` back never misses an event, however late its transaction commits.
    pub async fn events(&self, query: EventQuery) -> Result<EventPage, StoreError> {
        self.store().read(event::ListEvents { query }).await
    }

    pub async fn create_webhook(&self, new: NewWebhook, key: Option<Keyed<Webhook>>) -> Result<Webhook, StoreError> {
        self.write_once(webhook::CreateWebhook { new }, key).await
    }

    pub async fn webhook(&self, id: Uuid) -> Result<Webhook, StoreError> {
        self.store().read(webhook::LoadWebhook { id }).await
    }

    /// Every endpoint, oldest first, without its secret.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let endpoints = self.store().read(webhook::Endpoints {}).await?;
        Ok(endpoints.into_iter().map(|e| e.webhook).collect())
    }

    /// Deletes the endpoint and its deliveries.
    pub async fn delete_webhook(&self, id: Uuid) -> Result<(), StoreError> {
        self.store().write(webhook::DeleteWebhook { id }).await
    }

    /// The endpoint's deliveries, newest first.
    pub async fn deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
        after: Option<(Timestamp, Uuid)>,
    ) -> Result<DeliveryPage, StoreError> {
        let list = webhook::ListDeliveries {
            webhook_id,
            limit,
            after,
        };
        self.store().read(list).await
    }

    /// Makes a delivery due again now.
    pub async fn retry_delivery(&self, webhook_id: Uuid, id: Uuid, now: Timestamp) -> Result<Delivery, StoreError> {
        self.store().write(webhook::RetryDelivery { webhook_id, id, now }).await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store().ping().await
    }

    /// The events each consumer of the feed has yet to read, and the pending deliveries.
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.store().read(webhook::ReadBacklog {}).await
    }

    /// Sets the outbox backlog gauges from the database as it is at `now`; a failed read is
    /// logged and leaves them as they were.
    pub async fn record_backlog(&self, now: Timestamp) {
        match self.backlog().await {
            Ok(backlog) => backlog.record(now),
            Err(e) => tracing::warn!(error = %e, "reading the outbox backlog for the metrics failed"),
        }
    }

    /// Sets the connection gauges from each pool as it is now: `requests` (reads and book changes,
    /// and every request under the naive strategy) and, on PostgreSQL, `engine` (the claim
    /// engine's own pool). SQLite reports its reader connections; its one writer has no pool.
    pub fn record_connections(&self) {
        Connections::record(self.store().connections(), "requests");
        if let Some(writes) = self.inner.writes.as_ref().filter(|writes| !writes.same(self.store())) {
            Connections::record(writes.connections(), "engine");
        }
    }
}
