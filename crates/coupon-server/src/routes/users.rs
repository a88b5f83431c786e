//! What a user holds.

use axum::extract::State;
use axum::Json;
use coupon_core::CodeState;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Problems};
use crate::extract::{Path, Query};
use crate::wire::{self, text, Discount, Metadata, Timestamp};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CouponFilter {
    /// Only codes in this state now.
    #[param(schema_with = text::held_state)]
    pub status: Option<String>,
}

/// The user a `/users/{user_id}/...` route is about: a user id, or `me`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    #[param(schema_with = text::user_in_path, required = true)]
    pub user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct HeldCoupon {
    pub code: String,
    pub coupon_book_id: Uuid,
    pub name: String,
    pub status: wire::CodeState,
    pub discount: Discount,
    pub claimed_at: Option<Timestamp>,
    pub claim_expires_at: Option<Timestamp>,
    /// The end of the book's window.
    pub expires_at: Option<Timestamp>,
    /// Set while a checkout lock holds the code.
    pub locked_until: Option<Timestamp>,
    pub redemptions: i64,
    /// What the claim carried.
    pub metadata: Metadata,
}

#[derive(Serialize, ToSchema)]
pub struct HeldCoupons {
    pub assigned_coupons: Vec<HeldCoupon>,
}

/// The codes a user holds now (lapsed claims are gone), newest claim first. `me` is the caller.
#[utoipa::path(get, path = "/users/{user_id}/coupons", tag = "users", security(("bearer" = [])),
    params(UserPath, CouponFilter),
    responses((status = 200, body = HeldCoupons), Problems))]
pub async fn coupons(
    caller: Caller,
    State(s): State<AppState>,
    Path(UserPath { user_id }): Path<UserPath>,
    Query(filter): Query<CouponFilter>,
) -> Result<Json<HeldCoupons>, ApiError> {
    // Whose codes before what filter: another user's path is a 403 whatever the query says.
    let user = caller.user_in_path(user_id)?;
    let wanted = match filter.status.as_deref() {
        None => None,
        Some(s) => match CodeState::parse(s) {
            Some(state) if state != CodeState::Available => Some(state),
            _ => {
                return Err(ApiError::invalid(
                    "status",
                    "must be active, locked, redeemed or expired",
                ))
            }
        },
    };
    let now = s.clock.now();
    let held = s
        .coupons
        .user_codes(user.as_str())
        .await?
        .into_iter()
        .filter(|(code, _)| code.is_held_by(user.as_str(), now))
        .map(|(code, book)| (code.state(&book, now), code, book))
        .filter(|(state, _, _)| wanted.is_none_or(|w| *state == w))
        .map(|(state, code, book)| HeldCoupon {
            status: state.into(),
            locked_until: code.live_lock(now).and(code.locked_until).map(Timestamp),
            code: code.code,
            coupon_book_id: book.id,
            name: book.name,
            discount: book.discount.into(),
            claimed_at: code.claimed_at.map(Timestamp),
            claim_expires_at: code.claim_expires_at.map(Timestamp),
            expires_at: book.expires_at.map(Timestamp),
            redemptions: code.redemptions,
            metadata: code.metadata.into(),
        })
        .collect();
    Ok(Json(HeldCoupons { assigned_coupons: held }))
}
