//! What the write operations take and answer: claims, checkout locks, redemptions and rollbacks
//! (one request each, batched by the claim engine, each with its idempotency key if it has one), and
//! what changes to a book's supply report.

pub use coupon_core::Locked;
use coupon_core::{Amount, Applied, Book, CodeInstance, CodeText, CouponError, Metadata, OrderId, Redemption};
use coupon_core::{Timestamp, UserId};
use uuid::Uuid;

use crate::idempotency::{Keyed, KeyedRequest};

/// Per-request answers of a batch: each request succeeds or is refused on its own.
pub type BatchResult<T> = Result<Vec<Result<T, CouponError>>, crate::StoreError>;

/// What an upload or generation added.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddedCodes {
    pub inserted: u64,
    /// Codes that already existed (in any book) or came twice in the request.
    pub duplicates: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub target: ClaimTarget,
    pub user_id: UserId,
    /// Kept with the claim while the user holds the code.
    pub metadata: Metadata,
    pub key: Option<Keyed<Claimed>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimTarget {
    /// Any available code of the book.
    Book(Uuid),
    /// That code (in shared mode: an available instance of it).
    Code(CodeText),
}

#[derive(Debug, Clone)]
pub struct Claimed {
    pub code: CodeInstance,
    pub book: Book,
}

#[derive(Debug, Clone)]
pub struct LockRequest {
    pub code: CodeText,
    pub user_id: UserId,
    pub key: Option<Keyed<Locked>>,
}

#[derive(Debug, Clone)]
pub struct UnlockRequest {
    pub code: CodeText,
    pub user_id: UserId,
    pub lock_id: Option<Uuid>,
    pub key: Option<Keyed<()>>,
}

#[derive(Debug, Clone)]
pub struct RedeemRequest {
    pub code: CodeText,
    pub user_id: UserId,
    pub order_id: Option<OrderId>,
    pub order_amount: Option<Amount>,
    pub lock_id: Option<Uuid>,
    pub metadata: Metadata,
    pub key: Option<Keyed<Redemption>>,
}

impl RedeemRequest {
    /// The record of this redemption of `code`, as it will be stored and answered.
    pub fn record(&self, code: &CodeInstance, applied: Option<Applied>, now: Timestamp) -> Redemption {
        Redemption {
            redemption_id: Uuid::now_v7(),
            code: code.code.clone(),
            coupon_book_id: code.book_id,
            user_id: self.user_id.as_str().to_owned(),
            order_id: self.order_id.as_ref().map(|o| o.as_str().to_owned()),
            order_amount: self.order_amount.map(Amount::minor_units),
            discount_applied: applied.map(|a| a.discount_applied),
            final_price: applied.map(|a| a.final_price),
            redeemed_at: now,
            metadata: self.metadata.clone(),
            rollback: None,
        }
    }
}

/// Undoes a redemption: its use goes back to the code and to the user's count.
#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub redemption_id: Uuid,
    /// What to record: the reason and metadata, at the rollback's time.
    pub rollback: coupon_core::Rollback,
    pub key: Option<Keyed<Redemption>>,
}

/// Each batched request's key, for the batch's records.
macro_rules! keyed {
    ($($request:ty => $answer:ty),* $(,)?) => {
        $(impl KeyedRequest for $request {
            type Outcome = $answer;
            fn keyed(&self) -> Option<&Keyed<$answer>> {
                self.key.as_ref()
            }
        })*
    };
}

keyed!(
    ClaimRequest => Claimed,
    LockRequest => Locked,
    UnlockRequest => (),
    RedeemRequest => Redemption,
    RollbackRequest => Redemption,
);

/// Why a code named for removal stayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRemoved {
    /// No such code in the book.
    Unknown,
    /// A user holds it (claimed, locked, or lapsed but not yet returned).
    Held,
    /// Used up by its redemptions.
    Redeemed,
    /// Back in the pool, but its redemption history (rolled back) refers to it.
    HasHistory,
}

impl NotRemoved {
    pub fn as_str(self) -> &'static str {
        match self {
            NotRemoved::Unknown => "unknown",
            NotRemoved::Held => "held",
            NotRemoved::Redeemed => "redeemed",
            NotRemoved::HasHistory => "has_history",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemovedCodes {
    pub removed: u64,
    /// In the order they were named; a code named twice is listed once.
    pub not_removed: Vec<(String, NotRemoved)>,
}

/// What a claim on a book would find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stock {
    Available,
    /// Nothing to deal until codes are added or, if `next_lapse` is set, possibly from then on (no
    /// held code lapses earlier; it is a lower bound, since a lock can hold a claim past its expiry).
    SoldOut {
        next_lapse: Option<Timestamp>,
    },
}
