//! The per-request service the HTTP layer calls: one request in, one answer out. Behind it a claim,
//! lock, unlock or redemption either joins a batch of the claim engine or runs alone in its own
//! transaction; which is configuration ([`Strategy`]). This is the seam where cross-cutting work
//! on every request belongs, whatever strategy runs it.
//!
//! A refusal comes back as `StoreError::Rejected`, so a caller maps one error type. Every answer of
//! a claim, lock, unlock, redemption and rollback is counted here, by outcome, on either strategy.

use std::sync::Arc;

use coupon_core::{Book, BookDraft, BookPatch, BookStats, CodeInstance, CodePattern, CodeText, Redemption, Timestamp};
use uuid::Uuid;

use crate::background::Background;
use crate::engine::{Answer, Engine};
use crate::outbox::{EventPage, EventQuery};
use crate::telemetry::{self, counted, Connections};
use crate::webhooks::{Delivery, DeliveryPage, NewWebhook, Webhook};
use crate::{
    AddedCodes, ClaimRequest, Claimed, CodePage, CodeQuery, CodeView, DynStore, LockRequest, Locked, RedeemRequest,
    RedemptionPage, RedemptionQuery, RemovedCodes, RollbackRequest, SearchPage, SearchQuery, StoreError, UnlockRequest,
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
    store: DynStore,
    engine: Option<Engine>,
}

/// One answer of a batch of one.
fn only<T>(answers: Vec<Result<T, coupon_core::CouponError>>) -> Result<T, StoreError> {
    answers
        .into_iter()
        .next()
        .ok_or(StoreError::Conflict("a batch of one gave no answer"))?
        .map_err(StoreError::from)
}

fn answered<T>(answer: Answer<T>) -> Result<T, StoreError> {
    answer?.map_err(StoreError::from)
}

impl Coupons {
    /// Every request in a transaction of its own.
    pub fn naive(store: DynStore) -> Self {
        Coupons {
            inner: Arc::new(Inner { store, engine: None }),
        }
    }

    /// Requests batched by the claim engine, whose batches go to `writes` and whose work joins
    /// `background`. Must be called within a tokio runtime.
    pub fn batched(store: DynStore, writes: DynStore, background: &Background) -> Result<Self, StoreError> {
        Ok(Coupons {
            inner: Arc::new(Inner {
                store,
                engine: Some(Engine::start(writes, background)?),
            }),
        })
    }

    /// The store behind the service: the relay's background work reads and settles through it.
    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    /// Supply or the book changed: what the engine knew of its stock is stale.
    fn restocked(&self, book_id: Uuid) {
        if let Some(engine) = &self.inner.engine {
            engine.restocked(book_id);
        }
    }

    pub async fn claim(&self, req: ClaimRequest, now: Timestamp) -> Result<Claimed, StoreError> {
        let answer = match &self.inner.engine {
            Some(engine) => answered(engine.claim(req, now).await),
            None => self.store().claim(vec![req], now).await.and_then(only),
        };
        counted(telemetry::CLAIMS, answer)
    }

    pub async fn lock(&self, req: LockRequest, now: Timestamp) -> Result<Locked, StoreError> {
        let answer = match &self.inner.engine {
            Some(engine) => answered(engine.lock(req, now).await),
            None => self.store().lock(vec![req], now).await.and_then(only),
        };
        counted(telemetry::LOCKS, answer)
    }

    pub async fn unlock(&self, req: UnlockRequest, now: Timestamp) -> Result<(), StoreError> {
        let answer = match &self.inner.engine {
            Some(engine) => answered(engine.unlock(req, now).await),
            None => self.store().unlock(vec![req], now).await.and_then(only),
        };
        counted(telemetry::UNLOCKS, answer)
    }

    /// Repeating a redemption (same code, user and order id) answers the first one and counts once.
    pub async fn redeem(&self, req: RedeemRequest, now: Timestamp) -> Result<Redemption, StoreError> {
        let answer = match &self.inner.engine {
            Some(engine) => answered(engine.redeem(req, now).await),
            None => self.store().redeem(vec![req], now).await.and_then(only),
        };
        counted(telemetry::REDEMPTIONS, answer)
    }

    /// Repeating a rollback answers the rolled-back redemption and counts once; it runs with the
    /// redemptions (batched alike), so a rollback and a redeem of one code queue on its row.
    pub async fn rollback(&self, req: RollbackRequest, now: Timestamp) -> Result<Redemption, StoreError> {
        let answer = match &self.inner.engine {
            Some(engine) => answered(engine.rollback(req, now).await),
            None => self.store().rollback(vec![req], now).await.and_then(only),
        };
        counted(telemetry::ROLLBACKS, answer)
    }

    pub async fn redemptions(&self, query: RedemptionQuery) -> Result<RedemptionPage, StoreError> {
        self.store().redemptions(query).await
    }

    pub async fn codes(&self, query: CodeQuery, now: Timestamp) -> Result<(Book, CodePage), StoreError> {
        self.store().codes(query, now).await
    }

    /// Removal only takes stock away: what the engine knows of a sold-out book stays true.
    pub async fn remove_codes(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
    ) -> Result<RemovedCodes, StoreError> {
        self.store().remove_codes(book_id, codes, now).await
    }

    pub async fn create_book(&self, draft: BookDraft) -> Result<Book, StoreError> {
        self.store().create_book(draft).await
    }

    pub async fn book(&self, id: Uuid) -> Result<Book, StoreError> {
        self.store().book(id).await
    }

    pub async fn book_supply(&self, id: Uuid) -> Result<(Book, i64), StoreError> {
        self.store().book_supply(id).await
    }

    pub async fn update_book(&self, id: Uuid, patch: BookPatch, now: Timestamp) -> Result<Book, StoreError> {
        let book = self.store().update_book(id, patch, now).await?;
        self.restocked(id);
        Ok(book)
    }

    pub async fn book_with_stats(&self, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
        self.store().book_with_stats(id, now).await
    }

    pub async fn add_codes(&self, book_id: Uuid, codes: Vec<String>, now: Timestamp) -> Result<AddedCodes, StoreError> {
        let added = self.store().add_codes(book_id, codes, now).await?;
        self.restocked(book_id);
        Ok(added)
    }

    /// A part of a bulk load that goes on; its last part is added with `add_codes`.
    pub async fn add_codes_part(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
    ) -> Result<AddedCodes, StoreError> {
        let added = self.store().add_codes_part(book_id, codes, now).await?;
        self.restocked(book_id);
        Ok(added)
    }

    pub async fn generate_codes(
        &self,
        book_id: Uuid,
        pattern: Option<CodePattern>,
        count: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let generated = self.store().generate_codes(book_id, pattern, count, now).await?;
        self.restocked(book_id);
        Ok(generated)
    }

    pub async fn search_books(&self, query: SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
        self.store().search_books(query, now).await
    }

    pub async fn code_view(
        &self,
        code: &CodeText,
        user_id: &str,
        lock_id: Option<Uuid>,
    ) -> Result<CodeView, StoreError> {
        self.store().code_view(code, user_id, lock_id).await
    }

    pub async fn user_codes(&self, user_id: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
        self.store().user_codes(user_id).await
    }

    pub async fn events(&self, query: EventQuery) -> Result<EventPage, StoreError> {
        self.store().events(query).await
    }

    pub async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook, StoreError> {
        self.store().create_webhook(new).await
    }

    pub async fn webhook(&self, id: Uuid) -> Result<Webhook, StoreError> {
        self.store().webhook(id).await
    }

    /// Every endpoint, oldest first, without its secret.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let endpoints = self.store().endpoints().await?;
        Ok(endpoints.into_iter().map(|e| e.webhook).collect())
    }

    pub async fn delete_webhook(&self, id: Uuid) -> Result<(), StoreError> {
        self.store().delete_webhook(id).await
    }

    pub async fn deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
        after: Option<(Timestamp, Uuid)>,
    ) -> Result<DeliveryPage, StoreError> {
        self.store().deliveries(webhook_id, limit, after).await
    }

    pub async fn retry_delivery(&self, webhook_id: Uuid, id: Uuid, now: Timestamp) -> Result<Delivery, StoreError> {
        self.store().retry_delivery(webhook_id, id, now).await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store().ping().await
    }

    /// Sets the outbox backlog gauges from the database as it is at `now`; a failed read is
    /// logged and leaves them as they were.
    pub async fn record_backlog(&self, now: Timestamp) {
        match self.store().backlog().await {
            Ok(backlog) => backlog.record(now),
            Err(e) => tracing::warn!(error = %e, "reading the outbox backlog for the metrics failed"),
        }
    }

    /// Sets the connection gauges from each pool as it is now: `requests` (reads and book changes,
    /// and every request under the naive strategy) and, on PostgreSQL, `engine` (the claim
    /// engine's own pool). SQLite reports its reader connections; its one writer has no pool.
    pub fn record_connections(&self) {
        let pools = [
            Some(("requests", self.store())),
            self.inner
                .engine
                .as_ref()
                .map(Engine::writes)
                .filter(|writes| !Arc::ptr_eq(writes, self.store()))
                .map(|writes| ("engine", writes)),
        ];
        for (pool, store) in pools.into_iter().flatten() {
            if let Some(connections) = store.connections() {
                Connections::record(connections, pool);
            }
        }
    }
}
