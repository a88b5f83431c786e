//! The redemption history: one record per use of a code against an order.

use uuid::Uuid;

use crate::Timestamp;

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
}
