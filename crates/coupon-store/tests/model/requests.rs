//! Every request the sequences send is built here, and only here.

use coupon_core::{Amount, BookPatch, BookStatus, CodeText, Metadata, OrderId, Rollback, Timestamp, UserId};
use coupon_store::{
    ClaimRequest, ClaimTarget, CodeQuery, LockRequest, RedeemRequest, RedemptionQuery, RedemptionsOf, RollbackRequest,
    UnlockRequest,
};
use uuid::Uuid;

fn user_id(user: &str) -> UserId {
    UserId::parse(user).expect("a valid user id")
}

fn code(text: &str) -> CodeText {
    CodeText::parse(text).expect("a valid code")
}

pub fn claim_req(book: Uuid, user: &str) -> ClaimRequest {
    ClaimRequest {
        target: ClaimTarget::Book(book),
        user_id: user_id(user),
        metadata: Metadata::default(),
        key: None,
    }
}

pub fn claim_code_req(text: &str, user: &str) -> ClaimRequest {
    ClaimRequest {
        target: ClaimTarget::Code(code(text)),
        user_id: user_id(user),
        metadata: Metadata::default(),
        key: None,
    }
}

pub fn lock_req(text: &str, user: &str) -> LockRequest {
    LockRequest {
        code: code(text),
        user_id: user_id(user),
        key: None,
    }
}

pub fn unlock_req(text: &str, user: &str, lock_id: Option<Uuid>) -> UnlockRequest {
    UnlockRequest {
        code: code(text),
        user_id: user_id(user),
        lock_id,
        key: None,
    }
}

pub fn redeem_req(
    text: &str,
    user: &str,
    order: Option<&str>,
    amount: Option<i64>,
    lock_id: Option<Uuid>,
) -> RedeemRequest {
    RedeemRequest {
        code: code(text),
        user_id: user_id(user),
        order_id: order.map(|o| OrderId::parse(o).expect("a valid order id")),
        order_amount: amount.map(|a| Amount::parse("order_amount", a).expect("a valid amount")),
        lock_id,
        metadata: Metadata::default(),
        key: None,
    }
}

pub fn rollback_req(redemption_id: Uuid, now: Timestamp) -> RollbackRequest {
    let rollback = Rollback::new(Some("payment declined".into()), Metadata::default(), now).expect("a valid reason");
    RollbackRequest {
        redemption_id,
        rollback,
        key: None,
    }
}

pub fn status_patch(status: BookStatus) -> BookPatch {
    BookPatch {
        status: Some(status),
        ..BookPatch::default()
    }
}

pub fn expiry_patch(expires_at: Option<Timestamp>) -> BookPatch {
    BookPatch {
        expires_at: Some(expires_at),
        ..BookPatch::default()
    }
}

/// Every code of a small book, in the order they were added.
pub fn all_codes(book: Uuid) -> CodeQuery {
    CodeQuery {
        book_id: book,
        state: None,
        limit: 1000,
        after: None,
    }
}

/// A small book's whole redemption history, newest first.
pub fn all_redemptions(book: Uuid) -> RedemptionQuery {
    RedemptionQuery {
        of: RedemptionsOf::Book(book),
        limit: 100,
        after: None,
    }
}
