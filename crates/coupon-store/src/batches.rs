//! What the claim engine sends to the database: batches, each in one transaction, with an answer
//! per request. Claims and the stock check behind the sold-out fast path go to [`ClaimBatches`];
//! locks, unlocks, redemptions and rollbacks to [`CheckoutBatches`]. The store implements both; a
//! test of the engine may stand in for either.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use coupon_core::{Book, Redemption, Timestamp};
use uuid::Uuid;

use crate::idempotency::KeyedRequest;
use crate::script::{claim, lock, redeem, rollback};
use crate::telemetry;
use crate::{
    BatchResult, ClaimRequest, Claimed, LockRequest, Locked, RedeemRequest, RollbackRequest, Stock, Store, StoreError,
    UnlockRequest,
};

#[async_trait]
pub trait ClaimBatches: Send + Sync + 'static {
    /// Claims for any code of a book are decided together per book, in arrival order, as if each
    /// ran alone after the ones before it; the whole batch commits at once.
    async fn claim(&self, batch: Vec<ClaimRequest>, now: Timestamp) -> BatchResult<Claimed>;
    /// The book, and whether a claim on it could find a code now (not dealt yet, returned, or
    /// lapsed) or else from when a held code could lapse. A hint for the sold-out fast path; claims
    /// themselves decide on locked rows.
    async fn stock(&self, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError>;
}

#[async_trait]
pub trait CheckoutBatches: Send + Sync + 'static {
    async fn lock(&self, batch: Vec<LockRequest>, now: Timestamp) -> BatchResult<Locked>;
    async fn unlock(&self, batch: Vec<UnlockRequest>, now: Timestamp) -> BatchResult<()>;
    /// Repeating a redemption (same code, user and order id) answers the first one and counts once.
    async fn redeem(&self, batch: Vec<RedeemRequest>, now: Timestamp) -> BatchResult<Redemption>;
    /// Repeating a rollback answers the rolled-back redemption and counts once.
    async fn rollback(&self, batch: Vec<RollbackRequest>, now: Timestamp) -> BatchResult<Redemption>;
}

#[async_trait]
impl ClaimBatches for Store {
    async fn claim(&self, batch: Vec<ClaimRequest>, now: Timestamp) -> BatchResult<Claimed> {
        self.write(claim::Claim { batch, now }).await
    }

    async fn stock(&self, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError> {
        self.read(claim::CheckStock { book_id, now }).await
    }
}

#[async_trait]
impl CheckoutBatches for Store {
    async fn lock(&self, batch: Vec<LockRequest>, now: Timestamp) -> BatchResult<Locked> {
        self.write(lock::Lock { batch, now }).await
    }

    async fn unlock(&self, batch: Vec<UnlockRequest>, now: Timestamp) -> BatchResult<()> {
        self.write(lock::Unlock { batch, now }).await
    }

    async fn redeem(&self, batch: Vec<RedeemRequest>, now: Timestamp) -> BatchResult<Redemption> {
        self.write(redeem::Redeem { batch, now }).await
    }

    async fn rollback(&self, batch: Vec<RollbackRequest>, now: Timestamp) -> BatchResult<Redemption> {
        self.write(rollback::Rollback { batch, now }).await
    }
}

/// A checkout batch on its way to the database.
pub(crate) type Run<'a, T> = Pin<Box<dyn Future<Output = BatchResult<T>> + Send + 'a>>;

/// A request of the checkout queues, and the batch it runs in: what lets the per-request service
/// and the engine treat lock, unlock, redeem and rollback as one.
pub(crate) trait Checkout: KeyedRequest + Clone + Send + Sync + 'static {
    type Answer: Send + 'static;
    /// The operation's name in the batch metrics.
    const OP: &'static str;
    /// The counter its answers are counted in, by outcome.
    const COUNTER: &'static str;

    fn run(to: &dyn CheckoutBatches, batch: Vec<Self>, now: Timestamp) -> Run<'_, Self::Answer>;
}

impl Checkout for LockRequest {
    type Answer = Locked;
    const OP: &'static str = "lock";
    const COUNTER: &'static str = telemetry::LOCKS;

    fn run(to: &dyn CheckoutBatches, batch: Vec<Self>, now: Timestamp) -> Run<'_, Locked> {
        to.lock(batch, now)
    }
}

impl Checkout for UnlockRequest {
    type Answer = ();
    const OP: &'static str = "unlock";
    const COUNTER: &'static str = telemetry::UNLOCKS;

    fn run(to: &dyn CheckoutBatches, batch: Vec<Self>, now: Timestamp) -> Run<'_, ()> {
        to.unlock(batch, now)
    }
}

impl Checkout for RedeemRequest {
    type Answer = Redemption;
    const OP: &'static str = "redeem";
    const COUNTER: &'static str = telemetry::REDEMPTIONS;

    fn run(to: &dyn CheckoutBatches, batch: Vec<Self>, now: Timestamp) -> Run<'_, Redemption> {
        to.redeem(batch, now)
    }
}

/// Rollbacks run with the redemptions (batched alike), so a rollback and a redeem of one code
/// queue on its row.
impl Checkout for RollbackRequest {
    type Answer = Redemption;
    const OP: &'static str = "rollback";
    const COUNTER: &'static str = telemetry::ROLLBACKS;

    fn run(to: &dyn CheckoutBatches, batch: Vec<Self>, now: Timestamp) -> Run<'_, Redemption> {
        to.rollback(batch, now)
    }
}
