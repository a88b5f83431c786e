//! The redemption history: one record per use of a code against an order, and its rollback when
//! the order fails (a declined payment, a cancellation, a refund).

use uuid::Uuid;

use crate::{CouponError, Metadata, Timestamp};

/// The longest rollback reason, in characters.
pub const MAX_REASON: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub redemption_id: Uuid,
    pub code: String,
    pub coupon_book_id: Uuid,
    pub user_id: String,
    pub order_id: Option<String>,
    pub order_amount: Option<i64>,
    pub discount_applied: Option<i64>,
    pub final_price: Option<i64>,
    pub redeemed_at: Timestamp,
    pub metadata: Metadata,
    /// Set once the redemption was rolled back: its use went back to the code and the user.
    pub rollback: Option<Rollback>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub rolled_back_at: Timestamp,
    pub reason: Option<String>,
    pub metadata: Metadata,
}

impl Rollback {
    /// A rollback at `now`, its reason trimmed and at most 500 characters (an empty one is none).
    pub fn new(reason: Option<String>, metadata: Metadata, now: Timestamp) -> Result<Self, CouponError> {
        // The cap is on the text as sent (as the OpenAPI document states it), padding included.
        if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON) {
            return Err(CouponError::invalid(
                "reason",
                format!("at most {MAX_REASON} characters"),
            ));
        }
        let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        Ok(Rollback {
            rolled_back_at: now,
            reason,
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_and_bounded() {
        let now = Timestamp::from_millis(1);
        let r = Rollback::new(Some("  payment declined ".into()), Metadata::default(), now).unwrap();
        assert_eq!(r.reason.as_deref(), Some("payment declined"));
        assert_eq!(
            Rollback::new(Some("  ".into()), Metadata::default(), now)
                .unwrap()
                .reason,
            None
        );
        assert!(Rollback::new(Some("x".repeat(MAX_REASON)), Metadata::default(), now).is_ok());
        // The cap counts the text as sent: padding does not buy room.
        let padded = format!("\u{a0}{}", "x".repeat(MAX_REASON));
        assert!(Rollback::new(Some(padded), Metadata::default(), now).is_err());
        let long = Rollback::new(Some("x".repeat(MAX_REASON + 1)), Metadata::default(), now);
        assert!(matches!(long, Err(CouponError::Invalid(i)) if i.field == "reason"));
    }
}
