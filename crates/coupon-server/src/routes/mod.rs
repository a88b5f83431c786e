//! The routes, by domain: books (admin), codes (claim, lock, redeem, validate), users, health.

pub mod books;
pub mod codes;
pub mod health;
pub mod users;

use crate::error::ApiError;
use coupon_core::CouponError;

pub async fn not_found() -> ApiError {
    ApiError::Coupon(CouponError::NotFound("route"))
}
