//! The routes, each file named for the operations it holds: books and the admin's catalog, a
//! book's pool of codes (list, export, import, remove), claims (assign, assign a named code),
//! lock (and unlock), redeem (and the dry-run validate), rollback, redemptions (history), users,
//! events, webhooks, health. `lookup` is the preamble of the routes that look one code up,
//! and `page` the paging every list shares.

pub mod books;
pub mod catalog;
pub mod claims;
pub mod events;
pub mod health;
pub mod lock;
pub mod lookup;
pub mod page;
pub mod pool;
pub mod redeem;
pub mod redemptions;
pub mod rollback;
pub mod users;
pub mod webhooks;

use coupon_core::CouponError;

use crate::error::ApiError;

pub async fn not_found() -> ApiError {
    ApiError::Coupon(CouponError::NotFound("route"))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The codes of an upload or a removal: 1 to `max`, each parsed as `CodeText` (canonical case),
/// the first bad one named by its index.
fn code_list(raw: &[String], max: usize) -> Result<Vec<String>, ApiError> {
    if raw.is_empty() || raw.len() > max {
        return Err(ApiError::invalid("codes", format!("send 1 to {max} codes")));
    }
    raw.iter()
        .enumerate()
        .map(|(i, code)| {
            coupon_core::CodeText::parse(code)
                .map(coupon_core::CodeText::into_string)
                .map_err(|e| ApiError::invalid("codes", format!("codes[{i}]: {e}")))
        })
        .collect()
}
