//! Codes as the API shows them: a code's state, and the record of a redemption and its rollback.

use coupon_core as domain;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Metadata, Timestamp};

/// What a code is at a given instant, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeState {
    Available,
    Active,
    Locked,
    Redeemed,
    Expired,
}

impl From<domain::CodeState> for CodeState {
    fn from(s: domain::CodeState) -> Self {
        match s {
            domain::CodeState::Available => CodeState::Available,
            domain::CodeState::Active => CodeState::Active,
            domain::CodeState::Locked => CodeState::Locked,
            domain::CodeState::Redeemed => CodeState::Redeemed,
            domain::CodeState::Expired => CodeState::Expired,
        }
    }
}

/// Whether a redemption still counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionStatus {
    Redeemed,
    /// Undone: its use went back to the code and to the user.
    RolledBack,
}

// No doc comment: it would become the schema's description, which the document has never had.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Redemption {
    pub status: RedemptionStatus,
    pub redemption_id: Uuid,
    pub code: String,
    pub coupon_book_id: Uuid,
    pub user_id: String,
    pub order_id: Option<String>,
    pub order_amount: Option<i64>,
    pub discount_applied: Option<i64>,
    pub final_price: Option<i64>,
    pub redeemed_at: Timestamp,
    /// What the redeem carried.
    pub metadata: Metadata,
    pub rolled_back_at: Option<Timestamp>,
    /// Why it was rolled back, if the caller said.
    pub reason: Option<String>,
    /// What the rollback carried.
    pub rollback_metadata: Option<Metadata>,
}

impl Redemption {
    pub fn of(r: &domain::Redemption) -> Self {
        r.clone().into()
    }
}

impl From<domain::Redemption> for Redemption {
    fn from(r: domain::Redemption) -> Self {
        let (status, rolled_back_at, reason, rollback_metadata) = match r.rollback {
            None => (RedemptionStatus::Redeemed, None, None, None),
            Some(rb) => (
                RedemptionStatus::RolledBack,
                Some(Timestamp(rb.rolled_back_at)),
                rb.reason,
                Some(rb.metadata.into()),
            ),
        };
        Redemption {
            status,
            redemption_id: r.redemption_id,
            code: r.code,
            coupon_book_id: r.coupon_book_id,
            user_id: r.user_id,
            order_id: r.order_id,
            order_amount: r.order_amount,
            discount_applied: r.discount_applied,
            final_price: r.final_price,
            redeemed_at: Timestamp(r.redeemed_at),
            metadata: r.metadata.into(),
            rolled_back_at,
            reason,
            rollback_metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_are_written_in_snake_case() {
        let written: Vec<_> = [
            domain::CodeState::Available,
            domain::CodeState::Active,
            domain::CodeState::Locked,
            domain::CodeState::Redeemed,
            domain::CodeState::Expired,
        ]
        .into_iter()
        .map(|s| serde_json::to_value(CodeState::from(s)).unwrap())
        .collect();
        assert_eq!(
            written,
            ["available", "active", "locked", "redeemed", "expired"].map(serde_json::Value::from)
        );
    }

    #[test]
    fn a_rolled_back_redemption_says_when_and_why() {
        let now = domain::Timestamp::from_millis(1_000);
        let mut r = domain::Redemption {
            redemption_id: Uuid::nil(),
            code: "C".into(),
            coupon_book_id: Uuid::nil(),
            user_id: "alice".into(),
            order_id: Some("o-1".into()),
            order_amount: None,
            discount_applied: None,
            final_price: None,
            redeemed_at: now,
            metadata: Default::default(),
            rollback: None,
        };
        let live = serde_json::to_value(Redemption::from(r.clone())).unwrap();
        assert_eq!(
            (
                &live["status"],
                &live["rolled_back_at"],
                &live["reason"],
                &live["rollback_metadata"],
                &live["metadata"]
            ),
            (&json!("redeemed"), &json!(null), &json!(null), &json!(null), &json!({}))
        );
        r.rollback = Some(domain::Rollback::new(Some("declined".into()), Default::default(), now).unwrap());
        let undone = serde_json::to_value(Redemption::from(r)).unwrap();
        assert_eq!(
            (
                &undone["status"],
                &undone["rolled_back_at"],
                &undone["reason"],
                &undone["rollback_metadata"]
            ),
            (
                &json!("rolled_back"),
                &json!("1970-01-01T00:00:01.000Z"),
                &json!("declined"),
                &json!({})
            )
        );
    }
}

/// A claimed code as its holder sees it: the claim's answer (with its book) and the data of the
/// `code.claimed` event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClaimedCode {
    pub assigned_code: String,
    pub user_id: String,
    pub status: CodeState,
    pub claimed_at: Option<Timestamp>,
    /// When an unredeemed claim lapses, if the book sets a claim TTL.
    pub claim_expires_at: Option<Timestamp>,
    /// What the claim carried.
    pub metadata: Metadata,
}

impl ClaimedCode {
    pub fn new(code: domain::CodeInstance, book: &domain::Book, now: domain::Timestamp) -> Self {
        ClaimedCode {
            status: code.state(book, now).into(),
            assigned_code: code.code,
            // Every claimed code has its holder.
            user_id: code.owner.unwrap_or_default(),
            claimed_at: code.claimed_at.map(Timestamp),
            claim_expires_at: code.claim_expires_at.map(Timestamp),
            metadata: code.metadata.into(),
        }
    }
}

/// A checkout hold: the lock's answer and the data of the `code.locked` event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LockAnswer {
    /// `locked`.
    pub status: &'static str,
    pub code: String,
    pub lock_id: Uuid,
    pub locked_until: Timestamp,
}

impl From<domain::Locked> for LockAnswer {
    fn from(locked: domain::Locked) -> Self {
        LockAnswer {
            status: "locked",
            code: locked.code,
            lock_id: locked.lock_id,
            locked_until: Timestamp(locked.locked_until),
        }
    }
}

// A released checkout hold: the unlock's answer and the data of the `code.unlocked` event (a
// comment, not a doc: the schema has no description).
#[derive(Serialize, ToSchema)]
pub struct UnlockAnswer {
    /// `active`.
    pub status: &'static str,
    pub code: String,
}
