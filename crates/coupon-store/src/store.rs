//! [`Store`] for any backend, written once: each operation runs its script in a write transaction
//! or on a read connection of the backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use coupon_core::{Book, BookDraft, BookPatch, BookStats, CodeInstance, CodePattern, CodeText, Redemption, Timestamp};
use uuid::Uuid;

use crate::backend::Backend;
use crate::outbox::{EventForm, EventPage, EventQuery, Outboxed, Recorded};
use crate::script::*;
use crate::webhooks::{Attempted, Backlog, Delivery, DeliveryPage, Due, Endpoint, NewWebhook, Webhook};
use crate::{
    AddedCodes, BatchResult, ClaimRequest, Claimed, CodePage, CodeQuery, CodeView, LockRequest, Locked, RedeemRequest,
    RedemptionPage, RedemptionQuery, RemovedCodes, RollbackRequest, SearchPage, SearchQuery, Stock, Store, StoreError,
    UnlockRequest,
};
use crate::{Event, EventCursor};

/// After this many codes were loaded (created, uploaded or generated) the planner's statistics are
/// refreshed: a sale that starts the moment its book exists must not be planned as if the book
/// were empty, and autovacuum comes a minute too late for that.
const BULK_LOAD: u64 = 10_000;

pub struct SqlStore<B> {
    backend: B,
    /// How events show their objects.
    form: Arc<dyn EventForm>,
    /// Codes loaded through this store since its last refresh of the statistics.
    loaded: AtomicU64,
}

// `Backend` is the crate's own seam: backends are chosen by `connect`, not implemented outside.
#[allow(private_bounds)]
impl<B: Backend> SqlStore<B> {
    pub(crate) fn new(backend: B, form: Arc<dyn EventForm>) -> Self {
        SqlStore {
            backend,
            form,
            loaded: AtomicU64::new(0),
        }
    }

    /// Runs a write in one transaction, with the events of its changes.
    async fn write<S: Recorded>(&self, script: S) -> Result<S::Out, StoreError> {
        let form = self.form.clone();
        self.backend.write(Outboxed { script, form }).await
    }

    /// Counts loaded codes; past `BULK_LOAD`, refreshes the statistics before the load is answered.
    /// The load has committed by then: a failed refresh is logged, not reported as a failed load.
    async fn loaded(&self, codes: u64) {
        let before = self.loaded.fetch_add(codes, Ordering::AcqRel);
        if before + codes >= BULK_LOAD && self.loaded.swap(0, Ordering::AcqRel) > 0 {
            if let Err(e) = self.backend.analyze_codes().await {
                tracing::warn!(error = %e, "refreshing the planner's statistics failed");
            }
        }
    }
}

#[async_trait]
#[allow(private_bounds)]
impl<B: Backend> Store for SqlStore<B> {
    async fn create_book(&self, draft: BookDraft) -> Result<Book, StoreError> {
        let (book, created) = self.write(CreateBook { draft }).await?;
        self.loaded(created).await;
        Ok(book)
    }

    async fn book(&self, id: Uuid) -> Result<Book, StoreError> {
        self.backend.read(LoadBook { id }).await
    }

    async fn book_supply(&self, id: Uuid) -> Result<(Book, i64), StoreError> {
        self.backend.read(BookSupply { id }).await
    }

    async fn update_book(&self, id: Uuid, patch: BookPatch, now: Timestamp) -> Result<Book, StoreError> {
        self.write(UpdateBook { id, patch, now }).await
    }

    async fn book_with_stats(&self, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
        self.backend.read(BookWithStats { id, now }).await
    }

    /// The whole load, or its last part: the parts before it were counted as they came.
    async fn add_codes(&self, book_id: Uuid, codes: Vec<String>, now: Timestamp) -> Result<AddedCodes, StoreError> {
        let added = self.add_codes_part(book_id, codes, now).await?;
        self.loaded(0).await;
        Ok(added)
    }

    /// The part's codes count towards the refresh that its load's last part may run.
    async fn add_codes_part(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
    ) -> Result<AddedCodes, StoreError> {
        let added = self.write(AddCodes { book_id, codes, now }).await?;
        self.loaded.fetch_add(added.inserted, Ordering::AcqRel);
        Ok(added)
    }

    async fn generate_codes(
        &self,
        book_id: Uuid,
        pattern: Option<CodePattern>,
        count: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let generated = self
            .write(GenerateCodes {
                book_id,
                pattern,
                count,
                now,
            })
            .await?;
        self.loaded(generated).await;
        Ok(generated)
    }

    async fn search_books(&self, query: SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
        self.backend.read(SearchBooks { query, now }).await
    }

    async fn remove_codes(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
    ) -> Result<RemovedCodes, StoreError> {
        self.write(RemoveCodes { book_id, codes, now }).await
    }

    async fn codes(&self, query: CodeQuery, now: Timestamp) -> Result<(Book, CodePage), StoreError> {
        self.backend.read(ListCodes { query, now }).await
    }

    async fn claim(&self, batch: Vec<ClaimRequest>, now: Timestamp) -> BatchResult<Claimed> {
        self.write(Claim { batch, now }).await
    }

    async fn stock(&self, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError> {
        self.backend.read(CheckStock { book_id, now }).await
    }

    async fn lock(&self, batch: Vec<LockRequest>, now: Timestamp) -> BatchResult<Locked> {
        self.write(Lock { batch, now }).await
    }

    async fn unlock(&self, batch: Vec<UnlockRequest>, now: Timestamp) -> BatchResult<()> {
        self.write(Unlock { batch, now }).await
    }

    async fn redeem(&self, batch: Vec<RedeemRequest>, now: Timestamp) -> BatchResult<Redemption> {
        self.write(Redeem { batch, now }).await
    }

    async fn rollback(&self, batch: Vec<RollbackRequest>, now: Timestamp) -> BatchResult<Redemption> {
        self.write(Rollback { batch, now }).await
    }

    async fn redemptions(&self, query: RedemptionQuery) -> Result<RedemptionPage, StoreError> {
        self.backend.read(ListRedemptions { query }).await
    }

    async fn code_view(&self, code: &CodeText, user_id: &str, lock_id: Option<Uuid>) -> Result<CodeView, StoreError> {
        let (code, user_id) = (code.clone(), user_id.to_owned());
        self.backend.read(ViewCode { code, user_id, lock_id }).await
    }

    async fn user_codes(&self, user_id: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
        self.backend
            .read(UserCodes {
                user_id: user_id.to_owned(),
            })
            .await
    }

    async fn events(&self, query: EventQuery) -> Result<EventPage, StoreError> {
        self.backend.read(ListEvents { query }).await
    }

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook, StoreError> {
        self.backend.write(CreateWebhook { new }).await
    }

    async fn webhook(&self, id: Uuid) -> Result<Webhook, StoreError> {
        self.backend.read(LoadWebhook { id }).await
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.backend.read(Endpoints {}).await
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<(), StoreError> {
        self.backend.write(DeleteWebhook { id }).await
    }

    async fn fan_out(&self, limit: u32, now: Timestamp) -> Result<usize, StoreError> {
        self.backend.write(FanOut { limit, now }).await
    }

    async fn lease_deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Due>, StoreError> {
        let lease = LeaseDeliveries {
            webhook_id,
            limit,
            until,
            now,
        };
        self.backend.write(lease).await
    }

    async fn settle_deliveries(&self, attempts: Vec<Attempted>) -> Result<(), StoreError> {
        let outcomes: Vec<_> = attempts.iter().map(crate::telemetry::attempt_outcome).collect();
        self.backend.write(SettleDeliveries { attempts }).await?;
        crate::telemetry::attempts_settled(&outcomes);
        Ok(())
    }

    async fn deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
        after: Option<(Timestamp, Uuid)>,
    ) -> Result<DeliveryPage, StoreError> {
        let list = ListDeliveries {
            webhook_id,
            limit,
            after,
        };
        self.backend.read(list).await
    }

    async fn retry_delivery(&self, webhook_id: Uuid, id: Uuid, now: Timestamp) -> Result<Delivery, StoreError> {
        self.backend.write(RetryDelivery { webhook_id, id, now }).await
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.backend.read(ReadBacklog {}).await
    }

    async fn relay_next(&self, name: &str, limit: u32) -> Result<(EventCursor, Vec<Event>), StoreError> {
        let name = name.to_owned();
        self.backend.read(RelayNext { name, limit }).await
    }

    async fn relay_moved(&self, name: &str, from: EventCursor, to: EventCursor) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.backend.write(RelayMoved { name, from, to }).await
    }

    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.backend.write(Prune { before }).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.backend.read(Ping {}).await
    }

    fn connections(&self) -> Option<crate::Connections> {
        Some(self.backend.connections())
    }
}
