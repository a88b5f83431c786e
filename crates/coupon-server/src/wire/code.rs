//! Codes as the API shows them: a code's state, and the record of a redemption.

use coupon_core as domain;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Timestamp;

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

// No doc comment: it would become the schema's description, which the document has never had.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
}

impl From<domain::Redemption> for Redemption {
    fn from(r: domain::Redemption) -> Self {
        Redemption {
            redemption_id: r.redemption_id,
            code: r.code,
            coupon_book_id: r.coupon_book_id,
            user_id: r.user_id,
            order_id: r.order_id,
            order_amount: r.order_amount,
            discount_applied: r.discount_applied,
            final_price: r.final_price,
            redeemed_at: Timestamp(r.redeemed_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
