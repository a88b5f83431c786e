//! The routes, by domain: books (admin), codes (claim, lock, redeem, validate), users, health.

pub mod books;
pub mod catalog;
pub mod codes;
pub mod health;
pub mod page;
pub mod pool;
pub mod redemptions;
pub mod users;

use coupon_core::CouponError;

use crate::error::ApiError;

pub async fn not_found() -> ApiError {
    ApiError::Coupon(CouponError::NotFound("route"))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
